"""Dense CRF refinement of class probabilities (Krähenbühl & Koltun, NIPS 2011), in torch.

Mean-field inference for the fully connected CRF with Potts compatibility and two Gaussian
edge kernels, the way ``pydensecrf`` runs it (``DenseCRF2D`` with ``unary_from_softmax``,
``addPairwiseGaussian``, ``addPairwiseBilateral``, ``inference(t)``):

    U_i(l)   = -log max(P_i(l), 1e-5)                       (unary from the probabilities)
    Q^0      = softmax(-U)
    Q^{t+1}  = softmax(-U + w_g · S_g(Q^t) + w_b · S_b(Q^t))   (over the classes l)

where S(Q)_i = d_i^{-1/2} Σ_j k(f_i, f_j) d_j^{-1/2} Q_j with d = K·1 is the symmetrically
normalized kernel filter (pydensecrf's default ``NORMALIZE_SYMMETRIC``; the sum includes
j = i as pydensecrf's lattice does), and

    Gaussian (smoothness):  k_g = exp(-|p_i - p_j|² / 2 sxy_g²)
    bilateral (appearance): k_b = exp(-|p_i - p_j|² / 2 sxy_b² - |I_i - I_j|² / 2 srgb²)

with p the pixel position and I the RGB value (0..255). Potts compatibility: a label gains
w·(filtered mass of the same label); the constant of μ(l, l') = w[l ≠ l'] drops in the softmax.

**Defaults** are those of the WSSS pipelines' ``crf_inference`` (PSA / AffinityNet,
``tool/imutils.py`` of jiwoon-ahn/psa, reused by IRN-era code): Gaussian sxy=3, compat=3;
bilateral sxy=80, srgb=13, compat=10; 10 iterations. (IRN's ``crf_inference_label``, which
starts from hard labels, uses bilateral sxy=50, srgb=5 instead.)

**Speed** (no lattice, no build step): the Gaussian filter is exact, a separable convolution
truncated at 5 sxy (covering the image when it is smaller). The bilateral filter is computed
exactly for every *target* pixel against *source* cells: the image is cut into s×s blocks
(s = ``stride``), each block summarizing its pixels by their count, mean position, mean colour
and summed (normalized) Q; the kernel between every pixel and every block centre is one dense
matrix, so each iteration is one batched matmul. With s = 1 this is the exact N×N mean field;
the default picks s so that about 256 blocks cover the image (s = 8 at 128 px; s = 1 for
images up to 16×16). The approximation is in the sources only: a pixel's own colour and
position enter its kernel exactly, so edges stay sharp at pixel resolution.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from camkit.core.errors import CamkitError, OptionError

_CLIP = 1e-5  # pydensecrf's unary_from_softmax clip
_TRUNC = 5.0  # Gaussian kernel radius in standard deviations
_SOURCES = 256  # bilateral source cells the default stride aims for


def dense_crf(
    images: torch.Tensor,
    probs: torch.Tensor,
    *,
    iterations: int = 10,
    gaussian_sxy: float = 3.0,
    gaussian_compat: float = 3.0,
    bilateral_sxy: float = 80.0,
    bilateral_srgb: float = 13.0,
    bilateral_compat: float = 10.0,
    stride: int | None = None,
    atol: float = 1e-3,
) -> torch.Tensor:
    """Refine class probabilities with a dense CRF (mean-field inference, Potts model).

    Args:
        images: uint8 (B, H, W, 3) RGB images.
        probs: float (B, K, H, W) class probabilities, summing to 1 over K (within ``atol``).
        iterations: mean-field iterations (WSSS default 10).
        gaussian_sxy, gaussian_compat: smoothness kernel std (pixels) and weight (3, 3).
        bilateral_sxy, bilateral_srgb, bilateral_compat: appearance kernel std in pixels, in
            RGB units, and weight (80, 13, 10).
        stride: block size of the bilateral sources (1 = exact N×N; None = about 256 blocks).
        atol: tolerance of the sum-to-one check on ``probs``.

    Returns:
        (B, K, H, W) refined probabilities, same dtype and device as ``probs``.
    """
    _check(images, probs, atol)
    if not isinstance(iterations, int) or iterations < 0:
        raise OptionError("iterations", "must be a non-negative integer", iterations)
    if stride is not None and (not isinstance(stride, int) or stride < 1):
        raise OptionError("stride", "must be a positive integer (1 = exact), or None for the default", stride)
    for name, sd in (
        ("gaussian_sxy", gaussian_sxy),
        ("bilateral_sxy", bilateral_sxy),
        ("bilateral_srgb", bilateral_srgb),
    ):
        if not sd > 0:
            raise OptionError(name, "must be a positive standard deviation", sd)
    b, k, h, w = probs.shape
    dtype = probs.dtype
    s = stride or max(1, math.ceil(math.sqrt(h * w / _SOURCES)))
    logp = probs.clamp(_CLIP, 1.0).log()
    q = torch.softmax(logp, dim=1)
    gauss = _GaussianFilter(h, w, gaussian_sxy, dtype, probs.device)
    bilat = _BilateralFilter(images, bilateral_sxy, bilateral_srgb, s, dtype)
    for _ in range(iterations):
        logits = logp + gaussian_compat * gauss(q) + bilateral_compat * bilat(q)
        q = torch.softmax(logits, dim=1)
    return q


def _check(images: torch.Tensor, probs: torch.Tensor, atol: float) -> None:
    if not isinstance(images, torch.Tensor) or not isinstance(probs, torch.Tensor):
        raise CamkitError("dense_crf: images and probs must be torch tensors")
    if images.dtype != torch.uint8:
        raise CamkitError(f"dense_crf: images must be uint8 (B, H, W, 3), got dtype {images.dtype}")
    if images.ndim != 4 or images.shape[-1] != 3:
        raise CamkitError(f"dense_crf: images must be (B, H, W, 3) RGB, got shape {tuple(images.shape)}")
    if not probs.is_floating_point():
        raise CamkitError(f"dense_crf: probs must be a float tensor, got dtype {probs.dtype}")
    if probs.ndim != 4:
        raise CamkitError(f"dense_crf: probs must be (B, K, H, W), got shape {tuple(probs.shape)}")
    bi, hi, wi = images.shape[0], images.shape[1], images.shape[2]
    if (probs.shape[0], probs.shape[2], probs.shape[3]) != (bi, hi, wi):
        raise CamkitError(
            f"dense_crf: size mismatch: images {tuple(images.shape)} (B, H, W, 3) vs probs "
            f"{tuple(probs.shape)} (B, K, H, W); resize the probabilities to the image size"
        )
    if not bool(torch.isfinite(probs).all()):
        raise CamkitError("dense_crf: probs contain NaN or infinite values")
    if bool((probs < 0).any()):
        raise CamkitError(
            "dense_crf: probs contain negative values; pass probabilities (softmax), not scores"
        )
    err = float((probs.sum(dim=1) - 1).abs().max()) if probs.numel() else 0.0
    if err > atol:
        raise CamkitError(
            f"dense_crf: probs do not sum to 1 over classes (max deviation {err:.3g} > {atol:g}); "
            "normalize them over dim 1 (softmax, or add a background channel)"
        )


def _gauss1d(n: int, sxy: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    r = min(n - 1, math.ceil(_TRUNC * sxy))
    x = torch.arange(-r, r + 1, dtype=torch.float64, device=device)
    return torch.exp(-(x**2) / (2 * sxy**2)).to(dtype)


class _GaussianFilter:
    """Exact (within 5 σ) symmetric-normalized spatial Gaussian filter: separable convolution."""

    def __init__(self, h: int, w: int, sxy: float, dtype: torch.dtype, device: torch.device) -> None:
        self.ky = _gauss1d(h, sxy, dtype, device)
        self.kx = _gauss1d(w, sxy, dtype, device)
        ones = torch.ones(1, 1, h, w, dtype=dtype, device=device)
        self.dinv = self._conv(ones).rsqrt()  # (1, 1, H, W)

    def _conv(self, x: torch.Tensor) -> torch.Tensor:
        b, k, h, w = x.shape
        x = x.reshape(b * k, 1, h, w)
        ry, rx = len(self.ky) // 2, len(self.kx) // 2
        x = F.conv2d(x, self.ky.view(1, 1, -1, 1), padding=(ry, 0))
        x = F.conv2d(x, self.kx.view(1, 1, 1, -1), padding=(0, rx))
        return x.reshape(b, k, h, w)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        return self._conv(q * self.dinv) * self.dinv


def _block_sum(x: torch.Tensor, s: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, M) sums over s×s blocks (zero-padded at the far edges)."""
    b, c, h, w = x.shape
    hb, wb = -(-h // s), -(-w // s)
    x = F.pad(x, (0, wb * s - w, 0, hb * s - h))
    return x.reshape(b, c, hb, s, wb, s).sum(dim=(3, 5)).reshape(b, c, hb * wb)


class _BilateralFilter:
    """Symmetric-normalized bilateral filter: every pixel against s×s source blocks, one matmul."""

    def __init__(self, images: torch.Tensor, sxy: float, srgb: float, s: int, dtype: torch.dtype) -> None:
        b, h, w, _ = images.shape
        dev = images.device
        f64 = torch.float64
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=f64, device=dev), torch.arange(w, dtype=f64, device=dev), indexing="ij"
        )
        pos = torch.stack([ys, xs]).expand(b, 2, h, w) / sxy
        rgb = images.permute(0, 3, 1, 2).to(f64) / srgb
        feats = torch.cat([pos, rgb], dim=1)  # (B, 5, H, W)
        feats = feats - feats.mean(dim=(2, 3), keepdim=True)  # smaller numbers for the mm trick
        self.s, self.h, self.w = s, h, w
        counts = _block_sum(torch.ones(1, 1, h, w, dtype=f64, device=dev), s)  # (1, 1, M)
        src = _block_sum(feats, s) / counts  # (B, 5, M) mean feature per block
        tgt = feats.reshape(b, 5, h * w)
        d2 = (tgt**2).sum(1).unsqueeze(2) + (src**2).sum(1).unsqueeze(1) - 2 * tgt.transpose(1, 2) @ src
        kern = torch.exp(-0.5 * d2.clamp_min(0))  # (B, N, M)
        deg = kern @ counts.reshape(1, -1, 1)  # (B, N, 1): Σ_j k_ij over all pixels j
        self.kt = kern.transpose(1, 2).to(dtype).contiguous()  # (B, M, N)
        self.dinv = deg.reshape(b, 1, h, w).rsqrt().to(dtype)

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        b, k = q.shape[:2]
        src = _block_sum(q * self.dinv, self.s)  # (B, K, M)
        return (src @ self.kt).reshape(b, k, self.h, self.w) * self.dinv
