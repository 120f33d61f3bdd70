"""Training-throughput benchmark: images/s of every registered model, per precision and memory format.

    python -m facefill.bench                       # all models, fp32 vs bf16 x contiguous vs channels_last
    python -m facefill.bench --models ce128 --steps 8 --batch-size 32

Speed is measured, not guessed: variants run *interleaved step by step* in one process (these
machines drift in speed within minutes, so back-to-back blocks would compare different machines),
and we report the median per-step throughput after warm-up, plus ratios to the ``plain`` baseline.

Every model has a *case* registered here — the benchmark imports the models, no model imports
the benchmark: a function ``(device, batch_size, variant) -> (step_fn, n_images)`` where
``step_fn()`` runs one full training step (most are built by :func:`facefill.cases.training_case`).
Variants: ``plain`` (the literal reference implementation in fp32, where a model has one — for the
CE: the 4x4-conv bottleneck and non-fused Adam), ``fp32``, ``fp32+cl``, ``bf16``, ``bf16+cl``
(cl = channels_last).

The per-stage training-time estimate (``python -m facefill.pipeline estimate``) is
:mod:`facefill.estimate`; its names (``STAGES``, ``estimate_stage``, ...) stay importable from here.
"""
from __future__ import annotations

import argparse
import platform
import sys
import time
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .cases import VARIANTS, faces_and_masks, hr_and_lr, random_images, training_case, variant_settings  # noqa: F401 (re-exported)
from .config import positive_int
from .errors import FacefillError
from .estimate import (STAGES, Workload, candidate_settings, estimate_profile, estimate_stage,  # noqa: F401 (re-exported:
                       format_seconds, time_case)  # the per-stage estimate lived here)
from .runtime import resolve_device

CASES: dict[str, Callable] = {}


def register(name: str):
    """Decorator: ``@register("dcgan64") def case(device, batch_size, variant): ... return step, n``."""

    def deco(fn):
        CASES[name] = fn
        return fn

    return deco


# ----------------------------------------------------------------------------- the cases
# The benchmark imports the models (lazily, inside each case), never the reverse: importing a model
# does not import the benchmark.

# context encoder (Pathak); "plain" is train.lua literally: 4x4-conv bottleneck, fp32, contiguous, for-loop Adam

def _ce_task(image_size: int, hole: int):
    def make(variant):
        from .models import context_encoder as ce

        task = ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=image_size, hole=hole), fused_adam=variant != "plain")
        if variant == "plain":
            task.generator.forward = _LiteralForward(task.generator)  # type: ignore[method-assign]
        return task

    return make


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


register("ce128")(training_case(_ce_task(128, 64), random_images(128), plain=True))
register("ce64")(training_case(_ce_task(64, 32), random_images(64), plain=True))


# multi-scale context encoder (paper 000)

def _mce_task(aggregation: str, width: int = 32):
    def make(variant):
        from .models import multiscale as ms

        return ms.MultiScaleTask(ms.MultiScaleConfig(aggregation=aggregation, width=width))

    return make


_NO_MCE_REFERENCE = "there is no reference implementation to be literal about"
register("mce250_add")(training_case(_mce_task("add"), random_images(250), why=_NO_MCE_REFERENCE))
register("mce250_concat")(training_case(_mce_task("concat"), random_images(250), why=_NO_MCE_REFERENCE))
register("mce250_add_w16")(training_case(_mce_task("add", 16), random_images(250), why=_NO_MCE_REFERENCE))
register("mce250_concat_w16")(training_case(_mce_task("concat", 16), random_images(250), why=_NO_MCE_REFERENCE))


# cascade context encoder (paper 001), random blocks

def _cce_task(variant):
    """One cascade step at the paper's size: frozen CE64 forward + CE128 D and G updates."""
    from .models import cascade as cc

    cfg = cc.CascadeConfig(mask_kind="random_blocks")
    return cc.CascadeContextEncoderTask(cfg, cc.make_ce64_task(cfg).generator)


def _ce64_image_task(variant):
    """Step one: the full-image CE64 (the cascade's first stage)."""
    from .models import cascade as cc

    return cc.make_ce64_task(cc.CascadeConfig(mask_kind="random_blocks"))


register("cce128")(training_case(_cce_task, random_images(128), why="the cascade has no separate literal reference; see ce128"))
register("ce64_image")(training_case(_ce64_image_task, random_images(64), why="see ce64 for the literal train.lua baseline"))


# ELU / max-pool context encoder (paper 002); "plain": fp32, NCHW, for-loop Adam

