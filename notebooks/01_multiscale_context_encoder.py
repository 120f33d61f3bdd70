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
# # 01 · Multi-scale context encoder (Do, Nguyen & Nguyen, 2020)
#
# *A multi-scale context encoder for high quality restoration of facial images* keeps Pathak et
# al.'s context encoder (notebook 00) and replaces its single encoder by **three sub-encoders** that
# read the masked 250×250 face and its 125×125 and 63×63 downscales. Each ends at a 16×16×512 map;
# the three maps are **added** (16×16×512) or **concatenated** (16×16×1536) and a small decoder of
# upsamplings and 3×3 convolutions paints the 64×64 hole. The paper reports, on CelebA-HQ and LFW,
# that the multi-scale CE (MCE) has a slightly *higher* L1 than the CE but a higher MS-SSIM
# (Tables IV, V), and that addition is about as good as concatenation but "much faster".
#
# **What we test.** Both methods fill *the same* 64×64 centre hole of *the same* 250×250 test face:
# the CE works in Pathak's own geometry, on the 128×128 context crop centred on the hole (no
# resizing), the MCE on the whole 250×250 image. Metrics are computed on those 64×64 hole pixels.
#
# Skeleton: parameters → data → model → training → evaluation → paper vs ours (Tables IV, V) →
# aggregation study → figures 2, 3 → deviation log → summary → exercises. The maths lives in
# `facefill/models/multiscale.py`.

# %% tags=["parameters"]
# Plain defaults = the `smoke` profile; `dvc repro` injects the active profile from params.yaml.
profile = "smoke"
seed = 0
data_dir = None
processed_dir = "data/processed"
output_dir = "build/smoke/01_multiscale_context_encoder"
checkpoint_dir = "build/smoke/models/01_multiscale_context_encoder"
datasets = ["celeba-hq", "lfw"]
study_dataset = "celeba-hq"
table_aggregation = "add"
n_train = 16
n_test = 8
image_size = 250
hole = 64
overlap = 4
overlap_weight = 10.0
width = 4
d_width = 8
rec_loss = "l2"
ms_ssim_alpha = 0.84
lambda_adv = 0.001
optimizer = "adam"
lr = 0.002
lr_d = 0.0002
momentum = 0.5
lr_decay = 0.9
lr_decay_every = 0
ce_width = 8
ce_bottleneck = 500
ce_lr_d = 0.0002
ce_lr_g_factor = 10.0
steps = 2
batch_size = 4
precision = "fp32"
ce_precision = "fp32"
channels_last = True
device = "auto"
sample_every = 0
checkpoint_every = 2
eval_batch_size = 8
n_boot = 200
n_figure = 6

# %%
import dataclasses
import time

from facefill.reporting import use_pipeline_backend

use_pipeline_backend()  # Agg when `pipeline run` executes the notebook; Jupyter keeps its inline backend
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from IPython.display import Image, Markdown, display

from facefill import data, metrics, reporting
from facefill.config import pick
from facefill.errors import ConfigError
from facefill.models import multiscale as ms
from facefill.models.context_encoder import (
    ContextEncoderConfig,
    ContextEncoderTask,
    crop_centre,
)
from facefill.runtime import autocast_factory, resolve_precision
from facefill.train import TrainConfig, evaluate_batches, fit

run = reporting.start("01_multiscale_context_encoder", globals())
params = run.params
mce_cfg = pick(params, ms.MultiScaleConfig)  # aggregation is set per run below
ce_cfg = pick(params, ContextEncoderConfig, rename={"width": "ce_width", "bottleneck": "ce_bottleneck", "lr_d": "ce_lr_d",
                                                    "lr_g_factor": "ce_lr_g_factor", "image_size": "ce_image_size"})
