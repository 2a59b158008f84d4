"""camkit: class activation maps — train, extract, threshold, score and look at them."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("camkit")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0"

from camkit.core.errors import CamkitError

__all__ = ["CamkitError", "__version__"]
