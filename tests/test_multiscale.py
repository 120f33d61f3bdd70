"""Multi-scale context encoder (paper 000): Table I/II shapes, aggregation, geometry, losses, training."""
import dataclasses

import numpy as np
import pytest
import torch

from facefill import metrics
from facefill.errors import ConfigError
from facefill.models import multiscale as ms
from facefill.models.context_encoder import ContextEncoderConfig, crop_centre
from facefill.runtime import autocast_factory

# Table I of the paper: (input H, W, C) → (output H, W, C), sub-encoders E_0, E_1, E_2 in order.
TABLE_I = [
    ((250, 250, 3), (125, 125, 32)),
    ((125, 125, 32), (63, 63, 64)),
    ((63, 63, 64), (32, 32, 128)),
    ((32, 32, 128), (16, 16, 512)),
    ((125, 125, 3), (63, 63, 64)),
    ((63, 63, 64), (32, 32, 128)),
    ((32, 32, 128), (16, 16, 512)),
    ((63, 63, 3), (32, 32, 128)),  # the paper prints the kernel as 3×3×64: a slip, the input has 3 channels
    ((32, 32, 128), (16, 16, 512)),
]
# Table II (concatenation): upsampling, conv 128, upsampling, conv 64, conv 3.
TABLE_II = [
    ((16, 16, 1536), (32, 32, 1536)),
    ((32, 32, 1536), (32, 32, 128)),
    ((32, 32, 128), (64, 64, 128)),
    ((64, 64, 128), (64, 64, 64)),
    ((64, 64, 64), (64, 64, 3)),
]
# Table I's kernels "out, k×k×in" (E_2's first corrected to 3×3×3)
TABLE_I_KERNELS = ["32, 3×3×3", "64, 3×3×32", "128, 3×3×64", "512, 1×1×128", "64, 3×3×3", "128, 3×3×64",
                   "512, 1×1×128", "128, 3×3×3", "512, 1×1×128"]


def test_table_i_and_ii_shapes_concat():
    rows = ms.layer_shapes(ms.MultiScaleConfig(aggregation="concat"))
    assert [(i, o) for _, i, o in rows] == TABLE_I + TABLE_II
    assert [name.split(" ", 1)[1] for name, _, _ in rows[:9]] == TABLE_I_KERNELS


def test_addition_decoder_takes_512_channels():
    rows = ms.layer_shapes(ms.MultiScaleConfig(aggregation="add"))
    assert [(i, o) for _, i, o in rows[:9]] == TABLE_I
    assert rows[9][1:] == ((16, 16, 512), (32, 32, 512))
    assert rows[10][1:] == ((32, 32, 512), (32, 32, 128))
    assert [(i, o) for _, i, o in rows[11:]] == TABLE_II[2:]


def test_pyramid_sizes_and_feature_side():
    cfg = ms.MultiScaleConfig()
    assert cfg.scale_sizes == [250, 125, 63]
    assert cfg.feature_side == 16 and cfg.feature_channels == 512
    assert cfg.hole_box == (93, 93, 64, 64)
    levels = ms.pyramid(torch.zeros(2, 3, 250, 250), cfg.scale_sizes)
    assert [tuple(t.shape) for t in levels] == [(2, 3, 250, 250), (2, 3, 125, 125), (2, 3, 63, 63)]
    # antialiased downscaling of a constant image is the constant
    levels = ms.pyramid(torch.full((1, 3, 250, 250), 0.3), cfg.scale_sizes)
    assert all(torch.allclose(t, torch.full_like(t, 0.3), atol=1e-6) for t in levels)


def test_aggregation_matches_manual_sum_and_concat():
    torch.manual_seed(0)
    cfg = ms.MultiScaleConfig(width=2)
    add = ms.MultiScaleContextEncoder(cfg).eval()
    cat = ms.MultiScaleContextEncoder(dataclasses.replace(cfg, aggregation="concat")).eval()
    cat.encoders.load_state_dict(add.encoders.state_dict())
    x = torch.rand(2, 3, 250, 250) * 2 - 1
    with torch.no_grad():
        feats = add.features(x)
        assert [tuple(f.shape) for f in feats] == [(2, 32, 16, 16)] * 3
        torch.testing.assert_close(add.aggregate(feats), feats[0] + feats[1] + feats[2])
        torch.testing.assert_close(cat.aggregate(cat.features(x)), torch.cat(feats, 1))
        # the decoder maps the 512-channel sum / 1536-channel stack to the 64×64×3 patch in [-1, 1]
        for model in (add, cat):
            patch = model(x)
            assert patch.shape == (2, 3, 64, 64) and patch.abs().max() <= 1