def _elu_task(image_size: int, batch_norm: bool = False, width: int = 32, max_width: int = 256):
    def make(variant):
        from .models import elu_context_encoder as ece

        cfg = ece.EluContextEncoderConfig(image_size=image_size, batch_norm=batch_norm, width=width, max_width=max_width)
        return ece.EluContextEncoderTask(cfg, fused_adam=variant != "plain")

    return make


register("elu_ce128")(training_case(_elu_task(128), faces_and_masks(128), plain=True))
register("elu_ce128_bn")(training_case(_elu_task(128, batch_norm=True), faces_and_masks(128), plain=True))
register("elu_ce128_w8")(training_case(_elu_task(128, width=8, max_width=128), faces_and_masks(128), plain=True))  # default profile's size
register("elu_ce128_w8_bn")(training_case(_elu_task(128, True, 8, 128), faces_and_masks(128), plain=True))


# DCGAN and the latent search of semantic inpainting (paper 003)

def _dcgan_task(variant):
    from .models.dcgan import DCGANConfig, DCGANTask

    return DCGANTask(DCGANConfig())


register("dcgan64")(training_case(_dcgan_task, random_images(64),
                                  why="DCGAN has no separate literal reference form (its layers are Radford's as written)"))


@register("semantic64")
def _semantic_case(device, batch_size, variant):
    """One Adam step of the latent search for ``batch_size`` z's (paper-size DCGAN, L_c + L_p)."""
    from .inpaint.semantic import context_loss, context_weights, prior_loss
    from .masks import make_masks

    if variant == "plain":
        raise NotImplementedError("no separate literal reference form")
    task = _dcgan_task(variant)
    autocast, fmt = variant_settings(variant, device)
    for mod in task.modules.values():
        mod.to(device=device, memory_format=fmt).eval()
        for p in mod.parameters():
            p.requires_grad_(False)
    y = random_images(64)(batch_size, device, fmt)
    W = context_weights(make_masks("center", 64, batch_size, hole=32).to(device))
    z = (torch.rand(batch_size, 100, device=device) * 2 - 1).requires_grad_(True)
    opt = torch.optim.Adam([z], lr=0.03, betas=(0.9, 0.999))

    def step():
        with autocast():
            g = task.generator(z)
            d = task.discriminator(g)
        loss = (context_loss(g.float(), y, W) + prior_loss(d, 0.003)).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            z.clamp_(-1, 1)

    return step, batch_size


# SRGAN (paper 004), EfficientNet-Lite0 content loss

def _srgan_task(hr_size: int, scale: int, content: str):
    def make(variant):
        from .models.srgan import SRGANConfig, SRGANTask
        from .perceptual import ContentLossConfig

        return SRGANTask(SRGANConfig(scale=scale, hr_size=hr_size), ContentLossConfig(content=content))

    return make


register("srgan64x2")(training_case(_srgan_task(64, 2, "effnet_lite0"), hr_and_lr(64, 2)))
register("srgan64x4")(training_case(_srgan_task(64, 4, "effnet_lite0"), hr_and_lr(64, 4)))
register("srgan128x4")(training_case(_srgan_task(128, 4, "effnet_lite0"), hr_and_lr(128, 4)))


# ----------------------------------------------------------------------------- runner

def benchmark(models=None, variants=VARIANTS, batch_size: int = 32, steps: int = 6, warmup: int = 2, device: str = "auto") -> pd.DataFrame:
    """Median images/s per (model, variant), variants interleaved step by step."""
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
    p.add_argument("--models", nargs="*", metavar="MODEL",
                   help=f"models to time (default: all): {', '.join(CASES)}")
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=VARIANTS,
                   help="precision / memory-format settings to compare (+cl: channels_last)")
    p.add_argument("--batch-size", type=positive_int, default=32)
    p.add_argument("--steps", type=positive_int, default=6, help="timed steps per model and variant")
    p.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    p.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps")
    p.add_argument("--csv", help="also write the table here")
    args = p.parse_args(argv)
    unknown = [m for m in args.models or [] if m not in CASES]
    if unknown:
        p.error(f"unknown model(s) {unknown}; choose from {', '.join(CASES)}")
    try:
        dev = resolve_device(args.device)
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or platform.machine()
    print(f"device: {dev} ({name}), torch {torch.__version__}, threads {torch.get_num_threads()}, batch {args.batch_size}, "
          f"median of {args.steps} steps after {args.warmup} warm-up, variants interleaved", flush=True)
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
