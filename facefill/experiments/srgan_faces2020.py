"""The SRGAN-for-faces study (notebook 05, paper 004: Nair et al., "Super resolution of occluded or
unclear faces using GANs", a re-implementation of Ledig et al., CVPR 2017). The model is
:mod:`facefill.models.srgan`, the content losses :mod:`facefill.perceptual`, video :mod:`facefill.video`.

The protocol, fixed before any test image is scored:

1. **Data.** Whole CelebA images Lanczos-resampled to HR 64 px, LR = Lanczos downscale (×2 main,
   ×4); seeded train / validation / test splits.
2. **Calibration.** The content scale s of the EfficientNet-Lite0 substitute is measured on the
   training set so that content = pixel MSE on bicubic reconstructions
   (:func:`facefill.perceptual.calibrate_content_scale`); VGG19's 1/12.75 does not transfer.
3. **Training, per seed.** SRResNet (pixel MSE, ``lr``), then three arms from the *same*
   checkpoint, each with fresh Adam at ``gan_lr`` for ``gan_steps``: **SRGAN** (calibrated content
   + λ_adv·l_Gen), the **control** (the same content, λ_adv = 0) and **MSE-continued** (pixel MSE,
   λ_adv = 0). SRGAN − control is the adversarial effect; control − MSE-continued the content switch.
   Other experiments (×4) train SRResNet + SRGAN. Validation MSE and content are logged ≥ 20 times
   (the convergence gate). **Budget stability** (``verdicts.require_half_budget``): the whole chain is
   also trained at half budget -- the SRResNet at ``resnet_steps`` / 2 (``fit``'s branched half run), then
   each arm for ``gan_steps`` / 2 from *that* SRResNet (:data:`HALF_CHAIN`) -- and scored under
   :func:`~facefill.experiments.study.half_name`; a claim on trained arms is decided only when its
   verdict is the same at both budgets. Gates, figures, headline and video use the full-budget runs.
4. **Test, once.** Per-image PSNR/SSIM on Y and RGB (border = scale), the high-frequency energy
   ratio :func:`hf_ratio` and the dlib identity distance on the face box :data:`FACE_BOX`
   (:func:`facefill.landmarks.identity_distance`), for every seed and for nearest / bicubic /
   Lanczos on the same LR images; the ×2 models also get LR faces with a grey block
   (:func:`occlude`). Arrays go to ``arrays.npz``, verdicts to ``claims.json``.
"""
from __future__ import annotations

import argparse
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import data, verdicts
from ..adversarial import predict
from ..config import pick
from ..errors import ConfigError
from ..models.srgan import Discriminator, Generator, SRGANConfig, SRGANTask, SRResNetTask, make_lr, n_params, rgb_to_y, sr_metrics, upscale
from ..perceptual import ContentLoss, ContentLossConfig, calibrate_content_scale
from ..reporting import Run, compare
from ..train import HALF_DIR, TrainConfig, evaluate_batches, fit, half_config
from . import deviation_table, project_path
from .study import Study, half_name, half_task

KEY = "srgan_faces2020"
BASELINES = {"nearest": "nearest", "bicubic": "bicubic", "Lanczos": "lanczos"}  # name → PIL resampling
TRIVIAL = ("nearest",)  # the sanity gate: a model must beat copying pixels
ARMS = ("SRGAN", "control", "MSE-continued")  # GAN-phase arms of the main experiment, one SRResNet start
GAIN = "SRGAN gain over bicubic"  # per-image PSNR-Y of SRGAN minus bicubic's, per seed
TRAINED = ("SRResNet", *ARMS, GAIN)
METRICS = ("psnr_y", "ssim_y", "psnr_rgb", "ssim_rgb", "psnr_cbcr", "colour_shift", "psnr_y_visible", "hf_ratio", "identity")
#: the face inside a whole CelebA image squashed to a square (top, left, bottom, right, fractions):
#: the aligned CelebA eyes sit at ≈ (0.39, 0.51) and (0.61, 0.51) of the frame
FACE_BOX = (0.28, 0.18, 0.90, 0.82)
#: a GAN arm's half-budget run, inside the arm's output and checkpoint folders: its own fit from the
#: half-budget SRResNet (not ``fit``'s ``half`` twin, which would branch off the full-budget SRResNet's arm)
HALF_CHAIN = "half_chain"


