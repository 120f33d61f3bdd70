"""The face DCGAN of paper 003 as its own pipeline stage: train it once, measure that it draws faces.

Paper 003 ("Structurally and semantically coherent deep image inpainting", §3.1) and Yeh et al.
(CVPR 2017) search the latent space of a DCGAN (Radford et al., ICLR 2016;
:mod:`facefill.models.dcgan`) trained on CelebA. Every inpainting result of notebook 04 is only as
good as this prior, so it is trained here, as the DVC stage ``dcgan``::

    python -m facefill.experiments.dcgan_faces train [--profile smoke|default|paper]

(parameters: the ``dcgan`` section of params.yaml, base + profile override). Outputs: the checkpoint
folder ``models/04_dcgan_faces`` (persisted: an interrupted stage resumes) and the report folder
``reports/04_dcgan_faces`` (``history.csv``, ``samples_over_training.png``, ``metrics.json``).
Notebook 04 loads the checkpoint with :func:`load_or_train`, which trains the same model itself
(into the notebook's own checkpoint folder) when the stage has not been run, e.g. under nbval.

**Does it draw faces?** A sample-quality curve the convergence gate can read: every
``validate_every`` steps, G (eval mode) maps ``face_samples`` fixed codes z to images, and
``val_face_share`` is the share in which dlib's HOG face detector — which finds no face in a
64-px crop, hence the ×``face_upscale`` bicubic upscale — finds one. The same share on real test
crops is the reference (a perfect generator reaches it, not 1: the detector misses some real faces).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from .. import data, profiling
from ..adversarial import predict
from ..codehash import code_fingerprint
from ..config import PROFILES, check_keys, load_params, pick, repo_root, section
from ..errors import ConfigError, FacefillError
from ..metrics import kernel_distance
from ..models.dcgan import DCGANConfig, DCGANTask, sample_z
from ..perceptual import image_features
from ..train import TrainConfig, config_fingerprint, fit, load_checkpoint
from . import project_path

SECTION = "dcgan"
STAGE = "04_dcgan_faces"
SNAPSHOTS = "snapshots.npz"  # uint8 samples of the fixed z at every validation, beside the checkpoint


@dataclass
class FaceShareConfig:
    face_samples: int = 128  # fixed z's scored by the detector at every validation
    face_upscale: float = 4.0  # dlib's HOG detector needs faces of ≳ 80 px: 64-px crops ×4
    validate_every: int = 150  # steps between points of the val_face_share curve
    n_real: int = 256  # real test crops for the reference share

    def __post_init__(self):
        if self.face_samples < 1 or self.validate_every < 1 or self.n_real < 1 or self.face_upscale < 1:
            raise ConfigError("face_samples, validate_every, n_real must be >= 1 and face_upscale >= 1.")


KEYS = {"dataset", "image_size", "n_train", *DCGANConfig.__dataclass_fields__, *FaceShareConfig.__dataclass_fields__,
        *TrainConfig.__dataclass_fields__} - {"seed", "progress", "flip"}


def face_detected(images_uint8: np.ndarray, upscale: float = 4.0) -> np.ndarray:
    """(N,) 1.0 where dlib's frontal-face detector finds at least one face in the upscaled image."""
    from ..landmarks import check_images, face_detector, upscaled

    det = face_detector()
    with profiling.timed("dlib"):
        return np.array([float(len(det(upscaled(im, upscale), 0)) > 0) for im in check_images(images_uint8)])


def fixed_z(n: int, z_dim: int, seed: int) -> torch.Tensor:
    """The codes of the sample-quality curve and the sample grids (the same at every validation)."""
    return sample_z(n, z_dim, torch.Generator().manual_seed(10_007 + seed))


@dataclass
class DCGANRun:
    task: DCGANTask
    history: pd.DataFrame
    real_face_share: float  # the detector's share on real test crops (the ceiling of the curve)
    real_kid_floor: float  # kernel distance between two halves of the real test crops (the floor of val_kid)
    snapshots: dict  # step → uint8 (k, H, W, 3) samples of the fixed z
    trained_here: bool  # False: loaded from a finished checkpoint of the same configuration
    checkpoint: Path


def _configs(p: dict) -> tuple[DCGANConfig, TrainConfig, FaceShareConfig]:
    check_keys(p, KEYS | {"seed", "profile"}, f"params.yaml {SECTION}")
    return pick(p, DCGANConfig), pick(p, TrainConfig), pick(p, FaceShareConfig)


