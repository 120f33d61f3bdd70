"""SRGAN (paper 004 / Ledig et al.): shapes and sizes against the papers, losses against their
formulas, content networks against references, the SR metrics, the tasks under `fit`, and video."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from facefill.errors import ConfigError, DataError
from facefill.models import srgan
from facefill.models.srgan import (
    Discriminator,
    Generator,
    SRGANConfig,
    SRGANTask,
    SRResNetTask,
    discriminator_loss,
    make_lr,
    n_params,
    perceptual_loss,
    rgb_to_y,
    sr_metrics,
    upscale,
)
from facefill.perceptual import (
    ContentLoss,
    ContentLossConfig,
    EfficientNetLite0Features,
    SameConv2d,
    effnet_lite0_features,
    vgg19_weights_path,
)
from facefill.train import TrainConfig, fit

# --------------------------------------------------------------------------- architecture

@pytest.mark.parametrize("scale", [2, 4, 8])
def test_generator_output_shape_per_scale(scale):
    g = Generator(scale, n_blocks=2, width=8)
    assert g(torch.zeros(2, 3, 8, 12)).shape == (2, 3, 8 * scale, 12 * scale)
    assert len(g.upsample) == int(math.log2(scale))  # one sub-pixel block per ×2


def test_generator_layers_match_ledig():
    g = Generator(4)
    assert g.head[0].kernel_size == (9, 9) and g.tail.kernel_size == (9, 9)
    assert len(g.blocks) == 16
    body = g.blocks[0].body
    assert [type(m).__name__ for m in body] == ["Conv2d", "BatchNorm2d", "PReLU", "Conv2d", "BatchNorm2d"]
    up = g.upsample[0]
    assert (up.conv.in_channels, up.conv.out_channels, up.shuffle.upscale_factor) == (64, 256, 2)


def test_parameter_counts():
    """Hand count of Ledig's sizes; G ×2 + D 64 px ≈ paper 004's 14 M trainable parameters."""
    conv = lambda k, i, o: k * k * i * o + o
    block = 2 * conv(3, 64, 64) + 2 * 2 * 64 + 1  # two convs, two BN (γ, β), one PReLU
    trunk = conv(9, 3, 64) + 1 + 16 * block + conv(3, 64, 64) + 2 * 64 + conv(9, 64, 3)
    up = conv(3, 64, 256) + 1
    for s in (2, 4, 8):
        assert n_params(Generator(s)) == trunk + int(math.log2(s)) * up
    chans = [64, 64, 128, 128, 256, 256, 512, 512]
    convs = sum(conv(3, i, o) for i, o in zip([3] + chans[:-1], chans)) + 2 * sum(chans[1:])
    for hr in (64, 128):
        flat = 512 * (hr // 16) ** 2
        assert n_params(Discriminator(hr)) == convs + flat * 1024 + 1024 + 1024 + 1
    total = n_params(Generator(2)) + n_params(Discriminator(64))
    assert 14.0e6 <= total < 15.0e6


@pytest.mark.parametrize("hr", [64, 128])
def test_discriminator_strides_and_logit(hr):
    d = Discriminator(hr, width=8, dense=16)
    strides = [m.stride[0] for m in d.features if isinstance(m, torch.nn.Conv2d)]
    assert strides == [1, 2, 1, 2, 1, 2, 1, 2]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in d.features) == 7  # none after the first conv
    assert d(torch.zeros(3, 3, hr, hr)).shape == (3,)


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="scale"):
        SRGANConfig(scale=3)
    with pytest.raises(ConfigError, match="multiple of 16"):
        SRGANConfig(hr_size=72)
    with pytest.raises(ConfigError, match="content"):
        ContentLossConfig(content="vgg16")
    with pytest.raises(ConfigError, match="1..16"):
        ContentLossConfig(content="effnet_lite0", content_layer="17")


# --------------------------------------------------------------------------- losses

def test_losses_equal_the_formulas():
    torch.manual_seed(0)
    real, fake = torch.randn(5), torch.randn(5)
    d, _ = discriminator_loss(real, fake)
    ref = -(torch.log(torch.sigmoid(real)) + torch.log(1 - torch.sigmoid(fake))).mean()
    assert torch.allclose(d, ref, atol=1e-6)
    content = torch.tensor(0.3)
    g, logs = perceptual_loss(content, fake, 1e-3)
    assert torch.allclose(g, 0.3 - 1e-3 * torch.log(torch.sigmoid(fake)).mean(), atol=1e-6)
    assert set(logs) == {"g_content", "g_adv", "g_total"}


def test_mse_content_loss_is_pixel_mse():
    a, b = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8)
    loss = ContentLoss(ContentLossConfig(content="mse"))
    assert torch.allclose(loss(a, b), ((a - b) ** 2).mean())


# --------------------------------------------------------------------------- content networks

def test_same_conv_matches_tensorflow_same_padding():
    """TF SAME: output ceil(n/s), the odd extra pad at the bottom/right."""
    conv = SameConv2d(1, 1, 3, 2, bias=False)
    torch.nn.init.ones_(conv.weight)
    x = torch.arange(16.0).view(1, 1, 4, 4)
    ref = F.conv2d(F.pad(x, [0, 1, 0, 1]), conv.weight, stride=2)  # pad total 1: 0 before, 1 after
    assert torch.equal(conv(x), ref) and conv(x).shape[-1] == 2
    assert SameConv2d(1, 1, 5, 2)(torch.zeros(1, 1, 7, 7)).shape[-1] == 4


def test_effnet_lite0_features_match_reference_implementation():
    ref_pkg = pytest.importorskip("efficientnet_lite_pytorch")
    from facefill.perceptual import effnet_lite0_weights_path

    ref = ref_pkg.EfficientNet.from_pretrained("efficientnet-lite0", weights_path=str(effnet_lite0_weights_path())).eval()
    ours = effnet_lite0_features(16)
    torch.manual_seed(0)
    x = torch.rand(1, 3, 224, 224) * 2 - 1
    with torch.no_grad():
        h = ref._swish(ref._bn0(ref._conv_stem(((x + 1) * 127.5 - 127) / 128)))
        for b in ref._blocks:
            h = b(h)
        assert torch.allclose(ours(x), h, atol=1e-5)


def test_effnet_lite0_structure_and_frozen_weights():
    full = EfficientNetLite0Features(16)
    assert len(full._blocks) == 16 and full.out_channels == 320
    net = effnet_lite0_features(3)
    assert net.out_channels == 24 and not any(p.requires_grad for p in net.parameters())
    assert net(torch.zeros(1, 3, 64, 64)).shape == (1, 24, 16, 16)  # stride 4
    loss = ContentLoss(ContentLossConfig(content="effnet_lite0", content_layer="3")).train()
    assert not loss.features.training  # BatchNorm keeps its ImageNet statistics
    sr = torch.zeros(1, 3, 32, 32, requires_grad=True)
    out = loss(sr, torch.rand(1, 3, 32, 32))
    out.backward()
    assert out > 0 and sr.grad.abs().sum() > 0


def test_vgg19_without_weights_says_how_to_supply_them(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(ConfigError, match="vgg19-dcbb9e9d.pth"):
        vgg19_weights_path()
    with pytest.raises(ConfigError, match="not a file"):
        ContentLoss(ContentLossConfig(content="vgg19", content_layer="relu2_2", vgg_weights=str(tmp_path / "nope.pth")))


def test_vgg19_with_supplied_weights(tmp_path):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    net = vgg19(weights=None)
    torch.save(net.state_dict(), tmp_path / "vgg19.pth")
    loss = ContentLoss(ContentLossConfig(content="vgg19", content_layer="relu2_2", vgg_weights=str(tmp_path / "vgg19.pth")))
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    mean, std = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = net.eval().features[:9](((x + 1) / 2 - mean) / std)
        assert torch.allclose(loss.features(x), ref, atol=1e-5)


# --------------------------------------------------------------------------- data and metrics

def test_make_lr_is_pil_lanczos_and_upscale_is_pil_bicubic():
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    lr = make_lr(hr, 4)
    assert lr.shape == (2, 4, 4, 3)
    assert np.array_equal(lr[1], np.asarray(Image.fromarray(hr[1]).resize((4, 4), Image.LANCZOS)))
    up = upscale(lr, 4, "bicubic")
    assert np.array_equal(up[0], np.asarray(Image.fromarray(lr[0]).resize((16, 16), Image.BICUBIC)))
    with pytest.raises(ConfigError, match="divisible"):
        make_lr(hr[:, :15, :15], 2)
    with pytest.raises(ConfigError, match="uint8"):
        make_lr(hr.astype(np.float32), 2)


def test_rgb_to_y_matches_bt601():
    px = np.array([[[[255, 255, 255], [0, 0, 0]], [[255, 0, 0], [10, 200, 30]]]], np.uint8)
    y = rgb_to_y(px)[0, 0].numpy()
    ref = 16 + (65.481 * px[0, ..., 0] + 128.553 * px[0, ..., 1] + 24.966 * px[0, ..., 2]) / 255
    assert np.allclose(y, ref) and np.isclose(y[0, 0], 235.0) and np.isclose(y[0, 1], 16.0)


def test_sr_metrics_crop_the_border():
    rng = np.random.default_rng(1)
    hr = rng.integers(0, 256, (2, 24, 24, 3), dtype=np.uint8)
    pred = hr.copy()
    pred[:, :2] = 0  # damage only the 2-px border
    clean = sr_metrics(pred, hr, border=2)
    assert np.all(clean["psnr_rgb"] == 100.0) and np.allclose(clean["ssim_y"], 1.0)  # the metrics' cap for identical
    hurt = sr_metrics(pred, hr, border=1)
    mse = ((pred[:, 1:-1, 1:-1].astype(float) - hr[:, 1:-1, 1:-1]) ** 2).mean(axis=(1, 2, 3))
    assert np.allclose(hurt["psnr_rgb"], 10 * np.log10(255**2 / mse))


# --------------------------------------------------------------------------- training

def _pairs(n=8, hr=32, scale=2, seed=0):
    rng = np.random.default_rng(seed)
    hr_img = rng.integers(0, 256, (n, hr, hr, 3), dtype=np.uint8)
    return hr_img, make_lr(hr_img, scale)


def test_srresnet_then_srgan_train_resume_and_snapshot(tmp_path):
    hr, lr = _pairs()
    cfg = SRGANConfig(scale=2, hr_size=32, n_blocks=1, width=8, d_width=4, d_dense=8)
    tcfg = TrainConfig(steps=4, batch_size=4, precision="fp32", device="cpu", progress=False, checkpoint_every=2, log_every=1)
    snap = {"snapshot_lr": torch.from_numpy(lr[:2]).permute(0, 3, 1, 2).float() / 127.5 - 1, "snapshot_steps": [1, 3, 5], "snapshot_dir": tmp_path / "snaps"}
    res = SRResNetTask(cfg, **snap)
    hist = fit(res, (hr, lr), tcfg, tmp_path / "res", tmp_path / "ckpt_res", sample_images=(hr[:2], lr[:2]))
    assert int(res.generator.iterations) == 4 and list(hist["step"]) == [1, 2, 3, 4]
    gan = SRGANTask(cfg, ContentLossConfig(content="mse"), init_generator=res.generator.state_dict(), **snap)
    assert torch.equal(gan.generator.tail.weight, res.generator.tail.weight)
    g_hist = fit(gan, (hr, lr), TrainConfig(**{**tcfg.__dict__, "steps": 2}), tmp_path / "gan", tmp_path / "ckpt_gan")
    assert int(gan.generator.iterations) == 6
    assert {"d_total", "g_content", "g_adv", "g_mse"} <= set(g_hist.columns)
    assert sorted(srgan.load_snapshots(tmp_path / "snaps")) == [1, 3, 5]
    assert srgan.load_snapshots(tmp_path / "snaps")[5].shape == (2, 3, 32, 32)
    # a finished run resumes instead of retraining: same weights, same counter
    again = SRGANTask(cfg, ContentLossConfig(content="mse"), init_generator=None)
    fit(again, (hr, lr), TrainConfig(**{**tcfg.__dict__, "steps": 2}), tmp_path / "gan", tmp_path / "ckpt_gan")
    assert int(again.generator.iterations) == 6 and torch.equal(again.generator.tail.weight, gan.generator.tail.weight)


def test_srresnet_learns_to_beat_a_flat_image():
    """Thirty pixel-MSE steps on one smooth image batch: the SR error falls well below the start."""
    torch.manual_seed(0)
    _, xx = np.mgrid[0:16, 0:16]
    hr = np.stack([(128 + 100 * np.sin(xx / 3.0 + k)).astype(np.uint8) for k in range(3)], -1)[None].repeat(4, 0)
    lr = make_lr(hr, 2)
    task = SRResNetTask(SRGANConfig(scale=2, hr_size=16, n_blocks=1, width=16, lr=1e-3))
    task.configure(torch.device("cpu"))
    x_hr = torch.from_numpy(hr).permute(0, 3, 1, 2).float() / 127.5 - 1
    x_lr = torch.from_numpy(lr).permute(0, 3, 1, 2).float() / 127.5 - 1
    off = lambda: torch.autocast("cpu", enabled=False)
    first = float(task.training_step((x_hr, x_lr), off)["g_mse"])
    for _ in range(30):
        last = float(task.training_step((x_hr, x_lr), off)["g_mse"])
    assert last < 0.2 * first


# --------------------------------------------------------------------------- video

def test_video_round_trip_side_by_side(tmp_path):
    from facefill import video

    yy, xx = np.mgrid[0:64, 0:64]
    face = np.stack([xx * 4, yy * 4, 255 - (xx + yy) * 2], -1).astype(np.uint8)  # smooth: H.264 keeps it
    hr = video.pan_zoom_clip(face, 5, 32)
    assert hr.shape == (5, 32, 32, 3)
    src = video.write_video(make_lr(hr, 2), tmp_path / "lr.mp4", fps=5)
    frames, fps = video.read_video(src)
    assert frames.shape == (5, 16, 16, 3) and fps == pytest.approx(5)
    stats = video.super_resolve_video(src, tmp_path / "out.mp4", lambda f: upscale(f, 2, "bicubic"), batch_size=2, reference=hr)
    out, _ = video.read_video(tmp_path / "out.mp4")
    assert stats["frames"] == 5 and out.shape == (5, 32, 96, 3) and stats["sr_frames_per_s"] > 0
    # the HR third of the side-by-side video is the reference (up to H.264 loss)
    assert np.abs(out[:, :, 64:].astype(float) - hr).mean() < 8
    with pytest.raises(DataError, match="no video file"):
        video.super_resolve_video(tmp_path / "missing.mp4", tmp_path / "x.mp4", lambda f: f)
    with pytest.raises(DataError, match="reference"):
        video.super_resolve_video(src, tmp_path / "y.mp4", lambda f: upscale(f, 2), reference=hr[:, :16])


# --------------------------------------------------------------------------- bench registration

def test_bench_cases_registered():
    from facefill import bench

    assert {"srgan64x2", "srgan64x4", "srgan128x4"} <= set(bench.CASES)
    with pytest.raises(NotImplementedError):
        bench.CASES["srgan64x2"](torch.device("cpu"), 2, "plain")
