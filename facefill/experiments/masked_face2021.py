"""The masked-face study (notebook 03): the ELU / max-pool context encoder of paper 002 with and
without batch normalization, next to learning-free fills, on restoration and on identity.

Han, Jiang & Ju, *GAN-based Algorithm for Efficient Image Inpainting* (2021); the model is
:mod:`facefill.models.elu_context_encoder`, the occlusions :mod:`facefill.face_masks`. The protocol,
fixed before any test image is scored:

1. **Data.** CelebA-HQ train / validation / test splits of ``prepare_data`` (area-downsampled to
   ``image_size``). Every face gets one seeded face mask drawn from dlib's 68 landmarks in the crop
   box (train, validation and test masks use different seeds).
2. **Loss scale.** Eq. (1) adds an "MSE" to the adversarial term without a weight or units. The
   reading (a factor on the per-pixel MSE, ``LOSS_READINGS``) is chosen on validation faces by the
   criterion in ``masked_face2021.yaml`` (:func:`probe_readings`); the literal 1:1 reading is trained
   as a diagnostic arm.
3. **Arms.** ``no BN`` (the paper's model) and ``BN`` (§3.3's proposal), ``n_seeds`` seeds each, the
   same budget; every ``validate_every`` steps the validation reconstruction error (MSE on the mask
   region, eval mode) is logged — the curve of the convergence gate.
4. **Test, once.** Every seed and every baseline (mean colour, mean training face, Telea,
   biharmonic) fills the same test faces under the same masks; per-image L1 / PSNR / SSIM on the
   mask region and dlib's identity distance to the original (:func:`facefill.landmarks.identity_distance`,
   known face box, no detection) go to ``arrays.npz``.
5. **Claims.** ``masked_face2021.yaml`` lists them; :mod:`facefill.verdicts` decides each after the
   convergence gate (every seed of every trained arm in the claim) and the sanity gate (the model
   beats the trivial fills on PSNR).
6. **Budget stability** (``verdicts.require_half_budget``). Every run of an arm that a claim compares
   (no BN, BN) also trains at half its steps (``fit``'s branched half run); the half-budget models are
   scored like the full ones under :func:`~facefill.experiments.study.half_name` and decide nothing
   but whether each verdict survives halving the budget. The diagnostic, in no claim, has none.
"""
from __future__ import annotations

import argparse
from dataclasses import replace

import cv2
import numpy as np
import pandas as pd
import torch

from .. import baselines, data, face_masks, landmarks, metrics, verdicts
from ..models.elu_context_encoder import LOSS_READINGS, EluContextEncoderConfig, EluContextEncoderTask
from ..reporting import Run
from ..train import evaluate_batches, fit
from . import deviation_table, project_path
from .study import HALF_SUFFIX, Study, TrainedRun, half_name, half_task

KEY = "masked_face2021"
SOURCE_SIZE = 128  # the processed CelebA-HQ cache the study reads (and the paper's resolution)
METRICS = ("l1_percent", "psnr", "ssim", "identity_distance")
ARMS = ("no BN", "BN")  # the paper's model and §3.3's proposal
DIAGNOSTIC = "no BN, literal 1:1"  # the same model trained on Eq. (1) read 1:1
ADVERSARIAL = "no BN, Pathak weights"  # ... with Pathak et al.'s λ_adv 0.001: what the adversarial term does
DIAGNOSTICS = (DIAGNOSTIC, ADVERSARIAL)  # first seed each, in no claim
CURVE = "curve"  # per-seed numbers of the validation curve (no test images), for the BN speed claim
CURVE_METRICS = ("val_auc",)


def load_split(p: dict, split: str, n) -> np.ndarray:
    """CelebA-HQ faces of one split at ``image_size`` (area-downsampled from the 128-px cache)."""
    faces = data.load_faces(p["dataset"], SOURCE_SIZE, split, n, data_dir=p["data_dir"], processed_dir=p["processed_dir"], seed=p["seed"])
    if p["image_size"] == SOURCE_SIZE:
        return faces
    s = p["image_size"]
    return np.stack([cv2.resize(f, (s, s), interpolation=cv2.INTER_AREA) for f in faces])


