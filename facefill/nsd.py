"""Normalised squared-distortion (NSD), the latent inpainting measure of paper 001.

Zieliński, Struski, Śmieja, Tabor, *Cascade context encoder for improved inpainting* (2018), §3.

**Idea.** A context encoder should map one image ``P`` with different missing regions ``M`` to
nearly the same point of its latent space. With ``E(P, M) ∈ R^D`` the encoder's latent,
Definition 3.1 is the mean squared distortion over independent masks

    dist²_E(P; 𝐌) = 𝔼 ‖E(P, M₁) − E(P, M₂)‖²,      dist²_E(𝐏, 𝐌) = 𝔼_P dist²_E(P; 𝐌).

For n masks (M_i) the paper estimates it with the V-statistic (1/n²) Σ_{i,j} ‖x_i − x_j‖² and
removes the O(n²) sum with the identity (Späth 1975)

    1/(2n²) Σ_{i,j} ‖x_i − x_j‖² = 1/n Σ_i ‖x_i − x̄‖²,

so dist² = (2/n) Σ_i ‖x_i − Z̄‖² with Z̄ = mean_i x_i. If E(P, M) ~ N(0, I) independently of the
mask ("totally random"), 𝔼‖X − Y‖² = 2D (½‖X − Y‖² ~ χ²_D), so Definition 3.2 divides by 2D:

    NSD = 1/(D·n·k) Σ_{j=1..k} Σ_{i=1..n} ‖E(P_j, M_i) − Z̄_j‖²,    Z̄_j = 1/n Σ_i E(P_j, M_i).

We report the per-image values NSD_j = 1/(D·n) Σ_i ‖E(P_j, M_i) − Z̄_j‖² and their mean ± sample
standard deviation over the k images (the paper's "0.56 ± 0.17").

**Two caveats the paper leaves implicit** (both tested in ``tests/test_nsd.py``):

* the V-statistic includes the i = j pairs, so for independent N(0, I) latents
  𝔼 NSD = (n − 1)/n, not 1 (0.99 at the paper's n = 100); ``unbiased=True`` rescales by n/(n − 1);
* "1 = random" needs E(P, M) ~ N(0, I). A context encoder's bottleneck (BatchNorm + LeakyReLU, in
  eval mode with running statistics) is not: independent draws of a latent with per-dimension
  variance σ_d² give 𝔼 NSD = mean_d σ_d². :func:`standardise` rescales every dimension by its mean
  and standard deviation over the whole set of k·n latents. Then (with the population variance)
  the total variance of every dimension is 1 = within-image + between-image variance, and
  NSD = 1 − (between-image share of the variance) ∈ [0, 1] exactly: 1 means the mask explains all
  of the latent's variation across the data set (the encoder ignores the image), 0 means the
  image explains all of it (the encoder ignores the mask).
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from .errors import ConfigError

__all__ = [
    "NSDResult",
    "collect_latents",
    "normalised_distances",
    "nsd",
    "nsd_per_image",
    "pairwise_nsd_per_image",
    "standardise",
]


def _check_latents(latents: torch.Tensor) -> torch.Tensor:
    if not isinstance(latents, torch.Tensor):
        latents = torch.as_tensor(np.asarray(latents))
    if latents.ndim != 3:
        raise ConfigError(
            f"latents must have shape (k images, n masks, D), got {tuple(latents.shape)}; "
            "collect them with facefill.nsd.collect_latents."
        )
    k, n, d = latents.shape
    if k < 1 or n < 2 or d < 1:
        raise ConfigError(f"need k >= 1 images, n >= 2 masks and D >= 1 latent dimensions, got k={k}, n={n}, D={d}.")
    if not torch.isfinite(latents).all():
        raise ConfigError("latents contain NaN or inf: check the encoder (a diverged checkpoint?).")
    return latents.double()


def nsd_per_image(latents: torch.Tensor, unbiased: bool = False) -> np.ndarray:
    """NSD_j = 1/(D·n) Σ_i ‖E(P_j, M_i) − Z̄_j‖² for each image j; ``latents``: (k, n, D).

    ``unbiased=True`` multiplies by n/(n − 1) (the U-statistic over i ≠ j pairs)."""
    z = _check_latents(latents)
    _, n, d = z.shape
    centred = z - z.mean(dim=1, keepdim=True)
    out = centred.pow(2).sum(dim=(1, 2)) / (d * n)
    if unbiased:
        out = out * n / (n - 1)
    return out.numpy()


def pairwise_nsd_per_image(latents: torch.Tensor) -> np.ndarray:
    """The same quantity from the brute-force pairwise form 1/(2n²D) Σ_{i,j} ‖x_i − x_j‖² (O(n²); tests)."""
    z = _check_latents(latents)
    _, n, d = z.shape
    diff = z[:, :, None, :] - z[:, None, :, :]
    return (diff.pow(2).sum(dim=(1, 2, 3)) / (2 * n * n * d)).numpy()


def normalised_distances(latents_one_image: torch.Tensor) -> np.ndarray:
    """‖E(P, M_i) − Z̄‖²/D for each mask i of one image (the labels of the paper's Fig. 3); (n, D) → (n,)."""
    z = _check_latents(torch.as_tensor(latents_one_image)[None])[0]
    return ((z - z.mean(0, keepdim=True)).pow(2).sum(1) / z.shape[1]).numpy()


def standardise(latents: torch.Tensor, eps: float = 1e-8) -> tuple[torch.Tensor, int]:
    """Per-dimension z-scores over all k·n latents (population std); dimensions whose std is below
    ``eps`` (constant over the data: no information, undefined z-score) are dropped.

    Returns (standardised latents (k, n, D'), number of dropped dimensions)."""
    z = _check_latents(latents)
    flat = z.reshape(-1, z.shape[-1])
    mean, std = flat.mean(0), flat.std(0, unbiased=False)
    keep = std > eps
    if not keep.any():
        raise ConfigError("every latent dimension is constant over the data set; the encoder's output carries no information.")
    return (z[..., keep] - mean[keep]) / std[keep], int((~keep).sum())


@dataclass
class NSDResult:
    """Mean and sample std (over images) of the per-image NSD, with the sizes of the estimate."""

    mean: float
    std: float
    k: int  # images
    n: int  # masks per image
    d: int  # latent dimensions used
    per_image: np.ndarray

    def __str__(self) -> str:
        return f"{self.mean:.3f} ± {self.std:.3f} (k={self.k}, n={self.n}, D={self.d})"


def nsd(latents: torch.Tensor, unbiased: bool = False) -> NSDResult:
    """Definition 3.2 estimated on (k, n, D) latents, reported as mean ± std over the k images."""
    per = nsd_per_image(latents, unbiased=unbiased)
    k, n, d = latents.shape
    return NSDResult(float(per.mean()), float(per.std(ddof=1)) if k > 1 else float("nan"), k, n, d, per)


@torch.no_grad()
def collect_latents(
    encode: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    images: torch.Tensor,
    masks: torch.Tensor,
    batch_size: int = 64,
) -> torch.Tensor:
    """E(P_j, M_i) for every image j and mask i: (k, n, D) float32 on the CPU.

    ``encode(images (B, 3, H, W), masks (B, 1, H, W)) -> (B, D)`` drops the region and runs the
    encoder (for the cascade: the whole pre-fill by CE64, then CE128's encoder). Every image is
    paired with the same n masks, as in the paper's estimator (P_j)_j × (M_i)_i."""
    if images.ndim != 4 or masks.ndim != 4 or masks.shape[1] != 1 or masks.shape[-2:] != images.shape[-2:]:
        raise ConfigError(
            f"images (k, 3, H, W) and masks (n, 1, H, W) of the same size expected, got {tuple(images.shape)} and {tuple(masks.shape)}."
        )
    k, n = images.shape[0], masks.shape[0]
    pairs_img = torch.arange(k).repeat_interleave(n)
    pairs_mask = torch.arange(n).repeat(k)
    out = []
    for s in range(0, k * n, batch_size):
        bi, bm = pairs_img[s : s + batch_size], pairs_mask[s : s + batch_size]
        out.append(encode(images[bi], masks[bm]).float().cpu())
    z = torch.cat(out)
    return z.view(k, n, -1)
