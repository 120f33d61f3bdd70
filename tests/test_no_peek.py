"""No-peek invariant (issue 27 §4): no method may read the pixels it is asked to fill.

For every method of the package that fills hidden pixels — each trained task's ``inpaint`` (untrained,
randomly initialised smoke-size networks: the invariant must hold for any weights), the paths the
studies score (their masks, crops and Poisson rows), the latent search in every landmark mode, each
learning-free fill, the CLI's photo path — we build an input, replace **only** the hidden pixels
(mask = 1) by other random values, run the method again and require the output to be unchanged
(max |Δ| <= 1e-6; uint8 outputs bit-identical) on the whole image.

A new method is one entry in ``CASES`` (``@case(name, covers...)``). The coverage tests discover
what must be covered — every public function of :mod:`facefill.baselines` / :mod:`facefill.inpaint.local`
that takes ``masks``, every :class:`~facefill.adversarial.InpaintingTask` in :mod:`facefill.models`,
every landmark mode of the search, every row of notebook 04's results table — so a method cannot be
forgotten silently.
"""
from __future__ import annotations

import importlib
import inspect
import pkgutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import facefill.models
from facefill import baselines
from facefill.adversarial import InpaintingTask, composite
from facefill.config import load_params, section
from facefill.data import to_uint8
from facefill.inpaint import local
from facefill.inpaint import semantic as sem
from facefill.masks import make_masks

SIZE = 64
TOL = 1e-6


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny networks and many small ops: one thread is 2x faster than two on the shared 2-core CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Setup(NamedTuple):
    run: Callable  # (images, masks) -> tensor | ndarray | dict of them
    images: torch.Tensor  # (N, 3, S, S) in [-1, 1]
    masks: torch.Tensor  # (N, 1, S, S), 1 = hidden
    insensitive: tuple[str, ...] = ()  # outputs whose fill ignores the input by design (the mean training image)


CASES: dict[str, Callable[[], Setup]] = {}
COVERS: dict[str, frozenset[str]] = {}


def case(name: str, *covers: str):
    """Register a no-peek case; ``covers`` names what it exercises (``module:function``, ``task:Class``,
    ``mode:<landmark mode>``, ``04:<results row>``) for the coverage tests."""
    def deco(fn):
        assert name not in CASES, name
        CASES[name], COVERS[name] = fn, frozenset(covers)
        return fn
    return deco


def images(n: int = 3, size: int = SIZE, seed: int = 0) -> torch.Tensor:
    """Smooth random 'faces' in [-1, 1] (an 8×8 random field upsampled), on the uint8 grid."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 8, 8, generator=g) * 2 - 1
    x = F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(-1, 1)
    return torch.round((x + 1) * 127.5) / 127.5 - 1


def mixed_masks(size: int = SIZE) -> torch.Tensor:
    """One image each under a centre hole, a left half and 80 % random pixels."""
    return torch.cat([make_masks("center", size, 1, hole=size // 2), make_masks("left", size, 1),
                      make_masks("random_pixels", size, 1, seed=3, drop=0.8)])


def rehide(x: torch.Tensor, m: torch.Tensor, seed: int = 99) -> torch.Tensor:
    """``x`` with every hidden pixel replaced by another random value (known pixels bit-identical)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.round(torch.rand(x.shape, generator=g) * 255) / 127.5 - 1
    noise = torch.where((noise - x).abs() < 0.1, -noise, noise)  # every hidden value really changes
    return composite(x, noise, m)


def flat(out, prefix: str = "") -> dict[str, torch.Tensor]:
    """A method's output(s) as {name: float64 tensor}."""
    if isinstance(out, dict):
        return {k2: v2 for k, v in out.items() for k2, v2 in flat(v, f"{prefix}{k}/").items()}
    if isinstance(out, (tuple, list)):
        return {k2: v2 for i, v in enumerate(out) for k2, v2 in flat(v, f"{prefix}{i}/").items()}
    t = torch.as_tensor(np.asarray(out)) if not isinstance(out, torch.Tensor) else out
    return {prefix.rstrip("/") or "output": t.detach().cpu().double()}


