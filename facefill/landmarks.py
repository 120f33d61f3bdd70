"""dlib's 68-point facial landmarks and 128-d face descriptors (papers 002 and 003).

The models come from the PyPI package ``face-recognition-models`` (installed offline, no download at
run time): ``shape_predictor_68_face_landmarks.dat`` (iBUG 300-W points: 0–16 jaw, 17–26 brows,
27–35 nose, 36–47 eyes, 48–67 mouth) and ``dlib_face_recognition_resnet_model_v1.dat`` (a ResNet
whose 128-d descriptors are ~0.6 apart for different people, Euclidean distance).

Faces in this project are *aligned crops* (CelebA, CelebA-HQ, LFW deep-funneled), often tiny (64 px).
dlib's HOG detector does not find faces under ~80 px, so the default face box is the crop itself
(``box="crop"``) and small images are upscaled before predicting (``upscale``); ``box="detect"``
runs the detector and falls back to the crop box, reporting which images fell back.
"""
from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataError, DataNotFoundError
from .profiling import timed

JAW, BROWS, NOSE, EYES, MOUTH = range(0, 17), range(17, 27), range(27, 36), range(36, 48), range(48, 68)


def model_path(filename: str) -> Path:
    """Path of a model file shipped by ``face-recognition-models`` (without importing it: its
    ``__init__`` needs ``pkg_resources``, which recent setuptools no longer ship)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or spec.origin is None:
        raise DataNotFoundError("dlib's model files are missing: `pip install face-recognition-models` (also in the project's dependencies).")
    path = Path(spec.origin).parent / "models" / filename
    if not path.exists():
        raise DataNotFoundError(f"{path} not found: reinstall face-recognition-models.")
    return path


@lru_cache(maxsize=None)
def shape_predictor():
    """dlib's 68-point shape predictor (loaded once)."""
    import dlib

    return dlib.shape_predictor(str(model_path("shape_predictor_68_face_landmarks.dat")))


@lru_cache(maxsize=None)
def face_detector():
    """dlib's frontal-face detector (HOG; built once)."""
    import dlib

    return dlib.get_frontal_face_detector()


@lru_cache(maxsize=None)
def _recognizer():
    import dlib

    return dlib.face_recognition_model_v1(str(model_path("dlib_face_recognition_resnet_model_v1.dat")))


def check_images(images: np.ndarray) -> np.ndarray:
    """``images`` as uint8 RGB (N, H, W, 3) (one (H, W, 3) image gets a batch axis); a DataError otherwise."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[None]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise DataError(f"landmarks need uint8 RGB images (N, H, W, 3); got {images.shape} {images.dtype}. Use facefill.data.to_uint8 first.")
    return images


def upscaled(img: np.ndarray, upscale: float) -> np.ndarray:
    """``img`` resized by ``upscale`` (bicubic) as the detector sees it; ``upscale`` 1: ``img`` itself, made contiguous."""
    if upscale == 1:
        return np.ascontiguousarray(img)
    h, w = img.shape[:2]
    return np.asarray(Image.fromarray(img).resize((round(w * upscale), round(h * upscale)), Image.BICUBIC))


def default_upscale(size: int, target: int = 256) -> float:
    """Upscale factor that brings a ``size``-px crop to about ``target`` px (never below 1)."""
    return max(1.0, target / size)


def landmarks(images: np.ndarray, box: str = "crop", upscale: float | None = None, margin: float = 0.0):
    """68 (x, y) points per image, in the input's pixel coordinates.

    Returns ``(points (N, 68, 2) float32, detected (N,) bool)``; ``detected`` is False where
    ``box="detect"`` found no face and the crop box was used instead (always False for ``"crop"``).
    ``margin`` shrinks the crop box by that fraction per side (aligned crops have some background).
    """
    import dlib

    images = check_images(images)
    n, h, w = images.shape[:3]
    up = upscale or default_upscale(max(h, w))
    pred = shape_predictor()
    pts = np.zeros((n, 68, 2), np.float32)
    detected = np.zeros(n, bool)
    with timed("dlib"):
        for i, img in enumerate(images):
            big = upscaled(img, up)
            H, W = big.shape[:2]
            rect = dlib.rectangle(round(margin * W), round(margin * H), round((1 - margin) * W) - 1, round((1 - margin) * H) - 1)
            if box == "detect":
                found = face_detector()(big, 0)
                if len(found):
                    rect, detected[i] = max(found, key=lambda r: r.area()), True
            elif box != "crop":
                raise ValueError(f"box={box!r}: use 'crop' or 'detect'")
            shape = pred(big, rect)
            pts[i] = [(p.x / up, p.y / up) for p in shape.parts()]
    return pts, detected


def descriptors(images: np.ndarray, box: str = "detect", upscale: float | None = None) -> np.ndarray:
    """dlib's 128-d face descriptors (N, 128); compare with Euclidean distance (same person ≲ 0.6)."""
    import dlib

    images = check_images(images)
    n, h, w = images.shape[:3]
    up = upscale or default_upscale(max(h, w), 200)
    rec, pred = _recognizer(), shape_predictor()
    out = np.zeros((n, 128), np.float32)
    with timed("dlib"):
        for i, img in enumerate(images):
            big = upscaled(img, up)
            H, W = big.shape[:2]
            rect = dlib.rectangle(0, 0, W - 1, H - 1)
            if box == "detect":
                found = face_detector()(big, 0)
                if len(found):
                    rect = max(found, key=lambda r: r.area())
            shape = pred(big, rect)
            out[i] = np.asarray(rec.compute_face_descriptor(big, shape))
    return out


