"""The context encoder study (notebook 00): train the CE with several seeds, score it next to
learning-free baselines on the same images and masks, and decide its claims.

Pathak et al., *Context Encoders: Feature Learning by Inpainting*, CVPR 2016; the model is
:mod:`facefill.models.context_encoder`. The protocol, fixed before any test image is scored:

1. **Data.** The seeded train / validation / test splits of ``prepare_data`` (validation is carved
   out of training). Each seed trains on the training split; every ``validate_every`` steps the
   validation reconstruction error (MSE on the inner hole, eval mode) is logged — the curve of the
   convergence gate.
2. **Region.** ``test.lua`` pastes the hole *shrunk by the overlap*; the 4-px ring keeps the real
   pixels. So the scored region is that inner square (56×56 for a 64 hole), the encoder's input
   hides exactly it, and every baseline is given exactly the pixels the encoder sees.
3. **Test, once.** After training, each seed and each baseline fill the same test images; per-image
   L1/L2 (% of the range), PSNR and SSIM on the inner square are stored in ``arrays.npz``, and the
   CelebA-HQ models are also scored on a second face set with other framing (LFW).
4. **Claims.** ``pathak2016.yaml`` lists them; :mod:`facefill.verdicts` decides each from the
   arrays, after the convergence gate (each seed) and the sanity gate (the CE beats the trivial
   baselines on PSNR on the claim's data set).
"""
from __future__ import annotations


import numpy as np
import pandas as pd
import torch

from .. import baselines, data, metrics, verdicts
from ..models.context_encoder import ContextEncoderConfig, ContextEncoderTask, drop_centre
from ..reporting import Run
from ..train import TrainConfig, evaluate_batches, fit
from . import deviation_table, project_path
from .study import Study, TrainedRun, half_name, half_task

KEY = "pathak2016"
METRICS = ("l1_percent", "l2_percent", "psnr", "ssim")
METHOD = "CE"


def inner_mask(cfg: ContextEncoderConfig) -> torch.Tensor:
    """(1, 1, S, S) mask of the pixels the encoder never sees: the hole shrunk by ``overlap``."""
    t, l, h, w = cfg.hole_box
    o = cfg.overlap
    m = torch.zeros(1, 1, cfg.image_size, cfg.image_size)
    m[..., t + o : t + h - o, l + o : l + w - o] = 1
    return m


def inner_box(cfg: ContextEncoderConfig) -> tuple[int, int, int, int]:
    t, l, h, w = cfg.hole_box
    o = cfg.overlap
    return t + o, l + o, h - 2 * o, w - 2 * o


def crop(x: torch.Tensor, box) -> torch.Tensor:
    t, l, h, w = box
    return x[..., t : t + h, l : l + w]


def hole_metrics(filled: torch.Tensor, truth: torch.Tensor, cfg: ContextEncoderConfig) -> dict[str, np.ndarray]:
    """Per-image metrics on the inner square (the pixels the model filled)."""
    p, t = crop(filled, inner_box(cfg)), crop(truth, inner_box(cfg))
    return {
        "l1_percent": metrics.l1(p, t, data_range=2.0, percent=True),
        "l2_percent": metrics.l2(p, t, data_range=2.0, percent=True),
        "psnr": metrics.psnr(p, t, data_range=2.0),
        "ssim": metrics.ssim((p + 1) / 2, (t + 1) / 2, data_range=1.0),  # on [0, 1]: SSIM's luminance term is not shift-invariant
    }