def smoke(name: str) -> dict:
    return {**section(load_params(), name, "smoke"), "seed": 0, "profile": "smoke"}


def fake_run():
    tmp = Path(tempfile.gettempdir())
    return SimpleNamespace(device=torch.device("cpu"), output_dir=tmp, root=tmp, checkpoint_dir=tmp)


def lively(*modules: torch.nn.Module, seed: int = 0):
    """Random weights of a scale that lets every output depend visibly on the input: He-normal
    convolutions and linear layers, random biases and BatchNorm statistics. (DCGAN's N(0, 0.02) init
    leaves an untrained network almost constant: a leak changed its output by ~1e-6 only.)"""
    g = torch.Generator().manual_seed(seed)
    nn = torch.nn
    with torch.no_grad():
        for mod in modules:
            for m in mod.modules():
                if isinstance(m, nn.ConvTranspose2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] / (m.stride[0] * m.stride[1])
                elif isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels // m.groups * m.kernel_size[0] * m.kernel_size[1]
                elif isinstance(m, nn.Linear):
                    fan_in = m.in_features
                elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    m.weight.normal_(1.0, 0.1, generator=g), m.bias.normal_(0.0, 0.1, generator=g)
                    m.running_mean.normal_(0.0, 0.1, generator=g), m.running_var.uniform_(0.5, 1.5, generator=g)
                    continue
                else:
                    continue
                m.weight.normal_(0.0, (2 / fan_in) ** 0.5, generator=g)
                if m.bias is not None:
                    m.bias.normal_(0.0, 0.1, generator=g)
    return modules[0] if len(modules) == 1 else modules


def tiny_dcgan():
    from facefill.models.dcgan import DCGANConfig, DCGANTask

    torch.manual_seed(0)
    t = DCGANTask(DCGANConfig(width=8))
    return lively(t.generator, t.discriminator)


def tiny_regressor() -> sem.LandmarkRegressor:
    from facefill.face_masks import template_landmarks

    torch.manual_seed(1)
    r = sem.LandmarkRegressor(width=8)
    lively(r)  # not the zero-init head: the prediction depends on the input
    r.mean_shape.copy_(torch.from_numpy(template_landmarks(SIZE, SIZE)))
    return r.eval()


# --------------------------------------------------------------------------- learning-free fills
# (32-px faces: TV's 300 Adam steps and biharmonic's solve stay cheap; the masks touch the border)

LF = 32


@case("baselines.mean_colour", "baselines:mean_colour")
def _():
    return Setup(baselines.mean_colour, images(size=LF), mixed_masks(LF))


@case("baselines.mean_training_image", "baselines:mean_training_image")
def _():
    mean = images(1, LF, seed=5)[0]
    return Setup(lambda x, m: baselines.mean_training_image(x, m, mean), images(size=LF), mixed_masks(LF), insensitive=("output",))


@case("baselines.telea", "baselines:telea", "local:opencv")
def _():
    return Setup(baselines.telea, images(size=LF), mixed_masks(LF))


@case("baselines.biharmonic_fill", "baselines:biharmonic_fill", "local:biharmonic")
def _():
    return Setup(baselines.biharmonic_fill, images(size=LF), mixed_masks(LF))


