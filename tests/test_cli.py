"""facefill.load, the exported model.pt, face alignment and the `facefill inpaint` / `facefill upscale` commands.

A smoke-size model is trained inside the test (CI has no trained models) on real aligned crops, then
both commands run on a photo built from test crops pasted into a larger canvas and on an image
without a face.
"""
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from PIL import Image

import facefill
from facefill import align, api, cli
from facefill.errors import FacefillError, MaskError

pytestmark = pytest.mark.real_data


@pytest.fixture(scope="module")
def crops():
    from facefill.data import load_faces

    return {"train": load_faces("celeba-hq", 128, "train", limit=48), "test": load_faces("celeba-hq", 128, "test", limit=12)}


def _photo(faces, placements, shape=(300, 560)):
    """A canvas with ``faces`` pasted at (x, y, scale, angle): a 'photo' of several people."""
    canvas = np.full((*shape, 3), (70, 90, 110), np.uint8)
    for face, (x, y, s, a) in zip(faces, placements):
        m = cv2.getRotationMatrix2D((64, 64), a, s)
        m[:, 2] += (x - 64, y - 64)
        canvas = cv2.warpAffine(np.ascontiguousarray(face), m, shape[::-1], dst=canvas, borderMode=cv2.BORDER_TRANSPARENT)
    return canvas


@pytest.fixture(scope="module")
def trained(crops, tmp_path_factory):
    """A smoke-size centre context encoder and a masked-face model, trained here; their folders."""
    from facefill.face_masks import as_uint8_images, template_landmarks, face_masks
    from facefill.models.context_encoder import ContextEncoderConfig, ContextEncoderTask
    from facefill.models.elu_context_encoder import EluContextEncoderConfig, EluContextEncoderTask
    from facefill.train import TrainConfig, fit

    root = tmp_path_factory.mktemp("models")
    tc = TrainConfig(steps=2, batch_size=8, precision="fp32", device="cpu", progress=False, checkpoint_every=2)
    ce = ContextEncoderTask(ContextEncoderConfig(image_size=128, hole=64, bottleneck=32, width=8))
    fit(ce, crops["train"], tc, root / "ce_out", checkpoint_dir=root / "ce")
    faces = crops["train"][:16]
    pts = np.repeat(template_landmarks(128, 128)[None], len(faces), 0)
    masks = as_uint8_images(face_masks(faces, 0, points=pts).masks)
    elu = EluContextEncoderTask(EluContextEncoderConfig(image_size=128, width=4, max_width=16))
    fit(elu, (crops["train"][:16], masks), tc, root / "elu_out", checkpoint_dir=root / "elu")
    return root


@pytest.fixture(scope="module")
def sr_model(tmp_path_factory):
    from facefill.models.srgan import SRGANConfig, SRResNetTask
    from facefill.train import TrainConfig, fit

    root = tmp_path_factory.mktemp("sr")
    rng = np.random.default_rng(0)
    hr = rng.integers(0, 255, (8, 32, 32, 3), np.uint8)
    lr = hr[:, ::2, ::2].copy()
    task = SRResNetTask(SRGANConfig(scale=2, hr_size=32, n_blocks=1, width=8))
    fit(task, (hr, lr), TrainConfig(steps=2, batch_size=4, precision="fp32", device="cpu", progress=False), root / "o",
        checkpoint_dir=root / "sr")
    return root / "sr"


@pytest.fixture(scope="module")
def photos(crops, tmp_path_factory):
    d = tmp_path_factory.mktemp("photos")
    photo = _photo(crops["test"][:2], [(130, 150, 1.4, 5), (400, 140, 1.7, -8)])
    Image.fromarray(photo).save(d / "photo.png")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (160, 200, 3), np.uint8)).save(d / "noface.png")
    return d


# --------------------------------------------------------------------------- export and load

