"""Tests for facefill.data on tiny synthetic archives built in tmp_path, plus real-data checks.

The real-data tests read /work/shared/data (env FACEFILL_DATA_DIR, else ../shared/data
from the repo root) and skip when it is missing. Nothing here downloads.
"""

import hashlib
import io
import json
import logging
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from archives import write_tgz, write_zip as _write_zip
from facefill import data as D
from facefill.errors import ConfigError, DataError, DataNotFoundError

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = Path(os.environ.get("FACEFILL_DATA_DIR") or REPO.parent / "shared" / "data")


@pytest.fixture(autouse=True)
def _no_env(monkeypatch):
    # tests choose their data dir explicitly and must never download
    monkeypatch.delenv("FACEFILL_DATA_DIR", raising=False)
    monkeypatch.delenv("FACEFILL_ALLOW_DOWNLOAD", raising=False)


# ----------------------------------------------------------------------------- synthetic data


def _img_bytes(w, h, seed, mode="RGB", fmt="JPEG"):
    rng = np.random.default_rng(seed)
    # smooth-ish content so JPEG is realistic; exact pixels do not matter except for PNG tests
    base = rng.integers(0, 256, size=(h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)
    im = Image.fromarray(base).resize((w, h), Image.BILINEAR)
    if mode != "RGB":
        im = im.convert(mode)
    buf = io.BytesIO()
    im.save(buf, format=fmt)
    return buf.getvalue()


def _write_tgz(path, members):
    return write_tgz(path, members, reverse=True)  # tar order != sorted order on purpose


def _write_folder(root, members):
    for name, data in members.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)


def _lfw_members(n=10, dirty=False):
    people = ["Alice_A", "Bob_B", "Carol_C"]
    members = {}
    for k in range(n):
        person = people[k % 3]
        members[f"lfw-deepfunneled/{person}/{person}_{k:04d}.jpg"] = _img_bytes(250, 250, k)
    if dirty:
        members["lfw-deepfunneled/Zed_Z/Zed_Z_0001.jpg"] = b"\xff\xd8 this is not a jpeg"  # corrupt
        members["lfw-deepfunneled/Gray_G/Gray_G_0001.jpg"] = _img_bytes(250, 250, 99, mode="L")  # converted
        members["lfw-deepfunneled/Small_S/Small_S_0001.jpg"] = _img_bytes(240, 240, 98)  # unexpected size
    return members


def _celeba_members(n=10, w=178, h=218):
    return {f"img_align_celeba/{k + 1:06d}.jpg": _img_bytes(w, h, k) for k in range(n)}


@pytest.fixture
def lfw_dir(tmp_path):
    d = tmp_path / "raw"
    d.mkdir()
    _write_tgz(d / "lfw-deepfunneled.tgz", _lfw_members(10))
    return d


@pytest.fixture
def dirty_lfw_dir(tmp_path):
    d = tmp_path / "dirty"
    d.mkdir()
    _write_tgz(d / "lfw-deepfunneled.tgz", _lfw_members(10, dirty=True))
    return d


# ----------------------------------------------------------------------------- locating


def test_resolve_data_dir_order(tmp_path, monkeypatch):
    assert D.resolve_data_dir() == (REPO / "data/raw").resolve()
    assert D.resolve_data_dir(tmp_path / "arg") == (tmp_path / "arg").resolve()
    assert D.resolve_data_dir("some/rel") == (REPO / "some/rel").resolve()  # params.yaml paths: repo-relative
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(tmp_path / "env"))
    assert D.resolve_data_dir(tmp_path / "arg") == (tmp_path / "env").resolve()  # env beats argument


def test_find_archive_layouts(tmp_path, monkeypatch):
    d = tmp_path / "raw"
    _write_folder(d, _lfw_members(2))  # extracted folder only
    assert D.find_archive("lfw", d) == d / "lfw-deepfunneled"
    _write_tgz(d / "lfw-deepfunneled.tgz", _lfw_members(2))
    assert D.find_archive("lfw", d) == d / "lfw-deepfunneled.tgz"  # archive preferred
    assert D.list_images("lfw", d) == sorted(_lfw_members(2))

    _write_zip(d / "img_align_celeba_half.zip", {})
    assert D.find_archive("celeba", d).name == "img_align_celeba_half.zip"
    _write_zip(d / "img_align_celeba.zip", {})
    assert D.find_archive("celeba", d).name == "img_align_celeba.zip"  # official beats our half copy

    (d / "CelebA-HQ").mkdir()
    assert D.find_archive("celeba-hq", d).name == "CelebA-HQ"  # look-alike names accepted
    _write_zip(d / "celeba-hq-256.zip", {})
    assert D.find_archive("celeba-hq", d).name == "celeba-hq-256.zip"

    # env var beats the argument
    other = tmp_path / "other"
    other.mkdir()
    _write_zip(other / "celeba_hq.zip", {})
    monkeypatch.setenv("FACEFILL_DATA_DIR", str(other))
    assert D.find_archive("celeba-hq", d) == other / "celeba_hq.zip"


