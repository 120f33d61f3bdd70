"""Decoding one image: mode conversion to RGB, the crops (DCGAN's CelebA box, centre square, whole),
LANCZOS resize, JPEG draft decoding; unusable images raise ``_BadImage``."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
from PIL import Image

from facefill.errors import ConfigError

from .sources import DatasetSpec

CROPS = ("default", "whole")

# DCGAN's CelebA crop: 108x108 centred on the official 178x218 aligned image.
CELEBA_CROP, CELEBA_W = 108, 178

#: image modes converted to RGB (with how they are converted); any other mode is "unexpected"
CONVERTIBLE_MODES = {
    "L": "grayscale converted to RGB",
    "LA": "grayscale+alpha converted to RGB (alpha dropped)",
    "RGBA": "RGBA converted to RGB (alpha dropped)",
    "RGBX": "RGBX converted to RGB",
    "P": "palette converted to RGB",
    "PA": "palette+alpha converted to RGB (alpha dropped)",
    "CMYK": "CMYK converted to RGB",
    "YCbCr": "YCbCr converted to RGB",
}


class _BadImage(Exception):
    def __init__(self, kind: str, reason: str):  # kind: "corrupt" or "unexpected"
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _crop_box(kind: str, w: int, h: int) -> tuple[int, int, int, int]:
    if kind == "whole":
        return 0, 0, w, h
    if kind == "celeba108":
        side = min(round(CELEBA_CROP * w / CELEBA_W), w, h)  # 108 on 178 wide, 54 on the 89-wide copy
    else:  # "square"
        side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2  # floor: (35, 55) on 178x218, as DCGAN
    return left, top, left + side, top + side


def _crop_kind(spec: DatasetSpec, crop: str) -> str:
    if crop not in CROPS:
        raise ConfigError(f"unknown crop {crop!r}: use one of {CROPS}")
    return spec.default_crop if crop == "default" else "whole"


def _draft_scale(kind: str, size: int, w: int, h: int) -> int:
    # largest JPEG DCT scale that keeps the crop at least twice the target, so LANCZOS still does the real work
    l, t, r, b = _crop_box(kind, w, h)
    for scale in (8, 4, 2):
        if min(r - l, b - t) >= 2 * size * scale:
            return scale
    return 1


@dataclasses.dataclass
class _Decoded:
    images: list[np.ndarray]  # one per requested (crop kind, size)
    converted: str | None  # how a non-RGB image was converted (CONVERTIBLE_MODES), None for RGB
    upscaled: list[str | None]  # per variant: "crop WxH" when the crop was smaller than the size


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("P", "PA"):  # via RGBA: PIL wants palette transparency resolved first
        im = im.convert("RGBA")
    return im.convert("RGB")  # also forces the decode: truncated data fails here


def _decode_variants(data: bytes, spec: DatasetSpec, variants: list[tuple[str, int]]) -> _Decoded:
    """Decode one image for several (crop kind, size); raises _BadImage for corrupt / unexpected ones."""
    try:
        header = Image.open(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad bytes; all mean "corrupt"
        raise _BadImage("corrupt", f"cannot open: {e}") from None
    if header.mode != "RGB" and header.mode not in CONVERTIBLE_MODES:
        raise _BadImage("unexpected", f"mode {header.mode} cannot be converted to RGB "
                                      f"(expected RGB or one of {', '.join(CONVERTIBLE_MODES)})")
    w, h = header.size
    if spec.native_sizes and (w, h) not in spec.native_sizes:
        expected = " or ".join(f"{a}x{b}" for a, b in spec.native_sizes)
        raise _BadImage("unexpected", f"size {w}x{h}, expected {expected}")
    upscaled: list[str | None] = []
    for kind, size in variants:  # judged on the full-resolution crop (draft only ever shrinks >= 2x the size)
        l, t, r, b = _crop_box(kind, w, h)
        upscaled.append(f"crop {r - l}x{b - t}" if min(r - l, b - t) < size else None)
    out: list[np.ndarray | None] = [None] * len(variants)
    scales = [_draft_scale(kind, size, w, h) if header.format == "JPEG" else 1 for kind, size in variants]
    for k, scale in enumerate(sorted(set(scales))):  # usually one scale: each image is decoded once
        im = header if k == 0 else Image.open(io.BytesIO(data))  # draft() only works before decoding
        try:
            if scale > 1:
                im.draft(im.mode, (w // scale, h // scale))
            im = _to_rgb(im)
        except Exception as e:  # noqa: BLE001 -- truncated / broken data, whatever PIL calls it
            raise _BadImage("corrupt", f"cannot decode: {e}") from None
        for i, (kind, size) in enumerate(variants):
            if scales[i] == scale:
                box = _crop_box(kind, *im.size)
                crop = im.crop(box)
                if crop.size != (size, size):
                    crop = crop.resize((size, size), Image.LANCZOS)
                out[i] = np.asarray(crop, dtype=np.uint8)
    return _Decoded(out, None if header.mode == "RGB" else CONVERTIBLE_MODES[header.mode], upscaled)


#: our half-resolution CelebA copy (``img_align_celeba_half.zip``): its DCGAN crop is 54x54
HALF_RES_CELEBA = (89, 109)


def _half_res_celeba(spec: DatasetSpec, crop: str, upscaled: dict[str, str]) -> bool:
    """Every upscaled image is a DCGAN crop of the half-resolution CelebA copy: expected, documented, no warning."""
    if spec.name != "celeba" or _crop_kind(spec, crop) != "celeba108":
        return False
    l, t, r, b = _crop_box("celeba108", *HALF_RES_CELEBA)
    return set(upscaled.values()) == {f"crop {r - l}x{b - t}"}


def _summarize(bad: dict[str, tuple[str, str]], limit: int = 10) -> str:
    lines = [f"  {name}: {kind}, {reason}" for name, (kind, reason) in list(bad.items())[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ConfigError(f"size={size!r} must be a positive int (e.g. 64, 128, 250)")
    return int(size)
