"""The adversarial step written once (facefill.adversarial): the GAN losses against the BCE
reference, each paper's task against a hand-written D-then-G step, the shared inpainting API, and
the import direction between the benchmark and the models."""
import ast
import copy
import inspect
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from facefill import adversarial as adv
from facefill import bench, face_masks
from facefill.errors import ConfigError
from facefill.masks import center_mask, make_masks, random_block_masks
from facefill.models import cascade as cc
from facefill.models import context_encoder as ce
from facefill.models import dcgan, srgan
from facefill.models import elu_context_encoder as ece
from facefill.models import multiscale as ms
from facefill.perceptual import ContentLossConfig

NO_AUTOCAST = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731
BF16 = lambda: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731


def bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits.float(), torch.full_like(logits.float(), target))


# --------------------------------------------------------------------------- losses

@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_losses_equal_the_bce_reference_in_fp32(dtype):
    g = torch.Generator().manual_seed(0)
    real, fake = (torch.randn(7, generator=g) * 3).to(dtype), (torch.randn(7, generator=g) * 3).to(dtype)
    loss_d, logs = adv.discriminator_loss(real, fake)
    ref_real, ref_fake = bce(real, 1.0), bce(fake, 0.0)
    assert loss_d.dtype == torch.float32 and list(logs) == ["d_real", "d_fake", "d_total"]
    torch.testing.assert_close(logs["d_real"], ref_real)
    torch.testing.assert_close(logs["d_fake"], ref_fake)
    torch.testing.assert_close(loss_d, ref_real + ref_fake)
    # the same maths written with log σ: −E[log D(x)] − E[log(1 − D(G(z)))]
    sig = lambda t: torch.sigmoid(t.float())  # noqa: E731
    torch.testing.assert_close(loss_d, -(torch.log(sig(real)) + torch.log(1 - sig(fake))).mean(), rtol=1e-5, atol=1e-5)

    g_adv, logs = adv.generator_adversarial_loss(fake)
    torch.testing.assert_close(g_adv, bce(fake, 1.0))
    torch.testing.assert_close(g_adv, -torch.log(sig(fake)).mean(), rtol=1e-5, atol=1e-5)  # non-saturating
    assert g_adv.dtype == torch.float32 and list(logs) == ["g_adv"]


def test_generator_loss_mixes_reconstruction_and_adversarial_terms():
    fake, rec = torch.randn(5), torch.tensor(0.37, dtype=torch.bfloat16)
    total, logs = adv.generator_loss(fake, rec, 0.999, 0.001)
    assert list(logs) == ["g_rec", "g_adv", "g_total"] and total.dtype == torch.float32
    torch.testing.assert_close(total, 0.999 * rec.float() + 0.001 * bce(fake, 1.0))
    total, logs = adv.generator_loss(fake, rec, rec_key="g_content")
    assert list(logs) == ["g_content", "g_adv", "g_total"]
    torch.testing.assert_close(total, rec.float() + bce(fake, 1.0))
    total, logs = adv.generator_loss(fake)  # a plain GAN: L_G = L_G^adv
    assert list(logs) == ["g_adv"]
    torch.testing.assert_close(total, bce(fake, 1.0))


def test_composite_keeps_known_pixels_and_eval_helpers_restore_the_mode():
    x, p = torch.rand(2, 3, 8, 8), torch.rand(2, 3, 8, 8, dtype=torch.float64)
    m = center_mask(8, 4, n=2)
    out = adv.composite(x, p, m)
    assert out.dtype == x.dtype
    assert torch.equal(out[m.expand_as(x) == 0], x[m.expand_as(x) == 0])
    assert torch.equal(out[m.expand_as(x) == 1], p.float()[m.expand_as(x) == 1])

    net = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4)).train()
    y = adv.predict(net, torch.randn(3, 4) * 10, BF16)
    assert net.training and not y.requires_grad and y.dtype == torch.float32 and y.abs().max() <= 1
    with adv.eval_mode(net):
        assert not net.training and not torch.is_grad_enabled()
    assert net.training


# --------------------------------------------------------------------------- each task = a hand-written D-then-G step

