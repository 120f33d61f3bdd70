# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 02 · Cascade context encoder and the NSD metric (Zieliński et al., 2018)
#
# *Cascade context encoder for improved inpainting* asks whether a context encoder (notebook 00)
# inpaints better when a smaller one paints first. A CE64 is trained the standard way on 64×64
# images; then a CE128 is trained and evaluated on images whose hole is **pre-filled by CE64**:
# drop the region, downscale image and mask, run CE64, upscale its fill into the hole, run CE128
# (CE64 frozen). The paper argues the CE128 can then "concentrate on recovering the image details".
#
# The paper's evidence is one number: the **normalised squared-distortion** (NSD) of the encoder's
# 4000-d latent — how far one image's latents move when the mask changes, normalised so that
# "1 = as if the latent were random". NSD(CCE) = 0.56 ± 0.17 vs NSD(CE) = 0.79 ± 0.17 (ImageNet,
# k = 250 images × n = 100 masks). We reproduce it on faces, add the pixel metrics the paper does
# not give, and check the normalisation: a CE bottleneck is not N(0, I), so we also report NSD on
# latents standardised per dimension, where "1 = random" is true.
#
# Skeleton: parameters → data → model → training → evaluation (pixels, NSD) → paper vs ours →
# deviation log → summary → exercises. The maths is in `facefill/models/cascade.py` and `facefill/nsd.py`.

# %% tags=["parameters"]
# Plain defaults = the `smoke` profile; `dvc repro` injects the active profile from params.yaml.
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/smoke/02_cascade_context_encoder"
checkpoint_dir = "build/smoke/models/02_cascade_context_encoder"
dataset = "celeba-hq"
n_train = 48
n_test = 8
image_size = 128
hole = 64
overlap = 4
overlap_weight = 10.0
bottleneck = 4000
width = 8
lambda_adv = 0.001
lr_d = 0.0002
lr_g_factor = 10.0
regimes = ["center", "random_blocks"]
max_fraction = 0.25
ce64_steps = 3
ce128_steps = 3
batch_size = 8
precision = "fp32"
channels_last = False
device = "auto"
sample_every = 0
checkpoint_every = 100
eval_batch_size = 32
nsd_k = 4
nsd_n = 6
nsd_latent = "code"
n_boot = 500

# %%
from facefill.reporting import use_pipeline_backend

use_pipeline_backend()  # Agg when `pipeline run` executes the notebook; Jupyter keeps its inline backend
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from facefill import data, metrics, nsd, reporting
from facefill.config import pick
from facefill.masks import make_masks
from facefill.models import cascade as cc
from facefill.runtime import autocast_factory, resolve_precision
from facefill.train import TrainConfig

run = reporting.start("02_cascade_context_encoder", globals())
params = run.params
base_cfg = pick(params, cc.CascadeConfig)
ce64_train = pick(params, TrainConfig, rename={"steps": "ce64_steps"})
ce128_train = pick(params, TrainConfig, rename={"steps": "ce128_steps"})
precision_used = resolve_precision(precision, run.device)
autocast = autocast_factory(run.device, precision_used)
for r in regimes:
    if r not in cc.MASK_REGIMES:
        raise ValueError(f"regimes: {r!r} is not one of {cc.MASK_REGIMES}")

# %% [markdown]
# ## Data
# CelebA-HQ faces at 128×128 (the seeded 80/20 split of `prepare_data`); CE64 trains on the same
# faces at 64×64, made by the cascade's own ↘ (2×2 area average). The paper used 100,000 ImageNet
# images; any folder of natural images can replace the faces through the generic data source
# (`dataset = "images:/path/to/folder"`, see `facefill.data`).

