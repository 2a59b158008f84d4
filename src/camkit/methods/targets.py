"""Targets beyond a class id: small callables that turn a model's output into one score per
sample, whose maps the methods then explain (as pytorch-grad-cam's ``model_targets``).

A target is any callable ``target(output) -> (B,)``: ``output`` is the model's raw output for
a batch of B inputs (a tensor, a dict, a Hugging Face ``ModelOutput``, a detector's list of
per-image dicts), and the result holds one differentiable score per input. Pass one target for
the whole batch, or a list of B targets, one per input (each is evaluated on the batch, and
map i uses target i on input i). Perturbation methods (score-cam, ablation-cam) call the target
on batches of perturbed copies of one input, so a target must score each row on its own.

Write your own in a few lines, e.g. the sum of two classes::

    def two_classes(output):
        logits = find_logits(output)
        return logits[:, 3] + logits[:, 7]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from camkit.core.errors import CamkitError, OptionError

Target = Callable[[Any], torch.Tensor]
Targets = (
    None | int | str | Sequence[int] | Sequence[Sequence[int]] | torch.Tensor | Target | Sequence[Target]
)


def _describe(output: Any) -> str:
    if isinstance(output, torch.Tensor):
        return f"a tensor {tuple(output.shape)}"
    if isinstance(output, dict):
        return "a dict with keys " + ", ".join(map(str, output))
    if isinstance(output, (tuple, list)):
        return f"{len(output)} outputs ({', '.join(_describe(o) for o in output[:4])})"
    return type(output).__name__


def find_logits(output: Any) -> torch.Tensor:
    """The (B, K) logits of a model output: the tensor itself, a ``.logits`` attribute (Hugging
    Face), a dict's ``logits`` (or its only 2-D tensor), or the first element of a tuple when no
    other element is a tensor of the same shape. A one-line error otherwise."""
    if isinstance(output, torch.Tensor):
        return output
    logits = getattr(output, "logits", None)
    if isinstance(logits, torch.Tensor):
        return logits
    if isinstance(output, dict):
        if isinstance(output.get("logits"), torch.Tensor):
            return output["logits"]
        two_d = [v for v in output.values() if isinstance(v, torch.Tensor) and v.ndim == 2]
        if len(two_d) == 1:
            return two_d[0]
    elif isinstance(output, (tuple, list)) and output and isinstance(output[0], torch.Tensor):
        first = output[0]
        if not any(isinstance(o, torch.Tensor) and o.shape == first.shape for o in output[1:]):
            return first
    raise CamkitError(
        f"the model returns {_describe(output)} and none is clearly the (B, K) logits; "
        "pass a target callable (camkit.methods.targets) that scores the output, or wrap the model"
    )


def target_scores(targets: Sequence[Target], output: Any, batch: int) -> torch.Tensor:
    """(B, T): column j is ``targets[j](output)``, checked to be one score per sample."""
    cols = []
    for t in targets:
        s = t(output)
        if not isinstance(s, torch.Tensor):
            s = torch.as_tensor(s)
        if s.ndim == 0 and batch == 1:
            s = s.reshape(1)
        if s.ndim != 1 or s.shape[0] != batch:
            raise OptionError(
                "targets",
                f"the target callable returned shape {tuple(s.shape)} for a batch of {batch}; "
                f"it must return one score per sample, shape ({batch},) (sum over the other dims)",
                getattr(t, "__name__", type(t).__name__),
            )
        cols.append(s)
    return torch.stack(cols, dim=1)


def expand_targets(targets: Targets, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Turn a target spec into (sample, class) pairs, each (N,) int64 on ``logits``' device.

    Accepted: None or "pred" (the top class); "topK" (e.g. "top3": the K best classes, best
    first); an int (that class for every sample); a (B,) sequence/tensor of class ids (one per
    sample); a (B, K) multi-hot tensor or a list of per-sample class lists (every class present).
    """
    b, k = logits.shape
    dev = logits.device
    rows = torch.arange(b, device=dev)
    if targets is None or targets == "pred":
        return rows, logits.argmax(1)
    if isinstance(targets, str):
        if targets.startswith("top") and targets[3:].isdigit() and 1 <= int(targets[3:]) <= k:
            n = int(targets[3:])
            return rows.repeat_interleave(n), logits.topk(n, dim=1).indices.flatten()
        raise OptionError(
            "targets", f"use pred, topK (K <= {k}), a class id, or class ids per image", targets
        )
    if isinstance(targets, int):
        cls = torch.full((b,), targets, device=dev, dtype=torch.long)
        return rows, _checked(cls, k)
    if isinstance(targets, torch.Tensor) and targets.ndim == 2:
        if tuple(targets.shape) != (b, k):
            raise CamkitError(f"multi-hot targets must be ({b}, {k}), got {tuple(targets.shape)}")
        s, c = torch.nonzero(targets.to(dev) > 0, as_tuple=True)
        return s, c
    if isinstance(targets, (list, tuple)) and targets and isinstance(targets[0], (list, tuple)):
        if len(targets) != b:
            raise CamkitError(f"got target lists for {len(targets)} images but the batch has {b}")
        samples = [i for i, t in enumerate(targets) for _ in t]
        classes = [int(x) for t in targets for x in t]
        return torch.tensor(samples, device=dev, dtype=torch.long), _checked(
            torch.tensor(classes, device=dev, dtype=torch.long), k
        )
    cls = torch.as_tensor(targets, device=dev, dtype=torch.long).flatten()
    if cls.numel() != b:
        raise CamkitError(f"got {cls.numel()} target classes for a batch of {b}; give one per image")
    return rows, _checked(cls, k)