def test_missing_archive_message(tmp_path):
    with pytest.raises(DataNotFoundError) as e:
        D.find_archive("lfw", tmp_path)
    msg = str(e.value)
    assert "lfw-deepfunneled.tgz" in msg and "FACEFILL_DATA_DIR" in msg and str(tmp_path) in msg
    assert "FACEFILL_ALLOW_DOWNLOAD" in msg
    with pytest.raises(DataNotFoundError, match="celeba-hq-256.zip"):
        D.load_faces("celeba-hq", 64, data_dir=tmp_path)
    with pytest.raises(DataNotFoundError, match="images:"):
        D.find_archive(f"images:{tmp_path / 'nope'}")


def test_bad_arguments(lfw_dir):
    with pytest.raises(ConfigError, match="unknown dataset"):
        D.load_faces("ffhq", 64, data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="crop"):
        D.load_faces("lfw", 64, crop="centre", data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="split"):
        D.load_faces("lfw", 64, split="validation", data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="val_fraction"):
        D.load_faces("lfw", 64, val_fraction=1.0, data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="identity"):
        D.load_faces("celeba-hq", 64, by_identity=True, data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="size"):
        D.load_faces("lfw", 0, data_dir=lfw_dir)
    with pytest.raises(ConfigError, match="dataset/crop/size"):
        D.prepare(["lfw/250"], data_dir=lfw_dir)


# ----------------------------------------------------------------------------- loading


def test_load_faces_shapes_dtype_determinism(lfw_dir, tmp_path):
    kw = {"data_dir": lfw_dir, "processed_dir": tmp_path / "none"}
    a = D.load_faces("lfw", 250, "train", **kw)
    assert a.shape == (7, 250, 250, 3) and a.dtype == np.uint8  # 10 images: 2 test, 1 val, 7 train
    assert np.array_equal(a, D.load_faces("lfw", 250, "train", **kw))
    assert D.load_faces("lfw", 250, "val", **kw).shape == (1, 250, 250, 3)
    assert D.load_faces("lfw", 250, "test", **kw).shape == (2, 250, 250, 3)
    small = D.load_faces("lfw", 64, "train", limit=3, **kw)
    assert small.shape == (3, 64, 64, 3)
    assert np.array_equal(small, D.load_faces("lfw", 64, "train", **kw)[:3])  # limit = prefix of the split
    # the same image at 250 resized by PIL gives the 64 version
    ref = Image.fromarray(a[0]).resize((64, 64), Image.LANCZOS)
    assert np.array_equal(small[0], np.asarray(ref))


def test_folder_and_archive_give_same_names_and_pixels(tmp_path):
    members = _lfw_members(6)
    (tmp_path / "a").mkdir()
    _write_tgz(tmp_path / "a" / "lfw-deepfunneled.tgz", members)
    _write_folder(tmp_path / "b", members)
    assert D.list_images("lfw", tmp_path / "a") == D.list_images("lfw", tmp_path / "b")
    a = D.load_faces("lfw", 32, data_dir=tmp_path / "a", processed_dir=tmp_path / "p")
    b = D.load_faces("lfw", 32, data_dir=tmp_path / "b", processed_dir=tmp_path / "p")
    assert np.array_equal(a, b)


def _coord_png(w, h):
    # R = x, G = y, B = 7: every pixel says where it came from (PNG: lossless)
    y, x = np.mgrid[0:h, 0:w]
    arr = np.stack([x, y, np.full_like(x, 7)], axis=-1).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return arr, buf.getvalue()


