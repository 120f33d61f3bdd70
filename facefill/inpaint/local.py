"""Classical inpainting baselines of paper 003's Fig. 6, and Poisson blending (Yeh et al.).

* **Biharmonic** (scikit-image ``inpaint_biharmonic``): the hole is the solution of Δ²u = 0 with
  the known pixels as boundary values — smooth, no texture.
* **Total variation** (Chan & Shen): minimise Σ √(|∇u|² + ε²) over the hole pixels, known pixels
  fixed; solved by Adam on the hole pixels (batched, torch). The thesis' "TV [22]".
* **OpenCV Telea** (fast marching) and **Navier–Stokes** (``cv2.inpaint``), radius 3 px.
* **Nearest neighbour from the training set** (Hays & Efros style, the thesis' "NN filling"): the
  training face with the smallest L2 distance on the *known* pixels donates its hole pixels.
* **Low rank ("LR")**, the thesis' "LR inpainting [33]" (Hu et al., PAMI 2013: matrix completion
  by truncated nuclear norm regularisation): each colour channel is a 64×64 matrix completed by
  iterating X ← P_Ω(Y) + P_Ω⊥(D(X)), where D keeps the ``rank`` largest singular values and
  soft-thresholds the others by ``shrink`` × the largest (the truncated nuclear norm's proximal
  step, without Hu et al.'s outer loop). :func:`low_rank`.
* **Poisson blending** (Pérez et al.; ``cv2.seamlessClone``, NORMAL_CLONE): Yeh et al. blend G(ẑ)
  into the hole by matching gradients; paper 003 did not. Images are padded by ``pad`` px
  (reflection) first, because seamlessClone needs the mask away from the image border
  (left/right half masks touch it).

All functions take / return float tensors (N, 3, H, W) in [-1, 1] and masks (N, 1, H, W), 1 = missing.
"""
from __future__ import annotations

import cv2
import numpy as np
import torch

from ..data import to_tensor, to_uint8
from ..masks import check_masks

LOCAL_METHODS = ("biharmonic", "tv", "telea", "navier_stokes")


def _masks_u8(masks: torch.Tensor) -> np.ndarray:
    return (masks[:, 0].cpu().numpy() > 0.5).astype(np.uint8)


def biharmonic(images: torch.Tensor, masks: torch.Tensor, chunk: int = 64) -> torch.Tensor:
    """skimage's biharmonic inpainting, one linear solve per distinct mask: the system matrix depends on the
    mask only and the fill is linear in the known pixels, so images sharing a mask are solved together as
    channels of one image (one factorisation, ``3 × chunk`` right-hand sides). Equal to calling
    ``inpaint_biharmonic`` per image (``tests/test_baselines.py``); 10-40x faster on a shared centre mask."""
    from skimage.restoration import inpaint_biharmonic

    check_masks(masks, images)
    imgs = ((images.float().cpu() + 1) / 2).permute(0, 2, 3, 1).numpy().astype(np.float64)
    ms = _masks_u8(masks.expand(images.shape[0], -1, -1, -1)).astype(bool)
    n, h, w, c = imgs.shape
    out = np.empty_like(imgs)
    groups: dict[bytes, list[int]] = {}
    for i, m in enumerate(ms):
        groups.setdefault(m.tobytes(), []).append(i)
    for idx in groups.values():
        for k in range(0, len(idx), chunk):
            part = idx[k : k + chunk]
            stacked = imgs[part].transpose(1, 2, 0, 3).reshape(h, w, len(part) * c)  # images as channels
            filled = inpaint_biharmonic(stacked, ms[part[0]], channel_axis=-1)
            out[part] = filled.reshape(h, w, len(part), c).transpose(2, 0, 1, 3)
    return torch.from_numpy(out).float().permute(0, 3, 1, 2).mul(2).sub(1).clamp(-1, 1)


def _hide(images_u8: np.ndarray, masks_u8: np.ndarray) -> np.ndarray:
    """uint8 (N, H, W, 3) images with every hidden pixel set to the mean colour of that image's known pixels."""
    out = images_u8.copy()
    for im, m in zip(out, masks_u8):
        known = m == 0
        im[~known] = np.round(im[known].mean(0)) if known.any() else 128
    return out


def opencv(images: torch.Tensor, masks: torch.Tensor, method: str = "telea", radius: int = 3) -> torch.Tensor:
    """``cv2.inpaint``. OpenCV reads the values of hidden pixels within 2 px of the image border (measured:
    ``tests/test_no_peek.py``; left/right halves and random pixels reach it), so they are set to the image's
    mean known colour first: no hidden value can reach the fill."""
    check_masks(masks, images)
    flag = {"telea": cv2.INPAINT_TELEA, "navier_stokes": cv2.INPAINT_NS}[method]
    ms = _masks_u8(masks.expand(images.shape[0], -1, -1, -1))
    imgs = _hide(to_uint8(images.float().cpu()), ms)
    return to_tensor(np.stack([cv2.inpaint(np.ascontiguousarray(im), m, radius, flag) for im, m in zip(imgs, ms)]))


