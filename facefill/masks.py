"""
# Inpainting masks

Every model in this study sees an image with a *hole* and must fill it in.
This module makes the holes, fills them for the network input, and checks them.

## Convention

A **mask** is a `float32` tensor of shape `(N, 1, H, W)` with

* `1` = **missing** (the hole the model must fill),
* `0` = **known** (context the model may look at).

A single `(1, 1, H, W)` mask may be broadcast over a batch of `N` images.
Images are `(N, 3, H, W)` in `[-1, 1]` (as in Pathak et al.'s `train.lua`).

## Determinism

Every random generator takes a `seed` and uses only a *local* generator
(`numpy.random.Generator(PCG64(seed))`); the global torch / numpy / `random`
state is never read or changed. The same `(seed, arguments)` therefore gives
bit-identical masks in every run and every process, whatever else the program
does with random numbers. Masks are drawn one after another from the one
generator, so `n` masks of seed `s` are *not* a prefix of `n + 1` masks of
seed `s` for every kind (rejection sampling consumes a variable number of
draws); ask for the full evaluation set at once.

## Kinds

| kind | paper | what |
| --- | --- | --- |
| `center` | Pathak et al. (000), 001 | a centred `hole x hole` square (64 in 128) |
| `left`, `right` | 003 | that half of the image is missing |
| `random_region` | Pathak et al. | smooth noise thresholded into blobs covering 20-30 % |
| `random_blocks` | 001 | a few, possibly overlapping squares covering at most 1/4 |
| `strokes_{thin,medium,thick}` | LaMa-style | random thick polylines |
| `random_pixels` | Yeh et al. | each pixel missing with probability 0.8 |
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from functools import lru_cache

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from facefill.errors import ConfigError, MaskError

__all__ = [
    "IMAGENET_MEAN_RGB",
    "MASK_KINDS",
    "apply_mask",
    "center_mask",
    "check_masks",
    "half_mask",
    "hole_bbox",
    "make_masks",
    "random_block_masks",
    "random_pixel_masks",
    "random_region_masks",
    "stroke_masks",
]

# Pathak et al. fill the hole with the ImageNet mean colour, mapped to [-1, 1]
# (`train.lua`: `2*117/255-1`, `2*104/255-1`, `2*123/255-1` for R, G, B).
IMAGENET_MEAN_RGB: tuple[float, float, float] = (
    2 * 117.0 / 255.0 - 1.0,
    2 * 104.0 / 255.0 - 1.0,
    2 * 123.0 / 255.0 - 1.0,
)


def _rng(seed: int, stream: int | None = None) -> np.random.Generator:
    """
    A local, explicitly seeded generator (never the global state); `stream`
    gives an independent generator for the same seed (PCG64 seeded with
    `[seed, stream]`).
    """
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}; pass e.g. seed=0.")
    return np.random.Generator(np.random.PCG64(int(seed) if stream is None else [int(seed), stream]))


def _check_size(size: int, minimum: int = 2) -> None:
    if not isinstance(size, (int, np.integer)) or isinstance(size, bool) or size < minimum:
        raise ConfigError(f"size must be an integer >= {minimum} (image side in pixels), got {size!r}.")


def _check_n(n: int) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ConfigError(f"n must be a positive integer (number of masks), got {n!r}.")


def _to_tensor(masks: np.ndarray) -> Tensor:
    """`(N, H, W)` numpy 0/1 array to the `(N, 1, H, W)` float32 convention."""
    return torch.from_numpy(np.ascontiguousarray(masks, dtype=np.float32)).unsqueeze(1)


# ---------------------------------------------------------------------------
# Fixed masks
# ---------------------------------------------------------------------------


def center_mask(size: int, hole: int, n: int = 1) -> Tensor:
    """
    A centred `hole x hole` square hole in a `size x size` image.

    Pathak et al. use `hole = 64` in a 128 image; 001 uses 64 in 250.
    When `size - hole` is odd the extra pixel of context goes to the
    bottom/right (`top = (size - hole) // 2`).
    """
    _check_size(size)
    _check_n(n)
    if not isinstance(hole, (int, np.integer)) or not 1 <= hole < size:
        raise ConfigError(f"hole must be an integer in [1, {size - 1}] for size={size}, got {hole!r}.")
    top = (size - hole) // 2
    mask = torch.zeros(n, 1, size, size, dtype=torch.float32)
    mask[:, :, top : top + hole, top : top + hole] = 1.0
    return mask


def half_mask(size: int, side: str, n: int = 1) -> Tensor:
    """
    The `side` (`"left"` or `"right"`) half of the image is missing.

    With an odd `size` the missing half gets the middle column (`ceil(size/2)`
    columns), so the hole is never smaller than the context.
    """
    _check_size(size)
    _check_n(n)
    mask = torch.zeros(n, 1, size, size, dtype=torch.float32)
    half = (size + 1) // 2
    if side == "left":
        mask[..., :half] = 1.0
    elif side == "right":
        mask[..., size - half :] = 1.0
    else:
        raise ConfigError(f'side must be "left" or "right", got {side!r}.')
    return mask


# ---------------------------------------------------------------------------
# Pathak et al.'s random region masks
# ---------------------------------------------------------------------------

# `train_random.lua`: uniform noise at `res = 0.06` of a `MAX_SIZE = 10000`
# canvas, bicubic upsampling, threshold `< density = 0.25`, then `fineSize`
# (128) crops accepted when 20 % < area < 30 %.
# We keep the *ratios* (noise resolution / canvas, blob size / crop) but use a
# 2048 canvas (a 10000^2 canvas is 100 M pixels) and rescale each 128 crop to
# the requested size, so blobs cover the same fraction of any image size.
_REGION_RES = 0.06
_REGION_DENSITY = 0.25
_REGION_CANVAS = 2048
_REGION_CROP = 128


@lru_cache(maxsize=4)
def _region_pattern(seed: int) -> np.ndarray:
    """The seeded `canvas x canvas` binary pattern (True = hole); cached per seed."""
    rng = _rng(seed)
    low_side = round(_REGION_RES * _REGION_CANVAS)
    low = torch.from_numpy(rng.uniform(0.0, 1.0, size=(1, 1, low_side, low_side)))
    # float64 so the threshold decision cannot depend on float rounding details
    smooth = F.interpolate(low, size=(_REGION_CANVAS, _REGION_CANVAS), mode="bicubic", align_corners=False)
    pattern = (smooth[0, 0] < _REGION_DENSITY).numpy()
    pattern.setflags(write=False)
    return pattern


def random_region_masks(size: int, n: int, seed: int, min_area: float = 0.20, max_area: float = 0.30) -> Tensor:
    """
    Pathak et al.'s random region masks: smooth random blobs covering
    `min_area`..`max_area` of the image (20-30 % by default).

    One large pattern is made per seed (see `_region_pattern`); masks are random
    `128 x 128` crops of it, rescaled to `size x size`, kept when the hole area
    of the *rescaled* mask lies in `[min_area, max_area]` (rejection sampling,
    as in `train_random.lua`, which loops until `20 < area% < 30`).
    """
    _check_size(size)
    _check_n(n)
    if not 0.0 <= min_area < max_area <= 1.0:
        raise ConfigError(f"need 0 <= min_area < max_area <= 1, got min_area={min_area}, max_area={max_area}.")
    rng = _rng(seed, stream=1)  # crop positions: a stream independent of the pattern's
    pattern = _region_pattern(int(seed))
    lo, hi = min_area * size * size, max_area * size * size
    out: list[np.ndarray] = []
    tries, max_tries = 0, 1000 * n + 10_000
    while len(out) < n:
        # Draw crops in batches: cheap, and the order of draws is fixed, so still deterministic.
        batch = 64
        tries += batch
        if tries > max_tries:
            raise MaskError(
                f"random_region_masks found only {len(out)} of {n} crops with hole area in "
                f"[{min_area}, {max_area}] after {max_tries} tries; widen the area range."
            )
        ys = rng.integers(0, _REGION_CANVAS - _REGION_CROP + 1, size=batch)
        xs = rng.integers(0, _REGION_CANVAS - _REGION_CROP + 1, size=batch)
        crops = np.stack([pattern[y : y + _REGION_CROP, x : x + _REGION_CROP] for y, x in zip(ys, xs, strict=True)])
        crops = _resize_binary(crops, size)
        areas = crops.reshape(batch, -1).sum(axis=1)
        for crop, area in zip(crops, areas, strict=True):
            if lo <= area <= hi and len(out) < n:
                out.append(crop)
    return _to_tensor(np.stack(out))


def _resize_binary(masks: np.ndarray, size: int) -> np.ndarray:
    """Resize `(B, h, w)` binary masks to `size x size`: bilinear then threshold at 1/2 (smooth edges)."""
    if masks.shape[-1] == size and masks.shape[-2] == size:
        return masks.astype(np.float32)
    t = torch.from_numpy(masks.astype(np.float64)).unsqueeze(1)
    t = F.interpolate(t, size=(size, size), mode="bilinear", align_corners=False)
    return (t[:, 0] >= 0.5).numpy().astype(np.float32)


# ---------------------------------------------------------------------------
# Random blocks (paper 001)
# ---------------------------------------------------------------------------


def random_block_masks(
    size: int,
    n: int,
    seed: int,
    max_fraction: float = 0.25,
    min_blocks: int = 1,
    max_blocks: int = 5,
    min_block: int | None = None,
    max_block: int | None = None,
) -> Tensor:
    """
    Several smaller, possibly overlapping squares covering at most
    `max_fraction` of the image in total (paper 001: up to 1/4).

    Per mask: draw the number of blocks `k` in `[min_blocks, max_blocks]`; for
    each block draw a side in `[min_block, max_block]` (default `size//8` to
    `size//4`) and a position fully inside the image. A block whose addition
    would push the union above `max_fraction` is redrawn (a few times, then
    skipped), so the budget is never exceeded and there is always >= 1 block.
    """
    _check_size(size, minimum=4)
    _check_n(n)
    min_block = max(1, size // 8) if min_block is None else int(min_block)
    max_block = max(min_block, size // 4) if max_block is None else int(max_block)
    if not 1 <= min_blocks <= max_blocks:
        raise ConfigError(f"need 1 <= min_blocks <= max_blocks, got {min_blocks}, {max_blocks}.")
    if not 1 <= min_block <= max_block < size:
        raise ConfigError(f"need 1 <= min_block <= max_block < size={size}, got {min_block}, {max_block}.")
    if not 0.0 < max_fraction <= 1.0:
        raise ConfigError(f"max_fraction must be in (0, 1], got {max_fraction}.")
    budget = max_fraction * size * size
    if min_block * min_block > budget:
        raise ConfigError(
            f"a single min_block={min_block} square ({min_block**2} px) exceeds max_fraction={max_fraction} "
            f"of a {size}x{size} image; lower min_block."
        )
    rng = _rng(seed)
    out = np.zeros((n, size, size), dtype=np.float32)
    for i in range(n):
        mask = out[i]
        for _ in range(int(rng.integers(min_blocks, max_blocks + 1))):
            for _attempt in range(10):
                # the cap keeps the first block always feasible
                hi = min(max_block, int(math.isqrt(int(budget))))
                side = int(rng.integers(min_block, max(min_block, hi) + 1))
                top, left = rng.integers(0, size - side + 1, size=2)
                trial = mask.copy()
                trial[top : top + side, left : left + side] = 1.0
                if trial.sum() <= budget:
                    mask[:] = trial
                    break
    return _to_tensor(out)


# ---------------------------------------------------------------------------
# Brush strokes (LaMa-like)
# ---------------------------------------------------------------------------

# In the spirit of LaMa's `random_{thin,medium,thick}_256` irregular-stroke
# settings (its extra boxes left out; "thin" made sparser so it stays thin
# strokes rather than a tangle), given for a 256 image and scaled to `size`:
# inclusive ranges of strokes per mask, segments per stroke, segment length
# and brush width (pixels).
_STROKE_PRESETS: dict[str, dict[str, tuple[int, int]]] = {
    "thin": {"strokes": (4, 20), "vertices": (1, 5), "length": (10, 60), "width": (3, 12)},
    "medium": {"strokes": (4, 5), "vertices": (1, 5), "length": (10, 110), "width": (5, 55)},
    "thick": {"strokes": (1, 5), "vertices": (1, 5), "length": (10, 210), "width": (5, 105)},
}
# LaMa's eval sets keep masks with at most 70 % hole; we also need >= 1 hole pixel.
_STROKE_MAX_AREA = 0.7


def stroke_masks(size: int, n: int, seed: int, width: str = "medium") -> Tensor:
    """
    Irregular brush strokes: each stroke is a random polyline (random start,
    random direction in `[0, 2 pi)` and length per segment) drawn with a thick
    round brush (`cv2.line`, width in pixels). `width` selects the preset
    (`"thin"`, `"medium"`, `"thick"`). Masks with no hole or more than 70 % hole
    are redrawn.
    """
    _check_size(size, minimum=8)
    _check_n(n)
    if width not in _STROKE_PRESETS:
        raise ConfigError(f"width must be one of {sorted(_STROKE_PRESETS)}, got {width!r}.")
    p = _STROKE_PRESETS[width]
    scale = size / 256.0

    def scaled(key: str) -> tuple[int, int]:
        a, b = p[key]
        return max(1, round(a * scale)), max(1, round(b * scale))

    length_lo, length_hi = scaled("length")
    width_lo, width_hi = scaled("width")
    rng = _rng(seed)
    out = np.zeros((n, size, size), dtype=np.uint8)
    for i in range(n):
        for _attempt in range(100):
            mask = np.zeros((size, size), dtype=np.uint8)
            for _ in range(int(rng.integers(p["strokes"][0], p["strokes"][1] + 1))):
                x, y = rng.uniform(0, size, size=2)
                brush = int(rng.integers(width_lo, width_hi + 1))
                for _ in range(int(rng.integers(p["vertices"][0], p["vertices"][1] + 1))):
                    angle = rng.uniform(0.0, 2.0 * math.pi)
                    length = rng.uniform(length_lo, length_hi)
                    nx = float(np.clip(x + length * math.cos(angle), 0, size - 1))
                    ny = float(np.clip(y + length * math.sin(angle), 0, size - 1))
                    # integer endpoints: cv2 rasterisation is then exact and platform independent
                    cv2.line(mask, (int(round(x)), int(round(y))), (int(round(nx)), int(round(ny))), 1, brush)
                    x, y = nx, ny
            if 0 < mask.sum() <= _STROKE_MAX_AREA * size * size:
                break
        else:
            raise MaskError(f"stroke_masks could not draw a valid {width!r} mask of size {size}; use a larger size.")
        out[i] = mask
    return _to_tensor(out)


# ---------------------------------------------------------------------------
# Random pixels (Yeh et al.)
# ---------------------------------------------------------------------------


def random_pixel_masks(size: int, n: int, seed: int, drop: float = 0.8) -> Tensor:
    """
    Each pixel is missing independently with probability `drop` (Yeh et al.:
    80 %). A mask that happens to be all-hole or all-known is redrawn.
    """
    _check_size(size)
    _check_n(n)
    if not 0.0 < drop < 1.0:
        raise ConfigError(f"drop must be in (0, 1) (fraction of missing pixels), got {drop}.")
    rng = _rng(seed)
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        while True:
            m = rng.random((size, size)) < drop
            # Only reachable on tiny images; keeps every mask usable.
            if 0 < m.sum() < m.size:
                break
        out[i] = m
    return _to_tensor(out)


# ---------------------------------------------------------------------------
# Dispatcher
# ---------------------------------------------------------------------------


def _center(size: int, n: int, seed: int, hole: int | None = None) -> Tensor:
    del seed  # deterministic by construction
    return center_mask(size, size // 2 if hole is None else hole, n)


def _half(side: str) -> Callable[..., Tensor]:
    def make(size: int, n: int, seed: int) -> Tensor:
        del seed
        return half_mask(size, side, n)

    return make


def _strokes(width: str) -> Callable[..., Tensor]:
    def make(size: int, n: int, seed: int) -> Tensor:
        return stroke_masks(size, n, seed, width=width)

    return make


_MAKERS: dict[str, Callable[..., Tensor]] = {
    "center": _center,
    "left": _half("left"),
    "right": _half("right"),
    "random_region": random_region_masks,
    "random_blocks": random_block_masks,
    "strokes_thin": _strokes("thin"),
    "strokes_medium": _strokes("medium"),
    "strokes_thick": _strokes("thick"),
    "random_pixels": random_pixel_masks,
}

MASK_KINDS: tuple[str, ...] = tuple(_MAKERS)


def _extra_kwargs(kind: str) -> list[str]:
    """Keyword arguments a kind accepts beyond `size, n, seed`."""
    params = inspect.signature(_MAKERS[kind]).parameters
    return [k for k in params if k not in ("size", "n", "seed")]


def make_masks(kind: str, size: int, n: int, seed: int = 0, **kwargs) -> Tensor:
    """
    Make `n` masks of `kind` for `size x size` images (see the table above).

    `kwargs` go to the generator, e.g. `hole=` for `"center"` (default
    `size // 2`), `min_area=`/`max_area=` for `"random_region"`, `drop=` for
    `"random_pixels"`. Unknown kinds or keywords raise `ConfigError`.
    """
    if kind not in _MAKERS:
        raise ConfigError(f"unknown mask kind {kind!r}; valid kinds: {', '.join(MASK_KINDS)}.")
    allowed = _extra_kwargs(kind)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ConfigError(
            f"mask kind {kind!r} does not take {', '.join(unknown)}; "
            f"valid keyword arguments: {', '.join(allowed) if allowed else 'none'}."
        )
    return _MAKERS[kind](size=size, n=n, seed=seed, **kwargs)


# ---------------------------------------------------------------------------
# Using masks
# ---------------------------------------------------------------------------


def apply_mask(
    images: Tensor,
    masks: Tensor,
    fill: str = "mean",
    mean_color=None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """
    Return `images` (`(N, 3, H, W)` in `[-1, 1]`) with the hole replaced.

    * `"mean"`: a per-channel colour, by default Pathak et al.'s ImageNet mean
      `IMAGENET_MEAN_RGB`, or `mean_color` (one value per channel);
    * `"noise"`: uniform noise in `[-1, 1]` from `generator` (a CPU
      `torch.Generator`; `None` means a fresh one seeded with 0, so the call is
      reproducible);
    * `"zero"`: `0`.

    Known pixels are copied bit-for-bit (`torch.where`, not arithmetic
    blending). `masks` is `(N, 1, H, W)` or a single `(1, 1, H, W)` mask
    broadcast over the batch; it is checked with `check_masks`.
    """
    check_masks(masks, images)
    hole = masks.to(device=images.device) != 0
    c = images.shape[1]
    if fill == "mean":
        color = IMAGENET_MEAN_RGB if mean_color is None else mean_color
        color = torch.as_tensor(color, dtype=images.dtype, device=images.device).flatten()
        if color.numel() != c:
            raise ConfigError(f"mean_color needs {c} values (one per channel), got {color.numel()}.")
        value = color.view(1, c, 1, 1).expand_as(images)
    elif fill == "noise":
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        noise = torch.rand(images.shape, generator=generator, dtype=torch.float32, device=generator.device)
        value = (noise * 2.0 - 1.0).to(device=images.device, dtype=images.dtype)
    elif fill == "zero":
        value = torch.zeros((), dtype=images.dtype, device=images.device)
    else:
        raise ConfigError(f'fill must be "mean", "noise" or "zero", got {fill!r}.')
    return torch.where(hole, value, images)


def check_masks(masks: Tensor, images: Tensor | None = None) -> None:
    """
    Raise `MaskError` unless `masks` follows the convention: a `(N, 1, H, W)`
    tensor of 0/1 values where every mask has at least one hole pixel and at
    least one known pixel; with `images`, `N` must match (or be 1) and `H, W`
    must equal the images'.
    """
    if not isinstance(masks, Tensor):
        raise MaskError(f"masks must be a torch.Tensor of shape (N, 1, H, W), got {type(masks).__name__}.")
    if masks.ndim != 4 or masks.shape[1] != 1:
        raise MaskError(
            f"masks must have shape (N, 1, H, W), got {tuple(masks.shape)}; add the channel axis with .unsqueeze(1)."
        )
    if images is not None:
        if images.ndim != 4:
            raise MaskError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}.")
        if masks.shape[-2:] != images.shape[-2:]:
            raise MaskError(
                f"mask size {tuple(masks.shape[-2:])} differs from image size {tuple(images.shape[-2:])}; "
                "make the masks for the image size."
            )
        if masks.shape[0] not in (1, images.shape[0]):
            raise MaskError(
                f"{masks.shape[0]} masks for {images.shape[0]} images; give one mask per image or a single mask."
            )
    bad = ~((masks == 0) | (masks == 1))
    if bool(bad.any()):
        i = int(bad.flatten(1).any(dim=1).nonzero()[0])
        raise MaskError(
            f"mask {i} has values other than 0 and 1 (e.g. {float(masks[bad][0])}); "
            "masks are binary: threshold them, e.g. (m > 0.5).float()."
        )
    area = masks.flatten(1).sum(dim=1)
    empty = (area == 0).nonzero().flatten().tolist()
    if empty:
        raise MaskError(f"mask(s) {empty[:10]} have no hole (all zero); every mask needs at least one missing pixel.")
    full = (area == masks[0].numel()).nonzero().flatten().tolist()
    if full:
        raise MaskError(f"mask(s) {full[:10]} have no known pixel (all one); the model needs some context.")


def hole_bbox(mask_2d) -> tuple[int, int, int, int]:
    """
    `(top, left, height, width)` of the bounding box of the hole (`1` pixels)
    of one mask: a `(H, W)` tensor/array, or `(1, H, W)` / `(1, 1, H, W)`.
    Used to crop the hole patch, e.g. `x[..., t:t+h, l:l+w]`.
    """
    m = mask_2d.detach().cpu() if isinstance(mask_2d, Tensor) else torch.as_tensor(np.asarray(mask_2d))
    while m.ndim > 2 and m.shape[0] == 1:
        m = m[0]
    if m.ndim != 2:
        raise MaskError(f"hole_bbox needs one 2-D mask (H, W), got shape {tuple(m.shape)}; pass masks[i, 0].")
    hole = m != 0
    rows = hole.any(dim=1).nonzero().flatten()
    cols = hole.any(dim=0).nonzero().flatten()
    if rows.numel() == 0:
        raise MaskError("hole_bbox got a mask with no hole (all zero); it has no bounding box.")
    top, left = int(rows[0]), int(cols[0])
    return top, left, int(rows[-1]) - top + 1, int(cols[-1]) - left + 1