@pytest.mark.parametrize("w,h,side,left,top", [(178, 218, 108, 35, 55), (89, 109, 54, 17, 27)])
def test_celeba_default_crop_geometry(tmp_path, w, h, side, left, top):
    arr, png = _coord_png(w, h)
    _write_zip(tmp_path / "img_align_celeba.zip", {"img_align_celeba/000001.png": png})
    kw = {"data_dir": tmp_path, "processed_dir": tmp_path / "p"}
    out = D.load_faces("celeba", side, "train", **kw)[0]  # no resize: the crop itself
    assert out.shape == (side, side, 3)
    assert out[0, 0, 0] == left and out[0, 0, 1] == top
    assert out[-1, -1, 0] == left + side - 1 and out[-1, -1, 1] == top + side - 1
    assert np.array_equal(out, arr[top:top + side, left:left + side])
    # at 64: that crop, LANCZOS-resized
    ref = np.asarray(Image.fromarray(arr[top:top + side, left:left + side]).resize((64, 64), Image.LANCZOS))
    assert np.array_equal(D.load_faces("celeba", 64, "train", **kw)[0], ref)
    # "whole": the full image squashed to a square
    whole = np.asarray(Image.fromarray(arr).resize((64, 64), Image.LANCZOS))
    assert np.array_equal(D.load_faces("celeba", 64, "train", crop="whole", **kw)[0], whole)


def test_generic_images_centre_square_crop(tmp_path):
    arr, png = _coord_png(60, 40)
    members = {"faces/a.png": png, "faces/b.png": _coord_png(60, 40)[1]}
    _write_zip(tmp_path / "faces.zip", members)
    with tarfile.open(tmp_path / "faces.tar.gz", "w:gz") as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    _write_folder(tmp_path / "dir", members)
    for src in ("faces.zip", "faces.tar.gz", "dir/faces"):
        ds = f"images:{tmp_path / src}"
        assert D.list_images(ds) == ["faces/a.png", "faces/b.png"]
        out = D.load_faces(ds, 40, "train", processed_dir=tmp_path / "p")
        assert np.array_equal(out[0], arr[:, 10:50])  # centre 40x40 of a 60x40 image


def test_grayscale_converted_and_corrupt_only_fails_when_requested(dirty_lfw_dir, tmp_path):
    names = D.list_images("lfw", dirty_lfw_dir)
    split = D.split_indices("lfw", names)
    kw = {"data_dir": dirty_lfw_dir, "processed_dir": tmp_path / "p"}
    corrupt = "lfw-deepfunneled/Zed_Z/Zed_Z_0001.jpg"
    gray = "lfw-deepfunneled/Gray_G/Gray_G_0001.jpg"
    seen = set()
    for name_split in D.SPLITS:
        idx = list(split[name_split])
        in_split = [names[i] for i in idx]
        if corrupt in in_split:
            # images before the corrupt one load fine; including it raises naming the file
            k = in_split.index(corrupt)
            assert D.load_faces("lfw", 32, name_split, limit=k, **kw).shape == (k, 32, 32, 3)
            with pytest.raises(DataError, match="Zed_Z_0001.jpg"):
                D.load_faces("lfw", 32, name_split, limit=k + 1, **kw)
            seen.add("corrupt")
        if gray in in_split:
            k = in_split.index(gray)
            if corrupt not in in_split[:k + 1] and "Small_S" not in " ".join(in_split[:k + 1]):
                img = D.load_faces("lfw", 32, name_split, limit=k + 1, **kw)[k]
                assert np.array_equal(img[..., 0], img[..., 1]) and np.array_equal(img[..., 1], img[..., 2])
                seen.add("gray")
    assert seen == {"corrupt", "gray"}  # with seed 0 both cases are reachable; keep it that way


def test_large_jpeg_draft_is_deterministic_and_cached_identically(tmp_path):
    # 512 px JPEGs at 64: libjpeg decodes at 1/4 scale first (Image.draft); at 256: full decode
    d = tmp_path / "raw"
    _write_folder(d, {f"CelebA-HQ/{k:05d}.jpg": _img_bytes(512, 512, k) for k in range(5)})
    kw = {"data_dir": d, "processed_dir": tmp_path / "p"}
    small = D.load_faces("celeba-hq", 64, **kw)
    assert np.array_equal(small, D.load_faces("celeba-hq", 64, **kw))
    names = D.list_images("celeba-hq", d)
    first = names[D.split_indices("celeba-hq", names)["train"][0]]
    ref = Image.open(d / first).convert("RGB").resize((64, 64), Image.LANCZOS)
    full = np.asarray(ref, dtype=np.float32)
    assert np.abs(small[0].astype(np.float32) - full).mean() < 4  # close to a full-resolution decode
    big = D.load_faces("celeba-hq", 256, **kw)
    D.prepare(["celeba-hq/default/64", "celeba-hq/default/256"], **kw)  # two draft scales in one pass
    assert np.array_equal(D.load_faces("celeba-hq", 64, **kw), small)
    assert np.array_equal(D.load_faces("celeba-hq", 256, **kw), big)


