"""How long each pipeline stage trains, estimated from a few timed steps: ``python -m facefill.pipeline estimate``.

What one stage trains, at the sizes of a profile's parameters: each :class:`Workload` is one network
trained for ``steps`` steps (all its arms and seeds together) at ``batch_size``; :data:`STAGES` maps a
params.yaml section to its workloads. Configs are built with :func:`facefill.config.pick` from the
flat stage parameters, so the workloads follow the models' configs. :func:`estimate_stage` times a
few steps of each workload (synthetic tensors, the cases of :mod:`facefill.cases`) and extrapolates
the stage's training time; :func:`estimate_profile` does it for every stage and prints the table.

The microbenchmark of named models is :mod:`facefill.bench` (which re-exports these names).
"""
from __future__ import annotations

import dataclasses
import math
import platform
import sys
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .cases import faces_and_masks, hr_and_lr, random_images, training_case, variant_settings
from .config import pick, section
from .errors import FacefillError
from .runtime import resolve_device


@dataclass
class Workload:
    label: str
    steps: int  # training steps of the whole stage for this network (arms × seeds × steps)
    batch_size: int
    case: Callable  # (device, batch_size, variant) -> (step_fn, n_images), as the registered cases
    batch_free: bool = False  # the profile does not fix the batch: estimate may choose a larger one
    unit: str = "img"  # what n_images counts (the z-search: images searched in parallel)


def _cfg(cls, values, **over):
    return dataclasses.replace(pick(values, cls), **over) if over else pick(values, cls)


def _n(values, key, default=1):
    v = values.get(key, default)
    return default if v is None else int(v)


def _with_half(v, steps: int, independent: bool = False) -> int:
    """``steps`` of full-budget training plus what its half-budget twin adds (``verdicts.require_half_budget``):
    ``fit``'s branched twin trains from :func:`~facefill.train.half_branch_step` to T/2 (T/4 more at
    ``lr_decay_start`` 0.5, none at a constant rate); an ``independent`` half run (the cascade's CCE, the
    SRGAN arms on the half-budget SRResNet) trains all of its T/2."""
    from .verdicts import Tolerances

    if not Tolerances.from_params().require_half_budget:
        return steps
    extra = 0.5 if independent else 0.5 * (1.0 - float(v.get("lr_decay_start", 1.0)))
    return int(round(steps * (1.0 + extra)))


def _stage_context_encoder(v):
    from .models import context_encoder as ce

    cfg = _cfg(ce.ContextEncoderConfig, v)
    case = training_case(lambda variant: ce.ContextEncoderTask(cfg), random_images(cfg.image_size))
    return [Workload(f"CE{cfg.image_size} w{cfg.width} z{cfg.bottleneck}", _with_half(v, _n(v, "n_seeds") * v["steps"]), v["batch_size"], case)]


def _stage_multiscale(v):
    from .models import context_encoder as ce
    from .models import multiscale as ms

    datasets = 2 if v.get("train_transfer") else 1
    runs = datasets * _n(v, "n_seeds") * v["steps"]
    mce = _cfg(ms.MultiScaleConfig, v)
    # the CE arm: a plain CE on the crop around the hole, twice the hole's side (as MultiScaleStudy builds it)
    ce_cfg = ce.ContextEncoderConfig(image_size=2 * mce.hole, hole=mce.hole, overlap=mce.overlap, bottleneck=v["ce_bottleneck"],
                                     width=v["ce_width"])
    out = [Workload(f"CE{ce_cfg.image_size} w{ce_cfg.width} z{ce_cfg.bottleneck}", _with_half(v, runs), v["batch_size"],
                    training_case(lambda variant: ce.ContextEncoderTask(ce_cfg), random_images(ce_cfg.image_size)))]
    for agg in ["add"] + (["concat"] if v.get("train_concat") else []):
        cfg = _cfg(ms.MultiScaleConfig, v, aggregation=agg)
        case = training_case(lambda variant, cfg=cfg: ms.MultiScaleTask(cfg), random_images(cfg.image_size))
        out.append(Workload(f"MCE{cfg.image_size} {agg} w{cfg.width}", _with_half(v, runs), v["batch_size"], case))
    if v.get("ablation_scales"):
        cfg = _cfg(ms.MultiScaleConfig, v, n_scales=int(v["ablation_scales"]))
        case = training_case(lambda variant: ms.MultiScaleTask(cfg), random_images(cfg.image_size))
        out.append(Workload(f"MCE{cfg.image_size} {cfg.n_scales}-scale ablation", _with_half(v, runs), v["batch_size"], case))
    return out


