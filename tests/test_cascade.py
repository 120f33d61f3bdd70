"""Cascade context encoder (paper 001, section 4): operators, composition of eq. (1), losses, sizes."""
import numpy as np
import pytest
import torch
from torch import nn

from facefill.errors import ConfigError
from facefill.masks import center_mask, random_block_masks
from facefill.models import cascade as cc
from facefill.models.context_encoder import PATHAK_MEAN_RGB, ContextEncoder
from facefill.runtime import autocast_factory

FP32 = autocast_factory(torch.device("cpu"), "fp32")
SMALL = dict(width=8, bottleneck=32)


class ConstantCE64(nn.Module):
    """A stand-in CE64 that records its input and paints every pixel with one value."""

    def __init__(self, value: float, cfg):
        super().__init__()
        self.value, self.cfg, self.seen = value, cfg, None
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        self.seen = x.clone()
        return torch.full_like(x, self.value)


def test_operators_on_known_tensors():
    x = torch.arange(16.0).view(1, 1, 4, 4)
    np.testing.assert_allclose(cc.downscale(x)[0, 0].numpy(), [[2.5, 4.5], [10.5, 12.5]])
    m = torch.zeros(1, 1, 4, 4)
    m[0, 0, 1, 2] = 1  # one missing pixel makes its whole 2x2 cell missing
    np.testing.assert_array_equal(cc.downscale_mask(m)[0, 0].numpy(), [[0, 1], [0, 0]])
    assert torch.equal(cc.upscale(torch.full((1, 3, 2, 2), 0.3)), torch.full((1, 3, 4, 4), 0.3))
    u8 = np.array([[[[0, 0, 0], [2, 2, 2]], [[4, 4, 4], [255, 255, 255]]]], dtype=np.uint8)
    assert cc.downscale_uint8(u8).tolist() == [[[[65, 65, 65]]]]  # (0+2+4+255)/4 = 65.25


def test_cascade_composition_literally():
    """x = M̄⊙P + M⊙↗F64(↘M̄⊙↘P): context untouched, hole = CE64's upscaled fill, no leak of the hole."""
    cfg = cc.CascadeConfig(mask_kind="center", **SMALL)
    P = torch.full((2, 3, 128, 128), -0.2)
    M = center_mask(128, 56, 2)
    P = P + 5.0 * M  # the hidden pixels hold an impossible value: CE64 must never see it
    stub = ConstantCE64(0.7, cfg.ce(2))
    fill = cc.ce64_fill(stub, P, M)
    x = cc.cascade_input(P, M, fill)
    # (ii) CE64 saw the half-size image with the half-size hole mean-filled, nothing else
    small_m = cc.downscale_mask(M)
    assert stub.seen.shape == (2, 3, 64, 64)
    assert torch.equal(small_m, center_mask(64, 28, 2))
    mean = torch.tensor(PATHAK_MEAN_RGB).view(1, 3, 1, 1)
    torch.testing.assert_close(stub.seen, -0.2 * (1 - small_m) + mean * small_m)
    # (iii)+(i): the context of the full image is P itself, the hole's inside is CE64's paint
    assert torch.equal(x * (1 - M), P * (1 - M))
    assert torch.allclose(x[:, :, 40:88, 40:88], torch.tensor(0.7))
    # the hole's border blends CE64's fill with the real (downscaled) context, never with the hidden value
    assert x.max() <= 0.7 + 1e-6 and x.min() >= -0.2 - 1e-6


