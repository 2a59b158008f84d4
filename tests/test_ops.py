"""Post-processing ops, on hand-computed values."""

import math

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.core.ops import (
    display_stretch,
    masks_to_boxes,
    minmax,
    normalize,
    percentile,
    relu_max,
    sigmoid,
    tanh_max,
    threshold_relative,
)

M = torch.tensor([[[-1.0, 0.0], [1.0, 3.0]]])


def test_normalizations_hand_computed() -> None:
    torch.testing.assert_close(minmax(M), torch.tensor([[[0.0, 0.25], [0.5, 1.0]]]))
    torch.testing.assert_close(
        sigmoid(M),
        torch.tensor([[[1 / (1 + math.e), 0.5], [1 / (1 + math.exp(-1)), 1 / (1 + math.exp(-3))]]]),
    )
    torch.testing.assert_close(relu_max(M), torch.tensor([[[0.0, 0.0], [1 / 3, 1.0]]]))
    pos = torch.relu(M)
    torch.testing.assert_close(
        tanh_max(pos), torch.tensor([[[0.0, 0.0], [math.tanh(2 / 3), math.tanh(2.0)]]])
    )
    torch.testing.assert_close(normalize(M, "relu-max"), relu_max(M))
    assert torch.equal(relu_max(-torch.ones(1, 2, 2)), torch.zeros(1, 2, 2))  # nothing positive, no NaN
    with pytest.raises(CamkitError, match="norm=softmax: unknown"):
        normalize(M, "softmax")


def test_display_stretch() -> None:
    m = torch.tensor([0.0, 0.29, 0.3, 0.5, 0.7, 1.0])
    torch.testing.assert_close(display_stretch(m), torch.tensor([0.0, 0.0, 0.45, 0.75, 1.0, 1.0]))


def test_thresholds_max_percentile_and_fixed() -> None:
    m = torch.arange(100, dtype=torch.float32).view(1, 10, 10)  # values 0..99
    assert int(threshold_relative(m, 0.5).sum()) == 50  # >= 49.5 -> 50..99
    assert float(percentile(m, 98)) == pytest.approx(float(np.percentile(np.arange(100), 98)))  # 97.02
    # PaS: theta x 98th percentile = 0.5 * 97.02 = 48.51 -> 49..99
    assert int(threshold_relative(m, 0.5, "percentile", 98).sum()) == 51
    # an outlier moves the max-based threshold, barely the percentile-based one
    spike = m.clone()
    spike[0, 0, 0] = 1000.0
    assert int(threshold_relative(spike, 0.5).sum()) == 1
    assert int(threshold_relative(spike, 0.5, "percentile").sum()) == 51


def test_masks_to_boxes_largest_and_all() -> None:
    mask = torch.zeros(6, 8, dtype=torch.bool)
    mask[0:2, 0:2] = True  # 4 px
    mask[3:6, 4:8] = True  # 12 px
    mask[2, 3] = True  # touches the big one diagonally: 8-connected -> 13 px
    assert masks_to_boxes(mask[None], "largest")[0].tolist() == [[3, 2, 7, 5]]
    assert masks_to_boxes(mask[None], "all")[0].tolist() == [[3, 2, 7, 5], [0, 0, 1, 1]]
    assert masks_to_boxes(mask[None])[0].tolist() == [[0, 0, 7, 5]]  # tight: every pixel
    empty = torch.zeros(1, 3, 3, dtype=torch.bool)
    for mode in ("tight", "largest", "all"):
        (box,) = masks_to_boxes(empty, mode)  # type: ignore[arg-type]
        assert box.shape == (0, 4) and box.dtype == torch.int64
    with pytest.raises(CamkitError, match="mode=diagonal: use tight, largest or all"):
        masks_to_boxes(empty, "diagonal")  # type: ignore[arg-type]
    with pytest.raises(CamkitError, match=r"\(B, H, W\)"):
        masks_to_boxes(mask)


def test_masks_to_boxes_tight_by_hand() -> None:
    m = torch.zeros(3, 5, 7, dtype=torch.bool)
    m[0, 2, 3] = True  # one pixel: x0 == x1, y0 == y1 (inclusive)
    m[1, 0, 0] = m[1, 4, 6] = True  # opposite corners
    # m[2] empty
    out = masks_to_boxes(m)
    assert [b.tolist() for b in out] == [[[3, 2, 3, 2]], [[0, 0, 6, 4]], []]
    assert masks_to_boxes(m.to(torch.uint8) * 7)[1].tolist() == [[0, 0, 6, 4]]  # nonzero is foreground


# the three implementations this op replaced, kept here as references
def _old_fashion_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(mask)
    return int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())


def _old_evaluate_box(mask: torch.Tensor) -> np.ndarray | None:
    ys, xs = torch.nonzero(mask == 1, as_tuple=True)
    if ys.numel() == 0:
        return None
    return np.array([[int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max())]])


def _old_component_boxes(mask: torch.Tensor, mode: str) -> list[list[int]]:
    from scipy import ndimage

    lab, n = ndimage.label(mask.bool().numpy(), structure=np.ones((3, 3), dtype=bool))
    if n == 0:
        return []
    order = np.argsort(-np.bincount(lab.ravel())[1:], kind="stable")
    order = order[:1] if mode == "largest" else order
    sl = ndimage.find_objects(lab)
    return [[sl[k][1].start, sl[k][0].start, sl[k][1].stop - 1, sl[k][0].stop - 1] for k in order]


@pytest.mark.parametrize("density", [0.0, 0.002, 0.05, 0.3, 0.9, 1.0])
def test_masks_to_boxes_match_the_old_implementations(density: float) -> None:
    g = torch.Generator().manual_seed(int(density * 1000))
    masks = torch.rand(40, 13, 17, generator=g) < density
    tight = masks_to_boxes(masks)
    largest, every = masks_to_boxes(masks, "largest"), masks_to_boxes(masks, "all")
    for i, m in enumerate(masks):
        old = _old_evaluate_box(m)
        assert (tight[i].numpy().tolist() == old.tolist()) if old is not None else tight[i].shape == (0, 4)
        if m.any():
            assert tuple(tight[i][0].tolist()) == _old_fashion_box(m.numpy())
        assert largest[i].tolist() == _old_component_boxes(m, "largest")
        assert every[i].tolist() == _old_component_boxes(m, "all")
        assert tight[i].dtype == largest[i].dtype == torch.int64


def test_atomic_writes_keep_old_content_on_failure_and_normal_modes(tmp_path) -> None:
    import os

    from camkit.core.io import atomic_path, write_json

    p = tmp_path / "a.json"
    write_json(p, {"x": 1})
    assert oct(p.stat().st_mode & 0o777) == oct(0o666 & ~_umask())
    with pytest.raises(RuntimeError), atomic_path(p) as tmp:
        tmp.write_text("half")
        raise RuntimeError("disk full")
    assert p.read_text().strip().startswith("{") and '"x": 1' in p.read_text()
    assert os.listdir(tmp_path) == ["a.json"]  # no temporary left behind


def _umask() -> int:
    import os

    m = os.umask(0)
    os.umask(m)
    return m