def test_layer_order_is_conv_lrelu_bn():
    enc = ms.SubEncoder(0, 32)
    kinds = [type(m).__name__ for m in enc.net]
    assert kinds == ["Conv2d", "LeakyReLU", "BatchNorm2d"] * 4
    assert [m.stride for m in enc.net if isinstance(m, torch.nn.Conv2d)] == [(2, 2)] * 4


def test_parameter_counts_by_hand():
    # E_0..E_2 conv weights + biases + BN (2 per channel), decoder convs + BN
    def conv(cin, cout, k):
        return cin * cout * k * k + cout + 2 * cout

    enc = (conv(3, 32, 3) + conv(32, 64, 3) + conv(64, 128, 3) + conv(128, 512, 1)
           + conv(3, 64, 3) + conv(64, 128, 3) + conv(128, 512, 1) + conv(3, 128, 3) + conv(128, 512, 1))
    for agg, c in [("add", 512), ("concat", 1536)]:
        dec = conv(c, 128, 3) + conv(128, 64, 3) + (64 * 3 * 9 + 3)
        assert ms.n_params(ms.MultiScaleContextEncoder(ms.MultiScaleConfig(aggregation=agg))) == enc + dec


def test_hole_geometry_matches_the_ce_crop():
    cfg = ms.MultiScaleConfig()
    top, left = ms.context_crop_box(250, 64, 128)
    assert (top, left) == (61, 61)
    img = torch.rand(3, 3, 250, 250) * 2 - 1
    ce_cfg = ContextEncoderConfig()
    crop = img[:, :, top : top + 128, left : left + 128]
    # the CE's centre hole in its 128-px crop is exactly the MCE's hole in the 250-px image
    torch.testing.assert_close(crop_centre(crop, ce_cfg), ms.crop_hole(img, cfg))
    masked = ms.drop_hole(img, cfg)
    changed = (masked != img).any(1)[0]
    assert changed[97:153, 97:153].all() and changed.sum() == 56 * 56  # hole minus the 4-px overlap
    patch = torch.zeros(3, 3, 64, 64)
    pasted = ms.paste_hole(img, patch, cfg)
    assert (pasted[:, :, 93:157, 93:157] == 0).all()
    outside = torch.ones(250, 250, dtype=torch.bool)
    outside[93:157, 93:157] = False
    assert torch.equal(pasted[:, :, outside], img[:, :, outside])


def test_weighted_l2_matches_ce_loss():
    from facefill.models.context_encoder import overlap_weights, reconstruction_loss

    cfg = ms.MultiScaleConfig()
    a, b = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    ref = reconstruction_loss(a, b, overlap_weights(ContextEncoderConfig()))
    torch.testing.assert_close(ms.weighted_l2(a, b, cfg), ref)


def test_l1_ms_ssim_loss_matches_reference_metric():
    torch.manual_seed(1)
    y = torch.rand(3, 3, 64, 64) * 2 - 1
    x = (y + 0.2 * torch.randn_like(y)).clamp(-1, 1)
    alpha = 0.84
    # SSIM's luminance term is not shift-invariant: the standard convention is non-negative images, here [0, 1]
    ref_ms = metrics.ms_ssim((x + 1) / 2, (y + 1) / 2, data_range=1.0, scales=3).mean()
    ref = (1 - alpha) * (x - y).abs().mean().item() / 2 + alpha * (1 - ref_ms)
    assert ms.l1_ms_ssim(x, y, alpha).item() == pytest.approx(ref, abs=2e-4)
    assert ms.l1_ms_ssim(y, y, alpha).item() == pytest.approx(0.0, abs=1e-5)


def test_learning_rate_schedule():
    cfg = ms.MultiScaleConfig(lr_decay=0.9, lr_decay_every=50)
    assert ms.learning_rate(1e-3, 0, cfg) == 1e-3
    assert ms.learning_rate(1e-3, 49, cfg) == 1e-3
    assert ms.learning_rate(1e-3, 50, cfg) == pytest.approx(0.9e-3)
    assert ms.learning_rate(1e-3, 275, cfg) == pytest.approx(1e-3 * 0.9**5)
    assert ms.learning_rate(1e-3, 10_000, ms.MultiScaleConfig()) == 1e-3