def test_cascade_task_input_training_step_and_frozen_ce64():
    torch.manual_seed(0)
    cfg = cc.CascadeConfig(mask_kind="random_blocks", **SMALL)
    ce64 = cc.make_ce64_task(cfg).generator
    before = {k: v.clone() for k, v in ce64.state_dict().items()}
    task = cc.CascadeContextEncoderTask(cfg, ce64, fused_adam=False)
    task.configure(torch.device("cpu"))
    P = torch.rand(4, 3, 128, 128) * 2 - 1
    M = random_block_masks(128, 4, seed=3)
    expected = cc.cascade_input(P, M, cc.ce64_fill(ce64, P, M))
    torch.testing.assert_close(task.drop(P, M), expected)
    g_before = {k: v.clone() for k, v in task.generator.state_dict().items()}
    logs = task.training_step(P, FP32)
    assert set(logs) >= {"g_rec", "g_adv", "d_total"} and all(np.isfinite(float(v)) for v in logs.values())
    for k, v in ce64.state_dict().items():  # CE64 fixed: weights and BatchNorm statistics
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in ce64.parameters())
    assert not ce64.training
    assert any(not torch.equal(v, g_before[k]) for k, v in task.generator.state_dict().items())


def test_training_step_losses_are_equations_1_and_2():
    """Recompute g_rec (eq. 1) and g_adv / d_total (eq. 2) of one cascade step from its own masks."""
    torch.manual_seed(1)
    cfg = cc.CascadeConfig(mask_kind="random_blocks", overlap=0, lambda_adv=0.001, **SMALL)
    task = cc.CascadeContextEncoderTask(cfg, cc.make_ce64_task(cfg).generator, fused_adam=False)
    task.configure(torch.device("cpu"))
    P = torch.rand(3, 3, 128, 128) * 2 - 1
    gen_state = {k: v.clone() for k, v in task.generator.state_dict().items()}
    d_state = {k: v.clone() for k, v in task.discriminator.state_dict().items()}
    rng = torch.get_rng_state()
    logs = task.training_step(P, FP32)
    # replay: same mask seed, the weights before the update
    torch.set_rng_state(rng)
    seed = int(torch.randint(0, 2**31 - 1, (1,)))
    M = task.masks(3, seed)
    task.generator.load_state_dict(gen_state)
    task.discriminator.load_state_dict(d_state)
    task.generator.train(), task.discriminator.train()
    with torch.no_grad():
        out = task.generator(task.drop(P, M))
        rec = cc.equation_1(P, M, out)
        literal = (M * (P - out)).pow(2).sum() / (3 * M.sum())  # ||M ⊙ (P − F(x))||² per hole value
        fake = P * (1 - M) + out * M
        loss_d, adv = cc.equation_2(task.discriminator(P), task.discriminator(fake))
    torch.testing.assert_close(rec, literal)
    assert float(logs["g_rec"]) == pytest.approx(float(rec), rel=1e-4)
    assert float(logs["d_total"]) == pytest.approx(float(loss_d), rel=1e-4)
    assert float(logs["g_total"]) == pytest.approx(float(0.999 * rec + 0.001 * logs["g_adv"]), rel=1e-5)


def test_sizes_of_the_paper_networks():
    """CE64 and CE128 of the paper (Pathak's sizes, full-image output): 4000-d latent for both."""
    cfg = cc.CascadeConfig()
    ce64, ce128 = cc.make_ce64_task(cfg), cc.make_ce128_task(cfg)
    with torch.no_grad():
        ce64.generator.eval(), ce128.generator.eval()
        z64 = cc.latent(ce64.generator, torch.zeros(1, 3, 64, 64))
        z128 = cc.latent(ce128.generator, torch.zeros(1, 3, 128, 128))
        assert z64.shape == z128.shape == (1, 4000)
        assert ce64.generator(torch.zeros(1, 3, 64, 64)).shape == (1, 3, 64, 64)
        assert ce128.generator(torch.zeros(1, 3, 128, 128)).shape == (1, 3, 128, 128)
    convs = lambda m: [l for l in m.modules() if isinstance(l, nn.Conv2d)]
    ups = lambda m: [l for l in m.modules() if isinstance(l, (nn.ConvTranspose2d, nn.Linear))]
    # encoder: 64 -> 4 in four stride-2 convs, 128 -> 4 in five ("one additional layer")
    assert len(convs(ce64.generator.encoder)) == 4 and len(convs(ce128.generator.encoder)) == 5
    # decoder: channel-wise FC (4x4 up-conv) then up-convs to the full image
    assert len(ups(ce64.generator.decoder)) == 5 and len(ups(ce128.generator.decoder)) == 6
    assert cfg.mask_kwargs(1) == {"hole": 56} and cfg.mask_kwargs(2) == {"hole": 28}


