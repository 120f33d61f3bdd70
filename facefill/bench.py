"""Training-throughput benchmark: images/s of every registered model, per precision and memory format.

    python -m facefill.bench                       # all models, fp32 vs bf16 x contiguous vs channels_last
    python -m facefill.bench --models ce128 --steps 8 --batch-size 32

Speed is measured, not guessed: variants run *interleaved step by step* in one process (these
machines drift in speed within minutes, so back-to-back blocks would compare different machines),
and we report the median per-step throughput after warm-up, plus ratios to the ``plain`` baseline.

Every model has a *case* registered here — the benchmark imports the models, no model imports
the benchmark: a function ``(device, batch_size, variant) -> (step_fn, n_images)`` where
``step_fn()`` runs one full training step (most are built by :func:`training_case`). Variants:
``plain`` (the literal reference implementation in fp32, where a model has one — for the CE: the
4x4-conv bottleneck and non-fused Adam), ``fp32``, ``fp32+cl``, ``bf16``, ``bf16+cl``
(cl = channels_last).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import platform
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .config import positive_int
from .errors import FacefillError
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


# ----------------------------------------------------------------------------- the cases
# The benchmark imports the models (lazily, inside each case), never the reverse: importing a model
# does not import the benchmark.

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


def _faces_and_masks(image_size: int):
    def make(n, device, fmt):
        from .models.elu_context_encoder import template_masks

        x = random_images(image_size)(n, device, fmt)
        masks = template_masks(image_size, n).to(device) * 2 - 1  # as fit delivers them: -1 / 1
        return x, masks.expand(-1, 3, -1, -1).contiguous(memory_format=fmt)

    return make


register("elu_ce128")(training_case(_elu_task(128), _faces_and_masks(128), plain=True))
register("elu_ce128_bn")(training_case(_elu_task(128, batch_norm=True), _faces_and_masks(128), plain=True))
register("elu_ce128_w8")(training_case(_elu_task(128, width=8, max_width=128), _faces_and_masks(128), plain=True))  # default profile's size
register("elu_ce128_w8_bn")(training_case(_elu_task(128, True, 8, 128), _faces_and_masks(128), plain=True))


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


def _hr_and_lr(hr_size: int, scale: int):
    def make(n, device, fmt):
        import torch.nn.functional as F

        hr = random_images(hr_size)(n, device, fmt)
        return hr, F.avg_pool2d(hr, scale).contiguous(memory_format=fmt)

    return make


register("srgan64x2")(training_case(_srgan_task(64, 2, "effnet_lite0"), _hr_and_lr(64, 2)))
register("srgan64x4")(training_case(_srgan_task(64, 4, "effnet_lite0"), _hr_and_lr(64, 4)))
register("srgan128x4")(training_case(_srgan_task(128, 4, "effnet_lite0"), _hr_and_lr(128, 4)))


# ----------------------------------------------------------------------------- stage workloads (estimate)
# What one pipeline stage trains, at the sizes of a profile's parameters: each Workload is one network
# trained for `steps` steps (all its arms and seeds together) at `batch_size`. Configs are built with
# facefill.config.pick from the flat stage parameters, so the workloads follow the models' configs.

@dataclass
class Workload:
    label: str
    steps: int  # training steps of the whole stage for this network (arms × seeds × steps)
    batch_size: int
    case: Callable  # (device, batch_size, variant) -> (step_fn, n_images), as the registered cases
    batch_free: bool = False  # the profile does not fix the batch: estimate may choose a larger one
    unit: str = "img"  # what n_images counts (the z-search: images searched in parallel)


def _cfg(cls, values, **over):
    from .config import pick

    return dataclasses.replace(pick(values, cls), **over) if over else pick(values, cls)


def _n(values, key, default=1):
    v = values.get(key, default)
    return default if v is None else int(v)


def _stage_context_encoder(v):
    from .models import context_encoder as ce

    cfg = _cfg(ce.ContextEncoderConfig, v)
    case = training_case(lambda variant: ce.ContextEncoderTask(cfg), random_images(cfg.image_size))
    return [Workload(f"CE{cfg.image_size} w{cfg.width} z{cfg.bottleneck}", _n(v, "n_seeds") * v["steps"], v["batch_size"], case)]


def _stage_multiscale(v):
    from .models import multiscale as ms

    datasets = 2 if v.get("train_transfer") else 1
    out = []
    for agg in ["add"] + (["concat"] if v.get("train_concat") else []):
        cfg = _cfg(ms.MultiScaleConfig, v, aggregation=agg)
        case = training_case(lambda variant, cfg=cfg: ms.MultiScaleTask(cfg), random_images(cfg.image_size))
        out.append(Workload(f"MCE{cfg.image_size} {agg} w{cfg.width}", datasets * _n(v, "n_seeds") * v["steps"], v["batch_size"], case))
    if v.get("ablation_scales"):
        cfg = _cfg(ms.MultiScaleConfig, v, n_scales=int(v["ablation_scales"]))
        case = training_case(lambda variant: ms.MultiScaleTask(cfg), random_images(cfg.image_size))
        out.append(Workload(f"MCE{cfg.image_size} {cfg.n_scales}-scale ablation", datasets * _n(v, "n_seeds") * v["steps"], v["batch_size"], case))
    return out


def _stage_cascade(v):
    from .models import cascade as cc

    cfg = _cfg(cc.CascadeConfig, v)
    seeds = _n(v, "n_seeds")
    small = training_case(lambda variant: cc.make_ce64_task(cfg), random_images(cfg.image_size // 2))
    cce = training_case(lambda variant: cc.CascadeContextEncoderTask(cfg, cc.make_ce64_task(cfg).generator), random_images(cfg.image_size))
    large = training_case(lambda variant: cc.make_ce128_task(cfg), random_images(cfg.image_size))
    return [Workload(f"small CE{cfg.image_size // 2}", seeds * v["small_steps"], v["batch_size"], small),
            Workload(f"CCE{cfg.image_size}", seeds * v["large_steps"], v["batch_size"], cce),
            # the blur control and the CE (its steps matched to the cascade's FLOPs, ≈ large_steps) share the CE's cost
            Workload(f"CE{cfg.image_size} + blur control", 2 * seeds * v["large_steps"], v["batch_size"], large)]


def _stage_masked_face(v):
    from .models import elu_context_encoder as ece

    out = []
    for bn in (False, True):
        cfg = _cfg(ece.EluContextEncoderConfig, v, batch_norm=bn)
        case = training_case(lambda variant, cfg=cfg: ece.EluContextEncoderTask(cfg), _faces_and_masks(cfg.image_size))
        out.append(Workload(f"ELU CE{cfg.image_size} {'BN' if bn else 'no BN'} w{cfg.width}", _n(v, "n_seeds") * v["steps"], v["batch_size"], case))
    return out


def _stage_dcgan(v):
    from .models.dcgan import DCGANConfig, DCGANTask

    cfg = _cfg(DCGANConfig, v)
    case = training_case(lambda variant: DCGANTask(cfg), random_images(cfg.image_size))
    return [Workload(f"DCGAN{cfg.image_size} w{cfg.width}", v["steps"], v["batch_size"], case)]


def _search_case(dcgan_cfg, hole: int):
    """One Adam step of the z-search of semantic inpainting (:func:`_semantic_case` at any DCGAN size)."""

    def case(device, batch_size, variant):
        from .inpaint.semantic import context_loss, context_weights, prior_loss
        from .masks import make_masks
        from .models.dcgan import DCGANTask

        task = DCGANTask(dcgan_cfg)
        autocast, fmt = variant_settings(variant, device)
        for mod in task.modules.values():
            mod.to(device=device, memory_format=fmt).eval().requires_grad_(False)
        size = dcgan_cfg.image_size
        y = random_images(size)(batch_size, device, fmt)
        w = context_weights(make_masks("center", size, batch_size, hole=hole).to(device))
        z = (torch.rand(batch_size, dcgan_cfg.z_dim, device=device) * 2 - 1).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=0.03)

        def step():
            with autocast():
                g = task.generator(z)
                d = task.discriminator(g)
            loss = (context_loss(g.float(), y, w) + prior_loss(d, 0.003)).sum()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        return step, batch_size

    return case


def _stage_semantic(v, dcgan_values=None):
    from .models import context_encoder as ce
    from .models.dcgan import DCGANConfig

    dcgan_cfg = _cfg(DCGANConfig, {**(dcgan_values or {}), "image_size": v["image_size"]})
    n_test = _n(v, "n_test", 1000)  # null (all test faces): counted as 1,000
    faces = min(int(v.get("batch_images", 64)), n_test)  # faces searched in parallel, each with `candidates` z's
    candidates = int(v.get("candidates", 1))
    # the notebook searches every mask kind twice (L_c + L_p for SI/ours, and with the regressor's L_d)
    n_masks, n_searches = 4, 2
    out = [Workload(f"z-search DCGAN{dcgan_cfg.image_size} ({n_masks} masks × {n_searches} searches × {n_test} faces × "
                    f"{candidates} z × {v['iterations']} it.)",
                    n_masks * n_searches * math.ceil(n_test / faces) * int(v["iterations"]), faces * candidates,
                    _search_case(dcgan_cfg, v["image_size"] // 2), batch_free=True)]
    if v.get("ce_steps"):
        cfg = ce.ContextEncoderConfig(image_size=v["image_size"], hole=v["image_size"] // 2, width=v["ce_width"],
                                      bottleneck=v["ce_bottleneck"], output="image")
        case = training_case(lambda variant: ce.MaskedContextEncoderTask(cfg, "center"), random_images(cfg.image_size))
        out.append(Workload(f"CE{cfg.image_size} baselines (4 mask kinds)", 4 * int(v["ce_steps"]), int(v.get("ce_batch_size", 64)), case))
    return out


def _stage_srgan(v):
    from .models.srgan import SRGANConfig, SRGANTask, SRResNetTask
    from .perceptual import ContentLossConfig

    out = []
    experiments = v.get("experiments") or ["celeba/64/2"]
    for i, exp in enumerate(experiments):
        _, hr, scale = str(exp).split("/")
        cfg = _cfg(SRGANConfig, v, hr_size=int(hr), scale=int(scale))
        resnet = training_case(lambda variant, cfg=cfg: SRResNetTask(cfg), _hr_and_lr(cfg.hr_size, cfg.scale))

        def gan(variant, cfg=cfg):
            try:
                return SRGANTask(cfg, ContentLossConfig(content="effnet_lite0"))
            except FacefillError:  # the ImageNet weights are an optional package: time the MSE content instead
                return SRGANTask(cfg, ContentLossConfig(content="mse"))

        arms = 3 if i == 0 else 1  # the main experiment: SRGAN, control, MSE-continued
        out += [Workload(f"SRResNet {hr}px ×{scale}", _n(v, "n_seeds") * int(v["resnet_steps"]), v["batch_size"], resnet),
                Workload(f"SRGAN {hr}px ×{scale} ({arms} arm{'s' * (arms > 1)})", arms * _n(v, "n_seeds") * int(v["gan_steps"]),
                         v["batch_size"], training_case(gan, _hr_and_lr(cfg.hr_size, cfg.scale)))]
    return out


#: params.yaml section → its workloads (a function of the section's flat parameters)
STAGES: dict[str, Callable] = {
    "context_encoder": _stage_context_encoder,
    "multiscale": _stage_multiscale,
    "cascade": _stage_cascade,
    "masked_face": _stage_masked_face,
    "dcgan": _stage_dcgan,
    "semantic": _stage_semantic,
    "srgan": _stage_srgan,
}


def _peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB; the process's peak so far


def time_case(case, device, batch_size: int, variant: str, steps: int, warmup: int) -> float:
    """Median images/s of ``case`` after ``warmup`` steps."""
    fn, n = case(device, batch_size, variant)
    times = []
    for i in range(warmup + steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return n / float(np.median(times))


def candidate_settings(work: Workload, values: dict, device: torch.device) -> list[tuple[str, int]]:
    """(variant, batch) pairs to try: on CPU only the stage's own precision / memory format (fast);
    on CUDA every precision × memory format, and ×2, ×4 batches where the profile leaves the batch free."""
    if device.type != "cuda":
        bf16 = values.get("precision") == "bf16"
        return [(("bf16" if bf16 else "fp32") + ("+cl" if values.get("channels_last", True) else ""), work.batch_size)]
    batches = [work.batch_size * k for k in (1, 2, 4)] if work.batch_free else [work.batch_size]
    return [(v, b) for b in batches for v in ("fp32", "fp32+cl", "bf16", "bf16+cl")]


def estimate_stage(section: str, values: dict, device: torch.device, steps: int = 3, warmup: int = 2,
                   compile: bool = False, extra: dict | None = None) -> list[dict]:
    """One row per workload of stage ``section`` at ``values``: the fastest setting tried, its images/s,
    peak memory and the extrapolated training time of the stage's steps × batch images."""
    if section not in STAGES:
        raise FacefillError(f"no workloads for stage {section!r}; known: {list(STAGES)}")
    fn = STAGES[section]
    works = fn(values, extra) if section == "semantic" else fn(values)
    rows = []
    for w in works:
        best = None
        for variant, batch in candidate_settings(w, values, device):
            torch.manual_seed(0)
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            try:
                ips = time_case(w.case, device, batch, variant, steps, warmup)
            except torch.cuda.OutOfMemoryError:
                continue
            if best is None or ips > best["images_per_s"]:
                best = {"variant": variant, "batch": batch, "images_per_s": ips, "peak_mb": _peak_memory_mb(device)}
        if best is None:
            raise FacefillError(f"{section}: {w.label} does not fit in {device} memory at batch {w.batch_size}.")
        if compile and device.type == "cuda":
            best = _try_compile(w, device, best, steps, warmup)
        images = w.steps * w.batch_size  # what the profile trains; a larger batch takes fewer steps
        rows.append({"stage": section, "network": w.label, "steps": w.steps, "batch": w.batch_size, **best,
                     "seconds": images / best["images_per_s"]})
    return rows