# ----------------------------------------------------------------------------- splits


def _old_two_way_split(n, seed=0, test_fraction=0.2):
    # the train/test split before the val split existed (facefill <= index version 1), as a reference
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    n_test = min(max(round(n * test_fraction), 1), n - 1) if n > 1 else 0
    return {"train": perm[n_test:], "test": perm[:n_test]}


def test_seeded_split():
    names = [f"x/{i:04d}.jpg" for i in range(100)]
    s = D.split_indices("lfw", names, seed=0)
    assert set(s) == {"train", "val", "test"} == set(D.SPLITS)
    assert len(s["train"]) == 72 and len(s["val"]) == 8 and len(s["test"]) == 20
    assert sorted(np.concatenate([s["train"], s["val"], s["test"]])) == list(range(100))  # a partition
    s2 = D.split_indices("lfw", names, seed=0)
    assert all(np.array_equal(s[k], s2[k]) for k in s)
    s3 = D.split_indices("lfw", names, seed=1)
    assert set(s3["test"]) != set(s["test"]) and set(s3["val"]) != set(s["val"])
    assert len(D.split_indices("lfw", names, test_fraction=0.1)["test"]) == 10
    assert len(D.split_indices("lfw", names, val_fraction=0.0)["val"]) == 0
    with pytest.raises(ConfigError):
        D.split_indices("lfw", names, test_fraction=1.0)
    with pytest.raises(ConfigError):
        D.split_indices("lfw", names, val_fraction=-0.1)


@pytest.mark.parametrize("n", [2, 3, 10, 101, 1000, 13233])
@pytest.mark.parametrize("seed", [0, 7])
def test_val_split_carved_from_train_only(n, seed):
    names = [f"x/{i:05d}.jpg" for i in range(n)]
    old = _old_two_way_split(n, seed)
    s = D.split_indices("lfw", names, seed=seed)
    # disjoint and complete
    parts = [set(s[k].tolist()) for k in D.SPLITS]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    assert sum(map(len, parts)) == n and set().union(*parts) == set(range(n))
    # test: exactly the old test split, same order; train + val: the old train split
    assert np.array_equal(s["test"], old["test"])
    assert np.array_equal(np.concatenate([s["train"], s["val"]]), old["train"])
    # val ~ 10 % of the old train (>= 1 image once there are two to share), train keeps the old order
    m = len(old["train"])
    assert len(s["val"]) == (0 if m < 2 else min(max(round(m * D.VAL_FRACTION), 1), m - 1))
    if m >= 20:
        assert abs(len(s["val"]) / m - D.VAL_FRACTION) < 0.03
    assert np.array_equal(s["train"], old["train"][:len(s["train"])])
    # determinism
    again = D.split_indices("lfw", list(names), seed=seed)
    assert all(np.array_equal(s[k], again[k]) for k in D.SPLITS)