def test_latent_variants_and_encode():
    cfg = cc.CascadeConfig(mask_kind="random_blocks", **SMALL)
    base = cc.make_ce128_task(cfg)
    P, M = torch.rand(2, 3, 128, 128) * 2 - 1, random_block_masks(128, 2, seed=0)
    z = cc.encode(base, P, M)
    lin = cc.encode(base, P, M, which="linear")
    torch.testing.assert_close(z, torch.nn.functional.leaky_relu(base.generator.encoder.bn.eval()(lin), 0.2))
    with pytest.raises(ConfigError):
        cc.encode(base, P, M, which="post")


def test_bad_configs_are_clear_errors():
    with pytest.raises(ConfigError, match="mask_kind"):
        cc.CascadeConfig(mask_kind="strokes")
    with pytest.raises(ConfigError, match="even"):
        cc.CascadeConfig(overlap=3)
    cfg = cc.CascadeConfig(**SMALL)
    wrong = ContextEncoder(cfg.ce(1))
    with pytest.raises(ConfigError, match="CE64"):
        cc.CascadeContextEncoderTask(cfg, wrong)
    with pytest.raises(ConfigError):
        cc.downscale_uint8(np.zeros((1, 3, 3, 3), dtype=np.uint8))


def test_state_fingerprint_tracks_weights():
    cfg = cc.CascadeConfig(**SMALL)
    g = cc.make_ce64_task(cfg).generator
    a = cc.state_fingerprint(g)
    with torch.no_grad():
        next(g.parameters()).add_(1e-3)
    assert cc.state_fingerprint(g) != a


# --------------------------------------------------------------------------- the blur-prefill control (issue 12)

def _reference_blur_fill(x, m, sigma):
    """Brute-force normalised convolution with an explicit 2-D Gaussian (zero outside the image)."""
    n, c, h, w = x.shape
    r = max(1, int(np.ceil(3 * sigma)))
    g1 = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    g1 /= g1.sum()
    out = x.copy()
    for b in range(n):
        known = 1 - m[b, 0]
        mean = (x[b] * known).sum((1, 2)) / known.sum()
        for i in range(h):
            for j in range(w):
                if not m[b, 0, i, j]:
                    continue
                num, den = np.zeros(c), 0.0
                for di in range(-r, r + 1):
                    for dj in range(-r, r + 1):
                        ii, jj = i + di, j + dj
                        if 0 <= ii < h and 0 <= jj < w:
                            wgt = g1[di + r] * g1[dj + r] * known[ii, jj]
                            num += wgt * x[b, :, ii, jj]
                            den += wgt
                out[b, :, i, j] = num / den if den > 1e-6 else mean
    return out


def test_blur_fill_equals_the_brute_force_normalised_convolution():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    m = random_block_masks(16, 2, seed=1, max_fraction=0.4)
    got = cc.blur_fill(x, m, sigma=1.5)
    np.testing.assert_allclose(got.numpy(), _reference_blur_fill(x.numpy().astype(np.float64), m.numpy(), 1.5), atol=1e-5)
    assert torch.equal(got * (1 - m), x * (1 - m))  # known pixels kept exactly


def test_blur_fill_falls_back_to_the_mean_colour_far_from_any_known_pixel():
    x = torch.zeros(1, 3, 32, 32)
    x[:, 0] = 0.5
    m = torch.zeros(1, 1, 32, 32)
    m[..., 2:30, 2:30] = 1  # the centre is far beyond 3 sigma of any known pixel
    got = cc.blur_fill(x, m, sigma=1.0)
    torch.testing.assert_close(got[0, :, 16, 16], torch.tensor([0.5, 0.0, 0.0]))


