"""Face datasets: find the archives, split them, decode and cache the images.

Every model and notebook gets its faces from here, so every paper sees the same
pixels for the same (dataset, crop, size, split).

Datasets (``DATASETS``)
-----------------------
``lfw``        LFW deep-funneled, ``lfw-deepfunneled.tgz`` (13,233 JPEGs, 250x250).
``celeba``     CelebA aligned, ``img_align_celeba.zip`` (official, 178x218) or our
               half-resolution copy ``img_align_celeba_half.zip`` (89x109).
``celeba-hq``  CelebA-HQ, ``celeba-hq-256.zip`` or any ``celeba_hq*`` / ``CelebA-HQ*``
               archive or folder of JPG/PNG at any size.
``images:<path>``  Any folder / .zip / .tar(.gz) of images (generic source).

Archives are read member by member and never extracted; an already extracted
folder with the same name works too (member names are then the paths relative to
the folder's parent, so a folder and its archive give the same names and splits).

Where the data lives (``resolve_data_dir``): env ``FACEFILL_DATA_DIR`` beats the
``data_dir`` argument (``params.yaml`` ``data.dir``) beats ``data/raw``. Relative
``data_dir`` / ``processed_dir`` arguments are taken from the repo root (where DVC
runs stages); a relative env var from the cwd. Nothing is downloaded unless
``FACEFILL_ALLOW_DOWNLOAD=1`` (torchvision's CelebA / LFWPeople downloaders).

Conventions
-----------
* Images are uint8 arrays (N, H, W, 3) RGB in numpy; ``to_tensor`` gives float32
  NCHW in [-1, 1] (x / 127.5 - 1) and ``to_uint8`` inverts it (clamp, round).
* Member names are sorted as plain strings; indices always refer to that list.
* Split: a permutation of all listed names drawn with ``np.random.default_rng(seed)``;
  the first ``round(n * test_fraction)`` are test, the rest train (80/20 as in
  paper 000). For CelebA the official ``list_eval_partition.txt`` is used when it
  sits in the data dir (0 train, 1 val -> train, 2 test), still in seeded order.
  Our half-res CelebA copy holds only official-*train* ids, so its split is always
  our own seeded one (a partition file that leaves a split empty is ignored, with a
  warning); reports must say so. ``load_faces(limit=k)`` returns the first k of the
  split's order, i.e. a seeded random sample.
* Splits are over *all* listed names, so they do not depend on crop, size or
  decodability. An image that cannot be used (corrupt, or unexpected mode/size)
  raises ``DataError`` only if it is in the requested subset.

Crops (``crop=``), then LANCZOS resize to ``size x size`` unless already that size
----------------------------------------------------------------------------------
``default``  lfw / celeba-hq / generic: centre square crop (= whole image for the
             square LFW 250 and CelebA-HQ images). celeba: the DCGAN convention,
             centre crop of 108x108 on the 178x218 image, box (35, 55, 143, 163);
             the box scales with the image (54x54 at (17, 27) on the 89x109 copy,
             offsets floored, so it sits half a source pixel off the official box).
``whole``    resize the whole image to size x size (SRGAN; aspect not preserved).
Grayscale (mode L) is converted to RGB and counted as "converted"; other modes and
sizes other than the dataset's native ones are "unexpected" and excluded.
For JPEGs much larger than needed we let libjpeg decode at 1/2, 1/4 or 1/8 scale
(``Image.draft``) only while the crop stays >= 2x the target size; this depends on
the image and variant alone, so it is deterministic and cache == direct decode.

Processed cache (``prepare``, the DVC ``prepare_data`` stage)
-----------------------------------------------------------
``<processed_dir>/<dataset>__<crop>__<size>.npy``: uint8 NHWC, the usable images in
list order; ``<processed_dir>/index.json``: per dataset the source path, its sha256
(for a folder: sha256 over sorted names and file contents), names, train/test
indices, seed, test_fraction, ``cached`` (name index of every npy row) and the
corrupt / unexpected / converted images with reasons. ``load_faces`` uses the
cache when it matches and otherwise decodes straight from the archive.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import sys
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facefill.errors import ConfigError, DataError, DataNotFoundError

if TYPE_CHECKING:  # torch is imported lazily: `python -m facefill.data prepare` does not need it
    import torch

log = logging.getLogger("facefill.data")  # not __name__: it is "__main__" under -m

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = "data/raw"
DEFAULT_PROCESSED_DIR = "data/processed"
INDEX_NAME = "index.json"
INDEX_VERSION = 1
ENV_DATA_DIR = "FACEFILL_DATA_DIR"
ENV_ALLOW_DOWNLOAD = "FACEFILL_ALLOW_DOWNLOAD"

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
ARCHIVE_EXTS = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
CROPS = ("default", "whole")
SPLITS = ("train", "test")

# DCGAN's CelebA crop: 108x108 centred on the official 178x218 aligned image.
CELEBA_CROP, CELEBA_W = 108, 178


#: the 80/20 train/test protocol of paper 000, used by every notebook (not a parameter, so the
#: processed cache and the notebooks can never disagree about the split)
TEST_FRACTION = 0.2


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
    name: str
    archives: tuple[str, ...]  # accepted file names in the data dir, preferred first
    folders: tuple[str, ...]  # accepted extracted folders in the data dir, preferred first
    native_sizes: tuple[tuple[int, int], ...] | None  # (w, h) accepted; None = any size
    default_crop: str  # "square" (centre square) or "celeba108" (DCGAN)
    fuzzy_prefix: str | None = None  # also accept entries whose lowercased alnum name starts with this
    partition_file: str | None = None  # official split file looked up in the data dir
    download: str | None = None  # torchvision.datasets class that can fetch it
    where: str = ""  # how a user gets it


DATASETS: dict[str, DatasetSpec] = {
    "lfw": DatasetSpec(
        name="lfw",
        archives=("lfw-deepfunneled.tgz", "lfw-deepfunneled.tar.gz", "lfw-py/lfw-deepfunneled.tgz"),
        folders=("lfw-deepfunneled", "lfw-py/lfw-deepfunneled"),
        native_sizes=((250, 250),),
        default_crop="square",
        download="LFWPeople",
        where="http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
    ),
    "celeba": DatasetSpec(
        name="celeba",
        archives=("img_align_celeba.zip", "celeba/img_align_celeba.zip", "img_align_celeba_half.zip"),
        folders=("img_align_celeba", "celeba/img_align_celeba", "img_align_celeba_half"),
        native_sizes=((178, 218), (89, 109)),
        default_crop="celeba108",
        partition_file="list_eval_partition.txt",
        download="CelebA",
        where="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Align&Cropped Images)",
    ),
    "celeba-hq": DatasetSpec(
        name="celeba-hq",
        archives=("celeba-hq-256.zip",),
        folders=("celeba-hq-256",),
        native_sizes=None,
        default_crop="square",
        fuzzy_prefix="celebahq",
        where="https://github.com/tkarras/progressive_growing_of_gans (CelebA-HQ; any JPG/PNG size)",
    ),
}
GENERIC = DatasetSpec(name="images", archives=(), folders=(), native_sizes=None, default_crop="square")


# ----------------------------------------------------------------------------- locating


def _spec(dataset: str) -> DatasetSpec:
    if dataset.startswith("images:"):
        return GENERIC
    if dataset not in DATASETS:
        raise ConfigError(
            f"unknown dataset {dataset!r}: use one of {sorted(DATASETS)} "
            "or 'images:/path/to/folder_or_archive' for any folder/.zip/.tar(.gz) of images"
        )
    return DATASETS[dataset]


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    """Env FACEFILL_DATA_DIR > ``data_dir`` (relative to the repo root) > repo's data/raw."""
    env = os.environ.get(ENV_DATA_DIR)
    if env:
        return Path(env).expanduser().resolve()  # relative to the cwd, like any shell path
    path = Path(data_dir if data_dir is not None else DEFAULT_DATA_DIR).expanduser()
    return (path if path.is_absolute() else REPO_ROOT / path).resolve()


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_EXTS)


