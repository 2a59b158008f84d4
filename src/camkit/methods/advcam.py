"""AdvCAM: anti-adversarially manipulated attributions (Lee et al., "Anti-Adversarially
Manipulated Attributions for Weakly and Semi-Supervised Semantic Segmentation", CVPR 2021).

The image is pushed *toward* its class (anti-adversarial climbing) and the CAMs of the
iterates are summed. For the pair (image x, class c), with x^0 = x and t = 0 .. K-1:

    L(x^t) = y_c(x^t) - sum_{k != c} y_k(x^t) - lam * || M^t ⊙ |A(x^t) - A(x^0)| ||_1
    g      = d L / d x^t
    x^{t+1} = clamp(x^t + xi * g / (max|g| + 1e-12),  min x^t, max x^t)

    AdvCAM_c(x) = sum_{t=0}^{K} CAM_c(x^t)

``y`` are the model's logits; ``A = ReLU(CAM_c)`` at feature resolution; the restriction mask
``M^t = 1[A(x^t) / max A(x^t) > tau]`` marks the regions already highly activated, and the
``lam`` term keeps them from growing further, so the climb spreads attribution into new
regions; the ``- sum_{k != c} y_k`` term keeps other classes from rising with it. ``max|g|``,
``min x^t`` and ``max x^t`` are taken per (image, class) pair. The step, the mask from the
current iterate, and the clamp follow the authors' ``obtain_CAM_masking.py``. Two deliberate
differences: the authors score ``y = GAP(ReLU(class maps))`` of their CAM network, camkit uses
the model's logits (the paper's ``y``), so any GAP-linear classifier works; and the maps summed
are the raw CAMs (as :class:`camkit.methods.cam.CAM` returns them; camkit normalizes when
scoring), so ``steps=0`` is exactly CAM. The authors' loop sums the CAMs of x^0 .. x^{K-1};
the paper's sum, used here, runs to x^K.

Defaults are the paper's VOC settings: K = 27, xi = 0.08, lam = 7, tau = 0.5.
Cost: K forward+backward passes over the N (image, class) pairs, plus one forward of the N
pairs and the base's forward of the B images (:attr:`AdvCAM.passes` after a call).
"""

from __future__ import annotations

import logging
import math
from typing import Any

import torch
from torch import nn

from camkit.core.errors import OptionError
from camkit.methods.base import LayerSpec, find_classifier, weighted_sum
from camkit.methods.cam import CAM
from camkit.methods.registry import register

log = logging.getLogger(__name__)


def climb_step(x: torch.Tensor, grad: torch.Tensor, xi: float) -> torch.Tensor:
    """One anti-adversarial step per pair: x (N, C, H, W) plus ``xi`` times the gradient scaled
    by its largest magnitude in that pair, clamped to the pair's current [min, max]."""
    dims = tuple(range(1, x.ndim))
    scale = grad.abs().amax(dim=dims, keepdim=True) + 1e-12
    lo = x.amin(dim=dims, keepdim=True)
    hi = x.amax(dim=dims, keepdim=True)
    return torch.minimum(torch.maximum(x + xi * grad / scale, lo), hi)


def restriction_mask(act: torch.Tensor, tau: float) -> torch.Tensor:
    """M = 1[A / max A > tau] per map: (N, h, w) non-negative maps -> (N, h, w) float mask."""
    peak = act.flatten(1).amax(dim=1).clamp_min(1e-12)[:, None, None]
    return (act / peak > tau).to(act.dtype)


def advcam_objective(
    logits: torch.Tensor,
    target: torch.Tensor,
    cam: torch.Tensor,
    cam0: torch.Tensor,
    lam: float,
    tau: float,
) -> torch.Tensor:
    """The per-pair climbing objective L (N,): logits (N, K), target (N,), cam and cam0 (N, h, w)
    the raw CAMs of class ``target`` at the iterate and at the start."""
    y_c = logits.gather(1, target[:, None])[:, 0]
    others = logits.sum(1) - y_c
    act, act0 = torch.relu(cam), torch.relu(cam0)
    mask = restriction_mask(act.detach(), tau)
    l_ad = ((act - act0).abs() * mask).flatten(1).sum(1)
    return y_c - others - lam * l_ad