# %%
train_images = data.load_faces(dataset, image_size, "train", n_train, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
test_images = data.load_faces(dataset, image_size, "test", n_test, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
run.describe(dataset=dataset, image_size=image_size, n_train=len(train_images), n_test=len(test_images),
             ce64_steps=ce64_steps, ce128_steps=ce128_steps, batch_size=batch_size, width=width, precision=precision_used)
print(f"train {train_images.shape}, test {test_images.shape}")
truth = data.to_tensor(test_images)
n_show = min(6, len(test_images))
eval_masks = {}
for r in regimes:
    cfg_r = pick(params | {"mask_kind": r}, cc.CascadeConfig)
    eval_masks[r] = make_masks(r, image_size, len(test_images), seed=10_000 + seed, **cfg_r.mask_kwargs(1))
fig = reporting.image_grid([cc.drop_region(truth[:n_show], eval_masks[r][:n_show]) for r in regimes] + [truth[:n_show]],
                           [f"{r} input" for r in regimes] + ["original"])
run.save_figure(fig, "inputs")
plt.close(fig)
display(Image(run.output_dir / "inputs.png"))

# %% [markdown]
# ## Model
# Both stages are Pathak's context encoder (notebook 00) with a full-image decoder, so that the
# central square and the random blocks go through one code path. The paper-size networks
# (width 64, D = 4000): the cell prints their sizes and latent shapes (a deterministic check
# nbval compares); this profile trains narrower ones.

# %%
# NBVAL_CHECK_OUTPUT
def n_params(module):
    return sum(p.numel() for p in module.parameters())


paper_cfg = cc.CascadeConfig()
with torch.no_grad():
    for name, t, s in [("CE64", cc.make_ce64_task(paper_cfg), 64), ("CE128", cc.make_ce128_task(paper_cfg), 128)]:
        t.generator.eval()
        z = cc.latent(t.generator, torch.zeros(1, 3, s, s))
        y = t.generator(torch.zeros(1, 3, s, s))
        print(f"{name}: input {s}x{s}, latent E(P, M) {tuple(z.shape[1:])}, output {tuple(y.shape[1:])}, "
              f"generator {n_params(t.generator):,} parameters, discriminator {n_params(t.discriminator):,}")
print("centre regime: dropped square", paper_cfg.mask_kwargs(1)["hole"], "px at 128,", paper_cfg.mask_kwargs(2)["hole"], "px at 64")
del t, z, y

# %%
sizes = {name: n_params(t.generator) for name, t in [("CE64", cc.make_ce64_task(base_cfg)), ("CE128", cc.make_ce128_task(base_cfg))]}
print(f"this run: width {width}, D = {bottleneck}: " + ", ".join(f"{k} generator {v:,} parameters" for k, v in sizes.items())
      + f"; precision {precision_used}, device {run.device}")

# %% [markdown]
# ## Training
# For each mask regime: (1) CE64 on 64×64 faces with half-size masks; (2) the baseline CE128;
# (3) the cascade's CE128 on `x = M̄⊙P + M⊙↗F64(↘M̄⊙↘P)` with CE64 frozen. (2) and (3) get the
# same budget, data, batch order, mask draws and initial weights: the pre-fill is the only
# difference. Losses: Pathak's
# 0.999·L_rec + 0.001·L_adv, i.e. the paper's eq. (1) and (2) through the cascade.

# %%
results, histories = {}, {}
for r in regimes:
    cfg_r = pick(params | {"mask_kind": r}, cc.CascadeConfig)
    results[r] = cc.train_regime(cfg_r, train_images, ce64_train, ce128_train, run.output_dir / r, run.checkpoint_dir / r,
                                 sample128=test_images[:n_show], fingerprint_extra={"dataset": dataset, "n_train": len(train_images)}, init_seed=seed)
    histories[r] = {name: h for name, (_, h) in results[r].items()}
fig = cc.loss_curves(histories, "g_rec")
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))
throughput = {f"{r}/{name}": float(h["images_per_s"].median()) for r in regimes for name, h in histories[r].items()}
print("median training throughput (images/s):", {k: round(v, 1) for k, v in throughput.items()})

# %% [markdown]
# ## Evaluation 1 — pixels (beyond the paper)
# The paper gives no pixel metrics. On the test split, with fixed seeded masks, we fill the hole
# with the plain CE128 and with the cascade and measure the hole only: L1 and L2 as % of the value
# range, PSNR and SSIM (Gaussian window), with 95 % bootstrap intervals, and the paired difference
# CCE − CE per image.

