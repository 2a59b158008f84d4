"""Masks follow the geometric augmentations: exactly for flips and 90° turns, within a pixel for affine."""

import numpy as np
import torch
from scipy import ndimage
from torchvision import tv_tensors
from torchvision.transforms import v2

from camkit.data import DataConfig, build_split
from camkit.data.augment import AugmentConfig, Augmented, build_transform


def _pattern() -> torch.Tensor:
    m = torch.zeros(32, 32, dtype=torch.uint8)
    m[4:12, 6:20] = 1
    m[18:28, 20:26] = 1
    return m


def test_flips_and_quarter_turns_are_pixel_exact() -> None:
    m = _pattern()
    img = tv_tensors.Image(m[None].float().expand(3, -1, -1).clone())
    for t in (v2.RandomHorizontalFlip(p=1.0), v2.RandomVerticalFlip(p=1.0)):
        o_img, o_m = t(img, tv_tensors.Mask(m[None]))
        assert torch.equal(o_m[0], (o_img[0] > 0.5).to(torch.uint8))
    for k in (1, 2, 3):
        t = v2.RandomRotation(degrees=(90 * k, 90 * k))
        o_img, o_m = t(img, tv_tensors.Mask(m[None]))
        assert torch.equal(o_m[0], torch.rot90(m, k))
        assert torch.equal(o_m[0], (o_img[0] > 0.5).to(torch.uint8))


def test_affine_masks_follow_within_one_pixel() -> None:
    """The image carries the mask pattern; after a random affine + crop the transformed mask
    and the thresholded transformed image differ only within one pixel of the boundary."""
    m = _pattern()
    for cfg in (AugmentConfig(hflip=True, rotate=20, shift=0.2), AugmentConfig(crop=0.6)):
        torch.manual_seed(0)
        _check_within_one_pixel(m, build_transform(cfg, 32))


def _check_within_one_pixel(m: torch.Tensor, t: v2.Compose) -> None:
    for _ in range(30):
        img = tv_tensors.Image(m[None].float().expand(3, -1, -1).clone())
        o_img, o_m = t(img, tv_tensors.Mask(m[None]))
        a, b = o_m[0].numpy().astype(bool), (o_img[0] > 0.5).numpy()
        diff = a ^ b
        ring = np.ones((3, 3), dtype=bool)  # within one pixel, diagonals included
        # the frame edge counts as a boundary: content beyond it was cut off
        near = ndimage.binary_dilation(a, ring) & ~ndimage.binary_erosion(a, ring, border_value=0)
        assert not (diff & ~near).any()


def test_train_split_is_augmented_and_others_are_not(fake_fmnist) -> None:
    cfg = DataConfig(
        root=str(fake_fmnist),
        image_size=32,
        n_train=8,
        n_val=4,
        n_test=4,
        augment=AugmentConfig(hflip=True, rotate=15),
    )
    tr, va = build_split(cfg, "train"), build_split(cfg, "val")
    assert isinstance(tr, Augmented) and not isinstance(va, Augmented)
    torch.manual_seed(0)
    a = tr[0]
    torch.manual_seed(0)
    b = tr[0]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["mask"], b["mask"])  # seeded draws repeat
    plain = build_split(
        DataConfig(root=str(fake_fmnist), image_size=32, n_train=8, n_val=4, n_test=4), "train"
    )
    assert not np.array_equal(a["mask"].numpy(), plain[0]["mask"].numpy()) or not torch.equal(
        a["image"], plain[0]["image"]
    )
    assert a["image"].shape == (3, 32, 32) and a["mask"].dtype == torch.uint8


def test_offline_copies_form_an_image_folder_with_masks(fake_fmnist, tmp_path) -> None:
    from PIL import Image

    from camkit.data import class_names
    from camkit.data.augment import STUDY, write_augmented_copies

    cfg = DataConfig(root=str(fake_fmnist), image_size=32, n_train=3, n_val=2, n_test=2)
    ds = build_split(cfg, "train")
    n = write_augmented_copies(ds, class_names(cfg), str(tmp_path / "aug"), STUDY, copies=2, size=32)
    assert n == 9
    imgs = sorted((tmp_path / "aug").rglob("*.png"))
    masks = sorted((tmp_path / "aug_masks").rglob("*.png"))
    assert len(imgs) == len(masks) == 9
    first = next(p for p in masks if p.stem.endswith("_aug0"))
    cls, stem = first.parent.name, first.stem.rsplit("_aug", 1)[0]
    i = int(stem)
    assert class_names(cfg)[int(ds[i]["label"])] == cls
    assert np.array_equal(
        np.asarray(Image.open(first)) > 127, ds[i]["mask"].numpy().astype(bool)
    )  # the original
    # the tree trains as an ImageFolder with a parallel mask tree
    back = build_split(
        DataConfig(
            dataset="folder",
            root=str(tmp_path / "aug"),
            mask_root=str(tmp_path / "aug_masks"),
            image_size=32,
            val_fraction=0.2,
        ),
        "val",
    )
    assert back[0]["has_mask"]
