"""Seeded face-mask occlusions: a surgical or cloth mask drawn over the lower face (paper 002).

Han, Jiang & Ju, *GAN-based Algorithm for Efficient Image Inpainting* (2021), restore the part of a
face hidden by a COVID face mask. Their data set and masks are not available, so we draw the
occlusion ourselves from dlib's 68 facial landmarks (iBUG 300-W numbering, see
:mod:`facefill.landmarks`): 0–16 jaw, 27–30 nose bridge, 30 nose tip, 8 chin.

Geometry of one mask (image coordinates, y down):

* **top edge** at height ``y_top = y27 + t·(y30 − y27)`` with ``t ~ U(top_range)`` — somewhere on
  the nose bridge (the height variation of a mask worn higher or lower);
* **sides**: the jaw contour at ``y_top``, ``x_L(y_top)`` and ``x_R(y_top)``, interpolated along
  points 0–8 and 8–16 ("jaw line to jaw line");
* **bottom**: the jaw points below ``y_top`` pushed out from the nose tip by a factor
  ``1 + m``, ``m ~ U(margin_range)`` (the fabric stands off the skin), and the chin lowered by
  ``chin_drop · face height``;
* **shape**: ``surgical`` — a straight top edge pinched up over the nose bridge by ``peak``;
  ``cloth`` — a top edge that is a parabola through the nose bridge, ``y = y_top − b·(1 − u²)``
  with ``u ∈ [−1, 1]`` across the face;
* **tilt**: the polygon is rotated by ``θ ~ U(−tilt_deg, tilt_deg)`` around the nose tip;
* **eyes stay visible**: the rasterised mask is cut at the line through the lowest landmark of each
  eye (:func:`below_eyes`): on a head tilted down or turned, the nose-bridge top edge can otherwise rise
  over an eye (in a probe on 100 CelebA-HQ test faces at 64 px, 12 masks did). ``FaceMasks.clipped`` counts the cuts.

The polygon is rasterised with OpenCV (sub-pixel vertices, ``shift = 4``) into a ``(N, 1, H, W)``
float32 mask with the convention of :mod:`facefill.masks`: **1 = missing** (under the face mask).

Landmarks come from :func:`facefill.landmarks.landmarks` with ``box="detect"`` (dlib's HOG detector,
then the shape predictor in the detected box). Where the detector finds no face we fall back to a
fixed **template** of the 68 points for aligned crops (:data:`ALIGNED_TEMPLATE`, the mean landmarks
of CelebA-HQ test faces at 128 px, normalised to the unit square) and *count* those fallbacks: the
report states how many masks were placed blind.

Every random draw uses a local ``numpy.random.Generator(PCG64([seed, i]))`` per image ``i``, so mask
``i`` depends only on ``(seed, i, landmarks_i)``: the same call gives bit-identical masks in every
process, and the global random state is never touched.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

from .errors import ConfigError, DataError

SHAPES = ("surgical", "cloth")

#: Mean dlib landmarks of 32 CelebA-HQ test faces at 128 px (``box="detect"``, all detected),
#: divided by 128: the fallback for aligned crops where the detector finds no face.
ALIGNED_TEMPLATE = np.array(
    [[29, 61], [29, 70], [30, 79], [32, 89], [35, 97], [41, 105], [48, 111], [55, 117], [63, 118], [72, 117],
     [79, 112], [86, 105], [92, 98], [96, 90], [98, 80], [99, 71], [99, 62], [35, 54], [40, 51], [46, 50],
     [52, 51], [58, 54], [70, 54], [76, 51], [82, 50], [88, 51], [93, 55], [64, 61], [64, 67], [64, 73],
     [64, 79], [57, 83], [60, 84], [64, 86], [67, 84], [71, 83], [42, 62], [46, 59], [51, 59], [55, 63],
     [50, 64], [46, 63], [73, 63], [77, 59], [82, 59], [86, 62], [82, 63], [78, 64], [49, 93], [55, 91],
     [60, 90], [64, 91], [68, 91], [73, 92], [79, 93], [73, 100], [68, 102], [64, 103], [60, 103], [54, 100],
     [52, 94], [60, 94], [64, 94], [68, 94], [76, 94], [68, 97], [64, 98], [60, 97]],
    dtype=np.float32,
) / 128.0


@dataclass
class FaceMaskConfig:
    shapes: tuple = SHAPES  # mask styles drawn uniformly: "surgical" and/or "cloth"
    top_range: tuple = (0.5, 0.8)  # top edge between nose points 27 (0) and 30 (1)
    margin_range: tuple = (0.03, 0.10)  # outward push of the jaw outline (fraction of the radius)
    chin_drop: float = 0.05  # chin lowered by this fraction of the face height (chin - nose root)
    peak: float = 0.06  # surgical: nose pinch height, fraction of the face height
    arch: float = 0.08  # cloth: parabola height of the top edge, fraction of the face height
    tilt_deg: float = 8.0  # rotation drawn from U(-tilt_deg, tilt_deg) around the nose tip

    def __post_init__(self):
        self.shapes = tuple(self.shapes)
        bad = [s for s in self.shapes if s not in SHAPES]
        if not self.shapes or bad:
            raise ConfigError(f"shapes={self.shapes!r}: choose a non-empty subset of {SHAPES}.")
        for name in ("top_range", "margin_range"):
            lo, hi = getattr(self, name)
            if not 0 <= lo <= hi <= 1.5:
                raise ConfigError(f"{name}={getattr(self, name)}: need 0 <= low <= high (fractions).")
        if self.tilt_deg < 0 or self.tilt_deg > 45:
            raise ConfigError(f"tilt_deg={self.tilt_deg}: use 0..45 degrees.")


def _side_x(jaw: np.ndarray, y: float) -> float:
    """x of a jaw half-contour (points ordered by increasing y) at height ``y`` (clamped to its ends)."""
    order = np.argsort(jaw[:, 1])
    return float(np.interp(y, jaw[order, 1], jaw[order, 0]))


def mask_polygon(points: np.ndarray, shape: str, rng: np.random.Generator, cfg: FaceMaskConfig | None = None) -> np.ndarray:
    """Vertices (K, 2) of a face mask over the lower face described by 68 landmarks (x, y)."""
    cfg = cfg or FaceMaskConfig()
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (68, 2):
        raise DataError(f"mask_polygon needs dlib's 68 (x, y) landmarks, got shape {p.shape}.")
    if shape not in SHAPES:
        raise ConfigError(f"shape={shape!r}: choose one of {SHAPES}.")
    t = rng.uniform(*cfg.top_range)
    m = rng.uniform(*cfg.margin_range)
    theta = np.deg2rad(rng.uniform(-cfg.tilt_deg, cfg.tilt_deg))
    nose_root, nose_tip, chin = p[27], p[30], p[8]
    face_h = max(chin[1] - nose_root[1], 1e-3)
    y_top = nose_root[1] + t * (nose_tip[1] - nose_root[1])
    xl, xr = _side_x(p[0:9], y_top), _side_x(p[8:17], y_top)
    # the jaw outline below the top edge, right side down to the chin, then the left side up
    jaw = np.concatenate([p[16:8:-1], p[8:9], p[7::-1]])
    jaw = jaw[jaw[:, 1] > y_top]
    jaw = nose_tip + (1 + m) * (jaw - nose_tip)
    chin_i = int(np.argmax(jaw[:, 1])) if len(jaw) else None
    if chin_i is not None:
        jaw[chin_i, 1] += cfg.chin_drop * face_h
    cx = nose_root[0] + t * (nose_tip[0] - nose_root[0])
    if shape == "surgical":
        top = np.array([[xl, y_top], [cx, y_top - cfg.peak * face_h], [xr, y_top]])
    else:  # cloth: parabolic top edge through the bridge
        u = np.linspace(-1, 1, 15)
        half = (xr - xl) / 2
        top = np.stack([cx + u * half, y_top - cfg.arch * face_h * (1 - u**2)], 1)
    top[:, 0] = nose_tip[0] + (1 + m) * (top[:, 0] - nose_tip[0])  # the same stand-off as the jaw outline
    # outline: top edge left → right, then the jaw from the right side down and back up the left
    poly = np.concatenate([top, jaw])
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    return (poly - nose_tip) @ rot.T + nose_tip


def below_eyes(mask: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``mask`` (H, W) with every pixel on or above the line through the two lower eyelids' lowest
    landmarks removed: a face mask leaves the eyes visible, however the head or the mask is tilted."""
    p = np.asarray(points, np.float64)
    (x1, y1), (x2, y2) = (p[list(eye)][np.argmax(p[list(eye), 1])] for eye in EYES)
    h, w = mask.shape
    xs = np.arange(w, dtype=np.float64)
    line = y1 + (y2 - y1) * (xs - x1) / (x2 - x1) if abs(x2 - x1) > 1e-6 else np.full(w, max(y1, y2))
    return np.where(np.arange(h)[:, None] > line[None, :], mask, 0).astype(mask.dtype)


