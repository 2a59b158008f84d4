"""Post-processing ops, on hand-computed values."""

import math

import numpy as np
import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.core.ops import (
    display_stretch,
    mask_to_boxes,
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


def test_mask_to_boxes_largest_and_all() -> None:
    mask = torch.zeros(6, 8, dtype=torch.bool)
    mask[0:2, 0:2] = True  # 4 px
    mask[3:6, 4:8] = True  # 12 px
    mask[2, 3] = True  # touches the big one diagonally: 8-connected -> 13 px
    assert mask_to_boxes(mask).tolist() == [[3, 2, 7, 5]]
    assert mask_to_boxes(mask, "all").tolist() == [[3, 2, 7, 5], [0, 0, 1, 1]]
    assert mask_to_boxes(torch.zeros(3, 3, dtype=torch.bool)).shape == (0, 4)


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