def test_fit_exports_a_loadable_model_with_config_version_kinds_and_template(trained, crops):
    path = trained / "ce" / api.EXPORT_NAME
    payload = torch.load(path, weights_only=True)
    meta = payload["meta"]
    assert meta["facefill_version"] == facefill.__version__ and meta["task"] == "ContextEncoderTask"
    assert meta["task_module"] == "facefill.models.context_encoder" and meta["mask_kinds"] == ["centre"]
    assert meta["config"]["bottleneck"] == 32 and meta["purpose"] == "inpaint"
    assert set(payload["modules"]) == {"generator"}  # weights only: no discriminator, no optimiser
    assert path.stat().st_size < (trained / "ce" / "last.pt").stat().st_size / 2
    # the template is the mean landmarks of the training crops, as training_landmarks computes them
    expected, n = api.training_landmarks(crops["train"])
    assert n >= 16 and np.allclose(payload["landmarks"].numpy(), expected)
    # load rebuilds the non-default config (a default ContextEncoderConfig would not fit these weights)
    for where in (trained / "ce", path, trained / "ce" / "last.pt"):
        model = facefill.load(where)
        assert model.task.cfg.bottleneck == 32 and model.mask_kinds == ("centre",)
    model = facefill.load(path)
    ref = api.load(trained / "ce" / "last.pt")
    x = crops["test"][:2]
    assert np.array_equal(model.inpaint(x), ref.inpaint(x))
    out = model.inpaint(x)
    t, l, h, w = model.task.cfg.hole_box
    known = np.ones((128, 128), bool)
    known[t : t + h, l : l + w] = False
    assert np.array_equal(out[:, known], x[:, known])  # only the hole changes
    assert facefill.load(trained / "elu").mask_kinds == ("facemask",)


def test_load_errors_are_clear(tmp_path, trained):
    with pytest.raises(FacefillError, match="no model at"):
        facefill.load(tmp_path / "nothing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FacefillError, match="holds no trained model"):
        facefill.load(tmp_path / "empty")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(FacefillError, match="cannot read"):
        facefill.load(tmp_path / "junk.pt")
    bad = torch.load(trained / "ce" / api.EXPORT_NAME, weights_only=True)
    bad["meta"]["config"]["no_such_key"] = 1
    torch.save(bad, tmp_path / "bad.pt")
    with pytest.raises(FacefillError, match="no_such_key"):
        facefill.load(tmp_path / "bad.pt")
    with pytest.raises(FacefillError, match="does not inpaint|upscale"):
        facefill.load(trained / "ce").upscale(np.zeros((1, 8, 8, 3), np.uint8))


# --------------------------------------------------------------------------- alignment

def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(1)
    src = rng.uniform(0, 100, (68, 2))
    a, s, t = np.deg2rad(17), 1.7, np.array([12.0, -5.0])
    rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    m = align.similarity_transform(src, src @ rot.T + t)
    assert np.allclose(m, np.hstack([rot, t[:, None]]), atol=1e-9)


def test_realigned_test_crops_land_within_2px_of_the_training_mean_landmarks(crops):
    from facefill import landmarks as lm

    template, _ = api.training_landmarks(crops["train"])
    rng = np.random.default_rng(0)
    aligned = []
    for face in crops["test"]:
        photo = _photo([face], [(rng.uniform(120, 300), rng.uniform(110, 190), rng.uniform(1.2, 1.8), rng.uniform(-15, 15))])
        found = align.find_faces(photo)
        assert len(found) == 1
        aligned.append(align.align_face(photo, found[0], template, 128)[0])
    points, detected = lm.landmarks(np.stack(aligned), box="detect")
    assert detected.mean() >= 0.75
    error = np.linalg.norm(points[detected].mean(0) - template, axis=1)
    assert error.mean() < 2.0, f"mean landmark error {error.mean():.2f} px (max {error.max():.2f})"


def test_paste_back_changes_only_the_masked_region():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 255, (120, 160, 3), np.uint8)
    m = align.similarity_transform(np.array([[40.0, 40], [90, 40], [65, 90]]), np.array([[20.0, 20], [44, 20], [32, 44]]))
    mask = np.zeros((64, 64), np.float32)
    mask[24:40, 24:40] = 1
    out = align.paste_back(photo, np.zeros((64, 64, 3), np.uint8), mask, m)
    changed = np.any(out != photo, axis=-1)
    assert changed.sum() > 100
    inv = cv2.invertAffineTransform(m)
    ys, xs = np.nonzero(changed)
    box = align.transform_points(np.array([[20.0, 20], [44, 44]]), inv)  # the mask box (with feather) in the photo
    assert xs.min() >= box[0, 0] and xs.max() <= box[1, 0] and ys.min() >= box[0, 1] and ys.max() <= box[1, 1]


