"""The semantic-inpainting study of paper 003 (notebook 04): latent search in a face DCGAN, with and
without the landmark loss, next to learning-free baselines, scored on the hole and the whole image.

Paper 003 ("Structurally and semantically coherent deep image inpainting", BRAC thesis) extends Yeh
et al.'s semantic inpainting (CVPR 2017); the search is :mod:`facefill.inpaint.semantic`, the DCGAN
its own stage (:mod:`facefill.experiments.dcgan_faces`). The protocol, fixed before any test image
is scored:

1. **Prior.** The DCGAN of the ``dcgan`` stage (loaded; trained here at the profile's size when the
   stage has not run). Its sample-quality curve (share of samples in which dlib's detector finds a
   face) is the convergence gate of every claim that uses it.
2. **Masks.** Centre 32×32, left half, right half, 80 % random pixels, on the same ``n_test`` test faces.
3. **Methods.** Per search seed (``n_seeds``, the replicates of a claim, nested in the one DCGAN): SI
   (keep the candidate with the lowest L_c + L_p), ours (lowest L_c + L_p + L_d, L_d as written; the
   z's are SI's, see the deviation log) and the control **random candidate** (a seeded random pick
   among the same candidates), each at the end and at half the iterations (budget stability: a
   snapshot of the same search), SI / ours + Poisson blending. The first seed adds ours with a
   differentiable regressor L_d (``regressor_search``) and, on the half masks, SI with a **uniform W**
   (Yeh's W ablated). The CE per mask; the learning-free fills of :mod:`facefill.baselines` (mean
   colour, mean training image: the sanity gate; Telea, biharmonic) and the thesis' Fig. 6 methods
   (TV, Navier–Stokes, LR, nearest neighbour).
4. **Scores.** Per image SSIM and PSNR on the whole completed image and on the hole, and the landmark
   error (dlib on the completion vs dlib on the ground truth, mean px over 68 points) with two
   references: a constant mean landmark shape and dlib on the masked input (the thesis' reference).
5. **Claims.** ``semantic_landmarks.yaml``, one per family and mask, decided by :mod:`facefill.verdicts`.
"""
from __future__ import annotations

import contextlib
import dataclasses
import time

import numpy as np
import pandas as pd
import torch

from .. import baselines, data, metrics, verdicts
from ..adversarial import composite
from ..config import pick
from ..inpaint import local
from ..inpaint.semantic import (
    SemanticConfig,
    SemanticInpainter,
    choose,
    context_weights,
    dlib_points,
    landmark_loss_probe,
    masked,
    train_landmark_regressor,
)
from ..inpaint import search_cache
from ..landmarks import landmarks
from ..masks import make_masks
from ..models.context_encoder import ContextEncoderConfig, ContextEncoderTask, MaskedContextEncoderTask
from ..reporting import Run
from ..train import TrainConfig, fit
from . import deviation_table, project_path
from .study import HALF_SUFFIX, Study, half_name
from .dcgan_faces import load_or_train, stage_params

KEY = "semantic_landmarks"
MASK_KINDS = ("center", "left", "right", "random")
LEARNED = ("SI", "ours", "random candidate", "ours (regressor L_d)", "SI + Poisson", "ours + Poisson", "SI (uniform W)", "CE")
#: rows that depend on the search seed: scored for every seed (the replicates of a claim, nested in one DCGAN)
SEARCHED = ("SI", "ours", "random candidate", "SI + Poisson", "ours + Poisson")
#: the half masks, where Yeh's W leaves most known pixels unweighted: the uniform-W ablation runs there
HALF_MASKS = ("left", "right")
CLASSICAL = ("TV", "Navier-Stokes", "LR", "nearest neighbour")
SCORES = ("ssim_image", "psnr_image", "ssim_hole", "psnr_hole")
#: the z-search objective's gate: mean L_c, recorded every 10 iterations, must plateau (read point by point:
#: a mean over 4 candidates × n faces is smooth; 5 points is the shortest curve a Theil-Sen slope reads)
SEARCH_GATE = {"min_points": 5, "smooth": 1, "plateau": True}


