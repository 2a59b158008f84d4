"""Online augmentation with torchvision transforms v2; masks follow every geometric transform.

The Flower-17 study's set, each switched on and tuned by config: random rotation (±degrees),
shift (a fraction of the side), horizontal flip, colour jitter, random resized crop. The image
and its mask go through the same random parameters (v2 applies one draw to every tensor of a
call); masks use nearest-neighbour resampling, so they stay exact masks, and pixels rotated
or shifted in from outside the frame are background. Each geometric transform keeps the mask
within one pixel of the image content (flips and quarter turns exactly); a crop followed by
an affine can add up to about 1.5 pixels at object borders. Randomness comes from torch's global
generator, which training seeds and saves with its resume state.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms import v2

from camkit.core.errors import OptionError
from camkit.core.options import option
from camkit.data.base import dataset_len

#: the flat keys of older configs (``"aug_hflip"`` inside "data") -> AugmentConfig fields
LEGACY_KEYS = {"aug_hflip": "hflip", "aug_rotate": "rotate", "aug_shift": "shift", "aug_jitter": "jitter",
               "aug_crop": "crop"}  # fmt: skip


@dataclass(frozen=True)
class AugmentConfig:
    """Online augmentation of the training split; every transform is off by default."""

    hflip: bool = option(False, flag="--aug-hflip", help="augment: random horizontal flips")
    rotate: float = option(
        0.0, flag="--aug-rotate", metavar="DEG", help="augment: random rotation in ±DEG (the study: 20)"
    )
    shift: float = option(
        0.0, flag="--aug-shift", help="augment: random shift up to this fraction of the side (the study: 0.2)"
    )
    jitter: float = option(
        0.0, flag="--aug-jitter", help="augment: brightness/contrast/saturation jitter strength (e.g. 0.2)"
    )
    crop: float = option(
        0.0, flag="--aug-crop", help="augment: random resized crop, minimum area fraction (e.g. 0.6; 0: off)"
    )

    @property
    def active(self) -> bool:
        return self.hflip or self.rotate > 0 or self.shift > 0 or self.jitter > 0 or self.crop > 0

    def validate(self) -> None:
        """One-line :class:`OptionError` for an out-of-range setting."""
        if self.rotate < 0:
            raise OptionError("augment.rotate", "must be >= 0", self.rotate)
        if not 0 <= self.shift < 1:
            raise OptionError("augment.shift", "must be in [0, 1)", self.shift)
        if self.jitter < 0:
            raise OptionError("augment.jitter", "must be >= 0", self.jitter)
        if not 0 <= self.crop < 1:
            raise OptionError("augment.crop", "must be in [0, 1)", self.crop)


#: the Flower-17 study's settings
STUDY = AugmentConfig(hflip=True, rotate=20.0, shift=0.2, jitter=0.2, crop=0.6)


def build_transform(cfg: AugmentConfig, size: int) -> v2.Compose:
    """The v2 pipeline for ``cfg`` on size×size samples (image and mask together)."""
    cfg.validate()
    ops: list[Any] = []
    if cfg.crop > 0:
        ops.append(v2.RandomResizedCrop(size, scale=(cfg.crop, 1.0), antialias=True))
    if cfg.hflip:
        ops.append(v2.RandomHorizontalFlip())
    if cfg.rotate > 0 or cfg.shift > 0:
        ops.append(
            v2.RandomAffine(degrees=cfg.rotate, translate=(cfg.shift, cfg.shift) if cfg.shift > 0 else None)
        )
    if cfg.jitter > 0:
        ops.append(v2.ColorJitter(brightness=cfg.jitter, contrast=cfg.jitter, saturation=cfg.jitter))
    return v2.Compose(ops)


class Augmented(Dataset):
    """Wrap a camkit dataset: each sample's image and mask get the same random transform."""

    def __init__(self, ds: Dataset, cfg: AugmentConfig, size: int) -> None:
        self.ds = ds
        self.transform = build_transform(cfg, size)
        self.ids = getattr(ds, "ids", None)

    def __len__(self) -> int:
        return dataset_len(self.ds)

    def __getitem__(self, i: int) -> dict[str, Any]:
        s = dict(self.ds[i])
        img, mask = self.transform(tv_tensors.Image(s["image"]), tv_tensors.Mask(s["mask"][None]))
        s["image"] = img.as_subclass(torch.Tensor).clamp(0, 1)
        s["mask"] = mask.as_subclass(torch.Tensor)[0]
        return s


def write_augmented_copies(
    ds: Dataset, class_names: list[str], out: str, cfg: AugmentConfig, copies: int, size: int, seed: int = 0
) -> int:
    """The study's offline variant: write each image of ``ds`` and ``copies`` augmented copies
    as ``OUT/<class>/<id>_augK.png`` (K = 0 is the original), with masks, when the dataset has
    them, under ``OUT_masks/<class>/``, so the result is an ImageFolder tree with a parallel mask
    tree. Returns the number of images written."""
    from pathlib import Path

    from PIL import Image

    from camkit.core.io import atomic_path

    if copies < 1:
        raise OptionError("copies", "must be at least 1", copies)
    root = Path(out)
    mroot = root.with_name(root.name + "_masks")
    transform = build_transform(cfg, size)
    gen_state = torch.get_rng_state()
    torch.manual_seed(seed)
    n = 0
    try:
        ids = getattr(ds, "ids", None) or [f"{i:06d}" for i in range(dataset_len(ds))]
        for i in range(dataset_len(ds)):
            s = ds[i]
            cls = class_names[int(s["label"])] if int(s["label"]) >= 0 else "unlabelled"
            stem = str(ids[i]).replace("/", "_")
            for k in range(copies + 1):
                img, mask = s["image"], s["mask"]
                if k > 0:
                    ti, tm = transform(tv_tensors.Image(img), tv_tensors.Mask(mask[None]))
                    img, mask = ti.as_subclass(torch.Tensor).clamp(0, 1), tm.as_subclass(torch.Tensor)[0]
                arr = (img.permute(1, 2, 0).numpy() * 255 + 0.5).astype("uint8")
                with atomic_path(root / cls / f"{stem}_aug{k}.png") as tmp:
                    Image.fromarray(arr).save(tmp, format="PNG")
                if s["has_mask"]:
                    with atomic_path(mroot / cls / f"{stem}_aug{k}.png") as tmp:
                        Image.fromarray(mask.numpy().astype("uint8") * 255).save(tmp, format="PNG")
                n += 1
    finally:
        torch.set_rng_state(gen_state)
    return n
