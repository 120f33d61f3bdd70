"""Training-throughput benchmark: images/s of every registered model, per precision and memory format.

    python -m facefill.bench                       # all models, fp32 vs bf16 x contiguous vs channels_last
    python -m facefill.bench --models ce128 --steps 8 --batch-size 32

Speed is measured, not guessed: variants run *interleaved step by step* in one process (these
machines drift in speed within minutes, so back-to-back blocks would compare different machines),
and we report the median per-step throughput after warm-up, plus ratios to the ``plain`` baseline.

A model registers a *case*: a function ``(device, batch_size, variant) -> (step_fn, n_images)``
where ``step_fn()`` runs one full training step. Variants: ``plain`` (the literal reference
implementation in fp32, where a model has one — for the CE: the 4x4-conv bottleneck and
non-fused Adam), ``fp32``, ``fp32+cl``, ``bf16``, ``bf16+cl`` (cl = channels_last).
"""
from __future__ import annotations

import argparse
import platform
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .runtime import autocast_factory, resolve_device

CASES: dict[str, Callable] = {}
VARIANTS = ("plain", "fp32", "fp32+cl", "bf16", "bf16+cl")


def register(name: str):
    """Decorator: ``@register("dcgan64") def case(device, batch_size, variant): ... return step, n``."""

    def deco(fn):
        CASES[name] = fn
        return fn

    return deco


def variant_settings(variant: str, device: torch.device):
    """(autocast factory, memory format) of a variant name."""
    precision = "bf16" if variant.startswith("bf16") else "fp32"
    fmt = torch.channels_last if variant.endswith("+cl") else torch.contiguous_format
    return autocast_factory(device, precision), fmt


# ----------------------------------------------------------------------------- built-in cases

def _ce_case(image_size: int, hole: int):
    def case(device, batch_size, variant):
        from .models import context_encoder as ce

        cfg = ce.ContextEncoderConfig(image_size=image_size, hole=hole)
        task = ce.ContextEncoderTask(cfg, fused_adam=variant != "plain")
        if variant == "plain":  # train.lua literally: 4x4-conv bottleneck, fp32, contiguous, for-loop Adam
            task.generator.forward = _LiteralForward(task.generator)  # type: ignore[method-assign]
        autocast, fmt = variant_settings(variant, device)
        for m in task.modules.values():
            m.to(device=device, memory_format=fmt)
        task.configure(device)
        x = (torch.rand(batch_size, 3, image_size, image_size, device=device) * 2 - 1).contiguous(memory_format=fmt)
        return (lambda: task.training_step(x, autocast)), batch_size

    return case


class _LiteralForward:
    """Generator forward through 4x4 (up-)convolutions sharing the Linear layers' weights."""

    def __init__(self, gen):
        self.gen = gen
        self.d, flat = gen.encoder.bottleneck.weight.shape
        self.c = flat // 16

    def __call__(self, x):
        import torch.nn.functional as F

        enc, dec = self.gen.encoder, self.gen.decoder
        h = enc.features(x)
        z = F.conv2d(h, enc.bottleneck.weight.view(self.d, self.c, 4, 4)).flatten(1)
        z = F.leaky_relu(enc.bn(z), 0.2)
        w_up = dec.project.weight.t().reshape(self.d, dec.top, 4, 4)
        h = F.conv_transpose2d(z[:, :, None, None], w_up)
        return dec.net(F.relu(dec.bn(h)))


register("ce128")(_ce_case(128, 64))
register("ce64")(_ce_case(64, 32))


# ----------------------------------------------------------------------------- runner

def _load_plugins() -> None:
    """Import the model modules so their ``@register`` cases exist (missing ones are skipped)."""
    import importlib

    for mod in ("multiscale", "cascade", "elu_context_encoder", "dcgan", "srgan"):
        try:
            importlib.import_module(f"facefill.models.{mod}")
        except ModuleNotFoundError:
            pass
    for mod in ("facefill.inpaint.semantic",):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError:
            pass
    # under `python -m facefill.bench` this module is __main__, while plugins registered their
    # cases in the importable `facefill.bench`: merge those in
    import sys

    imported = sys.modules.get("facefill.bench")
    if imported is not None and imported.CASES is not CASES:
        for name, case in imported.CASES.items():
            CASES.setdefault(name, case)


def benchmark(models=None, variants=VARIANTS, batch_size: int = 32, steps: int = 6, warmup: int = 2, device: str = "auto") -> pd.DataFrame:
    """Median images/s per (model, variant), variants interleaved step by step."""
    _load_plugins()
    dev = resolve_device(device)
    rows = []
    for name in models or list(CASES):
        if name not in CASES:
            raise SystemExit(f"unknown model {name!r}; registered: {sorted(CASES)}")
        torch.manual_seed(0)
        steps_fns = {}
        for v in variants:
            try:
                steps_fns[v] = CASES[name](dev, batch_size, v)
            except NotImplementedError:
                continue
        times = {v: [] for v in steps_fns}
        for i in range(warmup + steps):
            for v, (fn, n) in steps_fns.items():  # interleaved: each variant once per round
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                t0 = time.perf_counter()
                fn()
                if dev.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times[v].append(time.perf_counter() - t0)
        base = None
        for v, (fn, n) in steps_fns.items():
            ips = n / float(np.median(times[v]))
            base = base or ips
            rows.append({"model": name, "variant": v, "images_per_s": ips, "vs_first": ips / base, "batch": n})
        del steps_fns
    return pd.DataFrame(rows)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", nargs="*")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="auto")
    p.add_argument("--csv", help="also write the table here")
    args = p.parse_args(argv)
    dev = resolve_device(args.device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"median of {args.steps} steps after {args.warmup} warm-up, variants interleaved", flush=True)
    _load_plugins()
    frames = []
    for model in args.models or list(CASES):  # one model at a time, printed as soon as it is measured
        try:
            frames.append(benchmark([model], args.variants, args.batch_size, args.steps, args.warmup, args.device))
        except (ImportError, RuntimeError) as e:  # e.g. a missing optional package, or out of memory
            print(f"{model}: skipped ({type(e).__name__}: {e})", flush=True)
            continue
        print(frames[-1].to_string(index=False, header=len(frames) == 1, float_format=lambda x: f"{x:.2f}"), flush=True)
    df = pd.concat(frames) if frames else pd.DataFrame()
    if args.csv:
        df.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