@contextlib.contextmanager
def one_thread():
    """Many tiny ops (TV's 300 Adam steps on a few images): thread hand-offs cost more than they save
    on a shared 2-core CPU (measured under load: 53 s with 2 threads vs 7 s with 1 for 6 faces)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def study_masks(size: int, n: int, seed: int, drop: float) -> dict[str, torch.Tensor]:
    """The four masks of the study (MASK_KINDS), ``n`` of each, at ``size`` px."""
    return {"center": make_masks("center", size, n, hole=size // 2), "left": make_masks("left", size, n),
            "right": make_masks("right", size, n), "random": make_masks("random_pixels", size, n, seed=seed, drop=drop)}


def context_encoder_config(kind: str, p: dict) -> ContextEncoderConfig:
    """The CE's config for mask ``kind`` from the study's parameters ``p``.

    Every method here is scored on the whole hole, so the CE must not see any of it: the centre CE has
    ``overlap = 0`` (Pathak's 4-px ring would show its encoder 448 of the 1,024 hole pixels it is scored
    on); the masked CEs drop exactly their mask (their ``overlap`` only weights a band of *known* pixels
    in the training loss)."""
    return ContextEncoderConfig(image_size=p["image_size"], hole=p["image_size"] // 2, width=p["ce_width"],
                                bottleneck=p["ce_bottleneck"], **({"overlap": 0} if kind == "center" else {"output": "image"}))


def context_encoder_task(kind: str, p: dict) -> ContextEncoderTask:
    """The (untrained) CE of mask ``kind`` as the study builds it (:func:`context_encoder_config`)."""
    ce_cfg = context_encoder_config(kind, p)
    if kind == "center":
        return ContextEncoderTask(ce_cfg)
    mk, kw = {"left": ("left", {}), "right": ("right", {}), "random": ("random_pixels", {"drop": p["random_drop"]})}[kind]
    return MaskedContextEncoderTask(ce_cfg, mk, kw)


def selection_rows(result, truth: torch.Tensor, masks: torch.Tensor, lambda_d: float, seed: int) -> tuple[dict, torch.Tensor, torch.Tensor]:
    """Three selection rules over one search's candidates: SI (lowest L_c + L_p), ours (+ λ_d·L_d as written)
    and the control, a **random candidate** (seeded by ``seed``): if L_d only reshuffled the candidates, ours
    would do no better than random. Returns (completions by rule, SI's picks, ours' picks)."""
    si, picked_si = choose(result, truth, masks)
    ours, picked = choose(result, truth, masks, lambda_d)
    n, k = result.all_generated.shape[:2]
    rand = torch.randint(k, (n,), generator=torch.Generator().manual_seed(10_007 + seed))
    m = masks.float().cpu().expand(n, -1, -1, -1)
    random_pick = composite(truth.float().cpu(), result.all_generated[torch.arange(n), rand], m)
    return {"SI": si, "ours": ours, "random candidate": random_pick}, picked_si, picked


def search_completions(search: SemanticInpainter, search_reg: SemanticInpainter | None, truth: torch.Tensor, masks: torch.Tensor,
                       device="cpu", autocast=None, record_every: int = 0, cache: dict | None = None):
    """One mask's rows of the latent search: SI, ours (L_d as written, chosen among SI's candidates), the
    random-candidate control, the regressor variant (when ``search_reg`` is given) and SI / ours + Poisson.
    Returns (completions by method, the half-budget completions of the three selection rules -- the search
    stopped at ``search.cfg.snapshot_at``, empty when 0 --, the select search's result, the regressor search's
    result or None, share of faces whose kept candidate L_d changes). ``cache``: ``folder`` and ``salt`` of
    :func:`facefill.inpaint.search_cache.cached_inpaint` (finished searches are reused; ``None``: none).

    Poisson blends G(ẑ) into the *damaged* image (the hole never holds ground truth; before issue 27 the
    destination was the undamaged image, and seamlessClone carried truth into the hole)."""
    x, mm = truth.to(device), masks.to(device)
    cache = cache or {"folder": None}
    r_sel = search_cache.cached_inpaint(search, x, mm, autocast=autocast, record_every=record_every, **cache)
    r_reg = search_cache.cached_inpaint(search_reg, x, mm, autocast=autocast, **cache) if search_reg is not None else None
    seed, lam = search.cfg.seed, search.cfg.lambda_d
    filled, picked_si, picked = selection_rows(r_sel, truth, masks, lam, seed)
    half = selection_rows(r_sel.snapshot, truth, masks, lam, seed)[0] if r_sel.snapshot is not None else {}
    n = len(truth)
    damaged = masked(truth, masks)
    for name, pick in (("SI", picked_si), ("ours", picked)):
        g = r_sel.all_generated[torch.arange(n), pick]
        filled[f"{name} + Poisson"] = composite(truth, local.poisson_blend(g, damaged, masks), masks)
    if r_reg is not None:
        filled["ours (regressor L_d)"] = r_reg.completed
    return filled, half, r_sel, r_reg, float((picked != picked_si).float().mean())


def learning_free(truth: torch.Tensor, masks: torch.Tensor, train_mean: torch.Tensor, train: torch.Tensor,
                  lr_rank: int, lr_shrink: float) -> dict[str, torch.Tensor]:
    """One mask's rows of every learning-free method: baselines.TRIVIAL + baselines.CLASSICAL + CLASSICAL."""
    out = baselines.fill_all(truth, masks, train_mean)
    with one_thread():
        tv = local.total_variation(truth, masks)
    return out | {"TV": tv, "Navier-Stokes": composite(truth, local.opencv(truth, masks, "navier_stokes"), masks),
                  "LR": local.low_rank(truth, masks, rank=lr_rank, shrink=lr_shrink),
                  "nearest neighbour": local.nearest_neighbour(truth, masks, train)[0]}