def reference_step(task, g_input, real, fake_of, rec_of, lambda_rec, lambda_adv):
    """Goodfellow's Algorithm 1 with k = 1, written out: D on (real, detached fake), then G."""
    G, D = copy.deepcopy(task.generator), copy.deepcopy(task.discriminator)
    opt_g = torch.optim.Adam(G.parameters(), lr=task.lr_g, betas=task.betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=task.lr_d, betas=task.betas)
    out = G(g_input)
    fake = fake_of(out)
    d_real, d_fake = D(real), D(fake.detach())
    l_real, l_fake = bce(d_real, 1.0), bce(d_fake, 0.0)
    opt_d.zero_grad()
    (l_real + l_fake).backward()
    opt_d.step()
    l_adv = bce(D(fake), 1.0)
    rec = rec_of(out)
    loss_g = l_adv if rec is None else lambda_rec * rec + lambda_adv * l_adv
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    logs = {"d_real": l_real, "d_fake": l_fake, "d_total": l_real + l_fake, "g_adv": l_adv}
    if rec is not None:
        logs |= {"g_rec": rec, "g_total": loss_g}
    return logs, G, D, (d_real, d_fake, out)


def run_step(task, batch, keys):
    """The task's step (fp32) from the current RNG state, which is restored afterwards for the reference's draws."""
    task.configure(torch.device("cpu"))
    rng = torch.get_rng_state()
    logs = task.training_step(batch, NO_AUTOCAST)
    torch.set_rng_state(rng)
    assert list(logs) == keys
    return logs, {k: copy.deepcopy(m.state_dict()) for k, m in task.modules.items()}


def compare(logs, after, ref_logs, G, D, rename=None, skip=("n_steps", "iterations")):
    """Same logs and same weights (and BatchNorm statistics) after the step; ``skip``: step counters."""
    for k, v in ref_logs.items():
        torch.testing.assert_close(torch.as_tensor(logs[(rename or {}).get(k, k)]).float(), v.detach().float(),
                                   rtol=1e-5, atol=1e-6)
    for name, net in (("generator", G), ("discriminator", D)):
        for k, v in net.state_dict().items():
            if k not in skip:
                torch.testing.assert_close(after[name][k], v, rtol=1e-4, atol=1e-6, msg=f"{name}.{k}")


def _images(n, size, seed=0):
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_context_encoder_step_is_the_reference_step():
    torch.manual_seed(0)
    cfg = ce.ContextEncoderConfig(image_size=64, hole=32, width=8, bottleneck=32)
    task = ce.ContextEncoderTask(cfg, fused_adam=False)
    before, x = copy.deepcopy(task), _images(4, 64)
    logs, after = run_step(task, x, ["d_real", "d_fake", "d_total", "g_rec", "g_adv", "g_total"])
    w = torch.full((1, 1, 32, 32), 10.0)
    w[..., 4:28, 4:28] = 1.0  # overlap 4 weighted x10
    target = x[:, :, 16:48, 16:48]
    masked = x.clone()
    masked[:, :, 20:44, 20:44] = torch.tensor(ce.PATHAK_MEAN_RGB).view(1, 3, 1, 1)
    ref, G, D, _ = reference_step(before, masked, target, lambda o: o, lambda o: (w * (o - target) ** 2).mean(), 0.999, 0.001)
    compare(logs, after, ref, G, D)


@pytest.mark.parametrize("cascade", [False, True])
def test_masked_and_cascade_context_encoder_steps_are_the_reference_step(cascade):
    torch.manual_seed(1)
    ccfg = cc.CascadeConfig(mask_kind="random_blocks", width=8, bottleneck=32, overlap=2)
    task = cc.CascadeContextEncoderTask(ccfg, cc.make_ce64_task(ccfg).generator, fused_adam=False) if cascade \
        else cc.make_ce128_task(ccfg, fused_adam=False)
    before, x = copy.deepcopy(task), _images(3, 128)
    logs, after = run_step(task, x, ["d_real", "d_fake", "d_total", "g_rec", "g_adv", "g_total"])
    m = random_block_masks(128, 3, seed=int(torch.randint(0, 2**31 - 1, (1,))))  # the step's draw, replayed
    g_in = before.drop(x, m)  # mean fill, or the CE64 pre-fill of the cascade
    if not cascade:
        torch.testing.assert_close(g_in, x * (1 - m) + torch.tensor(ce.PATHAK_MEAN_RGB).view(1, 3, 1, 1) * m)
    band = (F.max_pool2d(m, 5, stride=1, padding=2) - m) * 10 + m
    rec = lambda o: (band * (o - x) ** 2).sum() / (3 * (band > 0).sum())  # noqa: E731
    ref, G, D, _ = reference_step(before, g_in, x, lambda o: x * (1 - m) + o * m, rec, 0.999, 0.001)
    compare(logs, after, ref, G, D)