def _people_names(counts):
    # LFW layout, people with very different image counts (like George_W_Bush's 530)
    return sorted(f"lfw-deepfunneled/P{p:03d}/P{p:03d}_{k:04d}.jpg" for p, c in enumerate(counts) for k in range(c))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_split_by_identity_keeps_each_person_on_one_side(seed):
    rng = np.random.default_rng(100 + seed)
    counts = [int(c) for c in rng.integers(1, 12, size=150)] + [60]
    names = _people_names(counts)
    n = len(names)
    s = D.split_indices("lfw", names, seed=seed, by_identity=True)
    person = D.identities("lfw", names)
    assert person[0] == "P000"
    sides = {k: {person[i] for i in s[k]} for k in D.SPLITS}
    assert not (sides["train"] & sides["val"]) and not (sides["train"] & sides["test"])
    assert not (sides["val"] & sides["test"])  # no person on two sides
    assert sorted(np.concatenate([s[k] for k in D.SPLITS])) == list(range(n))
    assert all(len(s[k]) for k in D.SPLITS)
    # sizes close to the targets (overshoot at most one person)
    assert round(0.2 * n) <= len(s["test"]) < round(0.2 * n) + max(counts)
    assert len(s["val"]) >= round(0.1 * (n - len(s["test"])))
    # seeded and deterministic; the public function gives the same
    again = D.split_by_identity(names, person, seed=seed)
    assert all(np.array_equal(s[k], again[k]) for k in D.SPLITS)
    assert set(D.split_indices("lfw", names, seed=seed + 10, by_identity=True)["test"]) != set(s["test"])
    # default behaviour unchanged: the image split mixes people across sides
    plain = D.split_indices("lfw", names, seed=seed)
    assert {person[i] for i in plain["train"]} & {person[i] for i in plain["test"]}


def test_split_by_identity_limits(tmp_path):
    with pytest.raises(ConfigError, match="identity"):
        D.split_indices("celeba", ["img_align_celeba/000001.jpg"] * 3, by_identity=True)
    with pytest.raises(DataError, match="persons"):
        D.split_indices("lfw", _people_names([5, 5]), by_identity=True)
    s = D.split_indices("lfw", _people_names([5, 5, 5]), by_identity=True)
    assert all(len(s[k]) == 5 for k in D.SPLITS)
    # load_faces and prepare use it end to end, and the cache records which split it holds
    d = tmp_path / "raw"
    d.mkdir()
    members = _lfw_members(12)  # 3 people, 4 images each
    _write_tgz(d / "lfw-deepfunneled.tgz", members)
    kw = {"data_dir": d, "processed_dir": tmp_path / "p"}
    direct = {k: D.load_faces("lfw", 16, k, by_identity=True, **kw) for k in D.SPLITS}
    assert [len(direct[k]) for k in D.SPLITS] == [4, 4, 4]
    index = D.prepare(["lfw/default/16"], by_identity=True, **kw)
    e = index["datasets"]["lfw"]
    assert e["split_by"] == "identity"
    for k in D.SPLITS:
        assert len({e["names"][i].split("/")[1] for i in e[k]}) == 1
        assert np.array_equal(D.load_faces("lfw", 16, k, by_identity=True, **kw), direct[k])
    # an identity cache is not used for the default image split (decoded directly instead)
    plain = D.load_faces("lfw", 16, "test", **kw)
    assert len(plain) == 2


def test_celeba_official_partition(tmp_path):
    _write_zip(tmp_path / "img_align_celeba.zip", _celeba_members(10))
    names = D.list_images("celeba", tmp_path)
    seeded = D.split_indices("celeba", names, data_dir=tmp_path)
    assert len(seeded["test"]) == 2 and len(seeded["val"]) == 1
    # official: ids 1-6 train (0), 7-8 val (1), 9-10 test (2)
    lines = [f"{k:06d}.jpg {0 if k <= 6 else 1 if k <= 8 else 2}" for k in range(1, 11)]
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    s = D.split_indices("celeba", names, seed=3, data_dir=tmp_path)
    assert sorted(s["test"]) == [8, 9] and sorted(s["val"]) == [6, 7] and sorted(s["train"]) == list(range(6))
    # a file without val entries: val is carved out of its train part
    lines = [f"{k:06d}.jpg {0 if k <= 8 else 2}" for k in range(1, 11)]
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(lines) + "\n")
    s = D.split_indices("celeba", names, seed=3, data_dir=tmp_path)
    assert sorted(s["test"]) == [8, 9] and len(s["val"]) == 1
    assert sorted(np.concatenate([s["train"], s["val"]])) == list(range(8))
    # a train-only copy (like our half-res one) gets the seeded split instead of an empty test set
    (tmp_path / "list_eval_partition.txt").write_text("\n".join(f"{k:06d}.jpg 0" for k in range(1, 11)))
    assert len(D.split_indices("celeba", names, data_dir=tmp_path)["test"]) == 2
    (tmp_path / "list_eval_partition.txt").write_text("999999.jpg 2\n")
    with pytest.raises(DataError, match="no entry"):
        D.split_indices("celeba", names, data_dir=tmp_path)


# ----------------------------------------------------------------------------- prepare / cache