class ContextEncoderStudy(Study):
    """Everything notebook 00 computes, from its parameter dict and its :class:`Run`."""

    KEY, CONFIG = KEY, ContextEncoderConfig

    def __init__(self, params: dict, run: Run):
        super().__init__(params, run)
        self.mask = inner_mask(self.cfg)
        self.runs: list[TrainedRun] = []
        self.images: dict[str, np.ndarray] = {}

    # ------------------------------------------------------------------ data
    def load(self) -> None:
        p = self.p
        kw = dict(data_dir=p["data_dir"], processed_dir=p["processed_dir"], seed=p["seed"])
        self.images["train"] = data.load_faces(p["dataset"], p["image_size"], "train", p["n_train"], **kw)
        self.images["val"] = data.load_faces(p["dataset"], p["image_size"], "val", p["n_val"], **kw)
        self.images["main"] = data.load_faces(p["dataset"], p["image_size"], "test", p["n_test"], **kw)
        self.images["transfer"] = data.load_faces(p["transfer_dataset"], p["image_size"], "test", p["n_test"], **kw)
        self.train_mean = baselines.train_mean_image(self.images["train"])
        self.run.describe(dataset=p["dataset"], image_size=p["image_size"], n_train=len(self.images["train"]),
                          n_val=len(self.images["val"]), n_test=len(self.images["main"]),
                          transfer=f"{p['transfer_dataset']} ({len(self.images['transfer'])} test)",
                          seeds=len(self.seeds), steps=p["steps"], batch_size=p["batch_size"], precision=self.precision)

    def masked_input(self, images: torch.Tensor) -> torch.Tensor:
        """What the encoder sees: the inner square replaced by Pathak's mean colour."""
        return drop_centre(images, self.cfg)

    # ------------------------------------------------------------------ training
    def validation_loss(self, task: ContextEncoderTask):
        """Callback for ``fit``: MSE on the inner square of the validation faces, eval mode."""
        val = self.images["val"]

        def validate() -> dict[str, float]:
            filled = self.fill(task, val)
            truth = data.to_tensor(val)
            err = (crop(filled, inner_box(self.cfg)) - crop(truth, inner_box(self.cfg))) ** 2
            return {"val_rec": float(err.mean())}

        return validate

    def train(self) -> list[TrainedRun]:
        for seed in self.seeds:
            torch.manual_seed(seed)  # the weights of each seed
            task = ContextEncoderTask(self.cfg)
            cfg = TrainConfig(**{**self.train_cfg.__dict__, "seed": seed, "progress": self.train_cfg.progress})
            out = self.run.output_dir / f"seed{seed}"
            history = fit(task, self.images["train"], cfg, out, self.run.checkpoint_dir / f"seed{seed}",
                          sample_images=self.images["main"][:8], validate=self.validation_loss(task),
                          fingerprint_extra={"dataset": self.p["dataset"], "n_train": len(self.images["train"]), "seed": seed})
            half = half_task(task, self.run.checkpoint_dir / f"seed{seed}", self.run.device) if self.half_budget else None
            self.runs.append(TrainedRun("CE", seed, task, history, out / "history.csv", half))
        return self.runs

    # ------------------------------------------------------------------ evaluation
    def fill(self, task: ContextEncoderTask, images_uint8: np.ndarray) -> torch.Tensor:
        """Test-time completion as test.lua: predict the patch, paste only its inner square."""
        mask = self.mask.to(self.run.device)
        return evaluate_batches(lambda x: task.inpaint(x, mask, autocast=self.autocast), images_uint8,
                                self.p["eval_batch_size"], self.run.device)

    def evaluate(self) -> pd.DataFrame:
        """Fill every test image with every seed and every baseline; store per-image metrics."""
        rows = []
        self.filled: dict[str, dict[str, torch.Tensor]] = {}
        for split in ("main", "transfer"):
            truth = data.to_tensor(self.images[split])
            self.store.set_images(split, self.images[split])
            dataset = self.p["dataset"] if split == "main" else self.p["transfer_dataset"]
            fills = {(METHOD, r.seed): self.fill(r.task, self.images[split]) for r in self.runs}
            fills |= {(half_name(METHOD), r.seed): self.fill(r.half, self.images[split]) for r in self.runs if r.half is not None}
            fills |= {(name, None): f for name, f in baselines.fill_all(truth, self.mask, self.train_mean).items()}
            self.filled[split] = {(f"{m} seed {s}" if s is not None else m): f for (m, s), f in fills.items()
                                  if m != half_name(METHOD)}  # the figures show the full-budget models
            for (method, seed), filled in fills.items():
                for metric, values in hole_metrics(filled, truth, self.cfg).items():
                    self.store.put(split, method, metric, values, seed)
                    rows.append({"data": dataset, "method": method, "seed": seed, "metric": metric, "mean": float(np.mean(values))})
        self.store.save()
        table = pd.DataFrame(rows)
        table = table.groupby(["data", "method", "metric"], sort=False)["mean"].mean().unstack("metric").reset_index()
        return table[["data", "method", *METRICS]]

    # ------------------------------------------------------------------ claims
    def claim_specs(self) -> list[dict]:
        def seeds(split, metric, method=METHOD):
            return [self.store.ref(split, method, metric, r.seed) for r in self.runs]

        specs = []
        for c in self.paper["claims"]:
            split, metric = c["dataset"], c["metric"]
            gates = [{"type": "convergence", "label": f"{METHOD} seed {r.seed}",
                      "history": project_path(r.history_path, self.run.root),
                      "step_column": "step", "column": "val_rec", "higher_is_better": False} for r in self.runs]
            gates.append({"type": "sanity", "model": seeds(split, "psnr"), "higher_is_better": True,
                          "baselines": {b: self.store.ref(split, b, "psnr") for b in baselines.TRIVIAL}})
            specs.append(self.claim_spec(c, self.trained_arm(METHOD, seeds(split, metric), seeds(split, metric, half_name(METHOD)) if self.half_budget else []),
                                         {"label": c["b"], "trained": False, "arrays": [self.store.ref(split, c["b"], metric)]},
                                         gates))
        return specs

    # ------------------------------------------------------------------ report
    def paper_table(self, table: pd.DataFrame) -> pd.DataFrame:
        from ..reporting import compare

        main = table[(table["data"] == self.p["dataset"]) & (table["method"] == METHOD)].iloc[0]
        return compare({"metric": m, "paper": self.paper["metrics"].get(m), "ours": main[m]} for m in METRICS)

    def deviations(self) -> pd.DataFrame:
        p = self.p
        values = {**p, "n_train": len(self.images["train"]), "n_val": len(self.images["val"]),
                  "n_test": len(self.images["main"]), "n_seeds": len(self.seeds), "precision": self.precision,
                  "epochs": p["steps"] * p["batch_size"] / len(self.images["train"]),
                  "lr_g": p["lr_d"] * p["lr_g_factor"], "inner": self.cfg.hole - 2 * self.cfg.overlap,
                  "decay_step": round(p["lr_decay_start"] * p["steps"])}
        return deviation_table(self.paper["deviations"], values)

    def summary(self, table: pd.DataFrame, records: list[dict]) -> str:
        """The summary paragraph, written from the numbers (it notices when the CE loses)."""
        main = table[table["data"] == self.p["dataset"]].set_index("method")
        ce = main.loc[METHOD]
        lines = [f"On {len(self.images['main'])} held-out {self.p['dataset']} faces, {len(self.seeds)} CE seeds trained "
                 f"{self.p['steps']} steps (profile `{self.p['profile']}`) fill the inner {self.cfg.hole - 2 * self.cfg.overlap}-px "
                 f"square with PSNR {ce['psnr']:.2f} dB and SSIM {ce['ssim']:.3f} (mean over seeds)."]
        for metric in ("psnr", "ssim"):
            better = [m for m in main.index if m not in (METHOD, half_name(METHOD)) and main.loc[m, metric] >= ce[metric]]
            if better:
                lines.append(f"**On {metric.upper()} the CE does not beat {', '.join(better)}** "
                             f"({', '.join(f'{main.loc[m, metric]:.3f}' for m in better)} vs {ce[metric]:.3f}).")
        lines += [verdicts.claim_line(r) for r in records]
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        """The few numbers ``metrics.json`` keeps (readable in ``dvc metrics show``); no timings, so two
        runs at the same thread count write identical files."""
        main = table[table["data"] == self.p["dataset"]].set_index("method")
        transfer = table[table["data"] == self.p["transfer_dataset"]].set_index("method")
        return {"ce_psnr": main.loc[METHOD, "psnr"], "ce_ssim": main.loc[METHOD, "ssim"],
                "telea_psnr": main.loc["Telea", "psnr"], "mean_face_ssim": main.loc["mean training image", "ssim"],
                "transfer_ce_psnr": transfer.loc[METHOD, "psnr"], "transfer_telea_psnr": transfer.loc["Telea", "psnr"]}
