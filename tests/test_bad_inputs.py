"""The bad-input matrix: each case gives a one-line error naming the file or option, never a
silent wrong result or a half-written file."""

import errno
import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import Dataset

from camkit.core.errors import CamkitError
from camkit.core.io import write_json
from camkit.core.mapfile import MapSet, save_maps
from camkit.data.base import FileDataset
from camkit.data.folders import read_image
from camkit.models.camnet import CAMNet, ModelConfig
from camkit.models.checkpoint import load_checkpoint, save_checkpoint
from camkit.pipeline.extract import extract
from cli_helpers import assert_one_line_error, run_here


@pytest.mark.parametrize("kind", ["truncated-png", "truncated-jpeg", "random-bytes", "empty"])
def test_broken_images_name_the_file(tmp_path: Path, kind: str) -> None:
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    p = tmp_path / ("x.jpg" if "jpeg" in kind else "x.png")
    if kind.startswith("truncated"):
        buf = io.BytesIO()
        img.save(buf, format="JPEG" if "jpeg" in kind else "PNG")
        p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif kind == "random-bytes":
        p.write_bytes(rng.integers(0, 255, 500, dtype=np.uint8).tobytes())
    else:
        p.write_bytes(b"")
    with pytest.raises(CamkitError, match=r"x\.(png|jpg): cannot read this image"):
        read_image(p)


def test_decompression_bombs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "bomb.png"
    Image.new("1", (10_000, 10_000)).save(big)  # 100 M pixels in a few kB
    assert big.stat().st_size < 100_000
    with pytest.raises(CamkitError, match="bomb.png: the image is larger than the 89,478,485-pixel limit"):
        read_image(big)
    small = tmp_path / "small.png"
    Image.new("RGB", (64, 64)).save(small)
    monkeypatch.setenv("CAMKIT_MAX_PIXELS", "1000")
    with pytest.raises(CamkitError, match="CAMKIT_MAX_PIXELS"):
        read_image(small)
    monkeypatch.setenv("CAMKIT_MAX_PIXELS", "5000")
    assert read_image(small).size == (64, 64)


def test_unusual_modes_become_faithful_rgb(tmp_path: Path) -> None:
    grey = np.arange(256, dtype=np.uint8).reshape(16, 16)
    Image.fromarray(grey, "L").save(tmp_path / "l.png")
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 255
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray(grey, "L").convert("P").save(tmp_path / "p.png")
    deep = np.array([[0, 32768, 65535]], dtype=np.uint16)
    Image.fromarray(deep).save(tmp_path / "i16.png")
    assert Image.open(tmp_path / "i16.png").mode == "I;16"
    assert np.array_equal(np.asarray(read_image(tmp_path / "l.png"))[..., 1], grey)
    assert tuple(np.asarray(read_image(tmp_path / "rgba.png"))[0, 0]) == (200, 0, 0)
    assert np.asarray(read_image(tmp_path / "p.png")).shape == (16, 16, 3)
    # 16-bit is scaled, not clipped: plain PIL would give 255 for both of the upper values
    assert np.asarray(read_image(tmp_path / "i16.png"))[0, :, 0].tolist() == [0, 128, 255]


def test_nan_weights_are_refused(tmp_path: Path) -> None:
    model = CAMNet(ModelConfig(num_classes=3))
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")
    save_checkpoint(tmp_path / "bad.safetensors", model, ["a", "b", "c"])
    with pytest.raises(CamkitError, match="classifier.weight holds NaN or Inf"):
        load_checkpoint(tmp_path / "bad.safetensors")


class _NaNImages(Dataset):
    ids = ["ok0", "nan1", "ok2"]

    def __len__(self) -> int:
        return 3

    def __getitem__(self, i: int) -> dict:
        x = torch.rand(3, 32, 32)
        if i == 1:
            x[0, 0, 0] = float("inf")
        return {"image": x, "label": torch.tensor(0), "index": i}


def test_nan_inputs_are_named_not_mapped() -> None:
    model = CAMNet(ModelConfig(num_classes=3)).eval()
    with pytest.raises(CamkitError, match="first: nan1"):
        extract(model, _NaNImages(), "cam")


def test_empty_split_and_unwritable_output(tmp_path: Path) -> None:
    with pytest.raises(CamkitError, match="empty"):
        FileDataset([], 32)
    (tmp_path / "file").write_text("x")
    with pytest.raises(CamkitError, match="cannot write to"):
        write_json(tmp_path / "file" / "sub" / "out.json", {"a": 1})
    assert_one_line_error(
        run_here(
            "explain",
            str(tmp_path / "file"),
            "--model",
            "efficientnet_lite0",
            "--out",
            str(tmp_path / "file" / "o"),
        ),
    )


def test_full_disk_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ms = MapSet(torch.rand(2, 4, 4), torch.zeros(2, dtype=torch.long), torch.ones(2), torch.zeros(2, dtype=torch.long),
                torch.zeros(2, dtype=torch.long), ["a", "b"], (8, 8))  # fmt: skip
    path = tmp_path / "maps.npz"
    save_maps(path, ms)
    before = path.read_bytes()

    def full(*a: object, **k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    with pytest.raises(CamkitError, match="No space left on device"):
        save_maps(path, ms)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["maps.npz"]  # no temporary file left behind
