"""Which SRResNet schedule: constant rate or a linear decay, 500 or 1,000 steps? (paper 004, notebook 05)

    FACEFILL_PIPELINE=1 python scripts/srresnet_schedule_probe.py --variants 500:1.0 500:0.5 1000:0.5 --seeds 0 1 2

Trains the main experiment's SRResNet (the default profile's data, net and rate) once per seed and
variant ``steps:lr_decay_start`` and scores the final model on the **validation** faces only: MSE
(the training loss), PSNR on Y (BT.601) and on RGB, and the colour bias — the mean signed error of
each channel in grey levels (SR − HR), the shift that issue 26 found on the test faces. Bicubic is
the reference row. Outputs go to ``build/probes/srresnet/`` (never the pipeline's); results:
``reports/benchmarks/srresnet_schedule_probe.md``.
"""
import argparse
import time

import numpy as np
import pandas as pd
import torch

from benchmark_file import write_section
from facefill import data, reporting
from facefill.config import notebook_parameters
from facefill.experiments.srgan_faces2020 import SRGANStudy, predict, upscale
from facefill.models.srgan import SRResNetTask, sr_metrics
from facefill.papers import NOTEBOOKS
from facefill.train import evaluate_batches


def scores(sr_u8: np.ndarray, hr_u8: np.ndarray, border: int) -> dict:
    """The study's SR protocol (``sr_metrics``: uint8, ``border`` px cropped) plus the colour bias per channel."""
    m = sr_metrics(sr_u8, hr_u8, border)
    bias = (sr_u8.astype(np.float64) - hr_u8).mean((0, 1, 2))
    return {"val MSE [-1,1]": float((((sr_u8.astype(np.float64) - hr_u8) / 127.5) ** 2).mean()),
            "PSNR-Y": float(np.mean(m["psnr_y"])), "PSNR-RGB": float(np.mean(m["psnr_rgb"])),
            "bias R": float(bias[0]), "bias G": float(bias[1]), "bias B": float(bias[2])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--variants", nargs="+", default=["500:1.0", "500:0.5", "1000:0.5"], metavar="STEPS:DECAY_START")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out", default="reports/benchmarks/srresnet_schedule_probe.md")
    a = ap.parse_args()
    p = notebook_parameters("srgan", a.profile)
    out = f"build/probes/srresnet_{a.profile}"
    p.update(output_dir=out, checkpoint_dir=f"{out}/checkpoints")
    study = SRGANStudy(p, reporting.start(NOTEBOOKS["srgan"], p))
    study.load()
    e = study.main
    hr, lr = study.images(e, "val")
    rows = [{"variant": "bicubic", "seed": "", **scores(upscale(lr, e.scale, "bicubic"), hr, e.scale)}]
    for variant in a.variants:
        steps, decay = variant.split(":")
        for seed in a.seeds:
            t = time.perf_counter()
            torch.manual_seed(seed)
            run = study._fit(SRResNetTask(study.cfgs[e]), e, seed, "SRResNet", int(steps), {}, None, folder=f"probe_{steps}_{decay}",
                             lr_decay_start=float(decay))
            sr = evaluate_batches(lambda x: predict(run.generator, x, study.autocast), lr, p["eval_batch_size"], study.run.device)
            rows.append({"variant": f"{steps} steps, decay from {decay}", "seed": seed, **scores(data.to_uint8(sr), hr, e.scale),
                         "wall s": round(time.perf_counter() - t)})
            print(rows[-1], flush=True)
    df = pd.DataFrame(rows)
    means = df[df["seed"] != ""].groupby("variant", sort=False).mean(numeric_only=True).reset_index()
    intro = (f"Main experiment {e.tag} of notebook 05, profile `{a.profile}` ({len(study.images(e, 'train')[0])} training faces, batch "
             f"{p['batch_size']}, rate {p['lr']:g}); `decay from 0.5`: constant, then linearly to 0 over the second half. Scores on the "
             f"{len(hr)} validation faces (never the test faces); bias: mean signed error per channel in grey levels (SR − HR).")
    title = "SRResNet schedule: constant vs decayed rate (`python scripts/srresnet_schedule_probe.py`)"
    print(write_section(a.out, title, f"{', '.join(a.variants)}, seeds {a.seeds}", intro, df, False))
    print(write_section(a.out, title, "Means over seeds", "Per variant, the mean of the seeds above.", means, True))


if __name__ == "__main__":
    main()
