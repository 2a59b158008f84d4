"""Image datasets on disk: any ImageFolder tree, and the lab's CIFAR-10 layout.

* ImageFolder: ``ROOT/<class>/<image>``, classes sorted by name; an optional parallel tree
  ``MASKS/<class>/<stem>.<ext>`` holds binary masks for some or all images.
* The lab layout: ``ROOT/train/``, ``ROOT/test/``, list files ``ROOT/train_cls.txt`` and
  ``ROOT/test_cls.txt`` with one ``name label`` per line, and optional masks in
  ``ROOT/test_seg/`` for the images in ``ROOT/test_seg_source/`` (split ``seg``).

Masks are read as foreground where the pixel is non-zero (palette and 1-bit masks, with 255
as VOC's "ignore" treated as background) or above 127 (greyscale and colour masks).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from camkit.core.errors import CamkitError, OptionError

log = logging.getLogger(__name__)

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


@dataclass(frozen=True)
class Record:
    """One image on disk: its path, label (-1 if unknown) and optional mask path."""

    path: Path
    label: int
    mask: Path | None = None

    @property
    def image_id(self) -> str:
        return (
            self.path.stem
            if self.path.parent.name in ("", ".")
            else f"{self.path.parent.name}/{self.path.stem}"
        )


MAX_PIXELS = 89_478_485  # PIL's own decompression-bomb limit; $CAMKIT_MAX_PIXELS raises it


def _max_pixels() -> int:
    try:
        return int(os.environ.get("CAMKIT_MAX_PIXELS", MAX_PIXELS))
    except ValueError:
        raise CamkitError("$CAMKIT_MAX_PIXELS: give a whole number of pixels") from None


def to_rgb(im: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB, without clipping deep images: 16-bit greyscale is scaled
    by 255/65535 (PIL's plain ``convert`` would saturate it to white), 32-bit integer and
    float images by their own range; palette and alpha images are composited as PIL does."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(im, dtype=np.float64)
        if im.mode.startswith("I;16"):
            scaled = arr * (255.0 / 65535.0)
        else:  # 32-bit: by the data's own range
            lo, hi = float(arr.min()), float(arr.max())
            scaled = (arr - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(arr)
        return Image.fromarray(np.clip(scaled + 0.5, 0, 255).astype(np.uint8)).convert("RGB")
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        return im.convert("RGBA").convert("RGB")
    return im.convert("RGB")


@contextmanager
def image_errors(path: Path, what: str = "image", missing: str | None = None) -> Iterator[None]:
    """Turn a missing or unreadable ``path`` (a ``what``: image, mask) inside the block into a
    one-line CamkitError naming the file; ``missing`` words the not-found case."""
    try:
        yield
    except FileNotFoundError:
        raise CamkitError(f"{path}: {missing or f'{what} not found'}") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise CamkitError(
            f"{path}: cannot read this {what} ({e.__class__.__name__}); replace or remove it"
        ) from None


def read_image(path: Path) -> Image.Image:
    """Open an image as 8-bit RGB (see :func:`to_rgb`); a one-line CamkitError naming the file
    when it is missing, truncated, corrupt, or larger than the pixel limit (a decompression
    bomb guard: PIL's limit by default, ``$CAMKIT_MAX_PIXELS`` up to twice that)."""
    import warnings

    limit = _max_pixels()
    try:
        with image_errors(path), warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # checked here instead
            with Image.open(path) as im:  # reads the header only
                if im.width * im.height > limit:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height}")
                im.load()
                return to_rgb(im)
    except Image.DecompressionBombError as e:
        hard = 2 * (Image.MAX_IMAGE_PIXELS or 0)  # PIL refuses these itself, before camkit's check
        if hard and limit > hard and str(e).startswith("Image size"):
            raise CamkitError(
                f"{path}: the image is larger than PIL's own hard limit of {hard:,} pixels, which "
                f"$CAMKIT_MAX_PIXELS ({limit:,}) cannot lift; downscale the file"
            ) from None
        raise CamkitError(
            f"{path}: the image is larger than the {limit:,}-pixel limit ({e.args[0] if e.args else ''}; a "
            "decompression bomb guard); raise $CAMKIT_MAX_PIXELS if you trust the file"
        ) from None


def read_mask(path: Path) -> np.ndarray:
    """Read a binary mask as an (H, W) bool array (see module docstring for the rule)."""
    with image_errors(path, "mask"), Image.open(path) as im:
        im.load()
        if im.mode in ("1", "P", "I", "I;16", "I;16B", "I;16L"):
            arr = np.asarray(im)
            return (arr > 0) & (arr != 255) if im.mode == "P" else arr > 0
        return np.asarray(im.convert("L")) > 127


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header alone."""
    with image_errors(path, missing="file not found"), Image.open(path) as im:
        return im.size


def check_mask_sizes(records: list[Record]) -> None:
    """Every mask must have its image's size (headers only: fast)."""
    for r in records:
        if r.mask is not None:
            mw, mh = image_size(r.mask)
            iw, ih = image_size(r.path)
            if (mw, mh) != (iw, ih):
                raise CamkitError(
                    f"{r.mask}: mask is {mw}x{mh} but its image {r.path.name} is {iw}x{ih}; masks must match their images"
                )


def _find_with_ext(folder: Path, stem: str) -> Path | None:
    for ext in IMAGE_EXTS + tuple(e.upper() for e in IMAGE_EXTS):
        p = folder / f"{stem}{ext}"
        if p.is_file():
            return p
    return None


