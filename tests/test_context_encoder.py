"""Pathak context encoder: shapes, parameter counts, the literal train.lua form, losses, masks."""
import pytest
import torch
import torch.nn.functional as F

from facefill.errors import ConfigError
from facefill.models import context_encoder as ce
from facefill.runtime import autocast_factory


def n_params(m):
    return sum(p.numel() for p in m.parameters())


def test_paper_size_shapes_and_parameter_counts():
    cfg = ce.ContextEncoderConfig()
    task = ce.ContextEncoderTask(cfg)
    g = task.generator
    # encoder 3-64-64-128-256-512 on 128 px: 64, 32, 16, 8, 4 px maps
    x = torch.randn(2, 3, 128, 128)
    sizes = []
    h = x
    for layer in g.encoder.features:
        h = layer(h)
        if isinstance(layer, torch.nn.Conv2d):
            sizes.append(tuple(h.shape[1:]))
    assert sizes == [(64, 64, 64), (64, 32, 32), (128, 16, 16), (256, 8, 8), (512, 4, 4)]
    assert g.encoder(x).shape == (2, 4000)
    assert g(x).shape == (2, 3, 64, 64)
    assert task.discriminator(torch.randn(2, 3, 64, 64)).shape == (2,)
    # counted by hand: convs 3*64*16 + 64*64*16 + 64*128*16 + 128*256*16 + 256*512*16, BN affine, bottleneck 8192*4000
    enc_convs = 16 * (3 * 64 + 64 * 64 + 64 * 128 + 128 * 256 + 256 * 512) + 64  # + first conv's bias
    enc_bn = 2 * (64 + 128 + 256 + 512) + 2 * 4000
    assert n_params(g.encoder) == enc_convs + enc_bn + 8192 * 4000
    assert n_params(g) == 71_124_608


def test_small_variant_predicts_32px_patch():
    cfg = ce.ContextEncoderConfig(image_size=64, hole=32)
    g = ce.ContextEncoder(cfg)
    assert g(torch.randn(2, 3, 64, 64)).shape == (2, 3, 32, 32)
    assert ce.PatchDiscriminator(32)(torch.randn(2, 3, 32, 32)).shape == (2,)


@pytest.mark.parametrize("size,hole", [(128, 64), (64, 32)])
def test_linear_bottleneck_equals_train_lua_convolutions(size, hole):
    cfg = ce.ContextEncoderConfig(image_size=size, hole=hole, width=8, bottleneck=50)
    g = ce.ContextEncoder(cfg).eval()
    ref = ce.convolutional_reference(g).eval()
    x = torch.randn(3, 3, size, size)
    torch.testing.assert_close(g(x), ref(x), rtol=1e-5, atol=1e-6)


def test_init_is_dcgan():
    g = ce.ContextEncoder(ce.ContextEncoderConfig())
    w = g.encoder.bottleneck.weight
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3


def test_drop_centre_keeps_overlap_and_fills_mean():
    cfg = ce.ContextEncoderConfig()
    x = torch.rand(1, 3, 128, 128) * 2 - 1
    masked = ce.drop_centre(x, cfg)
    # the 64 hole starts at 32; the dropped square is shrunk by overlap=4: 36..92
    assert torch.equal(masked[:, :, 32:36, 32:96], x[:, :, 32:36, 32:96])
    fill = torch.tensor(ce.PATHAK_MEAN_RGB).view(1, 3, 1, 1)
    assert torch.allclose(masked[:, :, 36:92, 36:92], fill.expand(1, 3, 56, 56))
    assert torch.equal(masked[:, :, :32], x[:, :, :32])


