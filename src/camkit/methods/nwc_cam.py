"""NWC-CAM: CAM with negative weight clamping (Bae et al., "Rethinking Class Activation
Mapping for Weakly Supervised Object Localization", ECCV 2020):

    M_c = sum_k max(w_{c,k}, 0) A_k

Channels that vote against the class are dropped, so they cannot cancel object regions that
also activate positively weighted channels.
"""

from __future__ import annotations

import torch

from camkit.methods.cam import CAM
from camkit.methods.registry import register


@register("nwc-cam")
class NWCCAM(CAM):
    reference = "Bae et al., Rethinking Class Activation Mapping for WSOL, ECCV 2020"

    def class_weights(self, weight: torch.Tensor) -> torch.Tensor:
        return weight.clamp(min=0)