def test_multiscale_step_is_the_reference_step_and_follows_the_schedule():
    torch.manual_seed(2)
    cfg = ms.MultiScaleConfig(width=2, d_width=4, lr=0.01, lr_decay_every=1)
    task = ms.MultiScaleTask(cfg, fused=False)
    before, x = copy.deepcopy(task), _images(2, 250)
    logs, after = run_step(task, x, ["d_real", "d_fake", "d_total", "g_rec", "g_adv", "g_total", "lr"])
    target = ms.crop_hole(x, cfg)
    ref, G, D, _ = reference_step(before, ms.drop_hole(x, cfg), target, lambda o: o,
                                  lambda o: ms.weighted_l2(o, target, cfg), 0.999, 0.001)
    compare(logs, after, ref, G, D)
    assert int(task.generator.n_steps) == 1 and logs["lr"] == 0.01
    task.training_step(x, NO_AUTOCAST)
    assert task.optimizers["generator"].param_groups[0]["lr"] == pytest.approx(0.009)  # decayed after one step


def test_dcgan_step_is_the_reference_step():
    torch.manual_seed(3)
    task = dcgan.DCGANTask(dcgan.DCGANConfig(image_size=32, width=8, z_dim=16), fused_adam=False)
    before, x = copy.deepcopy(task), _images(4, 32)
    logs, after = run_step(task, x, ["d_real", "d_fake", "d_total", "g_adv", "d_x", "d_g_z"])
    z = torch.rand(4, 16) * 2 - 1  # the step's z ~ U(-1, 1), replayed
    ref, G, D, (d_real, d_fake, _) = reference_step(before, z, x, lambda o: o, lambda o: None, 1.0, 1.0)
    compare(logs, after, ref, G, D)
    torch.testing.assert_close(logs["d_x"], torch.sigmoid(d_real).mean())
    torch.testing.assert_close(logs["d_g_z"], torch.sigmoid(d_fake).mean())


def test_elu_context_encoder_step_is_the_reference_step():
    torch.manual_seed(4)
    task = ece.EluContextEncoderTask(ece.EluContextEncoderConfig(image_size=64, width=2, max_width=8), fused_adam=False)
    before, x = copy.deepcopy(task), _images(4, 64)
    mask_images = (ece.template_masks(64, 4) * 2 - 1).expand(-1, 3, -1, -1).contiguous()
    logs, after = run_step(task, (x, mask_images), ["g_rec", "g_adv", "g_total", "d_total"])
    m = face_masks.from_model_input(mask_images)
    ref, G, D, _ = reference_step(before, x * (1 - m) - m, x, lambda o: x * (1 - m) + o * m,
                                  lambda o: ((o - x) ** 2).mean(), 1.0, 1.0)  # Eq. (1): unweighted
    compare(logs, after, {k: ref[k] for k in logs}, G, D)


def test_srgan_step_is_the_reference_step():
    torch.manual_seed(5)
    cfg = srgan.SRGANConfig(scale=2, hr_size=16, n_blocks=1, width=8, d_width=4, d_dense=8)
    task = srgan.SRGANTask(cfg, ContentLossConfig(content="mse"), fused_adam=False)
    before, hr = copy.deepcopy(task), _images(2, 16)
    lr = F.avg_pool2d(hr, 2)
    logs, after = run_step(task, (hr, lr), ["d_real", "d_fake", "d_total", "g_content", "g_adv", "g_total", "adv_share", "g_mse"])
    ref, G, D, (_, _, sr) = reference_step(before, lr, hr, lambda o: o, lambda o: ((o - hr) ** 2).mean(), 1.0, 1e-3)
    compare(logs, after, ref, G, D, rename={"g_rec": "g_content"})
    torch.testing.assert_close(logs["g_mse"], ((sr - hr) ** 2).mean().detach())
    assert int(task.generator.iterations) == 1