def _require_dir(path: Path, option: str, what: str) -> None:
    if not path.is_dir():
        raise OptionError(option, f"folder not found; pass the folder that holds {what}", path)


def scan_image_folder(
    root: str | os.PathLike[str], mask_root: str | os.PathLike[str] | None = None
) -> tuple[list[Record], list[str]]:
    """List ``ROOT/<class>/<image>`` files; returns (records, class names)."""
    root = Path(root)
    _require_dir(root, "root", "one sub-folder of images per class")
    classes = sorted(d.name for d in root.iterdir() if d.is_dir() and not d.name.startswith("."))
    if not classes:
        raise OptionError("root", "no class sub-folders; lay images out as ROOT/<class>/<image>", root)
    mroot = Path(mask_root) if mask_root else None
    if mroot is not None:
        _require_dir(mroot, "mask_root", "masks laid out as MASKS/<class>/<stem>.png")
    records = []
    for label, cls in enumerate(classes):
        for p in sorted((root / cls).iterdir()):
            if p.suffix.lower() in IMAGE_EXTS and p.is_file():
                mask = _find_with_ext(mroot / cls, p.stem) if mroot is not None else None
                records.append(Record(p, label, mask))
    if not records:
        raise OptionError("root", f"no images found (extensions: {', '.join(IMAGE_EXTS)})", root)
    return records, classes


def read_list_file(list_file: Path, image_dir: Path, num_classes: int | None = None) -> list[Record]:
    """Parse a ``name label`` list; every named image must exist and every label be in range."""
    if not list_file.is_file():
        raise CamkitError(f"{list_file}: list file not found; it should hold one 'name label' per line")
    _require_dir(image_dir, "root", f"the images named in {list_file.name}")
    records = []
    for n, line in enumerate(list_file.read_text().splitlines(), start=1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 2:
            raise CamkitError(f"{list_file}:{n}: expected 'name label', got {line.strip()!r}")
        name, lab = parts
        try:
            label = int(lab)
        except ValueError:
            raise CamkitError(f"{list_file}:{n}: label {lab!r} is not an integer") from None
        if label < 0 or (num_classes is not None and label >= num_classes):
            raise CamkitError(
                f"{list_file}:{n}: label {label} out of range 0..{(num_classes or 1) - 1}; fix the list or {{num_classes}}",
                refs={"num_classes": None},
            )
        path = image_dir / name
        if not path.is_file():
            found = _find_with_ext(image_dir, Path(name).stem) if not Path(name).suffix else None
            if found is None:
                raise CamkitError(
                    f"{list_file}:{n}: image {path} does not exist; fix the list or add the image"
                )
            path = found
        records.append(Record(path, label))
    if not records:
        raise CamkitError(f"{list_file}: the list is empty")
    return records


def scan_lab_layout(root: str | os.PathLike[str], split: str, num_classes: int = 10) -> list[Record]:
    """Records of the lab's CIFAR-10 layout for split ``train``, ``test`` or ``seg``."""
    root = Path(root)
    _require_dir(root, "root", "train/, test/, train_cls.txt and test_cls.txt")
    if split in ("train", "test"):
        return read_list_file(root / f"{split}_cls.txt", root / split, num_classes)
    if split != "seg":
        raise CamkitError(f"split {split!r}: the lab layout has train, test and seg")
    src, seg = root / "test_seg_source", root / "test_seg"
    _require_dir(src, "root", "test_seg_source/ (images with masks)")
    _require_dir(seg, "root", "test_seg/ (masks for test_seg_source/)")
    labels: dict[str, int] = {}
    if (root / "test_cls.txt").is_file():
        labels = {
            r.path.stem: r.label for r in read_list_file(root / "test_cls.txt", root / "test", num_classes)
        }
    records = []
    for p in sorted(src.iterdir()):
        if p.suffix.lower() in IMAGE_EXTS:
            mask = _find_with_ext(seg, p.stem)
            if mask is None:
                raise CamkitError(f"{seg}: no mask for {p.name}; add {p.stem}.png or remove the image")
            records.append(Record(p, labels.get(p.stem, -1), mask))
    if not records:
        raise CamkitError(f"{src}: no images found")
    return records


def find_images(
    root_or_paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], option: str = "images"
) -> list[Path]:
    """Image files (by :data:`IMAGE_EXTS`, case-insensitive), sorted, folders searched recursively.

    One path: a folder of images (``option`` names the parameter in the one-line errors:
    folder not found, no images). A sequence: image files and folders, in the given order,
    each folder's images sorted; a missing path or an image-less folder is a one-line error.
    """
    if isinstance(root_or_paths, (str, os.PathLike)):
        root = Path(root_or_paths)
        if not root.is_dir():
            raise OptionError(option, "folder not found", root)
        found = _images_under(root)
        if not found:
            raise OptionError(option, f"no images found (extensions: {', '.join(IMAGE_EXTS)})", root)
        return found
    out: list[Path] = []
    for item in root_or_paths:
        p = Path(item)
        if p.is_dir():
            found = _images_under(p)
            if not found:
                raise CamkitError(f"{p}: no images in this folder (extensions: {', '.join(IMAGE_EXTS)})")
            out += found
        elif p.is_file():
            out.append(p)
        else:
            raise CamkitError(f"{p}: no such image file or folder")
    if not out:
        raise CamkitError("give at least one image file or folder")
    return out


def _images_under(root: Path) -> list[Path]:
    return sorted(q for q in root.rglob("*") if q.is_file() and q.suffix.lower() in IMAGE_EXTS)
