"""Data errors that say what to do (issue 15, data side), on tiny synthetic archives in tmp_path.

Each case must end in one FacefillError whose message names the file and the fix, never a raw
zipfile / tarfile / numpy traceback, and must leave everything the user had in place: the
archives, the processed cache of other datasets, the datasets prepare already finished.
"""

import hashlib
import io
import json
import logging
import os
import tarfile
import warnings
import zipfile

import numpy as np
import pytest
from PIL import Image

from archives import write_tgz as _write_tgz, write_zip as _write_zip
from facefill import data as D
from facefill.data import prepare_stage
from facefill.errors import DataError, DataNotFoundError, FacefillError


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # tests choose their data dir explicitly and must never download
    monkeypatch.delenv("FACEFILL_DATA_DIR", raising=False)
    monkeypatch.delenv("FACEFILL_ALLOW_DOWNLOAD", raising=False)


# ----------------------------------------------------------------------------- synthetic data (as in test_data.py)


def _rgb(w, h, seed):
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((w, h), Image.BILINEAR))


def _img_bytes(w, h, seed, fmt="JPEG"):
    buf = io.BytesIO()
    Image.fromarray(_rgb(w, h, seed)).save(buf, format=fmt)
    return buf.getvalue()




def _lfw_members(n=10):
    people = ["Alice_A", "Bob_B", "Carol_C"]
    return {f"lfw-deepfunneled/{people[k % 3]}/{people[k % 3]}_{k:04d}.jpg": _img_bytes(250, 250, k) for k in range(n)}


def _hq_members(n=8, side=64):
    # PNG: incompressible-ish noise, so the archive is large enough to cut in half meaningfully
    return {f"celeba-hq-256/{k:05d}.png": _img_bytes(side, side, k, fmt="PNG") for k in range(n)}


def _truncate(path):
    """Rewrite ``path`` with its first half, as an interrupted download leaves it."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path.read_bytes()


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _one_line_fix(msg, path, *fixes):
    assert str(path) in msg, msg
    for fix in fixes:
        assert fix in msg, (fix, msg)
    assert "Traceback" not in msg


@pytest.fixture
def good_cache(tmp_path):
    """A data dir with a good LFW archive and a processed dir holding its cache (what the user already has)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    _write_tgz(raw / "lfw-deepfunneled.tgz", _lfw_members(10))
    out = tmp_path / "processed"
    D.prepare(["lfw/default/32"], data_dir=raw, processed_dir=out)
    before = {p.name: _sha(p) for p in out.iterdir()}
    return raw, out, before


# ----------------------------------------------------------------------------- archives


def test_truncated_zip_names_archive_and_fix(good_cache):
    raw, out, before = good_cache
    archive = _write_zip(raw / "celeba-hq-256.zip", _hq_members())
    content = _truncate(archive)
    for call in (lambda: D.load_faces("celeba-hq", 32, "test", data_dir=raw, processed_dir=out),
                 lambda: D.list_images("celeba-hq", raw),
                 lambda: D.prepare(["celeba-hq/default/32"], data_dir=raw, processed_dir=out)):
        with pytest.raises(DataError) as e:
            call()
        assert not isinstance(e.value, zipfile.BadZipFile) and e.value.__cause__ is None
        _one_line_fix(str(e.value), archive, "truncated or corrupt", "re-download it", "replace it")
    assert archive.read_bytes() == content  # the user's file is untouched
    assert {p.name: _sha(p) for p in out.iterdir()} == before  # the LFW cache too
    assert D.load_faces("lfw", 32, "test", data_dir=raw, processed_dir=out).shape == (2, 32, 32, 3)


def test_zip_with_damaged_member_names_archive_and_member(tmp_path):
    members = _hq_members(4)
    archive = _write_zip(tmp_path / "celeba-hq-256.zip", members)
    blob = bytearray(archive.read_bytes())
    victim = "celeba-hq-256/00002.png"
    at = blob.index(members[victim][100:140])  # stored uncompressed: flip bytes inside its data
    blob[at:at + 40] = bytes(40)
    archive.write_bytes(bytes(blob))
    assert len(D.list_images("celeba-hq", tmp_path)) == 4  # the directory is fine ...
    with pytest.raises(DataError) as e:  # ... the member fails its CRC check when it is read
        D.prepare(["celeba-hq/default/32"], data_dir=tmp_path, processed_dir=tmp_path / "p")
    _one_line_fix(str(e.value), archive, victim, "truncated or corrupt", "re-download it")


