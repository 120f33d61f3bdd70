"""Does ``torch.compile`` (inductor, CPU) pay for the default profile's networks? Interleaved, training step only.

    python scripts/compile_probe.py [--stages context_encoder srgan] [--steps 6] [--out reports/benchmarks/torch_compile_cpu.md]

For each network a stage trains (``facefill.estimate.STAGES``, the default profile's sizes and batch) it
builds the training step twice -- eager, and with every module of the task compiled in place
(``nn.Module.compile``) -- both fp32 + channels_last (this profile's CPU setting without native bf16),
times the compile (the first steps) separately, then alternates one eager and one compiled step
``--steps`` times, so the machine's drift hits both alike. It reports median images/s, the ratio and
how many steps the compile needs to pay for itself. Synthetic tensors; no data loading or validation.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

import facefill.cases as cases

_training_case = cases.training_case
_compile_next = False  # set while building the compiled variant of a case


def _compiling_training_case(make_task, make_batch, plain=False, **kw):
    """``cases.training_case`` whose task has its modules compiled when ``_compile_next`` is set."""

    def make(variant):
        task = make_task(variant)
        if _compile_next:
            for m in task.modules.values():
                m.compile()
        return task

    return _training_case(make, make_batch, plain, **kw)


cases.training_case = _compiling_training_case  # before facefill.estimate binds the name

from facefill import estimate  # noqa: E402
from facefill.config import load_params  # noqa: E402
from speed_sweep import sweep_args  # noqa: E402  (beside this script)


def probe(work, device, steps: int, warmup: int) -> dict:
    global _compile_next
    fns = {}
    for compiled in (False, True):
        _compile_next = compiled
        torch.manual_seed(0)
        fn, n = work.case(device, work.batch_size, "fp32+cl")
        t0 = time.perf_counter()
        for _ in range(warmup):
            fn()
        fns[compiled] = (fn, n, time.perf_counter() - t0)
    _compile_next = False
    times = {False: [], True: []}
    for _ in range(steps):  # alternate: one eager step, one compiled step
        for compiled, (fn, _, _) in fns.items():
            t0 = time.perf_counter()
            fn()
            times[compiled].append(time.perf_counter() - t0)
    eager, comp = (float(np.median(times[c])) for c in (False, True))
    overhead = fns[True][2] - warmup * eager  # the compile's own cost, beyond the steps it ran
    gain = eager - comp
    return {"network": work.label, "batch": work.batch_size, "eager": fns[False][1] / eager, "compiled": fns[True][1] / comp,
            "ratio": eager / comp, "compile_s": overhead, "break_even": overhead / gain if gain > 0 else float("inf")}


def main(argv=None) -> int:
    args = sweep_args(argv, __doc__, "torch_compile_cpu.md")
    params, device = load_params(), torch.device("cpu")
    lines = ["# torch.compile vs eager, default profile, interleaved (`python scripts/compile_probe.py`)", "",
             f"torch {torch.__version__}, {torch.get_num_threads()} threads, fp32 + channels_last, the profile's batch; "
             f"{args.warmup} warm-up steps (the compile happens there), then {args.steps} alternating eager / compiled steps. "
             "**compile s**: warm-up time of the compiled step minus the eager steps it replaced; **break-even**: steps "
             "until the compile has paid for itself. Read ratios: the machine drifts.", "",
             "| stage | network | batch | eager img/s | compiled img/s | ratio | compile s | break-even steps |",
             "|---|---|---|---|---|---|---|---|"]
    t0 = time.perf_counter()
    # the z-search is not a training_case: nothing of it would be compiled
    stages = args.stages or [s for s in estimate.profile_stages(params) if s != "semantic"]
    for name, _, w in estimate.profile_workloads(params, "default", stages):
        r = probe(w, device, args.steps, args.warmup)
        lines.append(f"| {name} | {r['network']} | {r['batch']} | {r['eager']:.1f} | {r['compiled']:.1f} | {r['ratio']:.2f} | "
                     f"{r['compile_s']:.0f} | {r['break_even']:.0f} |")
        print(lines[-1], flush=True)
    lines += ["", f"Total {time.perf_counter() - t0:.0f} s.", ""]
    Path(args.out).write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