def rasterize(polygon: np.ndarray, height: int, width: int) -> np.ndarray:
    """0/1 float32 (H, W) image of a polygon (sub-pixel vertices)."""
    out = np.zeros((height, width), np.uint8)
    pts = np.round(np.asarray(polygon) * 16).astype(np.int32)  # shift=4: 1/16 px precision
    cv2.fillPoly(out, [pts], 1, lineType=cv2.LINE_8, shift=4)
    return out.astype(np.float32)


def template_landmarks(height: int, width: int) -> np.ndarray:
    """The aligned-crop template (68, 2) at an image size."""
    return (ALIGNED_TEMPLATE * np.array([width, height], np.float32)).astype(np.float32)


#: dlib's 68-point indices of the two eyes (iBUG 300-W): a face mask must leave both visible
EYES = (range(36, 42), range(42, 48))


def covers_eyes(masks: torch.Tensor, points: np.ndarray) -> np.ndarray:
    """(N,) bool: mask ``i`` covers the centre of either eye of ``points`` ((68, 2) for every image, or
    (N, 68, 2)): a mask drawn from misplaced landmarks (a face the shape predictor misread in its box)."""
    m = masks[:, 0].numpy() if isinstance(masks, torch.Tensor) else np.asarray(masks)[:, 0]
    n, h, w = m.shape
    pts = np.broadcast_to(np.asarray(points, np.float32), (n, 68, 2))
    out = np.zeros(n, bool)
    for eye in EYES:
        c = pts[:, list(eye)].mean(1)
        x = np.clip(np.round(c[:, 0]).astype(int), 0, w - 1)
        y = np.clip(np.round(c[:, 1]).astype(int), 0, h - 1)
        out |= m[np.arange(n), y, x] > 0.5
    return out