def half_steps(steps: int) -> int:
    """Half the budget of a training phase of ``steps`` steps (the rule of :func:`facefill.train.half_config`)."""
    return half_config(TrainConfig(steps=steps)).steps


@dataclass(frozen=True)
class Experiment:
    dataset: str
    hr: int
    scale: int

    @classmethod
    def parse(cls, spec: str) -> "Experiment":
        try:
            ds, hr, sc = str(spec).split("/")
            return cls(ds, int(hr), int(sc))
        except ValueError:
            raise ConfigError(f"experiment {spec!r}: write dataset/hr_size/scale, e.g. 'celeba/64/2'.") from None

    @property
    def tag(self) -> str:
        return f"{self.dataset}_{self.hr}_x{self.scale}"


@dataclass
class SeedRun:
    exp: Experiment
    arm: str
    seed: int
    generator: Generator
    history: pd.DataFrame
    history_path: Path
    half: "SeedRun | None" = None  # the same arm trained at half budget (its whole chain), when trained


# --------------------------------------------------------------------------- probes no model was trained on

def hf_ratio(pred_uint8: np.ndarray, hr_uint8: np.ndarray, cutoff: float = 0.25) -> np.ndarray:
    """Per-image high-frequency energy of SR over HR: Σ|FFT(Y_SR)|² / Σ|FFT(Y_HR)|² over radial
    frequencies above ``cutoff`` cycles/pixel (0.25 = the Nyquist limit of a ×2 LR image). 1 = as much
    fine detail as the real face; interpolation gives ≪ 1; hallucinated texture can exceed 1."""
    def energy(images):
        y = rgb_to_y(images)[:, 0]
        y = y - y.mean((-2, -1), keepdim=True)
        spec = torch.fft.fft2(y).abs() ** 2
        fy, fx = torch.fft.fftfreq(y.shape[-2], dtype=torch.float64), torch.fft.fftfreq(y.shape[-1], dtype=torch.float64)
        high = (fy[:, None] ** 2 + fx[None, :] ** 2).sqrt() > cutoff
        return (spec * high).sum((-2, -1))

    return (energy(pred_uint8) / energy(hr_uint8).clamp_min(1e-12)).numpy()


def face_crop(images_uint8: np.ndarray) -> np.ndarray:
    """The :data:`FACE_BOX` of each image: the known face box of an aligned whole-CelebA frame."""
    h, w = images_uint8.shape[1:3]
    t, l, b, r = FACE_BOX
    return np.ascontiguousarray(images_uint8[:, round(t * h) : round(b * h), round(l * w) : round(r * w)])


