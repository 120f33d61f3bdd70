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


# --------------------------------------------------------------------------- bad input: nothing of the user's is lost

def _md5s(*paths):
    import hashlib

    return {str(p): hashlib.md5(Path(p).read_bytes()).hexdigest() for p in paths}


def _main(capsys, *args):
    """cli.main in this process: (return code, stdout, stderr)."""
    rc = cli.main([str(a) for a in args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def _one_line_error(err):
    lines = [l for l in err.strip().splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("facefill: error:") and "Traceback" not in err, err
    return lines[0]


@pytest.fixture
def user_files(photos, tmp_path):
    """Copies of the user's photo and a clip in a folder of their own."""
    import shutil

    from facefill.video import write_video

    shutil.copy(photos / "photo.png", tmp_path / "my.png")
    write_video(np.random.default_rng(1).integers(0, 255, (4, 32, 48, 3), np.uint8), tmp_path / "myclip.mp4", fps=5)
    return tmp_path


def test_an_output_equal_to_an_input_is_refused_and_the_input_kept(trained, sr_model, user_files, capsys):
    photo, clip = user_files / "my.png", user_files / "myclip.mp4"
    before = _md5s(photo, clip)
    for args in (("inpaint", photo, "--model", trained / "ce", "-o", photo),
                 ("inpaint", photo, "--model", trained / "ce", "-o", user_files / "r.png", "--hidden", photo),
                 ("inpaint", photo, "--model", trained / "ce", "-o", user_files / "sub" / ".." / "my.png", "--overwrite"),
                 ("upscale", photo, "--model", sr_model, "-o", photo, "--overwrite"),
                 ("upscale", clip, "--model", sr_model, "-o", clip, "--overwrite")):
        rc, _, err = _main(capsys, *args)
        assert rc == 2 and "never writes over an input" in _one_line_error(err), args
    assert _md5s(photo, clip) == before
    assert not (user_files / "r.png").exists()


def test_hidden_equal_to_output_and_existing_outputs_need_overwrite(trained, user_files, capsys):
    photo, out = user_files / "my.png", user_files / "out.png"
    rc, _, err = _main(capsys, "inpaint", photo, "--model", trained / "ce", "-o", out, "--hidden", out)
    assert rc == 2 and "result (-o)" in _one_line_error(err) and not out.exists()
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(out)
    before = _md5s(out)
    rc, _, err = _main(capsys, "inpaint", photo, "--model", trained / "ce", "-o", out)
    assert rc == 2 and "--overwrite" in _one_line_error(err) and _md5s(out) == before
    rc, stdout, err = _main(capsys, "inpaint", photo, "--model", trained / "ce", "-o", out, "--overwrite")
    assert rc == 0, err
    assert _md5s(out) != before and str(api.resolve(trained / "ce")) in stdout  # the success line names the model file
    assert [p.name for p in user_files.iterdir() if "partial" in p.name] == []


def test_bad_output_names_are_refused_before_the_model_is_loaded(user_files, capsys):
    photo, clip = user_files / "my.png", user_files / "myclip.mp4"
    (user_files / "afile").write_text("x")
    missing_model = user_files / "no_such_model"  # an output error must come first: nothing was loaded or run
    cases = [(("inpaint", photo, "-o", user_files / "result"), "no extension"),
             (("inpaint", photo, "-o", user_files / "x.xyz"), "'.xyz'"),
             (("upscale", photo, "-o", user_files / "x.mp4"), "image"),
             (("upscale", clip, "-o", user_files / "x.png"), "video"),
             (("inpaint", photo, "-o", user_files / "afile" / "out.png"), "is a file, not a folder"),
             (("inpaint", photo, "-o", user_files), "is a folder")]
    for args, words in cases:
        rc, _, err = _main(capsys, *args, "--model", missing_model)
        line = _one_line_error(err)
        assert rc == 2 and words in line and "no model" not in line, (args, line)


def test_read_only_file_system_is_one_line_and_loses_nothing(trained, user_files, capsys, monkeypatch):
    import errno

    import facefill.files

    def read_only(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(facefill.files.os, "replace", read_only)
    photo = user_files / "my.png"
    before = _md5s(photo)
    for args in (("-o", user_files / "r.png"), ("-o", user_files / "r2.png", "--hidden", user_files / "h.png")):
        rc, _, err = _main(capsys, "inpaint", photo, "--model", trained / "ce", *args)
        assert rc == 2 and "read-only" in _one_line_error(err)
    assert _md5s(photo) == before
    assert sorted(p.name for p in user_files.iterdir()) == ["my.png", "myclip.mp4"]  # no partial files left


def test_a_mask_file_of_any_image_type_is_a_mask_not_a_kind(trained, user_files, capsys):
    mask = np.zeros((300, 560), np.uint8)
    mask[100:200, 100:200] = 255
    Image.fromarray(mask).save(user_files / "mask.webp")
    rc, _, err = _main(capsys, "inpaint", user_files / "my.png", "--model", trained / "ce", "--mask", user_files / "mask.webp",
                       "-o", user_files / "o.png")
    line = _one_line_error(err)
    assert rc == 2 and "a mask image (free-form holes)" in line and "never saw the mask kind" not in line
    assert cli.is_mask_file(str(user_files / "mask.webp")) and not cli.is_mask_file("centre")


def test_unknown_device_is_one_line(trained, user_files, capsys):
    rc, _, err = _main(capsys, "inpaint", user_files / "my.png", "--model", trained / "ce", "--device", "gpu", "-o", user_files / "o.png")
    assert rc == 2 and "gpu" in _one_line_error(err)


def test_ctrl_c_during_a_video_upscale_leaves_no_partial_file(sr_model, user_files, capsys, monkeypatch):
    calls = []

    def interrupted(self, images, *a, **k):
        calls.append(len(images))
        if len(calls) > 1:
            raise KeyboardInterrupt
        return np.repeat(np.repeat(images, 2, 1), 2, 2)

    monkeypatch.setattr(api.Model, "upscale", interrupted)
    before = _md5s(user_files / "myclip.mp4")
    rc, _, err = _main(capsys, "upscale", user_files / "myclip.mp4", "--model", sr_model, "-o", user_files / "big.mp4",
                       "--batch-size", "2")
    assert rc == 130 and "interrupted" in err and "Traceback" not in err
    assert len([l for l in err.splitlines() if l.startswith("facefill:")]) == 1
    assert sorted(p.name for p in user_files.iterdir()) == ["my.png", "myclip.mp4"]
    assert _md5s(user_files / "myclip.mp4") == before


def test_large_images_are_upscaled_in_tiles_that_match_the_whole_image(sr_model):
    model = api.load(sr_model)
    image = np.random.default_rng(0).integers(0, 255, (1, 40, 56, 3), np.uint8)
    whole = model.upscale(image, tile=1000)
    tiled = model.upscale(image, tile=16, margin=8)  # 3×4 tiles with seams inside the image
    assert tiled.shape == whole.shape == (1, 80, 112, 3)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 1  # margin > the tiny net's receptive field


def test_video_upscaling_memory_does_not_grow_with_the_number_of_frames(tmp_path):
    import tracemalloc

    from facefill.video import super_resolve_video, write_video

    def nearest_x2(frames):
        return np.repeat(np.repeat(frames, 2, 1), 2, 2)

    peaks = {}  # a 4-frame run first pays for imports and ffmpeg start-up; a video that held its frames would need
    # 200 × 128 × 320 × 3 bytes = 24.6 MB more at 200 frames than at 20
    for n in (4, 20, 200):
        frames = np.random.default_rng(n).integers(0, 255, (n, 64, 80, 3), np.uint8)
        write_video(frames, tmp_path / f"in{n}.mp4", fps=10)
        del frames
        tracemalloc.start()
        info = super_resolve_video(tmp_path / f"in{n}.mp4", tmp_path / f"out{n}.mp4", nearest_x2, batch_size=8, side_by_side=True)
        peaks[n] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert info["frames"] == n and info["out_size"] == (128, 320)
    assert peaks[200] <= 1.10 * peaks[20], peaks
