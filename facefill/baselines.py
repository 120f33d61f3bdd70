"""Learning-free baselines: what a learned inpainting model must beat before its paper can be judged.

Every results table of the study puts the learned model next to these fills **on the same images
and masks**, each given exactly the pixels the model sees (``masks`` = 1 where the model's input is
hidden; for the context encoder that is the hole *shrunk by the 4-px overlap*, the ring it sees).

* **Trivial** — a model that loses to one of these has learned nothing worth judging; they are
  the *sanity gate* of :mod:`facefill.verdicts`:
  - ``mean colour``: each hole filled with the mean colour of that image's known pixels;
  - ``mean training image``: the hole filled with the pixel-wise mean of the training faces (a
    "mean face" — on aligned faces this is a strong trivial baseline, especially for SSIM).
* **Classical** — strong methods without learning. Beating them is a *claim* with its own row,
  never a gate:
  - ``Telea``: OpenCV's fast-marching inpainting (Telea 2004), radius 3 px;
  - ``biharmonic``: the smoothest continuation, Δ²u = 0 with the known pixels as boundary values
    (scikit-image; ≈ 35 ms per 128-px face on one core).

All functions take float tensors (N, 3, H, W) in [-1, 1] and masks (N or 1, 1, H, W) with
1 = missing, and return the composited images: known pixels unchanged, hole filled.
"""
from __future__ import annotations

import numpy as np
import torch

from .adversarial import composite
from .inpaint.local import biharmonic, opencv
from .masks import check_masks
from .profiling import timed

TRIVIAL = ("mean colour", "mean training image")
CLASSICAL = ("Telea", "biharmonic")


def mean_colour(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Each image's hole filled with the mean colour of its own known pixels."""
    check_masks(masks, images)
    known = 1 - masks.float().expand(images.shape[0], 1, -1, -1)
    mean = (images.float() * known).sum((2, 3), keepdim=True) / known.sum((2, 3), keepdim=True)
    return composite(images.float(), mean.expand_as(images), masks)


def mean_training_image(images: torch.Tensor, masks: torch.Tensor, train_mean: torch.Tensor) -> torch.Tensor:
    """The hole filled with the pixel-wise mean training image ``train_mean`` (3, H, W) in [-1, 1]."""
    check_masks(masks, images)
    if train_mean.shape != images.shape[1:]:
        raise ValueError(f"train_mean has shape {tuple(train_mean.shape)}, the images {tuple(images.shape[1:])}.")
    return composite(images.float(), train_mean.float().expand_as(images), masks)


def train_mean_image(train_images_uint8: np.ndarray, chunk: int = 512) -> torch.Tensor:
    """Pixel-wise mean of uint8 (N, H, W, 3) training images, as a (3, H, W) tensor in [-1, 1]."""
    total = np.zeros(train_images_uint8.shape[1:], np.float64)
    for s in range(0, len(train_images_uint8), chunk):
        total += train_images_uint8[s : s + chunk].astype(np.float64).sum(0)
    mean = total / len(train_images_uint8)
    return torch.from_numpy(mean / 127.5 - 1.0).float().permute(2, 0, 1).contiguous()


def telea(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """OpenCV Telea; it works on uint8, so the known pixels are put back exactly afterwards."""
    return composite(images.float(), opencv(images, masks.expand(images.shape[0], -1, -1, -1), "telea"), masks)


def biharmonic_fill(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    return biharmonic(images, masks.expand(images.shape[0], -1, -1, -1))


def fill_all(images: torch.Tensor, masks: torch.Tensor, train_mean: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every baseline's completion of ``images`` under ``masks``, keyed by the names in TRIVIAL + CLASSICAL."""
    fills = {"mean colour": lambda: mean_colour(images, masks),
             "mean training image": lambda: mean_training_image(images, masks, train_mean),
             "Telea": lambda: telea(images, masks),
             "biharmonic": lambda: biharmonic_fill(images, masks)}
    out = {}
    with timed("baselines"):
        for name, fill in fills.items():
            with timed(f"baseline:{name}"):
                out[name] = fill()
    return out
