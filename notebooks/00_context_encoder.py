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
# encoder–decoder to paint the missing centre of an image from its surroundings. Three of the
# five papers in this study (000 multi-scale CE, 001 cascade CE, 003 semantic inpainting) use it as
# their baseline, so we build it once, faithfully to the reference code (`train.lua`), and measure it.
#
# **The method in one paragraph.** An encoder of 4×4 stride-2 convolutions maps the 128×128 image,
# whose centre 64×64 hole (shrunk by a 4-px overlap) is filled with the mean colour, to a 4000-d
# code; a decoder of up-convolutions maps the code to the 64×64 patch. The loss mixes a weighted L2
# reconstruction (the 4-px overlap border ×10) with an adversarial term from a DCGAN discriminator
# that sees only patches: $L = 0.999\,L_{rec} + 0.001\,L_{adv}$.
#
# Skeleton (the same in every notebook): parameters → data → model → training → evaluation →
# paper vs ours → deviation log → summary → exercises. All logic lives in the `facefill` package;
# this notebook configures, calls and shows.

# %% tags=["parameters"]
# Plain defaults = the `smoke` profile; `dvc repro` injects the active profile from params.yaml.
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/smoke/00_context_encoder"
checkpoint_dir = "build/smoke/models/00_context_encoder"
dataset = "celeba-hq"
n_train = 64
n_test = 16
image_size = 128
hole = 64
overlap = 4
overlap_weight = 10.0
bottleneck = 4000
width = 16
lambda_adv = 0.001
lr_d = 0.0002
lr_g_factor = 10.0
steps = 6
batch_size = 16
precision = "auto"
channels_last = True
device = "auto"
sample_every = 0
checkpoint_every = 3
eval_batch_size = 32
n_boot = 1000

# %%
import matplotlib

matplotlib.use("Agg")  # figures are saved to reports/ and shown inline below
import matplotlib.pyplot as plt
import pandas as pd
import torch
from IPython.display import Image, Markdown, display

from facefill import data, metrics, reporting
from facefill.config import pick
from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask, crop_centre, drop_centre
from facefill.runtime import autocast_factory, resolve_precision
from facefill.train import TrainConfig, evaluate_batches, fit

params = {k: v for k, v in globals().items() if k in reporting.notebook_parameter_names(globals())}
run = reporting.start("00_context_encoder", params)
model_cfg = pick(params, ContextEncoderConfig)
train_cfg = pick(params, TrainConfig)
precision_used = resolve_precision(precision, run.device)

# %% [markdown]
# ## Data
# CelebA-HQ faces resized to 128×128 (the CE's `fineSize`), values in [-1, 1]; the seeded 80/20
# split of `prepare_data` (paper 000's protocol). The context encoder sees the whole face but the
# 56×56 centre (the 64×64 hole minus the 4-px overlap it is allowed to see).

# %%
train_images = data.load_faces(dataset, image_size, "train", n_train, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
test_images = data.load_faces(dataset, image_size, "test", n_test, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
run.describe(dataset=dataset, image_size=image_size, n_train=len(train_images), n_test=len(test_images),
             steps=steps, batch_size=batch_size, precision=precision_used)
print(f"train {train_images.shape}, test {test_images.shape}")
examples = data.to_tensor(test_images[:8])
fig = reporting.image_grid([drop_centre(examples, model_cfg), examples], ["input", "original"])
run.save_figure(fig, "inputs")
plt.close(fig)
display(Image(run.output_dir / "inputs.png"))

# %% [markdown]
# ## Model
# The paper-size network (width 64, 4000-d bottleneck) has 71 M generator parameters; the
# cell below prints the reference sizes (a deterministic check nbval compares) and the size of
# the model this profile trains.

# %%
# NBVAL_CHECK_OUTPUT
def n_params(module):
    return sum(p.numel() for p in module.parameters())


for size, hole_size in [(128, 64), (64, 32)]:
    ref = ContextEncoderTask(ContextEncoderConfig(image_size=size, hole=hole_size))
    print(f"CE{size}: generator {n_params(ref.generator):,} parameters, discriminator {n_params(ref.discriminator):,}")
del ref

# %%
task = ContextEncoderTask(model_cfg)
print(f"this run: width {width}, bottleneck {bottleneck} → generator {n_params(task.generator):,}, "
      f"discriminator {n_params(task.discriminator):,} parameters; precision {precision_used}, device {run.device}")

# %% [markdown]
# ## Training
# Adam (β1 = 0.5), D at `lr_d`, the generator ten times faster; bf16 autocast and channels_last
# where the benchmark (`python -m facefill.bench`) showed they pay. Checkpoints go to
# `checkpoint_dir`; rerunning resumes instead of retraining.

# %%
history = fit(task, train_images, train_cfg, run.output_dir, run.checkpoint_dir, sample_images=test_images[:8],
              fingerprint_extra={"dataset": dataset, "n_train": len(train_images)})
fig = reporting.loss_figure(history, ["g_rec", "g_adv", "d_total"], "context encoder losses")
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))
print(f"median training throughput: {history['images_per_s'].median():.1f} images/s")

# %% [markdown]
# ## Evaluation
# On the test split we fill the 64×64 hole and measure it against the ground truth, on the hole
# only (the known pixels are copied and would inflate every score): L1 and L2 as a percentage of the
# value range (Pathak's "mean L1/L2 loss"), PSNR and SSIM (Wang et al.'s Gaussian window), each with
# a 95 % bootstrap interval over test images.