# %%
fills, pixel_rows, per_image_all = {}, [], {}
for r in regimes:
    M = eval_masks[r]
    for method, key in [("CE", "ce128"), ("CCE", "cce")]:
        task = results[r][key][0]
        fills[r, method] = torch.cat([
            task.inpaint(truth[i : i + eval_batch_size].to(run.device), M[i : i + eval_batch_size].to(run.device), autocast).float().cpu()
            for i in range(0, len(truth), eval_batch_size)])
        per = metrics.evaluate(fills[r, method], truth, data_range=2.0, mask=M, metrics=("l1_percent", "l2_percent", "psnr", "ssim"))
        per_image_all[r, method] = per
        s = metrics.summarize(per, n_boot=n_boot, seed=seed)
        for m in per:
            pixel_rows.append({"masks": r, "method": method, "metric": m, "mean": s.loc[m, "mean"],
                               "ci_low": s.loc[m, "ci_low"], "ci_high": s.loc[m, "ci_high"]})
    for m in per_image_all[r, "CE"]:
        d = per_image_all[r, "CCE"][m] - per_image_all[r, "CE"][m]
        lo, hi = metrics.bootstrap_ci(d, n_boot=n_boot, seed=seed)
        pixel_rows.append({"masks": r, "method": "CCE − CE", "metric": m, "mean": float(d.mean()), "ci_low": lo, "ci_high": hi})
pixel_table = pd.DataFrame(pixel_rows)
run.save_table(pixel_table, "pixel_metrics", "CE vs cascade CE: hole pixel metrics on the test split (not in the paper)",
               notes=["metrics on the hole pixels only (mask = 1), data range [-1, 1]; L1/L2 in % of the range",
                      "SSIM: mean of the 11×11 Gaussian-window SSIM map over the hole",
                      "CCE − CE: paired per-image difference, 95 % percentile bootstrap interval",
                      f"masks: fixed seeded test masks (seed {10_000 + seed}); random blocks cover ≤ {max_fraction:.0%} of the image"])
display(Markdown((run.output_dir / "pixel_metrics.md").read_text()))

# %% [markdown]
# ### Fig. 4 — original | input | CE | CCE
# The paper's Fig. 4, for both mask regimes (our first test faces, not hand-picked best cases).

# %%
for r in regimes:
    M = eval_masks[r][:n_show]
    rows = [truth[:n_show], cc.drop_region(truth[:n_show], M), fills[r, "CE"][:n_show], fills[r, "CCE"][:n_show]]
    fig = reporting.image_grid(rows, ["original", "input", "CE", "CCE"])
    fig.suptitle(f"{r} masks", y=1.02)
    run.save_figure(fig, f"fig4_{r}")
    plt.close(fig)
    display(Image(run.output_dir / f"fig4_{r}.png"))

# %% [markdown]
# ## Evaluation 2 — NSD (Definitions 3.1–3.2)
# `nsd_k` test faces × the same `nsd_n` random-block masks. **E** is the CE128 encoder's 4000-d
# output `z` (after BatchNorm in eval mode and LeakyReLU — the tensor the decoder reads; set
# `nsd_latent = "linear"` for the pre-activation layer). For the cascade, E is the cascade's CE128
# encoder, whose input already holds CE64's fill: E(P, M) = E₁₂₈(M̄⊙P + M⊙↗F64(↘M̄⊙↘P)). NSD is
# measured on the random-block models: with one central mask every image has n identical inputs
# and NSD = 0 trivially. Per image NSD_j = 1/(D n) Σ_i ‖E(P_j, M_i) − Z̄_j‖²; we report
# mean ± std over images on the raw latents (the paper) and on latents standardised per dimension
# over the k·n latents of each model.