def detect_landmarks(images: np.ndarray, cache: str | Path | None = None) -> tuple[np.ndarray, np.ndarray]:
    """dlib landmarks with the detector; ``(points (N, 68, 2), detected (N,) bool)``.

    Undetected faces get :func:`template_landmarks`. With ``cache`` (an ``.npz`` path) the result is
    stored keyed by a hash of the images and reused on the next call with the same images (dlib's
    detector takes ~0.1 s per 128-px face on one CPU core).
    """
    from . import landmarks as lm

    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f"face masks need uint8 RGB images (N, H, W, 3), got {images.shape} {images.dtype}; "
                        "pass what facefill.data.load_faces returns.")
    key = hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()[:16]
    if cache is not None and Path(cache).exists():
        stored = np.load(cache)
        if str(stored["key"]) == key:
            return stored["points"], stored["detected"]
    points, detected = lm.landmarks(images, box="detect")
    points[~detected] = template_landmarks(*images.shape[1:3])
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        np.savez(cache, key=key, points=points, detected=detected)
    return points, detected


@dataclass
class FaceMasks:
    """Masks (N, 1, H, W) (1 = under the face mask), the landmarks used and which were detected."""

    masks: torch.Tensor
    points: np.ndarray
    detected: np.ndarray
    shapes: list
    clipped: np.ndarray | None = None  # (N,) bool: the drawn polygon rose over the eyes and was cut at the eye line

    @property
    def n_fallback(self) -> int:
        """How many masks were placed on the aligned-crop template (no face detected)."""
        return int((~self.detected).sum())


