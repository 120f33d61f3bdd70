"""Device, precision and seeding: the only place that decides where and how tensors compute."""
from __future__ import annotations

import contextlib
import os
import random
from functools import partial

import numpy as np
import torch

from .errors import ConfigError

PRECISIONS = ("fp32", "bf16", "fp16", "auto")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). The one seeding entry point of the project."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU. ``FACEFILL_DEVICE`` overrides ``auto``."""
    device = os.environ.get("FACEFILL_DEVICE", device) if device == "auto" else device
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device={device!r} but CUDA is not available: use device='auto' or 'cpu'.")
    return dev


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles (fast bf16 matmuls/convs through oneDNN)."""
    try:
        with open("/proc/cpuinfo") as f:
            return "amx_bf16" in f.read()
    except OSError:
        return False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CUDA with bf16 support and on CPUs with AMX, else fp32.

    ``auto`` is a default, not a promise: whether bf16 pays depends on the model (see
    ``python -m facefill.bench``); the profiles in params.yaml pin the measured choice.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: choose one of {PRECISIONS}.")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision='fp16' is for CUDA; on a CPU use 'bf16' or 'fp32'.")
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "bf16" if cpu_has_amx() else "fp32"


def autocast_factory(device: torch.device, precision: str):
    """A zero-argument callable returning the autocast context for ``precision`` (fp32: a no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