train_cfg = pick(params, TrainConfig)
precision_used = resolve_precision(precision, run.device)
ce_precision_used = resolve_precision(ce_precision, run.device)
autocast = autocast_factory(run.device, precision_used)
ce_autocast = autocast_factory(run.device, ce_precision_used)
ce_train_cfg = dataclasses.replace(train_cfg, precision=ce_precision_used)
if table_aggregation not in ms.AGGREGATIONS or study_dataset not in datasets:
    raise ConfigError(f"table_aggregation={table_aggregation!r} must be one of {ms.AGGREGATIONS} and "
                      f"study_dataset={study_dataset!r} one of datasets={datasets}.")
crop_top, crop_left = ms.context_crop_box(image_size, hole, ce_cfg.image_size)
print(f"hole box in the {image_size}-px image: {mce_cfg.hole_box}; CE context crop: rows/cols {crop_top}..{crop_top + ce_cfg.image_size}")

# %% [markdown]
# ## Data
# LFW deep-funneled is natively 250×250 — exactly the paper's input; CelebA-HQ (256×256 here) is
# resized to 250. Both use the seeded 80/20 split of `prepare_data` (Table III's protocol); the
# profile takes the first `n_train` / `n_test` faces of each split. The hole, shrunk by the 4-px
# overlap both methods may see (Pathak's convention, applied to both), is filled with the CE's
# mean colour.

