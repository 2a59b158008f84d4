"""WSOL metrics, exactly as clovaai/wsolevaluation (Choe et al., CVPR 2020) defines them.

Conventions (all from wsolevaluation):

* Score maps are min-max normalized to [0, 1] before scoring (camkit does this upstream).
* Boxes: the map is quantized to uint8 as ``floor(255 · s)``; at CAM threshold t a pixel is on
  when its uint8 score is ``> int(t · max)``, the uint8 maximum of that map. OpenCV contours
  (``RETR_TREE``, ``CHAIN_APPROX_SIMPLE``) of the on-pixels give boxes ``(x, y, x+w, y+h)``
  from ``boundingRect``, clipped to ``(W-1, H-1)``; note that x+w is one past the blob's last
  column, a quirk of the reference kept here so that numbers compare. MaxBoxAcc keeps the contour of largest
  ``contourArea``; MaxBoxAccV2 keeps every contour. No contour gives the box (0, 0, 0, 0).
* Box IoU counts pixels inclusively: the area of (x0, y0, x1, y1) is (x1-x0+1)(y1-y0+1); a
  box pair with a non-positive union scores 0.
* MaxBoxAcc: the share (%) of images whose best box IoU with any ground-truth box is >= 0.5,
  at the best CAM threshold. MaxBoxAccV2: the same with all contours, averaged over IoU
  thresholds 0.3, 0.5 and 0.7, each at its own best CAM threshold.
* CAM thresholds run 0, step, 2·step, … below 1 (``np.arange(0, 1, step)``), step 0.01 by default.
* PxAP: pixel precision-recall over the same thresholds, from histograms with right edges
  ``thresholds + [1, 2, 3]``; AP = 100 · sum_i precision_i · (recall_i - recall_{i-1}).
  Mask pixels labelled 255 are ignored.
"""

from __future__ import annotations

import numpy as np
import torch

from camkit.core.errors import CamkitError, OptionError
from camkit.metrics.iou import iou_from_counts

IOU_THRESHOLDS_V2 = (30, 50, 70)


def cam_thresholds(step: float = 0.01) -> np.ndarray:
    """wsolevaluation's CAM thresholds: ``np.arange(0, 1, step)`` (float64)."""
    if not 0 < step < 1:
        raise OptionError("step", "must be between 0 and 1", step)
    return np.arange(0, 1, step)


def _check_map(scoremap: torch.Tensor) -> None:
    if scoremap.ndim != 2:
        raise CamkitError(f"a score map must be (H, W), got {tuple(scoremap.shape)}")
    if torch.isnan(scoremap).any():
        raise CamkitError("the score map contains NaN; check the model's outputs")


def boxes_from_scoremap(
    scoremap: torch.Tensor, thresholds: np.ndarray, multi_contour: bool = False
) -> list[np.ndarray]:
    """Estimated boxes at each CAM threshold: a list (T) of (K_t, 4) int arrays, x0y0x1y1.

    scoremap: (H, W) float in [0, 1].
    """
    import cv2

    _check_map(scoremap)
    h, w = scoremap.shape
    u8 = (scoremap.detach().cpu().numpy().astype(np.float32) * 255).astype(np.uint8)
    top = int(u8.max())
    out: list[np.ndarray] = []
    cache: dict[int, np.ndarray] = {}
    for t in thresholds:
        k = int(t * top)
        if k not in cache:
            binary = cv2.threshold(u8, k, 255, cv2.THRESH_BINARY)[1]
            contours = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
            if not contours:
                cache[k] = np.zeros((1, 4), dtype=np.int64)
            else:
                if not multi_contour:
                    contours = [max(contours, key=cv2.contourArea)]
                boxes = []
                for c in contours:
                    x, y, bw, bh = cv2.boundingRect(c)
                    boxes.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
                cache[k] = np.asarray(boxes, dtype=np.int64)
        out.append(cache[k])
    return out


def box_iou(a: torch.Tensor | np.ndarray, b: torch.Tensor | np.ndarray) -> torch.Tensor:
    """Pairwise IoU of inclusive pixel boxes. (N, 4), (M, 4) x0y0x1y1 -> (N, M) float64."""
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a, dtype=torch.float64)
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b, dtype=torch.float64)
    if ((a[:, 2] < a[:, 0]) | (a[:, 3] < a[:, 1])).any() or ((b[:, 2] < b[:, 0]) | (b[:, 3] < b[:, 1])).any():
        raise CamkitError("boxes must be (x0, y0, x1, y1) with x1 >= x0 and y1 >= y0")
    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt + 1).clamp(min=0).prod(-1)
    area_a = ((a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1))[:, None]
    area_b = ((b[:, 2] - b[:, 0] + 1) * (b[:, 3] - b[:, 1] + 1))[None, :]
    return iou_from_counts(inter, area_a - inter, area_b - inter, empty=0.0)