def test_overlap_weights_and_loss_by_hand():
    cfg = ce.ContextEncoderConfig(image_size=64, hole=16, overlap=2, overlap_weight=10.0)
    w = ce.overlap_weights(cfg)
    assert w.shape == (1, 1, 16, 16)
    assert w[0, 0, 0, 0] == 10 and w[0, 0, 1, 5] == 10 and w[0, 0, 2, 2] == 1 and w[0, 0, 8, 8] == 1
    n_border = 16 * 16 - 12 * 12
    pred, target = torch.ones(1, 3, 16, 16), torch.zeros(1, 3, 16, 16)
    expected = (10 * n_border + 144) / 256
    assert ce.reconstruction_loss(pred, target, w).item() == pytest.approx(expected)
    logits = torch.zeros(1)
    total, logs = ce.generator_loss(pred, target, logits, w, 0.001)
    assert total.item() == pytest.approx(0.999 * expected + 0.001 * F.softplus(torch.zeros(1)).item())


def test_paste_and_crop_are_inverse():
    cfg = ce.ContextEncoderConfig()
    x = torch.randn(2, 3, 128, 128)
    patch = torch.randn(2, 3, 64, 64)
    y = ce.paste_centre(x, patch, cfg)
    assert torch.equal(ce.crop_centre(y, cfg), patch)
    y[:, :, 32:96, 32:96] = x[:, :, 32:96, 32:96]
    assert torch.equal(y, x)


def test_training_step_reduces_reconstruction_on_a_fixed_batch():
    torch.manual_seed(0)
    cfg = ce.ContextEncoderConfig(image_size=64, hole=32, width=8, bottleneck=64)
    task = ce.ContextEncoderTask(cfg)
    task.configure(torch.device("cpu"))
    x = torch.rand(8, 3, 64, 64) * 2 - 1
    ac = autocast_factory(torch.device("cpu"), "fp32")
    first = task.training_step(x, ac)["g_rec"].item()
    for _ in range(30):
        last = task.training_step(x, ac)["g_rec"].item()
    assert last < 0.8 * first  # it learns (random targets: slow but steady)


def test_learning_rates_follow_pathak():
    task = ce.ContextEncoderTask(ce.ContextEncoderConfig(width=8, bottleneck=16))
    task.configure(torch.device("cpu"))
    assert task.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(2e-4)
    assert task.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(2e-3)
    assert task.optimizers["generator"].param_groups[0]["betas"][0] == 0.5


@pytest.mark.parametrize("kwargs", [dict(image_size=100), dict(hole=48), dict(overlap=40), dict(lambda_adv=1.5), dict(output="full")])
def test_bad_config_is_a_clear_error(kwargs):
    with pytest.raises(ConfigError):
        ce.ContextEncoderConfig(**kwargs)


def test_band_weights_generalise_the_centre_border():
    m = torch.zeros(1, 1, 16, 16)
    m[..., 6:10, 6:10] = 1
    w = ce.band_weights(m, overlap=2, overlap_weight=10.0)
    assert w[0, 0, 7, 7] == 1 and w[0, 0, 4, 4] == 10 and w[0, 0, 5, 8] == 10 and w[0, 0, 3, 8] == 0
    assert (w == 10).sum() == 8 * 8 - 4 * 4


def test_masked_task_keeps_known_pixels_and_trains():
    torch.manual_seed(0)
    cfg = ce.ContextEncoderConfig(image_size=64, hole=32, width=8, bottleneck=32, output="image")
    task = ce.MaskedContextEncoderTask(cfg, "random_blocks")
    task.configure(torch.device("cpu"))
    x = torch.rand(4, 3, 64, 64) * 2 - 1
    logs = task.training_step(x, autocast_factory(torch.device("cpu"), "fp32"))
    assert all(torch.isfinite(torch.as_tensor(v)) for v in logs.values())
    masks = task.masks(4, seed=3)
    out = task.inpaint(x, masks)
    assert torch.equal(out * (1 - masks), x * (1 - masks))
    assert task.sample(x).shape == (12, 3, 64, 64)
    with pytest.raises(ConfigError):
        ce.MaskedContextEncoderTask(ce.ContextEncoderConfig(), "random_blocks")
