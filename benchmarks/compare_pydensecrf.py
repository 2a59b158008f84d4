"""camkit.wsss.dense_crf against pydensecrf (Krähenbühl's C++ permutohedral-lattice CRF) on
scikit-image photos, with the WSSS defaults (Gaussian 3/3, bilateral 80/13/10, 10 iterations).

pydensecrf has no wheel for Python 3.11 and its 1.0rc3 sdist fails to build; it builds after
re-cythonizing its two .pyx files with Cython 0.29 (``cython --cplus -2``) and forcing setup.py
onto its pre-generated-.cpp branch (see docs/wsss.md). Put the built package on PYTHONPATH:

    PYTHONPATH=src:/tmp/pdcpath OMP_NUM_THREADS=1 .venv/bin/python benchmarks/compare_pydensecrf.py

Prints, per image size and camkit stride (1 = exact N×N sources), the max and mean absolute
difference of the refined probabilities and the share of pixels whose argmax label agrees.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from skimage import data

from camkit.wsss.crf import dense_crf


def _case(photo: np.ndarray, size: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    img = torch.from_numpy(photo).permute(2, 0, 1)[None].float()
    img = F.interpolate(img, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
    img_u8 = img[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()
    # noisy class scores loosely tied to colour (k colour prototypes) plus smooth noise
    gen = torch.Generator().manual_seed(seed)
    protos = torch.randint(0, 256, (k, 3), generator=gen).float()
    rgb = torch.from_numpy(img_u8).float().reshape(-1, 3)
    score = -torch.cdist(rgb, protos) / 40.0
    noise = F.interpolate(
        torch.randn(1, k, size // 8, size // 8, generator=gen), size=(size, size), mode="bilinear"
    )
    logits = score.T.reshape(k, size, size) + 1.5 * noise[0]
    return img_u8, torch.softmax(logits, 0).numpy().astype(np.float32)


def _pydensecrf(img: np.ndarray, probs: np.ndarray, t: int = 10) -> np.ndarray:
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    k, h, w = probs.shape
    d = dcrf.DenseCRF2D(w, h, k)
    d.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
    d.addPairwiseGaussian(sxy=3, compat=3)
    d.addPairwiseBilateral(sxy=80, srgb=13, rgbim=np.ascontiguousarray(img), compat=10)
    return np.array(d.inference(t)).reshape(k, h, w)


def main() -> None:
    photos = {"astronaut": data.astronaut(), "chelsea": data.chelsea(), "coffee": data.coffee()}
    print(
        f"{'image':<10} {'px':>4} {'K':>3} {'sources':>7}  {'max|dp|':>8} {'mean|dp|':>9} {'label agree':>11}"
    )
    for name, photo in photos.items():
        for size, k in ((32, 3), (64, 5), (128, 21)):
            img, probs = _case(photo, size, k, seed=size)
            ref = _pydensecrf(img, probs)
            strides = [10**9, 128, 256] if size <= 64 else [128, 256, 512]
            for stride in strides:
                out = dense_crf(torch.from_numpy(img)[None], torch.from_numpy(probs)[None], sources=stride)[
                    0
                ].numpy()
                diff = np.abs(out - ref)
                agree = float((out.argmax(0) == ref.argmax(0)).mean())
                s = "all" if stride > size * size else str(stride)
                print(
                    f"{name:<10} {size:>4} {k:>3} {s:>7}  {diff.max():8.4f} {diff.mean():9.5f} {agree:11.4f}"
                )


if __name__ == "__main__":
    main()