def test_prepare_writes_cache_and_index(dirty_lfw_dir, tmp_path, caplog):
    out = tmp_path / "processed"
    index = D.prepare(["lfw/default/250", "lfw/default/32"], data_dir=dirty_lfw_dir, processed_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "lfw__default__250.npy", "lfw__default__32.npy"]
    on_disk = json.loads((out / "index.json").read_text())
    assert on_disk == json.loads(json.dumps(index))
    e = on_disk["datasets"]["lfw"]
    archive = dirty_lfw_dir / "lfw-deepfunneled.tgz"
    assert e["source"] == str(archive)
    assert e["source_sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    assert e["n_images"] == 13 and len(e["names"]) == 13 and e["seed"] == 0 and e["test_fraction"] == 0.2
    assert len(e["train"]) + len(e["val"]) + len(e["test"]) == 13 and len(e["val"]) == 1
    assert e["val_fraction"] == D.VAL_FRACTION and e["split_by"] == "image"
    assert on_disk["version"] == D.INDEX_VERSION == 2
    assert e["corrupt"]["count"] == 1 and "lfw-deepfunneled/Zed_Z/Zed_Z_0001.jpg" in e["corrupt"]["images"]
    assert e["unexpected"]["count"] == 1
    assert "240x240" in e["unexpected"]["images"]["lfw-deepfunneled/Small_S/Small_S_0001.jpg"]
    assert e["converted"]["count"] == 1
    arr = np.load(out / "lfw__default__250.npy")
    assert arr.shape == (11, 250, 250, 3) and arr.dtype == np.uint8  # 13 minus corrupt and unexpected
    gray = arr[e["cached"].index(e["names"].index("lfw-deepfunneled/Gray_G/Gray_G_0001.jpg"))]
    assert np.array_equal(gray[..., 0], gray[..., 2])  # grayscale -> 3 equal channels
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())
    assert any("unusable" in r.message for r in caplog.records if r.levelno == logging.WARNING)


def test_prepare_strict_raises(dirty_lfw_dir, tmp_path):
    out = tmp_path / "processed"
    with pytest.raises(DataError) as e:
        D.prepare(["lfw/default/64"], data_dir=dirty_lfw_dir, processed_dir=out, strict=True)
    assert "Zed_Z_0001.jpg" in str(e.value) and "Small_S_0001.jpg" in str(e.value)
    assert list(out.iterdir()) == []  # no half-written cache, no temporary files


def test_cache_matches_direct_decoding(lfw_dir, tmp_path, caplog):
    out = tmp_path / "processed"
    kw = {"data_dir": lfw_dir, "seed": 5}
    direct = {s: D.load_faces("lfw", 48, s, processed_dir=out, **kw) for s in D.SPLITS}
    D.prepare(["lfw/default/48", "lfw/whole/250"], processed_dir=out, **kw)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facefill.data"):
        for s in D.SPLITS:
            assert np.array_equal(D.load_faces("lfw", 48, s, processed_dir=out, **kw), direct[s])
        assert np.array_equal(D.load_faces("lfw", 48, "train", 3, processed_dir=out, **kw), direct["train"][:3])
    assert all("from cache" in r.message for r in caplog.records)
    # another seed or size is not in the cache: decoded directly, and says so
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="facefill.data"):
        D.load_faces("lfw", 48, "test", processed_dir=out, data_dir=lfw_dir, seed=6)
    assert any("decoded" in r.message and "directly" in r.message for r in caplog.records)


def test_prepare_limit_and_corrupt_in_cache(dirty_lfw_dir, tmp_path):
    out = tmp_path / "processed"
    index = D.prepare(["lfw/default/32"], data_dir=dirty_lfw_dir, processed_dir=out, limit=5)
    e = index["datasets"]["lfw"]
    assert len(e["cached"]) + e["corrupt"]["count"] + e["unexpected"]["count"] == 5  # 3 train + 1 val + 1 test
    assert e["limit"] == 5
    kw = {"data_dir": dirty_lfw_dir, "processed_dir": out}
    # beyond the cached prefix load_faces falls back to the archive: same result either way (or same error)
    for s in D.SPLITS:
        for limit in (1, 4, None):
            try:
                direct = D.load_faces("lfw", 32, s, limit, data_dir=dirty_lfw_dir, processed_dir=tmp_path / "x")
            except DataError:
                with pytest.raises(DataError):
                    D.load_faces("lfw", 32, s, limit, **kw)
                continue
            assert np.array_equal(D.load_faces("lfw", 32, s, limit, **kw), direct)