def face_masks(images: np.ndarray, seed: int, cfg: FaceMaskConfig | None = None, points: np.ndarray | None = None,
               detected: np.ndarray | None = None, cache: str | Path | None = None) -> FaceMasks:
    """One seeded face-mask occlusion per uint8 (N, H, W, 3) face.

    Landmarks are detected (see :func:`detect_landmarks`) unless ``points`` (and ``detected``) are
    given. Mask ``i`` is drawn from ``PCG64([seed, i])``: independent of the other images.
    """
    cfg = cfg or FaceMaskConfig()
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}.")
    images = np.asarray(images)
    if points is None:
        points, detected = detect_landmarks(images, cache)
    elif detected is None:
        detected = np.ones(len(points), bool)
    n, h, w = images.shape[:3]
    if len(points) != n:
        raise DataError(f"{len(points)} landmark sets for {n} images.")
    masks = np.zeros((n, 1, h, w), np.float32)
    shapes, clipped = [], np.zeros(n, bool)
    for i in range(n):
        rng = np.random.Generator(np.random.PCG64([int(seed), i]))
        shape = cfg.shapes[int(rng.integers(len(cfg.shapes)))]
        drawn = rasterize(mask_polygon(points[i], shape, rng, cfg), h, w)
        masks[i, 0] = below_eyes(drawn, points[i])
        clipped[i] = not np.array_equal(masks[i, 0], drawn)
        shapes.append(shape)
    empty = np.flatnonzero(masks.reshape(n, -1).sum(1) == 0)
    if len(empty):
        raise DataError(f"face masks of images {empty[:10].tolist()} are empty: their landmarks lie outside the image.")
    return FaceMasks(torch.from_numpy(masks), np.asarray(points), np.asarray(detected, bool), shapes, clipped)


def as_uint8_images(masks: torch.Tensor) -> np.ndarray:
    """(N, 1, H, W) 0/1 masks → uint8 (N, H, W, 3) 0/255, so :func:`facefill.train.fit` can batch
    (and flip) them together with the faces as a second image array."""
    m = torch.as_tensor(masks)
    if m.ndim != 4 or m.shape[1] != 1:
        raise DataError(f"masks must be (N, 1, H, W), got {tuple(m.shape)}.")
    return (m[:, 0, :, :, None].expand(-1, -1, -1, 3) * 255).round().to(torch.uint8).numpy().copy()


def from_model_input(mask_images: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`as_uint8_images` after ``to_model_input`` (values −1 / 1): (N, 1, H, W) 0/1."""
    return (mask_images[:, :1] > 0).to(mask_images.dtype)


def occlude(images: torch.Tensor, masks: torch.Tensor, fill: float = -1.0) -> torch.Tensor:
    """Images (N, 3, H, W) in [-1, 1] with the masked region set to ``fill`` (−1: blacked out)."""
    m = masks.to(device=images.device, dtype=images.dtype)
    return images * (1 - m) + fill * m


__all__ = [
    "ALIGNED_TEMPLATE",
    "EYES",
    "SHAPES",
    "FaceMaskConfig",
    "FaceMasks",
    "as_uint8_images",
    "below_eyes",
    "covers_eyes",
    "detect_landmarks",
    "face_masks",
    "from_model_input",
    "mask_polygon",
    "occlude",
    "rasterize",
    "template_landmarks",
]
