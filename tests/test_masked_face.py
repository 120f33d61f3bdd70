"""Paper 002: the ELU / max-pool context encoder and the face-mask occlusion generator."""
import contextlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from facefill import bench, face_masks
from facefill.adversarial import composite
from facefill.errors import ConfigError, DataError
from facefill.models import elu_context_encoder as ece
from facefill.train import TrainConfig, fit, to_model_input

TINY = {"width": 2, "max_width": 8}


# --------------------------------------------------------------------------- architecture (§2.2, §2.3)

def _convs(module):
    return [m for m in module.modules() if isinstance(m, nn.Conv2d)]


@pytest.mark.parametrize("size", [128, 256, 512])
def test_shapes_follow_the_paper(size):
    cfg = ece.EluContextEncoderConfig(image_size=size, **TINY)
    task = ece.EluContextEncoderTask(cfg)
    x = torch.rand(2, 3, size, size) * 2 - 1
    with torch.no_grad():
        z = task.generator.encoder(x)
        out = task.generator.decoder(z)
        d = task.discriminator(x)
    # five 2x2 pools: S -> S/32; the latent is 3 maps of that grid, flattened
    assert z.shape == (2, 3 * (size // 32) ** 2)
    assert out.shape == x.shape and out.abs().max() <= 1  # tanh: image range
    assert d.shape == (2,)


def test_six_units_of_3x3_then_2x2_convs():
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(**TINY))
    for net in (task.generator.encoder, task.generator.decoder, task.discriminator):
        assert len(net.units) == ece.N_UNITS == 6
        for unit in net.units:
            assert [c.kernel_size for c in _convs(unit)] == [(3, 3), (2, 2)]
    # decoder widths = encoder widths reversed (§2.3)
    enc = [u.conv3.out_channels for u in task.generator.encoder.units]
    dec = [u.conv3.out_channels for u in task.generator.decoder.units]
    assert dec == enc[::-1] == [8, 8, 8, 8, 4, 2]
    assert task.generator.encoder.to_latent.out_channels == 3


def test_reference_widths():
    assert ece.EluContextEncoderConfig().widths == [32, 64, 128, 256, 256, 256]


def test_max_pool_after_all_units_but_the_last():
    cfg = ece.EluContextEncoderConfig(**TINY)
    enc = ece.Encoder(cfg)
    sizes = []
    hooks = [u.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1])) for u in enc.units]
    enc(torch.zeros(1, 3, 128, 128))
    for h in hooks:
        h.remove()
    assert sizes == [128, 64, 32, 16, 8, 4]


def test_unit_matches_keras_same_padding_reference():
    torch.manual_seed(0)
    unit = ece.Unit(2, 3)
    x = torch.randn(1, 2, 5, 6)
    h = F.elu(unit.conv3(x))
    w, b = unit.conv2.weight.detach(), unit.conv2.bias.detach()
    ref = torch.zeros(1, 3, 5, 6)
    hp = torch.zeros(1, 3, 6, 7)
    hp[..., :5, :6] = h  # Keras "same" for k=2: the one padding pixel goes right/bottom
    for i in range(5):
        for j in range(6):
            ref[0, :, i, j] = (w * hp[0, :, i : i + 2, j : j + 2]).sum((1, 2, 3)) + b
    torch.testing.assert_close(unit(x), F.elu(ref), rtol=1e-5, atol=1e-6)


def test_batch_norm_only_in_the_bn_variant():
    plain = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(**TINY))
    bn = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(batch_norm=True, **TINY))
    count = lambda t: sum(isinstance(m, nn.BatchNorm2d) for k in t.modules.values() for m in k.modules())
    assert count(plain) == 0
    assert count(bn) == 2 * 6 * 3  # after both convs of every unit of encoder, decoder and D


@pytest.mark.parametrize("bad", [{"image_size": 100}, {"image_size": 16}, {"fill": 2.0}, {"width": 0}, {"width": 16, "max_width": 8},
                                 {"init": "he"}])
def test_bad_config_is_a_clear_error(bad):
    with pytest.raises(ConfigError):
        ece.EluContextEncoderConfig(**bad)