def _locate(dataset: str, data_dir=None) -> Path | None:
    """The source for ``dataset`` if present (no download, no error)."""
    spec = _spec(dataset)
    if spec is GENERIC:
        path = Path(dataset[len("images:"):]).expanduser()
        if not path.is_absolute() and not path.exists():
            path = resolve_data_dir(data_dir) / path
        return path.resolve() if (path.is_dir() or _is_archive(path)) else None
    root = resolve_data_dir(data_dir)
    # official archive names first, then extracted folders, then look-alikes (celeba_hq.zip, CelebA-HQ/)
    for name in spec.archives:
        if _is_archive(root / name):
            return root / name
    for name in spec.folders:
        if (root / name).is_dir():
            return root / name
    if spec.fuzzy_prefix and root.is_dir():
        for entry in sorted(root.iterdir()):
            alnum = re.sub(r"[^a-z0-9]", "", entry.name.lower())
            if alnum.startswith(spec.fuzzy_prefix) and (entry.is_dir() or _is_archive(entry)):
                return entry
    return None


def _not_found_message(dataset: str, data_dir=None) -> str:
    spec = _spec(dataset)
    if spec is GENERIC:
        return (
            f"{dataset!r}: no such image folder or .zip/.tar(.gz) archive; "
            "give an existing path after 'images:' (relative paths are tried from the cwd, then the data dir)"
        )
    root = resolve_data_dir(data_dir)
    accepted = ", ".join(spec.archives + tuple(f"{f}/" for f in spec.folders))
    msg = (
        f"dataset {dataset!r} not found in data dir {root} (expected one of: {accepted}"
        + (", or any celeba_hq* / CelebA-HQ* archive or folder" if spec.fuzzy_prefix else "")
        + f"). Put {spec.archives[0]} into {root}, or set {ENV_DATA_DIR}=/dir/that/has/it "
        f"(or data.dir in params.yaml). Get it from {spec.where}."
    )
    if spec.download:
        msg += f" With internet access, {ENV_ALLOW_DOWNLOAD}=1 downloads it via torchvision.datasets.{spec.download}."
    return msg


