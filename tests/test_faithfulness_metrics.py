"""The faithfulness metric registry through the pipeline and the command line: the pipeline's
means equal the metric functions on the same maps; bad names and percentiles are one-line
errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from camkit.core.errors import CamkitError
from camkit.core.ops import minmax
from camkit.data.base import ArrayDataset
from camkit.methods import get_method
from camkit.metrics.pointing import energy_pointing_game, pointing_game
from camkit.metrics.relevance import relevance_rank_accuracy
from camkit.metrics.road import road
from camkit.pipeline.faith_metrics import metric_names
from camkit.pipeline.faith_metrics.sanity import cascade_steps
from camkit.pipeline.faithfulness import faithfulness
from cli_helpers import assert_one_line_error, run_here

ALL = ["deletion", "insertion", "average-drop", "road", "pointing", "energy", "relevance-mass",
       "relevance-rank", "mprt", "random-logit"]  # fmt: skip


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv1 = nn.Conv2d(3, 6, 3, padding=1)
        self.conv2 = nn.Conv2d(6, 8, 3, padding=1)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.conv2(torch.relu(self.conv1(x)))).mean((2, 3)))


@pytest.fixture(scope="module")
def data() -> ArrayDataset:
    g = np.random.default_rng(0)
    images = g.integers(0, 255, (5, 24, 24, 3)).astype(np.uint8)
    masks = np.zeros((5, 24, 24), bool)
    for i in range(4):  # image 4 has no object mask
        masks[i, 3 + i : 12 + i, 5 : 20 - i] = True
    return ArrayDataset(images, np.array([0, 1, 2, 1, 0]), masks, 24)


def test_registry_lists_every_metric() -> None:
    assert set(ALL) <= set(metric_names())


def test_pipeline_means_match_the_metric_functions(data: ArrayDataset) -> None:
    model = Net().eval()
    opts = {"percentiles": [30, 70], "tolerance": 4, "mprt_steps": 2, "seed": 0}
    res = faithfulness(model, data, ["grad-cam"], ["conv2"], "label", steps=4, batch_size=8, metrics=ALL,
                       metric_options=opts)  # fmt: skip
    r = res.methods["grad-cam"]
    assert res.images == 5
    x = torch.stack([data[i]["image"] for i in range(5)])
    gt = torch.stack([data[i]["mask"] for i in range(5)]).bool()
    y = torch.tensor([0, 1, 2, 1, 0])
    maps = minmax(get_method("grad-cam")(model, ["conv2"])(x, y).maps)
    pg = pointing_game(maps, gt, tolerance=4)
    assert r["pointing_skipped"] == 1 and pg.skipped == 1
    assert r["pointing_overall"] == pytest.approx(pg.mean)
    assert r["energy_pointing"] == pytest.approx(energy_pointing_game(maps, gt).mean)
    assert r["relevance_rank"] == pytest.approx(relevance_rank_accuracy(maps, gt).mean)
    direct = road(model, x, maps, y, [30, 70], seed=0)  # one batch: the same noise
    assert r["road_combined"] == pytest.approx(float(direct.combined.mean()), abs=1e-6)
    assert len(r["mprt_steps"]) == 2 and sum(s["count"] for s in r["mprt_steps"]) == 3
    for k in ("deletion_auc", "insertion_auc", "average_drop", "mprt_spearman", "random_logit_ssim"):
        assert isinstance(r[k], float) and not np.isnan(r[k])


def test_cascade_steps_cover_every_module_in_order() -> None:
    steps = cascade_steps(Net(), 2)
    assert steps == [["fc", "conv2"], ["conv1"]]
    assert cascade_steps(Net(), 10) == [["fc"], ["conv2"], ["conv1"]]


def test_unknown_metric_is_a_one_line_error(data: ArrayDataset) -> None:
    with pytest.raises(CamkitError, match="unknown faithfulness metric"):
        faithfulness(Net(), data, ["grad-cam"], ["conv2"], metrics=["roadd"])
    p = run_here(
        "faithfulness", "--model", "efficientnet_lite0", "--images", "nowhere", "--metric", "road,pointng"
    )
    assert_one_line_error(p, "--metric pointng", "pointing")
    p = run_here("faithfulness", "--model", "efficientnet_lite0", "--images", "nowhere", "--metric", "road",
                 "--percentiles", "0,50")  # fmt: skip
    assert_one_line_error(p, "--percentiles 0", "strictly between 0 and 100")


def test_command_on_photos_scores_road_and_skips_maskless_pointing(photos: Path, tmp_path: Path) -> None:
    p = run_here("faithfulness", "--model", "efficientnet_lite0", "--images", str(photos), "--method", "grad-cam",
                 "--layer", "backbone.head", "--metric", "road,pointing", "--percentiles", "50", "--num", "1",
                 "--out", str(tmp_path / "f.json"))  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads((tmp_path / "f.json").read_text())["methods"]["grad-cam"]
    assert -1 <= r["road_combined"] <= 1 and r["road_morf"] <= 0.05
    assert r["pointing_accuracy"] is None and r["pointing_skipped"] == 1
    assert "road_combined" in p.stdout


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    skimage = pytest.importorskip("skimage")
    from PIL import Image

    d = tmp_path_factory.mktemp("photos")
    Image.fromarray(skimage.data.chelsea()).save(d / "cat.png")
    return d


def test_run_on_the_benchmark_with_masks_and_its_report(fake_fmnist: Path, tmp_path: Path) -> None:
    from camkit.apps.report import report
    from camkit.train.config import RunConfig
    from camkit.train.loop import train_run

    cfg = RunConfig.from_dict({
        "data": {"dataset": "fashion", "root": str(fake_fmnist), "n_train": 64, "n_val": 16, "n_test": 16},
        "train": {"epochs": 1, "batch_size": 32, "out": str(tmp_path), "exp_id": "tiny"},
    })  # fmt: skip
    train_run(cfg)
    run_dir = tmp_path / "tiny"
    p = run_here("faithfulness", "--run", str(run_dir), "--method", "cam,grad-cam", "--metric",
                 "pointing,energy,relevance-mass,relevance-rank,mprt", "--mprt-steps", "2", "--num", "8",
                 "--out", str(run_dir / "faithfulness.json"))  # fmt: skip
    assert p.returncode == 0, p.stderr
    r = json.loads((run_dir / "faithfulness.json").read_text())["methods"]
    for m in ("cam", "grad-cam"):  # every benchmark image has a mask: nothing skipped
        assert r[m]["pointing_skipped"] == 0 and 0 <= r[m]["pointing_accuracy"] <= 1
        assert 0 < r[m]["energy_pointing"] <= 1 and 0 < r[m]["relevance_rank"] <= 1
    page = report(run_dir, tmp_path / "r.html", methods=["cam"], num=2).read_text()
    assert "Faithfulness" in page and "pointing_accuracy" in page and "randomized up to" in page