# %%
autocast = autocast_factory(run.device, precision_used)
filled = evaluate_batches(lambda x: task.inpaint(x, autocast), test_images, eval_batch_size, run.device)
truth = data.to_tensor(test_images)
pred_patch, true_patch = crop_centre(filled, model_cfg), crop_centre(truth, model_cfg)
per_image = {
    "l1_percent": metrics.l1(pred_patch, true_patch, data_range=2.0, percent=True),
    "l2_percent": metrics.l2(pred_patch, true_patch, data_range=2.0, percent=True),
    "psnr": metrics.psnr(pred_patch, true_patch, data_range=2.0),
    "ssim": metrics.ssim((pred_patch + 1) / 2, (true_patch + 1) / 2, data_range=1.0),  # SSIM on [0, 1]: its luminance term is not shift-invariant
}
summary = metrics.summarize(per_image, n_boot=n_boot, seed=seed)
summary

# %%
rows = [drop_centre(truth[:8], model_cfg), filled[:8], truth[:8]]
fig = reporting.image_grid(rows, ["input", "CE", "ground truth"])
run.save_figure(fig, "samples")
plt.close(fig)
display(Image(run.output_dir / "samples.png"))

# %% [markdown]
# ## Paper vs ours
# Pathak et al. report Paris StreetView (Table 2). We train on faces, at this profile's budget, so
# the comparison locates our run, it does not test the paper: faces are smoother than street
# facades (lower L1/L2 expected), and a short CPU budget is far from the paper's 100k+ iterations.

# %%
paper = reporting.paper_numbers("pathak2016")
table = reporting.compare(
    {"metric": m, "paper": paper["metrics"].get(m), "ours": summary.loc[m, "mean"],
     "ci_low": summary.loc[m, "ci_low"], "ci_high": summary.loc[m, "ci_high"]}
    for m in ["l1_percent", "l2_percent", "psnr", "ssim"]
)
run.save_table(
    table, "paper_vs_ours", "Context encoder, centre 64×64 hole: Pathak et al. (Paris StreetView) vs ours (faces)",
    notes=[f"paper: {paper['source']}", f"ours: {dataset} test split, metrics on the 64×64 hole, data range [-1, 1]",
           "SSIM on images mapped to [0, 1], 11×11 Gaussian window σ = 1.5 (Wang et al. 2004); the paper reports no SSIM"],
)
run.save_metrics({k: {"mean": summary.loc[k, "mean"], "ci_low": summary.loc[k, "ci_low"], "ci_high": summary.loc[k, "ci_high"]}
                  for k in per_image} | {"n_test": len(test_images), "steps": steps,
                                          "train_images_per_s": float(history["images_per_s"].median())})
display(Markdown((run.output_dir / "paper_vs_ours.md").read_text()))

# %% [markdown]
# ## Deviation log
# Known differences from Pathak et al. and why. Saved as `deviations.md` next to the tables.

# %%
deviations = pd.DataFrame([
    ("dataset", "Paris StreetView / ImageNet", f"{dataset} faces at {image_size} px", "the study is about faces; the paper's datasets are not available offline"),
    ("training length", "until convergence (~100k+ iterations)", f"{steps} steps × batch {batch_size} (profile {profile})", "CPU budget of the profile; `paper` profile for a GPU"),
    ("bottleneck layers", "4×4 valid conv / up-conv", "Linear + reshape", "identical maths (tested), several times faster on CPU"),
    ("learning rates", "train.lua: one lr for both nets; paper text: G 10× D", "D 2e-4, G 2e-3", "we follow the paper text, as the foundation issue asks"),
    ("precision", "fp32", precision_used, "bf16 autocast where the benchmark shows a speed-up; BatchNorm and losses stay fp32"),
    ("augmentation", "random crops of 350-px loads", "horizontal flips only", "aligned face crops; random crops would move the centre hole off the face"),
], columns=["aspect", "paper / reference", "ours", "why"])
run.save_table(deviations, "deviations", "Deviation log — context encoder")
deviations

# %% [markdown]
# ## Summary

# %%
s = summary["mean"]
display(Markdown(
    f"On {len(test_images)} held-out {dataset} faces, after {steps} steps (profile `{profile}`), the context encoder fills "
    f"the 64×64 centre hole with mean L1 {s['l1_percent']:.2f} % and L2 {s['l2_percent']:.2f} % of the value range, "
    f"PSNR {s['psnr']:.2f} dB and SSIM {s['ssim']:.3f} (Pathak et al. on Paris StreetView: L1 {paper['metrics']['l1_percent']} %, "
    f"L2 {paper['metrics']['l2_percent']} %, PSNR {paper['metrics']['psnr']} dB)."
))

# %% [markdown]
# ## Exercises
# 1. Set `lambda_adv = 0` (pure L2) and compare the sample grid: why are the fills blurrier?
# 2. Set `overlap = 0`. What happens at the seam between the patch and the context?
# 3. Shrink `bottleneck` to 100. How much do the metrics drop, and why does the paper argue for a
#    channel-wise fully-connected layer instead of a plain convolution here?
# 4. Run `python -m facefill.bench` and explain why bf16 helps the convolutions but the 4000-d
#    bottleneck needed to be written as a Linear layer to profit.