def _download(spec: DatasetSpec, root: Path) -> None:
    import torchvision.datasets as tvd  # only here: downloading is opt-in

    root.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s into %s via torchvision.datasets.%s", spec.name, root, spec.download)
    if spec.download == "CelebA":
        tvd.CelebA(str(root), split="all", target_type=[], download=True)  # -> root/celeba/img_align_celeba.zip
    elif spec.download == "LFWPeople":
        tvd.LFWPeople(str(root), image_set="deepfunneled", download=True)  # -> root/lfw-py/lfw-deepfunneled.tgz


def find_archive(dataset: str, data_dir=None) -> Path:
    """Path of the archive or extracted folder holding ``dataset``.

    Downloads (torchvision) only if nothing is found and FACEFILL_ALLOW_DOWNLOAD=1;
    otherwise raises DataNotFoundError saying which file to put where.
    """
    path = _locate(dataset, data_dir)
    if path is not None:
        return path
    spec = _spec(dataset)
    if spec.download and os.environ.get(ENV_ALLOW_DOWNLOAD) == "1":
        try:
            _download(spec, resolve_data_dir(data_dir))
        except Exception as e:  # network, Google Drive quota, ...: the manual route still works
            raise DataNotFoundError(f"{_not_found_message(dataset, data_dir)} Download failed: {e}") from e
        path = _locate(dataset, data_dir)
        if path is not None:
            return path
    raise DataNotFoundError(_not_found_message(dataset, data_dir))


# ----------------------------------------------------------------------------- reading sources


def _is_image_name(name: str) -> bool:
    parts = name.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):  # macOS resource forks, hidden files
        return False
    return name.lower().endswith(IMAGE_EXTS)


def _tar_name(member: tarfile.TarInfo) -> str:
    return member.name.removeprefix("./")


@lru_cache(maxsize=16)
def _archive_names(path: str, _size: int, _mtime_ns: int) -> tuple[str, ...]:
    # keyed on size/mtime so a replaced archive is re-listed; listing LFW's tgz takes ~2.5 s
    if path.lower().endswith(".zip"):
        with zipfile.ZipFile(path) as zf:
            names = [i.filename for i in zf.infolist() if not i.is_dir()]
    else:
        with tarfile.open(path, "r|*") as tf:  # stream mode: no seeking in the gzip
            names = [_tar_name(m) for m in tf if m.isfile()]
    return tuple(sorted(n for n in names if _is_image_name(n)))


def _source_names(source: Path) -> list[str]:
    if source.is_dir():
        names = [p.relative_to(source.parent).as_posix() for p in source.rglob("*") if p.is_file()]
        return sorted(n for n in names if _is_image_name(n))
    st = source.stat()
    return list(_archive_names(str(source), st.st_size, st.st_mtime_ns))


def _iter_members(source: Path, wanted: Iterable[str]) -> Iterator[tuple[str, bytes]]:
    """Yield (name, bytes) for the wanted members, in whatever order is cheapest."""
    wanted = set(wanted)
    if not wanted:
        return
    if source.is_dir():
        for name in sorted(wanted):
            yield name, (source.parent / name).read_bytes()
    elif source.name.lower().endswith(".zip"):
        with zipfile.ZipFile(source) as zf:
            for name in sorted(wanted):  # zip has random access
                yield name, zf.read(name)
    else:
        # gzip has no random access: stream the tar once, keep only wanted members, stop when all seen
        with tarfile.open(source, "r|*") as tf:
            for member in tf:
                name = _tar_name(member)
                if member.isfile() and name in wanted:
                    yield name, tf.extractfile(member).read()
                    wanted.discard(name)
                    if not wanted:
                        return


