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
    """``auto`` → bf16 on CPUs with AMX, fp32 (TF32 matmuls) on CUDA, else fp32.

    ``auto`` is a default, not a promise: whether bf16 pays depends on the model and batch (see
    ``python -m facefill.bench``); the profiles in params.yaml pin the measured choice. On an H200
    at batch 64 bf16 autocast ran 0.83–1.16x the speed of fp32 for every model here
    (reports/benchmarks/bench_cuda_h200.txt): these nets are too small to be bound by matmul
    throughput, so fp32 + channels_last is the CUDA default.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision={precision!r}: choose one of {PRECISIONS}.")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision='fp16' is for CUDA; on a CPU use 'bf16' or 'fp32'.")
        return precision
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return "fp32"
    return "bf16" if cpu_has_amx() else "fp32"


def autocast_factory(device: torch.device, precision: str):
    """A zero-argument callable returning the autocast context for ``precision`` (fp32: a no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
