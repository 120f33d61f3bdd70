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
# # 05 · SRGAN super-resolution of faces (paper 004)
#
# *Super resolution of occluded or unclear faces using generative adversarial networks* (Nair,
# Soni, Subramani, Yang) re-implements **SRGAN** (Ledig et al., CVPR 2017) for faces: whole CelebA
# images are Lanczos-resampled to HR 64×64 and LR 32×32 (×2), a generator learns LR → HR, and the
# model is applied frame by frame to video. The paper shows figures only, so we test what its method
# claims: does SRGAN beat interpolation, does the *adversarial* term change anything, are faces still
# recognisable, and what happens at ×4 and on occluded faces? Plumbing: `facefill.experiments.srgan_faces2020`.
#
# **Explore the trained models.** After `make repro`, set `profile = "default"` below and rerun:
# the pipeline's values are used and its checkpoints resume instead of retraining.

# %% tags=["parameters"]
# Plain defaults = the `smoke` profile; `dvc repro` injects the active profile from params.yaml.
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/smoke/05_srgan_faces"
checkpoint_dir = "build/smoke/models/05_srgan_faces"
experiments = ["celeba/64/2", "celeba/64/4"]
n_train = 16
n_val = 4
n_test = 8
n_seeds = 1
n_blocks = 2
width = 16
d_width = 16
d_dense = 64
lambda_adv = 0.001
lr = 0.0001
gan_lr = 0.0001
beta1 = 0.9
content = "effnet_lite0"
content_layer = "3"
content_scale = 0.0784313725
vgg_weights = None
calibration_images = 16
resnet_steps = 3
resnet_lr_decay_start = 0.5
gan_steps = 2
batch_size = 4
precision = "auto"
channels_last = True
device = "auto"
checkpoint_every = 100
eval_batch_size = 32
occlusion_fraction = 0.15
video_frames = 8
video_fps = 8

# %%
import inspect

from IPython.display import Image, Markdown, display

from facefill import data, reporting, verdicts, video
from facefill.experiments.srgan_faces2020 import SRGANStudy
from facefill.models import srgan

reporting.use_pipeline_backend()
import matplotlib.pyplot as plt  # noqa: E402  (after the backend choice)

run = reporting.start("05_srgan_faces", globals())
params = run.params
study = SRGANStudy(params, run)
study.load()

# %% [markdown]
# ## Method
# **G (SRResNet):** 9×9 conv, B residual blocks (conv-BN-PReLU-conv-BN), global skip, a sub-pixel block
# (conv, PixelShuffle ×2, PReLU) per factor 2, 9×9 conv, tanh. **D:** eight 3×3 convs (64 → 512),
# dense 1024, dense 1. G is first trained on pixel MSE (SRResNet), then on the *perceptual loss*
#
# $$l^{SR} = l^{SR}_X + \lambda_{adv}\,\big(-\log D(G(I^{LR}))\big), \qquad \lambda_{adv} = 10^{-3},$$
#
# content $l^{SR}_X = s^2\,\mathrm{MSE}(\varphi(G(I^{LR})), \varphi(I^{HR}))$. Ledig: φ = VGG19, $s = 1/12.75$;
# offline φ = EfficientNet-Lite0, and $s$ is **measured** so that content = pixel MSE on bicubic
# reconstructions — else λ_adv weighs the adversarial term against a loss of another size.

# %%
calibration = run.save_table(study.calibrate(), "calibration", "Content-loss scale of the EfficientNet-Lite0 substitute, measured on training faces",
                             notes=["s = sqrt(pixel MSE / feature MSE) on bicubic reconstructions; the fixed 1/12.75 column shows what VGG's factor gave"])
for row in calibration.to_dict("records"):
    print(f"{row['experiment']}: content scale s = {row['scale s']:.5f} (VGG's 1/12.75 made the content {row['content / pixel MSE with 1/12.75']:.1f}× the pixel MSE)")

# %% [markdown]
# SRGAN uses the D-then-G step every GAN here shares; with λ_adv = 0 it is the **control** (no D):

# %%
print(inspect.getsource(srgan.SRGANTask._content_step))
full = srgan.n_params(srgan.Generator(2)) + srgan.n_params(srgan.Discriminator(64))
print(f"Ledig-size G ×2 + D 64 px: {full:,} parameters (paper 004: 14 M); this run: G {srgan.n_params(srgan.Generator(2, n_blocks, width)):,}")

# %% [markdown]
# ## Experiments
# Per seed: SRResNet (pixel MSE, `lr`), then from it three arms, fresh Adam at `gan_lr` (Ledig's
# 10⁻⁴): **SRGAN**, **control** (same content, λ_adv = 0), **MSE-continued** (pixel MSE, λ_adv = 0).
# SRGAN − control = the adversarial effect. ×4: SRResNet + SRGAN. Validation logged ≥ 20× per run.