def _sha256(source: Path) -> str:
    h = hashlib.sha256()
    if source.is_dir():  # a folder has no single file: hash names and contents in list order
        for name in _source_names(source):
            h.update(name.encode() + b"\0" + hashlib.sha256((source.parent / name).read_bytes()).digest())
        return h.hexdigest()
    with open(source, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def list_images(dataset: str, data_dir=None) -> list[str]:
    """Sorted member names (paths inside the archive / relative to the folder's parent)."""
    source = find_archive(dataset, data_dir)
    names = _source_names(source)
    if not names:
        raise DataError(
            f"{source} holds no images ({', '.join(IMAGE_EXTS)}); replace it with a complete copy of {dataset!r}"
        )
    return names


# ----------------------------------------------------------------------------- splits


def _partition_path(dataset: str, data_dir=None) -> Path | None:
    spec = _spec(dataset)
    if not spec.partition_file:
        return None
    root = resolve_data_dir(data_dir)
    for path in (root / spec.partition_file, root / "celeba" / spec.partition_file):  # ours, torchvision's
        if path.is_file():
            return path
    return None


def _check_fraction(test_fraction: float) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction={test_fraction} must be strictly between 0 and 1 (e.g. 0.2)")


def split_indices(dataset: str, names: list[str], seed: int = 0, test_fraction: float = TEST_FRACTION,
                  data_dir=None) -> dict[str, np.ndarray]:
    """{"train": idx, "test": idx} into ``names``, disjoint, in seeded random order.

    Seeded 80/20 permutation (paper 000's split). For celeba, the official
    list_eval_partition.txt in the data dir decides membership (0, 1 -> train,
    2 -> test) when present. Our half-res CelebA copy only has ids from the
    official train partition, so with it the split is always our seeded one.
    """
    _check_fraction(test_fraction)
    n = len(names)
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)
    part_path = _partition_path(dataset, data_dir)
    if part_path is not None:
        part = {}
        for line in part_path.read_text().split("\n"):
            if line.strip():
                fname, value = line.split()
                part[fname.rsplit(".", 1)[0]] = int(value)
        stems = [n_.rsplit("/", 1)[-1].rsplit(".", 1)[0] for n_ in names]  # match by id: .jpg or .png
        missing = [s for s in stems if s not in part]
        if missing:
            raise DataError(
                f"{part_path} has no entry for {len(missing)} of {n} images (e.g. {missing[:3]}); "
                "it belongs to another CelebA copy: replace it with the official file or remove it for a seeded split"
            )
        is_test = np.array([part[s] == 2 for s in stems], dtype=bool)
        if 0 < is_test.sum() < n:
            log.info("%s: official partition from %s", dataset, part_path)
            return {"train": perm[~is_test[perm]], "test": perm[is_test[perm]]}
        log.warning("%s: %s puts every image in one split (a train-only subset?); using a seeded %.0f/%.0f split",
                    dataset, part_path, 100 * (1 - test_fraction), 100 * test_fraction)
    n_test = min(max(round(n * test_fraction), 1), n - 1) if n > 1 else 0
    return {"train": perm[n_test:], "test": perm[:n_test]}


# ----------------------------------------------------------------------------- decoding


class _BadImage(Exception):
    def __init__(self, kind: str, reason: str):  # kind: "corrupt" or "unexpected"
        super().__init__(reason)
        self.kind, self.reason = kind, reason


def _crop_box(kind: str, w: int, h: int) -> tuple[int, int, int, int]:
    if kind == "whole":
        return 0, 0, w, h
    if kind == "celeba108":
        side = min(round(CELEBA_CROP * w / CELEBA_W), w, h)  # 108 on 178 wide, 54 on the 89-wide copy
    else:  # "square"
        side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2  # floor: (35, 55) on 178x218, as DCGAN
    return left, top, left + side, top + side


def _crop_kind(spec: DatasetSpec, crop: str) -> str:
    if crop not in CROPS:
        raise ConfigError(f"unknown crop {crop!r}: use one of {CROPS}")
    return spec.default_crop if crop == "default" else "whole"


def _draft_scale(kind: str, size: int, w: int, h: int) -> int:
    # largest JPEG DCT scale that keeps the crop at least twice the target, so LANCZOS still does the real work
    l, t, r, b = _crop_box(kind, w, h)
    for scale in (8, 4, 2):
        if min(r - l, b - t) >= 2 * size * scale:
            return scale
    return 1