def masks_for(faces: np.ndarray, seed: int, cfg: face_masks.FaceMaskConfig) -> face_masks.FaceMasks:
    """Seeded face masks from dlib's landmarks in the crop box (aligned crops: no detection, no drop-out),
    cut below the eyes (``FaceMasks.clipped``, counted in the deviation log)."""
    points, _ = landmarks.landmarks(faces, box="crop")
    return face_masks.face_masks(faces, seed, cfg, points=points, detected=np.ones(len(faces), bool))


def curve_area(history: pd.DataFrame, column: str = "val_rec") -> float:
    """The area under a run's validation curve over its steps (trapezoid), divided by the steps: its mean
    validation error over the whole run. Lower = an arm that learned faster throughout, not only by the end."""
    v = history.dropna(subset=[column])
    return float(np.trapezoid(v[column], v["step"]) / (v["step"].iloc[-1] - v["step"].iloc[0]))


def region_mse(filled: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> float:
    """Mean squared error over the masked pixels (all channels), on [-1, 1]."""
    return float((((filled - truth) ** 2) * masks).sum() / (masks.sum() * truth.shape[1]))


class MaskedFaceStudy(Study):
    """Everything notebook 03 computes, from its parameter dict and its :class:`Run`."""

    KEY, CONFIG = KEY, EluContextEncoderConfig

    def __init__(self, params: dict, run: Run):
        super().__init__(params, run)
        self.mask_cfg = face_masks.FaceMaskConfig(shapes=tuple(params["mask_shapes"]), tilt_deg=params["mask_tilt_deg"])
        self.runs: list[TrainedRun] = []

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        p = self.p
        self.images = {s: load_split(p, s, p[f"n_{s}"]) for s in ("train", "val", "test")}
        drawn = {s: masks_for(self.images[s], p["seed"] + k, self.mask_cfg) for k, s in enumerate(("train", "val", "test"))}
        self.masks = {s: d.masks for s, d in drawn.items()}
        self.masks_clipped = {s: int(d.clipped.sum()) for s, d in drawn.items()}  # masks cut below the eyes, per split
        self.train_mean = baselines.train_mean_image(self.images["train"])
        truth, m = data.to_tensor(self.images["val"]), self.masks["val"]
        self.val_mean_image = region_mse(baselines.mean_training_image(truth, m, self.train_mean), truth, m)
        self.target = 0.5 * self.val_mean_image  # the BN ablation's target: half the mean face's error
        self.val_mean_full = float(((self.train_mean - truth) ** 2).mean())  # the mean face's whole-image error
        self.run.describe(dataset=p["dataset"], image_size=p["image_size"], n_train=len(self.images["train"]),
                          n_val=len(self.images["val"]), n_test=len(self.images["test"]), seeds=len(self.seeds),
                          steps=p["steps"], batch_size=p["batch_size"], loss_reading=p["loss_reading"], precision=self.precision)

    def occluded(self, split: str, n: int | None = None) -> torch.Tensor:
        """The generator input: the mask region blacked out (``fill``)."""
        return face_masks.occlude(data.to_tensor(self.images[split][:n]), self.masks[split][:n], self.cfg.fill)

    # ------------------------------------------------------------------ training
    def arm_config(self, arm: str) -> EluContextEncoderConfig:
        if arm == DIAGNOSTIC:
            return replace(self.cfg, loss_reading=self.paper["loss_reading"]["literal"])
        if arm == ADVERSARIAL:
            return replace(self.cfg, loss_reading="pathak_weights")
        return replace(self.cfg, batch_norm=arm == "BN")

    def validation(self, task: EluContextEncoderTask):
        """Callback for ``fit``: the reconstruction error on the validation mask region, and the validation
        total loss of Eq. (1) in the task's reading (factor × whole-image MSE of G + the adversarial term)."""
        faces, masks = self.images["val"], self.masks["val"]
        truth = data.to_tensor(faces)

        def validate() -> dict[str, float]:
            out = self.batched(lambda x, m: task.predict(task.drop(x, m), self.autocast), faces, masks)
            restored = face_masks.occlude(truth, masks, 0.0) + out * masks
            with torch.no_grad():
                task.discriminator.eval()
                logits = task.discriminator(restored.to(self.run.device)).float().cpu()
            adv = float(torch.nn.functional.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))
            full = float(((out - truth) ** 2).mean())
            return {"val_rec": region_mse(restored, truth, masks), "val_total": LOSS_READINGS[task.cfg.loss_reading] * full + adv,
                    "val_adv": adv}

        return validate

    def claimed_arms(self) -> set[str]:
        """The trained arms some claim compares: only these need a half-budget run."""
        arms = {c.get("a", "no BN") for c in self.paper["claims"]} | {c["b"] for c in self.paper["claims"]}
        return arms & {*ARMS, *DIAGNOSTICS}

    def train_one(self, arm: str, seed: int, steps: int | None = None, half: bool = False) -> TrainedRun:
        """One run of ``arm``; ``half``: also its half-budget twin (``TrainedRun.half``)."""
        torch.manual_seed(seed)  # the weights of each seed
        task = EluContextEncoderTask(self.arm_config(arm))
        cfg = replace(self.train_cfg, seed=seed, steps=steps or self.train_cfg.steps, half_budget=half)
        name = f"{arm.replace(' ', '_').replace(',', '').replace(':', '')}_seed{seed}"
        out, ckpt = self.run.output_dir / name, self.run.checkpoint_dir / name
        history = fit(task, (self.images["train"], face_masks.as_uint8_images(self.masks["train"])), cfg, out,
                      ckpt, validate=self.validation(task),
                      sample_images=(self.images["test"][:8], face_masks.as_uint8_images(self.masks["test"][:8])),
                      fingerprint_extra={"dataset": self.p["dataset"], "n_train": len(self.images["train"]), "seed": seed,
                                         "masks": self.mask_cfg.__dict__})
        twin = half_task(task, ckpt, self.run.device) if half else None
        return TrainedRun(arm, seed, task, history, out / "history.csv", twin)

    def train(self) -> list[TrainedRun]:
        halve = self.claimed_arms() if self.half_budget else set()
        self.runs = [self.train_one(arm, s, half=arm in halve) for arm in ARMS for s in self.seeds]
        self.runs += [self.train_one(arm, self.seeds[0], half=arm in halve) for arm in DIAGNOSTICS]
        return self.runs

    # ------------------------------------------------------------------ evaluation
    def batched(self, fn, faces: np.ndarray, masks: torch.Tensor) -> torch.Tensor:
        """``fn(x, m)`` over uint8 faces and their masks in batches of ``eval_batch_size``, on the run's device."""
        bs = self.p["eval_batch_size"]
        return torch.cat([evaluate_batches(lambda x, m=masks[i : i + bs]: fn(x, m.to(x.device)), faces[i : i + bs], bs, self.run.device)
                          for i in range(0, len(faces), bs)])

    def fill(self, task: EluContextEncoderTask, split: str) -> torch.Tensor:
        """The test-time completion: the generator's output under the mask, the known pixels kept."""
        return self.batched(lambda x, m: task.inpaint(x, m, autocast=self.autocast), self.images[split], self.masks[split])

    def evaluate(self) -> pd.DataFrame:
        """Fill every test face with every trained run and every baseline; per-image metrics to arrays.npz."""
        truth, masks = data.to_tensor(self.images["test"]), self.masks["test"]
        self.store.set_images("main", self.images["test"])
        reference = landmarks.reference_descriptors(self.images["test"])  # the originals' descriptors, once
        fills = {(r.arm, r.seed): self.fill(r.task, "test") for r in self.runs}
        fills |= {(half_name(r.arm), r.seed): self.fill(r.half, "test") for r in self.runs if r.half is not None}
        fills |= {(name, None): f for name, f in baselines.fill_all(truth, masks, self.train_mean).items()}
        fills[("occluded input", None)] = self.occluded("test")
        self.filled = {k: f for k, f in fills.items() if not k[0].endswith(HALF_SUFFIX)}  # the figures show the full-budget models
        rows = []
        for (method, seed), filled in fills.items():
            values = {
                "l1_percent": metrics.l1(filled, truth, data_range=2.0, mask=masks, percent=True),
                "psnr": metrics.psnr(filled, truth, data_range=2.0, mask=masks),
                "ssim": metrics.ssim((filled + 1) / 2, (truth + 1) / 2, data_range=1.0, mask=masks),
                "identity_distance": landmarks.identity_distances(data.to_uint8(filled), reference),
            }
            for metric, v in values.items():
                self.store.put("main", method, metric, v, seed)
                rows.append({"method": method, "seed": seed, "metric": metric, "mean": float(np.mean(v))})
        for r in self.runs:  # the BN speed claim's per-seed areas (full and half budget)
            if r.arm in ARMS:
                self.store.put(CURVE, r.arm, "val_auc", [curve_area(r.history)], r.seed)
                if r.half is not None:
                    self.store.put(CURVE, half_name(r.arm), "val_auc", [curve_area(r.history.attrs["half_history"])], r.seed)
        self.store.save()
        table = pd.DataFrame(rows).groupby(["method", "metric"], sort=False)["mean"].mean().unstack("metric").reset_index()
        return table[["method", *METRICS]]

    def sample_rows(self, n: int) -> tuple[list[torch.Tensor], list[str]]:
        """Fig. 3's rows: the input, every arm's first seed, two learning-free fills and the original."""
        f, first = self.filled, self.seeds[0]
        rows = {"masked input": self.occluded("test", n), "CE (no BN)": f[("no BN", first)], "CE + BN": f[("BN", first)],
                "CE, Pathak weights": f[(ADVERSARIAL, first)], "CE, 1:1 loss": f[(DIAGNOSTIC, first)], "Telea": f[("Telea", None)],
                "mean face": f[("mean training image", None)], "original": data.to_tensor(self.images["test"][:n])}
        return [x[:n] for x in rows.values()], list(rows)

    def readings(self) -> pd.DataFrame:
        """The loss-scale criterion of the YAML: the per-pixel error each reading implies at the paper's
        total of ≈70, and whether a model that learned anything can reach it (below the mean face's)."""
        r, total = self.paper["loss_reading"], self.paper["metrics"]["final_total_loss"]
        rows = []
        for name in r["candidates"]:
            hi, lo = ((total - a) / LOSS_READINGS[name] for a in r["adv_range"])
            rows.append({"reading": name, "factor": LOSS_READINGS[name], "implied MSE at 70 (low)": lo, "(high)": hi,
                         "mean face MSE (validation)": self.val_mean_full, "admissible": hi < self.val_mean_full})
        table = pd.DataFrame(rows)
        ok = [n for n in r["preference"] if table.set_index("reading").loc[n, "admissible"]]
        table["chosen"] = table["reading"] == (ok[0] if ok else None)
        return table

    def ablation(self) -> pd.DataFrame:
        """Per run: steps until the validation error first reaches the target, final validation error and total loss."""
        rows = []
        for r in self.runs:
            val = r.history.dropna(subset=["val_rec"])
            hit = val.loc[val["val_rec"] <= self.target, "step"]
            rows.append({"arm": r.arm, "seed": r.seed, "reading": r.task.cfg.loss_reading,
                         f"steps to val_rec ≤ {self.target:.4f}": int(hit.iloc[0]) if len(hit) else None,
                         "final val_rec": float(val["val_rec"].iloc[-1]), "final val_total": float(val["val_total"].iloc[-1]),
                         "final g_adv": float(r.history["g_adv"].dropna().tail(5).mean()),
                         "adversarial share of val_total": float(val["val_adv"].iloc[-1] / val["val_total"].iloc[-1]),
                         "mean val_rec over the run (area)": curve_area(r.history),
                         "images/s": float(r.history["images_per_s"].dropna().median())})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ claims
    def claim_specs(self) -> list[dict]:
        def arm_refs(arm, metric, method=None):
            ds = CURVE if metric in CURVE_METRICS else "main"
            return [self.store.ref(ds, method or arm, metric, r.seed) for r in self.runs if r.arm == arm]

        def trained(arm, metric):
            return self.trained_arm(arm, arm_refs(arm, metric), arm_refs(arm, metric, half_name(arm)) if self.half_budget else [])

        def convergence(arm):
            return [{"type": "convergence", "label": f"{arm} seed {r.seed}", "history": project_path(r.history_path, self.run.root),
                     "step_column": "step", "column": "val_rec", "higher_is_better": False} for r in self.runs if r.arm == arm]

        specs = []
        for c in self.paper["claims"]:
            a = c.get("a", "no BN")
            b_trained = c["b"] in ARMS
            gates = convergence(a) + (convergence(c["b"]) if b_trained else [])
            for arm in [a] + ([c["b"]] if b_trained else []):
                gates.append({"type": "sanity", "label": arm, "model": arm_refs(arm, "psnr"), "higher_is_better": True,
                              "baselines": {b: self.store.ref("main", b, "psnr") for b in baselines.TRIVIAL}})
            specs.append(self.claim_spec(
                c, trained(a, c["metric"]),
                trained(c["b"], c["metric"]) if b_trained else
                {"label": c["b"], "trained": False, "arrays": [self.store.ref("main", c["b"], c["metric"])]},
                gates))
        return specs

    # ------------------------------------------------------------------ report
    def paper_table(self, ablation: pd.DataFrame) -> pd.DataFrame:
        from ..reporting import compare

        t, p = self.paper["training"], self.p
        main = ablation[ablation["arm"] == "no BN"]
        diag = ablation[ablation["arm"] == DIAGNOSTIC]
        ips = float(main["images/s"].median())
        return compare([
            {"metric": "iterations", "paper": t["iterations"], "ours": p["steps"]},
            {"metric": "batch size", "paper": t["batch_size"], "ours": p["batch_size"]},
            {"metric": f"final total loss, reading `{p['loss_reading']}` (validation)", "paper": self.paper["metrics"]["final_total_loss"],
             "ours": float(main["final val_total"].mean())},
            {"metric": "final total loss, literal 1:1 reading (validation, diagnostic)", "paper": self.paper["metrics"]["final_total_loss"],
             "ours": float(diag["final val_total"].mean())},
            {"metric": f"minutes per paper epoch ({t['steps_per_epoch'] * t['batch_size']:,} images), this run's net",
             "paper": t["minutes_per_epoch"], "ours": t["steps_per_epoch"] * t["batch_size"] / ips / 60},
        ])

    def deviations(self) -> pd.DataFrame:
        p = self.p
        values = {**p, "n_train": len(self.images["train"]), "n_val": len(self.images["val"]), "n_test": len(self.images["test"]),
                  "n_seeds": len(self.seeds), "precision": self.precision, "latent_dim": self.cfg.latent_dim,
                  "loss_factor": LOSS_READINGS[p["loss_reading"]], "target": self.target,
                  "masks_clipped": " / ".join(f"{self.masks_clipped[s]} of {len(self.images[s])}" for s in ("train", "val", "test")),
                  "epochs": p["steps"] * p["batch_size"] / len(self.images["train"]), "decay_step": round(p["lr_decay_start"] * p["steps"])}
        return deviation_table(self.paper["deviations"], values)

    def summary(self, table: pd.DataFrame, ablation: pd.DataFrame, records: list[dict]) -> str:
        """The summary, written from the numbers: it says which baselines the learned model loses to."""
        t = table.set_index("method")
        model = t.loc["no BN"]
        n = len(self.images["test"])
        lines = [f"On {n} held-out {self.p['dataset']} faces with seeded face masks, {len(self.seeds)} seeds of the paper's model "
                 f"(no BN, reading `{self.p['loss_reading']}`, {self.p['steps']} steps, profile `{self.p['profile']}`) restore the "
                 f"mask region with PSNR {model['psnr']:.2f} dB and SSIM {model['ssim']:.3f}; the dlib identity distance to the "
                 f"original is {model['identity_distance']:.3f} (the masked input: {t.loc['occluded input', 'identity_distance']:.3f})."]
        base = [m for m in t.index if m not in (*ARMS, *DIAGNOSTICS, "occluded input") and not m.endswith(HALF_SUFFIX)]
        for metric, higher in (("psnr", True), ("ssim", True), ("identity_distance", False)):
            losing = [m for m in base if (t.loc[m, metric] >= model[metric]) == higher]
            if losing:
                lines.append(f"**On {metric} the model does not beat {', '.join(losing)}** "
                             f"({', '.join(f'{t.loc[m, metric]:.3f}' for m in losing)} vs {model[metric]:.3f}).")
            else:
                lines.append(f"On {metric} the model beats every learning-free fill (best: {min(t.loc[base, metric]) if not higher else max(t.loc[base, metric]):.3f}).")
        chosen = self.readings().query("chosen")["reading"].tolist()
        if chosen != [self.p["loss_reading"]]:
            lines.append(f"**The trained reading `{self.p['loss_reading']}` is not the one the criterion chooses ({chosen or 'none'}).**")
        diag = t.loc[DIAGNOSTIC]
        verb = "loses to" if diag["psnr"] < t.loc["mean training image", "psnr"] else "beats"
        lines.append(f"Read 1:1 (diagnostic), the same model {verb} the mean training face (PSNR {diag['psnr']:.2f} vs "
                     f"{t.loc['mean training image', 'psnr']:.2f} dB).")
        adv = ablation.groupby("arm")["adversarial share of val_total"].mean()
        pk = t.loc[ADVERSARIAL]
        lines.append(f"The adversarial term: {adv['no BN']:.2%} of the validation total in the chosen reading, {adv[ADVERSARIAL]:.1%} "
                     f"with Pathak et al.'s weights (λ_adv 0.001, first seed), whose fills score PSNR {pk['psnr']:.2f} dB and identity "
                     f"{pk['identity_distance']:.3f} (chosen reading: {model['psnr']:.2f}, {model['identity_distance']:.3f}); read 1:1 it is "
                     f"{adv[DIAGNOSTIC]:.0%} (PSNR {t.loc[DIAGNOSTIC, 'psnr']:.2f} dB).")
        reach = ablation.groupby("arm")[ablation.columns[3]].apply(lambda s: f"{s.notna().sum()}/{len(s)} seeds")
        lines.append(f"BN ablation: the target (half the mean face's validation error) is reached by {reach.get('no BN')} without "
                     f"and {reach.get('BN')} with BN; test PSNR {model['psnr']:.2f} vs {t.loc['BN', 'psnr']:.2f} dB.")
        lines += [verdicts.claim_line(r) for r in records]
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        t = table.set_index("method")
        return {f"{m.replace(' ', '_')}_{k}": float(t.loc[m, k]) for m in (*ARMS, *DIAGNOSTICS, "Telea", "mean training image")
                for k in ("psnr", "identity_distance")}