class BoxAccuracy:
    """Streaming MaxBoxAcc / MaxBoxAccV2, GT-known and top-1 localization.

    ``update(maps, gt_boxes, correct=None)``: maps (B, H, W) in [0, 1]; gt_boxes a list of
    (K_i, 4) inclusive boxes per image; ``correct`` (B,) bool, top-1 classification hits.
    Memory is O(thresholds), whatever the number of images.
    """

    def __init__(
        self, step: float = 0.01, iou_thresholds: tuple[int, ...] = (50,), multi_contour: bool = False
    ) -> None:
        self.thresholds = cam_thresholds(step)
        self.iou_thresholds = tuple(iou_thresholds)
        self.multi_contour = multi_contour
        t = len(self.thresholds)
        self.hits = {d: np.zeros(t, dtype=np.int64) for d in self.iou_thresholds}
        self.hits_top1 = {d: np.zeros(t, dtype=np.int64) for d in self.iou_thresholds}
        self.count = 0
        self.has_correct = False

    def update(self, maps: torch.Tensor, gt_boxes: list, correct: torch.Tensor | None = None) -> None:
        if len(gt_boxes) != maps.shape[0]:
            raise CamkitError(f"{maps.shape[0]} maps but {len(gt_boxes)} box lists")
        # OpenCV releases the GIL, so images run in parallel threads
        from concurrent.futures import ThreadPoolExecutor

        workers = max(1, min(torch.get_num_threads(), maps.shape[0]))
        with ThreadPoolExecutor(workers) as pool:
            all_est = list(
                pool.map(
                    lambda m: boxes_from_scoremap(m, self.thresholds, self.multi_contour), maps.unbind(0)
                )
            )
        for i, est in enumerate(all_est):
            sizes = [len(e) for e in est]
            ious = box_iou(np.concatenate(est), np.asarray(gt_boxes[i]).reshape(-1, 4)).max(1).values
            best = torch.stack([s.max() for s in torch.split(ious, sizes)]).numpy()  # (T,)
            for d in self.iou_thresholds:
                ok = best >= d / 100
                self.hits[d] += ok
                if correct is not None:
                    self.hits_top1[d] += ok & bool(correct[i])
            self.count += 1
        self.has_correct = self.has_correct or correct is not None

    def compute(self) -> dict[str, object]:
        if self.count == 0:
            raise CamkitError("no images were scored for box accuracy")
        out: dict[str, object] = {
            "images": self.count,
            "thresholds": [round(float(t), 6) for t in self.thresholds],
        }
        per = {}
        for d in self.iou_thresholds:
            acc = self.hits[d] * 100.0 / self.count
            k = int(acc.argmax())
            per[d] = {
                "max_box_acc": float(acc[k]),
                "best_threshold": round(float(self.thresholds[k]), 6),
                "curve": acc.tolist(),
            }
            if self.has_correct:
                per[d]["top1_loc"] = float(self.hits_top1[d][k] * 100.0 / self.count)
        out["per_iou"] = per
        out["max_box_acc"] = float(np.mean([per[d]["max_box_acc"] for d in self.iou_thresholds]))
        return out


class PxAP:
    """Streaming pixel average precision (wsolevaluation's MaskEvaluator), in percent.

    ``update(maps, masks)``: maps (B, H, W) in [0, 1]; masks (B, H, W) uint8/bool with 1 for
    foreground, 0 background, 255 ignored.
    """

    def __init__(self, step: float = 0.01) -> None:
        self.thresholds = cam_thresholds(step)
        self.edges = torch.tensor(np.append(self.thresholds, [1.0, 2.0, 3.0]), dtype=torch.float64)
        nb = len(self.edges) - 1
        self.pos = torch.zeros(nb, dtype=torch.float64)
        self.neg = torch.zeros(nb, dtype=torch.float64)

    def _hist(self, v: torch.Tensor) -> torch.Tensor:
        e = self.edges.to(v.device)
        idx = torch.bucketize(v.to(torch.float64), e, right=True) - 1
        idx = torch.where(
            v.to(torch.float64) == e[-1], torch.full_like(idx, len(e) - 2), idx
        )  # last bin is closed
        keep = (idx >= 0) & (idx < len(e) - 1)
        return torch.bincount(idx[keep], minlength=len(e) - 1).to(torch.float64).cpu()

    def update(self, maps: torch.Tensor, masks: torch.Tensor) -> None:
        if maps.shape != masks.shape:
            raise CamkitError(f"map and mask sizes differ: {tuple(maps.shape)} vs {tuple(masks.shape)}")
        if torch.isnan(maps).any():
            raise CamkitError("the maps contain NaN; check the model's outputs")
        m = masks.to(torch.int64)
        self.pos += self._hist(maps[m == 1])
        self.neg += self._hist(maps[m == 0])

    def curve(self) -> tuple[np.ndarray, np.ndarray]:
        """(precision, recall) over the bins, from the highest threshold down."""
        tp = self.pos.flip(0).cumsum(0)
        fp = self.neg.flip(0).cumsum(0)
        fn = self.pos.sum() - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = (tp / (tp + fp)).numpy()
            recall = (tp / (tp + fn)).numpy()
        return precision, recall

    def compute(self) -> float:
        tp = self.pos.flip(0).cumsum(0)
        fp = self.neg.flip(0).cumsum(0)
        if self.pos.sum() <= 0:
            raise CamkitError("PxAP needs ground-truth foreground pixels; every mask is empty")
        precision, recall = self.curve()
        nonzero = ((tp + fp) != 0).numpy()
        terms = precision[1:] * np.diff(recall)
        return float(np.nan_to_num(terms[nonzero[1:]]).sum() * 100)