def _decode_variants(data: bytes, spec: DatasetSpec, variants: list[tuple[str, int]]) -> tuple[list[np.ndarray], bool]:
    """Decode one image for several (crop kind, size); returns arrays and whether it was converted to RGB."""
    try:
        header = Image.open(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad bytes; all mean "corrupt"
        raise _BadImage("corrupt", f"cannot open: {e}") from None
    if header.mode not in ("RGB", "L"):
        raise _BadImage("unexpected", f"mode {header.mode} cannot be converted (expected RGB or L)")
    w, h = header.size
    if spec.native_sizes and (w, h) not in spec.native_sizes:
        expected = " or ".join(f"{a}x{b}" for a, b in spec.native_sizes)
        raise _BadImage("unexpected", f"size {w}x{h}, expected {expected}")
    out: list[np.ndarray | None] = [None] * len(variants)
    scales = [_draft_scale(kind, size, w, h) if header.format == "JPEG" else 1 for kind, size in variants]
    for k, scale in enumerate(sorted(set(scales))):  # usually one scale: each image is decoded once
        im = header if k == 0 else Image.open(io.BytesIO(data))  # draft() only works before decoding
        try:
            if scale > 1:
                im.draft(im.mode, (w // scale, h // scale))
            im = im.convert("RGB")  # also forces the decode: truncated data fails here
        except Exception as e:  # noqa: BLE001 -- truncated / broken data, whatever PIL calls it
            raise _BadImage("corrupt", f"cannot decode: {e}") from None
        for i, (kind, size) in enumerate(variants):
            if scales[i] == scale:
                box = _crop_box(kind, *im.size)
                crop = im.crop(box)
                if crop.size != (size, size):
                    crop = crop.resize((size, size), Image.LANCZOS)
                out[i] = np.asarray(crop, dtype=np.uint8)
    return out, header.mode != "RGB"


def _summarize(bad: dict[str, tuple[str, str]], limit: int = 10) -> str:
    lines = [f"  {name}: {kind}, {reason}" for name, (kind, reason) in list(bad.items())[:limit]]
    if len(bad) > limit:
        lines.append(f"  ... and {len(bad) - limit} more")
    return "\n".join(lines)


def _check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size <= 0:
        raise ConfigError(f"size={size!r} must be a positive int (e.g. 64, 128, 250)")
    return int(size)


# ----------------------------------------------------------------------------- cache


def _resolve_processed(processed_dir) -> Path:
    path = Path(processed_dir if processed_dir is not None else DEFAULT_PROCESSED_DIR).expanduser()
    return path if path.is_absolute() else REPO_ROOT / path


def _file_key(dataset: str) -> str:
    if dataset.startswith("images:"):  # a path is no file name: readable slug + hash of the full string
        slug = re.sub(r"[^A-Za-z0-9]+", "-", dataset[len("images:"):]).strip("-")[-40:]
        return f"images-{slug}-{hashlib.sha256(dataset.encode()).hexdigest()[:8]}"
    return dataset


def _npy_name(dataset: str, crop: str, size: int) -> str:
    return f"{_file_key(dataset)}__{crop}__{size}.npy"


def _read_index(processed: Path) -> dict:
    try:
        index = json.loads((processed / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return {"version": INDEX_VERSION, "datasets": {}}
    if index.get("version") != INDEX_VERSION:
        return {"version": INDEX_VERSION, "datasets": {}}
    return index


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _from_cache(dataset, crop, size, split, limit, data_dir, processed_dir, seed, test_fraction):
    """Images from the processed cache, or None when it does not (fully) cover the request."""
    processed = _resolve_processed(processed_dir)
    entry = _read_index(processed)["datasets"].get(dataset)
    variant = (entry or {}).get("variants", {}).get(f"{crop}/{size}")
    if variant is None or entry["seed"] != seed or entry["test_fraction"] != float(test_fraction):
        return None
    source = _locate(dataset, data_dir)
    if source is not None and (str(source) != entry["source"] or _source_bytes(source) != entry["source_bytes"]):
        log.info("%s: processed cache was built from %s, not %s; decoding directly", dataset, entry["source"], source)
        return None
    npy = processed / variant["file"]
    if not npy.is_file():
        return None
    wanted = entry[split][:limit]
    bad = {**entry["corrupt"]["images"], **entry["unexpected"]["images"]}
    bad_here = {entry["names"][i]: bad[entry["names"][i]] for i in wanted if entry["names"][i] in bad}
    if bad_here:
        raise DataError(
            f"{len(bad_here)} {dataset} {split} image(s) are unusable (found by prepare):\n"
            + "\n".join(f"  {k}: {v}" for k, v in bad_here.items())
            + f"\nReplace them in {entry['source']} or load a smaller/different subset."
        )
    row_of = {name_idx: row for row, name_idx in enumerate(entry["cached"])}
    if any(i not in row_of for i in wanted):
        return None  # e.g. cache made with prepare --limit
    arr = np.load(npy, mmap_mode="r")
    if arr.shape[0] != len(entry["cached"]) or arr.shape[1:] != (size, size, 3):
        log.warning("%s does not match %s; decoding directly (rerun prepare)", npy, INDEX_NAME)
        return None
    images = np.ascontiguousarray(arr[np.asarray([row_of[i] for i in wanted], dtype=np.int64)])
    log.info("%s/%s/%d %s: %d images from cache %s", dataset, crop, size, split, len(images), npy)
    return images


def _source_bytes(source: Path) -> int:
    return -1 if source.is_dir() else source.stat().st_size  # folders: trust the path


# ----------------------------------------------------------------------------- public loading


def load_faces(dataset: str, size: int, split: str = "train", limit: int | None = None, *, crop: str = "default",
               data_dir=None, processed_dir=None, seed: int = 0, test_fraction: float = TEST_FRACTION) -> np.ndarray:
    """uint8 (N, size, size, 3): the first ``limit`` images of ``split`` in split order.

    Reads ``processed_dir`` (default data/processed) when ``prepare`` cached this
    (dataset, crop, size, seed, test_fraction); else decodes only those images
    from the archive. Any unusable image among them raises DataError.
    """
    spec = _spec(dataset)
    size = _check_size(size)
    kind = _crop_kind(spec, crop)
    _check_fraction(test_fraction)
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: use one of {SPLITS}")
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise ConfigError(f"limit={limit!r} must be None (all) or >= 0")

    cached = _from_cache(dataset, crop, size, split, limit, data_dir, processed_dir, seed, test_fraction)
    if cached is not None:
        return cached

    source = find_archive(dataset, data_dir)
    names = _source_names(source)
    wanted = split_indices(dataset, names, seed, test_fraction, data_dir)[split][:limit]
    pos = {names[i]: p for p, i in enumerate(wanted)}
    images = np.zeros((len(wanted), size, size, 3), dtype=np.uint8)
    bad: dict[str, tuple[str, str]] = {}
    for name, data in _tqdm(_iter_members(source, pos), total=len(pos), desc=f"{dataset} {split}", leave=False,
                            disable=len(pos) < 1000):
        try:
            (images[pos[name]],), _ = _decode_variants(data, spec, [(kind, size)])
        except _BadImage as e:
            bad[name] = (e.kind, e.reason)
    if bad:
        raise DataError(f"{len(bad)} {dataset} {split} image(s) in {source} are unusable:\n{_summarize(bad)}\n"
                        "Replace them with good copies, or load a different subset; "
                        "`python -m facefill.data prepare` lists every bad image.")
    log.info("%s/%s/%d %s: decoded %d images directly from %s (no matching cache in %s)", dataset, crop, size,
             split, len(images), source, _resolve_processed(processed_dir))
    return images


def _tqdm(it, **kw):
    from tqdm import tqdm

    return tqdm(it, **kw)


def to_tensor(images_uint8: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, 3) or (H, W, 3) -> float32 (N, 3, H, W) / (3, H, W) in [-1, 1]."""
    import torch

    a = np.asarray(images_uint8)
    if a.dtype != np.uint8 or a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise DataError(f"to_tensor expects uint8 (N, H, W, 3) images, got {a.dtype} {a.shape}; "
                        "pass what load_faces returns")
    t = torch.from_numpy(np.ascontiguousarray(a)).movedim(-1, -3)
    return t.float().div_(127.5).sub_(1.0).contiguous()


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Inverse of to_tensor: [-1, 1] (N, 3, H, W) / (3, H, W) -> uint8 NHWC / HWC (clamped, rounded)."""
    import torch

    t = torch.as_tensor(images).detach().to("cpu", torch.float32)
    if t.ndim not in (3, 4) or t.shape[-3] != 3:
        raise DataError(f"to_uint8 expects (N, 3, H, W) or (3, H, W), got {tuple(t.shape)}")
    t = ((t + 1.0) * 127.5).round_().clamp_(0, 255)
    return t.to(torch.uint8).movedim(-3, -1).numpy().copy()


# ----------------------------------------------------------------------------- prepare (DVC stage)


def _parse_variant(variant: str) -> tuple[str, str, int]:
    parts = variant.rsplit("/", 2)  # rsplit: generic "images:/a/b/default/64" has slashes in the dataset
    if len(parts) != 3 or not parts[2].isdigit():
        raise ConfigError(f"variant {variant!r} must look like 'dataset/crop/size', e.g. 'celeba/default/64'")
    dataset, crop, size = parts[0], parts[1], int(parts[2])
    _crop_kind(_spec(dataset), crop)
    return dataset, crop, _check_size(size)


def prepare(variants: list[str], data_dir=None, processed_dir=DEFAULT_PROCESSED_DIR, seed: int = 0,
            test_fraction: float = TEST_FRACTION, limit: int | None = None, strict: bool = False) -> dict:
    """Decode each image once and write one .npy per variant plus index.json; returns the index.

    ``limit`` keeps ``limit`` images per dataset, the first ``round(limit *
    test_fraction)`` of test and the rest from the start of train (smoke runs); bad
    images are listed and excluded (``strict``: DataError instead). Files are
    written under temporary names and renamed at the end.
    """
    _check_fraction(test_fraction)
    parsed = [_parse_variant(v) for v in variants]
    if not parsed:
        raise ConfigError("prepare needs at least one variant like 'lfw/default/250'")
    processed = _resolve_processed(processed_dir)
    processed.mkdir(parents=True, exist_ok=True)
    by_dataset: dict[str, list[tuple[str, int]]] = {}
    for dataset, crop, size in parsed:
        if (crop, size) not in by_dataset.setdefault(dataset, []):
            by_dataset[dataset].append((crop, size))

    new_entries, finished_tmp = {}, []  # finished_tmp: (tmp, final) npy paths, renamed once all succeeded
    try:
        for dataset, crops in by_dataset.items():
            entry, tmps = _prepare_dataset(dataset, crops, data_dir, processed, seed, test_fraction, limit, strict)
            new_entries[dataset] = entry
            finished_tmp += tmps
    except BaseException:
        for tmp, _ in finished_tmp:
            tmp.unlink(missing_ok=True)
        raise

    # Drop the old entries first, so index.json never points at a .npy that is being replaced.
    index = _read_index(processed)
    for dataset in new_entries:
        index["datasets"].pop(dataset, None)
    _write_json_atomic(processed / INDEX_NAME, index)
    for tmp, final in finished_tmp:
        os.replace(tmp, final)
    index["datasets"].update(new_entries)
    _write_json_atomic(processed / INDEX_NAME, index)
    log.info("wrote %s", processed / INDEX_NAME)
    return index


def _prepare_dataset(dataset, crops, data_dir, processed, seed, test_fraction, limit, strict):
    if limit is not None and limit < 0:
        raise ConfigError(f"limit={limit} must be None (all images) or >= 0")
    spec = _spec(dataset)
    source = find_archive(dataset, data_dir)
    names = _source_names(source)
    if not names:
        list_images(dataset, data_dir)  # raises the "no images" DataError
    split = split_indices(dataset, names, seed, test_fraction, data_dir)
    if limit is None:
        selected = list(range(len(names)))
    else:  # smoke runs: the first images of each split, `limit` in all, shared like the split itself
        n_test = min(round(limit * test_fraction), len(split["test"]))
        n_train = min(limit - n_test, len(split["train"]))
        selected = sorted(split["train"][:n_train].tolist() + split["test"][:n_test].tolist())
    row_of = {names[i]: row for row, i in enumerate(selected)}
    variants = [(_crop_kind(spec, crop), size) for crop, size in crops]
    files = [(processed / (_npy_name(dataset, crop, size) + ".tmp"), processed / _npy_name(dataset, crop, size))
             for crop, size in crops]
    arrays = [np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(selected), size, size, 3))
              for (tmp, _), (_, size) in zip(files, crops)]  # on disk: LFW at 250 px is ~2.5 GB
    bad: dict[str, tuple[str, str]] = {}
    converted: dict[str, str] = {}
    try:
        log.info("%s: decoding %d images from %s into %s", dataset, len(selected), source,
                 ", ".join(f"{c}/{s}" for c, s in crops))
        for name, data in _tqdm(_iter_members(source, row_of), total=len(row_of), desc=dataset, unit="img"):
            try:
                outs, was_converted = _decode_variants(data, spec, variants)
            except _BadImage as e:
                bad[name] = (e.kind, e.reason)
                continue
            if was_converted:
                converted[name] = "grayscale converted to RGB"
            for arr, out in zip(arrays, outs):
                arr[row_of[name]] = out
        bad = dict(sorted(bad.items()))
        if bad:
            log.warning("%s: %d unusable image(s) excluded:\n%s", dataset, len(bad), _summarize(bad))
            if strict:
                raise DataError(f"{len(bad)} {dataset} image(s) in {source} are unusable (strict mode):\n"
                                f"{_summarize(bad, limit=len(bad))}\nReplace them, or run without --strict "
                                "to exclude them.")
        if converted:
            log.warning("%s: %d grayscale image(s) converted to RGB", dataset, len(converted))
        usable = [i for i in selected if names[i] not in bad]
        for k, arr in enumerate(arrays):
            arr.flush()
            if len(usable) != len(selected):  # compact: rows of excluded images are dropped
                tmp = files[k][0]
                keep = np.asarray([row_of[names[i]] for i in usable], dtype=np.int64)
                compact_tmp = tmp.with_name(tmp.name + ".compact")
                out = np.lib.format.open_memmap(compact_tmp, mode="w+", dtype=np.uint8,
                                                shape=(len(usable),) + arr.shape[1:])
                for start in range(0, len(keep), 1024):  # chunked: never the whole array in RAM
                    out[start:start + 1024] = arr[keep[start:start + 1024]]
                out.flush()
                del out
                os.replace(compact_tmp, tmp)
        del arrays
    except BaseException:
        for tmp, _ in files:
            tmp.unlink(missing_ok=True)
        raise

    def listing(items: dict) -> dict:
        return {"count": len(items), "images": items}

    entry = {
        "source": str(source),
        "source_bytes": _source_bytes(source),
        "source_sha256": _sha256(source),
        "partition": str(_partition_path(dataset, data_dir) or "seeded"),
        "seed": seed,
        "test_fraction": float(test_fraction),
        "limit": limit,
        "n_images": len(names),
        "names": names,
        "train": split["train"].tolist(),
        "test": split["test"].tolist(),
        "cached": usable,
        "corrupt": listing({n: r for n, (k, r) in bad.items() if k == "corrupt"}),
        "unexpected": listing({n: r for n, (k, r) in bad.items() if k == "unexpected"}),
        "converted": listing(converted),
        "variants": {f"{crop}/{size}": {"file": final.name, "crop": crop, "size": size,
                                        "shape": [len(usable), size, size, 3]}
                     for (crop, size), (_, final) in zip(crops, files)},
    }
    return entry, files


# ----------------------------------------------------------------------------- CLI


def info(data_dir=None, processed_dir=DEFAULT_PROCESSED_DIR) -> str:
    """What the data dir and processed dir hold, as printable text."""
    root = resolve_data_dir(data_dir)
    env = os.environ.get(ENV_DATA_DIR)
    lines = [f"data dir: {root} ({f'from {ENV_DATA_DIR}' if env else 'from argument / default'})"]
    for name in DATASETS:
        source = _locate(name, data_dir)
        if source is None:
            lines.append(f"  {name:10s} MISSING: {_not_found_message(name, data_dir)}")
            continue
        n = len(_source_names(source))
        part = _partition_path(name, data_dir)
        lines.append(f"  {name:10s} {source} ({n} images" + (f", partition {part.name}" if part else "") + ")")
    processed = _resolve_processed(processed_dir)
    index = _read_index(processed)
    lines.append(f"processed dir: {processed}")
    for entry in index["datasets"].values():
        for v in entry["variants"].values():
            lines.append(f"  {v['file']}: {v['shape']} seed={entry['seed']} test_fraction={entry['test_fraction']}"
                         f" corrupt={entry['corrupt']['count']} unexpected={entry['unexpected']['count']}")
    if not index["datasets"]:
        lines.append("  (empty: run `python -m facefill.data prepare --variants ...`)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="decode archives into processed .npy caches (DVC prepare_data stage)")
    p.add_argument("--variants", nargs="+", required=True, help="dataset/crop/size, e.g. lfw/default/250")
    p.add_argument("--data-dir", default=None, help=f"raw data dir ({ENV_DATA_DIR} overrides it)")
    p.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    p.add_argument("--limit", type=int, default=None, help="at most N images per dataset, split 80/20 (smoke runs)")
    p.add_argument("--strict", action="store_true", help="fail on corrupt/unexpected images instead of skipping")
    i = sub.add_parser("info", help="show what the data dir and processed dir hold")
    i.add_argument("--data-dir", default=None)
    i.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "prepare":
            index = prepare(args.variants, args.data_dir, args.processed_dir, args.seed, args.test_fraction,
                            args.limit, args.strict)
            for dataset, entry in index["datasets"].items():
                print(f"{dataset}: {len(entry['cached'])} images cached, corrupt={entry['corrupt']['count']} "
                      f"unexpected={entry['unexpected']['count']} converted={entry['converted']['count']}")
        else:
            print(info(args.data_dir, args.processed_dir))
    except (ConfigError, DataError, DataNotFoundError) as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()
