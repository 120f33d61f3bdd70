"""Would more training pass the convergence gate? Train one seed of a stage's arms at another length.

    FACEFILL_PIPELINE=1 python scripts/convergence_probe.py multiscale --steps 800 --seed 1 --arms CE MCE
    FACEFILL_PIPELINE=1 python scripts/convergence_probe.py cascade --steps 800 --seed 2 --set n_val=256
    FACEFILL_PIPELINE=1 python scripts/convergence_probe.py masked_face --steps 720 --seed 2 --arms BN "no BN"

The stage's parameters of ``--profile`` (default: ``default``) with ``steps`` (cascade: both
stages' steps), ``seed`` and ``n_seeds = 1`` replaced; note that ``seed`` also reseeds the data
split. Outputs and checkpoints go to ``build/probes/<stage>_<steps>`` (never the pipeline's).
Prints each run's convergence gate. ``FACEFILL_PIPELINE=1`` keeps the values as given (without it
a ``default`` profile would be an interactive run that reuses the pipeline's checkpoints).
Results of 2026-12-02: ``reports/benchmarks/convergence_probes.md``.
"""
import argparse
import time

import pandas as pd

from facefill import reporting, verdicts
from facefill.config import notebook_parameters
from facefill.papers import NOTEBOOKS

STUDIES = {"multiscale": "facefill.experiments.multiscale2020:MultiScaleStudy",
           "cascade": "facefill.experiments.cascade2018:CascadeStudy",
           "masked_face": "facefill.experiments.masked_face2021:MaskedFaceStudy"}


def train_probe(stage: str, steps: int, seed: int = 0, profile: str = "default", arms=None, sets=(), out: str | None = None) -> dict:
    """Train one seed of ``stage``'s arms at ``steps`` (cascade: both stages) with ``sets`` ("KEY=VALUE") applied;
    returns {"<arm> seed <k>": history path}. Outputs go to ``out`` (default ``build/probes/<stage>_<steps>``)."""
    p = notebook_parameters(stage, profile)
    out = out or f"build/probes/{stage}_{steps}"
    p.update({"small_steps": steps, "large_steps": steps} if stage == "cascade" else {"steps": steps},
             seed=seed, n_seeds=1, output_dir=out, checkpoint_dir=f"{out}/checkpoints")
    for kv in sets:
        k, v = kv.split("=", 1)
        if k not in p:
            raise SystemExit(f"unknown parameter {k!r} of stage {stage}")
        p[k] = type(p[k])(v) if p[k] is not None else v
    module, cls = STUDIES[stage].split(":")
    study = getattr(__import__(module, fromlist=[cls]), cls)(p, reporting.start(NOTEBOOKS[stage], p))
    study.load()
    if stage == "masked_face":
        runs = [study.train_one(arm, seed) for arm in (arms or ["no BN", "BN"])]
        return {f"{r.arm} seed {r.seed}": r.history_path for r in runs}
    if stage == "multiscale" and arms:
        every = study.arm_configs
        study.arm_configs = lambda: {k: v for k, v in every().items() if k in arms}
    if stage == "cascade":
        print(study.compute_match()["steps"])
    return {f"{label} seed {r.seed}": r.history_path for label, rs in study.train().items() for r in rs}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("stage", choices=sorted(STUDIES))
    ap.add_argument("--steps", type=int, required=True)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--arms", nargs="*", help="multiscale / masked_face: the arms to train (default: all)")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="other parameters, e.g. n_val=256")
    a = ap.parse_args()
    t = time.perf_counter()
    paths = train_probe(a.stage, a.steps, a.seed, a.profile, a.arms, a.set)
    print(f"trained in {time.perf_counter() - t:.0f} s")
    tol = verdicts.Tolerances()
    for label, path in paths.items():
        h = pd.read_csv(path).dropna(subset=["val_rec"])
        g = verdicts.convergence_gate(h["step"], h["val_rec"], tol, label=label)
        print(f"{a.steps} steps  {'pass' if g.passed else 'FAIL'}  {g.detail}")


if __name__ == "__main__":
    main()