@pytest.mark.parametrize("bad", [{"aggregation": "mean"}, {"hole": 32}, {"n_scales": 4}, {"overlap": 40},
                                 {"rec_loss": "l3"}, {"optimizer": "rmsprop"}, {"width": 0}, {"lr": 0}])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ConfigError):
        ms.MultiScaleConfig(**bad)


def test_wrong_input_size_is_a_clear_error():
    model = ms.MultiScaleContextEncoder(ms.MultiScaleConfig(width=2))
    with pytest.raises(ConfigError, match="250×250"):
        model(torch.zeros(1, 3, 128, 128))


def test_context_crop_that_does_not_fit_is_an_error():
    with pytest.raises(ConfigError):
        ms.context_crop_box(100, 64, 128)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_training_steps_reduce_the_loss_and_follow_the_schedule(optimizer):
    torch.manual_seed(0)
    cfg = ms.MultiScaleConfig(width=2, d_width=4, optimizer=optimizer, lr=0.01 if optimizer == "adam" else 0.05,
                              momentum=0.5 if optimizer == "adam" else 0.9, lr_decay_every=3)
    task = ms.MultiScaleTask(cfg)
    task.configure(torch.device("cpu"))
    x = torch.rand(4, 3, 250, 250) * 2 - 1
    autocast = autocast_factory(torch.device("cpu"), "fp32")
    logs = [task.training_step(x, autocast) for _ in range(7)]
    assert int(task.generator.n_steps) == 7
    assert [lg["lr"] for lg in logs] == pytest.approx([cfg.lr] * 3 + [cfg.lr * 0.9] * 3 + [cfg.lr * 0.81])
    assert float(logs[-1]["g_rec"]) < float(logs[0]["g_rec"])
    out = task.inpaint(x)
    assert out.shape == x.shape
    keep = torch.ones(250, 250, dtype=torch.bool)
    keep[93:157, 93:157] = False
    assert torch.equal(out[:, :, keep], x[:, :, keep])


def test_fit_checkpoint_resume_is_exact(tmp_path):
    from facefill.train import TrainConfig, fit

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(6, 250, 250, 3), dtype=np.uint8)
    cfg = ms.MultiScaleConfig(width=2, d_width=4, lr_decay_every=2)
    # channels_last=False: PyTorch 2.14's CPU backward segfaults on channels_last convs with 2 channels (width=2)
    tc = {"batch_size": 3, "precision": "fp32", "progress": False, "log_every": 1, "checkpoint_every": 2, "channels_last": False}
    torch.manual_seed(0)
    a = ms.MultiScaleTask(cfg)
    ha = fit(a, images, TrainConfig(steps=4, **tc), tmp_path / "a")
    torch.manual_seed(0)
    b = ms.MultiScaleTask(cfg)
    fit(b, images, TrainConfig(steps=2, **tc), tmp_path / "b", tmp_path / "ck")
    b2 = ms.MultiScaleTask(cfg)  # its fresh weights are replaced by the checkpoint's
    hb = fit(b2, images, TrainConfig(steps=4, **tc), tmp_path / "b", tmp_path / "ck")
    np.testing.assert_allclose(hb["g_rec"].to_numpy(), ha["g_rec"].to_numpy(), rtol=1e-5)
    assert int(b2.generator.n_steps) == 4
    for p, q in zip(a.generator.parameters(), b2.generator.parameters()):
        torch.testing.assert_close(p, q)


def test_bench_cases_registered():
    from facefill import bench

    assert {"mce250_add", "mce250_concat"} <= set(bench.CASES)
    with pytest.raises(NotImplementedError):
        bench.CASES["mce250_add"](torch.device("cpu"), 2, "plain")


def test_study_file_holds_the_paper_numbers_and_claims():
    from facefill.experiments import study_data

    p = study_data("multiscale2020")
    t = p["tables"]
    assert t["celeba-hq"]["MCE"]["ms_ssim_percent"] > t["celeba-hq"]["CE"]["ms_ssim_percent"]
    assert t["celeba-hq"]["MCE"]["l1_percent"] > t["celeba-hq"]["CE"]["l1_percent"]  # the paper's L1 favours the CE
    assert t["lfw"]["CE"]["l1_percent"] == 4.65
    assert p["datasets"]["lfw"]["train"] + p["datasets"]["lfw"]["test"] == p["datasets"]["lfw"]["total"]
    claims = {c["id"]: c for c in p["claims"]}
    assert claims["mce.ms_ssim_vs_ce"]["paper_value"] == pytest.approx(75.43 - 73.40)
    assert claims["mce.l1_vs_ce"]["direction"] == "greater" and claims["mce.l1_vs_ce"]["higher_is_better"] is False