def test_truncated_tgz_names_archive_and_fix(good_cache, tmp_path):
    raw, out, before = good_cache
    other = tmp_path / "other"
    other.mkdir()
    archive = _write_tgz(other / "lfw-deepfunneled.tgz", _lfw_members(30))
    content = _truncate(archive)
    with pytest.raises(DataError) as e:
        D.load_faces("lfw", 32, "test", data_dir=other, processed_dir=out)  # other source: cache not used
    _one_line_fix(str(e.value), archive, "truncated or corrupt", "re-download it from http://vis-www.cs.umass.edu")
    with pytest.raises(DataError, match="truncated or corrupt"):
        D.prepare(["lfw/default/32"], data_dir=other, processed_dir=out)
    assert archive.read_bytes() == content
    assert {p.name: _sha(p) for p in out.iterdir()} == before  # the old LFW cache survives the failed prepare


def test_tgz_with_broken_header_is_not_silently_shorter(tmp_path):
    # a damaged member header in the middle: tarfile alone just stops listing there
    members = _lfw_members(12)
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w") as tf:
        for name, data in sorted(members.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    raw = bytearray(tar.getvalue())
    sixth = raw.index(sorted(members)[5].encode())  # header of the 6th member
    raw[sixth:sixth + 512] = b"\xff" * 512
    import gzip

    archive = tmp_path / "lfw-deepfunneled.tgz"
    archive.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(DataError) as e:
        D.list_images("lfw", tmp_path)
    _one_line_fix(str(e.value), archive, "truncated or corrupt", "re-download it")


def test_cli_prints_one_line_error(tmp_path):
    archive = _write_zip(tmp_path / "celeba-hq-256.zip", _hq_members())
    _truncate(archive)
    with pytest.raises(SystemExit) as e:
        D.main(["prepare", "--variants", "celeba-hq/default/32", "--data-dir", str(tmp_path),
                "--processed-dir", str(tmp_path / "p")])
    msg = str(e.value.code)
    assert msg.startswith("error: archive ") and msg.count("\n") == 0
    _one_line_fix(msg, archive, "re-download it")


# ----------------------------------------------------------------------------- FACEFILL_DATA_DIR


def test_data_dir_env_that_does_not_exist(tmp_path, monkeypatch):
    missing = tmp_path / "no" / "such" / "dir"
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(missing))
    for call in (lambda: D.find_archive("lfw"), lambda: D.load_faces("celeba-hq", 32),
                 lambda: D.prepare(["lfw/default/32"], processed_dir=tmp_path / "p")):
        with pytest.raises(DataNotFoundError) as e:
            call()
        _one_line_fix(str(e.value), missing, f"FACEFILL_DATA_DIR={missing} does not exist",
                      "set it to the folder that holds the archives (e.g. FACEFILL_DATA_DIR=")
    assert not missing.exists()  # nothing was created behind the user's back
    assert "ERROR" in D.info(processed_dir=tmp_path / "p")  # info reports it instead of crashing


def test_data_dir_env_pointing_at_the_archive(tmp_path, monkeypatch):
    archive = _write_tgz(tmp_path / "lfw-deepfunneled.tgz", _lfw_members(4))
    content = archive.read_bytes()
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(archive))
    with pytest.raises(DataNotFoundError) as e:
        D.load_faces("lfw", 32)
    _one_line_fix(str(e.value), archive, "is a file, not a folder", "its parent",
                  f"FACEFILL_DATA_DIR={tmp_path}")
    assert archive.read_bytes() == content
    # the same mistake in data.dir / --data-dir
    monkeypatch.delenv("FACEFILL_DATA_DIR")
    with pytest.raises(DataNotFoundError, match="its parent"):
        D.find_archive("lfw", archive)
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(tmp_path))  # the fix works
    assert D.load_faces("lfw", 32, "test", processed_dir=tmp_path / "p").shape == (1, 32, 32, 3)


# ----------------------------------------------------------------------------- processed cache


def test_truncated_npy_names_file_and_rebuild_command(good_cache):
    raw, out, before = good_cache
    npy = out / "lfw__default__32.npy"
    content = _truncate(npy)
    index = (out / "index.json").read_text()
    with pytest.raises(DataError) as e:
        D.load_faces("lfw", 32, "train", data_dir=raw, processed_dir=out)
    msg = str(e.value)
    _one_line_fix(msg, npy, "truncated or corrupt", "python -m facefill.pipeline prepare",
                  f"python -m facefill.data prepare --variants lfw/default/32 --processed-dir {out}")
    assert npy.read_bytes() == content and (out / "index.json").read_text() == index  # left in place
    # the command it names repairs it
    D.main(["prepare", "--variants", "lfw/default/32", "--data-dir", str(raw), "--processed-dir", str(out)])
    assert D.load_faces("lfw", 32, "train", data_dir=raw, processed_dir=out).shape == (7, 32, 32, 3)