def test_blur_prefill_task_input_has_no_leak_and_matches_the_formula():
    torch.manual_seed(0)
    cfg = cc.CascadeConfig(mask_kind="random_blocks", **SMALL)
    task = cc.BlurPrefillContextEncoderTask(cfg, fused_adam=False)
    P = torch.rand(2, 3, 128, 128) * 2 - 1
    M = random_block_masks(128, 2, seed=5)
    x = task.drop(P, M)
    torch.testing.assert_close(x, cc.cascade_input(P, M, cc.blur_prefill(P, M, cfg.blur_sigma)))
    assert not torch.equal(x * M, cc.drop_region(P, M) * M)  # the hole is pre-filled, not mean-filled
    leaked = task.drop(P + 5.0 * M, M)  # the hidden pixels must not reach the input
    torch.testing.assert_close(leaked, x)
    with pytest.raises(ConfigError, match="blur_sigma"):
        cc.CascadeConfig(blur_sigma=0.0)


class _LinearTask:
    """The smallest task: one Linear(a, b) trained by SGD on the squared output."""

    def __init__(self, a, b):
        self.net = nn.Linear(a, b, bias=False)
        self.modules = {"net": self.net}
        self.optimizers = {"net": torch.optim.SGD(self.net.parameters(), lr=0.1)}

    def training_step(self, x, autocast):
        self.optimizers["net"].zero_grad()
        loss = self.net(x.flatten(1)).pow(2).sum()
        loss.backward()
        self.optimizers["net"].step()
        return {"loss": loss}


def test_training_flops_counts_forward_and_backward_and_does_not_train():
    task = _LinearTask(12, 5)
    before = task.net.weight.detach().clone()
    x = torch.rand(4, 3, 2, 2)
    # per image: forward 2ab, backward 2ab (weight grad); the input needs no gradient
    assert cc.training_flops(task, x) == pytest.approx(2 * 12 * 5 * 2)
    assert torch.equal(task.net.weight, before)
    cfg = cc.CascadeConfig(mask_kind="random_blocks", **SMALL)
    small = cc.make_ce64_task(cfg, fused_adam=False)
    plain, cascade = cc.make_ce128_task(cfg, fused_adam=False), cc.CascadeContextEncoderTask(cfg, small.generator, fused_adam=False)
    for t in (plain, cascade):
        t.configure(torch.device("cpu"))
    x = torch.rand(2, 3, 128, 128) * 2 - 1
    # the cascade's step = the plain step + the frozen CE64's forward
    assert cc.training_flops(cascade, x) > cc.training_flops(plain, x)


# --------------------------------------------------------------------------- budget stability of the study (half-budget runs)

def _tiny_cascade_study(tmp_path, monkeypatch):
    """The cascade study at a toy size on random faces (no archives): 2 seeds, 2 steps per stage."""
    from facefill.config import notebook_parameters
    from facefill.experiments import cascade2018
    from facefill.reporting import Run

    def fake_faces(dataset, size, split, n, **kw):
        seed = {"train": 1, "val": 2, "test": 3}[split]
        return np.random.default_rng(seed).integers(0, 256, (n, size, size, 3), dtype=np.uint8)

    monkeypatch.setattr(cascade2018.data, "load_faces", fake_faces)
    p = notebook_parameters("cascade", "smoke") | {
        "output_dir": str(tmp_path / "out"), "checkpoint_dir": str(tmp_path / "ckpt"), "n_train": 8, "n_val": 4, "n_test": 4,
        "n_seeds": 2, "image_size": 64, "hole": 32, "bottleneck": 64, "width": 8, "small_steps": 2, "large_steps": 2,
        "batch_size": 4, "eval_batch_size": 8, "nsd_k": 2, "nsd_n": 3, "precision": "fp32", "device": "cpu"}
    run = Run("02_cascade_context_encoder", p, tmp_path, tmp_path / "out", tmp_path / "ckpt", torch.device("cpu"))
    study = cascade2018.CascadeStudy(p, run)
    study.half_budget = True  # whatever params.yaml's verdicts say
    study.train_cfg = study.train_cfg.__class__(**{**study.train_cfg.__dict__, "half_budget": True, "progress": False})
    study.load()
    study.steps = {cascade2018.SMALL: 2, "CCE": 2, "blur control": 2, "CE": 3}  # compute_match's flop counting is not under test
    return study