# --------------------------------------------------------------------------- the context layer

def _patch_ring_gradients(cfg, ring_width=4, chunk=256):
    """For every patch pixel: the summed |gradient| over the ring pixels nearest to it, and the total.

    The ring: pixels the encoders see within ``ring_width`` px of the dropped square. A patch pixel's
    neighbourhood: the ring pixels within 3 px (Chebyshev) of the ring pixel nearest to it. In eval
    mode the images of a batch do not interact, so one backward pass gives each copy's gradient.
    The activations are replaced by the identity: the *structural* receptive field, which a dead
    ReLU of one random input cannot hide.
    """
    torch.manual_seed(0)
    model = ms.MultiScaleContextEncoder(cfg).eval()
    for module in list(model.modules()):
        for name, child in module.named_children():
            if isinstance(child, (torch.nn.ReLU, torch.nn.LeakyReLU, torch.nn.Tanh)):
                setattr(module, name, torch.nn.Identity())
    t, l, h, w = cfg.hole_box
    o, s = cfg.overlap, cfg.image_size
    lo, hi = t + o, t + h - o  # the dropped square [lo, hi)²
    yy, xx = torch.meshgrid(torch.arange(s), torch.arange(s), indexing="ij")
    dist = torch.maximum(torch.maximum(lo - yy, yy - (hi - 1)), torch.maximum(lo - xx, xx - (hi - 1)))  # Chebyshev, > 0 outside
    ring = (dist >= 1) & (dist <= ring_width)
    ry, rx = yy[ring], xx[ring]
    pixels = [(i, j) for i in range(h) for j in range(w)]
    x0 = torch.rand(1, 3, s, s) * 2 - 1
    seen, total = [], []
    for start in range(0, len(pixels), chunk):
        part = pixels[start : start + chunk]
        x = x0.repeat(len(part), 1, 1, 1).requires_grad_()
        out = model(x)
        rows, cols = torch.tensor([p[0] for p in part]), torch.tensor([p[1] for p in part])
        out[torch.arange(len(part)), :, rows, cols].sum().backward()
        g = x.grad.abs().sum(1)  # (B, S, S)
        g_ring = g[:, ring]  # (B, R)
        d = torch.maximum((ry[None] - (t + rows)[:, None]).abs(), (rx[None] - (l + cols)[:, None]).abs())  # (B, R)
        near = d <= d.min(1, keepdim=True).values + 3
        seen += (g_ring * near).sum(1).tolist()
        total += g.sum((1, 2)).tolist()
    return np.array(seen), np.array(total)


@pytest.mark.parametrize("context", ["fc", "channel_fc"])
def test_every_patch_pixel_depends_on_its_neighbourhood_ring(context):
    cfg = ms.MultiScaleConfig(image_size=125, hole=32, overlap=2, width=2, bottleneck=16, context=context)
    seen, total = _patch_ring_gradients(cfg)
    assert seen.shape == (32 * 32,)
    assert (seen > 1e-6 * total).all(), f"{(seen <= 1e-6 * total).sum()} patch pixels ignore the ring next to them"


def test_tables_as_printed_leave_patch_pixels_blind_to_their_ring():
    """The reason for the context layer (and proof that the test above can fail)."""
    cfg = ms.MultiScaleConfig(image_size=125, hole=32, overlap=2, width=2, context="none")
    seen, total = _patch_ring_gradients(cfg)
    blind = seen == 0
    assert blind.reshape(32, 32)[0, 0] and blind.reshape(32, 32)[-1, -1]  # the patch corners, as the figure shows
    assert blind.mean() > 0.25