def occlude(lr_uint8: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A grey square covering ``fraction`` of each LR image, at a seeded position inside :data:`FACE_BOX`.
    Returns the occluded images and the blocks (N, H, W bool, True = grey)."""
    if not 0 < fraction < 1:
        raise ConfigError(f"occlusion_fraction={fraction}: a fraction of the image in (0, 1).")
    out, rng = lr_uint8.copy(), np.random.default_rng(seed)
    n, h, w = lr_uint8.shape[:3]
    blocks = np.zeros((n, h, w), dtype=bool)
    side = max(1, round(np.sqrt(fraction) * min(h, w)))
    t0, l0, b0, r0 = (round(FACE_BOX[0] * h), round(FACE_BOX[1] * w), round(FACE_BOX[2] * h), round(FACE_BOX[3] * w))
    for i in range(n):
        y = rng.integers(t0, max(t0 + 1, b0 - side + 1))
        x = rng.integers(l0, max(l0 + 1, r0 - side + 1))
        out[i, y : y + side, x : x + side] = 128
        blocks[i, y : y + side, x : x + side] = True
    return out, blocks


# --------------------------------------------------------------------------- the study

class SRGANStudy(Study):
    """Everything notebook 05 computes, from its parameter dict and its :class:`Run`."""

    KEY = KEY  # one SRGANConfig per experiment (scale, HR size): built below, so no CONFIG

    def __init__(self, params: dict, run: Run):
        self.exps = [Experiment.parse(e) for e in params["experiments"]]
        if not self.exps:
            raise ConfigError("experiments is empty: list at least one dataset/hr_size/scale (the first is the main one).")
        super().__init__(params, run)
        self.main = self.exps[0]
        self.cfgs = {e: pick(params | {"hr_size": e.hr, "scale": e.scale}, SRGANConfig) for e in self.exps}
        self.content_base = pick(params, ContentLossConfig)
        self.hr: dict[tuple, dict[str, np.ndarray]] = {}
        self.lr: dict[Experiment, dict[str, np.ndarray]] = {}
        self.runs: list[SeedRun] = []

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        p = self.p
        kw = dict(data_dir=p["data_dir"], processed_dir=p["processed_dir"], seed=p["seed"])
        for e in self.exps:
            if (e.dataset, e.hr) not in self.hr:
                crop = "whole" if e.dataset == "celeba" else "default"
                self.hr[e.dataset, e.hr] = {s: data.load_faces(e.dataset, e.hr, s, p[f"n_{s}"], crop=crop, **kw) for s in ("train", "val", "test")}
            self.lr[e] = {s: make_lr(a, e.scale) for s, a in self.hr[e.dataset, e.hr].items()}
        hr = self.hr[self.main.dataset, self.main.hr]
        self.run.describe(experiments=", ".join(e.tag for e in self.exps), n_train=len(hr["train"]), n_val=len(hr["val"]),
                          n_test=len(hr["test"]), seeds=len(self.seeds), resnet_steps=p["resnet_steps"],
                          gan_steps=p["gan_steps"], batch_size=p["batch_size"], precision=self.precision)

    def images(self, e: Experiment, split: str) -> tuple[np.ndarray, np.ndarray]:
        """(HR, LR) uint8 arrays of ``split`` for experiment ``e``."""
        return self.hr[e.dataset, e.hr][split], self.lr[e][split]

    # ------------------------------------------------------------------ content-loss calibration
    def calibrate(self) -> pd.DataFrame:
        """Measure each experiment's content scale on bicubic reconstructions of the training faces."""
        self.content: dict[Experiment, ContentLossConfig] = {}
        rows = []
        for e in self.exps:
            hr, lr = self.images(e, "train")
            n = min(len(hr), self.p["calibration_images"])
            c = calibrate_content_scale(self.content_base, data.to_tensor(upscale(lr[:n], e.scale, "bicubic")), data.to_tensor(hr[:n]))
            self.content[e] = replace(self.content_base, content_scale=c["scale"])
            old = c["feature_mse"] * self.content_base.content_scale ** 2  # what the fixed 1/12.75 gave
            rows.append({"experiment": e.tag, "content": self.content_base.content, "images": n, "pixel MSE": c["pixel_mse"],
                         "feature MSE (s = 1)": c["feature_mse"], "scale s": c["scale"],
                         "content / pixel MSE with 1/12.75": old / c["pixel_mse"], "content / pixel MSE calibrated": 1.0})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ training
    def _validate(self, gen: Generator, e: Experiment, content: ContentLoss | None):
        hr_u, lr_u = self.images(e, "val")
        if content is not None:  # built on the CPU by train(): its feature network must sit where sr and hr go
            content = content.to(self.run.device)

        def validate() -> dict[str, float]:
            sr = evaluate_batches(lambda x: predict(gen, x, self.autocast), lr_u, self.p["eval_batch_size"], self.run.device)
            hr = data.to_tensor(hr_u)
            out = {"val_mse": float(F.mse_loss(sr, hr))}
            if content is not None:
                with torch.no_grad():
                    out["val_content"] = float(content(sr.to(self.run.device), hr.to(self.run.device)))
            return out

        return validate

    def _fit(self, task, e: Experiment, seed: int, name: str, steps: int, extra: dict, content: ContentLoss | None,
             half_budget: bool = False, folder: str | None = None, lr_decay_start: float = 1.0) -> SeedRun:
        """Train ``task`` as arm ``name`` in ``runs/<experiment>/seed<k>/<name>[/<folder>]``. ``half_budget``:
        also its half-steps twin (``fit``'s branched run, in ``HALF_DIR``), returned as the run's ``half``.
        ``lr_decay_start``: the rate falls linearly to 0 after this fraction of the steps (1.0: constant)."""
        p = self.p
        every = max(1, steps // 25)
        cfg = TrainConfig(steps=steps, batch_size=p["batch_size"], precision=p["precision"], channels_last=p["channels_last"],
                          device=p["device"], seed=seed, log_every=every, sample_every=0, checkpoint_every=p["checkpoint_every"],
                          half_budget=half_budget, lr_decay_start=lr_decay_start)
        where = Path(e.tag, f"seed{seed}", name, *([folder] if folder else []))
        out, ckpt = self.run.output_dir / "runs" / where, self.run.checkpoint_dir / where
        hist = fit(task, self.images(e, "train"), cfg, out, ckpt,
                   validate=self._validate(task.generator, e, content), validate_every=every,
                   fingerprint_extra={"experiment": e.tag, "n_train": len(self.images(e, "train")[0]), "seed": seed, **extra})
        half = None
        if half_budget:
            half = SeedRun(e, name, seed, half_task(task, ckpt, self.run.device).generator, hist.attrs["half_history"],
                           out / HALF_DIR / "history.csv")
        return SeedRun(e, name, seed, task.generator, hist, out / "history.csv", half)

    def _gan_arm(self, e: Experiment, seed: int, arm: str, start: Generator, steps: int, extra: dict, folder: str | None = None) -> SeedRun:
        """The GAN-phase arm ``arm`` trained for ``steps`` from the SRResNet weights of ``start`` (fresh Adam)."""
        content = ContentLossConfig(content="mse") if arm == "MSE-continued" else self.content[e]
        cfg = replace(self.cfgs[e], lambda_adv=self.cfgs[e].lambda_adv if arm == "SRGAN" else 0.0)
        init = {k: v.detach().clone() for k, v in start.state_dict().items()}
        torch.manual_seed(seed)  # the discriminator's initial weights: the same for the full and the half-budget arm
        task = SRGANTask(cfg, content, init_generator=init)
        return self._fit(task, e, seed, arm, steps, {**extra, "content": vars(content)}, ContentLoss(self.content[e]), folder=folder)

    def train(self) -> list[SeedRun]:
        """Every experiment, seed and arm; with ``half_budget`` each run's ``half`` is the same arm trained at
        half budget through its whole chain: the SRResNet at half its steps (``fit``'s branched twin, bit-identical
        to an independent run), then the GAN phase at half its steps from *that* SRResNet (:data:`HALF_CHAIN`)."""
        p = self.p
        resnet_steps, gan_steps = p["resnet_steps"], p["gan_steps"]
        for e in self.exps:
            arms = ARMS if e == self.main else ("SRGAN",)
            for seed in self.seeds:
                torch.manual_seed(seed)
                base = self._fit(SRResNetTask(self.cfgs[e]), e, seed, "SRResNet", resnet_steps, {}, None, half_budget=self.half_budget,
                                 lr_decay_start=p["resnet_lr_decay_start"])
                self.runs.append(base)
                for arm in arms:
                    run = self._gan_arm(e, seed, arm, base.generator, gan_steps, {"resnet_steps": resnet_steps})
                    if base.half is not None:
                        run.half = self._gan_arm(e, seed, arm, base.half.generator, half_steps(gan_steps),
                                                 {"resnet_steps": half_steps(resnet_steps), "start": "half-budget SRResNet"}, HALF_CHAIN)
                    self.runs.append(run)
        return self.runs

    def training_table(self) -> pd.DataFrame:
        """Steps, images seen and epochs per phase, with the logged adversarial share and throughput."""
        rows = []
        for r in self.runs:
            h, n = r.history, len(self.images(r.exp, "train")[0])
            steps = int(h["step"].max())
            share = h["adv_share"].dropna() if "adv_share" in h else pd.Series(dtype=float)
            rows.append({"experiment": r.exp.tag, "arm": r.arm, "seed": r.seed, "steps": steps, "images seen": steps * self.p["batch_size"],
                         "epochs": steps * self.p["batch_size"] / n,
                         "adv share of L_G (mean)": float(share.mean()) if len(share) else None,
                         "final val MSE": float(h["val_mse"].dropna().iloc[-1]),
                         "images/s": float(h["images_per_s"].dropna().median())})
        return pd.DataFrame(rows)

    def adversarial_share(self) -> pd.DataFrame:
        t = self.training_table()
        t = t[t["arm"] == "SRGAN"]
        return t.groupby("experiment", sort=False)["adv share of L_G (mean)"].agg(["mean", "min", "max"]).reset_index()

    # ------------------------------------------------------------------ evaluation
    def sr_images(self, gen: Generator, lr_uint8: np.ndarray) -> np.ndarray:
        gen = gen.to(self.run.device)
        return data.to_uint8(evaluate_batches(lambda x: predict(gen, x, self.autocast), lr_uint8, self.p["eval_batch_size"], self.run.device))

    def _score(self, name: str, preds: dict, truth: np.ndarray, border: int, identity_for: tuple,
               visible: np.ndarray | None = None) -> list[dict]:
        from .. import landmarks

        rows, reference = [], None
        self.store.set_images(name, truth)
        for label, pred in preds.items():
            method, seed = label if isinstance(label, tuple) else (label, None)
            per = sr_metrics(pred, truth, border, visible)
            per["hf_ratio"] = hf_ratio(pred, truth, 0.5 / max(2, border))
            if method in identity_for:
                if reference is None:  # the HR faces' landmarks and descriptors, once (identity_distance's numbers)
                    reference = landmarks.reference_descriptors(face_crop(truth))
                per["identity"] = landmarks.identity_distances(face_crop(pred), reference)
            for metric, values in per.items():
                self.store.put(name, method, metric, values, seed)
                rows.append({"experiment": name, "method": method, "seed": seed, "metric": metric, "mean": float(np.mean(values))})
        return rows

    def evaluate(self) -> pd.DataFrame:
        """Score every seed of every arm and every baseline on the same test images; store per-image arrays."""
        rows, self.outputs = [], {}
        for e in self.exps:
            hr, lr = self.images(e, "test")
            preds = {b: upscale(lr, e.scale, m) for b, m in BASELINES.items()}
            preds |= {(r.arm, r.seed): self.sr_images(r.generator, lr) for r in self.runs if r.exp == e}
            self.outputs[e.tag] = preds  # the figures show the full-budget models
            ident = ("bicubic", "Lanczos", "SRGAN", "control") if e == self.main else ()
            rows += self._score(e.tag, preds | self._half_preds(e, lr), hr, e.scale, (*ident, *map(half_name, ident)))
            bicubic = self.store.arrays[self.store.key(e.tag, "bicubic", "psnr_y")]
            gains = {"SRGAN": GAIN} | ({half_name("SRGAN"): half_name(GAIN)} if self.half_budget else {})
            for model, name in gains.items():
                for seed in self.seeds:  # the per-image PSNR-Y gain of SRGAN over bicubic (the ×2 vs ×4 claim)
                    gain = self.store.arrays[self.store.key(e.tag, model, "psnr_y", seed)] - bicubic
                    self.store.put(e.tag, name, "psnr_y_gain", gain, seed)
        rows += self.evaluate_occluded()
        self.store.save()
        table = pd.DataFrame(rows).groupby(["experiment", "method", "metric"], sort=False)["mean"].mean().unstack("metric").reset_index()
        return table[["experiment", "method", *[m for m in METRICS if m in table]]]

    def evaluate_occluded(self) -> list[dict]:
        e = self.main
        hr, lr = self.images(e, "test")
        self.occluded_lr, blocks = occlude(lr, self.p["occlusion_fraction"], self.p["seed"])
        # the HR pixels whose LR pixel was grey, and their neighbours within one LR pixel (an interpolation
        # kernel reaches that far): what remains is the face the input still showed
        hidden = F.max_pool2d(torch.from_numpy(blocks)[:, None].float(), 3, stride=1, padding=1)[:, 0]
        visible = ~np.kron(hidden.numpy() > 0, np.ones((e.scale, e.scale))).astype(bool)
        preds = {b: upscale(self.occluded_lr, e.scale, m) for b, m in BASELINES.items()}
        preds |= {(r.arm, r.seed): self.sr_images(r.generator, self.occluded_lr) for r in self.runs if r.exp == e and r.arm in ("SRResNet", "SRGAN")}
        self.outputs[f"{e.tag}_occluded"] = preds
        return self._score(f"{e.tag}_occluded", preds | self._half_preds(e, self.occluded_lr, ("SRResNet", "SRGAN")), hr, e.scale, (),
                           visible)

    def _half_preds(self, e: Experiment, lr: np.ndarray, arms=None) -> dict:
        """SR of ``lr`` by the half-budget runs of experiment ``e`` (of ``arms``; default all), keyed (half_name(arm), seed)."""
        return {(half_name(r.arm), r.seed): self.sr_images(r.half.generator, lr) for r in self.runs
                if r.exp == e and r.half is not None and (arms is None or r.arm in arms)}

    def sample_rows(self, occluded: bool = False, n: int = 8) -> tuple[list[torch.Tensor], list[str]]:
        """Rows (tensors in [-1, 1]) and titles of the sample grid of the main experiment, first seed."""
        e, s = self.main, self.seeds[0]
        hr, lr = self.images(e, "test")
        lr = self.occluded_lr if occluded else lr
        out = self.outputs[f"{e.tag}_occluded" if occluded else e.tag]
        names = ["bicubic", "SRResNet", "SRGAN"] if occluded else ["bicubic", "SRResNet", "control", "SRGAN"]
        rows = [F.interpolate(data.to_tensor(lr[:n]), scale_factor=e.scale, mode="nearest")]
        rows += [data.to_tensor(out[k if k in BASELINES else (k, s)][:n]) for k in names] + [data.to_tensor(hr[:n])]
        return rows, [("occluded " if occluded else "") + "LR", *names, "HR"]

    # ------------------------------------------------------------------ claims
    def _arm(self, exp_tag: str, method: str, metric: str) -> dict:
        label = f"{method} ({exp_tag})"
        if method not in TRAINED:
            return {"label": label, "trained": False, "arrays": [self.store.ref(exp_tag, method, metric)]}

        def refs(name):
            return [self.store.ref(exp_tag, name, metric, s) for s in self.seeds]
        return self.trained_arm(label, refs(method), refs(half_name(method)) if self.half_budget else [])

    def _gates(self, exp_tag: str, method: str) -> list[dict]:
        arm = "SRGAN" if method == GAIN else method
        base = exp_tag.removesuffix("_occluded")
        # every model the claim rests on: the arm's own runs and, for the arms that start from it, the SRResNet
        starts = () if arm == "SRResNet" else ("SRResNet",)
        runs = [r for r in self.runs if r.exp.tag == base and (r.arm == arm or r.arm in starts)]

        def col(r):
            return "val_content" if r.arm in ("SRGAN", "control") else "val_mse"
        return [{"type": "convergence", "label": f"{r.arm} {r.exp.tag} seed {r.seed}", "history": project_path(r.history_path, self.run.root),
                 "step_column": "step", "column": col(r), "higher_is_better": False} for r in runs]

    def claim_specs(self) -> list[dict]:
        specs, tags = [], {e.tag for e in self.exps} | {f"{self.main.tag}_occluded"}
        for c in self.paper["claims"]:
            (ta, ma), (tb, mb) = c["a"], c["b"]
            if ta not in tags or tb not in tags:
                raise ConfigError(f"claim {c['id']} needs experiments {ta}, {tb}; this run has {sorted(tags)}: add them to `experiments`.")
            gates = []
            for t, m in ((ta, ma), (tb, mb)):
                if m in TRAINED:
                    gates += self._gates(t, m)
                    arm = "SRGAN" if m == GAIN else m  # the gain's model is SRGAN
                    base = t.removesuffix("_occluded")  # the task the model was trained for: clean LR faces

                    def sanity(tag, blocking=True, arm=arm):
                        return {"type": "sanity", "label": f"{arm} ({tag})", "higher_is_better": True, "blocking": blocking,
                                "model": [self.store.ref(tag, arm, "psnr_y", s) for s in self.seeds],
                                "baselines": {b: self.store.ref(tag, b, "psnr_y") for b in TRIVIAL}}
                    gates.append(sanity(base))  # is the model broken? asked on its own task
                    if t != base:  # on occluded inputs, a loss to a trivial baseline is a caveat of the row
                        gates.append(sanity(t, blocking=False))
            specs.append(self.claim_spec(c, self._arm(ta, ma, c["metric"]), self._arm(tb, mb, c["metric"]), gates))
        return specs

    # ------------------------------------------------------------------ report
    def results(self, table: pd.DataFrame, experiment: str) -> pd.DataFrame:
        return table[table["experiment"] == experiment].set_index("method")

    def paper_table(self, table: pd.DataFrame) -> pd.DataFrame:
        pp, main = self.paper, self.results(table, self.main.tag)
        n_train = len(self.images(self.main, "train")[0])
        steps = self.p["resnet_steps"] + self.p["gan_steps"]
        paper_size = n_params(Generator(2)) + n_params(Discriminator(64))
        return compare([
            {"metric": "trainable parameters, G ×2 + D 64 px at Ledig's sizes", "paper": pp["trainable_parameters"], "ours": paper_size},
            {"metric": "training images", "paper": pp["n_train_images"], "ours": n_train},
            {"metric": "epochs (paper: 'iterations', read as epochs)", "paper": pp["phase2_iterations"], "ours": steps * self.p["batch_size"] / n_train},
            {"metric": "seconds per paper 'iteration' (K80) / per epoch (ours, this device)", "paper": pp["phase2_hours"] * 3600 / pp["phase2_iterations"],
             "ours": n_train / float(self.training_table().query("arm == 'SRGAN'")["images/s"].median())},
            {"metric": "PSNR-Y ×2 SRGAN (dB)", "paper": pp["metrics"]["psnr"], "ours": main.loc["SRGAN", "psnr_y"]},
            {"metric": "SSIM-Y ×2 SRGAN", "paper": pp["metrics"]["ssim"], "ours": main.loc["SRGAN", "ssim_y"]},
        ])

    def deviations(self) -> pd.DataFrame:
        p, n = self.p, len(self.images(self.main, "train")[0])
        values = {**p, "n_train": n, "n_val": len(self.images(self.main, "val")[0]), "n_test": len(self.images(self.main, "test")[0]),
                  "n_seeds": len(self.seeds), "precision": self.precision, "content_scale_main": self.content[self.main].content_scale,
                  "main_scale": self.main.scale, "resnet_epochs": p["resnet_steps"] * p["batch_size"] / n,
                  "gan_epochs": p["gan_steps"] * p["batch_size"] / n, "video_hr": max(e.hr for e in self.exps)}
        return deviation_table(self.paper["deviations"], values)

    def summary(self, table: pd.DataFrame, records: list[dict]) -> str:
        """Generated from the numbers: it says when SRGAN loses to an interpolation."""
        main = self.results(table, self.main.tag)
        share = self.adversarial_share()
        lines = [f"Profile `{self.p['profile']}`: {len(self.images(self.main, 'test')[0])} held-out faces, {len(self.seeds)} seeds per arm, "
                 f"SRResNet {self.p['resnet_steps']} + GAN phase {self.p['gan_steps']} steps (batch {self.p['batch_size']}). "
                 f"The adversarial term makes up {share['mean'].iloc[0]:.1%} of SRGAN's generator loss on {share['experiment'].iloc[0]} (mean over logged steps)."]
        for metric in ("psnr_y", "psnr_rgb", "ssim_y", "ssim_rgb"):
            better = [b for b in ("bicubic", "Lanczos") if main.loc[b, metric] >= main.loc["SRGAN", metric]]
            if better:
                lines.append(f"**On {metric} SRGAN ({main.loc['SRGAN', metric]:.3f}) does not beat {', '.join(f'{b} ({main.loc[b, metric]:.3f})' for b in better)}.**")
        tint = {m: main.loc[m, "colour_shift"] for m in ("SRResNet", "SRGAN", "bicubic")}
        lines.append(f"Colour: the mean tint of a face (length of its mean RGB error) is {tint['SRResNet']:.2f} grey levels for the "
                     f"SRResNet, {tint['SRGAN']:.2f} for SRGAN and {tint['bicubic']:.2f} for bicubic; chroma PSNR (Cb, Cr) "
                     f"{main.loc['SRGAN', 'psnr_cbcr']:.2f} dB for SRGAN vs {main.loc['bicubic', 'psnr_cbcr']:.2f} for bicubic.")
        lines += [verdicts.claim_line(r) for r in records]
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        main = self.results(table, self.main.tag)
        out = {f"{m}_{k}": float(main.loc[m, k]) for m in ("SRResNet", "SRGAN", "control", "bicubic", "Lanczos")
               for k in ("psnr_y", "psnr_rgb", "ssim_y", "psnr_cbcr")}
        out["adv_share_srgan"] = float(self.adversarial_share()["mean"].iloc[0])
        out["content_scale"] = float(self.content[self.main].content_scale)
        return out


# --------------------------------------------------------------------------- the learning-rate probe (committed evidence)

def lr_probe(params: dict, out: Path, steps: int = 150, gan_steps: int = 20, rates=(1e-3, 1e-4)) -> str:
    """SRResNet at each rate in ``rates`` for ``steps`` steps (validation PSNR-Y vs bicubic), then the GAN
    phase restarted from the first rate's model with fresh Adam at each rate (training MSE after 10 steps
    relative to the start). Writes a markdown report to ``out``; the deviation log cites it."""
    import shutil
    import tempfile
    import time

    tmp = Path(tempfile.mkdtemp(prefix="srgan-lr-probe-"))  # the probe's runs and checkpoints are not kept
    e = Experiment.parse(params["experiments"][0])
    kw = dict(data_dir=params["data_dir"], processed_dir=params["processed_dir"], seed=params["seed"])
    hr_t = data.load_faces(e.dataset, e.hr, "train", params["n_train"], crop="whole", **kw)
    hr_v = data.load_faces(e.dataset, e.hr, "val", 64, crop="whole", **kw)
    lr_t, lr_v = make_lr(hr_t, e.scale), make_lr(hr_v, e.scale)
    bic = sr_metrics(upscale(lr_v, e.scale, "bicubic"), hr_v, e.scale)["psnr_y"].mean()
    lines = [f"# SRGAN learning-rate probe ({e.tag}, {len(hr_t)} train / {len(hr_v)} validation faces, batch {params['batch_size']}, "
             f"width {params['width']}, {params['n_blocks']} blocks, fp32 CPU, {time.strftime('%Y-%m-%d')})", "",
             f"bicubic validation PSNR-Y: {bic:.2f} dB", "", "| phase | lr | steps | validation PSNR-Y (dB) | Δ vs bicubic | train MSE start → after 10 steps |", "|---|---|---|---|---|---|"]
    cfg0 = pick(params | {"hr_size": e.hr, "scale": e.scale}, SRGANConfig)
    first = None
    for lr in rates:
        torch.manual_seed(0)
        task = SRResNetTask(replace(cfg0, lr=lr))
        tc = TrainConfig(steps=steps, batch_size=params["batch_size"], precision="fp32", device="cpu", log_every=10, checkpoint_every=10**9, progress=False)
        fit(task, (hr_t, lr_t), tc, tmp / f"srresnet_{lr:g}")
        sr = data.to_uint8(evaluate_batches(lambda x: predict(task.generator, x), lr_v, 64, "cpu"))
        psnr = sr_metrics(sr, hr_v, e.scale)["psnr_y"].mean()
        lines.append(f"| SRResNet | {lr:g} | {steps} | {psnr:.2f} | {psnr - bic:+.2f} | |")
        first = first or {k: v.clone() for k, v in task.generator.state_dict().items()}
    content = ContentLossConfig(content="mse")
    for lr in rates:
        torch.manual_seed(0)
        task = SRGANTask(replace(cfg0, gan_lr=lr), content, init_generator=first)
        tc = TrainConfig(steps=gan_steps, batch_size=params["batch_size"], precision="fp32", device="cpu", log_every=1, checkpoint_every=10**9, progress=False)
        h = fit(task, (hr_t, lr_t), tc, tmp / f"gan_{lr:g}")
        lines.append(f"| GAN phase from SRResNet {rates[0]:g} (fresh Adam) | {lr:g} | {gan_steps} | | | {h['g_mse'].iloc[0]:.4f} → {h['g_mse'].iloc[min(9, len(h) - 1)]:.4f} |")
    text = "\n".join(lines) + "\n"
    shutil.rmtree(tmp, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text)
    return text


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description="Evidence runs of the SRGAN study (notebook 05).")
    ap.add_argument("command", choices=["lr-probe"])
    ap.add_argument("--profile", default="default")
    ap.add_argument("--out", default="reports/benchmarks/srgan_lr_probe.md")
    ap.add_argument("--steps", type=int, default=150)
    a = ap.parse_args(argv)
    import os

    from ..config import notebook_parameters

    torch.set_num_threads(2)
    params = notebook_parameters("srgan", a.profile)
    params["data_dir"] = os.environ.get("FACEFILL_DATA_DIR", params["data_dir"])
    print(lr_probe(params, Path(a.out), steps=a.steps))


if __name__ == "__main__":
    main()
