"""The cascade context encoder study (notebook 02): CCE vs a compute-matched CE vs a blur-prefill
control, on pixels and on NSD, next to learning-free baselines; claims decided by the verdicts.

Zieliński, Struski, Śmieja, Tabor, *Cascade context encoder for improved inpainting* (2018); the
models are :mod:`facefill.models.cascade`, the measure :mod:`facefill.nsd`. The protocol, fixed
before any test image is scored:

1. **Arms, per seed.** (a) the small CE (``image_size // 2``) trained the standard way; (b) **CCE**:
   the large CE on ``x = M̄⊙P + M⊙↗F_small(↘M̄⊙↘P)``, the small CE frozen; (c) **blur control**: the
   large CE on the same input with the small CE replaced by a non-learned blur fill, the same steps;
   (d) **CE**: the plain large CE, given the cascade's total training FLOPs (small CE + CCE, counted by
   :func:`facefill.models.cascade.training_flops`). (b)–(d) of one seed share initial weights, batch
   order, flips and mask draws. Each run logs the validation hole MSE (fixed validation masks) ≥ 20
   times: the convergence gate's curve.
2. **Pixels.** Every arm, seed and learning-free baseline fills the same test faces under the same
   seeded masks; per-image L1/L2 (% of the range), PSNR and SSIM on the hole pixels (images on [0, 1]).
3. **NSD.** ``nsd_k`` test faces × the same ``nsd_n`` masks; per-image NSD of each encoder's latent
   (raw — the paper's — and standardised per dimension). Untrained encoders and the pixels of the
   inputs are measured the same way: they locate the scale of the number.
4. **Claims.** ``cascade2018.yaml``; NSD intervals come from the two-level bootstrap of
   :mod:`facefill.verdicts` — seeds, then images (per image, the masks stay fixed).
5. **Budget stability** (``verdicts.require_half_budget``). Every arm also trains at half its steps
   and is scored (pixels and NSD) under :func:`~facefill.experiments.study.half_name`. Halving the
   cascade halves *both* stages: the half-budget CCE is the CCE trained for half its steps, from the
   same initial weights, on the half-budget small CE (``<CCE folder>/half_cascade``); the small CE, the
   blur control and the CE use ``fit``'s branched half run (the CE matched to the cascade's total
   FLOPs at half budget is the CE at half its steps).
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import torch

from .. import baselines, data, metrics, nsd, verdicts
from ..config import pick
from ..masks import make_masks
from ..models import cascade as cc
from ..reporting import Run, compare
from ..train import TrainConfig, fit, half_config, to_model_input
from . import ArrayStore, deviation_table, project_path
from .pathak2016 import ContextEncoderStudy
from .study import HALF_SUFFIX, TrainedRun, half_name, half_task

KEY = "cascade2018"
METRICS = ("l1_percent", "l2_percent", "psnr", "ssim")
LARGE = ("CCE", "blur control", "CE")  # the arms compared by the claims
SMALL = "small CE"
PREFILL = "pre-fill"  # the small CE's upscaled fill alone, per seed: the CCE's input, scored as an arm
HALF_CASCADE = "half_cascade"  # the half-budget CCE's folder, inside the CCE's output and checkpoint folders


def downscale_to(images: np.ndarray, size: int) -> np.ndarray:
    """uint8 faces ↘ by 2×2 averages until their side is ``size`` (the cascade's own ↘)."""
    while images.shape[1] > size:
        images = cc.downscale_uint8(images)
    if images.shape[1] != size:
        raise ValueError(f"cannot reach {size} px from {images.shape[1]} px by halving.")
    return images


class CascadeStudy(ContextEncoderStudy):
    """Everything notebook 02 computes; reuses the CE study's set-up and :meth:`decide`."""

    KEY = KEY  # its own paper (claims are recorded under it), not the CE study's

    def __init__(self, params: dict, run: Run):
        super().__init__(params, run)
        self.cfg = pick(params, cc.CascadeConfig)
        self.small_size = self.cfg.image_size // 2
        self.names = {SMALL: f"CE{self.small_size}", "CE": f"CE{self.cfg.image_size}", PREFILL: f"↗CE{self.small_size} pre-fill"}
        self.by_arm: dict[str, list[TrainedRun]] = {a: [] for a in (SMALL, *LARGE)}

    def label(self, arm: str) -> str:
        if arm.endswith(HALF_SUFFIX):
            return half_name(self.label(arm[: -len(HALF_SUFFIX)]))
        return self.names.get(arm, arm)

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        p, size = self.p, self.cfg.image_size
        kw = dict(data_dir=p["data_dir"], processed_dir=p["processed_dir"], seed=p["seed"])
        for split, name, n in [("train", "train", p["n_train"]), ("val", "val", p["n_val"]), ("main", "test", p["n_test"])]:
            self.images[split] = downscale_to(data.load_faces(p["dataset"], 128, name, n, **kw), size)
        self.train_mean = baselines.train_mean_image(self.images["train"])
        self.masks = {split: self.draw_masks(len(self.images[split]), seed) for split, seed in [("val", 30_000), ("main", 10_000)]}
        self.masks["nsd"] = self.draw_masks(p["nsd_n"], 20_000)
        self.run.describe(dataset=p["dataset"], image_size=size, masks=self.cfg.mask_kind, n_train=len(self.images["train"]),
                          n_val=len(self.images["val"]), n_test=len(self.images["main"]), seeds=len(self.seeds),
                          batch_size=p["batch_size"], width=p["width"], bottleneck=p["bottleneck"], precision=self.precision)

    def draw_masks(self, n: int, offset: int, factor: int = 1) -> torch.Tensor:
        return make_masks(self.cfg.mask_kind, self.cfg.image_size // factor, n, seed=offset + self.p["seed"], **self.cfg.mask_kwargs(factor))

    def tensor(self, split: str) -> torch.Tensor:
        return data.to_tensor(self.images[split])

    # ------------------------------------------------------------------ models and compute
    def new_task(self, arm: str, small=None):
        """A fresh network of ``arm`` (weights from torch's current seed)."""
        if arm == SMALL:
            return cc.make_ce64_task(self.cfg)
        if arm == "CCE":
            return cc.CascadeContextEncoderTask(self.cfg, small.generator)
        if arm == "blur control":
            return cc.BlurPrefillContextEncoderTask(self.cfg)
        return cc.make_ce128_task(self.cfg)

    def compute_match(self) -> dict:
        """FLOPs per training image of each task and the CE's steps that match the cascade's total."""
        torch.manual_seed(0)
        x = torch.rand(2, 3, self.cfg.image_size, self.cfg.image_size) * 2 - 1
        small = self.new_task(SMALL)
        tasks = {SMALL: small, "CCE": self.new_task("CCE", small), "blur control": self.new_task("blur control"), "CE": self.new_task("CE")}
        flops = {}
        for arm, t in tasks.items():
            t.configure(torch.device("cpu"))
            flops[arm] = cc.training_flops(t, cc.downscale(x) if arm == SMALL else x)
        p = self.p
        total = flops[SMALL] * p["small_steps"] + flops["CCE"] * p["large_steps"]
        self.steps = {SMALL: p["small_steps"], "CCE": p["large_steps"], "blur control": p["large_steps"],
                      "CE": math.ceil(total / flops["CE"])}
        self.flops = flops
        return {"flops": flops, "steps": self.steps}

    def compute_table(self) -> pd.DataFrame:
        return pd.DataFrame([{"model": self.label(a), "training FLOPs / image": f, "steps": self.steps[a],
                              "total FLOPs": f * self.steps[a] * self.p["batch_size"]} for a, f in self.flops.items()])

    # ------------------------------------------------------------------ training
    def fill(self, task, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """Completion of float images [-1, 1] under ``masks`` (eval mode), on the CPU."""
        out, bs, dev = [], self.p["eval_batch_size"], self.run.device
        for i in range(0, len(images), bs):
            out.append(task.inpaint(images[i : i + bs].to(dev), masks[i : i + bs].to(dev), autocast=self.autocast).float().cpu())
        return torch.cat(out)

    def validation_loss(self, task, small: bool):
        images = cc.downscale(self.tensor("val")) if small else self.tensor("val")
        masks = cc.downscale_mask(self.masks["val"]) if small else self.masks["val"]

        def validate() -> dict[str, float]:
            err = (self.fill(task, images, masks) - images) ** 2 * masks
            return {"val_rec": float(err.sum() / (3 * masks.sum()))}

        return validate

    def fingerprint_extra(self, seed: int, small=None) -> dict:
        """What besides the configs defines a run: for the CCE, the weights of the small CE it is trained on."""
        return {"dataset": self.p["dataset"], "n_train": len(self.images["train"]), "seed": seed, "cascade": str(self.cfg),
                "small": cc.state_fingerprint(small.generator) if small is not None else None}

    def train(self) -> dict[str, list[TrainedRun]]:
        small_images = cc.downscale_uint8(self.images["train"])
        for seed in self.seeds:
            for arm in (SMALL, *LARGE):
                torch.manual_seed(seed if arm == SMALL else 10_000 + seed)  # the large arms start from the same weights
                small_run = self.by_arm[SMALL][-1] if arm == "CCE" else None
                task = self.new_task(arm, small_run.task if small_run else None)
                # the CCE's half run is no branch of its full run: it stands on the half-budget small CE (train_half_cascade)
                cfg = TrainConfig(**{**self.train_cfg.__dict__, "steps": self.steps[arm], "seed": seed,
                                     "half_budget": self.half_budget and arm != "CCE"})
                out = self.run.output_dir / f"seed{seed}" / arm.replace(" ", "_")
                ckpt = self.run.checkpoint_dir / f"seed{seed}" / arm.replace(" ", "_")
                history = fit(task, small_images if arm == SMALL else self.images["train"], cfg, out, ckpt,
                              validate=self.validation_loss(task, arm == SMALL),
                              fingerprint_extra=self.fingerprint_extra(seed, small_run.task if small_run else None))
                half = None
                if self.half_budget:
                    half = (self.train_half_cascade(seed, small_run.half, cfg, out, ckpt) if arm == "CCE"
                            else half_task(task, ckpt, self.run.device))
                self.by_arm[arm].append(TrainedRun(arm, seed, task, history, out / "history.csv", half))
        return self.by_arm

    def train_half_cascade(self, seed: int, small_half, cfg: TrainConfig, out, ckpt):
        """The cascade at half budget, second stage: the CCE from the full CCE's initial weights, trained for
        half its steps on the half-budget small CE ``small_half`` (an independent run, in ``HALF_CASCADE``)."""
        torch.manual_seed(10_000 + seed)  # the initial weights of the full CCE (and of every large arm)
        task = self.new_task("CCE", small_half)
        fit(task, self.images["train"], half_config(cfg), out / HALF_CASCADE, ckpt / HALF_CASCADE,
            validate=self.validation_loss(task, False), fingerprint_extra=self.fingerprint_extra(seed, small_half))
        return task

    def curves(self) -> dict[str, pd.DataFrame]:
        return {f"{self.label(a)} seed {r.seed}": r.history for a, runs in self.by_arm.items() for r in runs}

    # ------------------------------------------------------------------ pixels
    def learned_prefill(self, small_task, images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """The small CE's fill, upscaled into the hole of ``images`` (the CCE's input), composited."""
        dev = self.run.device
        return cc.composite(images, cc.ce64_fill(small_task.generator.eval(), images.to(dev), masks.to(dev)).cpu(), masks)

    def prefills(self, images: torch.Tensor, masks: torch.Tensor, seed_index: int = 0) -> dict[str, torch.Tensor]:
        """The cascade's key intermediate and its control: the small CE's upscaled fill, the blur fill."""
        return {self.label(PREFILL): self.learned_prefill(self.by_arm[SMALL][seed_index].task, images, masks),
                "↗blur pre-fill": cc.composite(images, cc.blur_prefill(images, masks, self.cfg.blur_sigma), masks)}

    def evaluate(self) -> pd.DataFrame:
        truth, masks = self.tensor("main"), self.masks["main"]
        rows, self.filled = [], {}
        self.store.set_images("main", truth)
        fills = {(arm, r.seed): self.fill(r.task, truth, masks) for arm in LARGE for r in self.by_arm[arm]}
        fills |= {(half_name(arm), r.seed): self.fill(r.half, truth, masks) for arm in LARGE for r in self.by_arm[arm] if r.half is not None}
        fills |= {(name, None): f for name, f in baselines.fill_all(truth, masks, self.train_mean).items()}
        # the learned pre-fill is a trained arm (CCE vs its own input): every seed, and its half-budget twin
        fills |= {(PREFILL, r.seed): self.learned_prefill(r.task, truth, masks) for r in self.by_arm[SMALL]}
        fills |= {(half_name(PREFILL), r.seed): self.learned_prefill(r.half, truth, masks) for r in self.by_arm[SMALL] if r.half is not None}
        fills[("↗blur pre-fill", None)] = cc.composite(truth, cc.blur_prefill(truth, masks, self.cfg.blur_sigma), masks)
        for (method, seed), filled in fills.items():
            if not method.endswith(HALF_SUFFIX):  # the figures show the full-budget models
                self.filled.setdefault(method, filled)
            values = metrics.evaluate((filled + 1) / 2, (truth + 1) / 2, data_range=1.0, mask=masks, metrics=METRICS)
            for metric, v in values.items():
                self.store.put("main", method, metric, v, seed)
                rows.append({"method": self.label(method), "learned": seed is not None, "seed": seed,
                             "metric": metric, "mean": float(np.mean(v))})
        table = pd.DataFrame(rows).groupby(["method", "learned", "metric"], sort=False)["mean"].mean().unstack("metric").reset_index()
        return table[["method", "learned", *METRICS]]

    # ------------------------------------------------------------------ NSD
    def latents(self, task) -> torch.Tensor:
        images = self.tensor("main")[: self.p["nsd_k"]]
        return nsd.collect_latents(lambda x, m: cc.encode(task, x.to(self.run.device), m.to(self.run.device), self.p["nsd_latent"], self.autocast),
                                   images, self.masks["nsd"], batch_size=self.p["eval_batch_size"])

    def pixel_latents(self, task) -> torch.Tensor:
        images = self.tensor("main")[: self.p["nsd_k"]]
        return nsd.collect_latents(lambda x, m: task.drop(x, m).flatten(1), images, self.masks["nsd"], self.p["eval_batch_size"])

    def measure_nsd(self) -> pd.DataFrame:
        """Per-image NSD (raw and standardised) of every trained encoder, and of the references that
        learn nothing: untrained encoders (mean-fill and blur-prefill input) and the input pixels."""
        rows = []

        def record(name, z, seed=None, learned=True):
            zs, _ = nsd.standardise(z)
            raw, std = nsd.nsd(z), nsd.nsd(zs)
            if learned:
                self.store.put("nsd", name, "nsd_raw", raw.per_image, seed)
                self.store.put("nsd", name, "nsd_std", std.per_image, seed)
            var = float(z.reshape(-1, z.shape[-1]).double().var(0, unbiased=False).mean())
            rows.append({"encoder": self.label(name), "seed": seed, "NSD raw": raw.mean, "± over images": raw.std,
                         "NSD standardised": std.mean, "mean per-dim variance": var, "D": raw.d})

        for arm in LARGE:
            for r in self.by_arm[arm]:
                record(arm, self.latents(r.task), r.seed)
        for arm in LARGE:  # budget stability: the NSD claims compare trained arms
            for r in self.by_arm[arm]:
                if r.half is not None:
                    record(half_name(arm), self.latents(r.half), r.seed)
        torch.manual_seed(10_000 + self.seeds[0])
        untrained = {"CE": self.new_task("CE"), "blur control": self.new_task("blur control")}
        for name, t in untrained.items():
            t.generator.to(self.run.device)
            record(f"untrained encoder, {'mean-fill' if name == 'CE' else 'blur pre-fill'} input", self.latents(t), learned=False)
            record(f"pixels, {'mean-fill' if name == 'CE' else 'blur pre-fill'} input", self.pixel_latents(t), learned=False)
        table = pd.DataFrame(rows)
        agg = table.groupby("encoder", sort=False).agg({"NSD raw": "mean", "± over images": "mean", "NSD standardised": "mean",
                                                        "mean per-dim variance": "mean", "D": "first", "seed": "count"})
        self.nsd_table = agg.rename(columns={"seed": "seeds"}).reset_index()
        self.store.save()
        return self.nsd_table

    def paper_nsd_table(self) -> pd.DataFrame:
        t = self.nsd_table.set_index("encoder")
        return compare({"metric": "NSD (raw)", "method": self.label(arm), "paper": self.paper["nsd"][arm]["mean"],
                        "ours": t.loc[self.label(arm), "NSD raw"], "ours standardised": t.loc[self.label(arm), "NSD standardised"]}
                       for arm in ("CE", "CCE"))

    # ------------------------------------------------------------------ claims
    def claim_specs(self) -> list[dict]:
        def runs(arm):  # the pre-fill's runs are the small CE's
            return self.by_arm[SMALL if arm == PREFILL else arm]

        def refs(split, arm, metric, method=None):
            return [self.store.ref(split, method or arm, metric, r.seed) for r in runs(arm)]

        def trained(arm, c):
            half = refs(c["dataset"], arm, c["metric"], half_name(arm)) if self.half_budget else []
            return self.trained_arm(self.label(arm), refs(c["dataset"], arm, c["metric"]), half)

        def convergence(arm):
            return [{"type": "convergence", "label": f"{self.label(arm)} seed {r.seed}", "history": project_path(r.history_path, self.run.root),
                     "step_column": "step", "column": "val_rec", "higher_is_better": False} for r in runs(arm)]

        specs = []
        for c in self.paper["claims"]:
            arms = [c["a"], c["b"]]
            # every model the claim rests on, once: the CCE and the pre-fill stand on the small CE
            models = ([SMALL] if {"CCE", PREFILL} & set(arms) else []) + [a for a in arms if a != PREFILL]
            gates = [g for arm in models for g in convergence(arm)]
            gates += [{"type": "sanity", "label": self.label(arm), "model": refs("main", arm, "psnr"), "higher_is_better": True,
                       "baselines": {b: self.store.ref("main", b, "psnr") for b in baselines.TRIVIAL}} for arm in arms]
            specs.append(self.claim_spec(c, trained(c["a"], c), trained(c["b"], c), gates))
        return specs

    # ------------------------------------------------------------------ report
    def deviations(self) -> pd.DataFrame:
        p = self.p
        values = {**p, "small": self.small_size, "n_train": len(self.images["train"]), "n_val": len(self.images["val"]),
                  "n_test": len(self.images["main"]), "n_seeds": len(self.seeds), "precision": self.precision,
                  "ce_steps": self.steps["CE"], "flops_ratio": self.steps["CE"] / self.steps["CCE"],
                  "decay_percent": round(100 * p["lr_decay_start"]), "nsd_k": min(p["nsd_k"], len(self.images["main"]))}
        return deviation_table(self.paper["deviations"], values)

    def scale_explanation(self) -> str:
        """Why our raw NSD is far below the paper's, from the measured NSD table (no typed numbers)."""
        t = self.nsd_table.set_index("encoder")
        ce, paper_ce = t.loc[self.label("CE")], self.paper["nsd"]["CE"]["mean"]
        pix, unt = t.loc["pixels, mean-fill input"], t.loc["untrained encoder, mean-fill input"]
        return (f"**Why our NSD is {paper_ce / ce['NSD raw']:.0f}× below the paper's.** Raw NSD is the latent's within-image variance; "
                f"'1 = random' holds only for a latent of unit variance, but ours has a mean per-dimension variance of "
                f"{ce['mean per-dim variance']:.3g} (a factor {1 / ce['mean per-dim variance']:.2g} on the raw number). Standardised per "
                f"dimension, NSD is the share of the latent's variance that the mask explains: {ce['NSD standardised']:.3f} for the trained "
                f"CE, {unt['NSD standardised']:.3f} for an untrained encoder and {pix['NSD standardised']:.3f} for the input pixels themselves. "
                f"So on faces with these masks even the pixels vary {1 / pix['NSD standardised']:.0f}× more between images than between masks, "
                f"and training makes the code {unt['NSD standardised'] / max(ce['NSD standardised'], 1e-12):.0f}× more mask-invariant; a value "
                f"near the paper's {paper_ce} is out of reach of any encoder of these inputs unless the latent's scale is far above 1 or the masks "
                f"hide much more than here.")

    def summary(self, table: pd.DataFrame, records: list[dict]) -> str:
        """The closing paragraph, written from the numbers (it notices when a learned model loses)."""
        t = table.set_index("method")
        learned = [self.label(a) for a in LARGE]
        lines = [f"On {len(self.images['main'])} held-out {self.p['dataset']} faces ({self.cfg.mask_kind}, {self.cfg.image_size} px, "
                 f"profile `{self.p['profile']}`, {len(self.seeds)} seeds per arm), hole PSNR: "
                 + ", ".join(f"{m} {t.loc[m, 'psnr']:.2f} dB" for m in learned) + "."]
        for metric in ("psnr", "ssim"):
            for m in learned:
                better = [b for b in t.index if not t.loc[b, "learned"] and t.loc[b, metric] >= t.loc[m, metric]]
                if better:
                    lines.append(f"**On {metric.upper()}, {m} does not beat {', '.join(better)}.**")
        lines += [verdicts.claim_line(r) for r in records]
        nsd_claims = [r["result"]["verdict"] for r in records if r["metric"] == "nsd_raw"]
        both = all(v == verdicts.REPRODUCED for v in nsd_claims)
        lines.append(f"\nThe paper's NSD argument needs both NSD claims: CCE below the CE *and* below the blur control — "
                     f"{'both hold' if both else 'not both hold'} here.")
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        t, n = table.set_index("method"), self.nsd_table.set_index("encoder")
        out = {f"{a.replace(' ', '_')}_psnr": t.loc[self.label(a), "psnr"] for a in LARGE}
        out |= {f"{a.replace(' ', '_')}_nsd_raw": n.loc[self.label(a), "NSD raw"] for a in LARGE}
        out |= {"telea_psnr": t.loc["Telea", "psnr"], "ce_steps": self.steps["CE"], "large_steps": self.steps["CCE"]}
        return out