# %%
nsd_regime = "random_blocks" if "random_blocks" in regimes else regimes[0]
k = min(nsd_k, len(test_images))
cfg_nsd = pick(params | {"mask_kind": nsd_regime}, cc.CascadeConfig)
nsd_masks = make_masks(nsd_regime, image_size, nsd_n, seed=20_000 + seed, **cfg_nsd.mask_kwargs(1))
nsd_images = truth[:k]
latents, nsd_results = {}, {}
for method, key in [("CE", "ce128"), ("CCE", "cce")]:
    task = results[nsd_regime][key][0]
    latents[method] = nsd.collect_latents(
        lambda x, m, task=task: cc.encode(task, x.to(run.device), m.to(run.device), nsd_latent, autocast),
        nsd_images, nsd_masks, batch_size=eval_batch_size)
    zs, dropped = nsd.standardise(latents[method])
    nsd_results[method, "raw"] = nsd.nsd(latents[method])
    nsd_results[method, "standardised"] = nsd.nsd(zs)
    nsd_results[method, "dropped"] = dropped
    var = latents[method].reshape(-1, latents[method].shape[-1]).double().var(0, unbiased=False)
    nsd_results[method, "mean_var"] = float(var.mean())
    print(f"{method}: NSD raw {nsd_results[method, 'raw']}, standardised {nsd_results[method, 'standardised']} "
          f"({dropped} constant dims dropped); mean per-dimension variance of the raw latent {var.mean():.3g} "
          f"→ independent latents would give raw NSD ≈ {var.mean():.3g}, not 1")

# %% [markdown]
# ### Fig. 3 — one face, several masks, labelled with ‖E(P, M_i) − Z̄‖²/D
# Top: the masked inputs; below, the CE and CCE fills, each labelled (underneath) with its normalised
# distance to the image's latent centroid Z̄ (over all n masks), raw latents.

# %%
n_fig = min(6, nsd_n)
img0 = nsd_images[:1].expand(n_fig, -1, -1, -1)
m0 = nsd_masks[:n_fig]
rows = [cc.drop_region(img0, m0)]
dist = {}
for method, key in [("CE", "ce128"), ("CCE", "cce")]:
    rows.append(results[nsd_regime][key][0].inpaint(img0.to(run.device), m0.to(run.device), autocast).cpu())
    dist[method] = nsd.normalised_distances(latents[method][0])[:n_fig]
fig = reporting.image_grid(rows, ["input", "CE", "CCE"])
for i, method in enumerate(["CE", "CCE"], start=1):
    for j in range(n_fig):
        fig.axes[i * n_fig + j].set_xlabel(f"{method}: {dist[method][j]:.3g}", fontsize=8)
fig.suptitle(f"normalised distance ‖E − Z̄‖²/D per mask (centroid over n = {nsd_n} masks)", y=1.02)
run.save_figure(fig, "fig3_nsd_examples")
plt.close(fig)
display(Image(run.output_dir / "fig3_nsd_examples.png"))

# %% [markdown]
# ## Paper vs ours
# The paper's numbers are ImageNet with the paper-size networks trained to convergence; ours are
# faces at this profile's budget, so Δ locates our run, it does not test the paper. What should
# transfer is the *ordering* NSD(CCE) < NSD(CE).

# %%
paper = reporting.paper_numbers("cascade2018")
nsd_rows = []
for method in ["CE", "CCE"]:
    for space in ["raw", "standardised"]:
        r_ = nsd_results[method, space]
        nsd_rows.append({"method": method, "latent": space, "metric": "NSD mean",
                         "paper": paper["nsd"][method.lower()]["mean"] if space == "raw" else None, "ours": r_.mean})
        nsd_rows.append({"method": method, "latent": space, "metric": "NSD std over images",
                         "paper": paper["nsd"][method.lower()]["std"] if space == "raw" else None, "ours": r_.std})
nsd_table = reporting.compare(nsd_rows)
nsd_table["k"], nsd_table["n"] = k, nsd_n
nsd_table["D"] = [nsd_results[m, s].d for m in ["CE", "CCE"] for s in ["raw", "standardised"] for _ in range(2)]
run.save_table(
    nsd_table, "nsd_table", "Normalised squared-distortion, CE vs cascade CE: paper (ImageNet) vs ours (faces)",
    notes=[f"paper: {paper['source']}; k = {paper['nsd']['k']}, n = {paper['nsd']['n']}",
           (f"ours: {dataset} test faces, k = {k}, n = {nsd_n} random-block masks (≤ {max_fraction:.0%} of the image), "
            f"latent = {nsd_latent!r} of the CE128 encoder (for CCE: on the CE64-pre-filled input)"),
           "NSD = 1/(D n k) Σ_j Σ_i ‖E(P_j, M_i) − Z̄_j‖²; ± = std of the per-image NSD over the k images (ddof 1)",
           "standardised: every latent dimension z-scored over the k·n latents of that model; there NSD = 1 − between-image share of the variance",
           "the paper gives only raw-latent numbers"])
