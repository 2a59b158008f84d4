"""The decoded-sample cache of FileDataset: the same batches with and without it, and it is used."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from camkit.core.errors import CamkitError
from camkit.data.augment import AugmentConfig, Augmented
from camkit.data.base import FileDataset, decoded_cache_bytes
from camkit.data.folders import scan_image_folder
from camkit.train.config import TrainConfig
from camkit.train.loaders import make_loader


def _batches(ds: FileDataset | Augmented, epoch: int) -> list[dict[str, torch.Tensor]]:
    torch.manual_seed(epoch)  # the augmentation draws from the global generator
    cfg = TrainConfig(batch_size=4, seed=3)
    return list(make_loader(ds, cfg, shuffle=True, epoch=epoch))


def _same(a: list[dict[str, torch.Tensor]], b: list[dict[str, torch.Tensor]]) -> bool:
    return len(a) == len(b) and all(
        torch.equal(x[k], y[k])
        for x, y in zip(a, b, strict=True)
        for k in ("image", "label", "mask", "index")
    )


@pytest.mark.parametrize("size", [20, 16])  # the files' own size, and a resize
def test_cached_and_uncached_loaders_give_identical_batches(image_tree: tuple[Path, Path], size: int) -> None:
    root, masks = image_tree
    records, _ = scan_image_folder(root / "test", masks / "test")
    cached, plain = FileDataset(records, size), FileDataset(records, size, cache_bytes=0)
    assert cached.cached and not plain.cached
    for epoch in range(3):  # epoch 0 fills the cache, 1 and 2 read it
        assert _same(_batches(cached, epoch), _batches(plain, epoch))
    aug = AugmentConfig(hflip=True, rotate=15.0)
    for epoch in range(2):
        assert _same(
            _batches(Augmented(cached, aug, size), epoch), _batches(Augmented(plain, aug, size), epoch)
        )
    # the cache is what later epochs read: with the files gone, only the cached set still loads
    for r in records:
        r.path.unlink()
    assert len(_batches(cached, 5)) == 2
    with pytest.raises(CamkitError, match="image not found"):
        _batches(plain, 5)


def test_a_cached_sample_is_a_copy(image_tree: tuple[Path, Path]) -> None:
    records, _ = scan_image_folder(image_tree[0] / "train")
    ds = FileDataset(records, 24)
    first = ds[0]["image"].clone()
    ds[0]["image"].mul_(0)  # a caller scribbling on a sample
    assert torch.equal(ds[0]["image"], first)


def test_the_cache_takes_only_sets_that_fit(
    image_tree: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    records, _ = scan_image_folder(image_tree[0] / "train")  # 12 images
    need = 12 * 24 * 24 * 13
    assert FileDataset(records, 24, cache_bytes=need).cached
    assert not FileDataset(records, 24, cache_bytes=need - 1).cached
    monkeypatch.setenv("CAMKIT_DECODED_CACHE_MB", "0")
    assert decoded_cache_bytes() == 0 and not FileDataset(records, 24).cached
    monkeypatch.setenv("CAMKIT_DECODED_CACHE_MB", "lots")
    with pytest.raises(CamkitError, match="CAMKIT_DECODED_CACHE_MB"):
        decoded_cache_bytes()
