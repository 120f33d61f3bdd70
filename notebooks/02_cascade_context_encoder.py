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
# # 02 · Cascade context encoder and the NSD measure (Zieliński et al., 2018)
#
# *Cascade context encoder for improved inpainting* lets a small context encoder (notebook 00)
# **pre-fill** the hole of a larger one: downscale, let the small CE paint, upscale its fill into the
# hole, train the large CE on that input. The evidence is the **normalised squared-distortion** (NSD):
# how far one image's latent moves when the mask changes — 0.56 ± 0.17 (cascade) vs 0.79 ± 0.17 (CE).
#
# We test it with two controls the paper lacks: a CE given the cascade's **total compute**, and a CE
# trained on a **blur pre-fill that learns nothing** — any pre-fill makes the input depend less on the
# mask. Pixel metrics and learning-free baselines stand next to every learned result. The plumbing
# lives in `facefill.experiments.cascade2018`.
# After `make repro`, `profile = "default"` reuses the pipeline's values and checkpoints.

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
n_val = 8
n_test = 8
n_seeds = 2
image_size = 64
hole = 32
overlap = 2
overlap_weight = 10.0
bottleneck = 64
width = 8
lambda_adv = 0.001
lr_d = 0.0002
lr_g_factor = 10.0
mask_kind = "random_blocks"
max_fraction = 0.25
blur_sigma = 0.125
small_steps = 3
large_steps = 3
lr_decay_start = 0.5
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

# %%
import inspect

from IPython.display import Image, Markdown, display

from facefill import reporting, verdicts
from facefill.experiments.cascade2018 import CascadeStudy
from facefill.models import cascade as cc

reporting.use_pipeline_backend()
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

run = reporting.start("02_cascade_context_encoder", globals())
params = run.params
study = CascadeStudy(params, run)
study.load()

# %% [markdown]
# ## Method
# With $M$ the mask (1 = dropped), $\bar M = 1 - M$, ↘ halving (2×2 average) and ↗ doubling
# (bilinear) the resolution, the cascade's large CE $F$ sees (§4.2, eq. 1)
#
# $$x = \bar M \odot P + M \odot {\nearrow} F_{small}({\searrow}\bar M \odot {\searrow} P),
# \qquad L_{rec} = \lVert M \odot (P - F(x))\rVert_2 ,$$
#
# with the small CE frozen, and Pathak's $0.999\,L_{rec} + 0.001\,L_{adv}$. The **blur control**
# replaces $F_{small}$ by a normalised Gaussian blur of the known pixels, $B$; the **CE** sees the
# mean-filled hole. For an encoder $E$, $k$ images and the same $n$ masks, Definition 3.2 is
# $$\mathrm{NSD} = \frac{1}{Dnk}\sum_{j}\sum_{i}\lVert E(P_j, M_i) - \bar Z_j\rVert^2, \qquad
# \bar Z_j = \tfrac1n \textstyle\sum_i E(P_j, M_i),$$
#
# normalised so that a latent drawn from $N(0, I)$ regardless of the image gives 1.

# %%
print(inspect.getsource(cc.CascadeContextEncoderTask.drop) + inspect.getsource(cc.BlurPrefillContextEncoderTask.drop))

# %%
# NBVAL_CHECK_OUTPUT
def n_params(module):
    return sum(p.numel() for p in module.parameters())


paper_cfg = cc.CascadeConfig(mask_kind="random_blocks")
for name, t in [("CE64", cc.make_ce64_task(paper_cfg)), ("CE128", cc.make_ce128_task(paper_cfg))]:
    print(f"{name} (paper size, full-image output): generator {n_params(t.generator):,} parameters, latent D = {paper_cfg.bottleneck}")
del t

# %% [markdown]
# The cascade trains two networks, so the plain CE gets the cascade's **total** compute: FLOPs of one
# training step of each task (the cascade's includes the frozen small CE's forward) set the CE's steps.

# %%
study.compute_match()
run.save_table(study.compute_table(), "compute", "Training compute per arm (one seed)",
               notes=["FLOPs of convolutions and matrix products, forward + backward, counted by torch.utils.flop_counter"])
display(Markdown((run.output_dir / "compute.md").read_text()))