def test_fc_bottleneck_is_the_ce_bottleneck_on_the_aggregated_map():
    torch.manual_seed(0)
    cfg = ms.MultiScaleConfig(image_size=125, hole=32, overlap=2, width=2, bottleneck=7, context="fc")
    model = ms.MultiScaleContextEncoder(cfg).eval()
    f = torch.randn(3, 32, 8, 8)
    fc = model.context
    with torch.no_grad():
        z = torch.nn.functional.leaky_relu(fc.encode[1](f.flatten(1) @ fc.encode[0].weight.t()), 0.2)
        ref = torch.relu(fc.bn((z @ fc.decode.weight.t()).view(3, 32, 8, 8)))
        torch.testing.assert_close(fc(f), ref)
    # parameters: the literal model + W_e, W_d (no bias) + BatchNorm1d(7) + BatchNorm2d(32)
    literal = ms.n_params(ms.MultiScaleContextEncoder(dataclasses.replace(cfg, context="none")))
    assert ms.n_params(model) == literal + 2 * 32 * 64 * 7 + 2 * 7 + 2 * 32


def test_channel_wise_fc_is_one_matrix_per_channel():
    torch.manual_seed(0)
    layer = ms.ChannelWiseFC(3, 4).eval()
    f = torch.randn(2, 3, 4, 4)
    with torch.no_grad():
        y = torch.stack([f[:, c].flatten(1) @ layer.weight[c].t() + layer.bias[c] for c in range(3)], 1).view(2, 3, 4, 4)
        torch.testing.assert_close(layer(f), layer.mix(y))


def test_multiply_adds_by_hand():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.ConvTranspose2d(8, 4, 4, 2, 1),
                              torch.nn.Flatten(), torch.nn.Linear(4 * 16 * 16, 5))
    x = torch.zeros(2, 3, 16, 16)
    expected = 8 * 8 * 8 * 3 * 9 + 8 * 8 * 8 * 4 * 16 + 4 * 16 * 16 * 5
    assert ms.multiply_adds(net, x) == expected
    layer = ms.ChannelWiseFC(3, 4)
    assert ms.multiply_adds(layer, torch.zeros(1, 3, 4, 4)) == 3 * 16 * 16 + 16 * 3 * 3


def test_default_profile_arms_are_matched():
    """CE64 and the MCE of params.yaml's default profile agree within 1 % in parameters and multiply-adds."""
    import yaml

    from facefill.config import repo_root
    from facefill.models.context_encoder import ContextEncoder

    p = yaml.safe_load((repo_root() / "params.yaml").read_text())["base"]["multiscale"]
    mce = ms.MultiScaleContextEncoder(ms.MultiScaleConfig(image_size=p["image_size"], hole=p["hole"], overlap=p["overlap"],
                                                          width=p["width"], bottleneck=p["bottleneck"], context=p["context"]))
    ce = ContextEncoder(ContextEncoderConfig(image_size=2 * p["hole"], hole=p["hole"], width=p["ce_width"], bottleneck=p["ce_bottleneck"]))
    s = p["image_size"]
    assert ms.n_params(mce) == pytest.approx(ms.n_params(ce), rel=0.01)
    assert ms.multiply_adds(mce, torch.zeros(1, 3, s, s)) == pytest.approx(ms.multiply_adds(ce, torch.zeros(1, 3, 2 * p["hole"], 2 * p["hole"])), rel=0.01)


def test_bad_context_is_a_clear_error():
    with pytest.raises(ConfigError, match="context='conv'"):
        ms.MultiScaleConfig(context="conv")


def test_paper_profile_schedule_is_in_epochs_of_the_data_used(tmp_path):
    """300 epochs and −10 % every 50 epochs become steps of the training set actually loaded."""
    from types import SimpleNamespace

    from facefill import pipeline
    from facefill.experiments.multiscale2020 import MultiScaleStudy

    params = pipeline.notebook_parameters("multiscale", "paper")
    study = MultiScaleStudy(params, SimpleNamespace(device=torch.device("cpu"), output_dir=tmp_path, root=tmp_path))
    train_cfg, cfg = study.schedule(24000)  # Table III's CelebA-HQ training set
    assert (train_cfg.steps, cfg.lr_decay_every, cfg.optimizer, train_cfg.batch_size) == (225000, 37500, "sgd", 32)
    train_cfg, cfg = study.schedule(3600)  # our copy: 112.5 steps per epoch
    assert (train_cfg.steps, cfg.lr_decay_every) == (33750, 5625)
    assert study.ce_cfg.image_size == 128 and study.ce_cfg.hole == cfg.hole == 64  # the paper profile keeps 250 px