display(Markdown((run.output_dir / "nsd_table.md").read_text()))
run.save_metrics({
    "nsd": {f"{m}_{s}": {"mean": nsd_results[m, s].mean, "std": nsd_results[m, s].std} for m in ["CE", "CCE"] for s in ["raw", "standardised"]},
    "nsd_k": k, "nsd_n": nsd_n,
    "pixel": {f"{r}_{m}_{row.metric}": row.mean for r in regimes for m in ["CE", "CCE"]
              for row in pixel_table[(pixel_table.masks == r) & (pixel_table.method == m)].itertuples()},
    "train_images_per_s": throughput,
})

# %% [markdown]
# ## Deviation log
# Known differences from the paper and why. Saved as `deviations.md` next to the tables.

# %%
deviations = pd.DataFrame([
    ("dataset", "100,000 ImageNet images", f"{dataset} faces, {len(train_images)} train / {len(test_images)} test",
     "the study is about faces; a folder of natural images can be used through the generic data source"),
    ("training length", "until convergence, Pathak's schedule", f"CE64 {ce64_steps} steps, CE128 and CCE {ce128_steps} steps each × batch {batch_size}, per regime",
     f"CPU budget of the `{profile}` profile; the `paper` profile for a GPU"),
    ("network width", "64 (Pathak)", f"{width}", "CPU budget; D stays 4000 unless the profile says otherwise"),
    ("decoder output", "CE128: Pathak's central patch / full image for random regions", "full image for both regimes",
     "one code path for both mask regimes; the centre geometry (hole − overlap dropped, ×10 overlap band) is Pathak's"),
    ("central hole", "central square", f"{hole - 2 * overlap} px dropped square in {image_size} ({hole} px hole, {overlap} px overlap)", "Pathak's centre geometry"),
    ("L_rec", "‖M ⊙ (P − F(x))‖₂ (eq. 1)", f"mean squared error over the hole + ×{overlap_weight:g} on a {overlap}-px context band",
     "Pathak's reference weighting, which the paper says it keeps; overlap = 0 gives eq. (1) literally (tested)"),
    ("D's input", "D(F(x)) (eq. 2)", "D(M̄⊙P + M⊙F(x)) (the composite)", "the foundation's masked CE; identical inside the hole, and both CE and CCE are trained alike"),
    ("operators ↘ ↗", "not specified", "↘: 2×2 area average (mask: 2×2 max), ↗: bilinear; CE64's input mean-filled",
     "no hidden pixel leaks into CE64; mean fill is what CE64 saw in training"),
    ("NSD masks", "n = 100 random masks", f"n = {nsd_n} random-block masks shared by all k = {k} images, random-block models only",
     "with the central mask all n inputs are identical (NSD = 0)"),
    ("NSD latent", "E(P, M) ~ N(0, I) assumed", f"raw {nsd_latent!r} latent and per-dimension standardised", "the CE bottleneck is not N(0, I); see the summary"),
    ("controlled comparison", "not stated", "CE and CCE: same initial weights, batches, flips and mask draws", "the pre-fill is the only difference"),
    ("precision", "fp32", precision_used, "chosen per profile from `python -m facefill.bench --models cce128 ce64_image`"),
], columns=["aspect", "paper / reference", "ours", "why"])
run.save_table(deviations, "deviations", "Deviation log — cascade context encoder")
deviations

# %% [markdown]
# ## Summary