def test_glorot_init_is_keras_default_and_torch_init_is_left_alone():
    """Keras (the paper's framework) starts every Conv2D / Dense Glorot-uniform, biases 0: weights uniform in
    ±sqrt(6 / (fan_in + fan_out)) with fans k·k·c_in and k·k·c_out; "torch" keeps PyTorch's own init (biases ≠ 0)."""
    torch.manual_seed(0)
    glorot = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, width=8, max_width=64))
    torch.manual_seed(0)
    plain = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, width=8, max_width=64, init="torch"))
    layers = lambda t: [m for net in (t.generator, t.discriminator) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    for m in layers(glorot):
        w = m.weight
        fan_in, fan_out = w[0].numel(), w.shape[0] * w[0, 0].numel()
        bound = (6 / (fan_in + fan_out)) ** 0.5
        assert float(w.abs().max()) <= bound and float(w.abs().max()) > 0.5 * bound
        assert m.bias is None or not m.bias.any()
        if w.numel() >= 1000:  # uniform in ±bound: variance bound² / 3
            assert float(w.var()) == pytest.approx(bound**2 / 3, rel=0.15)
    assert any(m.bias is not None and m.bias.abs().sum() > 0 for m in layers(plain))


# --------------------------------------------------------------------------- losses (Eq. 1)

def test_losses_against_the_formulas():
    torch.manual_seed(1)
    out, x = torch.rand(4, 3, 8, 8) * 2 - 1, torch.rand(4, 3, 8, 8) * 2 - 1
    lf, lr = torch.randn(4), torch.randn(4)
    total, logs = ece.generator_losses(out, x, lf)
    rec = ((out - x) ** 2).mean()
    adv = -torch.log(torch.sigmoid(lf)).mean()
    torch.testing.assert_close(logs["g_rec"], rec)
    torch.testing.assert_close(logs["g_adv"], adv)
    torch.testing.assert_close(total, rec + adv)  # unweighted sum
    d, _ = ece.discriminator_loss(lr, lf)
    torch.testing.assert_close(d, -(torch.log(torch.sigmoid(lr)) + torch.log(1 - torch.sigmoid(lf))).mean())


def test_composite_keeps_known_pixels_exactly():
    x, out = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    m = torch.zeros(2, 1, 16, 16)
    m[:, :, 8:] = 1
    r = composite(x, out, m)
    assert torch.equal(r[:, :, :8], x[:, :, :8]) and torch.equal(r[:, :, 8:], out[:, :, 8:])


def _batch(n=4, size=64):
    g = torch.Generator().manual_seed(0)
    x = torch.rand(n, 3, size, size, generator=g) * 2 - 1
    m = ece.template_masks(size, n) * 2 - 1
    return x, m.expand(-1, 3, -1, -1).contiguous()


def test_discriminator_is_updated_before_the_generator():
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, **TINY), fused_adam=False)
    task.configure(torch.device("cpu"))
    order = []
    for name, opt in task.optimizers.items():
        step = opt.step
        opt.step = lambda *a, _n=name, _s=step, **k: (order.append(_n), _s(*a, **k))[1]
    before = {k: [p.detach().clone() for p in m.parameters()] for k, m in task.modules.items()}
    logs = task.training_step(_batch(), contextlib.nullcontext)
    assert order == ["discriminator", "generator"]
    for k, m in task.modules.items():
        assert any(not torch.equal(a, b) for a, b in zip(before[k], m.parameters())), k
    assert all(np.isfinite(float(v)) for v in logs.values())
    torch.testing.assert_close(logs["g_total"], logs["g_rec"] + logs["g_adv"])


def test_training_step_needs_masks():
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, **TINY))
    task.configure(torch.device("cpu"))
    with pytest.raises(ConfigError, match="mask"):
        task.training_step(torch.zeros(2, 3, 64, 64), contextlib.nullcontext)


def test_inpaint_only_changes_the_masked_region():
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, **TINY))
    x, m = _batch()
    masks = face_masks.from_model_input(m)
    r = task.inpaint(x, masks)
    assert torch.equal(r[masks.expand_as(r) == 0], x[masks.expand_as(x) == 0])