def test_old_cache_index_is_ignored_with_rebuild_hint(good_cache, caplog, tmp_path):
    raw, out, _ = good_cache
    index = json.loads((out / "index.json").read_text())
    index["version"] = 1  # what facefill wrote before the val split
    for e in index["datasets"].values():
        e.pop("val"), e.pop("val_fraction"), e.pop("split_by")
    (out / "index.json").write_text(json.dumps(index))
    D._stale_warned.clear()
    with caplog.at_level(logging.WARNING, logger="facefill.data"):
        val = D.load_faces("lfw", 32, "val", data_dir=raw, processed_dir=out)  # decodes from the archive
    assert val.shape == (1, 32, 32, 3)
    text = " ".join(r.message for r in caplog.records)
    assert "index version 1" in text and "dvc repro prepare_data" in text
    assert "python -m facefill.pipeline prepare" in text and f"--variants lfw/default/32 --processed-dir {out}" in text
    # without the archive the not-found error says the cache needs rebuilding
    with pytest.raises(DataNotFoundError, match="older facefill"):
        D.load_faces("lfw", 32, "val", data_dir=tmp_path / "empty", processed_dir=out)
    assert "STALE" in D.info(raw, out)
    D.prepare(["lfw/default/32"], data_dir=raw, processed_dir=out)  # rebuilding makes it current again
    assert json.loads((out / "index.json").read_text())["version"] == D.INDEX_VERSION


def test_prepare_keeps_finished_datasets_and_other_variants(good_cache):
    raw, out, before = good_cache
    _write_tgz(raw / "lfw-deepfunneled.tgz", _lfw_members(10))  # same content, rewritten
    archive = _write_zip(raw / "celeba-hq-256.zip", _hq_members())
    _truncate(archive)
    with pytest.raises(DataError, match="celeba-hq-256.zip"):
        D.prepare(["lfw/default/16", "celeba-hq/default/32"], data_dir=raw, processed_dir=out)
    entry = json.loads((out / "index.json").read_text())["datasets"]["lfw"]
    # lfw finished before celeba-hq failed: its new variant is kept, and so is the older 32 px one
    assert set(entry["variants"]) == {"default/16", "default/32"}
    assert not any(p.name.endswith((".tmp", ".compact")) for p in out.iterdir())
    for size in (16, 32):
        assert D.load_faces("lfw", size, "test", data_dir=raw, processed_dir=out).shape == (2, size, size, 3)


# ----------------------------------------------------------------------------- images


def test_half_res_celeba_upscale_is_recorded_not_warned(tmp_path, caplog, recwarn, capsys):
    # our half-resolution CelebA copy: the DCGAN crop is 54x54, so 64 px means upscaling -- which the project's
    # parameters (celeba/default/64) ask for on purpose: no warning advising "size <= 54" on every prepare
    members = {f"img_align_celeba_half/{k + 1:06d}.jpg": _img_bytes(89, 109, k) for k in range(6)}
    _write_zip(tmp_path / "img_align_celeba_half.zip", members)
    out = tmp_path / "p"
    with caplog.at_level(logging.INFO, logger="facefill.data"):
        index = D.prepare(["celeba/default/64", "celeba/default/32", "celeba/whole/64"], data_dir=tmp_path,
                          processed_dir=out)
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    assert "size <= 54" not in capsys.readouterr().err
    notes = [r.getMessage() for r in caplog.records if "half-resolution copy" in r.getMessage()]
    assert notes == ["celeba default/64: the half-resolution copy's 6 DCGAN crops (54x54) are upscaled to 64x64 as the "
                     "parameters ask; the official img_align_celeba.zip (178x218) needs no upscaling"]
    v = index["datasets"]["celeba"]["variants"]
    assert v["default/64"]["upscaled"]["count"] == 6 and v["default/32"]["upscaled"]["count"] == 0
    assert v["whole/64"]["upscaled"]["count"] == 0
    assert v["default/64"]["upscaled"]["images"]["img_align_celeba_half/000001.jpg"] == "crop 54x54"