# %%
faces = {}
for ds in datasets:
    tr = data.load_faces(ds, image_size, "train", n_train, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
    te = data.load_faces(ds, image_size, "test", n_test, data_dir=data_dir, processed_dir=processed_dir, seed=seed)
    faces[ds] = (tr, te)
    print(f"{ds}: train {tr.shape}, test {te.shape}")
run.describe(datasets="+".join(datasets), image_size=image_size,
             n_train="/".join(str(len(faces[d][0])) for d in datasets),
             n_test="/".join(str(len(faces[d][1])) for d in datasets),
             steps=steps, batch_size=batch_size, precision=f"MCE {precision_used} / CE {ce_precision_used}", mce_width=width)


def context_crop(images_uint8):
    """The CE's 128×128 input: the window of the 250×250 face centred on the hole (same pixels, no resizing)."""
    s = ce_cfg.image_size
    return np.ascontiguousarray(images_uint8[:, crop_top : crop_top + s, crop_left : crop_left + s])


examples = data.to_tensor(faces[datasets[0]][1][:n_figure])
levels = ms.pyramid(ms.drop_hole(examples, mce_cfg), mce_cfg.scale_sizes)
fig = reporting.image_grid([examples, levels[0]], ["original", "masked I₀"])
run.save_figure(fig, "inputs")
plt.close(fig)
display(Image(run.output_dir / "inputs.png"))
print("pyramid sizes:", [tuple(t.shape[-2:]) for t in levels])

# %% [markdown]
# ## Model
# Table I (sub-encoders) and Table II (decoder) of the paper-size network, read off a forward pass,
# and the parameter counts of the paper-size MCE (both aggregations) and of Pathak's CE. This cell
# is deterministic and independent of the profile (nbval compares its output).

# %%
# NBVAL_CHECK_OUTPUT
for agg in ms.AGGREGATIONS:
    ref_cfg = ms.MultiScaleConfig(aggregation=agg)
    print(f"aggregation = {agg}")
    print(pd.DataFrame(ms.layer_shapes(ref_cfg), columns=["layer", "input (H, W, C)", "output (H, W, C)"]).to_string(index=False))
paper_size = {}
for agg in ms.AGGREGATIONS:
    t = ms.MultiScaleTask(ms.MultiScaleConfig(aggregation=agg))
    paper_size[f"MCE ({agg})"] = (ms.n_params(t.generator), ms.n_params(t.discriminator))
t = ContextEncoderTask(ContextEncoderConfig())
paper_size["CE (Pathak, 128 px)"] = (ms.n_params(t.generator), ms.n_params(t.discriminator))
del t
for name, (g, d) in paper_size.items():
    print(f"{name}: generator {g:,} parameters, discriminator {d:,}")

# %%
def make_mce(agg):
    return ms.MultiScaleTask(dataclasses.replace(mce_cfg, aggregation=agg))


aggs_for = {ds: [table_aggregation] + ([a for a in ms.AGGREGATIONS if a != table_aggregation] if ds == study_dataset else [])
            for ds in datasets}
print(f"this run: MCE width {width} (paper 32), CE width {ce_width} / bottleneck {ce_bottleneck} (Pathak 64 / 4000); "
      f"precision MCE {precision_used} / CE {ce_precision_used}, device {run.device}")
for agg in ms.AGGREGATIONS:
    t = make_mce(agg)
    print(f"  MCE ({agg}): generator {ms.n_params(t.generator):,}, discriminator {ms.n_params(t.discriminator):,}")
t = ContextEncoderTask(ce_cfg)
print(f"  CE: generator {ms.n_params(t.generator):,}, discriminator {ms.n_params(t.discriminator):,}")
del t

# %% [markdown]
# ## Training
# Per dataset: the CE on the 128×128 context crops and the MCE with the aggregation of Tables IV/V
# (`table_aggregation`); on `study_dataset` also the other aggregation (the study of §III-B/C).
# Same steps, batch size, flips, seed and loss (the CE's 0.999·weighted L2 + 0.001·adversarial)
# for every model. Checkpoints go to `checkpoint_dir/<run>`; rerunning resumes instead of retraining.

# %%
trained, histories = {}, {}
for ds in datasets:
    tr, te = faces[ds]
    jobs = [("ce", ContextEncoderTask(ce_cfg), context_crop(tr), context_crop(te[:n_figure]), ce_train_cfg)]
    jobs += [(f"mce_{agg}", make_mce(agg), tr, te[:n_figure], train_cfg) for agg in aggs_for[ds]]
    for name, task, images, sample, tcfg in jobs:
        key = f"{ds}_{name}"
        print(f"— {key}")
        hist = fit(task, images, tcfg, run.output_dir / "runs" / key, run.checkpoint_dir / key, sample_images=sample,
                   fingerprint_extra={"dataset": ds, "n_train": len(images), "model": name})
        trained[key], histories[key] = task, hist

wide = None
for key, h in histories.items():
    part = h[["step", "g_rec", "images_per_s"]].rename(columns={"g_rec": f"{key}_g_rec", "images_per_s": f"{key}_images_per_s"})
    wide = part if wide is None else wide.merge(part, on="step", how="outer")
wide.to_csv(run.output_dir / "history.csv", index=False)
fig, ax = plt.subplots(figsize=(7, 3.4))
for key, h in histories.items():
    ax.plot(h["step"], h["g_rec"], label=key)
ax.set(xlabel="step", ylabel="reconstruction loss (weighted L2)", yscale="log", title="training: reconstruction loss")
ax.legend(fontsize=7)
fig.tight_layout()
run.save_figure(fig, "loss_curve")
plt.close(fig)
display(Image(run.output_dir / "loss_curve.png"))

# %% [markdown]
# ## Evaluation
# On each test split we predict the 64×64 hole and compare it with the ground-truth hole:
#
# * `l1_percent` — mean absolute error on the hole, as % of the value range (Pathak's "mean L1 loss");
# * `l1_255_whole` — mean absolute error over the *whole* 250×250 image in 0–255 grey levels (the
#   known pixels are copied, so it is the hole's MAE × 64²/250²) — a second reading of the paper's
#   unlabelled "L1 loss", whose magnitude (2.27–4.78) fits this one better than the first;
# * `ms_ssim_percent` — MS-SSIM (Wang et al. 2003, Gaussian 11×11 window, σ = 1.5) of the 64×64 hole
#   patch with **3 scales** (the most a 64-px patch admits, `metrics.ms_ssim_scales(64)`; the first
#   three standard weights renormalised), in %, on images mapped to [0, 1] (the usual convention;
#   SSIM's luminance term is not shift-invariant, so [-1, 1] inputs would give other numbers).
#
# Each with a 95 % percentile-bootstrap interval over test images, plus the paired difference
# MCE − CE (same images) with its own interval.

# %%
def patch_metrics(pred, truth):
    raw_l1 = metrics.l1(pred, truth, data_range=2.0)
    return {
        "l1_percent": metrics.l1(pred, truth, data_range=2.0, percent=True),
        "l1_255_whole": raw_l1 * 127.5 * (hole * hole) / (image_size * image_size),
        # on [0, 1] images: SSIM's luminance term is not shift-invariant, and [0, 1] / [0, 255] is the standard convention
        "ms_ssim_percent": 100 * metrics.ms_ssim((pred + 1) / 2, (truth + 1) / 2, data_range=1.0, scales=metrics.ms_ssim_scales(hole)),
    }


patches, per_image, speed = {}, {}, {}
for ds in datasets:
    te = faces[ds][1]
    truth = ms.crop_hole(data.to_tensor(te), mce_cfg)
    patches[(ds, "truth")] = truth
    for key in [k for k in trained if k.startswith(ds + "_")]:
        task = trained[key]
        t0 = time.perf_counter()
        if key.endswith("_ce"):
            filled = evaluate_batches(lambda x, task=task: task.inpaint(x, autocast=ce_autocast), context_crop(te), eval_batch_size, run.device)
            pred = crop_centre(filled, ce_cfg)
        else:
            pred = evaluate_batches(lambda x, task=task: ms.crop_hole(task.inpaint(x, autocast=autocast), task.cfg), te, eval_batch_size, run.device)
        speed[key] = len(te) / (time.perf_counter() - t0)
        method = key[len(ds) + 1:]
        patches[(ds, method)] = pred
        per_image[(ds, method)] = patch_metrics(pred, truth)

rows = []
for (ds, method), vals in per_image.items():
    summ = metrics.summarize(vals, n_boot=n_boot, seed=seed)
    for m in vals:
        rows.append({"dataset": ds, "method": method, "metric": m, "mean": summ.loc[m, "mean"],
                     "ci_low": summ.loc[m, "ci_low"], "ci_high": summ.loc[m, "ci_high"], "n": int(summ.loc[m, "n"])})
results = pd.DataFrame(rows)
run.save_table(results, "results", "All runs: metrics on the 64×64 hole (95 % bootstrap intervals)")
results

# %% [markdown]
# ## Paper vs ours — Table IV (CelebA-HQ) and Table V (LFW)
# The paper's MCE in these tables uses addition (§III-C). We compare the paper's "L1 loss" with
# both our L1 readings (Δ only makes sense for the one with matching units — see the notes), and
# its MS-SSIM with our hole MS-SSIM. Our numbers come from a short CPU run on a few hundred faces
# (the profile is stated on each table), not 300 epochs on 24,000.

# %%
paper = reporting.paper_numbers("multiscale2020")
mce_key = f"mce_{table_aggregation}"
paired = {}
for ds, table_name, title in [("celeba-hq", "table_iv_celeba_hq", "Table IV — CelebA-HQ: CE vs MCE"),
                              ("lfw", "table_v_lfw", "Table V — LFW: CE vs MCE")]:
    if ds not in datasets:
        continue
    pub = paper["tables"][ds]
    cmp_rows = []
    for method, pkey in [("ce", "ce"), (mce_key, "mce")]:
        summ = metrics.summarize(per_image[(ds, method)], n_boot=n_boot, seed=seed)
        for m, pub_m in [("l1_255_whole", "l1"), ("l1_percent", "l1"), ("ms_ssim_percent", "ms_ssim_percent")]:
            cmp_rows.append({"method": method.upper().replace("_", " "), "metric": m, "paper": pub[pkey][pub_m],
                             "ours": summ.loc[m, "mean"], "ci_low": summ.loc[m, "ci_low"], "ci_high": summ.loc[m, "ci_high"]})
    for m in ("l1_percent", "l1_255_whole", "ms_ssim_percent"):
        d = per_image[(ds, mce_key)][m] - per_image[(ds, "ce")][m]
        lo, hi = metrics.bootstrap_ci(d, n_boot=n_boot, seed=seed)
        paper_d = pub["mce"]["l1" if m.startswith("l1") else m] - pub["ce"]["l1" if m.startswith("l1") else m]
        paired[(ds, m)] = (float(np.mean(d)), lo, hi, paper_d)
        cmp_rows.append({"method": "MCE − CE (paired)", "metric": m, "paper": paper_d, "ours": float(np.mean(d)), "ci_low": lo, "ci_high": hi})
    table = reporting.compare(cmp_rows)
    run.save_table(table, table_name, title, notes=[
        f"paper: {paper['source']}",
        f"ours: {ds} test split ({len(faces[ds][1])} faces), centre 64×64 hole of the 250×250 image; CE on the 128×128 crop centred on it",
        ("l1_percent: MAE on the hole, % of the [-1, 1] range; l1_255_whole: MAE over the whole image in 0–255 levels "
         "(= hole MAE × 64²/250², known pixels copied). The paper does not state its L1 units: both rows are compared with its one number."),
        "ms_ssim_percent: MS-SSIM of the hole patch on [0, 1] images, 3 scales (11×11 Gaussian, σ 1.5), ×100",
        f"MCE = {table_aggregation} aggregation; 95 % percentile bootstrap ({n_boot} resamples) over test images",
    ])
    display(Markdown((run.output_dir / f"{table_name}.md").read_text()))

# %% [markdown]
# ## Aggregation study (§III-B, §III-C): addition vs concatenation
# The paper: the two aggregations perform alike, addition is "much faster both in training and
# testing", and the MCE "has more parameters than the original context encoder". We measure the
# metrics on `study_dataset`, the parameter counts (this run's width and the paper's), the median
# training throughput of `fit` and the inference throughput of the evaluation above.

# %%
agg_rows = []
for method in ["ce"] + [f"mce_{a}" for a in aggs_for[study_dataset]]:
    key = f"{study_dataset}_{method}"
    summ = metrics.summarize(per_image[(study_dataset, method)], n_boot=n_boot, seed=seed)
    paper_name = "CE (Pathak, 128 px)" if method == "ce" else f"MCE ({method[4:]})"
    agg_rows.append({
        "model": method.upper().replace("_", " "),
        "l1_percent": summ.loc["l1_percent", "mean"],
        "ms_ssim_percent": summ.loc["ms_ssim_percent", "mean"],
        "G params (this run)": ms.n_params(trained[key].generator),
        "G params (paper size)": paper_size[paper_name][0],
        "train images/s": float(histories[key]["images_per_s"].median()),
        "inference images/s": speed[key],
    })
agg_table = pd.DataFrame(agg_rows)
run.save_table(agg_table, "aggregation", f"Aggregation study on {study_dataset}: addition vs concatenation (and the CE)", notes=[
    (f"throughput measured during this run on {run.device} (MCE {precision_used}, CE {ce_precision_used}); a shared machine makes single runs noisy — "
     "`python -m facefill.bench --models mce250_add mce250_concat ce128` interleaves the models for a cleaner ratio"),
    "paper size: MCE width 32 (Table I), CE width 64 with the 4000-d bottleneck (Pathak)",
], floatfmt=".4g")
display(Markdown((run.output_dir / "aggregation.md").read_text()))

# %% [markdown]
# ## Figures 2 and 3
# Fig. 2: masked | CE | MCE; Fig. 3: original | masked | MCE — CelebA-HQ test faces (first
# `n_figure` of the split), the CE's patch pasted back into the 250×250 face.

# %%
fig_ds = "celeba-hq" if "celeba-hq" in datasets else datasets[0]
full = data.to_tensor(faces[fig_ds][1][:n_figure])
masked = ms.drop_hole(full, mce_cfg)
ce_full = ms.paste_hole(full, patches[(fig_ds, "ce")][:n_figure], mce_cfg)
mce_full = ms.paste_hole(full, patches[(fig_ds, mce_key)][:n_figure], mce_cfg)
fig = reporting.image_grid([masked, ce_full, mce_full], ["masked", "CE", "MCE"])
run.save_figure(fig, "fig2_masked_ce_mce")
plt.close(fig)
display(Image(run.output_dir / "fig2_masked_ce_mce.png"))
fig = reporting.image_grid([full, masked, mce_full], ["original", "masked", "MCE"])
run.save_figure(fig, "fig3_original_masked_mce")
plt.close(fig)
display(Image(run.output_dir / "fig3_original_masked_mce.png"))

# %%
summary_metrics = {f"{ds}/{method}/{m}": float(np.mean(v)) for (ds, method), vals in per_image.items() for m, v in vals.items()}
summary_metrics |= {f"{ds}/mce_minus_ce/{m}": {"mean": v[0], "ci_low": v[1], "ci_high": v[2]} for (ds, m), v in paired.items()}
summary_metrics |= {f"throughput/{k}": {"train_images_per_s": float(histories[k]["images_per_s"].median()), "inference_images_per_s": speed[k]}
                    for k in trained}
run.save_metrics(summary_metrics | {"steps": steps})

# %% [markdown]
# ## Deviation log
# Gaps and slips of the paper, what we chose, and why. Saved as `deviations.md`.

# %%
deviations = pd.DataFrame([
    ("E_2's first kernel", "Table I: 128, 3×3×64 on a 63×63×3 input", "3×3×3", "a slip: the input has 3 channels"),
    ("strides / padding", "not stated; text mentions pooling", "3×3 convs stride 2 pad 1, the 1×1 conv stride 2", "the only choice that gives Table I's sizes 250→125→63→32→16; no pooling appears in Table I"),
    ("layer order", "conv → LeakyReLU → BatchNorm (text)", "as the text (LeakyReLU slope 0.2, the CE's)", "slope not given"),
    ("decoder input", "Table II: 16×16×1536", "1536 for concat, 512 for add", "Table II shows only the concatenation case"),
    ("decoder output", "ReLU + BN after each conv", "tanh after the last conv", "an image output in [-1, 1]; ReLU + BN cannot produce one"),
    ("upsampling", "'Upsampling'", "nearest neighbour ×2", "kind not stated"),
    ("pyramid", "'reduced by a factor of 2'", "antialiased bilinear 250→125→63, mask downscaled with the image", "method not stated"),
    ("hole position", "64×64 'mask', position not stated", f"centre, box {mce_cfg.hole_box}", "Fig. 2/3 show central holes; the CE baseline's geometry"),
    ("visible overlap", "not stated", f"{overlap}-px border of the hole visible to both methods, ×{overlap_weight:g} loss weight", "Pathak's convention; the same for CE and MCE so the comparison is fair"),
    ("discriminator / losses", "not specified", f"the CE's patch discriminator; 0.999·L_rec + 0.001·L_adv, L_rec = {rec_loss}", "the issue: use the CE's; same loss for both methods (`rec_loss='l1+ms_ssim'` available)"),
    ("optimiser", "momentum 0.9, lr 0.001, −10 % every 50 epochs, 300 epochs, batch 32",
     f"{optimizer} (momentum/β1 {momentum}), lr {lr} / D {lr_d}, decay every {lr_decay_every or '—'} steps, {steps} steps × batch {batch_size}",
     "the paper's schedule is the `paper` profile (SGD); short CPU runs need the CE's Adam to produce faces"),
    ("augmentation", "'standard data augmentation as [16]' (Maxout: none for faces)", "horizontal flips", "[16] describes no face augmentation; flips keep the aligned geometry"),
    ("datasets", "CelebA-HQ 30,000; LFW 12,234 (Table III)", f"CelebA-HQ 5,000-image copy resized 256→250; LFW 13,233; 80/20 split; {'/'.join(str(len(faces[d][0])) for d in datasets)} train faces used",
     "offline copies; Table III's 12,234 disagrees with LFW's 13,233 (the text says 13,234)"),
    ("width", "MCE 32 (Table I), CE 64 / bottleneck 4000", f"MCE {width}, CE {ce_width} / {ce_bottleneck}", "CPU budget of the profile (paper sizes in the `paper` profile)"),
    ("precision", "fp32 (TensorFlow 1.15)", f"MCE {precision_used}, CE {ce_precision_used}", "measured (CPU-seconds per training step, batch 16): MCE w8 fp32 1.78 vs bf16 1.89, CE w32 fp32 0.99 vs bf16 1.80 — bf16 autocast does not pay for these thin nets on this CPU"),
    ("L1 units", "'L1 loss', unlabelled", "two readings: % of range on the hole, 0–255 over the whole image", "see Tables IV/V notes"),
], columns=["aspect", "paper", "ours", "why"])
run.save_table(deviations, "deviations", "Deviation log — multi-scale context encoder")
deviations

# %% [markdown]
# ## Summary

# %%
def claim(ds):
    l1d, l1lo, l1hi, _ = paired[(ds, "l1_percent")]
    msd, mslo, mshi, paper_msd = paired[(ds, "ms_ssim_percent")]
    ms_held = "held" if mslo > 0 else ("was reversed" if mshi < 0 else "is not resolved (interval spans 0)")
    l1_held = "held" if l1lo > 0 else ("was reversed" if l1hi < 0 else "is not resolved (interval spans 0)")
    return (f"**{ds}**: MCE − CE MS-SSIM {msd:+.2f} points [{mslo:+.2f}, {mshi:+.2f}] (paper {paper_msd:+.2f}) — the claim "
            f"'MCE beats CE on MS-SSIM' {ms_held}; MCE − CE L1 {l1d:+.2f} % of range [{l1lo:+.2f}, {l1hi:+.2f}] — "
            f"'CE has lower L1' {l1_held}.")


agg = agg_table.set_index("model")
add_row, cat_row = agg.loc["MCE ADD"], agg.loc["MCE CONCAT"] if "MCE CONCAT" in agg.index else None
lines = [f"Profile `{profile}`: {steps} steps × batch {batch_size} per model, MCE width {width}, CE width {ce_width}."]
lines += [claim(ds) for ds in datasets if ds in ("celeba-hq", "lfw")]
if cat_row is not None:
    lines.append(
        f"Aggregation on {study_dataset}: addition MS-SSIM {add_row['ms_ssim_percent']:.2f} % vs concatenation "
        f"{cat_row['ms_ssim_percent']:.2f} %; training {add_row['train images/s']:.1f} vs {cat_row['train images/s']:.1f} images/s "
        f"(×{add_row['train images/s'] / cat_row['train images/s']:.2f}), inference {add_row['inference images/s']:.1f} vs "
        f"{cat_row['inference images/s']:.1f} images/s. Paper-size generators: addition {paper_size['MCE (add)'][0]:,}, "
        f"concatenation {paper_size['MCE (concat)'][0]:,}, Pathak's CE {paper_size['CE (Pathak, 128 px)'][0]:,} parameters — "
        f"the claim that the MCE has more parameters than the CE "
        f"{'holds' if paper_size['MCE (concat)'][0] > paper_size['CE (Pathak, 128 px)'][0] else 'does not hold against Pathak’s CE'}.")
display(Markdown("\n\n".join(lines)))

# %% [markdown]
# ## Exercises
# 1. Train with `rec_loss = "l1+ms_ssim"` (the metrics the paper reports as the loss). Does the
#    MS-SSIM gap between MCE and CE change when only the MCE optimises it — and why is that unfair?
# 2. Set `overlap = 0`: both methods lose the 4-px ring. Which one suffers more at the seam?
# 3. Set `n_scales` to 1 in `MultiScaleConfig` (only E_0). How much of the MCE's result is the
#    pyramid, and how much is simply a different (smaller, fully convolutional) encoder?
# 4. Count the multiply-adds of the decoder's first convolution for addition and concatenation
#    and compare the ratio with the measured training throughputs.
