"""
# Image-quality metrics for inpainting

All metrics compare a prediction `x` with a target `y`, both torch tensors of
shape `(N, C, H, W)`, and return **one value per image** as a 1-D
`numpy.float64` array of length `N`. Computation is in `float64` on the
inputs' device (inputs may be `bfloat16` from autocast).

## Data range

`data_range` $R$ is a **required keyword**: `2.0` for images in `[-1, 1]`,
`1.0` for `[0, 1]`, `255` for `uint8`. A silent default would quietly give
wrong PSNR/SSIM for the other ranges.

## Region

`mask=None` measures the whole image. A `(N, 1, H, W)` mask (1 = hole, see
`facefill.masks`; a single `(1, 1, H, W)` mask is broadcast) restricts L1, L2
and PSNR to the masked pixels: the mean is over masked pixels and channels,
per image.

## Formulas

* L1 $= \\text{mean}|x-y|$; `percent=True` gives $100\\,\\text{mean}|x-y|/R$
  (Pathak et al.'s "mean L1 loss %").
* L2 $= \\text{mean}(x-y)^2$; `percent=True` gives $100\\,\\text{mean}((x-y)/R)^2$
  (Pathak et al.'s "mean L2 loss %").
* PSNR $= 10\\log_{10}(R^2/\\text{MSE})$ per image, capped at `cap_db`
  (100 dB by default; identical images would otherwise give `inf`, which
  breaks means and confidence intervals).
* SSIM (Wang et al., 2004) with an 11x11 Gaussian window ($\\sigma=1.5$),
  $K_1=0.01$, $K_2=0.03$, $C_i=(K_iR)^2$ and population (biased) variances:

  $$S = \\frac{(2\\mu_x\\mu_y + C_1)(2\\sigma_{xy} + C_2)}
             {(\\mu_x^2+\\mu_y^2+C_1)(\\sigma_x^2+\\sigma_y^2+C_2)}$$

  This is `skimage.metrics.structural_similarity(gaussian_weights=True,
  sigma=1.5, use_sample_covariance=False, data_range=R, channel_axis=-1)`:
  the local statistics are computed with symmetric ("reflect" in scipy)
  padding, and the mean SSIM is taken over the map *without* its 5-pixel
  border (where the window would leave the image). Colour images: mean over
  channels. **With a mask**, SSIM is the mean of the full-size map (the
  border included, as skimage's `full=True` map) over the masked pixels.
* MS-SSIM (Wang et al., 2003): contrast-structure terms $cs_j$ at scales
  $j < M$ and the SSIM at the coarsest scale $M$, with 2x2 average pooling
  between scales and weights $w = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)$:
  $\\prod_j cs_j^{w_j} \\cdot \\text{SSIM}_M^{w_M}$, per channel, then the mean
  over channels. Negative $cs_j$/SSIM values are clamped to 0 before the power
  (as `pytorch-msssim` does with `relu`), so the result is real.
  An 11x11 window at scale $M$ needs the smaller side $> 10 \\cdot 2^{M-1}$,
  i.e. $> 160$ px for all 5 scales. For smaller images the default uses the
  largest number of scales that fits, with the first $M$ weights renormalised
  to sum to 1 (`ms_ssim_scales(64) == 3`: state it in reports); at 5 scales
  the published weights are used as they are (they sum to 1.0001). MS-SSIM has no
  region mode: crop the hole patch (`facefill.masks.hole_bbox`) instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor

from facefill.errors import ConfigError, DataError, MaskError

__all__ = [
    "METRIC_NAMES",
    "MS_SSIM_WEIGHTS",
    "bootstrap_ci",
    "evaluate",
    "kernel_distance",
    "l1",
    "l2",
    "ms_ssim",
    "ms_ssim_scales",
    "psnr",
    "ssim",
    "summarize",
]

MS_SSIM_WEIGHTS: tuple[float, ...] = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)

# SSIM window: skimage's Gaussian with sigma 1.5 truncated at 3.5 sigma -> radius 5, 11 taps.
_SIGMA = 1.5
_RADIUS = 5
_WIN = 2 * _RADIUS + 1
_K1, _K2 = 0.01, 0.03


# ---------------------------------------------------------------------------
# Input handling
# ---------------------------------------------------------------------------


def _as_float64(t) -> Tensor:
    t = torch.as_tensor(t) if not isinstance(t, Tensor) else t
    return t.detach().to(torch.float64)


def _prepare(x, y, data_range, mask=None) -> tuple[Tensor, Tensor, float, Tensor | None]:
    """Check shapes and `data_range`; return float64 tensors (mask broadcast to `(N, 1, H, W)`)."""
    x, y = _as_float64(x), _as_float64(y)
    if x.ndim != 4 or x.shape != y.shape:
        raise ConfigError(
            f"x and y must both be (N, C, H, W) with the same shape, got {tuple(x.shape)} and {tuple(y.shape)}."
        )
    if x.device != y.device:
        raise ConfigError(f"x is on {x.device} and y on {y.device}; move them to one device.")
    try:
        r = float(data_range)
    except (TypeError, ValueError):
        r = float("nan")
    if not np.isfinite(r) or r <= 0:
        raise ConfigError(
            f"data_range must be a positive number (2.0 for [-1,1], 1.0 for [0,1], 255 for uint8), got {data_range!r}."
        )
    if mask is not None:
        mask = _as_float64(mask).to(x.device)
        n, _, h, w = x.shape
        if mask.ndim != 4 or mask.shape[1] != 1 or mask.shape[-2:] != (h, w) or mask.shape[0] not in (1, n):
            raise MaskError(
                f"mask must be (N, 1, H, W) or (1, 1, H, W) matching images {tuple(x.shape)}, got {tuple(mask.shape)}."
            )
        mask = mask.expand(n, 1, h, w)
        empty = (mask.flatten(1).sum(1) == 0).nonzero().flatten().tolist()
        if empty:
            raise MaskError(f"mask(s) {empty[:10]} select no pixel; a region metric needs a non-empty region.")
    return x, y, r, mask


def _per_image_mean(v: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of `v` (N, C, H, W) per image, over the masked pixels (all channels) if `mask` is given."""
    if mask is None:
        return v.flatten(1).mean(1)
    # the mask is used as weights: same value for binary masks
    m = mask.expand_as(v)
    return (v * m).flatten(1).sum(1) / m.flatten(1).sum(1)