def identity_distance(restored: np.ndarray, reference: np.ndarray, upscale: float | None = None) -> np.ndarray:
    """Per-image identity distance (N,): Euclidean distance between dlib's 128-d descriptors of
    ``restored`` and ``reference`` (uint8 RGB, same shape), both computed at the landmarks dlib finds
    on the *reference* inside the known face box (the crop). No detection, so no image silently
    drops out, and both descriptors see the same aligned chip: only the restored pixels differ.
    Same person ≲ 0.6 for dlib's model; 0 means an identical descriptor.
    """
    import dlib

    restored, reference = check_images(restored), check_images(reference)
    if restored.shape != reference.shape:
        raise DataError(f"identity_distance needs images of one shape; got {restored.shape} and {reference.shape}.")
    n, h, w = reference.shape[:3]
    up = upscale or default_upscale(max(h, w), 200)
    rec, pred = _recognizer(), shape_predictor()
    out = np.zeros(n, np.float32)
    for i in range(n):
        big_ref, big_res = upscaled(reference[i], up), upscaled(restored[i], up)
        H, W = big_ref.shape[:2]
        shape = pred(big_ref, dlib.rectangle(0, 0, W - 1, H - 1))
        a = np.asarray(rec.compute_face_descriptor(big_ref, shape))
        b = np.asarray(rec.compute_face_descriptor(big_res, shape))
        out[i] = np.linalg.norm(a - b)
    return out


def reference_descriptors(reference: np.ndarray, upscale: float | None = None):
    """dlib's landmarks and 128-d descriptors of ``reference`` faces in the known face box, computed once
    for :func:`identity_distances` (which compares many restorations with the same originals)."""
    import dlib

    reference = check_images(reference)
    n, h, w = reference.shape[:3]
    up = upscale or default_upscale(max(h, w), 200)
    rec, pred = _recognizer(), shape_predictor()
    shapes, desc = [], np.zeros((n, 128), np.float64)
    for i in range(n):
        big = upscaled(reference[i], up)
        H, W = big.shape[:2]
        shapes.append(pred(big, dlib.rectangle(0, 0, W - 1, H - 1)))
        desc[i] = np.asarray(rec.compute_face_descriptor(big, shapes[i]))
    return {"shape": reference.shape, "upscale": up, "shapes": shapes, "descriptors": desc}


def identity_distances(restored: np.ndarray, reference) -> np.ndarray:
    """:func:`identity_distance` against precomputed :func:`reference_descriptors` (same numbers, half the work)."""
    restored = check_images(restored)
    if restored.shape != reference["shape"]:
        raise DataError(f"identity_distances needs images of the reference shape {reference['shape']}; got {restored.shape}.")
    rec = _recognizer()
    out = np.zeros(len(restored), np.float32)
    for i in range(len(restored)):
        b = np.asarray(rec.compute_face_descriptor(upscaled(restored[i], reference["upscale"]), reference["shapes"][i]))
        out[i] = np.linalg.norm(reference["descriptors"][i] - b)
    return out
