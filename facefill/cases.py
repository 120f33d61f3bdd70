"""How a training step becomes a timed *case*, shared by the benchmark and the stage estimate.

A case is a function ``(device, batch_size, variant) -> (step_fn, n_images)`` where ``step_fn()``
runs one full training step on ``n_images`` images. :mod:`facefill.bench` registers named cases
(``python -m facefill.bench``); :mod:`facefill.estimate` builds one per network a stage trains
(``python -m facefill.pipeline estimate``). Both build most of them with :func:`training_case`.

Variants: ``plain`` (the literal reference implementation in fp32, where a model has one), ``fp32``,
``fp32+cl``, ``bf16``, ``bf16+cl`` (cl = channels_last). The models are imported lazily, inside the
cases: importing a model never imports this module.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .runtime import autocast_factory

VARIANTS = ("plain", "fp32", "fp32+cl", "bf16", "bf16+cl")


def variant_settings(variant: str, device: torch.device):
    """(autocast factory, memory format) of a variant name."""
    precision = "bf16" if variant.startswith("bf16") else "fp32"
    fmt = torch.channels_last if variant.endswith("+cl") else torch.contiguous_format
    return autocast_factory(device, precision), fmt


def training_case(make_task, make_batch, plain: bool = False, why: str = "no separate literal reference: fp32 is the baseline"):
    """A case timing ``task.training_step`` on one random batch.

    ``make_task(variant)`` builds the task; ``make_batch(batch_size, device, memory_format)`` the
    batch; ``plain=False`` skips the ``plain`` variant (saying ``why``)."""

    def case(device, batch_size, variant):
        if variant == "plain" and not plain:
            raise NotImplementedError(why)
        task = make_task(variant)
        autocast, fmt = variant_settings(variant, device)
        for m in task.modules.values():
            m.to(device=device, memory_format=fmt)
        task.configure(device)
        batch = make_batch(batch_size, device, fmt)
        return (lambda: task.training_step(batch, autocast)), batch_size

    return case


def random_images(size: int):
    """``make_batch`` of (N, 3, size, size) images uniform in [-1, 1]."""
    return lambda n, device, fmt: (torch.rand(n, 3, size, size, device=device) * 2 - 1).contiguous(memory_format=fmt)


def faces_and_masks(image_size: int):
    """``make_batch`` of random images and the ELU CE's template masks (-1 / 1, 3 channels), as ``fit`` delivers them."""

    def make(n, device, fmt):
        from .models.elu_context_encoder import template_masks

        x = random_images(image_size)(n, device, fmt)
        masks = template_masks(image_size, n).to(device) * 2 - 1  # as fit delivers them: -1 / 1
        return x, masks.expand(-1, 3, -1, -1).contiguous(memory_format=fmt)

    return make


def hr_and_lr(hr_size: int, scale: int):
    """``make_batch`` of random HR images and their ``scale``× average-pooled LR versions (the SRGAN pair)."""

    def make(n, device, fmt):
        hr = random_images(hr_size)(n, device, fmt)
        return hr, F.avg_pool2d(hr, scale).contiguous(memory_format=fmt)

    return make


__all__ = ["VARIANTS", "variant_settings", "training_case", "random_images", "faces_and_masks", "hr_and_lr"]