def _try_compile(w: Workload, device, best: dict, steps: int, warmup: int) -> dict:
    """torch.compile of the modules (``reduce-overhead``: CUDA graphs); kept when it beats ``best``."""
    def case(dev, batch, variant):
        import torch._dynamo

        fn, n = w.case(dev, batch, variant)
        return torch.compile(fn, mode="reduce-overhead"), n

    try:
        torch.cuda.reset_peak_memory_stats(device)
        ips = time_case(case, device, best["batch"], best["variant"], steps, warmup + 3)
    except Exception as e:  # compilation failures are common for training steps with optimisers
        print(f"  {w.label}: torch.compile skipped ({type(e).__name__})", flush=True)
        return best
    if ips > best["images_per_s"]:
        return {**best, "variant": best["variant"] + "+compile", "images_per_s": ips, "peak_mb": _peak_memory_mb(device)}
    return best


def format_seconds(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    if s < 172800:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def estimate_profile(params: dict, profile: str, stages: list[str] | None = None, device: str = "auto", steps: int = 3,
                     warmup: int = 2, compile: bool = False, out=None) -> list[dict]:
    """Time a few training steps of every stage's networks at ``profile``'s sizes on ``device``
    (synthetic tensors: no data, dlib or Jupyter needed) and print per stage images/s, peak memory and
    the extrapolated training time; returns the rows. See :mod:`facefill.bench` (``STAGES``)."""
    import sys

    from .config import section

    out = out or sys.stdout
    known = [s for s in params["base"] if s in STAGES]
    stages = stages or known
    unknown = [s for s in stages if s not in known]
    if unknown:
        raise FacefillError(f"no stage {unknown} to estimate; stages: {known}.")
    dev = resolve_device(device)
    name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else (platform.processor() or platform.machine())
    print(f"estimate of profile {profile!r} on {dev} ({name}), torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"median of {steps} training steps after {warmup} warm-up, synthetic tensors. Training only: evaluation, "
          "baselines, data loading and landmark detection are not counted.", file=out, flush=True)
    mem = "peak GPU memory" if dev.type == "cuda" else "peak RSS of this process so far"
    print(f"  {'stage':16s} {'network':44s} {'steps':>7s} {'× batch':11s} {'setting':>13s} {'img/s':>9s}  {mem}  wall time",
          file=out, flush=True)
    rows = []
    for st in stages:
        values = section(params, st, profile)
        extra = section(params, "dcgan", profile) if st == "semantic" and "dcgan" in params["base"] else None
        stage_rows = estimate_stage(st, values, dev, steps, warmup, compile, extra)
        for r in stage_rows:
            print(f"  {st:16s} {r['network']:44s} {r['steps']:>7d} steps × {r['batch']:<4d} {r['variant']:>13s} {r['images_per_s']:9.1f} "
                  f"img/s  {r['peak_mb']:8.0f} MB  {format_seconds(r['seconds']):>8s}", file=out, flush=True)
        total = sum(r["seconds"] for r in stage_rows)
        print(f"  {st:16s} stage total {format_seconds(total)}", file=out, flush=True)
        rows += stage_rows
    print(f"total ({len(stages)} stages, training only): {format_seconds(sum(r['seconds'] for r in rows))}", file=out, flush=True)
    return rows


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