def _checked(cls: torch.Tensor, k: int) -> torch.Tensor:
    if cls.numel() and (int(cls.min()) < 0 or int(cls.max()) >= k):
        bad = int(cls.max()) if int(cls.max()) >= k else int(cls.min())
        raise OptionError("targets", f"class id out of range 0..{k - 1}", bad)
    return cls


def scorers_of(targets: Targets, batch: int) -> list[Target] | None:
    """Target callables as a list (one for the batch, or one per input), None for class ids."""
    if callable(targets) and not isinstance(targets, torch.Tensor):
        return [targets]
    if isinstance(targets, (list, tuple)) and targets and all(callable(t) for t in targets):
        if len(targets) != batch:
            raise OptionError(
                "targets",
                f"got {len(targets)} target callables for a batch of {batch}; give one per input or one for all",
            )
        return list(targets)
    return None


class ClassTarget:
    """The logit of class ``category``: (B,)."""

    def __init__(self, category: int) -> None:
        self.category = int(category)

    def __call__(self, output: Any) -> torch.Tensor:
        return find_logits(output)[:, self.category]


class RegressionTarget:
    """A regression output: ``output[:, index]`` (or the (B,) output itself), times ``sign``
    (-1 explains what lowers the prediction)."""

    def __init__(self, index: int | None = None, sign: float = 1.0) -> None:
        self.index, self.sign = index, sign

    def __call__(self, output: Any) -> torch.Tensor:
        y = find_logits(output)
        if y.ndim == 2 and self.index is not None:
            y = y[:, self.index]
        elif y.ndim == 2 and y.shape[1] == 1:
            y = y[:, 0]
        return self.sign * y


class SegmentationRegionTarget:
    """The sum of class ``category``'s logits over a region: sum_ij out[b, c, i, j] · mask[i, j].

    ``output``: (B, K, h, w) logits, torchvision's dict (key ``out``) or a ``.logits``
    attribute. ``mask``: (H, W), bool or float weights; resized (nearest) to (h, w) if needed.
    """

    def __init__(self, category: int, mask: torch.Tensor) -> None:
        self.category = int(category)
        self.mask = torch.as_tensor(mask)
        if self.mask.ndim != 2:
            raise OptionError("mask", f"must be (H, W), got {tuple(self.mask.shape)}")

    def __call__(self, output: Any) -> torch.Tensor:
        if isinstance(output, dict) and "out" in output:
            output = output["out"]
        seg = getattr(output, "logits", output)
        if not isinstance(seg, torch.Tensor) or seg.ndim != 4:
            raise CamkitError(
                f"a segmentation target needs (B, K, h, w) logits; the model returns {_describe(output)}"
            )
        m = self.mask.to(seg.device, seg.dtype)
        if tuple(m.shape) != tuple(seg.shape[-2:]):
            m = F.interpolate(m[None, None], size=seg.shape[-2:], mode="nearest")[0, 0]
        return (seg[:, self.category] * m).sum(dim=(-2, -1))


class BoxScoreTarget:
    """Detection: for each wanted (box, label), the detection of that label that overlaps it
    most (IoU > ``iou_threshold``) adds IoU + score, per image (pytorch-grad-cam's
    FasterRCNNBoxScoreTarget). ``output``: torchvision's per-image list of dicts with
    ``boxes`` (M, 4), ``labels`` (M,), ``scores`` (M,) (Faster R-CNN, RetinaNet, FCOS).
    ``boxes``: (T, 4) xyxy; ``labels``: (T,)."""

    def __init__(self, labels: Sequence[int], boxes: torch.Tensor, iou_threshold: float = 0.5) -> None:
        self.labels = [int(c) for c in labels]
        self.boxes = torch.as_tensor(boxes, dtype=torch.float32).reshape(-1, 4)
        self.iou_threshold = iou_threshold

    def __call__(self, output: Any) -> torch.Tensor:
        from torchvision.ops import box_iou

        if not (isinstance(output, (list, tuple)) and all(isinstance(d, dict) for d in output)):
            raise CamkitError(
                f"a box target needs a detector's list of per-image dicts; the model returns {_describe(output)}"
            )
        scores = []
        for det in output:
            s = det["scores"].new_zeros(())
            if len(det["boxes"]):
                wanted = self.boxes.to(det["boxes"].device)
                with torch.no_grad():
                    best = box_iou(wanted, det["boxes"]).max(dim=1)
                for j, label in enumerate(self.labels):
                    k = int(best.indices[j])
                    if float(best.values[j]) > self.iou_threshold and int(det["labels"][k]) == label:
                        # the IoU of the matched pair only: degenerate boxes elsewhere (zero
                        # union) would put NaNs in the gradient of the full matrix
                        s = s + box_iou(wanted[j : j + 1], det["boxes"][k : k + 1])[0, 0] + det["scores"][k]
            scores.append(s)
        return torch.stack(scores)


class EmbeddingSimilarityTarget:
    """Cosine similarity of the model's embedding to ``reference`` (D,) (e.g. another image's
    embedding, or a text embedding for CLIP): (B,). The embedding is a (B, D) output, or the
    output's ``image_embeds`` or ``pooler_output``."""

    def __init__(self, reference: torch.Tensor) -> None:
        self.reference = torch.as_tensor(reference).detach().flatten()

    def __call__(self, output: Any) -> torch.Tensor:
        emb = output
        for key in ("image_embeds", "pooler_output"):
            if not isinstance(emb, torch.Tensor) and isinstance(getattr(output, key, None), torch.Tensor):
                emb = getattr(output, key)
        if not isinstance(emb, torch.Tensor) or emb.ndim != 2:
            raise CamkitError(
                f"an embedding target needs (B, D) embeddings; the model returns {_describe(output)}"
            )
        ref = self.reference.to(emb.device, emb.dtype)
        return F.cosine_similarity(emb, ref[None], dim=1)