def test_upscale_warning_counts_only_small_images(tmp_path):
    members = {f"faces/{k}.png": _img_bytes(s, s, k, fmt="PNG") for k, s in enumerate([40, 80, 90, 30, 100])}
    _write_zip(tmp_path / "faces.zip", members)
    with pytest.warns(D.UpscaleWarning, match=r"images:.* default/64: 2 of 5 images .*faces/0.png \(crop 40x40\)"
                                              r".*faces/3.png \(crop 30x30\).*size <= 30"):
        D.prepare([f"images:{tmp_path / 'faces.zip'}/default/64"], processed_dir=tmp_path / "p")


def _mode_bytes(mode, seed):
    rgb = Image.fromarray(_rgb(250, 250, seed))
    buf = io.BytesIO()
    if mode == "RGBA":
        im = rgb.convert("RGBA")
        im.putalpha(Image.fromarray(np.full((250, 250), 128, np.uint8)))
        im.save(buf, format="PNG")
    elif mode == "LA":
        rgb.convert("LA").save(buf, format="PNG")
    elif mode == "P":
        rgb.convert("P", palette=Image.ADAPTIVE, colors=64).save(buf, format="PNG")
    elif mode == "P+transparency":
        im = rgb.convert("P", palette=Image.ADAPTIVE, colors=64)
        im.info["transparency"] = 0
        im.save(buf, format="PNG", transparency=0)
    elif mode == "CMYK":
        rgb.convert("CMYK").save(buf, format="JPEG", quality=95)
    elif mode == "I;16":
        Image.fromarray((_rgb(250, 250, seed)[..., 0].astype(np.uint16) * 256)).save(buf, format="PNG")
    return rgb, buf.getvalue()


@pytest.mark.parametrize("mode,opened_as", [("RGBA", "RGBA"), ("LA", "LA"), ("P", "P"), ("P+transparency", "P"),
                                            ("CMYK", "CMYK")])
def test_convertible_modes_become_rgb(tmp_path, mode, opened_as):
    rgb, blob = _mode_bytes(mode, 3)
    assert Image.open(io.BytesIO(blob)).mode == opened_as
    members = _lfw_members(6)
    name = "lfw-deepfunneled/Odd_O/Odd_O_0001." + ("jpg" if mode == "CMYK" else "png")
    members[name] = blob
    _write_tgz(tmp_path / "lfw-deepfunneled.tgz", members)
    index = D.prepare(["lfw/default/250"], data_dir=tmp_path, processed_dir=tmp_path / "p")
    e = index["datasets"]["lfw"]
    assert e["unexpected"]["count"] == 0 and e["corrupt"]["count"] == 0
    assert e["converted"]["count"] == 1 and "converted to RGB" in e["converted"]["images"][name]
    img = np.load(tmp_path / "p" / "lfw__default__250.npy")[e["cached"].index(e["names"].index(name))]
    expected = np.asarray(Image.open(io.BytesIO(blob)).convert("RGBA" if mode.startswith("P") else mode)
                          .convert("RGB"))
    assert img.shape == (250, 250, 3) and np.array_equal(img, expected)
    if mode in ("RGBA", "CMYK"):  # alpha dropped / colours kept (CMYK through JPEG: close, not exact)
        assert np.abs(img.astype(int) - np.asarray(rgb).astype(int)).mean() < (1 if mode == "RGBA" else 8)


def test_sixteen_bit_images_stay_unexpected(tmp_path):
    members = _lfw_members(6)
    members["lfw-deepfunneled/Deep_D/Deep_D_0001.png"] = _mode_bytes("I;16", 1)[1]
    _write_tgz(tmp_path / "lfw-deepfunneled.tgz", members)
    e = D.prepare(["lfw/default/32"], data_dir=tmp_path, processed_dir=tmp_path / "p")["datasets"]["lfw"]
    assert e["unexpected"]["count"] == 1
    assert "cannot be converted" in e["unexpected"]["images"]["lfw-deepfunneled/Deep_D/Deep_D_0001.png"]


def test_every_error_is_a_facefill_error():
    assert issubclass(DataError, FacefillError) and issubclass(DataNotFoundError, FacefillError)


# ----------------------------------------------------------------------------- issue 21: fewer images than asked, --data-dir, Ctrl-C


def _image_folder(root, n):
    folder = root / "faces"
    folder.mkdir(parents=True)
    for k in range(n):
        (folder / f"{k:03d}.png").write_bytes(_img_bytes(64, 64, k, fmt="PNG"))
    return folder


