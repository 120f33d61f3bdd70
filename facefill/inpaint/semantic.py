"""Semantic inpainting by latent search (Yeh et al., CVPR 2017, "Semantic Image Inpainting with Deep
Generative Models") with paper 003's landmark loss ("Structurally and semantically coherent deep
image inpainting", BRAC thesis, §3.2, Eq. 14–20).

A DCGAN ``G`` (:mod:`facefill.models.dcgan`) is trained on faces once; it is *not* retrained for a
mask. To fill the hole of a corrupted face ``y`` (mask ``M``, 1 = missing in this project) we search
its latent space for the code whose image agrees with the known pixels and looks real::

    ẑ = argmin_z  λ1·L_c(z | y, M) + λ1·L_p(z) + λ1·L_d(z)        (Eq. 20, λ1 = 1)
    x̂ = (1 − M) ⊙ y + M ⊙ G(ẑ)                                    (overlay the known pixels)

**Weighted context loss** (Eq. 15–16). A known pixel matters more the more missing pixels surround
it: with ``N(i)`` the 7×7 window around pixel ``i`` (clipped at the border)::

    W_i = Σ_{j ∈ N(i)} M_j / |N(i)|   if pixel i is known,   W_i = 0 if it is missing
    L_c(z) = ‖ W ⊙ (G(z) − y) ‖_1

(Yeh et al. write it with ``M`` = 1 for *known* pixels, hence their ``1 − M_j``; the weight is the
fraction of *missing* neighbours. One public implementation convolves the known-pixel mask instead,
weighting pixels far from the hole most — inverted; :func:`context_weights` is unit-tested on
hand-made masks.)

**Prior loss** (Eq. 19): ``L_p(z) = λ · log(1 − D(G(z)))`` with λ = 0.003; with ``D = σ(l)`` this
is ``−λ·softplus(l)``, computed from the logit for stability.

**Landmark loss as written** (Eq. 17–18): dlib's 68 points of the masked input are the reference
(x̂, ŷ); each candidate ``G(z)`` is masked the same way and run through dlib; every coordinate more
than 3 px away adds 0.5, summed over points and the batch. This is a *step function of dlib's
output*, and dlib reads uint8 pixels through regression trees (piecewise constant): autograd has no
path from L_d to z at all — a property of the definition, not a measurement — so Adam's trajectory
of z is exactly that of L_c + L_p, and L_d can act only on *which* candidate is kept. What *can* be
measured is how flat L_d is around a candidate: :func:`landmark_loss_probe` moves z along random
directions by ε and counts how often the uint8 image and L_d change (finite differences).

**Variants that make landmarks act** (ours, measured in the notebook):

* ``select`` — optimise L_c + L_p for K candidates per image (the paper's batch of 64), then keep the
  candidate with the lowest L_c + L_p + L_d: the as-written objective evaluated where it can matter.
  Because L_d has no gradient, this *is* the as-written method's result (same z, same criterion)
  at 1/``iterations`` of the dlib cost.
* ``regressor`` — a differentiable L_d: a small CNN :class:`LandmarkRegressor` trained on dlib's
  68 points of our CelebA crops (inputs randomly masked, targets from the unmasked crop) predicts
  the reference points from the masked input and the points of the *whole* candidate G(z); the
  step of Eq. 17–18 is relaxed to ``0.5·σ((|Δ| − 3)/τ)`` per coordinate, so the gradient pulls the
  hallucinated eyes, nose and mouth towards the points the context implies.

Candidates are independent: G and D run in eval mode (BatchNorm with running statistics), so
batching many images × many candidates per step gives the same result as one at a time.
"""
from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field
from itertools import pairwise

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from ..adversarial import composite
from ..errors import ConfigError
from ..masks import check_masks

LANDMARK_MODES = ("none", "as_written", "select", "regressor")
WEIGHTINGS = ("yeh", "uniform")