def total_variation(images: torch.Tensor, masks: torch.Tensor, steps: int = 300, lr: float = 0.05, eps: float = 1e-2) -> torch.Tensor:
    """Smoothed-TV inpainting: argmin_u Σ √(|∇u|² + ε²), u = y on the known pixels."""
    check_masks(masks, images)
    y, m = images.float(), masks.float().expand(images.shape[0], -1, -1, -1)
    known_mean = (y * (1 - m)).sum((2, 3), keepdim=True) / (1 - m).sum((2, 3), keepdim=True).clamp_min(1)
    u = (y * (1 - m) + known_mean * m).clone().requires_grad_(True)
    opt = torch.optim.Adam([u], lr=lr)
    for _ in range(steps):
        x = y * (1 - m) + u * m
        dx, dy = x[..., :, 1:] - x[..., :, :-1], x[..., 1:, :] - x[..., :-1, :]
        tv = torch.sqrt(dx[..., :-1, :] ** 2 + dy[..., :, :-1] ** 2 + eps**2).sum()
        opt.zero_grad(set_to_none=True)
        tv.backward()
        opt.step()
    return (y * (1 - m) + u.detach() * m).clamp(-1, 1)


def local_inpaint(images: torch.Tensor, masks: torch.Tensor, method: str) -> torch.Tensor:
    if method == "biharmonic":
        return biharmonic(images, masks)
    if method == "tv":
        return total_variation(images, masks)
    if method in ("telea", "navier_stokes"):
        return opencv(images, masks, method)
    raise ValueError(f"method={method!r}: use one of {LOCAL_METHODS}")


def nearest_neighbour(images: torch.Tensor, masks: torch.Tensor, train: torch.Tensor, chunk: int = 512) -> tuple[torch.Tensor, torch.Tensor]:
    """Fill each hole from the training face closest on the known pixels; returns (filled, indices)."""
    check_masks(masks, images)
    m = masks.float().expand(images.shape[0], -1, -1, -1)
    y = images.float().flatten(1)
    k = (1 - m).expand(-1, 3, -1, -1).flatten(1)
    best_d = torch.full((images.shape[0],), float("inf"))
    best_i = torch.zeros(images.shape[0], dtype=torch.long)
    for s in range(0, train.shape[0], chunk):
        t = train[s : s + chunk].float().flatten(1)
        # Σ k·(y − t)² = Σ k·y² − 2 (k·y)·t + k·t²
        d = (k * y**2).sum(1, keepdim=True) - 2 * (k * y) @ t.T + k @ (t**2).T
        v, i = d.min(1)
        better = v < best_d
        best_d[better], best_i[better] = v[better], i[better] + s
    donor = train[best_i].float()
    return images.float() * (1 - m) + donor * m, best_i


def poisson_blend(generated: torch.Tensor, images: torch.Tensor, masks: torch.Tensor, pad: int = 8, dilate: int = 1) -> torch.Tensor:
    """Yeh et al.'s post-processing: ``cv2.seamlessClone`` of G(ẑ) into the damaged image over the
    (dilated) hole; the known pixels outside the dilated hole are kept exactly.

    The destination is the *damaged* image: its hidden pixels are replaced by G(ẑ) whatever ``images``
    holds there. seamlessClone takes the boundary values and, in a band inside the mask, the gradients
    from its destination, so a destination holding the ground truth in the hole would put truth into
    the output (notebook 04's "+ Poisson" rows did, until issue 27; ``tests/test_no_peek.py``)."""
    check_masks(masks, images)
    damaged = images.float().cpu() * (1 - masks.float().cpu()) + generated.float().cpu() * masks.float().cpu()
    src, dst = to_uint8(generated.float().cpu()), to_uint8(damaged)
    ms = _masks_u8(masks.expand(images.shape[0], -1, -1, -1))
    out = []
    kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
    for s, d, m in zip(src, dst, ms):
        if m.sum() == 0:
            out.append(d)
            continue
        mm = cv2.dilate(m, kernel) if dilate else m
        sp = cv2.copyMakeBorder(s, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        dp = cv2.copyMakeBorder(d, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        mp = cv2.copyMakeBorder(mm * 255, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=0)
        x, y, w, h = cv2.boundingRect(mp)
        centre = (x + w // 2, y + h // 2)
        blended = cv2.seamlessClone(np.ascontiguousarray(sp), np.ascontiguousarray(dp), mp, centre, cv2.NORMAL_CLONE)
        out.append(blended[pad:-pad, pad:-pad])
    res = to_tensor(np.stack(out))
    keep = 1 - torch.from_numpy(np.stack([cv2.dilate(m, kernel) if dilate else m for m in ms])).float()[:, None]
    return images.float().cpu() * keep + res * (1 - keep)


def low_rank(images: torch.Tensor, masks: torch.Tensor, rank: int = 4, shrink: float = 0.02, iterations: int = 100) -> torch.Tensor:
    """Matrix completion of every colour channel by truncated-nuclear-norm singular value thresholding
    (see the module docstring): the top ``rank`` singular values are kept, the rest shrunk by
    ``shrink`` × σ₁ each iteration; the known pixels are reset after every step and returned exactly."""
    check_masks(masks, images)
    if rank < 0 or shrink < 0 or iterations < 1:
        raise ValueError(f"rank={rank}, shrink={shrink}, iterations={iterations}: rank, shrink >= 0 and iterations >= 1.")
    y = images.float().cpu()
    m = masks.float().cpu().expand(y.shape[0], 1, -1, -1).expand_as(y)
    known = 1 - m
    mean = (y * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True).clamp_min(1)
    x = y * known + mean * m
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # threaded LAPACK on tiny matrices stalls on a busy CPU (measured: 4 s vs 15 ms per batch of 18)
    try:
        for _ in range(iterations):
            u, sv, vh = torch.linalg.svd(x, full_matrices=False)
            tail = torch.arange(sv.shape[-1]) >= rank
            sv = torch.where(tail, (sv - shrink * sv[..., :1]).clamp_min(0), sv)
            x = y * known + ((u * sv.unsqueeze(-2)) @ vh) * m
    finally:
        torch.set_num_threads(threads)
    return x.clamp(-1, 1)
