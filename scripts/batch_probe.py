"""Does a larger batch keep the result? Final validation loss at the same images seen, seed 0 of every arm.

    FACEFILL_PIPELINE=1 python scripts/batch_probe.py cascade --factors 1 2 4
    FACEFILL_PIPELINE=1 python scripts/batch_probe.py masked_face --factors 1 4 --append

For each factor k, trains seed 0 of every arm of the stage (``scripts/convergence_probe.py``'s
``train_probe``) at batch k × B for steps / k -- the default profile's images seen, the learning rate
unchanged -- and compares each arm's final validation loss with the committed default run (its
``reports/<notebook>/…/history.csv``: seeds 0-2 at batch B). Factor 1 reruns the default itself: it must
reproduce the committed seed 0. The speed-up of a larger batch (``speed_sweep_cpu.md``) is worth adopting
only where every arm ends within the committed seeds' range or better ("keeps the result"). Training
seconds are measured run after run, not interleaved: read them as rough.
"""
import argparse
import re
from pathlib import Path

import pandas as pd

from benchmark_file import write_section
from convergence_probe import train_probe
from facefill.config import notebook_parameters
from facefill.papers import NOTEBOOKS


def final_val(path) -> float:
    h = pd.read_csv(path).dropna(subset=["val_rec"])
    return float(h["val_rec"].iloc[-1])


def training_seconds(folder: Path, batch: int) -> float:
    """Seconds of training steps logged in the full-budget runs' histories under ``folder`` (a half-budget twin's history
    repeats the prefix it shares): each row's steps × batch / its images/s. From the histories, so a rerun that reuses
    finished checkpoints still reports them."""
    total = 0.0
    for path in folder.rglob("history.csv"):
        if any(part.startswith("half") for part in path.relative_to(folder).parts):
            continue
        h = pd.read_csv(path).dropna(subset=["images_per_s"])
        steps = h["step"].diff().fillna(h["step"].iloc[0] if len(h) else 0)
        total += float((steps * batch / h["images_per_s"]).sum())
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=["cascade", "masked_face", "multiscale"])
    ap.add_argument("--factors", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--out", default="reports/benchmarks/batch_validation.md")
    ap.add_argument("--append", action="store_true", help="add this stage's table to --out instead of replacing it")
    a = ap.parse_args()
    p = notebook_parameters(a.stage, "default")
    key = "large_steps" if a.stage == "cascade" else "steps"
    batch, steps = int(p["batch_size"]), int(p[key])
    committed = Path("reports") / NOTEBOOKS[a.stage]
    rows = []
    for k in a.factors:
        if steps % k:
            raise SystemExit(f"{steps} steps are not divisible by {k}")
        out = f"build/probes/batch/{a.stage}_x{k}"
        paths = train_probe(a.stage, steps // k, 0, "default", None, [f"batch_size={batch * k}"], out)
        seconds = training_seconds(Path(out), batch * k)
        for label, path in paths.items():
            rel = Path(path).resolve().relative_to(Path(out).resolve())
            seeds = [final_val(committed / Path(re.sub(r"seed0", f"seed{s}", str(rel)))) for s in range(3)]
            v = final_val(path)
            rows.append({"stage": a.stage, "arm": label.removesuffix(" seed 0"), "batch": batch * k, "steps": steps // k,
                         "final val_rec": v, "committed seed 0": seeds[0], "committed seeds min-max": f"{min(seeds):.4f}-{max(seeds):.4f}",
                         "keeps the result": v <= max(seeds), "training s (all arms)": seconds})
            print(rows[-1], flush=True)
    intro = (f"Seed 0 of every arm, default profile, learning rates unchanged; `training s`: the training steps of all arms' full-budget "
             f"runs, from the logged images/s (validation excluded; runs one after another, so rough). "
             f"`keeps the result`: the final validation loss is at most the worst of the committed default run's 3 seeds "
             f"(batch {batch}, {steps} steps). The cascade's CE arm trains the compute-matched steps of its own rule.")
    text = write_section(a.out, "Larger batches at the same images seen: validation check (`python scripts/batch_probe.py`)",
                         f"{a.stage}: batch {batch} × {' / '.join(map(str, a.factors))}, {steps} steps ÷ the factor",
                         intro, pd.DataFrame(rows), a.append)
    print(text)


if __name__ == "__main__":
    main()