@dataclass
class SemanticConfig:
    iterations: int = 1000  # Adam steps on z (paper: 1000)
    lr: float = 0.03  # Adam learning rate on z (the thesis gives none; Yeh et al.'s code: 0.03)
    beta1: float = 0.9  # Adam β1 on z
    lambda_p: float = 0.003  # λ of the prior loss, Eq. 19 (paper: 0.003)
    lambda_d: float = 1.0  # λ1 of L_d in Eq. 20 (the same λ1 as L_c; paper: one λ1 for all)
    window: int = 7  # side of the context-weight window N(i) (Yeh et al.: 7)
    candidates: int = 4  # z initialisations per image, optimised together (paper: a batch of 64)
    landmark: str = "none"  # none (SI) | as_written (dlib every step) | select | regressor
    threshold: float = 3.0  # px: a landmark coordinate further than this costs 0.5 (Eq. 17–18)
    tau: float = 1.0  # px: temperature of the relaxed step in the regressor variant
    landmark_upscale: float = 2.0  # dlib runs on the 64-px crop upscaled ×this (crop box, no detector)
    batch_images: int = 64  # images optimised together (× candidates z's per step)
    seed: int = 0  # seeds the initial z's
    weighting: str = "yeh"  # W of L_c: "yeh" (Eq. 15, known pixels near the hole) | "uniform" (every known pixel 1: ablation)
    snapshot_at: int = 0  # also keep every candidate at this iteration (the half-budget search); 0 = not

    def __post_init__(self):
        if self.landmark not in LANDMARK_MODES:
            raise ConfigError(f"landmark={self.landmark!r}: use one of {LANDMARK_MODES}.")
        if self.iterations < 0 or self.candidates < 1 or self.batch_images < 1:
            raise ConfigError("iterations must be >= 0, candidates and batch_images >= 1.")
        if self.window < 1 or self.window % 2 == 0:
            raise ConfigError(f"window={self.window}: must be an odd number of pixels (Yeh et al.: 7).")
        if self.weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting={self.weighting!r}: use one of {WEIGHTINGS}.")
        if not 0 <= self.snapshot_at < max(self.iterations, 1):
            raise ConfigError(f"snapshot_at={self.snapshot_at}: must lie in [0, iterations={self.iterations}) (0 = no snapshot).")


# --------------------------------------------------------------------------- losses

