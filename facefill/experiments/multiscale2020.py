"""The multi-scale context encoder study (notebook 01): matched CE vs MCE arms, a single-scale
ablation, addition vs concatenation, learning-free baselines, claims.

Do, Nguyen & Nguyen, *A multi-scale context encoder for high quality restoration of facial
images* (2020); the model is :mod:`facefill.models.multiscale`, the baseline
:mod:`facefill.models.context_encoder`. The protocol of notebook 00
(:class:`~facefill.experiments.pathak2016.ContextEncoderStudy`, which this study extends) with
several *arms* instead of one model:

1. **Geometry.** Faces are loaded at 250 px (the paper's input) and downscaled to ``image_size``
   (125 in the default profile). Every arm fills the same centre hole; the CE works in Pathak's
   geometry, on the ``2·hole`` crop centred on it (CE64 for a 32-px hole), the MCEs on the whole face.
2. **Arms.** ``CE``, ``MCE`` (``n_scales`` levels, ``aggregation``), ``MCE 1 scale``
   (``ablation_scales``) and, if ``train_concat``, ``MCE concat``. Same loss, discriminator, steps,
   batch, learning rates and seeds; CE and MCE matched in parameters and multiply-adds per image.
3. **Test, once**, on the inner square the encoders never see (the hole shrunk by ``overlap``):
   L1/L2 (% of range), PSNR, SSIM and MS-SSIM (%, as many scales as the square admits), for every
   seed and every baseline of :mod:`facefill.baselines`; the CelebA-HQ models also on LFW.
4. **Claims** (``multiscale2020.yaml``): trained arms pass the convergence gate (every seed) and
   the sanity gate (PSNR above the trivial baselines); the speed claim reads interleaved benchmark
   blocks, the parameter-count claim the paper-size architectures, built without training.
5. **Budget stability** (``verdicts.require_half_budget``): every run also trains at half its steps
   (``fit``'s half-budget branch); those models are scored under ``<arm> (half budget)`` and given to
   every trained arm of a claim as ``half_arrays``. They stay out of the figures, the summary's
   comparisons and the headline metrics.
"""
from __future__ import annotations

import dataclasses
import math
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from .. import baselines, data, metrics, verdicts
from ..config import pick
from ..errors import ConfigError
from ..models import multiscale as ms
from ..models.context_encoder import ContextEncoderConfig, ContextEncoderTask
from ..reporting import Run, compare
from ..train import TrainConfig, evaluate_batches, fit
from . import deviation_table, project_path
from .pathak2016 import ContextEncoderStudy, crop, hole_metrics, inner_box, inner_mask
from .study import HALF_SUFFIX, Study, TrainedRun, half_name, half_task

KEY = "multiscale2020"
METRICS = ("l1_percent", "l2_percent", "psnr", "ssim", "ms_ssim_percent")
LOAD_SIZE = 250  # the paper's input side; smaller geometries are downscaled from it