def test_budget_stability_every_trained_arm_has_its_half_budget_runs(tmp_path, monkeypatch):
    """With ``require_half_budget``, the smoke study (synthetic faces, no data archives) trains every arm
    and seed also at half its steps, scores those models under ``<arm> (half budget)`` and gives every
    trained arm of every claim its ``half_arrays``, one per seed; measurement / benchmark arms get none."""
    from types import SimpleNamespace

    from facefill import baselines, pipeline, verdicts
    from facefill.experiments.multiscale2020 import MultiScaleStudy
    from facefill.experiments.study import HALF_SUFFIX
    from facefill.train import HALF_DIR

    monkeypatch.setattr(verdicts.Tolerances, "from_params", classmethod(lambda cls, params=None: cls(require_half_budget=True)))
    params = pipeline.notebook_parameters("multiscale", "smoke")
    run = SimpleNamespace(device=torch.device("cpu"), output_dir=tmp_path / "out", checkpoint_dir=tmp_path / "ck", root=tmp_path)
    run.output_dir.mkdir()
    study = MultiScaleStudy(params, run)
    assert study.half_budget and study.schedule(16)[0].half_budget  # the study's own schedule keeps it
    s, rng = study.cfg.image_size, np.random.default_rng(0)

    def faces(n):
        low = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(int(rng.integers(1 << 30))))
        return (torch.nn.functional.interpolate(low, size=(s, s), mode="bilinear").permute(0, 2, 3, 1) * 255).round().byte().numpy()

    ds = params["dataset"]
    study.train_sets = [ds]
    study.images = {f"{ds}/train": faces(8), f"{ds}/val": faces(4), "main": faces(4), "transfer": faces(4)}
    study.train_mean = {ds: baselines.train_mean_image(study.images[f"{ds}/train"])}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is faster on the shared CPU
    try:
        study.train()
    finally:
        torch.set_num_threads(threads)
    assert set(study.runs) == set(study.arm_configs())
    for label, runs in study.runs.items():
        for r in runs:
            name = label.replace(" ", "_")
            assert r.half is not None and (run.checkpoint_dir / f"{name}_seed{r.seed}" / HALF_DIR / "last.pt").is_file()
            assert (run.output_dir / "runs" / f"{name}_seed{r.seed}" / HALF_DIR / "history.csv").is_file()
            full, half = r.task.generator.state_dict(), r.half.generator.state_dict()
            assert any(not torch.equal(full[k], half[k]) for k in full if full[k].is_floating_point())
    table = study.evaluate()
    assert not any(k.startswith(f"{label}{HALF_SUFFIX}") for fills in study.filled.values() for k in fills
                   for label in study.runs)  # the figures show the full-budget models
    specs = study.claim_specs()
    store = np.load(run.output_dir / "arrays.npz")
    trained = 0
    for spec in specs:
        for x in (spec["a"], spec["b"]):
            if not x["trained"]:
                assert "half_arrays" not in x
                continue
            trained += 1
            assert len(x["half_arrays"]) == len(x["arrays"]) == len(study.seeds)
            for full_ref, half_ref in zip(x["arrays"], x["half_arrays"]):
                full_key, half_key = full_ref.split(":", 1)[1], half_ref.split(":", 1)[1]
                assert half_key == full_key.replace(f"__{x['label'].replace(' ', '_')}__",
                                                    f"__{(x['label'] + HALF_SUFFIX).replace(' ', '_')}__")  # same seed and metric
                assert half_key in store.files and store[half_key].shape == store[full_key].shape
                assert not np.array_equal(store[half_key], store[full_key])
    assert trained == 12  # 6 claims between two trained arms; the speed and parameter claims have none
    assert {x["label"] for spec in specs for x in (spec["a"], spec["b"]) if x["trained"]} == set(study.runs)
    records = verdicts.evaluate_claims(specs, verdicts.Tolerances(require_half_budget=True), root=tmp_path)
    assert all("half_verdict" in r["result"] for r in records if r["a"]["trained"] or r["b"]["trained"])
    main = set(table.loc[table["data"].str.startswith(ds), "method"])
    assert {f"{label}{HALF_SUFFIX}" for label in study.runs} <= main  # the results table shows them, ...
    beats = [line for line in study.summary(table, records).splitlines() if "does not beat" in line]
    assert not any(HALF_SUFFIX in line for line in beats)  # ... but they are no baseline a learned arm must beat
    assert not any("half" in k for k in study.headline(table))
    study.half_budget = False  # budget stability off: the claims carry no half_arrays
    assert not any("half_arrays" in x for spec in study.claim_specs() for x in (spec["a"], spec["b"]))
