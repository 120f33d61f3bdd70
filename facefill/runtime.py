"""Device, precision, seeding and reproducibility: the only place that decides where and how tensors compute."""
from __future__ import annotations

import contextlib
import os
import platform
import random
import sys
from functools import partial

import numpy as np
import torch

from .config import PRECISIONS, device_problem, precision_problem
from .errors import ConfigError


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices). The one seeding entry point of the project."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds CUDA


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def configure_reproducibility(threads: int | None = None, device: str = "auto") -> dict:
    """Make results repeatable on this machine and return a record of the run environment.

    * the intra-op thread count is fixed to ``threads``, else ``$FACEFILL_THREADS``, else the
      current count (floating-point reductions split differently with another count, so the
      number is recorded either way);
    * ``torch.use_deterministic_algorithms(True, warn_only=True)`` (an op without a deterministic
      kernel warns instead of failing), cuDNN deterministic and no cuDNN autotuning;
    * ``CUBLAS_WORKSPACE_CONFIG=:4096:8`` unless already set (needed for deterministic cuBLAS).

    Seeding stays with :func:`set_seed`. Bit-identical results need the same machine type,
    thread count and library versions: the returned dict (threads, versions, device, CPU model,
    deterministic flag) is what to report next to the numbers.
    """
    from importlib.metadata import PackageNotFoundError, version

    try:
        facefill_version = version("facefill")
    except PackageNotFoundError:  # a source checkout that was never installed
        facefill_version = "unknown"
    if threads is None and os.environ.get("FACEFILL_THREADS", "").strip():
        raw = os.environ["FACEFILL_THREADS"].strip()
        try:
            threads = int(raw)
        except ValueError:
            raise ConfigError(f"FACEFILL_THREADS={raw!r}: must be a whole number of threads (e.g. 2).") from None
    if threads is not None:
        if threads < 1:
            raise ConfigError(f"threads={threads}: must be >= 1.")
        torch.set_num_threads(threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False

    dev = resolve_device(device)
    return {
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "numpy": np.__version__,
        "python": sys.version.split()[0],
        "facefill": facefill_version,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
        "cpu": _cpu_model(),
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "cublas_workspace_config": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` → CUDA when present, else CPU. ``FACEFILL_DEVICE`` overrides ``auto``.

    Accepted: ``auto``, ``cpu``, ``cuda``, ``cuda:N``, ``mps`` (:data:`facefill.config.DEVICES`); anything
    else (``gpu``, ``cuda1``) is a :class:`ConfigError` naming them, as is a device this machine lacks.
    """
    from_env = device == "auto" and bool(os.environ.get("FACEFILL_DEVICE", "").strip())
    device = os.environ["FACEFILL_DEVICE"].strip() if from_env else device
    why = device_problem(device, "FACEFILL_DEVICE" if from_env else "device")
    if why:
        raise ConfigError(why + ".")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device={device!r} but CUDA is not available: use device='auto' or 'cpu'.")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device={device!r} but this machine has {torch.cuda.device_count()} CUDA device(s), "
                              f"cuda:0 to cuda:{torch.cuda.device_count() - 1}: choose one of those, or 'cuda'.")
    if dev.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ConfigError(f"device={device!r} but MPS (Apple GPU) is not available here: use device='auto' or 'cpu'.")
    return dev


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_has_amx() -> bool:
    """True when the CPU has AMX tiles (fast bf16 matmuls/convs through oneDNN)."""
    return "amx_bf16" in _cpu_flags()


def cpu_has_native_bf16() -> bool:
    """True when the CPU computes bf16 dot products in hardware (AVX512-BF16 or AMX). Without them
    oneDNN emulates bf16, and autocast made every network here 8-20x *slower* than fp32
    (reports/benchmarks/bf16_without_native_support.md)."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


#: warned once per process: bf16 asked for on a CPU that emulates it
_EMULATED_BF16_WARNED = False


def resolve_precision(precision: str, device: torch.device) -> str:
    """``auto`` → bf16 on CPUs with native bf16 (AVX512-BF16 or AMX), fp32 (TF32 matmuls) on CUDA, else fp32.

    ``auto`` is what the profiles use wherever bf16 paid on a CPU with native bf16 (1.3-2x, the
    comments in params.yaml): the same setting then stays fast on a CPU without it, where bf16 is
    emulated and 8-20x slower (reports/benchmarks/bf16_without_native_support.md). An explicit
    ``bf16`` on such a CPU is kept but warned about. On an H200
    at batch 64 bf16 autocast ran 0.83–1.16x the speed of fp32 for every model here
    (reports/benchmarks/bench_cuda_h200.txt): these nets are too small to be bound by matmul
    throughput, so fp32 + channels_last is the CUDA default.
    """
    why = precision_problem(precision)
    if why:
        raise ConfigError(why + ".")
    if precision != "auto":
        if precision == "fp16" and device.type == "cpu":
            raise ConfigError("precision='fp16' is for CUDA; on a CPU use 'bf16' or 'fp32'.")
        global _EMULATED_BF16_WARNED
        if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16() and not _EMULATED_BF16_WARNED:
            _EMULATED_BF16_WARNED = True
            import warnings

            warnings.warn("precision='bf16' on a CPU without AVX512-BF16 or AMX: bf16 is emulated here, and training "
                          "measured 8-20x slower than fp32; use precision: auto (fp32 here) or fp32.", stacklevel=2)
        return precision
    if device.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        return "fp32"
    return "bf16" if cpu_has_native_bf16() else "fp32"


def autocast_factory(device: torch.device, precision: str):
    """A zero-argument callable returning the autocast context for ``precision`` (fp32: a no-op)."""
    if precision == "fp32":
        return contextlib.nullcontext
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return partial(torch.autocast, device_type=device.type, dtype=dtype)
