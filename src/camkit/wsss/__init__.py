"""camkit.wsss"""

from camkit.wsss.crf import dense_crf

__all__ = ["dense_crf"]