# --------------------------------------------------------------------------- the commands

def _run(*args):
    return subprocess.run([sys.executable, "-m", "facefill.cli", *map(str, args)], capture_output=True, text=True)


def test_inpaint_command_fills_every_face_and_pastes_back(trained, photos, tmp_path):
    out, hidden = tmp_path / "out.png", tmp_path / "hidden.png"
    r = _run("inpaint", photos / "photo.png", "--model", trained / "ce", "-o", out, "--hidden", hidden)
    assert r.returncode == 0, r.stderr
    assert "inpainted 2 face(s)" in r.stdout
    before, after = np.asarray(Image.open(photos / "photo.png")), np.asarray(Image.open(out))
    assert after.shape == before.shape
    changed = np.any(after != before, axis=-1)
    assert changed[:, :280].sum() > 500 and changed[:, 280:].sum() > 500  # both faces were filled
    assert not changed[:20].any() and not changed[:, :40].any()  # the background is untouched
    assert (np.asarray(Image.open(hidden)) != before).any()


def test_inpaint_facemask_model(trained, photos, tmp_path):
    r = _run("inpaint", photos / "photo.png", "--model", trained / "elu", "--mask", "facemask", "-o", tmp_path / "o.png")
    assert r.returncode == 0, r.stderr
    assert "inpainted 2 face(s)" in r.stdout


def test_inpaint_refuses_a_mask_kind_the_model_never_saw(trained, photos, tmp_path):
    r = _run("inpaint", photos / "photo.png", "--model", trained / "ce", "--mask", "facemask", "-o", tmp_path / "o.png")
    assert r.returncode == 2 and "trained on centre only" in r.stderr and "facemask" in r.stderr
    assert not (tmp_path / "o.png").exists()
    mask = np.zeros((300, 560), np.uint8)
    mask[100:200, 100:200] = 255
    Image.fromarray(mask).save(tmp_path / "m.png")
    r = _run("inpaint", photos / "photo.png", "--model", trained / "elu", "--mask", tmp_path / "m.png", "-o", tmp_path / "o.png")
    assert r.returncode == 2 and "facemask" in r.stderr and "mask image" in r.stderr


def test_inpaint_without_a_face_says_so(trained, photos, tmp_path):
    r = _run("inpaint", photos / "noface.png", "--model", trained / "ce", "-o", tmp_path / "o.png")
    assert r.returncode == 2 and "no face found" in r.stderr
    assert "Traceback" not in r.stderr


def test_upscale_command_image_and_video(sr_model, photos, tmp_path):
    from facefill.video import read_video, write_video

    r = _run("upscale", photos / "noface.png", "--model", sr_model, "-o", tmp_path / "big.png")
    assert r.returncode == 0, r.stderr
    assert np.asarray(Image.open(tmp_path / "big.png")).shape == (320, 400, 3)
    frames = np.random.default_rng(0).integers(0, 255, (5, 32, 48, 3), np.uint8)
    write_video(frames, tmp_path / "clip.mp4", fps=5)
    r = _run("upscale", tmp_path / "clip.mp4", "--model", sr_model, "-o", tmp_path / "big.mp4", "--batch-size", "2")
    assert r.returncode == 0, r.stderr
    out, _ = read_video(tmp_path / "big.mp4")
    assert out.shape == (5, 64, 96, 3)
    assert "upscaled 5 frames" in r.stdout


def test_upscale_with_an_inpainting_model_and_inpaint_with_an_sr_model_are_refused(trained, sr_model, photos, tmp_path):
    r = _run("upscale", photos / "noface.png", "--model", trained / "ce", "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "super-resolution" in r.stderr
    r = _run("inpaint", photos / "photo.png", "--model", sr_model, "-o", tmp_path / "x.png")
    assert r.returncode == 2 and "upscale" in r.stderr


def test_console_script_is_declared():
    import tomllib

    scripts = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["facefill"] == "facefill.cli:main"
    import shutil

    exe = shutil.which("facefill")
    if exe is None:
        pytest.skip("the package is not installed (pip install -e .): the `facefill` command is not on PATH")
    r = subprocess.run([exe, "inpaint", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and "--mask" in r.stdout