@register("advcam")
class AdvCAM(CAM):
    """AdvCAM (Lee et al., CVPR 2021): the sum of the CAMs of K anti-adversarial iterates of the
    image, with the restriction mask and the other-class regularizer (formula in the module).

    Options: ``adv_steps`` (K), ``adv_xi`` (step size xi), ``adv_lam`` (weight lam of the
    restriction term), ``adv_threshold`` (tau of the mask). Needs a GAP-linear head, as CAM. Eval mode is the caller's job
    (BatchNorm in train mode would mix the pairs of a batch).
    """

    needs = "GAP-linear head; K forwards+backwards"
    reference = (
        "Lee et al., Anti-Adversarially Manipulated Attributions for Weakly and Semi-Supervised "
        "Semantic Segmentation, CVPR 2021"
    )
    uses_gradients = True
    extra_options = ("adv_steps", "adv_xi", "adv_lam", "adv_threshold")

    def __init__(
        self,
        model: nn.Module,
        target_layers: LayerSpec = None,
        adv_steps: int = 27,
        adv_xi: float = 0.08,
        adv_lam: float = 7.0,
        adv_threshold: float = 0.5,
        **kw: Any,
    ) -> None:
        steps, xi, lam, tau = adv_steps, adv_xi, adv_lam, adv_threshold
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise OptionError("adv_steps", "the number of climbing steps K must be an integer >= 0", steps)
        if not (isinstance(xi, (int, float)) and math.isfinite(xi) and xi > 0):
            raise OptionError("adv_xi", "the step size must be a number > 0 (the paper uses 0.08)", xi)
        if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
            raise OptionError(
                "adv_lam", "the restriction weight must be a number >= 0 (the paper uses 7)", lam
            )
        if not (isinstance(tau, (int, float)) and 0 <= tau <= 1):
            raise OptionError("adv_threshold", "must be in [0, 1] (the paper uses 0.5)", tau)
        super().__init__(model, target_layers, **kw)
        self.steps, self.xi, self.lam, self.tau = steps, float(xi), float(lam), float(tau)
        #: model passes of the last call: {"forward": ..., "backward": ...}
        self.passes: dict[str, int] = {"forward": 0, "backward": 0}

    def _cam_logits(
        self, x: torch.Tensor, w: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(CAM (N, h, w), logits (N, K)) of the N inputs ``x`` for classes ``target``."""
        self._capture = True
        try:
            logits = self.forward(x)
        finally:
            self._capture = False
        return weighted_sum(self._acts[0], w), logits

    def compute(
        self,
        x: torch.Tensor,
        acts: list[torch.Tensor],
        logits: torch.Tensor,
        sample: torch.Tensor,
        target: torch.Tensor,
        create_graph: bool,
    ) -> list[torch.Tensor]:
        """The sum of the raw CAMs of x^0 .. x^K for each pair: one (N, h, w) map. The climbing
        steps run outside the caller's graph (only the x^0 term stays differentiable)."""
        if self._scorers is not None:
            raise OptionError("targets", "advcam climbs toward class logits; give class ids, not a callable")
        if self._fc is None or self._fc.in_features != acts[0].shape[1]:
            self._fc = find_classifier(self.model, acts[0].shape[1], self.classifier)
        w = self.class_weights(self._fc.weight)[target]
        cam0 = weighted_sum(acts[0][sample], w)
        self.passes = {"forward": 1, "backward": 0}
        if self.steps == 0:
            return [cam0]
        wd = w.detach()
        xt = x[sample].detach()
        total = cam0
        start: torch.Tensor | None = None
        with torch.enable_grad():
            for _ in range(self.steps):
                xt = xt.requires_grad_(True)
                cam, out = self._cam_logits(xt, wd, target)
                if start is None:
                    start = cam.detach()
                else:
                    total = total + cam.detach()
                loss = advcam_objective(out, target, cam, start, self.lam, self.tau).sum()
                (grad,) = torch.autograd.grad(loss, xt)
                xt = climb_step(xt.detach(), grad, self.xi)
                self.passes["forward"] += 1
                self.passes["backward"] += 1
        with torch.no_grad():
            cam, _ = self._cam_logits(xt, wd, target)
        self.passes["forward"] += 1
        log.debug(
            "advcam: %d pairs, %d forward and %d backward passes",
            len(target),
            self.passes["forward"],
            self.passes["backward"],
        )
        return [total + cam]
