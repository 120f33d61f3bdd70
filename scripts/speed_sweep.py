"""Which training setting is fastest for each network of the default profile, measured interleaved.

    python scripts/speed_sweep.py [--stages srgan masked_face] [--steps 6] [--out reports/benchmarks/speed_sweep_cpu.md]

For every workload of the default profile (``facefill.estimate.STAGES``: the networks each stage trains,
at the profile's sizes) it times one training step per setting -- batch ×1, ×2, ×4 of the profile's
batch, fp32 / bf16 autocast, both channels_last -- *round-robin step by step in one process*, so the
machine's drift hits every setting alike, and reports the median images/s after warm-up and the
ratio to the profile's own setting. This machine's CPU speed drifts up to 2× within minutes: read
ratios, not absolute numbers. Synthetic tensors, training step only (no data loading or validation).
A larger batch changes the optimisation: a default changed on this evidence keeps the images seen
comparable and is checked on validation (see the deviation logs).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from facefill import estimate
from facefill.config import load_params, repo_root
from facefill.runtime import cpu_has_native_bf16

# bf16 only where the CPU computes it natively: emulated it is 8-20x slower (reports/benchmarks/bf16_without_native_support.md)
VARIANTS = ("fp32", "fp32+cl") + (("bf16+cl",) if cpu_has_native_bf16() else ())


def own_variant(values: dict, device) -> str:
    """The case variant (``fp32+cl``, ``bf16``, ...) of a stage's own precision and memory-format settings."""
    from facefill.runtime import resolve_precision

    precision = resolve_precision(values.get("precision", "auto"), device)
    return ("bf16" if precision == "bf16" else "fp32") + ("+cl" if values.get("channels_last", True) else "")


def sweep(work, values: dict, device, steps: int, warmup: int, factors=(1, 2, 4)) -> list[dict]:
    own = own_variant(values, device)
    settings = [(v, work.batch_size * f) for f in factors for v in VARIANTS]
    if (own, work.batch_size) not in settings:
        settings.insert(0, (own, work.batch_size))
    fns = {}
    for v, b in settings:
        torch.manual_seed(0)
        fn, n = work.case(device, b, v)
        for _ in range(warmup):
            fn()
        fns[v, b] = (fn, n)
    times = {k: [] for k in fns}
    for _ in range(steps):  # round-robin: one step of every setting, then the next round
        for k, (fn, _) in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    rows = [{"network": work.label, "variant": v, "batch": b, "images_per_s": fns[v, b][1] / float(np.median(times[v, b]))}
            for v, b in fns]
    base = next(r["images_per_s"] for r in rows if (r["variant"], r["batch"]) == (own, work.batch_size))
    for r in rows:
        r["ratio"] = r["images_per_s"] / base
        r["default"] = (r["variant"], r["batch"]) == (own, work.batch_size)
    return rows


def sweep_args(argv, description: str, out_name: str) -> argparse.Namespace:
    """The options of the interleaved benchmarks (this script and ``compile_probe.py``)."""
    ap = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="*")
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--out", default=str(repo_root() / "reports" / "benchmarks" / out_name))
    return ap.parse_args(argv)


def main(argv=None) -> int:
    args = sweep_args(argv, __doc__, "speed_sweep_cpu.md")
    params = load_params()
    device = torch.device("cpu")
    lines = [f"# Training settings per network, default profile, interleaved (`python scripts/speed_sweep.py`)", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.steps} timed steps per setting after "
             f"{args.warmup} warm-up, round-robin; synthetic tensors, training step only; CPU native bf16: "
             f"{cpu_has_native_bf16()} (bf16 is tried only where native). **ratio**: images/s over the profile's own "
             "setting (marked ◀; `precision: auto` resolved on this machine). Read ratios: the machine drifts.", "",
             "| stage | network | setting | batch | img/s | ratio |", "|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    for name, values, w in estimate.profile_workloads(params, "default", args.stages):
        rows = sweep(w, values, device, args.steps, args.warmup)
        best = max(rows, key=lambda r: r["images_per_s"])
        for r in rows:
            mark = " ◀" if r["default"] else (" **best**" if r is best else "")
            lines.append(f"| {name} | {r['network']} | {r['variant']}{mark} | {r['batch']} | {r['images_per_s']:.1f} | {r['ratio']:.2f} |")
        print("\n".join(lines[-len(rows):]), flush=True)
    lines += ["", f"Total {time.perf_counter() - t0:.0f} s.", ""]
    Path(args.out).write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
