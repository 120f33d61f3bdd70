"""Which z learning rate lets paper 003's z-search plateau within its iterations? Validation faces only.

    python scripts/zsearch_lr_probe.py --lrs 0.03 0.1 0.3 --masks center left --iterations 300

Runs the SI search (L_c + L_p, no landmarks) of the ``semantic`` stage's default parameters on
``--n`` CelebA *validation* faces (never the test faces the claims are scored on) with the ``dcgan``
stage's finished generator (``models/04_dcgan_faces``), once per learning rate and mask, the rates
interleaved. Reports per run the mean L_c at the half and at the end, the Theil-Sen change over the
last half (the plateau gate the verdicts apply, ``verdicts.Tolerances.plateau_max_late_gain``) and
the hole PSNR of the kept candidate at both budgets, and writes the table to ``--out``.
"""
import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from benchmark_file import write_section
from facefill import data, metrics, verdicts
from facefill.config import load_params, pick, section
from facefill.experiments.dcgan_faces import load_or_train, stage_params
from facefill.experiments.semantic_landmarks import SEARCH_GATE, study_masks
from facefill.inpaint.semantic import SemanticConfig, SemanticInpainter
from facefill.verdicts import Tolerances


def plateau_gate(hist: pd.DataFrame, tol: Tolerances) -> verdicts.GateResult:
    """The gate notebook 04 applies to each search's mean-L_c curve (``SemanticStudy.claim_specs``)."""
    return verdicts.convergence_gate(hist["iteration"], hist["l_c"], tol, "z-search plateau", **SEARCH_GATE)


def hole_psnr(x: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> float:
    return float(np.mean(metrics.psnr(x, truth, data_range=2.0, mask=masks)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lrs", type=float, nargs="+", default=[0.03, 0.1, 0.3])
    ap.add_argument("--masks", nargs="+", default=["center", "left"])
    ap.add_argument("--iterations", type=int, default=300)
    ap.add_argument("--n", type=int, default=32, help="validation faces per mask")
    ap.add_argument("--out", default="reports/benchmarks/zsearch_lr_probe.md")
    ap.add_argument("--append", action="store_true", help="add this run's table to --out instead of replacing it")
    ap.add_argument("--histories", default="build/probes/zsearch/histories", help="each search's L_c / L_p curve (CSV)")
    a = ap.parse_args()
    params = load_params()
    p = section(params, "semantic", "default") | {"seed": int(params.get("seed", 0))}
    torch.manual_seed(0)
    gan = load_or_train(stage_params("default"), Path(p["dcgan_dir"]), Path("build/probes/zsearch/dcgan"),
                        Path("build/probes/zsearch/dcgan_out"))
    G, D = gan.task.generator, gan.task.discriminator
    faces = data.load_faces(p["dataset"], p["image_size"], "val", a.n, seed=p["seed"])
    truth = data.to_tensor(faces)
    masks = study_masks(p["image_size"], len(truth), p["seed"], p["random_drop"])
    base = pick({**p, "landmark": "none"}, SemanticConfig, rename={"lr": "z_lr", "beta1": "z_beta1"})
    rows, tol = [], Tolerances.from_params()
    hist_dir = Path(a.histories)
    hist_dir.mkdir(parents=True, exist_ok=True)
    for kind in a.masks:
        for lr in a.lrs:  # interleaved: the machine drifts
            cfg = dataclasses.replace(base, lr=lr, iterations=a.iterations, snapshot_at=a.iterations // 2, seed=0)
            t0 = time.perf_counter()
            r = SemanticInpainter(G, D, cfg).inpaint(truth, masks[kind])
            h = r.history
            h.assign(mask=kind, z_lr=lr).to_csv(hist_dir / f"{kind}_lr{lr:g}.csv", index=False)
            gate = plateau_gate(h, tol)
            rows.append({"mask": kind, "z_lr": lr, "L_c half": float(h.loc[h.iteration == a.iterations // 2, "l_c"].iloc[0]),
                         "L_c end": float(h["l_c"].iloc[-1]), "late change": gate.values["last_half_change"],
                         f"plateau (< {tol.plateau_max_late_gain:.0%})": gate.passed,
                         "PSNR half": hole_psnr(r.snapshot.completed, truth, masks[kind]),
                         "PSNR end": hole_psnr(r.completed, truth, masks[kind]), "seconds": time.perf_counter() - t0})
            print(rows[-1], flush=True)
    intro = (f"{a.n} CelebA validation faces per mask, {base.candidates} candidates, {a.iterations} Adam iterations, SI objective "
             f"(L_c + L_p), the `dcgan` stage's generator, search seed 0. `late change`: the plateau gate's Theil-Sen change of mean "
             f"L_c over the last half. PSNR: hole PSNR (dB) of the kept candidate, at half and full iterations.")
    text = write_section(a.out, "z learning rate of paper 003's search (`python scripts/zsearch_lr_probe.py`)",
                         f"{' '.join(a.masks)}: z_lr {' / '.join(f'{lr:g}' for lr in a.lrs)}, {a.iterations} iterations, {a.n} faces",
                         intro, pd.DataFrame(rows), a.append)
    print(text)


if __name__ == "__main__":
    main()