def test_cli_prepare_and_info(lfw_dir, tmp_path, capsys):
    out = tmp_path / "processed"
    D.main(["prepare", "--variants", "lfw/default/16", "--data-dir", str(lfw_dir), "--processed-dir", str(out),
            "--seed", "1", "--test-fraction", "0.3", "--limit", "4"])
    e = json.loads((out / "index.json").read_text())["datasets"]["lfw"]
    assert e["seed"] == 1 and e["test_fraction"] == 0.3 and e["limit"] == 4
    assert np.load(out / "lfw__default__16.npy").shape == (4, 16, 16, 3)
    D.main(["info", "--data-dir", str(lfw_dir), "--processed-dir", str(out)])
    text = capsys.readouterr().out
    assert "lfw-deepfunneled.tgz" in text and "MISSING" in text and "lfw__default__16.npy" in text
    with pytest.raises(SystemExit, match="error: .*lfw-deepfunneled.tgz"):
        D.main(["prepare", "--variants", "lfw/default/16", "--data-dir", str(tmp_path / "empty"),
                "--processed-dir", str(out)])


# ----------------------------------------------------------------------------- tensors


def test_to_tensor_round_trip():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(3, 5, 7, 3), dtype=np.uint8)
    imgs[0, 0, 0] = [0, 255, 128]
    t = D.to_tensor(imgs)
    assert t.dtype == torch.float32 and t.shape == (3, 3, 5, 7)
    assert t.min() >= -1 and t.max() <= 1 and t[0, 0, 0, 0] == -1 and t[0, 1, 0, 0] == 1
    assert np.array_equal(D.to_uint8(t), imgs)
    assert np.array_equal(D.to_uint8(D.to_tensor(imgs[1])), imgs[1])  # single HWC image
    assert D.to_uint8(torch.full((1, 3, 2, 2), 5.0)).max() == 255  # clamped
    with pytest.raises(DataError):
        D.to_tensor(imgs.astype(np.float32))


# ----------------------------------------------------------------------------- real data


def _real(name):
    # real_data is registered in pyproject.toml; the skipif keeps it self-contained
    missing = pytest.mark.skipif(not (REAL_DIR / name).is_file(),
                                 reason=f"real data {REAL_DIR / name} missing (set FACEFILL_DATA_DIR)")
    return lambda f: pytest.mark.real_data(missing(f))


@pytest.mark.slow  # streams the whole 100 MB tgz
@_real("lfw-deepfunneled.tgz")
def test_real_lfw(tmp_path):
    x = D.load_faces("lfw", 250, "test", 8, data_dir=REAL_DIR, processed_dir=tmp_path)
    assert x.shape == (8, 250, 250, 3) and x.dtype == np.uint8 and x.std() > 10


@_real("img_align_celeba_half.zip")
def test_real_celeba(tmp_path):
    for crop in ("default", "whole"):
        x = D.load_faces("celeba", 64, "test", 8, crop=crop, data_dir=REAL_DIR, processed_dir=tmp_path)
        assert x.shape == (8, 64, 64, 3) and x.std() > 10


@_real("celeba-hq-256.zip")
def test_real_celeba_hq(tmp_path):
    x = D.load_faces("celeba-hq", 128, "test", 8, data_dir=REAL_DIR, processed_dir=tmp_path)
    assert x.shape == (8, 128, 128, 3) and x.std() > 10


def test_the_test_archives_do_not_depend_on_the_clock(tmp_path, monkeypatch):
    """The prepared cache is keyed by the archive's sha256: a test that rewrites "the same" archive a second
    later must get the same bytes (a gzip header stamped with the time made one such test flaky)."""
    import time

    from archives import write_tgz, write_zip

    members = _lfw_members(3)

    def write(folder):  # the same file names (gzip stores the name), in another folder
        folder.mkdir()
        return [write_tgz(folder / "x.tgz", members).read_bytes(), write_zip(folder / "x.zip", members).read_bytes()]

    first = write(tmp_path / "now")
    monkeypatch.setattr(time, "time", lambda: 2_000_000_000.0)  # 2033
    assert write(tmp_path / "later") == first