def test_a_split_smaller_than_asked_is_a_loud_warning(tmp_path, capsys):
    from facefill.errors import FacefillWarning, SplitSizeWarning

    folder = _image_folder(tmp_path, 15)  # 15 images: train/val/test 11/1/3
    with pytest.warns(SplitSizeWarning) as w:
        train = D.load_faces(f"images:{folder}", 32, "train", 64)
    assert len(train) == 11 and issubclass(SplitSizeWarning, FacefillWarning)
    msg = str(w[0].message)
    assert msg.startswith(f"images:{folder} train split holds only 11 image(s), fewer than the 64 asked for")
    assert "the run uses 11" in msg and "ask for at most 11 (null: all of them)" in msg
    assert capsys.readouterr().err == f"facefill: warning: {msg}\n"  # one line a notebook / the pipeline shows

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # enough images, or all of them: silent
        assert len(D.load_faces(f"images:{folder}", 32, "test", 3)) == 3
        assert len(D.load_faces(f"images:{folder}", 32, "train", None)) == 11

    out = tmp_path / "p"  # from the processed cache too
    with pytest.warns(SplitSizeWarning, match=r"limit=100 asks for train/val/test 72/8/20 images but its splits give only "
                                              r"11/1/3 \(15 images in all\), so 15 are prepared"):
        D.prepare([f"images:{folder}/default/32"], processed_dir=out, limit=100)
    capsys.readouterr()
    with pytest.warns(SplitSizeWarning, match="test split holds only 3 image"):
        assert len(D.load_faces(f"images:{folder}", 32, "test", 10, processed_dir=out)) == 3


def test_an_explicit_data_dir_beats_the_environment(tmp_path, monkeypatch, capsys):
    mine, env = tmp_path / "mine", tmp_path / "env"
    _write_tgz(mine.mkdir() or mine / "lfw-deepfunneled.tgz", _lfw_members(4))
    env.mkdir()  # holds no archives: if it won, prepare would fail
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(env))
    out = tmp_path / "p"
    D.main(["prepare", "--variants", "lfw/default/16", "--data-dir", str(mine), "--processed-dir", str(out)])
    err = capsys.readouterr().err
    assert f"facefill: note: using --data-dir {mine}, not FACEFILL_DATA_DIR={env}\n" in err
    assert json.loads((out / "index.json").read_text())["datasets"]["lfw"]["source"] == str(mine / "lfw-deepfunneled.tgz")
    assert os.environ["FACEFILL_DATA_DIR"] == str(env)  # restored for whatever runs next

    D.main(["info", "--data-dir", str(mine), "--processed-dir", str(out)])
    captured = capsys.readouterr()
    assert f"data dir: {mine}" in captured.out and "note: using --data-dir" in captured.err

    monkeypatch.setenv("FACEFILL_DATA_DIR", str(mine))  # both set and equal: no note
    D.main(["info", "--data-dir", str(mine), "--processed-dir", str(out)])
    assert "note" not in capsys.readouterr().err


def test_ctrl_c_in_prepare_keeps_finished_datasets_and_is_one_line(tmp_path, monkeypatch, capsys):
    _write_tgz(tmp_path / "lfw-deepfunneled.tgz", _lfw_members(4))
    _write_zip(tmp_path / "celeba-hq-256.zip", _hq_members(4))
    real = prepare_stage._prepare_dataset  # patched where prepare() looks it up: its own module

    def ctrl_c_in_the_second(dataset, *a, **kw):
        if dataset == "celeba-hq":
            raise KeyboardInterrupt
        return real(dataset, *a, **kw)

    monkeypatch.setattr(prepare_stage, "_prepare_dataset", ctrl_c_in_the_second)
    out = tmp_path / "p"
    with pytest.raises(SystemExit) as e:
        D.main(["prepare", "--variants", "lfw/default/16", "celeba-hq/default/16", "--data-dir", str(tmp_path),
                "--processed-dir", str(out)])
    assert e.value.code == 130
    err = capsys.readouterr().err  # lfw's progress bar, then the one line
    assert "Traceback" not in err and err.endswith(
        f"\nfacefill: prepare stopped by Ctrl-C; the finished dataset(s) lfw are kept in {out}; "
        "rerun the same command to prepare the rest\n")
    assert set(json.loads((out / "index.json").read_text())["datasets"]) == {"lfw"}


def test_prepare_limit_help_states_the_real_split(capsys):
    with pytest.raises(SystemExit):
        D.main(["prepare", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "72/8/20 % train/val/test" in text and "80/20" not in text
