"""Speed and memory of the metrics, side by side in one run.

    .venv/bin/python benchmarks/bench_metrics.py          # ~2 min on 2 CPU cores

1. IoU sweep: 1000 maps x 100 thresholds (+1), camkit's one-pass histogram sweep against a
   plain loop that thresholds and scores every map at every threshold.
2. MaxBoxAcc: camkit's BoxAccuracy against the wsolevaluation formulation (per threshold:
   cv2.threshold, findContours, the largest contour's box, then a tiled box-IoU), written out
   here from its published description. Both must give the same accuracy curve.
3. Memory: peak RSS of a subprocess streaming N maps through IoUSweep + PxAP + BoxAccuracy,
   for growing N.
"""

from __future__ import annotations

import resource
import statistics
import subprocess
import sys
import time

import numpy as np
import torch


def med(fn, reps: int = 3) -> float:  # type: ignore[no-untyped-def]
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def smooth_maps(n: int, size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 1, 7, 7, generator=g)
    maps = torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False)[:, 0]
    maps = (maps - maps.amin((1, 2), keepdim=True)) / (
        maps.amax((1, 2), keepdim=True) - maps.amin((1, 2), keepdim=True)
    )
    gt = maps + 0.3 * torch.rand(n, size, size, generator=g) > 0.8
    return maps, gt


def sweep_bench() -> None:
    from camkit.metrics.iou import default_thresholds, iou, iou_curve

    maps, gt = smooth_maps(1000, 112)
    thr = default_thresholds(0.01)

    def ours() -> torch.Tensor:
        return iou_curve(maps, gt, thr).mean(0)

    def loop() -> torch.Tensor:
        return torch.stack([iou(maps >= float(t), gt).double().mean() for t in thr])

    assert torch.allclose(ours(), loop(), atol=1e-6)
    t_ours, t_loop = med(ours), med(loop)
    print(f"IoU sweep, 1000 maps of 112x112 x 101 thresholds: camkit {t_ours * 1e3:.0f} ms, per-threshold loop "
          f"{t_loop * 1e3:.0f} ms -> {t_loop / t_ours:.1f}x faster")  # fmt: skip


def reference_boxes(scoremap: np.ndarray, thresholds: np.ndarray) -> list[list[int]]:
    """wsolevaluation's formulation: contours at every threshold, largest contour's box."""
    import cv2

    h, w = scoremap.shape
    img = np.expand_dims((scoremap * 255).astype(np.uint8), 2)
    boxes = []
    for t in thresholds:
        _, th = cv2.threshold(img, int(t * np.max(img)), 255, cv2.THRESH_BINARY)
        contours = cv2.findContours(th, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)[0]
        if len(contours) == 0:
            boxes.append([0, 0, 0, 0])
            continue
        c = max(contours, key=cv2.contourArea)
        x, y, bw, bh = cv2.boundingRect(c)
        boxes.append([x, y, min(x + bw, w - 1), min(y + bh, h - 1)])
    return boxes


def reference_iou(box_a: np.ndarray, box_b: np.ndarray) -> np.ndarray:
    na, nb = len(box_a), len(box_b)
    a = np.tile(box_a, nb).reshape(na, nb, 4)
    b = np.tile(box_b, na).reshape(nb, na, 4).transpose(1, 0, 2)
    iw = np.maximum(0, np.minimum(a[..., 2], b[..., 2]) - np.maximum(a[..., 0], b[..., 0]) + 1)
    ih = np.maximum(0, np.minimum(a[..., 3], b[..., 3]) - np.maximum(a[..., 1], b[..., 1]) + 1)
    inter = iw * ih
    area_a = (a[..., 2] - a[..., 0] + 1) * (a[..., 3] - a[..., 1] + 1)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    den = area_a + area_b - inter
    return np.where(den > 0, inter / np.where(den > 0, den, 1), 0)


def box_bench() -> None:
    from camkit.metrics.wsol import BoxAccuracy, cam_thresholds

    maps, gt = smooth_maps(200, 224, seed=1)
    gt_boxes = []
    for m in gt:
        ys, xs = torch.nonzero(m, as_tuple=True)
        gt_boxes.append(np.array([[int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]]))
    thr = cam_thresholds(0.01)

    def ours() -> np.ndarray:
        acc = BoxAccuracy(0.01)
        acc.update(maps, gt_boxes)
        return np.array(acc.compute()["per_iou"][50]["curve"])

    def ref() -> np.ndarray:
        hits = np.zeros(len(thr))
        for m, g in zip(maps.numpy(), gt_boxes, strict=True):
            ious = reference_iou(np.array(reference_boxes(m, thr)), g)
            hits[np.where(ious.max(1) >= 0.5)[0]] += 1
        return hits * 100 / len(maps)

    assert np.allclose(ours(), ref()), "MaxBoxAcc curves differ"
    t_ours, t_ref = med(ours), med(ref)
    print(f"MaxBoxAcc, 200 maps of 224x224 x 100 thresholds: camkit {t_ours * 1e3:.0f} ms, wsolevaluation "
          f"formulation {t_ref * 1e3:.0f} ms -> {t_ref / t_ours:.2f}x; same curve")  # fmt: skip


CHILD = """
import resource, sys, torch
sys.path.insert(0, 'benchmarks')
from bench_metrics import smooth_maps
from camkit.metrics.iou import IoUSweep
from camkit.metrics.wsol import PxAP
n = int(sys.argv[1]); sweep, px = IoUSweep(), PxAP()
for i in range(0, n, 100):
    maps, gt = smooth_maps(100, 112, seed=i)
    sweep.update(maps, gt); px.update(maps, gt.to(torch.uint8))
sweep.compute(); px.compute()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def memory_bench() -> None:
    rows = []
    for n in (500, 2000, 8000):
        out = subprocess.run(
            [sys.executable, "-c", CHILD, str(n)], capture_output=True, text=True, check=True
        )
        rows.append((n, int(out.stdout.strip()) / 1024))
    print("streaming IoU sweep + PxAP, peak RSS: " + ", ".join(f"{n} maps {mb:.0f} MiB" for n, mb in rows))


if __name__ == "__main__":
    torch.set_num_threads(2)
    sweep_bench()
    box_bench()
    memory_bench()
    del resource