def _stage_cascade(v):
    from .models import cascade as cc

    cfg = _cfg(cc.CascadeConfig, v)
    seeds = _n(v, "n_seeds")
    small = training_case(lambda variant: cc.make_ce64_task(cfg), random_images(cfg.image_size // 2))
    cce = training_case(lambda variant: cc.CascadeContextEncoderTask(cfg, cc.make_ce64_task(cfg).generator), random_images(cfg.image_size))
    large = training_case(lambda variant: cc.make_ce128_task(cfg), random_images(cfg.image_size))
    return [Workload(f"small CE{cfg.image_size // 2}", _with_half(v, seeds * v["small_steps"]), v["batch_size"], small),
            Workload(f"CCE{cfg.image_size}", _with_half(v, seeds * v["large_steps"], independent=True), v["batch_size"], cce),
            # the blur control and the CE (its steps matched to the cascade's FLOPs, ≈ large_steps) share the CE's cost
            Workload(f"CE{cfg.image_size} + blur control", _with_half(v, 2 * seeds * v["large_steps"]), v["batch_size"], large)]


def _stage_masked_face(v):
    from .experiments import masked_face2021 as mf
    from .models import elu_context_encoder as ece

    out = []
    for bn in (False, True):
        cfg = _cfg(ece.EluContextEncoderConfig, v, batch_norm=bn)
        case = training_case(lambda variant, cfg=cfg: ece.EluContextEncoderTask(cfg), faces_and_masks(cfg.image_size))
        # the no-BN network also trains the diagnostic arms (the literal loss, Pathak's weights): one seed each, no
        # half-budget twin (they are in no claim)
        steps = _with_half(v, _n(v, "n_seeds") * v["steps"]) + (0 if bn else len(mf.DIAGNOSTICS) * v["steps"])
        out.append(Workload(f"ELU CE{cfg.image_size} {'BN' if bn else 'no BN (+ diagnostics)'} w{cfg.width}", steps, v["batch_size"], case))
    return out


def _stage_dcgan(v):
    from .models.dcgan import DCGANConfig, DCGANTask

    cfg = _cfg(DCGANConfig, v)
    case = training_case(lambda variant: DCGANTask(cfg), random_images(cfg.image_size))
    return [Workload(f"DCGAN{cfg.image_size} w{cfg.width}", v["steps"], v["batch_size"], case)]


def _search_case(dcgan_cfg, hole: int):
    """One Adam step of the z-search of semantic inpainting (the ``semantic64`` case of :mod:`facefill.bench` at any DCGAN size)."""

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
    # per search seed and mask kind one search (SI / ours / random candidate, half budget by snapshot); the first
    # seed adds the regressor's search on every kind (regressor_search) and the uniform-W ablation on the 2 half masks
    from .experiments.semantic_landmarks import HALF_MASKS, MASK_KINDS

    n_masks, seeds = len(MASK_KINDS), _n(v, "n_seeds")
    n_searches = n_masks * seeds + (n_masks if v.get("regressor_search") else 0) + len(HALF_MASKS)
    out = [Workload(f"z-search DCGAN{dcgan_cfg.image_size} ({n_searches} searches: {seeds} seeds × {n_masks} masks + ablations; "
                    f"{n_test} faces × {candidates} z × {v['iterations']} it.)",
                    n_searches * math.ceil(n_test / faces) * int(v["iterations"]), faces * candidates,
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
        resnet = training_case(lambda variant, cfg=cfg: SRResNetTask(cfg), hr_and_lr(cfg.hr_size, cfg.scale))

        def gan(variant, cfg=cfg):
            try:
                return SRGANTask(cfg, ContentLossConfig(content="effnet_lite0"))
            except FacefillError:  # the ImageNet weights are an optional package: time the MSE content instead
                return SRGANTask(cfg, ContentLossConfig(content="mse"))

        arms = 3 if i == 0 else 1  # the main experiment: SRGAN, control, MSE-continued
        out += [Workload(f"SRResNet {hr}px ×{scale}", _with_half(v, _n(v, "n_seeds") * int(v["resnet_steps"])), v["batch_size"], resnet),
                Workload(f"SRGAN {hr}px ×{scale} ({arms} arm{'s' * (arms > 1)})",
                         _with_half(v, arms * _n(v, "n_seeds") * int(v["gan_steps"]), independent=True),
                         v["batch_size"], training_case(gan, hr_and_lr(cfg.hr_size, cfg.scale)))]
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


def stage_workloads(section: str, values: dict, extra: dict | None = None) -> list[Workload]:
    """The workloads of stage ``section`` at its parameters ``values`` (``extra``: the DCGAN's, for ``semantic``)."""
    if section not in STAGES:
        raise FacefillError(f"no workloads for stage {section!r}; known: {list(STAGES)}")
    return STAGES[section](values, extra) if section == "semantic" else STAGES[section](values)


def profile_workloads(params: dict, profile: str, stages: list[str] | None = None):
    """(stage, its parameters, workload) for every network each stage of ``profile`` trains, in pipeline order
    (``stages``: only these; unknown names are an error). The scripts that sweep settings iterate this."""
    for st in profile_stages(params, stages):
        values, extra = stage_values(params, st, profile)
        for w in stage_workloads(st, values, extra):
            yield st, values, w


def profile_stages(params: dict, stages: list[str] | None = None) -> list[str]:
    """``stages`` (default: every stage with workloads, in pipeline order); an unknown name is an error."""
    known = [s for s in params["base"] if s in STAGES]
    unknown = [s for s in stages or [] if s not in known]
    if unknown:
        raise FacefillError(f"no stage {unknown} to estimate; stages: {known}.")
    return list(stages or known)


def stage_values(params: dict, stage: str, profile: str) -> tuple[dict, dict | None]:
    """The stage's parameters at ``profile`` and, for ``semantic``, the DCGAN's (its search runs that generator)."""
    extra = section(params, "dcgan", profile) if stage == "semantic" and "dcgan" in params["base"] else None
    return section(params, stage, profile), extra


def estimate_stage(section: str, values: dict, device: torch.device, steps: int = 3, warmup: int = 2,
                   compile: bool = False, extra: dict | None = None) -> list[dict]:
    """One row per workload of stage ``section`` at ``values``: the fastest setting tried, its images/s,
    peak memory and the extrapolated training time of the stage's steps × batch images."""
    rows = []
    for w in stage_workloads(section, values, extra):
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
    the extrapolated training time; returns the rows. See :data:`STAGES`."""
    out = out or sys.stdout
    stages = profile_stages(params, stages)
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
        values, extra = stage_values(params, st, profile)
        stage_rows = estimate_stage(st, values, dev, steps, warmup, compile, extra)
        for r in stage_rows:
            print(f"  {st:16s} {r['network']:44s} {r['steps']:>7d} steps × {r['batch']:<4d} {r['variant']:>13s} {r['images_per_s']:9.1f} "
                  f"img/s  {r['peak_mb']:8.0f} MB  {format_seconds(r['seconds']):>8s}", file=out, flush=True)
        total = sum(r["seconds"] for r in stage_rows)
        print(f"  {st:16s} stage total {format_seconds(total)}", file=out, flush=True)
        rows += stage_rows
    print(f"total ({len(stages)} stages, training only): {format_seconds(sum(r['seconds'] for r in rows))}", file=out, flush=True)
    return rows


__all__ = ["Workload", "STAGES", "time_case", "candidate_settings", "estimate_stage", "format_seconds", "estimate_profile"]