# %%
runs = study.train()
training = run.save_table(study.training_table(), "training", "Training: steps, images seen, epochs, adversarial share of the generator loss",
                          notes=["adv share = λ_adv·l_Gen / l^SR, mean over logged steps (0 for the λ_adv = 0 arms)",
                                 f"paper 004's 'iterations': {study.paper['iteration_reading']}"])
display(Markdown((run.output_dir / "training.md").read_text()))
share = study.adversarial_share()
print("adversarial share of SRGAN's generator loss:", ", ".join(f"{r.experiment} {r.mean:.2%} (seeds {r.min:.2%}–{r.max:.2%})" for r in share.itertuples()))
main_runs = {f"{r.arm} seed {r.seed}": r.history for r in runs if r.exp == study.main and r.arm != "SRResNet"}
fig = reporting.loss_figure_runs(main_runs, ["val_mse", "g_mse"], f"GAN phase ({study.main.tag}): validation and training pixel MSE")
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))

# %% [markdown]
# Baselines on the same LR images: **nearest** (trivial; the sanity gate), **bicubic**, **Lanczos**.
# PSNR/SSIM on Y and RGB. Probes no model was trained on: **identity distance** (dlib descriptors of SR
# vs HR on the face box; same person ≲ 0.6) and the **high-frequency ratio** (SR/HR spectral energy
# above the LR Nyquist frequency; 1 = the real face's fine detail).

# %%
table = run.save_table(study.evaluate(), "results", "SR on held-out faces: learned models vs interpolation",
                       notes=["PSNR in dB, SSIM (11×11 Gaussian, σ 1.5) on Y (16–235) and RGB, range 255; border = scale",
                              "trained rows: mean over seeds; per-image values in arrays.npz; identity only on the main experiment",
                              "*_occluded: the ×2 models fed LR faces with a grey block; scored against the unoccluded HR face"])
display(Markdown((run.output_dir / "results.md").read_text()))

# %%
for kind in ("samples", "samples_occluded"):
    fig = reporting.image_grid(*study.sample_rows(occluded=kind.endswith("occluded")))
    run.save_figure(fig, kind)
    plt.close(fig)
    display(Image(run.output_dir / f"{kind}.png"))

# %% [markdown]
# **Video (§II-B).** ChokePoint is not available offline: we pan over a CelebA-HQ test face, write the LR MP4 and
# run `video.upscale_video(path_in, path_out, model)` on it — it works on any video file.

# %%
big = max(study.exps, key=lambda x: x.scale)
face = data.load_faces("celeba-hq", 250, "test", 1, data_dir=data_dir, processed_dir=processed_dir, seed=seed)[0]  # a sharp face to pan over
clip = video.pan_zoom_clip(face, video_frames, big.hr)
lr_path = video.write_video(srgan.make_lr(clip, big.scale), run.output_dir / "video_lr.mp4", fps=video_fps)
gen = next(r.generator for r in runs if r.exp == big and r.arm == "SRGAN")
stats = video.upscale_video(lr_path, run.output_dir / "video_sr.mp4", gen, device=run.device, side_by_side=True, progress=False)
frames, _ = video.read_video(stats["path"])
fig = reporting.image_grid([data.to_tensor(frames[:: max(1, len(frames) // 4)][:4])], ["LR (nearest) | SRGAN"], scale=2.4)
run.save_figure(fig, "video_frames")
plt.close(fig)
display(Image(run.output_dir / "video_frames.png"))
print(f"{stats['frames']} frames {stats['lr_size']} → {stats['out_size']}, {stats['sr_frames_per_s']:.1f} frames/s on {run.device}")

# %% [markdown]
# ## Paper vs ours
# Paper 004 reports no PSNR/SSIM, only model size, "iterations" (read as epochs: see the table) and run
# times. Claims are decided by `facefill.verdicts` from per-image arrays: convergence gate per seed,
# sanity gate vs nearest, paired two-level bootstrap, Holm, ≥ 3 seeds per trained arm.

# %%
run.save_table(study.paper_table(table), "paper_vs_ours", "SRGAN for faces: paper 004 vs ours",
               notes=[f"paper: {study.paper['source']}", f"iterations: {study.paper['iteration_reading']}"])
display(Markdown((run.output_dir / "paper_vs_ours.md").read_text()))
records = study.decide()
display(Markdown(verdicts.render_claims_markdown(records)))
deviations = run.save_table(study.deviations(), "deviations", "Deviation log — SRGAN faces (paper 004)")
deviations

# %% [markdown]
# ## Summary

# %%
summary = study.summary(table, records)
run.save_metrics(study.headline(table))
display(Markdown(summary))

# %% [markdown]
# ## Exercises
# 1. Set `lambda_adv = 0.01`. How do the adversarial share, the high-frequency ratio and PSNR move?
# 2. With VGG's fixed 1/12.75 instead of the calibration, what share of L_G is adversarial?
# 3. Set `gan_lr = lr` and look at the training MSE of the first GAN steps in `history.csv`.
# 4. Raise `occlusion_fraction` to 0.3. Does SRGAN fill the block with face-like texture or grey?
# 5. Run `video.upscale_video` on a video of your own, downscaled so that the face is about 32 px.
