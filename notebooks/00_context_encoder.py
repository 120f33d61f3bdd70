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
# # 00 · Context encoder (Pathak et al., 2016) — the baseline of every paper here
#
# *Context Encoders: Feature Learning by Inpainting* (CVPR 2016) trains a convolutional
# encoder–decoder to paint the missing centre of an image from its surroundings. Papers 000, 001
# and 003 of this study use it as their baseline, so we build it once, faithfully to `train.lua`,
# and ask first whether it is a baseline worth beating: does it fill faces better than methods
# that learn nothing?
#
# Every notebook has the same skeleton: parameters → method → experiments → paper vs ours →
# summary → exercises. The plumbing lives in `facefill.experiments.pathak2016`.
#
# **Explore the trained models.** After `make repro`, set `profile = "default"` below and rerun:
# the pipeline's values are used and its checkpoints resume instead of retraining.

# %% tags=["parameters"]
# Plain defaults = the `smoke` profile; `dvc repro` injects the active profile from params.yaml.
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/smoke/00_context_encoder"
checkpoint_dir = "build/smoke/models/00_context_encoder"
dataset = "celeba-hq"
transfer_dataset = "lfw"
n_train = 64
n_val = 16
n_test = 16
n_seeds = 2
image_size = 128
hole = 64
overlap = 4
overlap_weight = 10.0
bottleneck = 1000
width = 16
lambda_adv = 0.001
lr_d = 0.0002
lr_g_factor = 10.0
steps = 6
lr_decay_start = 0.5
batch_size = 16
precision = "auto"
channels_last = True
device = "auto"
sample_every = 0
checkpoint_every = 3
eval_batch_size = 32

# %%
import inspect

from IPython.display import Image, Markdown, display

from facefill import adversarial, data, reporting, verdicts
from facefill.experiments.pathak2016 import ContextEncoderStudy
from facefill.models import context_encoder

reporting.use_pipeline_backend()
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

run = reporting.start("00_context_encoder", globals())
params = run.params
study = ContextEncoderStudy(params, run)
study.load()

# %% [markdown]
# ## Method
# The encoder sees a 128×128 face whose centre square — the 64×64 hole shrunk by a 4-px
# overlap — is filled with a constant colour. Strided 4×4 convolutions map it to a 4×4×512 map, a
# full FC layer (`train.lua`; the paper describes a *channel-wise* FC) to a code $z$, and
# up-convolutions map $z$ to the 64×64 patch $\hat x = G(x_{ctx})$. The generator minimises
#
# $$L_G = \lambda_{rec}\,\lVert W \odot (\hat x - x)\rVert_2^2 + \lambda_{adv}\,\big(-\log D(\hat x)\big),
# \qquad \lambda_{rec} = 0.999,\ \lambda_{adv} = 0.001,$$
#
# where $W$ weights the overlap ring ×10; the discriminator $D$ sees real and generated patches.
# At test time only the inner square is pasted (`test.lua`): the ring keeps the real pixels.

# %%
examples = data.to_tensor(study.images["main"][:8])
fig = reporting.image_grid([study.masked_input(examples), examples], ["encoder input", "original"])
run.save_figure(fig, "inputs")
plt.close(fig)
display(Image(run.output_dir / "inputs.png"))

# %% [markdown]
# One adversarial step, shared by every GAN of the study: D first on real vs detached fake
# patches, then G on the weighted sum above. The context encoder only says what differs — the
# generator's input, what D sees, and the reconstruction loss:

# %%
print(inspect.getsource(adversarial.AdversarialTask.training_step))
print(inspect.getsource(context_encoder.ContextEncoderTask))

# %%
# NBVAL_CHECK_OUTPUT
def n_params(module):
    return sum(p.numel() for p in module.parameters())


for size, hole_size in [(128, 64), (64, 32)]:
    ref = context_encoder.ContextEncoderTask(context_encoder.ContextEncoderConfig(image_size=size, hole=hole_size))
    print(f"CE{size} (paper size): generator {n_params(ref.generator):,} parameters, discriminator {n_params(ref.discriminator):,}")