@case("baselines.biharmonic_fill, faces sharing a mask (solved as one multichannel image)", "baselines:biharmonic_fill")
def _():
    # the batched path groups faces by mask: two faces under one centre hole and two under one left half, so a
    # group of >= 2 is solved together and a change in one face's hidden pixels must not reach the others
    m = torch.cat([make_masks("center", LF, 2, hole=LF // 2), make_masks("left", LF, 2)])
    return Setup(baselines.biharmonic_fill, images(4, LF), m)


@case("baselines.fill_all", "baselines:fill_all")
def _():
    mean = images(1, LF, seed=5)[0]
    return Setup(lambda x, m: baselines.fill_all(x, m, mean), images(size=LF), mixed_masks(LF), insensitive=("mean training image",))


for _method in local.LOCAL_METHODS:
    @case(f"local.local_inpaint[{_method}]", "local:local_inpaint",
          *{"biharmonic": ["local:biharmonic"], "tv": ["local:total_variation"]}.get(_method, ["local:opencv"]))
    def _(method=_method):
        return Setup(lambda x, m: local.local_inpaint(x, m, method), images(size=LF), mixed_masks(LF))


@case("local.nearest_neighbour", "local:nearest_neighbour")
def _():
    train = images(16, LF, seed=7)
    return Setup(lambda x, m: local.nearest_neighbour(x, m, train), images(size=LF), mixed_masks(LF))


@case("local.low_rank", "local:low_rank")
def _():
    return Setup(lambda x, m: local.low_rank(x, m, rank=4, shrink=0.02), images(size=LF), mixed_masks(LF))


@case("local.poisson_blend", "local:poisson_blend")
def _():
    generated = images(3, LF, seed=11)  # G(ẑ): fixed, it is what gets blended in
    return Setup(lambda x, m: local.poisson_blend(generated, x, m), images(size=LF), mixed_masks(LF))


# --------------------------------------------------------------------------- trained tasks (random weights)

def task_setup(task, x, m, autocast=None) -> Setup:
    lively(task.generator)
    return Setup(lambda xx, mm: task.inpaint(xx, mm, autocast=autocast), x, m)


@case("ContextEncoderTask, centre, overlap 4, inner square", "task:ContextEncoderTask")
def _():
    from facefill.experiments.pathak2016 import inner_mask
    from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask

    cfg = ContextEncoderConfig(image_size=SIZE, hole=32, overlap=4, width=8, bottleneck=32)
    return task_setup(ContextEncoderTask(cfg), images(2), inner_mask(cfg).expand(2, -1, -1, -1))


@case("ContextEncoderTask, centre, overlap 4, whole hole", "task:ContextEncoderTask")
def _():
    from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask

    cfg = ContextEncoderConfig(image_size=SIZE, hole=32, overlap=4, width=8, bottleneck=32)
    return task_setup(ContextEncoderTask(cfg), images(2), make_masks("center", SIZE, 2, hole=32))


@case("MaskedContextEncoderTask", "task:MaskedContextEncoderTask")
def _():
    from facefill.models.context_encoder import ContextEncoderConfig, MaskedContextEncoderTask

    cfg = ContextEncoderConfig(image_size=SIZE, hole=32, overlap=4, width=8, bottleneck=32, output="image")
    return task_setup(MaskedContextEncoderTask(cfg, "random_region"), images(), mixed_masks())


@case("MultiScaleTask, overlap 2, whole hole", "task:MultiScaleTask")
def _():
    from facefill.models.multiscale import MultiScaleConfig, MultiScaleTask

    cfg = MultiScaleConfig(image_size=125, hole=32, overlap=2, width=2, d_width=4, context="fc", bottleneck=16)
    return task_setup(MultiScaleTask(cfg), images(2, 125), make_masks("center", 125, 2, hole=32))


@case("cascade tasks (CE32, CCE, blur control, CE64) and pre-fills", "task:CascadeContextEncoderTask",
      "task:BlurPrefillContextEncoderTask", "task:MaskedContextEncoderTask")
def _():
    from facefill.models import cascade as cc

    cfg = cc.CascadeConfig(image_size=SIZE, hole=32, overlap=2, width=4, bottleneck=16, mask_kind="random_blocks")
    small = cc.make_ce64_task(cfg)
    tasks = {"CE32": small, "CCE": cc.CascadeContextEncoderTask(cfg, small.generator),
             "blur control": cc.BlurPrefillContextEncoderTask(cfg), "CE64": cc.make_ce128_task(cfg)}
    lively(*(t.generator for t in tasks.values()))

    def run(x, m):
        out = {k: t.inpaint(cc.downscale(x), cc.downscale_mask(m)) if k == "CE32" else t.inpaint(x, m) for k, t in tasks.items()}
        out["CE32 pre-fill"] = composite(x, cc.ce64_fill(small.generator.eval(), x, m), m)
        out["blur pre-fill"] = composite(x, cc.blur_prefill(x, m, cfg.blur_sigma), m)
        return out

    return Setup(run, images(), torch.cat([mixed_masks()[1:], make_masks("random_blocks", SIZE, 1, seed=1, max_fraction=0.25)]))


@case("EluContextEncoderTask", "task:EluContextEncoderTask")
def _():
    from facefill.models.elu_context_encoder import EluContextEncoderConfig, EluContextEncoderTask, template_masks

    task = EluContextEncoderTask(EluContextEncoderConfig(image_size=SIZE, width=2, max_width=8), fused_adam=False)
    return task_setup(task, images(), torch.cat([template_masks(SIZE, 1), mixed_masks()[1:]]))


# --------------------------------------------------------------------------- the studies' own fill paths (smoke parameters)

@case("00 study fill (CE, inner square)", "study:00")
def _():
    from facefill.experiments.pathak2016 import ContextEncoderStudy, inner_box
    from facefill.models.context_encoder import ContextEncoderTask

    study = ContextEncoderStudy(smoke("context_encoder"), fake_run())
    t, l, h, w = inner_box(study.cfg)
    assert study.mask.sum() == h * w == study.mask[..., t : t + h, l : l + w].sum()  # the scored box is the hidden square
    task = ContextEncoderTask(study.cfg)
    lively(task.generator)
    return Setup(lambda x, m: study.fill(task, to_uint8(x)), images(2, study.cfg.image_size), study.mask.expand(2, -1, -1, -1))


@case("01 study fill (CE on its context crop, MCE arms)", "study:01")
def _():
    from facefill.experiments.multiscale2020 import MultiScaleStudy
    from facefill.experiments.pathak2016 import inner_box

    study = MultiScaleStudy(smoke("multiscale"), fake_run())
    t, l, h, w = inner_box(study.cfg)
    assert study.mask.sum() == h * w == study.mask[..., t : t + h, l : l + w].sum()  # the scored box is the hidden square
    tasks = {label: study.make_task(cfg) for label, cfg in study.arm_configs().items()}
    lively(*(t.generator for t in tasks.values()))
    return Setup(lambda x, m: {k: study.fill(task, to_uint8(x)) for k, task in tasks.items()},
                 images(2, study.cfg.image_size), study.mask.expand(2, -1, -1, -1))


@case("02 study fill and pre-fill rows", "study:02")
def _():
    from facefill.experiments import cascade2018
    from facefill.experiments.study import TrainedRun

    study = cascade2018.CascadeStudy(smoke("cascade"), fake_run())
    small = study.new_task(cascade2018.SMALL)
    study.by_arm[cascade2018.SMALL] = [TrainedRun(cascade2018.SMALL, 0, small, None, None)]
    tasks = {arm: study.new_task(arm, small) for arm in cascade2018.LARGE}
    lively(small.generator, *(t.generator for t in tasks.values()))

    def run(x, m):
        return {**{arm: study.fill(t, x, m) for arm, t in tasks.items()}, **study.prefills(x, m)}

    return Setup(run, images(2, study.cfg.image_size), study.draw_masks(2, 10_000))


@case("03 study fill (ELU CE under face masks)", "study:03")
def _():
    from facefill.experiments.masked_face2021 import ARMS, MaskedFaceStudy
    from facefill.models.elu_context_encoder import EluContextEncoderTask, template_masks

    study = MaskedFaceStudy(smoke("masked_face"), fake_run())
    s = study.cfg.image_size
    tasks = {arm: EluContextEncoderTask(study.arm_config(arm)) for arm in ARMS}
    lively(*(t.generator for t in tasks.values()))

    def run(x, m):
        study.images, study.masks = {"test": to_uint8(x)}, {"test": m}
        return {arm: study.fill(t, "test") for arm, t in tasks.items()}

    return Setup(run, images(2, s), template_masks(s, 2))


# --------------------------------------------------------------------------- notebook 04: latent search, CE, learning-free rows

for _mode in sem.LANDMARK_MODES:
    @case(f"semantic search, landmark={_mode}", f"mode:{_mode}")
    def _(mode=_mode):
        if mode in ("as_written", "select"):
            pytest.importorskip("dlib")
        G, D = tiny_dcgan()
        search = sem.SemanticInpainter(G, D, sem.SemanticConfig(iterations=3, candidates=2, landmark=mode, lr=0.1),
                                       tiny_regressor() if mode == "regressor" else None)

        def run(x, m):
            r = search.inpaint(x, m)
            return {"completed": r.completed, "all_generated": r.all_generated, "z": r.z,
                    "losses": torch.tensor(r.all_losses[["l_c", "l_p", "l_d"]].to_numpy())}

        return Setup(run, images(), mixed_masks())


@case("semantic search, uniform W (ablation)", "04:SI (uniform W)")
def _():
    G, D = tiny_dcgan()
    search = sem.SemanticInpainter(G, D, sem.SemanticConfig(iterations=3, candidates=2, lr=0.1, weighting="uniform", snapshot_at=1))

    def run(x, m):
        r = search.inpaint(x, m)
        return {"completed": r.completed, "half": r.snapshot.completed, "all_generated": r.all_generated}

    return Setup(run, images(), mixed_masks())


ROWS_04 = ("SI", "ours", "random candidate", "ours (regressor L_d)", "SI + Poisson", "ours + Poisson")


@case("04 latent-search rows (SI, ours, regressor, + Poisson)", *(f"04:{r}" for r in ROWS_04))
def _():
    pytest.importorskip("dlib")
    from facefill.experiments.semantic_landmarks import search_completions

    G, D = tiny_dcgan()
    p = smoke("semantic")
    cfg = sem.SemanticConfig(iterations=3, candidates=2, landmark="select", lr=0.1, lambda_d=p["lambda_d"], snapshot_at=1)
    search = sem.SemanticInpainter(G, D, cfg)
    search_reg = sem.SemanticInpainter(G, D, sem.SemanticConfig(**{**cfg.__dict__, "landmark": "regressor"}), tiny_regressor())

    def run(x, m):
        filled, half = search_completions(search, search_reg, x, m)[:2]
        assert set(filled) == set(ROWS_04) and set(half) == {"SI", "ours", "random candidate"}
        return filled | {f"{k} (half budget)": v for k, v in half.items()}

    return Setup(run, images(), mixed_masks())


def rows_04_learning_free() -> tuple[str, ...]:
    from facefill.experiments import semantic_landmarks as sl

    return tuple(baselines.TRIVIAL + baselines.CLASSICAL + sl.CLASSICAL)


@case("04 learning-free rows", *(f"04:{r}" for r in ("mean colour", "mean training image", "Telea", "biharmonic",
                                                      "TV", "Navier-Stokes", "LR", "nearest neighbour")))
def _():
    from facefill.experiments.semantic_landmarks import learning_free

    p = smoke("semantic")
    mean, train = images(1, LF, seed=5)[0], images(16, LF, seed=7)

    def run(x, m):
        filled = learning_free(x, m, mean, train, p["lr_rank"], p["lr_shrink"])
        assert set(filled) == set(rows_04_learning_free())
        return filled

    return Setup(run, images(size=LF), mixed_masks(LF), insensitive=("mean training image",))


for _kind in ("center", "left", "right", "random"):
    @case(f"04 CE row, {_kind} mask (as the study builds it)", "04:CE", f"04:CE {_kind}")
    def _(kind=_kind):
        from facefill.experiments.semantic_landmarks import context_encoder_task, study_masks

        p = smoke("semantic")
        masks = study_masks(p["image_size"], 2, p["seed"], p["random_drop"])[kind]
        return task_setup(context_encoder_task(kind, p), images(2, p["image_size"]), masks)


# --------------------------------------------------------------------------- the CLI's photo path

def cli_model(task):
    from facefill.api import Model
    from facefill.face_masks import template_landmarks

    lively(task.generator)
    return Model(task, {"purpose": "inpaint", "mask_kinds": ["centre"]}, Path("model.pt"), template_landmarks(SIZE, SIZE),
                 torch.device("cpu"))


@case("api.Model.inpaint on a crop under the CLI's 'centre' mask (centre CE, overlap 4)", "api:Model.inpaint")
def _():
    from facefill import cli
    from facefill.data import to_tensor
    from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask

    model = cli_model(ContextEncoderTask(ContextEncoderConfig(image_size=SIZE, hole=32, overlap=4, width=8, bottleneck=32)))
    hole = cli.crop_mask(model, "centre", None, None, None, None)  # what inpaint_photo hides in each aligned crop
    return Setup(lambda x, m: to_tensor(model.inpaint(to_uint8(x), m)), images(2), hole.expand(2, -1, -1, -1))


@case("cli.inpaint_photo (centre CE with overlap 4, mask 'centre')", "cli:inpaint_photo")
def _():
    import cv2

    from facefill import align, cli
    from facefill.data import to_tensor
    from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask

    model = cli_model(ContextEncoderTask(ContextEncoderConfig(image_size=SIZE, hole=32, overlap=4, width=8, bottleneck=32)))
    template = model.landmarks
    side = 160
    points = (template * 1.6 + 28.0).astype(np.float64)  # a face 1.6× the crop inside the photo; fixed landmarks, no detector
    crop_hole = cli.crop_mask(model, "centre", None, None, None, None)[0, 0].numpy().astype(np.uint8)
    matrix = align.similarity_transform(points, template)
    # Checked on the photo pixels that land >= 6 crop px inside the crop's hole: the crop's bilinear
    # sampling reaches 1 photo px (0.6 crop px) and paste_back's 1-px feather 4 crop px, so the result
    # at the hole's edge mixes in the photo's own pixels by design (the crop-level case above covers
    # the whole hole the model is given).
    deep = cv2.erode(crop_hole, np.ones((13, 13), np.uint8))
    hidden = cv2.warpAffine(deep, matrix, (side, side), flags=cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP, borderValue=0)
    assert hidden.sum() > 100

    def run(x, m):
        orig = align.find_faces
        align.find_faces = lambda photo, upsample=None: [points]
        try:
            out = cli.inpaint_photo(model, to_uint8(x)[0])
        finally:
            align.find_faces = orig
        return {k: to_tensor(out[k][None]) for k in ("result", "hidden")}

    return Setup(run, images(1, side), torch.from_numpy(hidden.astype(np.float32))[None, None], insensitive=("hidden",))


# --------------------------------------------------------------------------- the tests

SENSITIVE = 1e-3  # a fill that reads its input changes by more than this when the known pixels change


@pytest.mark.parametrize("name", list(CASES))
def test_output_does_not_depend_on_hidden_pixels(name):
    setup = CASES[name]()
    x, m = setup.images, setup.masks
    x2 = rehide(x, m)
    hidden = m.expand_as(x) > 0.5
    assert hidden.any() and (x2 != x)[hidden].all() and torch.equal(x2[~hidden], x[~hidden])
    a, b = flat(setup.run(x, m)), flat(setup.run(x2, m))
    assert a.keys() == b.keys()
    leaks = {k: float((a[k] - b[k]).abs().max()) for k in a if a[k].shape != b[k].shape or (a[k] - b[k]).abs().max() > TOL}
    assert not leaks, f"{name}: the output changes with the hidden pixels (max |Δ| per output): {leaks}"
    # Positive control: the same fill does react to the *known* pixels, so the comparison above could see a leak.
    assert any(v.shape == x.shape for v in a.values()), f"{name}: no image-shaped output to check"
    c = flat(setup.run(rehide(x, 1 - m, seed=98), m))
    fills = {k: float((a[k] - c[k])[hidden].abs().max()) for k in a if a[k].shape == x.shape and k not in setup.insensitive}
    dull = {k: v for k, v in fills.items() if v <= SENSITIVE}
    assert not dull, f"{name}: these fills ignore the known pixels too, so the test cannot see a leak: {dull}"


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_notebook_04_centre_ce_is_trained_blind_to_the_hole_it_is_scored_on(profile):
    """The centre CE is scored on the whole 32-px hole: its training input (``drop(images, None)``, the
    hole shrunk by ``overlap``) must hide all of it, or the model learns from pixels test time hides."""
    from facefill.experiments.semantic_landmarks import context_encoder_config, study_masks
    from facefill.models.context_encoder import drop_centre

    p = {**section(load_params(), "semantic", profile), "seed": 0}
    cfg = context_encoder_config("center", p)
    hole = study_masks(p["image_size"], 1, 0, p["random_drop"])["center"]
    x = images(1, p["image_size"])
    assert torch.equal(drop_centre(x, cfg), drop_centre(rehide(x, hole), cfg)), f"overlap={cfg.overlap}"


def _covered() -> frozenset[str]:
    return frozenset().union(*COVERS.values())


def _fill_functions(module) -> list[str]:
    return [name for name, fn in inspect.getmembers(module, inspect.isfunction)
            if fn.__module__ == module.__name__ and not name.startswith("_") and "masks" in inspect.signature(fn).parameters]


NOT_FILLS: dict[str, str] = {}  # "module:function" -> why it needs no case (none so far)


@pytest.mark.parametrize("module, tag", [(baselines, "baselines"), (local, "local")])
def test_every_public_fill_function_is_covered(module, tag):
    found = _fill_functions(module)
    assert found, f"no fill functions discovered in {module.__name__}"
    missing = [f"{tag}:{n}" for n in found if f"{tag}:{n}" not in _covered() and f"{tag}:{n}" not in NOT_FILLS]
    assert not missing, f"fill functions without a no-peek case: {missing} (add a @case to tests/test_no_peek.py)"


def test_every_inpainting_task_is_covered():
    tasks = set()
    for info in pkgutil.iter_modules(facefill.models.__path__):
        mod = importlib.import_module(f"facefill.models.{info.name}")
        tasks |= {n for n, c in inspect.getmembers(mod, inspect.isclass)
                  if issubclass(c, InpaintingTask) and c is not InpaintingTask and c.__module__ == mod.__name__}
    assert {"ContextEncoderTask", "MultiScaleTask", "EluContextEncoderTask"} <= tasks  # discovery works
    missing = sorted(t for t in tasks if f"task:{t}" not in _covered())
    assert not missing, f"inpainting tasks without a no-peek case: {missing}"


def test_every_search_mode_and_every_row_of_notebook_04_is_covered():
    from facefill.experiments import semantic_landmarks as sl

    assert {f"mode:{m}" for m in sem.LANDMARK_MODES} <= _covered()
    rows = set(sl.LEARNED) | set(rows_04_learning_free())
    assert {f"04:{r}" for r in rows} <= _covered(), sorted(rows - {c[3:] for c in _covered() if c.startswith("04:")})
    assert {f"04:CE {k}" for k in sl.MASK_KINDS} <= _covered()
    assert {f"study:{s}" for s in ("00", "01", "02", "03")} <= _covered()