class MultiScaleStudy(ContextEncoderStudy):
    """Everything notebook 01 computes, from its parameter dict and its :class:`Run`."""

    KEY, CONFIG = KEY, ms.MultiScaleConfig  # the MCE arm; its hole geometry is every arm's

    def __init__(self, params: dict, run: Run):
        Study.__init__(self, params, run)
        self.mask = inner_mask(self.cfg)
        self.images: dict[str, np.ndarray] = {}
        self.runs: dict[str, list[TrainedRun]] = {}
        self.inner = self.cfg.hole - 2 * self.cfg.overlap
        self.ms_ssim_scales = metrics.ms_ssim_scales(self.inner)
        self.ce_size = 2 * self.cfg.hole
        self.crop_top = ms.context_crop_box(self.cfg.image_size, self.cfg.hole, self.ce_size)[0]
        self.ce_cfg = ContextEncoderConfig(
            image_size=self.ce_size, hole=self.cfg.hole, overlap=self.cfg.overlap, overlap_weight=self.cfg.overlap_weight,
            bottleneck=params["ce_bottleneck"], width=params["ce_width"], lambda_adv=self.cfg.lambda_adv,
            lr_d=self.cfg.lr_d, lr_g_factor=self.cfg.lr / self.cfg.lr_d, beta1=self.cfg.momentum)
        self.ce_mask = inner_mask(self.ce_cfg)
        if params["ablation_scales"] >= self.cfg.n_scales:
            raise ConfigError(f"ablation_scales={params['ablation_scales']} must be below n_scales={self.cfg.n_scales}.")

    # ------------------------------------------------------------------ arms
    def arm_configs(self) -> dict[str, object]:
        """Label → model config of every trained arm."""
        arms = {"CE": self.ce_cfg, "MCE": self.cfg,
                "MCE 1 scale": dataclasses.replace(self.cfg, n_scales=self.p["ablation_scales"])}
        if self.p["train_concat"]:
            arms["MCE concat"] = dataclasses.replace(self.cfg, aggregation="concat")
        return arms

    @staticmethod
    def make_task(cfg):
        return ContextEncoderTask(cfg) if isinstance(cfg, ContextEncoderConfig) else ms.MultiScaleTask(cfg)

    def size_table(self) -> pd.DataFrame:
        """Parameters and multiply-adds per image of every arm's generator (the matching)."""
        rows = []
        for label, cfg in self.arm_configs().items():
            task = self.make_task(cfg)
            side = cfg.image_size
            rows.append({"arm": label, "input px": side, "G parameters": ms.n_params(task.generator),
                         "G multiply-adds / image": ms.multiply_adds(task.generator, torch.zeros(1, 3, side, side)),
                         "D parameters": ms.n_params(task.discriminator)})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------ data
    def _load(self, dataset: str, split: str, limit, by_identity: bool = False) -> np.ndarray:
        p = self.p
        faces = data.load_faces(dataset, LOAD_SIZE, split, limit, data_dir=p["data_dir"], processed_dir=p["processed_dir"],
                                seed=p["seed"], by_identity=by_identity)
        if self.cfg.image_size == LOAD_SIZE or len(faces) == 0:
            return faces
        small = F.interpolate(data.to_tensor(faces), size=(self.cfg.image_size,) * 2, mode="bilinear", antialias=True, align_corners=False)
        return data.to_uint8(small)

    def load(self) -> None:
        p = self.p
        lfw_id = p["lfw_by_identity"]
        self.train_sets = [p["dataset"]] + ([p["transfer_dataset"]] if p["train_transfer"] else [])
        for ds in self.train_sets:
            by_id = lfw_id and ds == "lfw"
            self.images[f"{ds}/train"] = self._load(ds, "train", p["n_train"], by_id)
            self.images[f"{ds}/val"] = self._load(ds, "val", p["n_val"], by_id)
        self.images["main"] = self._load(p["dataset"], "test", p["n_test"])
        self.images["transfer"] = self._load(p["transfer_dataset"], "test", p["n_test"], lfw_id and p["transfer_dataset"] == "lfw")
        self.train_mean = {ds: baselines.train_mean_image(self.images[f"{ds}/train"]) for ds in self.train_sets}
        n = len(self.images[f"{p['dataset']}/train"])
        self.train_cfg, self.cfg = self.schedule(n)
        self.run.describe(dataset=p["dataset"], image_size=p["image_size"], n_train=n, n_val=len(self.images[f"{p['dataset']}/val"]),
                          n_test=len(self.images["main"]), transfer=f"{p['transfer_dataset']} ({len(self.images['transfer'])} test)",
                          seeds=len(self.seeds), steps=self.train_cfg.steps, batch_size=p["batch_size"], precision=self.precision)

    def schedule(self, n_train: int) -> tuple[TrainConfig, ms.MultiScaleConfig]:
        """The paper's schedule in epochs of the ``n_train`` faces actually used (when ``epochs`` is set):
        steps = ⌈epochs · n / batch⌉ and the MCE's −10 % step every ``step_decay_epochs`` epochs. The
        training config keeps ``half_budget`` (:class:`Study`: budget stability)."""
        p, cfg = self.p, pick(self.p, ms.MultiScaleConfig)
        train_cfg = dataclasses.replace(pick(p, TrainConfig), half_budget=self.half_budget)
        if not p["epochs"]:
            return train_cfg, cfg
        per_epoch = n_train / p["batch_size"]
        return (dataclasses.replace(train_cfg, steps=math.ceil(p["epochs"] * per_epoch)),
                dataclasses.replace(cfg, lr_decay_every=round(p["step_decay_epochs"] * per_epoch)))

    def context_crop(self, x: torch.Tensor) -> torch.Tensor:
        t = self.crop_top
        return x[..., t : t + self.ce_size, t : t + self.ce_size]

    def context_crop_uint8(self, images: np.ndarray) -> np.ndarray:
        t = self.crop_top
        return np.ascontiguousarray(images[:, t : t + self.ce_size, t : t + self.ce_size])

    # ------------------------------------------------------------------ training
    def train(self) -> dict[str, list[TrainedRun]]:
        for ds in self.train_sets:
            prefix = "" if ds == self.p["dataset"] else f"{ds}/"
            train, val = self.images[f"{ds}/train"], self.images[f"{ds}/val"]
            self.images["val"] = val  # what ContextEncoderStudy.validation_loss reads
            main = (self.train_cfg, self.cfg)
            train_cfg, self.cfg = self.schedule(len(train))  # epochs of this data set
            arms = self.arm_configs()
            self.train_cfg, self.cfg = main
            for label, cfg in arms.items():
                runs = []
                for seed in self.seeds:
                    torch.manual_seed(seed)  # the weights of each seed
                    task = self.make_task(cfg)
                    images, sample = (self.context_crop_uint8(train), self.context_crop_uint8(val[:8])) if label == "CE" else (train, val[:8])
                    name = f"{prefix}{label}".replace(" ", "_").replace("/", "_")
                    out = self.run.output_dir / "runs" / f"{name}_seed{seed}"
                    ckpt = self.run.checkpoint_dir / f"{name}_seed{seed}"
                    history = fit(task, images, dataclasses.replace(train_cfg, seed=seed), out, ckpt, sample_images=sample,
                                  validate=self.validation_loss(task),
                                  fingerprint_extra={"dataset": ds, "n_train": len(train), "seed": seed, "arm": label})
                    half = half_task(task, ckpt, self.run.device) if self.half_budget else None
                    runs.append(TrainedRun(label, seed, task, history, out / "history.csv", half))
                self.runs[f"{prefix}{label}"] = runs
        return self.runs

    # ------------------------------------------------------------------ evaluation
    def fill(self, task, images_uint8: np.ndarray) -> torch.Tensor:
        """Completion of whole faces: the MCE on the face, the CE on its context crop pasted back; only
        the inner square is replaced (test.lua)."""
        bs, dev = self.p["eval_batch_size"], self.run.device
        if isinstance(task, ContextEncoderTask):
            mask, t, s = self.ce_mask.to(dev), self.crop_top, self.ce_size

            def ce_fill(x):
                out = x.clone()
                out[..., t : t + s, t : t + s] = task.inpaint(self.context_crop(x), mask, autocast=self.autocast).to(x.dtype)
                return out

            return evaluate_batches(ce_fill, images_uint8, bs, dev)
        mask = self.mask.to(dev)
        return evaluate_batches(lambda x: task.inpaint(x, mask, autocast=self.autocast), images_uint8, bs, dev)

    def metrics_of(self, filled: torch.Tensor, truth: torch.Tensor) -> dict[str, np.ndarray]:
        out = hole_metrics(filled, truth, self.cfg)
        p, t = crop(filled, inner_box(self.cfg)), crop(truth, inner_box(self.cfg))
        out["ms_ssim_percent"] = 100 * metrics.ms_ssim((p + 1) / 2, (t + 1) / 2, data_range=1.0, scales=self.ms_ssim_scales)
        return out

    def evaluate(self) -> pd.DataFrame:
        """Every seed of every arm and every baseline on the same test faces; per-image metrics stored.
        The half-budget models (budget stability) are scored too, under :func:`half_name` of their arm,
        one at a time (their fills are not kept: the figures show the full-budget models)."""
        p, rows = self.p, []
        self.filled: dict[str, dict[str, torch.Tensor]] = {}
        splits = {"main": (p["dataset"], ""), "transfer": (p["transfer_dataset"], "")}
        if p["train_transfer"]:
            splits["transfer_trained"] = (p["transfer_dataset"], f"{p['transfer_dataset']}/")
        for split, (dataset, prefix) in splits.items():
            truth = data.to_tensor(self.images["transfer" if split != "main" else "main"])
            self.store.set_images(split, truth)
            trained_on = prefix[:-1] or p["dataset"]
            test = self.images["transfer" if split != "main" else "main"]
            fills, seeds, halves = {}, {}, []
            for label, runs in self.runs.items():
                if (prefix and not label.startswith(prefix)) or (not prefix and "/" in label):
                    continue
                for r in runs:
                    fills[f"{label[len(prefix):]} seed {r.seed}"] = self.fill(r.task, test)
                    seeds[f"{label[len(prefix):]} seed {r.seed}"] = (label[len(prefix):], r.seed)
                    if r.half is not None:
                        halves.append((half_name(label[len(prefix):]), r.seed, r.half))
            fills |= baselines.fill_all(truth, self.mask, self.train_mean[trained_on])
            self.filled[split] = fills

            def score(method, seed, filled):
                for metric, values in self.metrics_of(filled, truth).items():
                    self.store.put(split, method, metric, values, seed)
                    rows.append({"data": f"{dataset} (trained on {trained_on})", "method": method, "seed": seed,
                                 "metric": metric, "mean": float(np.mean(values))})

            for name, filled in fills.items():
                score(*seeds.get(name, (name, None)), filled)
            for method, seed, task in halves:  # same seeds and test faces as the full-budget runs
                score(method, seed, self.fill(task, test))
        self.bench_and_count()
        self.store.save()
        table = pd.DataFrame(rows)
        table = table.groupby(["data", "method", "metric"], sort=False)["mean"].mean().unstack("metric").reset_index()
        return table[["data", "method", *METRICS]]

    def bench_and_count(self) -> None:
        """Interleaved timing blocks of one training step, addition vs concatenation (the speed claim),
        and the generator parameters of the paper-size architectures (the parameter claim)."""
        p, dev = self.p, self.run.device
        tasks = {label: ms.MultiScaleTask(dataclasses.replace(self.cfg, aggregation=agg))
                 for label, agg in (("MCE", "add"), ("MCE concat", "concat"))}
        for t in tasks.values():
            for m in t.modules.values():
                m.to(dev).train()
            t.configure(dev)
        x = torch.rand(p["bench_batch"], 3, self.cfg.image_size, self.cfg.image_size, device=dev) * 2 - 1
        times: dict[str, list[float]] = {k: [] for k in tasks}
        for block in range(p["bench_blocks"] + 1):  # block 0 warms up
            for label in (list(tasks) if block % 2 else list(tasks)[::-1]):
                t0 = time.perf_counter()
                tasks[label].training_step(x, self.autocast)
                if x.is_cuda:
                    torch.cuda.synchronize()
                if block:
                    times[label].append((time.perf_counter() - t0) / len(x))
        for label, v in times.items():
            self.store.put("bench", label, "train_seconds_per_image", v)
        paper_size = {"MCE (Tables I-II, add)": ms.MultiScaleContextEncoder(ms.MultiScaleConfig(aggregation="add", context="none")),
                      "MCE (Tables I-II, concat)": ms.MultiScaleContextEncoder(ms.MultiScaleConfig(aggregation="concat", context="none")),
                      # §IV: more parameters "due to the multi-scale input" -- the same network with one encoder
                      "MCE (Tables I-II, 1 scale)": ms.MultiScaleContextEncoder(ms.MultiScaleConfig(aggregation="add", context="none", n_scales=1)),
                      "CE (Pathak, 128 px)": ContextEncoderTask(ContextEncoderConfig()).generator}
        for label, g in paper_size.items():
            self.store.put("paper_size", label, "parameters", [ms.n_params(g)])

    # ------------------------------------------------------------------ claims
    def claim_specs(self) -> list[dict]:
        def seeds(split, label, metric, method=None):  # one array per seed of arm ``label`` (under ``method``)
            return [self.store.ref(split, method or label, metric, r.seed) for r in self.runs[label]]

        def arm(label, split, metric):
            if label in self.runs and split not in ("bench", "paper_size"):  # a trained arm, with its half-budget runs
                half = seeds(split, label, metric, half_name(label)) if self.half_budget else []
                return self.trained_arm(label, seeds(split, label, metric), half)
            if split == "bench" and label == "MCE concat":  # concat benchmarked even when not trained
                return {"label": label, "trained": False, "arrays": [self.store.ref(split, label, metric)]}
            if label.startswith("MCE") and split not in ("bench", "paper_size"):
                return None  # an arm this profile did not train
            return {"label": label, "trained": False, "arrays": [self.store.ref(split, label, metric)]}

        specs = []
        for c in self.paper["claims"]:
            split, metric = c["dataset"], c["metric"]
            if split == "bench":
                a, b = ({"label": lab, "trained": False, "arrays": [self.store.ref(split, lab, metric)]} for lab in (c["a"], c["b"]))
            else:
                a, b = arm(c["a"], split, metric), arm(c["b"], split, metric)
            if a is None or b is None:
                continue  # reported as untested by the notebook (`untested`)
            gates = []
            for x in (a, b):
                if not x["trained"]:
                    continue
                gates += [{"type": "convergence", "label": f"{x['label']} seed {r.seed}",
                           "history": project_path(r.history_path, self.run.root), "step_column": "step",
                           "column": "val_rec", "higher_is_better": False} for r in self.runs[x["label"]]]
                gates.append({"type": "sanity", "label": x["label"], "higher_is_better": True,
                              "model": [self.store.ref(split, x["label"], "psnr", r.seed) for r in self.runs[x["label"]]],
                              "baselines": {bl: self.store.ref(split, bl, "psnr") for bl in baselines.TRIVIAL}})
            specs.append(self.claim_spec(c, a, b, gates, metric=metric))
        return specs

    def untested(self) -> list[str]:
        done = {s["id"] for s in self.claim_specs()}
        return [c["id"] for c in self.paper["claims"] if c["id"] not in done]

    # ------------------------------------------------------------------ report
    def paper_table(self, table: pd.DataFrame) -> pd.DataFrame:
        rows = []
        transfer_from = self.p["transfer_dataset"] if self.p["train_transfer"] else self.p["dataset"]  # Table V trains on LFW
        for ds, trained_on in ((self.p["dataset"], self.p["dataset"]), (self.p["transfer_dataset"], transfer_from)):
            ours = table[table["data"] == f"{ds} (trained on {trained_on})"].set_index("method")
            for method in ("CE", "MCE"):
                for m in ("l1_percent", "ms_ssim_percent"):
                    rows.append({"dataset": ds, "method": method, "metric": m,
                                 "paper": self.paper["tables"].get(ds, {}).get(method, {}).get(m), "ours": ours.loc[method, m]})
        return compare(rows)

    def deviations(self) -> pd.DataFrame:
        p, sizes = self.p, self.size_table().set_index("arm")
        ce, mce, one = sizes.loc["CE"], sizes.loc["MCE"], sizes.loc["MCE 1 scale"]
        n = len(self.images[f"{p['dataset']}/train"])
        lfw = (f"{p['transfer_dataset']} test faces scored by the {p['dataset']} models (cross-dataset)"
               + (f"; also trained on {p['transfer_dataset']}" + (" split by identity" if p["lfw_by_identity"] else "") if p["train_transfer"] else ""))
        schedule = (f"−{100 * (1 - self.cfg.lr_decay):.0f} % every {self.cfg.lr_decay_every} steps ({p['step_decay_epochs']} epochs)"
                    if self.cfg.lr_decay_every else f"constant, then linear to 0 from {p['lr_decay_start']:.0%} of the steps")
        values = {**p, **dataclasses.asdict(self.cfg), "feature_side": self.cfg.feature_side, "ce_size": self.ce_size,
                  "scale_sizes": "→".join(map(str, self.cfg.scale_sizes)), "inner": self.inner, "ms_ssim_scales": self.ms_ssim_scales,
                  "match": (f"CE{self.ce_size} width {p['ce_width']}, code {p['ce_bottleneck']}: {ce['G parameters']:,} parameters, "
                            f"{ce['G multiply-adds / image'] / 1e6:.1f} M multiply-adds; MCE width {self.cfg.width}, code {self.cfg.bottleneck}: "
                            f"{mce['G parameters']:,}, {mce['G multiply-adds / image'] / 1e6:.1f} M"),
                  "schedule": schedule, "steps": self.train_cfg.steps, "epochs": self.train_cfg.steps * p["batch_size"] / n,
                  "n_train": n, "n_val": len(self.images[f"{p['dataset']}/val"]), "n_test": len(self.images["main"]),
                  "n_seeds": len(self.seeds), "lfw": lfw, "precision": self.precision,
                  "ablation": (f"{one['G parameters']:,} parameters, {one['G multiply-adds / image'] / 1e6:.1f} M multiply-adds per image "
                               f"(MCE: {mce['G parameters']:,}, {mce['G multiply-adds / image'] / 1e6:.1f} M)")}
        return deviation_table(self.paper["deviations"], values)

    def summary(self, table: pd.DataFrame, records: list[dict]) -> str:
        """The summary, written from the numbers: it says when a learned arm loses to a baseline."""
        main = table[table["data"].str.startswith(self.p["dataset"])].set_index("method")
        learned = [m for m in self.runs if "/" not in m]
        free = [m for m in main.index if m not in learned and not m.endswith(HALF_SUFFIX)]  # the learning-free fills
        lines = [f"Profile `{self.p['profile']}`: {len(self.seeds)} seeds × {self.train_cfg.steps} steps per arm on "
                 f"{len(self.images[self.p['dataset'] + '/train'])} {self.p['dataset']} faces at {self.cfg.image_size} px; "
                 f"{len(self.images['main'])} test faces, inner {self.inner}-px square, MS-SSIM with {self.ms_ssim_scales} scales."]
        for m in learned:
            lines.append(f"- {m}: MS-SSIM {main.loc[m, 'ms_ssim_percent']:.2f} %, L1 {main.loc[m, 'l1_percent']:.2f} %, PSNR {main.loc[m, 'psnr']:.2f} dB.")
            for metric, hib in (("psnr", True), ("ms_ssim_percent", True), ("l1_percent", False)):
                better = [b for b in free if (main.loc[b, metric] >= main.loc[m, metric]) == hib]
                if better:
                    lines.append(f"  **{m} does not beat {', '.join(better)} on {metric}** "
                                 f"({', '.join(f'{main.loc[b, metric]:.2f}' for b in better)} vs {main.loc[m, metric]:.2f}).")
        lines += [verdicts.claim_line(r) for r in records]
        lines += [f"- `{cid}`: untested in this profile (the arm was not trained)." for cid in self.untested()]
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        main = table[table["data"].str.startswith(self.p["dataset"])].set_index("method")
        out = {f"{m.lower().replace(' ', '_')}_{k}": main.loc[m, k] for m in self.runs if "/" not in m for k in ("ms_ssim_percent", "l1_percent", "psnr")}
        return out | {"telea_ms_ssim_percent": main.loc["Telea", "ms_ssim_percent"], "mean_face_ms_ssim_percent": main.loc["mean training image", "ms_ssim_percent"]}

    # ------------------------------------------------------------------ figures
    def receptive_field_figure(self, pixels):
        """|∂ patch pixel / ∂ input| (square root, per-panel scale) of an untrained generator, Tables
        I-II as printed vs ours; red box: the hole, cyan cross: the pixel's place in the image."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, len(pixels), figsize=(3 * len(pixels), 6.2), squeeze=False)
        t, l, h, w = self.cfg.hole_box
        for ax_row, context in zip(axes, ("none", self.cfg.context)):
            torch.manual_seed(0)
            model = ms.MultiScaleContextEncoder(dataclasses.replace(self.cfg, context=context))
            label = "as printed (context = none)" if context == "none" else f"ours (context = {context})"
            for ax, px in zip(ax_row, pixels):
                g = ms.patch_input_gradient(model, self.cfg, px)
                ax.imshow((g / g.max().clamp_min(1e-30)).sqrt(), cmap="magma")
                ax.add_patch(plt.Rectangle((l - 0.5, t - 0.5), w, h, fill=False, ec="red"))
                ax.plot(l + px[1], t + px[0], "c+", ms=10)
                ax.set(title=f"{label}\npatch pixel {px}", xticks=[], yticks=[])
        fig.tight_layout()
        return fig