def test_the_step_runs_under_bf16_autocast_with_fp32_losses():
    torch.manual_seed(6)
    task = ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=64, hole=32, width=8, bottleneck=32))
    task.configure(torch.device("cpu"))
    logs = task.training_step(_images(2, 64), BF16)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in logs.values())


# --------------------------------------------------------------------------- one inpainting API

INPAINTERS = [ce.ContextEncoderTask, ce.MaskedContextEncoderTask, cc.CascadeContextEncoderTask, ms.MultiScaleTask,
              ece.EluContextEncoderTask]


@pytest.mark.parametrize("cls", INPAINTERS, ids=lambda c: c.__name__)
def test_every_inpainting_task_fills_holes_with_the_same_signature(cls):
    assert issubclass(cls, adv.InpaintingTask)
    assert list(inspect.signature(cls.inpaint).parameters) == ["self", "images", "masks", "autocast"]
    assert cls.inpaint is adv.InpaintingTask.inpaint and cls.training_step in (
        adv.AdversarialTask.training_step, ms.MultiScaleTask.training_step)


def test_centre_context_encoder_accepts_its_centre_mask_and_rejects_others():
    torch.manual_seed(7)
    task = ce.ContextEncoderTask(ce.ContextEncoderConfig(image_size=64, hole=32, width=8, bottleneck=32))
    x = _images(2, 64)
    m = make_masks("center", 64, 2, hole=32)
    torch.testing.assert_close(task.inpaint(x, m, None), task.inpaint(x))
    small = make_masks("center", 64, 2, hole=8)  # inside the hole: only those pixels change
    out = task.inpaint(x, small)
    assert torch.equal(out[small.expand_as(x) == 0], x[small.expand_as(x) == 0])
    with pytest.raises(ConfigError, match="centre"):
        task.inpaint(x, make_masks("left", 64, 2))
    with pytest.raises(ConfigError, match="autocast by keyword"):
        task.inpaint(x, NO_AUTOCAST)  # the old order inpaint(images, autocast) is a clear error


# --------------------------------------------------------------------------- the benchmark imports the models

def _imports_bench(path: Path, package: list[str]) -> list[str]:
    hits = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            mod = ".".join(base + (node.module.split(".") if node.module else []))
            names = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        hits += [f"{path.name}:{node.lineno}" for n in names if n == "facefill.bench" or n.startswith("facefill.bench.")]
    return hits


def test_no_model_imports_the_benchmark():
    root = Path(adv.__file__).parent
    files = sorted((root / "models").glob("*.py")) + sorted((root / "inpaint").glob("*.py"))
    assert len(files) >= 8
    assert [h for f in files for h in _imports_bench(f, ["facefill", f.parent.name])] == []


def test_the_import_parser_sees_every_spelling(tmp_path):
    f = tmp_path / "m.py"
    for src in ("from .. import bench", "from ..bench import register", "import facefill.bench",
                "from facefill import bench", "from facefill.bench import register"):
        f.write_text(src + "\n")
        assert _imports_bench(f, ["facefill", "models"]), src
    f.write_text("from .. import adversarial\nfrom ..benchmarks import x\n")
    assert not _imports_bench(f, ["facefill", "models"])


def test_the_benchmark_registers_every_model_and_runs_a_case():
    assert {"ce128", "ce64", "mce250_add", "mce250_concat", "cce128", "ce64_image", "elu_ce128", "elu_ce128_bn",
            "dcgan64", "semantic64", "srgan64x2", "srgan64x4", "srgan128x4"} <= set(bench.CASES)
    torch.manual_seed(0)
    for variant in ("plain", "fp32"):
        step, n = bench.CASES["ce64"](torch.device("cpu"), 2, variant)
        logs = step()
        assert n == 2 and torch.isfinite(logs["g_total"])
    with pytest.raises(NotImplementedError):
        bench.CASES["dcgan64"](torch.device("cpu"), 2, "plain")