def context_weights(masks: torch.Tensor, window: int = 7) -> torch.Tensor:
    """W of Eq. 15: for a known pixel the fraction of missing pixels in its ``window``² neighbourhood
    (neighbours outside the image do not count), 0 for a missing pixel. ``masks``: (N, 1, H, W), 1 = missing."""
    check_masks(masks)
    missing_frac = F.avg_pool2d(masks.float(), window, stride=1, padding=window // 2, count_include_pad=False)
    return (1 - masks) * missing_frac


def context_loss(generated: torch.Tensor, target: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Eq. 16, per image: ‖W ⊙ (G(z) − y)‖₁ summed over pixels and channels → (N,)."""
    return (weights * (generated.float() - target.float()).abs()).flatten(1).sum(1)


def prior_loss(d_logits: torch.Tensor, lam: float = 0.003) -> torch.Tensor:
    """Eq. 19, per image: λ·log(1 − D(G(z))) = −λ·softplus(logit) → (N,)."""
    return -lam * F.softplus(d_logits.float())


def landmark_step_loss(points: np.ndarray | torch.Tensor, reference: np.ndarray | torch.Tensor, threshold: float = 3.0) -> torch.Tensor:
    """Eq. 17–18 per image: Σ over the 68 points of 0.5·[|x − x̂| > t] + 0.5·[|y − ŷ| > t] → (N,).

    A step function of landmark coordinates: no gradient flows through it."""
    p, r = torch.as_tensor(np.asarray(points, np.float32)), torch.as_tensor(np.asarray(reference, np.float32))
    if p.shape != r.shape or p.dim() != 3 or p.shape[-1] != 2:
        raise ConfigError(f"landmarks must be matching (N, 68, 2) arrays, got {tuple(p.shape)} and {tuple(r.shape)}.")
    return 0.5 * ((p - r).abs() > threshold).float().sum((1, 2))


def relaxed_landmark_loss(points: torch.Tensor, reference: torch.Tensor, threshold: float = 3.0, tau: float = 1.0) -> torch.Tensor:
    """Differentiable Eq. 17–18: Σ 0.5·σ((|Δ| − t)/τ) over points and both coordinates → (N,).
    τ → 0 recovers the step (tested)."""
    return 0.5 * torch.sigmoid(((points - reference).abs() - threshold) / tau).sum((1, 2))


def masked(images: torch.Tensor, masks: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
    """The damaged image: the hole filled with ``fill`` (0 = mid grey in [-1, 1])."""
    return images * (1 - masks) + fill * masks


def dlib_points(images: torch.Tensor, upscale: float = 2.0) -> np.ndarray:
    """dlib's 68 points (N, 68, 2) of images in [-1, 1], on the whole crop as the face box."""
    from ..data import to_uint8
    from ..landmarks import landmarks

    pts, _ = landmarks(to_uint8(images.detach().float().cpu()), box="crop", upscale=upscale)
    return pts


def landmark_loss_probe(generator: nn.Module, z: torch.Tensor, reference: np.ndarray, masks: torch.Tensor,
                        eps: tuple[float, ...] = (1e-3, 1e-2, 1e-1), n_directions: int = 4, threshold: float = 3.0,
                        upscale: float = 2.0, seed: int = 0) -> pd.DataFrame:
    """Finite differences of L_d as written around ``z`` (N, z_dim): for each step size ε and
    ``n_directions`` random unit directions u per image, compare L_d(z + εu) with L_d(z).

    One row per ε: ``pixels_changed`` (share of (image, direction) pairs whose uint8 masked
    candidate differs at all), ``l_d_changed`` (share whose L_d differs) and ``mean_abs_slope``
    (mean |ΔL_d| / ε). Where L_d never changes for small ε its derivative along z is 0; where it
    jumps, the slope grows like 1/ε — a step, not a gradient Adam could follow.
    """
    from ..data import to_uint8

    g = torch.Generator().manual_seed(seed)
    ref = np.asarray(reference, np.float32)
    was_training = generator.training
    generator.eval()
    rows = []
    try:
        with torch.no_grad():
            def state(zz):
                img = masked(generator(zz).float(), masks)
                return to_uint8(img.cpu()), landmark_step_loss(dlib_points(img, upscale), ref, threshold)

            base_px, base_ld = state(z)
            for e in eps:
                px_changed, ld_changed, slopes = [], [], []
                for _ in range(n_directions):
                    u = torch.randn(z.shape, generator=g).to(z.device)
                    u = u / u.norm(dim=1, keepdim=True)
                    px, ld = state(z + e * u)
                    px_changed.append((px != base_px).reshape(len(px), -1).any(1))
                    ld_changed.append((ld != base_ld).numpy())
                    slopes.append((ld - base_ld).abs().numpy() / e)
                rows.append({"eps": e, "pixels_changed": float(np.mean(px_changed)), "l_d_changed": float(np.mean(ld_changed)),
                             "mean_abs_slope": float(np.mean(slopes))})
    finally:
        generator.train(was_training)
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- differentiable landmarks

class LandmarkRegressor(nn.Module):
    """A small CNN: 64×64 face → 68 (x, y) points in pixels, trained on dlib's labels.

    4×4 stride-2 convolutions 3→w→2w→4w→8w (64→4 px) with BatchNorm + LeakyReLU(0.2), then a
    linear layer to 136 numbers, read as offsets from dlib's mean shape of the training labels."""

    def __init__(self, width: int = 32, image_size: int = 64):
        super().__init__()
        chans = [3, width, 2 * width, 4 * width, 8 * width]
        layers: list[nn.Module] = []
        for cin, cout in pairwise(chans):
            layers += [nn.Conv2d(cin, cout, 4, 2, 1, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2, True)]
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(chans[-1] * (image_size // 16) ** 2, 136)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)
        self.register_buffer("mean_shape", torch.zeros(68, 2))
        self.image_size = image_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        off = self.head(torch.flatten(self.features(x), 1)).view(-1, 68, 2)
        return self.mean_shape + off * (self.image_size / 8)


def train_landmark_regressor(images_uint8: np.ndarray, points: np.ndarray, steps: int = 300, batch_size: int = 64,
                             width: int = 32, lr: float = 1e-3, mask_prob: float = 0.75, seed: int = 0,
                             device="cpu") -> tuple[LandmarkRegressor, pd.DataFrame]:
    """Fit :class:`LandmarkRegressor` to dlib's ``points`` of the *unmasked* crops; inputs are masked
    with probability ``mask_prob`` (centre / left / right / 80 % pixels, grey fill) so that it also
    infers the points of a damaged face. Returns the model (eval mode) and the loss history (px)."""
    from ..data import to_tensor
    from ..masks import make_masks

    if len(images_uint8) != len(points):
        raise ConfigError("one landmark array per training image is needed.")
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    size = images_uint8.shape[1]
    model = LandmarkRegressor(width, size).to(device)
    pts = torch.as_tensor(points, dtype=torch.float32)
    model.mean_shape.copy_(pts.mean(0))
    x_all = to_tensor(images_uint8)
    kinds = [("center", {"hole": size // 2}), ("left", {}), ("right", {}), ("random_pixels", {})]
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    hist = []
    model.train()
    for step in range(steps):
        idx = torch.randint(0, len(x_all), (batch_size,), generator=g)
        x, y = x_all[idx].clone(), pts[idx]
        sel = torch.rand(batch_size, generator=g) < mask_prob
        for j in torch.nonzero(sel).flatten().tolist():
            kind, kw = kinds[int(torch.randint(0, 4, (1,), generator=g))]
            m = make_masks(kind, size, 1, seed=seed * 100_003 + step * 131 + j, **kw)
            x[j] = masked(x[j : j + 1], m)[0]
        pred = model(x.to(device))
        loss = F.smooth_l1_loss(pred, y.to(device))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % 10 == 0 or step + 1 == steps:
            with torch.no_grad():
                hist.append({"step": step + 1, "smooth_l1": float(loss), "mean_px_error": float((pred - y.to(device)).norm(dim=-1).mean())})
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model, pd.DataFrame(hist)


# --------------------------------------------------------------------------- the search

@dataclass
class SemanticResult:
    completed: torch.Tensor  # (N, 3, H, W): known pixels overlaid on G(ẑ) (the paper's output)
    generated: torch.Tensor  # (N, 3, H, W): G(ẑ) of the kept candidate
    z: torch.Tensor  # (N, z_dim): ẑ of the kept candidate
    losses: pd.DataFrame  # per image: l_c, l_p, l_d (dlib, as written; NaN when not computed), chosen candidate
    history: pd.DataFrame  # per iteration: mean L_c, L_p (, L_d) over all candidates
    trajectory: list = field(default_factory=list)  # [(iteration, (n, 3, H, W) G(z) of candidate 0)]
    all_generated: torch.Tensor | None = None  # (N, K, 3, H, W): G(z) of every candidate at the end
    all_losses: pd.DataFrame | None = None  # per image and candidate: image, candidate, l_c, l_p, l_d
    seconds: float = 0.0  # wall time of the optimisation (not the final dlib selection)
    dlib_seconds: float = 0.0  # wall time spent in dlib
    snapshot: "SemanticResult | None" = None  # the same search stopped at ``cfg.snapshot_at`` (half budget)


class SemanticInpainter:
    """Batched latent search: ``batch_images`` images × ``candidates`` z's per Adam step."""

    def __init__(self, generator: nn.Module, discriminator: nn.Module, cfg: SemanticConfig,
                 regressor: LandmarkRegressor | None = None):
        if cfg.landmark == "regressor" and regressor is None:
            raise ConfigError("landmark='regressor' needs a trained LandmarkRegressor (train_landmark_regressor).")
        self.G, self.D, self.cfg, self.R = generator, discriminator, cfg, regressor
        for m in (self.G, self.D, self.R):
            if m is not None:
                m.eval()  # running BatchNorm statistics: candidates do not interact
                for p in m.parameters():
                    p.requires_grad_(False)

    def _dlib_loss(self, g: torch.Tensor, masks: torch.Tensor, ref: np.ndarray) -> torch.Tensor:
        pts = dlib_points(masked(g, masks), self.cfg.landmark_upscale)
        return landmark_step_loss(pts, ref, self.cfg.threshold)

    def inpaint(self, images: torch.Tensor, masks: torch.Tensor, autocast=None, record_every: int = 0,
                record_n: int = 4) -> SemanticResult:
        """Fill ``images`` (N, 3, H, W) in [-1, 1] where ``masks`` (N, 1, H, W) is 1."""
        check_masks(masks, images)
        masks = masks.expand(images.shape[0], -1, -1, -1)
        parts, t0, t_dlib = [], time.perf_counter(), 0.0
        for s in range(0, images.shape[0], self.cfg.batch_images):
            part, dt = self._inpaint_chunk(images[s : s + self.cfg.batch_images], masks[s : s + self.cfg.batch_images],
                                           autocast, record_every if s == 0 else 0, record_n, s)
            parts.append(part)
            t_dlib += dt
        res = SemanticResult(
            completed=torch.cat([p["completed"] for p in parts]), generated=torch.cat([p["generated"] for p in parts]),
            z=torch.cat([p["z"] for p in parts]), losses=pd.concat([p["losses"] for p in parts], ignore_index=True),
            history=pd.concat([p["history"] for p in parts]).groupby("iteration", as_index=False).mean(),
            trajectory=parts[0]["trajectory"], dlib_seconds=t_dlib,
            all_generated=torch.cat([p["all_generated"] for p in parts]),
            all_losses=pd.concat([p["all_losses"] for p in parts], ignore_index=True))
        if parts[0]["snapshot"] is not None:
            snaps = [p["snapshot"] for p in parts]
            res.snapshot = SemanticResult(
                completed=torch.cat([q["completed"] for q in snaps]), generated=torch.cat([q["generated"] for q in snaps]),
                z=torch.cat([q["z"] for q in snaps]), losses=pd.concat([q["losses"] for q in snaps], ignore_index=True),
                history=res.history[res.history["iteration"] <= self.cfg.snapshot_at].reset_index(drop=True),
                all_generated=torch.cat([q["all_generated"] for q in snaps]),
                all_losses=pd.concat([q["all_losses"] for q in snaps], ignore_index=True))
        res.seconds = time.perf_counter() - t0 - t_dlib
        return res

    def _inpaint_chunk(self, images, masks, autocast, record_every, record_n, offset):
        cfg, K = self.cfg, self.cfg.candidates
        n, dev = images.shape[0], images.device
        ctx = autocast or contextlib.nullcontext
        y = images.float().repeat_interleave(K, 0)
        m = masks.float().repeat_interleave(K, 0)
        W = context_weights(m, cfg.window) if cfg.weighting == "yeh" else 1 - m  # uniform: every known pixel
        gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + offset)
        z_dim = self.G.cfg.z_dim
        z = (torch.rand(n * K, z_dim, generator=gen) * 2 - 1).to(dev).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=cfg.lr, betas=(cfg.beta1, 0.999))
        t_dlib = 0.0
        ref = None
        if cfg.landmark in ("as_written", "select"):
            t = time.perf_counter()
            ref = np.repeat(dlib_points(masked(images, masks), cfg.landmark_upscale), K, 0)
            t_dlib += time.perf_counter() - t
        ref_r = None
        if cfg.landmark == "regressor":
            with torch.no_grad():
                ref_r = self.R(masked(images, masks).float()).repeat_interleave(K, 0)
        hist, traj = [], []

        def objective(z_, with_dlib: bool):
            nonlocal t_dlib
            with ctx():
                g = self.G(z_)
                d = self.D(g)
            g = g.float()
            lc = context_loss(g, y, W)
            lp = prior_loss(d, cfg.lambda_p)
            total = lc + lp
            ld = None
            if with_dlib:
                t = time.perf_counter()
                ld = self._dlib_loss(g.detach(), m, ref).to(dev)
                t_dlib += time.perf_counter() - t
                total = total + cfg.lambda_d * ld
            if cfg.landmark == "regressor":
                ld = relaxed_landmark_loss(self.R(g), ref_r, cfg.threshold, cfg.tau)
                total = total + cfg.lambda_d * ld
            return g, lc, lp, ld, total

        snapshot = None
        for it in range(cfg.iterations + 1):
            final = it == cfg.iterations
            with torch.set_grad_enabled(not final):
                g, lc, lp, ld, total = objective(z, cfg.landmark == "as_written" or (final and cfg.landmark == "select"))
            if record_every and (it % record_every == 0 or final):
                traj.append((it, g[: record_n * K : K].detach().cpu()))
            if it % 10 == 0 or final:
                row = {"iteration": it, "l_c": float(lc.detach().mean()), "l_p": float(lp.detach().mean())}
                if ld is not None:
                    row["l_d"] = float(ld.detach().mean())
                hist.append(row)
            if final:
                break
            if cfg.snapshot_at and it == cfg.snapshot_at:  # the half-budget search: this iteration's candidates
                ld_s, total_s = ld, total
                if cfg.landmark == "select":  # as at the end: L_d of every candidate, by dlib
                    t = time.perf_counter()
                    ld_s = self._dlib_loss(g.detach(), m, ref).to(dev)
                    t_dlib += time.perf_counter() - t
                    total_s = total + cfg.lambda_d * ld_s
                snapshot = _kept(images, masks, g, z, lc, lp, ld_s, total_s, K, offset)
            opt.zero_grad(set_to_none=True)
            total.sum().backward()
            opt.step()
            with torch.no_grad():
                z.clamp_(-1, 1)  # the search stays in the prior's box (paper: z restricted to [-1, 1])

        out = _kept(images, masks, g, z, lc, lp, ld, total, K, offset)
        return {**out, "history": pd.DataFrame(hist), "trajectory": traj, "snapshot": snapshot}, t_dlib


def _kept(images, masks, g, z, lc, lp, ld, total, K: int, offset: int) -> dict:
    """The kept candidate of each image (lowest ``total``) and every candidate with its losses, on the CPU."""
    n, dev = images.shape[0], images.device
    best = total.detach().view(n, K).argmin(1)
    pick = torch.arange(n, device=dev) * K + best
    g_best = g.detach()[pick]
    ld_all = ld.detach().cpu().numpy() if ld is not None else np.full(n * K, np.nan)
    losses = pd.DataFrame({"l_c": lc.detach()[pick].cpu().numpy(), "l_p": lp.detach()[pick].cpu().numpy(),
                           "l_d": ld_all[pick.cpu().numpy()], "candidate": best.cpu().numpy()})
    all_losses = pd.DataFrame({"image": offset + np.repeat(np.arange(n), K), "candidate": np.tile(np.arange(K), n),
                               "l_c": lc.detach().cpu().numpy(), "l_p": lp.detach().cpu().numpy(), "l_d": ld_all})
    return {"completed": composite(images.float(), g_best, masks).cpu(), "generated": g_best.cpu(), "z": z.detach()[pick].cpu(),
            "losses": losses, "all_generated": g.detach().view(n, K, *g.shape[1:]).cpu(), "all_losses": all_losses}


def choose(result: SemanticResult, images: torch.Tensor, masks: torch.Tensor, lambda_d: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-select among a result's candidates: by L_c + L_p (``lambda_d=None``: Yeh et al.'s SI) or by
    L_c + L_p + λ_d·L_d (the as-written objective). Returns (completed images, chosen candidate per image)."""
    if result.all_generated is None or result.all_losses is None:
        raise ConfigError("this result kept no candidates.")
    n, K = result.all_generated.shape[:2]
    crit = torch.as_tensor((result.all_losses["l_c"] + result.all_losses["l_p"]).to_numpy(np.float32).copy()).view(n, K)
    if lambda_d is not None:
        ld = torch.as_tensor(result.all_losses["l_d"].to_numpy(np.float32).copy()).view(n, K)
        if torch.isnan(ld).any():
            raise ConfigError("L_d was not computed for these candidates: run with landmark='select' or 'as_written'.")
        crit = crit + lambda_d * ld
    best = crit.argmin(1)
    g = result.all_generated[torch.arange(n), best]
    m = masks.float().cpu().expand(n, -1, -1, -1)
    return composite(images.float().cpu(), g, m), best