# %%
raw = {m: nsd_results[m, "raw"] for m in ["CE", "CCE"]}
std_ = {m: nsd_results[m, "standardised"] for m in ["CE", "CCE"]}
held_raw, held_std = raw["CCE"].mean < raw["CE"].mean, std_["CCE"].mean < std_["CE"].mean
pix = {(r, m): pixel_table[(pixel_table.masks == r) & (pixel_table.method == m)].set_index("metric")["mean"] for r in regimes for m in ["CE", "CCE"]}
pixel_sentences = "; ".join(
    f"{r} masks: PSNR {pix[r, 'CE']['psnr']:.2f} dB (CE) vs {pix[r, 'CCE']['psnr']:.2f} dB (CCE), "
    f"L1 {pix[r, 'CE']['l1_percent']:.2f} % vs {pix[r, 'CCE']['l1_percent']:.2f} %" for r in regimes)
display(Markdown(
    f"**NSD (profile `{profile}`, k = {k} faces × n = {nsd_n} random-block masks, D = {raw['CE'].d}).** "
    f"Raw latents (the paper's protocol): CE {raw['CE'].mean:.3f} ± {raw['CE'].std:.3f}, CCE {raw['CCE'].mean:.3f} ± {raw['CCE'].std:.3f} "
    f"(paper, ImageNet: CE {paper['nsd']['ce']['mean']} ± {paper['nsd']['ce']['std']}, CCE {paper['nsd']['cce']['mean']} ± {paper['nsd']['cce']['std']}) — "
    f"NSD(CCE) < NSD(CE) **{'held' if held_raw else 'did not hold'}**. "
    f"Standardised latents: CE {std_['CE'].mean:.3f} ± {std_['CE'].std:.3f}, CCE {std_['CCE'].mean:.3f} ± {std_['CCE'].std:.3f} — "
    f"the ordering **{'held' if held_std else 'did not hold'}**.\n\n"
    f"**Which normalisation makes \"1 = random\" true?** Only the standardised one. On raw latents, independent draws give "
    f"NSD ≈ the mean per-dimension variance of the latent ({nsd_results['CE', 'mean_var']:.3g} for CE, {nsd_results['CCE', 'mean_var']:.3g} for CCE "
    f"here), not 1, so raw NSD mixes the encoder's invariance to the mask with the overall scale of its code (which BatchNorm's "
    f"running statistics and the LeakyReLU set) and raw values of two networks are not comparable. Standardised per dimension over the "
    f"data set, NSD = 1 − (share of the latent's variance explained by the image): 1 means the code depends on the mask only, "
    f"0 on the image only — this is the scale the paper's argument needs. (The V-statistic also gives (n − 1)/n, not 1, for random latents: "
    f"{(nsd_n - 1) / nsd_n:.3f} at n = {nsd_n}.)\n\n"
    f"**Pixels (test split, hole only; not in the paper).** {pixel_sentences}. "
    f"On the NSD masks ({nsd_regime}), the model with the lower raw NSD "
    f"({'CCE' if held_raw else 'CE'}) has the {'higher' if pix[nsd_regime, 'CCE' if held_raw else 'CE']['psnr'] >= pix[nsd_regime, 'CE' if held_raw else 'CCE']['psnr'] else 'lower'} "
    f"hole PSNR — see the paired CCE − CE intervals in the pixel table for whether the difference is resolved at this sample size."
))

# %% [markdown]
# ## Exercises
# 1. Compute NSD of CE64 itself on the downscaled faces. Is the cascade's NSD closer to CE64's or to CE128's, and why
#    might a pre-filled hole make CE128's code less sensitive to the mask *whatever* the quality of the fill?
# 2. Set `nsd_latent = "linear"`. How do raw and standardised NSD change, and which of the two is invariant to a
#    per-dimension affine rescaling of the latent?
# 3. Replace CE64 by a trivial pre-fill (e.g. bilinear upscaling of a blurred, mean-filled image). Does NSD still drop?
#    What does that say about NSD as a measure of *plausibility*?
# 4. The estimator uses the V-statistic. Derive 𝔼 NSD = (n − 1)/n for independent N(0, I) latents and check it with
#    `facefill.nsd.nsd(torch.randn(k, n, D))`.