# %% [markdown]
# ## Experiments
# Per seed: the small CE, then the CCE, the blur control and the CE (same initial weights, batches and
# masks). Each run logs its validation hole MSE ≥ 20 times: the convergence gate's curve.

# %%
runs = study.train()
fig = reporting.loss_figure_runs(study.curves(), ["g_rec", "val_rec"], "Training and validation reconstruction error")
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))

# %% [markdown]
# The cascade's key intermediate — the small CE's upscaled fill, what the cascade's large CE sees in
# the hole — and the blur control's pre-fill, then the three arms' fills.

# %%
truth, masks = study.tensor("main")[:8], study.masks["main"][:8]
pre = study.prefills(truth, masks)
rows = [cc.drop_region(truth, masks), *pre.values(), *(study.fill(runs[a][0].task, truth, masks) for a in ("CCE", "blur control", "CE")), truth]
fig = reporting.image_grid(rows, ["input", *pre, "CCE", "blur control", study.label("CE"), "ground truth"])
run.save_figure(fig, "prefill_and_fills")
plt.close(fig)
display(Image(run.output_dir / "prefill_and_fills.png"))

# %% [markdown]
# Every learned fill next to learning-free fills on the same faces and masks: the trivial *mean
# colour* and *mean training face* (the sanity gate), Telea and biharmonic, and the two pre-fills alone.

# %%
table = study.evaluate()
run.save_table(table, "results", "Hole pixel metrics: learned arms vs learning-free fills (test split)",
               notes=["images on [0, 1]: L1/L2 in % of the range, PSNR in dB, SSIM = mean of the 11×11 Gaussian SSIM map over the hole",
                      "learned arms and the small CE's pre-fill: mean over training seeds; per-image values in arrays.npz"])
display(Markdown((run.output_dir / "results.md").read_text()))

# %% [markdown]
# **NSD** of each trained encoder (`nsd_k` test faces × the same `nsd_n` masks), an untrained encoder and
# the input pixels. *Standardised*: each dimension z-scored first; NSD = the variance share the mask explains.

# %%
nsd_table = study.measure_nsd()
run.save_table(nsd_table, "nsd", "NSD of the encoders' latents and of learning-free references",
               notes=[f"k = {min(nsd_k, n_test)} test faces × n = {nsd_n} {mask_kind} masks; raw = Definition 3.2 on the '{nsd_latent}' latent",
                      "± over images: std of the per-image NSD; trained encoders: mean over seeds; untrained: seed 0's initial weights"])
display(Markdown((run.output_dir / "nsd.md").read_text()))

# %% [markdown]
# ## Paper vs ours
# The paper's NSD is ImageNet at 64 → 128 px with converged paper-size networks; ours locates our
# run. The claims are decided by `facefill.verdicts` from the per-image arrays (convergence and
# sanity gates, two-level bootstrap over seeds then images, Holm within the paper).

# %%
run.save_table(study.paper_nsd_table(), "paper_vs_ours", "NSD: Zieliński et al. (ImageNet) vs ours (faces)",
               notes=[f"paper: {study.paper['source']}; k = {study.paper['nsd']['k']}, n = {study.paper['nsd']['n']}"])
display(Markdown((run.output_dir / "paper_vs_ours.md").read_text()))
records = study.decide()
display(Markdown(verdicts.render_claims_markdown(records)))
run.save_table(study.deviations(), "deviations", "Deviation log — cascade context encoder")
display(Markdown((run.output_dir / "deviations.md").read_text()))

# %% [markdown]
# ## Summary

# %%
run.save_metrics(study.headline(table))
display(Markdown(study.summary(table, records) + "\n\n" + study.scale_explanation()))

# %% [markdown]
# ## Exercises
# 1. Set `mask_kind = "center"` (Pathak's square). Why is NSD then 0 for every encoder, whatever it learned?
# 2. Set `blur_sigma` to 0.02 and to 0.5. How does the blur control's NSD move, and what does that say
#    about NSD as a measure of *plausibility*?
# 3. Derive 𝔼 NSD = (n − 1)/n for latents drawn from N(0, I); check with `facefill.nsd.nsd(torch.randn(k, n, D))`.
# 4. Scale the latent by 10. Which of raw and standardised NSD changes? Can raw NSDs of two networks be compared?
