"""Faces in a photo → aligned crops like the training data → results pasted back.

The models are trained on aligned crops (CelebA-HQ, CelebA, LFW): the eyes, nose and mouth sit at
nearly the same pixels in every crop. A face in a user's photo is brought into that frame:

1. dlib's HOG detector finds the faces, the 68-point shape predictor places the landmarks ``p_i``
   (the procedure :func:`facefill.api.training_landmarks` ran on the training crops);
2. the *similarity transform* (rotation ``R``, scale ``s``, translation ``t``) that maps them onto
   the template ``q_i`` — the mean landmarks of the model's training crops — in the least-squares
   sense, ``min Σ‖s·R·p_i + t − q_i‖²``, has the closed form of Umeyama (1991): with centred point
   sets ``P, Q`` and the SVD ``Qᵀ P = U Σ Vᵀ``, ``R = U D Vᵀ`` (``D = diag(1, det(U Vᵀ))`` rules out a
   reflection), ``s = tr(Σ D) / ‖P‖²``, ``t = q̄ − s·R·p̄``;
3. the crop is the photo resampled through that transform (bilinear);
4. after the model, the changed pixels (the mask) go back through the inverse transform and are
   blended into the photo with a slightly feathered mask; everything else stays untouched.
"""
from __future__ import annotations

import cv2
import numpy as np

from .errors import DataError


def find_faces(photo: np.ndarray, upsample: int | None = None) -> list[np.ndarray]:
    """68 landmarks (x, y) of every face dlib's detector finds in a uint8 (H, W, 3) photo, left to right.

    ``upsample`` (detector pyramid steps up; default: 1 for photos under 1000 px, else 0) lets it
    find faces down to ~40 px instead of ~80 px.
    """
    import dlib

    from .landmarks import face_detector, shape_predictor

    photo = np.ascontiguousarray(photo)
    if photo.dtype != np.uint8 or photo.ndim != 3 or photo.shape[-1] != 3:
        raise DataError(f"find_faces needs a uint8 RGB photo (H, W, 3), got {photo.dtype} {photo.shape}.")
    if upsample is None:
        upsample = 1 if max(photo.shape[:2]) < 1000 else 0
    boxes = sorted(face_detector()(photo, upsample), key=lambda r: r.left())
    pred = shape_predictor()
    return [np.array([(p.x, p.y) for p in pred(photo, dlib.rectangle(r.left(), r.top(), r.right(), r.bottom())).parts()],
                     np.float64) for r in boxes]


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The 2×3 matrix ``[s·R | t]`` of the least-squares similarity ``src → dst`` (Umeyama, no reflection)."""
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise DataError(f"similarity_transform needs two (K, 2) point sets of one shape, got {src.shape} and {dst.shape}.")
    mu_s, mu_d = src.mean(0), dst.mean(0)
    p, q = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(q.T @ p)
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = np.trace(np.diag(sigma) @ d) / max((p**2).sum(), 1e-12)
    return np.hstack([scale * rot, (mu_d - scale * rot @ mu_s)[:, None]])


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Points (K, 2) through a 2×3 affine matrix."""
    pts = np.asarray(points, np.float64)
    return pts @ matrix[:, :2].T + matrix[:, 2]


def align_face(photo: np.ndarray, points: np.ndarray, template: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``size``-px crop of ``photo`` whose landmarks ``points`` land on ``template``; (crop, photo→crop matrix)."""
    matrix = similarity_transform(points, template)
    crop = cv2.warpAffine(np.ascontiguousarray(photo), matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return crop, matrix


def paste_back(photo: np.ndarray, crop: np.ndarray, mask: np.ndarray, matrix: np.ndarray, feather: float = 1.0) -> np.ndarray:
    """``photo`` with the pixels of ``crop`` under ``mask`` ((S, S), 1 = replaced) put back through the
    inverse of ``matrix`` (photo → crop); the mask edge is blurred by ``feather`` crop pixels."""
    h, w = photo.shape[:2]
    m = np.asarray(mask, np.float32)
    if feather > 0:
        m = cv2.GaussianBlur(m, (0, 0), feather)
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP  # sample the crop at matrix · (photo pixel)
    back = cv2.warpAffine(np.ascontiguousarray(crop), matrix, (w, h), flags=flags, borderMode=cv2.BORDER_REPLICATE)
    alpha = cv2.warpAffine(m, matrix, (w, h), flags=flags, borderMode=cv2.BORDER_CONSTANT, borderValue=0)[..., None]
    out = photo.astype(np.float32) * (1 - alpha) + back.astype(np.float32) * alpha
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


__all__ = ["align_face", "find_faces", "paste_back", "similarity_transform", "transform_points"]