# ---------------------------------------------------------------------------------------------
# The loss-scale probe: which reading of Eq. (1) is chosen (run once, its result is in the YAML)
# ---------------------------------------------------------------------------------------------

def probe_readings(study: MaskedFaceStudy, steps: int) -> pd.DataFrame:
    """Train the no-BN model once per candidate reading (first seed, ``steps`` steps) and apply the
    criterion of ``masked_face2021.yaml`` to the validation numbers: total loss nearest 70 (log scale)."""
    target = study.paper["metrics"]["final_total_loss"]
    rows = []
    for reading in study.paper["loss_reading"]["candidates"]:
        study.cfg = replace(study.cfg, loss_reading=reading)
        r = study.train_one("no BN", study.seeds[0], steps)
        val = r.history.dropna(subset=["val_rec"]).iloc[-1]
        rows.append({"reading": reading, "factor": LOSS_READINGS[reading], "val_rec": val["val_rec"], "val_total": val["val_total"],
                     "mean face val_rec": study.val_mean_image, "log distance to 70": abs(np.log(val["val_total"] / target))})
    return pd.DataFrame(rows)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m facefill.experiments.masked_face2021",
                                 description="probe: train one model per loss reading on the default profile and print the criterion")
    ap.add_argument("cmd", choices=["probe"])
    ap.add_argument("--steps", type=int, default=None, help="steps per reading (default: the profile's)")
    ap.add_argument("--output-dir", default="build/probe/03_masked_face_inpainting")
    args = ap.parse_args(argv)
    import os

    from .. import reporting
    from ..config import PIPELINE_ENV, notebook_parameters

    os.environ[PIPELINE_ENV] = "1"  # the given folders, not the pipeline's models/ (reporting.explore_values)
    params = notebook_parameters("masked_face", "default")
    params |= {"output_dir": args.output_dir, "checkpoint_dir": f"{args.output_dir}/models"}
    run = reporting.start("03_masked_face_inpainting", params)
    study = MaskedFaceStudy(run.params, run)
    study.load()
    print(probe_readings(study, args.steps or study.p["steps"]).to_string(index=False))


if __name__ == "__main__":
    main()
