"""Training objectives: the registry, the three built-in modes and their checks."""

from pathlib import Path

import pytest
import torch
from tests.train.test_train import tiny_cfg

from camkit.cli.errors import cli_message
from camkit.core.dist import World
from camkit.core.errors import OptionError
from camkit.models import CAMNet, ModelConfig
from camkit.train import TrainConfig, train_run
from camkit.train import objectives as objectives_mod
from camkit.train.evaluate import classification_loss
from camkit.train.objectives import Objective, build_objective, get_objective, objective_names
from camkit.train.recam import recam_loss
from camkit.train.seg import parse_transform, seg_loss


def _batch(multi: bool = False) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    y = torch.tensor([[1, 0, 1, 0], [0, 1, 0, 0]], dtype=torch.float32) if multi else torch.tensor([1, 3])
    return {"image": torch.rand(2, 3, 32, 32), "label": y}


def test_registry_lists_the_modes_and_refuses_unknown_ones() -> None:
    assert objective_names() == ["cam", "recam", "seg"]
    with pytest.raises(OptionError, match=r"^mode=segg: unknown training mode; choose one of seg") as e:
        get_objective("segg")
    assert cli_message(e.value).startswith("--mode segg: unknown training mode")
    with pytest.raises(ValueError, match="already registered"):
        objectives_mod.register("cam")(type("Again", (Objective,), {}))


def test_cam_objective_is_cross_entropy_or_bce() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4))
    for multi in (False, True):
        b = _batch(multi)
        obj = build_objective("cam", TrainConfig(label_smoothing=0.1), model)
        loss, logits, logs = obj(model, b)
        assert logs == {} and logits.shape == (2, 4)
        assert torch.equal(loss, classification_loss(model(b["image"]).logits, b["label"], 0.1))


def test_recam_objective_is_bce_plus_weighted_sce() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4, fc2=True))
    b = _batch(multi=True)
    loss, _, logs = build_objective("recam", TrainConfig(recam_weight=0.5, recam_norm="minmax"), model)(
        model, b
    )
    out = model(b["image"])
    bce = classification_loss(out.logits, b["label"])
    sce = recam_loss(model, out, b["label"], "minmax")
    assert torch.equal(loss, bce + 0.5 * sce)
    assert logs == {"bce": bce.item(), "sce": sce.item()}
    with pytest.raises(OptionError, match=r"^mode=recam: the model has no FC2") as e:
        build_objective("recam", TrainConfig(), CAMNet(ModelConfig(layer="layer1", num_classes=4)))
    assert cli_message(e.value).startswith("--mode recam: the model has no FC2")
    cfg = ModelConfig()
    get_objective("recam").configure(cfg)
    assert cfg.fc2


def test_seg_objective_wraps_seg_loss_and_checks_its_inputs() -> None:
    model = CAMNet(ModelConfig(layer="layer1", num_classes=4))
    b = _batch()
    obj = build_objective("seg", TrainConfig(seg_transforms=["scale:0.5"], seg_weight=2.0), model)
    assert not obj.autocast
    loss, _, logs = obj(model, b)
    want, parts, _ = seg_loss(model, b["image"], b["label"], [parse_transform("scale:0.5")], 2.0)
    assert torch.equal(loss, want) and logs == parts and set(logs) == {"cls_l", "cls_s", "seg"}
    with pytest.raises(OptionError, match="multi-label data is not supported") as e:
        obj(model, _batch(multi=True))
    assert cli_message(e.value).startswith("--mode seg: multi-label")
    with pytest.raises(OptionError, match="needs at least one transform") as e:
        build_objective("seg", TrainConfig(seg_transforms=[]), model)
    assert cli_message(e.value).startswith("--transform: ")
    with pytest.raises(OptionError, match="without torchrun"):
        build_objective("seg", TrainConfig(), model, World(rank=0, size=2, local_rank=0))


class _Doubled(Objective):
    """A test mode: twice the cross-entropy, with one logged number."""

    def __call__(self, net, batch):
        logits = net(batch["image"]).logits
        loss = 2 * classification_loss(logits.float(), batch["label"])
        return loss, logits, {"half": loss.item() / 2}


def test_a_registered_objective_trains_without_touching_the_loop(
    fake_fmnist: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(objectives_mod.OBJECTIVES._load(), "doubled", _Doubled)
    assert "doubled" in objective_names()
    cfg = tiny_cfg(fake_fmnist, tmp_path, epochs=1)
    cfg.mode = "doubled"
    train_run(cfg)
    header = (tmp_path / "t" / "metrics.csv").read_text().splitlines()[0]
    assert header.endswith("val_top5,train_half,images_per_s")
    row = (tmp_path / "t" / "metrics.csv").read_text().splitlines()[1].split(",")
    assert float(row[1]) == pytest.approx(2 * float(row[-2]))  # train_loss = 2 x the logged half


def test_an_unknown_mode_is_refused_before_the_run_folder_is_made(fake_fmnist: Path, tmp_path: Path) -> None:
    cfg = tiny_cfg(fake_fmnist, tmp_path, epochs=1)
    cfg.mode = "affinity"
    with pytest.raises(OptionError, match="^mode=affinity: unknown training mode"):
        train_run(cfg)
    assert not (tmp_path / "t").exists()