def test_fit_trains_and_resumes(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (8, 64, 64, 3), dtype=np.uint8)
    masks = face_masks.as_uint8_images(ece.template_masks(64, 8))
    cfg = TrainConfig(steps=2, batch_size=4, precision="fp32", progress=False, log_every=1, checkpoint_every=1)
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, **TINY))
    h = fit(task, (images, masks), cfg, tmp_path / "out", tmp_path / "ckpt")
    assert list(h["step"]) == [1, 2] and {"g_rec", "g_adv", "g_total", "d_total"} <= set(h.columns)
    again = fit(ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, **TINY)), (images, masks), cfg,
                tmp_path / "out", tmp_path / "ckpt")
    assert again.equals(h)  # a finished run is resumed, not redone


def test_bench_cases_are_registered():
    assert {"elu_ce128", "elu_ce128_bn", "elu_ce128_w8", "elu_ce128_w8_bn"} <= set(bench.CASES)


# --------------------------------------------------------------------------- face masks

def test_mask_covers_nose_to_chin_and_not_the_eyes():
    pts = face_masks.template_landmarks(128, 128)
    for shape in face_masks.SHAPES:
        for seed in range(5):
            poly = face_masks.mask_polygon(pts, shape, np.random.Generator(np.random.PCG64(seed)))
            m = face_masks.rasterize(poly, 128, 128)
            at = {i: m[round(float(pts[i, 1])), round(float(pts[i, 0]))] for i in range(68)}
            assert all(at[i] == 1 for i in (33, 48, 51, 54, 57, 62)), (shape, seed)  # nose base, mouth
            assert all(at[i] == 0 for i in range(36, 48)), (shape, seed)  # eyes stay visible
            assert 0.12 < m.mean() < 0.5


def test_masks_are_seeded_and_counted():
    imgs = np.full((3, 128, 128, 3), 128, np.uint8)  # no face: the detector fails -> template fallback
    pts = np.stack([face_masks.template_landmarks(128, 128)] * 3)
    a = face_masks.face_masks(imgs, 0, points=pts, detected=np.array([True, False, True]))
    b = face_masks.face_masks(imgs, 0, points=pts, detected=np.array([True, False, True]))
    c = face_masks.face_masks(imgs, 1, points=pts)
    assert torch.equal(a.masks, b.masks) and not torch.equal(a.masks, c.masks)
    assert a.n_fallback == 1 and a.masks.shape == (3, 1, 128, 128)
    assert set(a.masks.unique().tolist()) == {0.0, 1.0}


def test_detection_failure_falls_back_to_the_template():
    pytest.importorskip("dlib")
    imgs = np.full((2, 128, 128, 3), 128, np.uint8)
    fm = face_masks.face_masks(imgs, 0)
    assert fm.n_fallback == 2
    np.testing.assert_allclose(fm.points[0], face_masks.template_landmarks(128, 128))


@pytest.mark.real_data
def test_masks_on_real_faces(real_data):
    from facefill import data

    imgs = data.load_faces("celeba-hq", 128, "test", 6, seed=0)
    fm = face_masks.face_masks(imgs, 0)
    assert fm.n_fallback <= 1
    for i in np.flatnonzero(fm.detected):
        for j in (51, 57, 62):  # mouth
            x, y = np.round(fm.points[i, j]).astype(int)
            assert fm.masks[i, 0, y, x] == 1


def test_mask_images_roundtrip_through_the_training_loop_format():
    m = ece.template_masks(32, 2)
    as_images = face_masks.as_uint8_images(m)
    assert as_images.shape == (2, 32, 32, 3) and as_images.dtype == np.uint8
    back = face_masks.from_model_input(to_model_input(torch.from_numpy(as_images), torch.device("cpu"), False))
    assert torch.equal(back, m)


def test_bad_mask_input_is_a_clear_error():
    with pytest.raises(ConfigError):
        face_masks.FaceMaskConfig(shapes=("bandana",))
    with pytest.raises(DataError):
        face_masks.mask_polygon(np.zeros((5, 2)), "surgical", np.random.default_rng(0))
    with pytest.raises(DataError):
        face_masks.detect_landmarks(np.zeros((2, 64, 64), np.uint8))
