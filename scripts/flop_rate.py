"""How close each network's training step comes to this CPU's arithmetic ceiling.

    python scripts/flop_rate.py [--stages context_encoder dcgan] [--steps 5] [--out reports/benchmarks/flop_rate_cpu.md]

For every workload of the default profile (``facefill.estimate.STAGES``) at its own batch and setting,
counts the floating-point operations of one training step with ``torch.utils.flop_counter`` (convolutions
and matrix products: the operations that dominate), times the step (median of ``--steps`` after warm-up)
and divides. The ceiling is a 2048² fp32 matrix product, timed right before and after each network
(the machine drifts up to 2×; the mean of the two is used). A network at a small fraction of the
ceiling loses its time to per-step overhead or memory traffic, where a larger batch can pay; one near
it can only be sped up by doing less arithmetic (fewer steps, a smaller network) or by a faster number
format (bf16 on a CPU that has it natively).
"""
from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.flop_counter import FlopCounterMode

from facefill import estimate
from facefill.config import load_params
from speed_sweep import own_variant


def matmul_gflops(n: int = 2048, reps: int = 6) -> float:
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(2):
        a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def measure(work, values: dict, device, steps: int) -> dict:
    variant = own_variant(values, device)
    torch.manual_seed(0)
    step, n = work.case(device, work.batch_size, variant)
    step(), step()
    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    ceiling_before = matmul_gflops()
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    ceiling = (ceiling_before + matmul_gflops()) / 2
    dt = float(np.median(times))
    rate = flops / dt / 1e9
    return {"network": work.label, "setting": f"{variant}, batch {work.batch_size}", f"{work.unit}/s": n / dt,
            "GFLOP per step": flops / 1e9, "GFLOP/s": rate, "matmul GFLOP/s": ceiling, "share of ceiling": rate / ceiling}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stages", nargs="*", help="params.yaml sections (default: every stage that trains)")
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--out", default="reports/benchmarks/flop_rate_cpu.md")
    a = ap.parse_args()
    params, device = load_params(), torch.device("cpu")
    rows = []
    for st, values, work in estimate.profile_workloads(params, "default", a.stages):
        rows.append({"stage": st, **measure(work, values, device, a.steps)})
        print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    text = (f"# Training steps against this CPU's arithmetic ceiling (`python scripts/flop_rate.py`)\n\n"
            f"{platform.processor() or platform.machine()}, torch {torch.__version__}, {torch.get_num_threads()} threads; default "
            f"profile, each network at its own setting; synthetic tensors, training step only. GFLOP counted by "
            f"`torch.utils.flop_counter` (convolutions and matrix products); ceiling: a 2048² fp32 matrix product timed around "
            f"each network. A network near the ceiling can only get faster by doing less arithmetic.\n\n"
            + df.to_markdown(index=False, floatfmt=".3g") + "\n")
    Path(a.out).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
