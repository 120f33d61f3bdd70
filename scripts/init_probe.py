"""Does the weight initialisation decide whether the masked-face CE leaves the mean face? (paper 002, notebook 03)

    FACEFILL_PIPELINE=1 python scripts/init_probe.py --inits glorot torch --seeds 0 1 2 3 4 --arms "no BN"

Trains the default profile's arms (same split, same masks, same steps) once per weight seed and per
initialisation (``EluContextEncoderConfig.init``), on validation faces only, and tabulates per run:
the final validation error on the mask region, the first step at which it falls below ``escape`` × the
mean face's error (the run has left the mean-face plateau), and whether the run ends below that line.
Outputs go to ``build/probes/init/<init>`` (never the pipeline's). Results: ``reports/benchmarks/init_probe.md``.
"""
import argparse
import time
from dataclasses import replace

import pandas as pd

from benchmark_file import write_section
from facefill import reporting
from facefill.config import notebook_parameters
from facefill.experiments.masked_face2021 import MaskedFaceStudy
from facefill.papers import NOTEBOOKS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--inits", nargs="+", default=["glorot", "torch"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    ap.add_argument("--arms", nargs="+", default=["no BN"])
    ap.add_argument("--escape", type=float, default=0.9, help="left the plateau: validation error below this × the mean face's")
    ap.add_argument("--batch-factor", type=int, default=1, help="train at batch k × the profile's for steps / k (same images seen)")
    ap.add_argument("--out", default="reports/benchmarks/init_probe.md")
    ap.add_argument("--append", action="store_true")
    a = ap.parse_args()
    rows = []
    for init in a.inits:
        p = notebook_parameters("masked_face", "default")
        k = a.batch_factor
        out = f"build/probes/init/{init}" + (f"_x{k}" if k > 1 else "")
        p.update(output_dir=out, checkpoint_dir=f"{out}/checkpoints", batch_size=p["batch_size"] * k, steps=p["steps"] // k)
        study = MaskedFaceStudy(p, reporting.start(NOTEBOOKS["masked_face"], p))
        study.load()
        study.cfg = replace(study.cfg, init=init)
        line = a.escape * study.val_mean_image
        for arm in a.arms:
            for seed in a.seeds:
                t = time.perf_counter()
                run = study.train_one(arm, seed)
                h = pd.read_csv(run.history_path).dropna(subset=["val_rec"])
                below = h[h["val_rec"] < line]
                rows.append({"init": init, "arm": arm, "seed": seed, "batch": p["batch_size"], "steps": int(h["step"].iloc[-1]),
                             "final val_rec": float(h["val_rec"].iloc[-1]), "best val_rec": float(h["val_rec"].min()),
                             "mean face val_rec": study.val_mean_image,
                             "first step below line": int(below["step"].iloc[0]) if len(below) else None,
                             "ends below line": bool(h["val_rec"].iloc[-1] < line), "wall s": round(time.perf_counter() - t)})
                print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    intro = (f"Default profile of notebook 03 (CelebA-HQ 64 px, {p['n_train']} training faces, {p['steps']} steps × batch "
             f"{p['batch_size']}, lr {p['lr']}, the project's split and masks); one run per weight seed. `line`: {a.escape} × the "
             f"mean training face's validation error on the mask region. `glorot`: Keras' default (the paper's framework); "
             f"`torch`: PyTorch's default layer init. Seeds and split as the pipeline's, validation faces only.")
    summary = df.groupby(["init", "arm", "batch"]).agg(runs=("seed", "size"), ends_below=("ends below line", "sum"),
                                              median_first_step=("first step below line", "median"),
                                              final_mean=("final val_rec", "mean"), final_max=("final val_rec", "max")).reset_index()
    title = "Weight initialisation of the masked-face CE: leaving the mean face (`python scripts/init_probe.py`)"
    print(write_section(a.out, title, f"{' vs '.join(a.inits)}, arms {', '.join(a.arms)}, seeds {a.seeds}, batch {p['batch_size']}", intro, df, a.append))
    print(write_section(a.out, title, f"Summary per initialisation (batch {p['batch_size']})", "Counts and means over the runs above.", summary, True))


if __name__ == "__main__":
    main()