def _is_finished(ckpt: dict, p: dict, n_train: int) -> bool:
    """Whether checkpoint ``ckpt`` is the finished run of parameters ``p`` (same fingerprint as ``fit`` computes:
    the configs and the training code, with this module as the study since :func:`train` calls ``fit``)."""
    cfg, train_cfg, _ = _configs(p)
    train_cfg = TrainConfig(**{**train_cfg.__dict__, "seed": p["seed"]})
    code = code_fingerprint(DCGANTask, __name__)
    fingerprint = config_fingerprint(train_cfg, {"dataset": p["dataset"], "n_train": n_train}, cfg, code)
    return ckpt["fingerprint"] == fingerprint and ckpt["step"] == p["steps"]


def train(p: dict, output_dir: Path, checkpoint_dir: Path, data_dir=None, processed_dir="data/processed",
          progress: bool = True) -> DCGANRun:
    """Train (or resume, or load when finished) the DCGAN of parameter dict ``p`` (the ``dcgan``
    section plus ``seed``); writes history, sample snapshots and the figure of samples over training."""
    cfg, train_cfg, fs = _configs(p)
    train_cfg = TrainConfig(**{**train_cfg.__dict__, "seed": p["seed"], "progress": progress})
    kw = dict(data_dir=data_dir, processed_dir=processed_dir, seed=p["seed"])
    images = data.load_faces(p["dataset"], p["image_size"], "train", p["n_train"], **kw)
    real = data.load_faces(p["dataset"], p["image_size"], "test", fs.n_real, **kw)
    output_dir, checkpoint_dir = Path(output_dir), Path(checkpoint_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(p["seed"])
    task = DCGANTask(cfg)
    z = fixed_z(fs.face_samples, cfg.z_dim, p["seed"])
    snap_path = checkpoint_dir / SNAPSHOTS
    snapshots = {int(k): v for k, v in np.load(snap_path).items()} if snap_path.exists() else {}

    real_features = image_features(real)  # once: the reference of every val_kid point

    def validate() -> dict[str, float]:
        device = next(task.generator.parameters()).device
        samples = data.to_uint8(predict(task.generator, z.to(device)).cpu())
        share = float(face_detected(samples, fs.face_upscale).mean())
        kid = kernel_distance(real_features, image_features(samples))  # does not saturate like the face share
        state = next(iter(task.optimizers["generator"].state.values()), None)
        snapshots[int(state["step"]) if state else 0] = samples[:8]  # G's Adam step count = the training step
        np.savez_compressed(snap_path, **{str(k): v for k, v in snapshots.items()})
        return {"val_face_share": share, "val_kid": kid}

    ckpt = checkpoint_dir / "last.pt"
    finished = ckpt.exists() and _is_finished(load_checkpoint(ckpt), p, len(images))
    t0 = time.perf_counter()
    history = fit(task, images, train_cfg, output_dir, checkpoint_dir, sample_images=images[:8], validate=validate,
                  validate_every=fs.validate_every, fingerprint_extra={"dataset": p["dataset"], "n_train": len(images)})
    seconds = time.perf_counter() - t0
    validated = set(history["step"][history["val_face_share"].notna()].astype(int)) if "val_face_share" in history else set()
    if set(snapshots) - validated:  # left by a run of another configuration in the same folder
        snapshots = {k: v for k, v in snapshots.items() if k in validated}
        np.savez_compressed(snap_path, **{str(k): v for k, v in snapshots.items()})
    real_share = float(face_detected(real, fs.face_upscale).mean())
    run = DCGANRun(task, history, real_share, real_floor(real_features), dict(sorted(snapshots.items())), not finished, ckpt)
    save_report(run, output_dir, p, len(images), len(real), seconds)
    return run


def samples_figure(snapshots: dict, title: str = "G(z) of fixed codes over training"):
    """Rows = training steps (at most 8, evenly spaced), columns = the same 8 codes."""
    import matplotlib.pyplot as plt

    steps = sorted(snapshots)
    keep = [steps[round(i)] for i in np.linspace(0, len(steps) - 1, min(8, len(steps)))] if steps else []
    keep = list(dict.fromkeys(keep))
    fig, axes = plt.subplots(max(len(keep), 1), 8, figsize=(8 * 0.9, 0.9 * max(len(keep), 1)), squeeze=False)
    for r, s in enumerate(keep):
        for c in range(8):
            ax = axes[r][c]
            if c < len(snapshots[s]):
                ax.imshow(snapshots[s][c])
            ax.set_xticks([]), ax.set_yticks([])
        axes[r][0].set_ylabel(f"step {s}", fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig


def real_floor(real_features) -> float:
    """The kernel distance between two halves of the real crops: what a perfect generator would score
    at this sample size (the samples are compared with all of them, so this floor is a little high)."""
    half = len(real_features) // 2
    return kernel_distance(real_features[:half], real_features[half:]) if half >= 2 else float("nan")


def save_report(run: DCGANRun, output_dir: Path, p: dict, n_train: int, n_real: int, seconds: float) -> None:
    import matplotlib.pyplot as plt

    run.history.to_csv(output_dir / "history.csv", index=False)
    fig = samples_figure(run.snapshots)
    with profiling.timed("figures"):
        fig.savefig(output_dir / "samples_over_training.png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    h = run.history.dropna(subset=["val_face_share"]) if "val_face_share" in run.history else run.history.iloc[:0]
    metrics = {"profile": p.get("profile"), "n_train": n_train, "n_real": n_real, "steps": p["steps"], "width": p["width"],
               "g_activation": p["g_activation"], "final_face_share": float(h["val_face_share"].iloc[-1]) if len(h) else None,
               "best_face_share": float(h["val_face_share"].max()) if len(h) else None,
               "real_face_share": run.real_face_share, "real_kid_floor": run.real_kid_floor,
               "final_kid": float(run.history["val_kid"].dropna().iloc[-1]) if "val_kid" in run.history and run.history["val_kid"].notna().any() else None,
               "median_images_per_s": float(run.history["images_per_s"].median()) if "images_per_s" in run.history else None,
               "trained_here": run.trained_here}
    (output_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True) + "\n")


def load_or_train(p: dict, stage_checkpoint_dir: Path, own_checkpoint_dir: Path, output_dir: Path, data_dir=None,
                  processed_dir="data/processed") -> DCGANRun:
    """For notebook 04: the stage's finished checkpoint when it matches ``p`` (nothing is written
    next to it), else train the same model into ``own_checkpoint_dir`` (smoke runs, nbval)."""
    ckpt = Path(stage_checkpoint_dir) / "last.pt"
    if ckpt.exists():
        c = load_checkpoint(ckpt)
        n_train = len(data.load_faces(p["dataset"], p["image_size"], "train", p["n_train"], data_dir=data_dir,
                                      processed_dir=processed_dir, seed=p["seed"]))
        if _is_finished(c, p, n_train):
            cfg, _, fs = _configs(p)
            task = DCGANTask(cfg)
            for k, m in task.modules.items():
                m.load_state_dict(c["modules"][k])
                m.eval()
            snap = Path(stage_checkpoint_dir) / SNAPSHOTS
            snapshots = {int(k): v for k, v in np.load(snap).items()} if snap.exists() else {}
            real = data.load_faces(p["dataset"], p["image_size"], "test", fs.n_real, data_dir=data_dir,
                                   processed_dir=processed_dir, seed=p["seed"])
            run = DCGANRun(task, pd.DataFrame(c["history"]), float(face_detected(real, fs.face_upscale).mean()),
                           real_floor(image_features(real)), dict(sorted(snapshots.items())), False, ckpt)
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            save_report(run, Path(output_dir), p, n_train, len(real), 0.0)
            return run
        print(f"{ckpt} is of another configuration or unfinished: training the DCGAN here (into {own_checkpoint_dir})")
    return train(p, output_dir, own_checkpoint_dir, data_dir, processed_dir, progress=False)


def stage_params(profile: str | None = None, params: dict | None = None) -> dict:
    params = params or load_params()
    return {**section(params, SECTION, profile), "seed": int(params.get("seed", 0)), "profile": profile or params["profile"]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m facefill.experiments.dcgan_faces", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    t = sub.add_parser("train", help="train the face DCGAN (the `dcgan` DVC stage)")
    t.add_argument("--profile", choices=PROFILES, default=None)
    t.add_argument("--output-dir", default=f"reports/{STAGE}")
    t.add_argument("--checkpoint-dir", default=f"models/{STAGE}")
    args = ap.parse_args(argv)
    root = repo_root()
    params = load_params(root / "params.yaml")
    p = stage_params(args.profile, params)
    d = params.get("data") or {}
    profiling.record_to(root / args.output_dir / "timings.json")
    try:
        with profiling.timed("stage"):
            run = train(p, root / args.output_dir, root / args.checkpoint_dir, d.get("dir"), root / d.get("processed_dir", "data/processed"))
    except FacefillError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    h = run.history.dropna(subset=["val_face_share"])
    print(f"[facefill] dcgan: face share of samples {h['val_face_share'].iloc[-1]:.2f} (real test crops "
          f"{run.real_face_share:.2f}); report → {project_path(root / args.output_dir, root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