class SemanticStudy(Study):
    """Everything notebook 04 computes, from its parameter dict and its :class:`Run`."""

    KEY = KEY  # its "model" is a z-search over the DCGAN stage's generator: SemanticConfig, built below

    def __init__(self, params: dict, run: Run):
        super().__init__(params, run)
        self.search_cfg = pick({**params, "landmark": "select"}, SemanticConfig, rename={"lr": "z_lr", "beta1": "z_beta1"})
        # completions: out[kind][method] (the first search seed's for searched rows: figures) and, for the
        # rows that depend on the search seed, seeded[kind][method][seed] (half-budget rows under half_name)
        self.out: dict[str, dict[str, torch.Tensor]] = {k: {} for k in MASK_KINDS}
        self.seeded: dict[str, dict[str, dict[int, torch.Tensor]]] = {k: {} for k in MASK_KINDS}
        self.seconds: dict[str, float] = {}

    # ------------------------------------------------------------------ data and prior
    def load(self) -> None:
        p = self.p
        kw = dict(data_dir=p["data_dir"], processed_dir=p["processed_dir"], seed=p["seed"])
        self.train_images = data.load_faces(p["dataset"], p["image_size"], "train", p["n_train"], **kw)
        self.test_images = data.load_faces(p["dataset"], p["image_size"], "test", p["n_test"], **kw)
        self.truth = data.to_tensor(self.test_images)
        n, s = len(self.truth), p["image_size"]
        self.masks = study_masks(s, n, p["seed"], p["random_drop"])
        self.train_mean = baselines.train_mean_image(self.train_images)
        self.dcgan_params = stage_params(p["profile"])
        self.run.describe(dataset=f"{p['dataset']} (half-res copy, DCGAN crop)", image_size=s, n_train=len(self.train_images),
                          n_test=n, iterations=p["iterations"], candidates=p["candidates"], precision=self.precision)

    def prior(self):
        """The DCGAN: the ``dcgan`` stage's checkpoint, or trained here (smoke runs); its history is
        copied to ``dcgan/history.csv`` here, the file the convergence gate cites."""
        p = self.p
        t0 = time.perf_counter()
        self.gan = load_or_train(self.dcgan_params, self.run.root / p["dcgan_dir"], self.run.checkpoint_dir / "dcgan",
                                 self.run.output_dir / "dcgan", p["data_dir"], p["processed_dir"])
        self.seconds["dcgan"] = time.perf_counter() - t0
        self.gan_history_path = self.run.output_dir / "dcgan" / "history.csv"
        for m in self.gan.task.modules.values():
            m.to(self.run.device).eval()
        return self.gan

    def weights(self, kind: str) -> torch.Tensor:
        """W of Eq. 15 for the first test face under mask ``kind``."""
        return context_weights(self.masks[kind][:1], self.p["window"])[0, 0]

    def weight_map_figure(self):
        """Top: the first test face under each mask; bottom: W of Eq. 15 (0 on missing pixels)."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(2, 4, figsize=(8, 4.2))
        for j, kind in enumerate(MASK_KINDS):
            axes[0][j].imshow(((masked(self.truth[0], self.masks[kind][0]) + 1) / 2).permute(1, 2, 0).numpy())
            im = axes[1][j].imshow(self.weights(kind).numpy(), cmap="magma", vmin=0, vmax=1)
            axes[0][j].set_title(kind, fontsize=8)
            axes[0][j].set_axis_off(), axes[1][j].set_axis_off()
        fig.colorbar(im, ax=axes[1].tolist(), shrink=0.8, label="W (Eq. 15)")
        return fig

    def face_share_figure(self):
        """The DCGAN's two sample-quality curves (both gated): the share of samples dlib calls a face against
        the share on real crops, and the kernel distance to real crops against its real-vs-real floor."""
        import matplotlib.pyplot as plt

        h = self.gan.history
        share, kid = h.dropna(subset=["val_face_share"]), h.dropna(subset=["val_kid"]) if "val_kid" in h else h.iloc[:0]
        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        axes[0].plot(share["step"], share["val_face_share"], marker=".", label="DCGAN samples (fixed z)")
        axes[0].axhline(self.gan.real_face_share, color="k", ls="--", label="real test crops")
        axes[0].set(xlabel="training step", ylabel="share dlib calls a face", ylim=(0, 1.02), title="face share (saturates)")
        axes[0].legend()
        axes[1].plot(kid["step"], kid["val_kid"], marker=".", color="C1", label="DCGAN samples vs real crops")
        axes[1].axhline(max(self.gan.real_kid_floor, 1e-3), color="k", ls="--", label="real vs real (floor)")
        axes[1].set(xlabel="training step", ylabel="kernel distance (×10³)", yscale="log", title="kernel distance (ranks generators)")
        axes[1].legend()
        fig.tight_layout()
        return fig

    def caption(self, name: str) -> str:
        """One sentence, from this run's numbers, on what figure ``name`` shows (the notebook prints it under the figure)."""
        p = self.p
        if name == "weight_map":
            near = {k: float((self.weights(k) > 0).float().mean() / (1 - self.masks[k][0, 0].float().mean())) for k in MASK_KINDS}
            return ("*W is non-zero on " + ", ".join(f"{v:.0%} of the known pixels ({k})" for k, v in near.items())
                    + ": on block and half masks only a thin band along the hole's edge constrains the search.*")
        if name == "dcgan_face_share":
            share, kid = self.gan.history["val_face_share"].dropna(), self.gan.history["val_kid"].dropna()
            falling = len(kid) >= 3 and kid.iloc[-1] < kid.iloc[-2] < kid.iloc[-3]
            real = self.gan.real_face_share  # within 2 binomial s.e. of the real crops' share: saturated
            saturated = share.iloc[-1] >= real - 2 * np.sqrt(real * (1 - real) / self.dcgan_params["face_samples"])
            return (f"*dlib calls {share.iloc[-1]:.0%} of the final samples a face (real crops {real:.0%}): "
                    f"{'saturated, so the share cannot rank generators' if saturated else 'below the real crops'}; "
                    f"the kernel distance goes {kid.iloc[0]:.0f} → {kid.iloc[-1]:.0f} (real-vs-real floor {self.gan.real_kid_floor:.1f}) "
                    f"and {'is still falling' if falling else 'is not falling steadily'} over its last three checks.*")
        if name == "dcgan_samples_over_training":
            steps = sorted(self.gan.snapshots)
            if not steps:
                return "*This run saved no sample snapshots.*"
            return (f"*The same {self.gan.snapshots[steps[-1]].shape[0]} codes at {len(steps)} checkpoints, steps {steps[0]}–{steps[-1]}: "
                    f"read it for when faces appear and whether late steps still change them.*")
        if name == "search_losses":
            tol, parts = verdicts.Tolerances.from_params(), []
            for kind in MASK_KINDS:
                g = [verdicts.convergence_gate(r["sel"].history["iteration"], r["sel"].history["l_c"], tol, **SEARCH_GATE)
                     for r in self.results[kind].values()]
                parts.append(f"{kind} {np.mean([x.values.get('last_half_change', np.nan) for x in g]):.1%}"
                             f" ({sum(x.passed for x in g)}/{len(g)} seeds pass)")
            return (f"*How much mean L_c still falls over the last half of the {p['iterations']} iterations (Theil-Sen; the plateau "
                    f"gate allows {tol.plateau_max_late_gain:.0%}): " + ", ".join(parts) + ".*")
        if name.startswith("fig7_methods_"):
            kind = name.removeprefix("fig7_methods_")
            t, m = self.truth, self.masks[kind]
            db = {k: float(np.mean(metrics.psnr(x, t, data_range=2.0, mask=m))) for k, x in self.out[kind].items()
                  if k in ("SI", "ours", "CE", "LR", "TV", "mean colour", "SI (uniform W)")}
            best = max(db, key=db.get)
            return (f"*{kind} mask, hole PSNR over all {len(t)} faces (first search seed): "
                    + ", ".join(f"{k} {v:.1f}" for k, v in db.items()) + f" dB — {best} scores highest.*")
        if name == "fig3_trajectory":
            hist = self.results["center"][self.seeds[0]]["sel"].history
            return (f"*G(z) of {len(self.results['center'][self.seeds[0]]['sel'].trajectory[0][1])} candidates every "
                    f"{p['record_every']} iterations (centre mask, first search seed); mean L_c {hist['l_c'].iloc[0]:.1f} → "
                    f"{hist['l_c'].iloc[-1]:.1f}.*")
        raise KeyError(f"no caption for figure {name!r}")

    # ------------------------------------------------------------------ the search
    def landmark_regressor(self):
        """dlib on ``reg_n_train`` training crops (the mean landmark shape) and, when ``regressor_search``,
        the CNN regressor of the differentiable L_d trained on them."""
        p = self.p
        t0 = time.perf_counter()
        reg_images = self.train_images[: p["reg_n_train"]]
        self.train_points, _ = landmarks(reg_images, box="crop", upscale=p["landmark_upscale"])
        self.regressor, self.reg_history = None, None
        if p["regressor_search"]:
            self.regressor, self.reg_history = train_landmark_regressor(reg_images, self.train_points, steps=p["reg_steps"],
                                                                        width=p["reg_width"], seed=p["seed"], device=self.run.device)
        self.seconds["regressor"] = time.perf_counter() - t0
        return self.reg_history

    def search(self) -> pd.DataFrame:
        """For every search seed and mask, one search gives SI, ours (L_d as written, evaluated on the final
        candidates) and the random-candidate control, at the end and at half its iterations (budget stability);
        the first seed also runs the regressor variant (``regressor_search``) and, on the half masks, SI with a
        uniform W (the ablation of Yeh's weighting). Poisson blending composited with the known pixels."""
        G, D, dev = self.gan.task.generator, self.gan.task.discriminator, self.run.device
        rows, self.results = [], {}
        # finished searches are checkpoints: a re-evaluated or interrupted stage reuses them (search_cache)
        cache = {"folder": self.run.checkpoint_dir / "zsearch", "salt": {"precision": self.precision, "device": str(dev)}, "used": set()}
        n, first = len(self.truth), self.seeds[0]
        for seed in self.seeds:
            cfg = dataclasses.replace(self.search_cfg, seed=seed, snapshot_at=self.search_cfg.iterations // 2)
            search = SemanticInpainter(G, D, cfg)
            search_reg = (SemanticInpainter(G, D, dataclasses.replace(cfg, landmark="regressor", snapshot_at=0), self.regressor)
                          if seed == first and self.regressor is not None else None)
            for kind, m in self.masks.items():
                filled, half, r_sel, r_reg, changed = search_completions(
                    search, search_reg, self.truth, m, dev, self.autocast, self.p["record_every"] if kind == "center" and seed == first else 0,
                    cache)
                for method, x in filled.items():
                    if method in SEARCHED:
                        self.seeded[kind].setdefault(method, {})[seed] = x
                    if seed == first:
                        self.out[kind][method] = x
                for method, x in half.items():
                    self.seeded[kind].setdefault(half_name(method), {})[seed] = x
                self.results.setdefault(kind, {})[seed] = {"sel": r_sel, "reg": r_reg, "changed": changed}
                path = self.search_history_path(kind, seed)  # the objective's curve: its plateau gate reads it
                path.parent.mkdir(parents=True, exist_ok=True)
                r_sel.history.to_csv(path, index=False)
                searches = [("L_c + L_p (SI, ours)", r_sel)] + ([("L_c + L_p + regressor L_d", r_reg)] if r_reg is not None else [])
                if seed == first and kind in HALF_MASKS:
                    uniform = SemanticInpainter(G, D, dataclasses.replace(cfg, landmark="none", weighting="uniform", snapshot_at=0))
                    r_uni = search_cache.cached_inpaint(uniform, self.truth.to(dev), m.to(dev), autocast=self.autocast, **cache)
                    self.out[kind]["SI (uniform W)"] = r_uni.completed
                    searches.append(("L_c (uniform W) + L_p", r_uni))
                for name, r in searches:
                    rows.append({"mask": kind, "seed": seed, "search": name, "seconds": r.seconds, "dlib seconds": r.dlib_seconds,
                                 "candidate-steps/s": n * cfg.candidates * cfg.iterations / max(r.seconds, 1e-9)})
        search_cache.prune(cache["folder"], cache["used"])  # results of an earlier configuration
        return pd.DataFrame(rows)

    def search_history_path(self, kind: str, seed: int):
        return self.run.output_dir / "zsearch" / f"{kind}_seed{seed}.csv"

    def search_history(self) -> pd.DataFrame:
        """Mean L_c and L_p over all candidates against iteration, per mask and search seed (the SI search)."""
        return pd.concat([r["sel"].history.assign(mask=k, seed=seed) for k, by_seed in self.results.items()
                          for seed, r in by_seed.items()], ignore_index=True)

    def search_loss_figure(self):
        """Mean L_c (log) and L_p over all candidates against iteration, per mask."""
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(9, 3))
        for (kind, seed), g in self.search_history().groupby(["mask", "seed"], sort=False):
            style = {"color": f"C{MASK_KINDS.index(kind)}", "alpha": 0.8, "label": kind if seed == self.seeds[0] else None}
            axes[0].plot(g["iteration"], g["l_c"], **style)
            axes[1].plot(g["iteration"], g["l_p"], **style)
        axes[0].set(xlabel="iteration", ylabel="mean L_c", yscale="log", title=f"context loss L_c ({len(self.seeds)} search seeds)")
        axes[1].set(xlabel="iteration", ylabel="mean L_p", title="prior loss L_p")
        axes[0].legend()
        fig.tight_layout()
        return fig

    def methods_figure(self, kind: str, methods, k: int = 6):
        """Rows: the masked input, each method's completion, the ground truth (first ``k`` test faces)."""
        from ..reporting import image_grid

        k = min(k, len(self.truth))
        methods = [m for m in methods if m in self.out[kind]]  # the regressor / uniform-W rows exist for some runs only
        return image_grid([masked(self.truth[:k], self.masks[kind][:k])] + [self.out[kind][m][:k] for m in methods]
                          + [self.truth[:k]], ["input", *methods, "truth"])

    def landmark_probe(self) -> pd.DataFrame:
        """Finite differences of L_d as written around SI's z of the first ``study_n`` centre-mask faces."""
        k = min(self.p["study_n"], len(self.truth))
        x, m = self.truth[:k].to(self.run.device), self.masks["center"][:k].to(self.run.device)
        ref = dlib_points(masked(x, m), self.p["landmark_upscale"])
        return landmark_loss_probe(self.gan.task.generator, self.results["center"][self.seeds[0]]["sel"].z[:k].to(self.run.device), ref, m,
                                   threshold=self.p["threshold"], upscale=self.p["landmark_upscale"], seed=self.p["seed"])

    # ------------------------------------------------------------------ comparison methods
    def context_encoders(self) -> None:
        p, dev = self.p, self.run.device
        for kind, m in self.masks.items():
            t0 = time.perf_counter()
            ce = context_encoder_task(kind, p)
            tc = TrainConfig(steps=p["ce_steps"], batch_size=p["ce_batch_size"], precision=p["precision"], channels_last=p["channels_last"],
                             device=p["device"], seed=p["seed"], checkpoint_every=max(p["ce_steps"] // 2, 1), progress=False)
            fit(ce, self.train_images, tc, self.run.output_dir / f"ce_{kind}", self.run.checkpoint_dir / f"ce_{kind}",
                fingerprint_extra={"dataset": p["dataset"], "n_train": len(self.train_images), "mask": kind})
            with torch.no_grad():
                self.out[kind]["CE"] = ce.inpaint(self.truth.to(dev), m.to(dev), autocast=self.autocast).float().cpu()
            self.seconds[f"ce_{kind}"] = time.perf_counter() - t0

    def baselines(self) -> None:
        train_t = data.to_tensor(self.train_images)
        for kind, m in self.masks.items():
            self.out[kind] |= learning_free(self.truth, m, self.train_mean, train_t, self.p["lr_rank"], self.p["lr_shrink"])

    # ------------------------------------------------------------------ evaluation
    def fills(self, kind: str):
        """(method, search seed or None, completions) of every row of mask ``kind``: the searched rows, the
        others, then the half-budget searches (the order of the tables)."""
        seeded = self.seeded[kind]
        full = [m for m in seeded if not m.endswith(HALF_SUFFIX)]
        for method in full:
            yield from ((method, seed, x) for seed, x in seeded[method].items())
        yield from ((method, None, x) for method, x in self.out[kind].items() if method not in seeded)
        for method in (m for m in seeded if m not in full):
            yield from ((method, seed, x) for seed, x in seeded[method].items())

    def evaluate(self) -> pd.DataFrame:
        """Per-image SSIM / PSNR (image and hole) of every method on every mask (every search seed) →
        arrays.npz; the table holds the mean over images and search seeds."""
        rows = []
        for kind, m in self.masks.items():
            self.store.set_images(kind, self.test_images)
            for method, seed, filled in self.fills(kind):
                f, t = filled.float().cpu(), self.truth
                vals = {"ssim_image": metrics.ssim((f + 1) / 2, (t + 1) / 2, data_range=1.0),
                        "psnr_image": metrics.psnr(f, t, data_range=2.0),
                        "ssim_hole": metrics.ssim((f + 1) / 2, (t + 1) / 2, data_range=1.0, mask=m),
                        "psnr_hole": metrics.psnr(f, t, data_range=2.0, mask=m)}
                for score, v in vals.items():
                    self.store.put(kind, method, score, v, seed)
                rows.append({"mask": kind, "method": method, **{s: float(np.mean(v)) for s, v in vals.items()}})
        self.pool("psnr_hole")
        table = pd.DataFrame(rows)
        seeds = table.groupby(["mask", "method"], sort=False).size().rename("search seeds")
        return table.groupby(["mask", "method"], sort=False)[list(SCORES)].mean().join(seeds).reset_index()

    def pool(self, score: str) -> None:
        """``score`` of every method (and search seed) over all mask kinds, image by image (dataset ``pooled``):
        what the blocking sanity gate asks -- is the model broken on the task as a whole? -- while a loss on
        one mask kind is a caveat of that kind's rows."""
        rows = [{(m, seed) for m, seed, _ in self.fills(k)} for k in self.masks]
        for method, seed in sorted(set.intersection(*rows), key=str):
            self.store.put("pooled", method, score, np.concatenate([self.store.arrays[self.store.key(k, method, score, seed)]
                                                                    for k in self.masks]), seed)
        self.store.set_images("pooled", np.concatenate([self.test_images] * len(self.masks)))

    def landmark_study(self) -> pd.DataFrame:
        """Landmark error (px) vs dlib on the ground truth: completions (every search seed, both budgets) and
        the two references; the table holds the mean over images and search seeds."""
        up = self.p["landmark_upscale"]
        gt = dlib_points(self.truth, up)
        mean_shape = self.train_points.mean(0, keepdims=True)
        rows = []

        def put(kind, method, pts, seed=None):
            err = np.linalg.norm(pts - gt, axis=-1).mean(1)
            self.store.put(kind, method, "landmark_px", err, seed)
            rows.append({"mask": kind, "method": method, "landmark error px": float(err.mean())})

        scored = ("SI", "ours", "random candidate", "ours (regressor L_d)", "CE", "Telea", "mean training image")
        for kind, m in self.masks.items():
            put(kind, "mean landmark shape", np.broadcast_to(mean_shape, gt.shape))
            put(kind, "dlib on the masked input", dlib_points(masked(self.truth, m), up))
            for method, seed, x in self.fills(kind):
                if method in scored or method in {half_name(r) for r in scored}:
                    put(kind, method, dlib_points(x, up), seed)
        return pd.DataFrame(rows).groupby(["mask", "method"], sort=False, as_index=False).mean()

    # ------------------------------------------------------------------ claims
    def claim_specs(self) -> list[dict]:
        """One claim per YAML family and mask. Searched rows are trained arms whose replicates are the search
        seeds, nested in one DCGAN (the verdicts are conditional on it; the `paper` profile's robustness check
        is 3 generators); their half-budget arrays are the same searches stopped at half their iterations."""
        gate_conv = {"type": "convergence", "label": "DCGAN sample quality (share of samples dlib calls a face)",
                     "history": project_path(self.gan_history_path, self.run.root), "step_column": "step",
                     "column": "val_face_share", "higher_is_better": True, "min_points": self.p["gate_min_points"],
                     "smooth": self.p["gate_smooth"]}
        # the face share saturates (samples ≈ real crops), so it cannot rank generators: the kernel distance on
        # offline Lite0 features does, and must end at its best as well (facefill.metrics.kernel_distance)
        gate_kid = {**gate_conv, "label": "DCGAN sample quality (kernel distance to real crops)", "column": "val_kid",
                    "higher_is_better": False}

        def sanity(label: str, kind: str, method: str, seeds=(None,), blocking: bool = True) -> dict:
            """Does ``method``'s hole PSNR on ``kind`` beat every trivial fill? (non-blocking: a caveat in the row)"""
            return {"type": "sanity", "label": label, "higher_is_better": True, **({} if blocking else {"blocking": False}),
                    "model": [self.store.ref(kind, method, "psnr_hole", s) for s in seeds],
                    "baselines": {b: self.store.ref(kind, b, "psnr_hole") for b in baselines.TRIVIAL}}

        def arm(kind: str, method: str, metric: str) -> dict:
            if method in SEARCHED:
                return self.trained_arm(method, [self.store.ref(kind, method, metric, s) for s in self.seeds],
                                        [self.store.ref(kind, half_name(method), metric, s) for s in self.seeds])
            return {"label": method, "trained": method in LEARNED, "arrays": [self.store.ref(kind, method, metric)]}

        specs = []
        for c in self.paper["claims"]:
            for kind in MASK_KINDS:
                metric = c["metric"] if c["metric"] == "landmark_px" else f"{c['metric']}_{c['region']}"
                direction, paper_value = c["direction"], None
                if direction == "paper":
                    table = self.paper["metrics"][c["metric"]][kind]
                    paper_value = round(table["ours"] - table["SI"], 6)
                    direction = "greater" if paper_value > 0 else "less"
                gates, statement = [], f"{c['statement']} — {kind} mask"
                if c["a"] in SEARCHED:
                    statement += " (conditional on one DCGAN: the replicates are search seeds)"
                    gates = [gate_conv, gate_kid]
                    for seed in self.seeds:
                        gates.append({"type": "convergence", "label": f"z-search objective L_c ({kind} mask, search seed {seed})",
                                      "history": project_path(self.search_history_path(kind, seed), self.run.root),
                                      "step_column": "iteration", "column": "l_c", "higher_is_better": False,
                                      **SEARCH_GATE})
                    gates += [sanity(f"{c['a']}, all masks pooled", "pooled", c["a"], self.seeds),
                              sanity(f"{c['a']} on the {kind} mask", kind, c["a"], self.seeds, blocking=False)]
                if c["b"] in CLASSICAL + baselines.CLASSICAL:  # a classical fill no better than a flat one is a trivial
                    # baseline in disguise (LR is the mean colour on block holes): beating it says nothing on its own
                    gates.append(sanity(f"{c['b']} itself on the {kind} mask", kind, c["b"]))
                specs.append(self.claim_spec(
                    c, arm(kind, c["a"], metric), arm(kind, c["b"], metric), gates,
                    id=f"{c['family']}.{kind}", statement=statement, metric=metric,
                    higher_is_better=metric != "landmark_px", kind="directional", direction=direction, margin=None,
                    paper_value=paper_value, **({"paper_effect": paper_value} if paper_value is not None else {})))
        return specs

    def decide(self) -> list[dict]:
        self.store.save()
        return super().decide()

    # ------------------------------------------------------------------ report
    def paper_table(self, table: pd.DataFrame, metric: str) -> pd.DataFrame:
        """Table 1 (ssim) / 2 (psnr): the paper's number next to ours (whole image) for each mask and column."""
        from ..reporting import compare

        ours = table.set_index(["mask", "method"])[f"{metric}_image"]
        rows = []
        for kind in MASK_KINDS:
            for col, paper_value in self.paper["metrics"][metric][kind].items():
                rows.append({"mask": kind, "method": col, "paper": paper_value, "ours": ours.get((kind, col))})
        return compare(rows)

    def deviations(self) -> pd.DataFrame:
        p, d = self.p, self.dcgan_params
        n_dcgan = len(data.load_faces(d["dataset"], d["image_size"], "train", d["n_train"], data_dir=p["data_dir"],
                                      processed_dir=p["processed_dir"], seed=p["seed"]))
        values = {**p, "n_test": len(self.truth), "precision": self.precision, "dcgan_n_train": n_dcgan, "dcgan_width": d["width"],
                  "dcgan_steps": d["steps"], "dcgan_batch": d["batch_size"], "dcgan_epochs": d["steps"] * d["batch_size"] / n_dcgan,
                  "g_activation": d["g_activation"], "dcgan_lr": d["lr"],
                  "dcgan_schedule": ("constant" if d.get("lr_decay_start", 1.0) >= 1.0 else
                                     f"constant for {d['lr_decay_start']:.0%} of the steps, then linearly to 0")}
        return deviation_table(self.paper["deviations"], values)

    def summary(self, table: pd.DataFrame, lm: pd.DataFrame, records: list[dict]) -> str:
        """Written from the numbers: names every baseline that beats a learned method on the hole."""
        p = self.p
        h = self.gan.history.dropna(subset=["val_face_share"])
        t = table.set_index(["mask", "method"])
        lines = [f"On {len(self.truth)} held-out CelebA faces per mask (profile `{p['profile']}`; {len(self.seeds)} search seeds × "
                 f"{p['iterations']} iterations × {p['candidates']} candidates), the DCGAN's samples are called faces by dlib in "
                 f"{h['val_face_share'].iloc[-1]:.0%} of cases (real test crops: {self.gan.real_face_share:.0%})."]
        for kind in MASK_KINDS:
            best = max(CLASSICAL + baselines.TRIVIAL + baselines.CLASSICAL, key=lambda b: t.loc[(kind, b), "psnr_hole"])
            for method in ("SI", "ours", "ours (regressor L_d)", "SI + Poisson", "ours + Poisson", "CE"):
                if (kind, method) in t.index and t.loc[(kind, best), "psnr_hole"] >= t.loc[(kind, method), "psnr_hole"]:
                    lines.append(f"- **{kind}: {method} loses to the learning-free {best}** on the hole "
                                 f"(PSNR {t.loc[(kind, method), 'psnr_hole']:.2f} vs {t.loc[(kind, best), 'psnr_hole']:.2f} dB).")
        ref = lm.set_index(["mask", "method"])["landmark error px"]
        for kind in MASK_KINDS:
            lines.append(f"- {kind}: landmark error ours {ref[(kind, 'ours')]:.2f} px, SI {ref[(kind, 'SI')]:.2f}; references: "
                         f"mean shape {ref[(kind, 'mean landmark shape')]:.2f}, dlib on the masked input {ref[(kind, 'dlib on the masked input')]:.2f}; "
                         f"random candidate {ref[(kind, 'random candidate')]:.2f}; L_d changes the kept candidate for "
                         f"{np.mean([r['changed'] for r in self.results[kind].values()]):.0%} of faces (a random pick among "
                         f"{p['candidates']}: {1 - 1 / p['candidates']:.0%}).")
        lines += [verdicts.claim_line(r) for r in records]
        return "\n".join(lines)

    def headline(self, table: pd.DataFrame) -> dict:
        t = table.set_index(["mask", "method"])
        h = self.gan.history.dropna(subset=["val_face_share"])
        return {"dcgan_face_share": float(h["val_face_share"].iloc[-1]), "real_face_share": self.gan.real_face_share,
                **{f"{kind}_{m}_{s}": float(t.loc[(kind, name), s]) for kind in MASK_KINDS
                   for m, name in (("si", "SI"), ("ours", "ours"), ("telea", "Telea")) for s in ("ssim_image", "psnr_image")}}