def _generator_state(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _differs(a: dict, b: dict) -> bool:
    return any(not torch.equal(a[k], b[k]) for k in a)


@pytest.mark.slow
def test_cascade_study_scores_half_budget_twins_and_halves_both_stages(tmp_path, monkeypatch):
    from facefill import verdicts
    from facefill.experiments import cascade2018
    from facefill.experiments.study import half_name
    from facefill.train import HALF_DIR, load_checkpoint

    study = _tiny_cascade_study(tmp_path, monkeypatch)
    study.train()
    table = study.evaluate()
    study.measure_nsd()
    ckpt = tmp_path / "ckpt"
    for seed, small, cce in zip(study.seeds, study.by_arm[cascade2018.SMALL], study.by_arm["CCE"]):
        arm_dir = ckpt / f"seed{seed}" / "CCE"
        # the half cascade = a CCE of half the steps on the *half-budget* small CE, in its own folder; no branched CCE twin
        assert not (arm_dir / HALF_DIR).exists() and (arm_dir / cascade2018.HALF_CASCADE / "model.pt").is_file()
        assert load_checkpoint(arm_dir / cascade2018.HALF_CASCADE / "last.pt")["step"] == study.steps["CCE"] // 2
        assert cce.half.ce64 is small.half.generator and cce.task.ce64 is small.task.generator
        half_small = load_checkpoint(ckpt / f"seed{seed}" / "small_CE" / HALF_DIR / "last.pt")
        assert half_small["step"] == study.steps[cascade2018.SMALL] // 2
        for k, v in small.half.generator.state_dict().items():
            assert torch.equal(v.cpu(), half_small["modules"]["generator"][k].cpu()), k
        assert _differs(_generator_state(small.half.generator), _generator_state(small.task.generator))
        assert (study.fingerprint_extra(seed, small.half)["small"] != study.fingerprint_extra(seed, small.task)["small"])
        assert _differs(_generator_state(cce.half.generator), _generator_state(cce.task.generator))
    for arm in ("blur control", "CE"):
        for r in study.by_arm[arm]:  # fit's branched twin, at half the steps
            assert load_checkpoint(ckpt / f"seed{r.seed}" / arm.replace(" ", "_") / HALF_DIR / "last.pt")["step"] == max(study.steps[arm] // 2, 1)
            assert _differs(_generator_state(r.half.generator), _generator_state(r.task.generator))
    # scored and stored under their own names, kept out of the figures
    methods = set(table["method"])
    assert {study.label(half_name(a)) for a in cascade2018.LARGE} <= methods
    assert not any(m.endswith("(half budget)") for m in study.filled)
    specs = study.claim_specs()
    assert {s["metric"] for s in specs} >= {"nsd_raw", "psnr"}
    for s in specs:
        for arm in ("a", "b"):
            x = s[arm]
            assert x["trained"] and len(x["half_arrays"]) == len(x["arrays"]) == len(study.seeds)
            for full, half in zip(x["arrays"], x["half_arrays"]):
                assert full != half and "(half_budget)" in half
                fa, ha = (study.store.arrays[r.rsplit(":", 1)[1]] for r in (full, half))
                assert fa.shape == ha.shape and not np.array_equal(fa, ha), (full, half, fa, ha)
    records = verdicts.evaluate_claims(specs, verdicts.Tolerances.from_params(), root=tmp_path)
    assert all("half_verdict" in r["result"] for r in records)
    study.half_budget = False  # no half runs: the arms carry no half arrays (and none are looked up)
    assert all("half_arrays" not in s[arm] for s in study.claim_specs() for arm in ("a", "b"))