def _out(t: Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------------------
# Pixel metrics
# ---------------------------------------------------------------------------


def l1(x, y, *, data_range, mask=None, percent: bool = False) -> np.ndarray:
    """Mean absolute error per image; `percent`: $100 \\cdot$ MAE $/ R$."""
    x, y, r, mask = _prepare(x, y, data_range, mask)
    v = _per_image_mean((x - y).abs(), mask)
    return _out(100.0 * v / r if percent else v)


def l2(x, y, *, data_range, mask=None, percent: bool = False) -> np.ndarray:
    """Mean squared error per image; `percent`: $100 \\cdot$ MSE $/ R^2$."""
    x, y, r, mask = _prepare(x, y, data_range, mask)
    v = _per_image_mean((x - y) ** 2, mask)
    return _out(100.0 * v / r**2 if percent else v)


def psnr(x, y, *, data_range, mask=None, cap_db: float = 100.0) -> np.ndarray:
    """
    PSNR per image, $10\\log_{10}(R^2/\\text{MSE})$, capped at `cap_db`
    (so identical images give `cap_db`, not `inf`).
    """
    x, y, r, mask = _prepare(x, y, data_range, mask)
    mse = _per_image_mean((x - y) ** 2, mask)
    db = 10.0 * torch.log10(r**2 / mse)  # mse == 0 -> +inf, then capped
    return _out(db.clamp(max=cap_db))


# ---------------------------------------------------------------------------
# SSIM
# ---------------------------------------------------------------------------


def _gaussian_1d(device) -> Tensor:
    k = torch.arange(-_RADIUS, _RADIUS + 1, dtype=torch.float64, device=device)
    g = torch.exp(-0.5 * (k / _SIGMA) ** 2)
    return g / g.sum()


def _filter(v: Tensor, pad: bool) -> Tensor:
    """
    Separable Gaussian filter of each channel of `v` (B, C, H, W).

    `pad=True`: symmetric padding (scipy's `mode="reflect"`, what skimage uses),
    output size `H x W`; `pad=False`: "valid" filtering, output `(H-10) x (W-10)`.
    """
    c = v.shape[1]
    if pad:
        h, w = v.shape[-2:]
        # symmetric index maps (edge pixel repeated): d c b a | a b c d | d c b a
        rows = torch.as_tensor(np.pad(np.arange(h), _RADIUS, mode="symmetric"), device=v.device)
        cols = torch.as_tensor(np.pad(np.arange(w), _RADIUS, mode="symmetric"), device=v.device)
        v = v[..., rows, :][..., cols]
    g = _gaussian_1d(v.device)
    v = F.conv2d(v, g.view(1, 1, _WIN, 1).repeat(c, 1, 1, 1), groups=c)
    return F.conv2d(v, g.view(1, 1, 1, _WIN).repeat(c, 1, 1, 1), groups=c)


def _ssim_maps(x: Tensor, y: Tensor, r: float, pad: bool) -> tuple[Tensor, Tensor]:
    """SSIM map and contrast-structure (cs) map, per channel."""
    c1, c2 = (_K1 * r) ** 2, (_K2 * r) ** 2
    # one filter call for all five local moments
    n = x.shape[0]
    mu_x, mu_y, xx, yy, xy = _filter(torch.cat([x, y, x * x, y * y, x * y]), pad).split(n)
    var_x = xx - mu_x**2
    var_y = yy - mu_y**2
    cov = xy - mu_x * mu_y
    cs = (2 * cov + c2) / (var_x + var_y + c2)
    lum = (2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)
    return lum * cs, cs


def _check_min_side(x: Tensor, what: str) -> None:
    if min(x.shape[-2:]) < _WIN:
        raise ConfigError(f"{what} needs images of at least {_WIN}x{_WIN} (11x11 window), got {tuple(x.shape[-2:])}.")


def ssim(x, y, *, data_range, mask=None) -> np.ndarray:
    """
    SSIM per image (Wang et al., 2004), matching skimage's
    `structural_similarity(gaussian_weights=True, sigma=1.5,
    use_sample_covariance=False, data_range=R, channel_axis=-1)`.
    With `mask`: mean of the full (padded) SSIM map over the masked pixels.
    """
    x, y, r, mask = _prepare(x, y, data_range, mask)
    _check_min_side(x, "SSIM")
    if mask is None:
        # skimage averages the padded map without its border == the "valid" map
        s, _ = _ssim_maps(x, y, r, pad=False)
        return _out(s.flatten(1).mean(1))
    s, _ = _ssim_maps(x, y, r, pad=True)
    return _out(_per_image_mean(s, mask))


# ---------------------------------------------------------------------------
# MS-SSIM
# ---------------------------------------------------------------------------


def ms_ssim_scales(size: int | tuple[int, int], max_scales: int = len(MS_SSIM_WEIGHTS)) -> int:
    """
    Number of MS-SSIM scales the default policy uses for an image whose
    smaller side is `size`: the largest $M \\le 5$ with `size` $> 10\\cdot2^{M-1}$
    (64 -> 3, 128 -> 4, 256 -> 5). Raises `ConfigError` below 11 px.
    """
    side = min(size) if isinstance(size, (tuple, list)) else int(size)
    if side < _WIN:
        raise ConfigError(f"MS-SSIM needs images of at least {_WIN}x{_WIN}, got side {side}.")
    m = 1
    while m < max_scales and side > (_WIN - 1) * 2**m:
        m += 1
    return m


def ms_ssim(x, y, *, data_range, scales: int | None = None, weights: Sequence[float] | None = None) -> np.ndarray:
    """
    MS-SSIM per image (Wang et al., 2003).

    `scales=None`: as many scales as fit (`ms_ssim_scales`), with the first
    standard weights renormalised when fewer than 5 fit. `scales=M`: exactly `M` (raises `ConfigError` if the image is
    too small). `weights`: custom per-scale weights (their count sets `M`;
    used as given, not renormalised). No mask: crop the hole patch instead.
    """
    x, y, r, _ = _prepare(x, y, data_range)
    side = min(x.shape[-2:])
    fits = ms_ssim_scales(side)
    if weights is not None:
        w = torch.as_tensor(list(weights), dtype=torch.float64, device=x.device)
        if scales is not None and scales != len(w):
            raise ConfigError(f"scales={scales} but {len(w)} weights given; give one weight per scale.")
        scales = len(w)
    if scales is None:
        scales = fits
    if not 1 <= scales <= len(MS_SSIM_WEIGHTS):
        raise ConfigError(f"scales must be in 1..{len(MS_SSIM_WEIGHTS)}, got {scales}.")
    if scales > fits:
        raise ConfigError(
            f"MS-SSIM with {scales} scales needs the smaller image side > {(_WIN - 1) * 2 ** (scales - 1)} px, "
            f"got {side}; use scales<={fits} (or scales=None for the largest that fits)."
        )
    if weights is None:
        w = torch.tensor(MS_SSIM_WEIGHTS[:scales], dtype=torch.float64, device=x.device)
        if scales < len(MS_SSIM_WEIGHTS):
            # the published 5 weights sum to 1.0001; keep them as published for 5 scales
            w = w / w.sum()
    levels = []
    for j in range(scales):
        s, cs = _ssim_maps(x, y, r, pad=False)
        # per channel: (N, C); clamp keeps fractional powers real
        levels.append((cs if j < scales - 1 else s).flatten(2).mean(2).clamp(min=0.0))
        if j < scales - 1:
            # 2x2 average pooling; odd sides padded (count_include_pad), as pytorch-msssim
            pad = [s_ % 2 for s_ in x.shape[-2:]]
            x = F.avg_pool2d(x, kernel_size=2, padding=pad)
            y = F.avg_pool2d(y, kernel_size=2, padding=pad)
    stacked = torch.stack(levels)  # (M, N, C)
    value = torch.prod(stacked ** w.view(-1, 1, 1), dim=0)
    return _out(value.mean(1))


# ---------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------


def bootstrap_ci(values, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """
    Percentile-bootstrap confidence interval of the mean of `values`:
    resample with replacement `n_boot` times (seeded, local generator),
    take the `(1-confidence)/2` and `(1+confidence)/2` quantiles of the means.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if v.size == 0:
        raise DataError("bootstrap_ci got no values; evaluate at least one image.")
    if not np.all(np.isfinite(v)):
        raise DataError(f"bootstrap_ci got {int((~np.isfinite(v)).sum())} non-finite values; drop or fix them first.")
    if not 0.0 < confidence < 1.0:
        raise ConfigError(f"confidence must be in (0, 1), e.g. 0.95, got {confidence}.")
    if n_boot < 1:
        raise ConfigError(f"n_boot must be >= 1, got {n_boot}.")
    rng = np.random.Generator(np.random.PCG64(seed))
    means = np.empty(n_boot)
    # chunks bound the (chunk, n) index matrix for large evaluation sets
    chunk = max(1, 2_000_000 // v.size)
    for start in range(0, n_boot, chunk):
        stop = min(n_boot, start + chunk)
        means[start:stop] = v[rng.integers(0, v.size, size=(stop - start, v.size))].mean(axis=1)
    alpha = (1.0 - confidence) / 2.0
    lo, hi = np.quantile(means, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def summarize(
    per_image: dict[str, np.ndarray], n_boot: int = 2000, seed: int = 0, confidence: float = 0.95
) -> pd.DataFrame:
    """
    One row per metric with columns `mean`, `std` (sample std, `ddof=1`;
    NaN for a single image), `ci_low`, `ci_high` (percentile bootstrap of the
    mean, `confidence` level) and `n`.
    """
    rows = {}
    for name, values in per_image.items():
        v = np.asarray(values, dtype=np.float64).ravel()
        lo, hi = bootstrap_ci(v, n_boot=n_boot, confidence=confidence, seed=seed)
        rows[name] = {
            "mean": float(v.mean()),
            "std": float(v.std(ddof=1)) if v.size > 1 else float("nan"),
            "ci_low": lo,
            "ci_high": hi,
            "n": int(v.size),
        }
    return pd.DataFrame.from_dict(rows, orient="index", columns=["mean", "std", "ci_low", "ci_high", "n"])


_METRICS = {
    "l1": lambda x, y, r, m: l1(x, y, data_range=r, mask=m),
    "l2": lambda x, y, r, m: l2(x, y, data_range=r, mask=m),
    "l1_percent": lambda x, y, r, m: l1(x, y, data_range=r, mask=m, percent=True),
    "l2_percent": lambda x, y, r, m: l2(x, y, data_range=r, mask=m, percent=True),
    "psnr": lambda x, y, r, m: psnr(x, y, data_range=r, mask=m),
    "ssim": lambda x, y, r, m: ssim(x, y, data_range=r, mask=m),
    "ms_ssim": lambda x, y, r, m: ms_ssim(x, y, data_range=r),
}
METRIC_NAMES: tuple[str, ...] = tuple(_METRICS)


def evaluate(
    pred, target, *, data_range, mask=None, metrics: Sequence[str] = ("l1", "l2", "psnr", "ssim")
) -> dict[str, np.ndarray]:
    """Per-image values of several metrics: `{name: array of length N}` (names in `METRIC_NAMES`)."""
    unknown = [m for m in metrics if m not in _METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {unknown}; valid: {', '.join(METRIC_NAMES)}.")
    if mask is not None and "ms_ssim" in metrics:
        raise ConfigError(
            "ms_ssim has no region mode; crop the hole patch (masks.hole_bbox) and call evaluate without mask."
        )
    return {m: _METRICS[m](pred, target, data_range, mask) for m in metrics}


def kernel_distance(features_a, features_b) -> float:
    """Kernel distance (KID: the unbiased squared MMD with the cubic polynomial kernel
    k(x, y) = (x·y / d + 1)^3, Bińkowski et al. 2018) between two sets of image features (N, d), (M, d).

    Unlike a share of detected faces it does not saturate: it keeps falling as samples approach the real
    distribution, so it can rank generators. About 0 for two samples of one distribution (it can be
    slightly negative: unbiased); compare a generator's value with the real-vs-real floor of the same sizes.
    """
    a, b = np.asarray(features_a, np.float64), np.asarray(features_b, np.float64)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or len(a) < 2 or len(b) < 2:
        raise DataError(f"kernel_distance needs two (N, d) feature sets with N >= 2 and one d, got {a.shape} and {b.shape}.")
    d = a.shape[1]
    kaa, kbb, kab = (a @ a.T / d + 1) ** 3, (b @ b.T / d + 1) ** 3, (a @ b.T / d + 1) ** 3
    n, m = len(a), len(b)
    return float((kaa.sum() - np.trace(kaa)) / (n * (n - 1)) + (kbb.sum() - np.trace(kbb)) / (m * (m - 1)) - 2 * kab.mean())