del ref

# %% [markdown]
# ## Experiments
# Each seed trains on the training split; every few steps the reconstruction error on the
# *validation* faces is logged — the curve the convergence gate reads. Test faces are scored once,
# at the end.

# %%
runs = study.train()
print(f"this run: width {width}, bottleneck {bottleneck} → generator {n_params(runs[0].task.generator):,} parameters; "
      f"{study.precision} on {run.device}; median {runs[0].history['images_per_s'].median():.0f} images/s")
fig = reporting.loss_figure_runs({f"CE seed {r.seed}": r.history for r in runs}, ["g_rec", "val_rec"], "CE: training and validation reconstruction error")
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))

# %% [markdown]
# Every learned result stands next to learning-free fills **on the same images and masks**, each
# given exactly the pixels the encoder sees: the trivial *mean colour* and *mean training face*
# (the sanity gate), and the classical Telea and biharmonic inpainting (claims of their own).

# %%
table = study.evaluate()
run.save_table(table, "results", "Centre hole: CE vs learning-free baselines (inner square, test split)",
               notes=["L1/L2 in % of the value range, PSNR in dB (range [-1, 1]), SSIM on [0, 1] (Gaussian window 11, σ 1.5)",
                      "CE: mean over training seeds; per-image values in arrays.npz"])
display(Markdown((run.output_dir / "results.md").read_text()))

# %%
truth = data.to_tensor(study.images["main"][:8])
rows = [study.masked_input(truth)] + [study.filled["main"][k][:8] for k in study.filled["main"]] + [truth]
fig = reporting.image_grid(rows, ["input", *study.filled["main"], "ground truth"])
run.save_figure(fig, "samples")
plt.close(fig)
display(Image(run.output_dir / "samples.png"))

# %% [markdown]
# The same models on LFW (trained on CelebA-HQ), whose faces are smaller in the frame and less aligned.

# %%
truth = data.to_tensor(study.images["transfer"][:8])
rows = [study.masked_input(truth), study.filled["transfer"][f"CE seed {runs[0].seed}"][:8], study.filled["transfer"]["Telea"][:8], truth]
fig = reporting.image_grid(rows, ["input", "CE", "Telea", "ground truth"])
run.save_figure(fig, "samples_transfer")
plt.close(fig)
display(Image(run.output_dir / "samples_transfer.png"))

# %% [markdown]
# ## Paper vs ours
# Pathak et al. report Paris StreetView (Table 2), not faces, so the table *locates* our run; it
# does not test the paper. What we can test is whether our CE is a baseline worth comparing
# against: the claims below, each decided by `facefill.verdicts` from the per-image arrays
# (convergence gate on every seed's validation curve, sanity gate against the trivial fills,
# paired two-level bootstrap, Holm within the paper). The `scorecard` stage recomputes them.

# %%
run.save_table(study.paper_table(table), "paper_vs_ours", "Context encoder: Pathak et al. (Paris StreetView) vs ours (faces)",
               notes=[f"paper: {study.paper['source']}", "ours: CE mean over seeds, inner square of the hole, test split"])
display(Markdown((run.output_dir / "paper_vs_ours.md").read_text()))
records = study.decide()
display(Markdown(verdicts.render_claims_markdown(records)))

# %%
deviations = run.save_table(study.deviations(), "deviations", "Deviation log — context encoder")
deviations

# %% [markdown]
# ## Summary

# %%
summary = study.summary(table, records)
run.save_metrics(study.headline(table))
display(Markdown(summary))

# %% [markdown]
# ## Exercises
# 1. Set `lambda_adv = 0` (pure L2) and compare the sample grids: why are the fills blurrier, and
#    does PSNR go up or down?
# 2. Set `overlap = 0`. What happens at the seam between the patch and the context?
# 3. Why is the mean training face such a strong trivial baseline for SSIM on aligned faces, and
#    why is it much weaker on LFW?
# 4. Shrink `bottleneck` to 100. How much do the metrics drop? The paper argues for a channel-wise
#    fully-connected layer; `train.lua` uses a full one. How many parameters does each need here?
