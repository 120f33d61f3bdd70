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
runs stages); a relative env var from the cwd. On the command line an explicit
``--data-dir`` (relative to the cwd) beats the env var, with a note when both are set. Nothing is downloaded unless
``FACEFILL_ALLOW_DOWNLOAD=1`` (torchvision's CelebA / LFWPeople downloaders).
A ``FACEFILL_DATA_DIR`` that does not exist, or a data dir that is an archive file
rather than the folder holding it, raises ``DataNotFoundError`` saying what to set.

Conventions
-----------
* Images are uint8 arrays (N, H, W, 3) RGB in numpy; ``to_tensor`` gives float32
  NCHW in [-1, 1] (x / 127.5 - 1) and ``to_uint8`` inverts it (clamp, round).
* Member names are sorted as plain strings; indices always refer to that list.
* Splits ``train`` / ``val`` / ``test`` (``split_indices``): a permutation ``perm`` of
  all listed names drawn with ``np.random.default_rng(seed)``; the first
  ``n_test = round(n * test_fraction)`` are test (80/20 as in paper 000: exactly the
  test images of the former 2-way split), the rest is the training part. Its *last*
  ``round(n_trainpart * val_fraction)`` (``VAL_FRACTION`` = 10 %, at least one image
  when the training part has two or more) are val, the others train. So val is a
  seeded random 10 % of the former train split and ``train[:k]`` is still the first
  k images of the former train split. For CelebA the official
  ``list_eval_partition.txt`` is used when it sits in the data dir (0 train, 1 val,
  2 test; seeded order inside each), ``val_fraction`` then only applies if the file
  has no val entries. Our half-res CelebA copy holds only official-*train* ids, so
  its split is always our own seeded one (a partition file that leaves train or test
  empty is ignored, with a warning); reports must say so.
  ``load_faces(limit=k)`` returns the first k of the split's order, i.e. a seeded
  random sample.
* Identity-disjoint splits (``by_identity=True``, ``split_by_identity``): for
  datasets with identities (LFW: the person is the folder name; ``images:`` sources:
  the parent folder) whole identities are assigned, in seeded order, to test until
  it holds >= ``round(n * test_fraction)`` images, then to val (>= ``val_fraction``
  of the rest), the remaining ones to train; no person is on two sides. Image order
  inside each split is the seeded ``perm`` as above. Off by default (the ``paper``
  profile turns it on); it is a different split, recorded in the cache index.
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
Grayscale (L), LA, RGBA / RGBX (alpha dropped, as torchvision's loader does), palette
(P / PA, via RGBA) and CMYK / YCbCr images are converted to RGB and counted as
"converted"; other modes (16-bit, float, bilevel) and sizes other than the dataset's
native ones are "unexpected" and excluded. A crop smaller than the requested size is
upscaled (LANCZOS); ``prepare`` warns (``UpscaleWarning``) with the count and examples
per dataset/size and records them in the index (``variants[...]["upscaled"]``). The DCGAN crop
of our half-resolution CelebA copy (54x54) at 64 px is the project's own choice: logged, not warned.
For JPEGs much larger than needed we let libjpeg decode at 1/2, 1/4 or 1/8 scale
(``Image.draft``) only while the crop stays >= 2x the target size; this depends on
the image and variant alone, so it is deterministic and cache == direct decode.

Processed cache (``prepare``, the DVC ``prepare_data`` stage)
-----------------------------------------------------------
``<processed_dir>/<dataset>__<crop>__<size>.npy``: uint8 NHWC, the usable images in
list order; ``<processed_dir>/index.json`` (``INDEX_VERSION`` 2): per dataset the
source path, its sha256 (for a folder: sha256 over sorted names and file contents),
names, train/val/test indices, seed, test_fraction, val_fraction, split_by
(``image`` or ``identity``), ``cached`` (name index of every npy row) and the
corrupt / unexpected / converted images with reasons. ``load_faces`` uses the
cache when it matches and otherwise decodes straight from the archive. An index of
an older version (version 1: train/test only) is ignored with a warning saying how
to rebuild it (``dvc repro prepare_data`` or ``python -m facefill.pipeline prepare``).
``prepare`` of some variants keeps the other variants of the same dataset when
their split and source are unchanged.

Errors (all ``FacefillError``; nothing the user has is deleted)
---------------------------------------------------------------
* truncated / corrupt .zip or .tar(.gz) -> ``DataError`` naming the archive: re-download
  or replace it (a gzip-ped tar whose headers break off mid-archive is caught too:
  tarfile alone would silently list fewer images);
* truncated / unreadable processed ``.npy`` -> ``DataError`` naming the file and the
  command that rebuilds it. ``load_faces`` does *not* rebuild it by itself (a rebuild
  rewrites the dataset's cache entry and can take many minutes, which a notebook
  should not start behind the user's back); the broken file is left in place;
* ``prepare`` failing on one dataset keeps the datasets it already finished.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gzip
import hashlib
import io
import json
import logging
import lzma
import os
import re
import sys
import tarfile
import warnings
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from facefill.errors import ConfigError, DataError, DataNotFoundError, FacefillError, FacefillWarning, Interrupted, SplitSizeWarning

if TYPE_CHECKING:  # torch is imported lazily: `python -m facefill.data prepare` does not need it
    import torch

log = logging.getLogger("facefill.data")  # not __name__: it is "__main__" under -m

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA_DIR = "data/raw"
DEFAULT_PROCESSED_DIR = "data/processed"
INDEX_NAME = "index.json"
INDEX_VERSION = 2  # 2: train/val/test splits (1 had train/test only)
ENV_DATA_DIR = "FACEFILL_DATA_DIR"
ENV_ALLOW_DOWNLOAD = "FACEFILL_ALLOW_DOWNLOAD"

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
ARCHIVE_EXTS = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")
CROPS = ("default", "whole")
SPLITS = ("train", "val", "test")

# DCGAN's CelebA crop: 108x108 centred on the official 178x218 aligned image.
CELEBA_CROP, CELEBA_W = 108, 178


#: the 80/20 train/test protocol of paper 000, used by every notebook (not a parameter, so the
#: processed cache and the notebooks can never disagree about the split)
TEST_FRACTION = 0.2
#: share of the training part held out as the validation split (model selection, convergence checks);
#: carved out of the former train split only, so the test split is unaffected
VAL_FRACTION = 0.1

#: image modes converted to RGB (with how they are converted); any other mode is "unexpected"
CONVERTIBLE_MODES = {
    "L": "grayscale converted to RGB",
    "LA": "grayscale+alpha converted to RGB (alpha dropped)",
    "RGBA": "RGBA converted to RGB (alpha dropped)",
    "RGBX": "RGBX converted to RGB",
    "P": "palette converted to RGB",
    "PA": "palette+alpha converted to RGB (alpha dropped)",
    "CMYK": "CMYK converted to RGB",
    "YCbCr": "YCbCr converted to RGB",
}


class UpscaleWarning(FacefillWarning):
    """``prepare`` had to enlarge images whose crop is smaller than the requested size."""


def warn_user(message: str, category: type[Warning] = FacefillWarning, stacklevel: int = 3) -> None:
    """Say ``message`` loudly: one ``facefill: warning: ...`` line on stderr (a notebook cell, the
    pipeline's terminal) and a ``warnings.warn`` of ``category``, for code that filters or records warnings."""
    print(f"facefill: warning: {message}", file=sys.stderr, flush=True)
    warnings.warn(message, category, stacklevel=stacklevel)


def _warn_if_short(dataset: str, split: str, limit: int | None, got: int) -> None:
    """A split smaller than the ``limit`` asked for (``n_train`` / ``n_test`` of a notebook) is a warning, not a footnote."""
    if limit is not None and got < int(limit):
        warn_user(f"{dataset} {split} split holds only {got} image(s), fewer than the {limit} asked for (n_train / n_test / "
                  f"limit): the run uses {got}. Add images to the dataset, or ask for at most {got} (null: all of them) "
                  "so that the tables state what was meant.", SplitSizeWarning, stacklevel=4)


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
    identity: str | None = None  # "folder": the image's parent folder names the person (by_identity splits)


DATASETS: dict[str, DatasetSpec] = {
    "lfw": DatasetSpec(
        name="lfw",
        archives=("lfw-deepfunneled.tgz", "lfw-deepfunneled.tar.gz", "lfw-py/lfw-deepfunneled.tgz"),
        folders=("lfw-deepfunneled", "lfw-py/lfw-deepfunneled"),
        native_sizes=((250, 250),),
        default_crop="square",
        download="LFWPeople",
        where="http://vis-www.cs.umass.edu/lfw/lfw-deepfunneled.tgz",
        identity="folder",  # lfw-deepfunneled/<Person>/<Person>_NNNN.jpg
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
GENERIC = DatasetSpec(name="images", archives=(), folders=(), native_sizes=None, default_crop="square",
                      identity="folder")


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


def _data_root(data_dir=None) -> Path:
    """``resolve_data_dir``, refusing a data dir that cannot be right (DataNotFoundError says what to set).

    * ``FACEFILL_DATA_DIR`` naming nothing (unless ``FACEFILL_ALLOW_DOWNLOAD=1``, which creates it);
    * a data dir (env or argument) that is a file, typically the archive itself: use its parent.
    """
    root = resolve_data_dir(data_dir)
    env = os.environ.get(ENV_DATA_DIR)
    what = f"{ENV_DATA_DIR}={env}" if env else f"data dir {root} (data.dir in params.yaml / --data-dir)"
    if root.is_file():
        fix = f"{ENV_DATA_DIR}={root.parent}" if env else f"data.dir: {root.parent}"
        raise DataNotFoundError(f"{what} is a file, not a folder: set it to the folder that contains it, i.e. "
                                f"its parent ({fix})")
    if env and not root.exists() and os.environ.get(ENV_ALLOW_DOWNLOAD) != "1":
        shared = REPO_ROOT.parent / "shared" / "data"
        example = shared if shared.is_dir() else REPO_ROOT / DEFAULT_DATA_DIR
        raise DataNotFoundError(f"{what} does not exist: set it to the folder that holds the archives (e.g. "
                                f"{ENV_DATA_DIR}={example}, the folder with lfw-deepfunneled.tgz / celeba-hq-256.zip), "
                                "or unset it to use data.dir from params.yaml")
    return root


def _is_archive(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(ARCHIVE_EXTS)


def _locate(dataset: str, data_dir=None) -> Path | None:
    """The source for ``dataset`` if present (no download, no error)."""
    spec = _spec(dataset)
    if spec is GENERIC:
        path = Path(dataset[len("images:"):]).expanduser()
        if not path.is_absolute() and not path.exists():
            path = _data_root(data_dir) / path
        return path.resolve() if (path.is_dir() or _is_archive(path)) else None
    root = _data_root(data_dir)
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
        f"dataset {dataset!r} not found in data dir {root}{'' if root.exists() else ' (which does not exist)'}"
        f" (expected one of: {accepted}"
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
            _download(spec, _data_root(data_dir))
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


#: what zipfile / tarfile / the decompressors raise on a truncated or damaged archive
_ARCHIVE_ERRORS = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile, lzma.LZMAError)


def _corrupt_archive(path, err: BaseException, member: str | None = None) -> DataError:
    """The one-line DataError for a truncated / damaged archive: which file, what to do."""
    path = Path(path)
    where = next((spec.where.split(" (")[0] for spec in DATASETS.values()
                  if path.name in {Path(a).name for a in spec.archives}), "")
    reason = str(err) or type(err).__name__
    return DataError(
        f"archive {path} is truncated or corrupt ({reason}{f', at member {member}' if member else ''}): "
        f"re-download it{f' from {where}' if where else ''} or replace it with a complete copy; nothing was deleted"
    )


def _check_tar_tail(tf: tarfile.TarFile) -> None:
    # In stream mode tarfile ends the listing silently at the first broken header after the start, so a
    # damaged .tgz would just look smaller. A complete tar ends in zero blocks: anything else is damage.
    while chunk := tf.fileobj.read(1 << 16):
        if chunk.strip(b"\0"):
            raise tarfile.ReadError("broken member header; the rest of the archive was unreadable")


@lru_cache(maxsize=16)
def _archive_names(path: str, _size: int, _mtime_ns: int) -> tuple[str, ...]:
    # keyed on size/mtime so a replaced archive is re-listed; listing LFW's tgz takes ~2.5 s
    try:
        if path.lower().endswith(".zip"):
            with zipfile.ZipFile(path) as zf:
                names = [i.filename for i in zf.infolist() if not i.is_dir()]
        else:
            with tarfile.open(path, "r|*") as tf:  # stream mode: no seeking in the gzip
                names = [_tar_name(m) for m in tf if m.isfile()]
                _check_tar_tail(tf)
    except _ARCHIVE_ERRORS as e:
        raise _corrupt_archive(path, e) from None
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
        return
    name = None
    try:
        if source.name.lower().endswith(".zip"):
            with zipfile.ZipFile(source) as zf:
                for name in sorted(wanted):  # zip has random access
                    data = zf.read(name)  # the CRC check of the member happens here
                    yield name, data
        else:
            # gzip has no random access: stream the tar once, keep only wanted members, stop when all seen
            with tarfile.open(source, "r|*") as tf:
                for member in tf:
                    name = _tar_name(member)
                    if member.isfile() and name in wanted:
                        data = tf.extractfile(member).read()
                        yield name, data
                        wanted.discard(name)
                        if not wanted:
                            return
                name = None
                _check_tar_tail(tf)
            if wanted:  # listed before, gone now: the archive changed or broke off
                raise tarfile.ReadError(f"{len(wanted)} listed image(s) missing, e.g. {sorted(wanted)[0]}")
    except _ARCHIVE_ERRORS as e:
        raise _corrupt_archive(source, e, name) from None


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
    root = _data_root(data_dir)
    for path in (root / spec.partition_file, root / "celeba" / spec.partition_file):  # ours, torchvision's
        if path.is_file():
            return path
    return None


def _check_fraction(test_fraction: float, val_fraction: float = VAL_FRACTION) -> None:
    if not 0.0 < float(test_fraction) < 1.0:
        raise ConfigError(f"test_fraction={test_fraction} must be strictly between 0 and 1 (e.g. 0.2)")
    if not 0.0 <= float(val_fraction) < 1.0:
        raise ConfigError(f"val_fraction={val_fraction} must be >= 0 and < 1 (e.g. {VAL_FRACTION}; 0: no val split)")


def _n_part(n: int, fraction: float) -> int:
    """round(n * fraction), but at least 1 and at most n - 1 when n >= 2 (both sides non-empty); 0 for fraction 0."""
    if n < 2 or fraction <= 0:
        return 0
    return min(max(round(n * fraction), 1), n - 1)


def identities(dataset: str, names: list[str]) -> list[str]:
    """The person of every name, for identity-disjoint splits (LFW and ``images:``: the parent folder)."""
    spec = _spec(dataset)
    if spec.identity != "folder":
        with_ids = sorted(k for k, v in DATASETS.items() if v.identity)
        raise ConfigError(f"{dataset!r} has no identity labels here, so by_identity=True cannot be used with it; "
                          f"use it with {with_ids} or 'images:' folders holding one sub-folder per person")
    return [n.rsplit("/", 2)[-2] if n.count("/") >= 1 else "" for n in names]


def split_by_identity(names: list[str], persons: list[str], seed: int = 0, test_fraction: float = TEST_FRACTION,
                      val_fraction: float = VAL_FRACTION) -> dict[str, np.ndarray]:
    """{"train", "val", "test"} indices into ``names`` such that no person is in two splits.

    ``persons[i]`` is the identity of ``names[i]``. The persons, in a seeded order,
    fill test until it holds >= ``round(n * test_fraction)`` images, then val until it
    holds >= ``round(rest * val_fraction)``; the others are train (the sizes overshoot
    by at most one person's images). Inside each split, images come in the order of
    the same seeded permutation ``split_indices`` uses.
    """
    _check_fraction(test_fraction, val_fraction)
    n = len(names)
    if len(persons) != n:
        raise ConfigError(f"split_by_identity: {len(persons)} identities for {n} names")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(n).astype(np.int64)
    people = sorted(set(persons))
    needed = 3 if val_fraction > 0 else 2
    if len(people) < needed:
        raise DataError(f"an identity-disjoint split needs at least {needed} persons, found {len(people)} "
                        f"({people[:3]}): put each person's images in their own folder, or use by_identity=False")
    count = dict.fromkeys(people, 0)
    for p in persons:
        count[p] += 1
    order = [people[k] for k in rng.permutation(len(people))]
    side, sizes = {}, {"test": 0, "val": 0, "train": 0}
    target = {"test": _n_part(n, test_fraction)}
    k = 0
    for part in ("test", "val"):
        if part == "val":
            target["val"] = _n_part(n - sizes["test"], val_fraction)
        reserve = 1 if part == "test" and needed == 3 else 0  # leave >= 1 person for val (if any) and train
        while sizes[part] < target[part] and k < len(order) - 1 - reserve:
            side[order[k]] = part
            sizes[part] += count[order[k]]
            k += 1
    for p in order[k:]:
        side[p] = "train"
    where = np.array([side[p] for p in persons])
    return {part: perm[where[perm] == part] for part in SPLITS}


def split_indices(dataset: str, names: list[str], seed: int = 0, test_fraction: float = TEST_FRACTION,
                  data_dir=None, *, val_fraction: float = VAL_FRACTION, by_identity: bool = False
                  ) -> dict[str, np.ndarray]:
    """{"train": idx, "val": idx, "test": idx} into ``names``, disjoint, in seeded random order.

    Seeded permutation ``perm``: test = its first ``round(n * test_fraction)`` (paper
    000's 80/20, the same test images as the former train/test split), val = the last
    ``round(m * val_fraction)`` of the remaining m (a seeded 10 % of the former train
    split), train = the rest, which keeps the former train split's order (its first k
    images are unchanged). For celeba, the official list_eval_partition.txt in the data
    dir decides membership (0 train, 1 val, 2 test) when present; without val entries
    the val part is carved out of its train part as above. Our half-res CelebA copy
    only has ids from the official train partition, so with it the split is always our
    seeded one. ``by_identity=True``: ``split_by_identity`` (no person on two sides).
    """
    _check_fraction(test_fraction, val_fraction)
    if by_identity:
        return split_by_identity(names, identities(dataset, names), seed, test_fraction, val_fraction)
    n = len(names)
    perm = np.random.default_rng(seed).permutation(n).astype(np.int64)

    def carve_val(train_part: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n_train = len(train_part) - _n_part(len(train_part), val_fraction)
        return train_part[:n_train], train_part[n_train:]

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
        value = np.array([part[s] for s in stems], dtype=np.int64)[perm]  # in seeded order
        is_test = value == 2
        if 0 < is_test.sum() < n:
            log.info("%s: official partition from %s", dataset, part_path)
            if (value == 1).any() and (value == 0).any():
                return {"train": perm[value == 0], "val": perm[value == 1], "test": perm[is_test]}
            train, val = carve_val(perm[~is_test])
            return {"train": train, "val": val, "test": perm[is_test]}
        log.warning("%s: %s puts every image in one split (a train-only subset?); using a seeded %.0f/%.0f split",
                    dataset, part_path, 100 * (1 - test_fraction), 100 * test_fraction)
    n_test = _n_part(n, test_fraction)
    train, val = carve_val(perm[n_test:])
    return {"train": train, "val": val, "test": perm[:n_test]}


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


@dataclasses.dataclass
class _Decoded:
    images: list[np.ndarray]  # one per requested (crop kind, size)
    converted: str | None  # how a non-RGB image was converted (CONVERTIBLE_MODES), None for RGB
    upscaled: list[str | None]  # per variant: "crop WxH" when the crop was smaller than the size


def _to_rgb(im: Image.Image) -> Image.Image:
    if im.mode in ("P", "PA"):  # via RGBA: PIL wants palette transparency resolved first
        im = im.convert("RGBA")
    return im.convert("RGB")  # also forces the decode: truncated data fails here


def _decode_variants(data: bytes, spec: DatasetSpec, variants: list[tuple[str, int]]) -> _Decoded:
    """Decode one image for several (crop kind, size); raises _BadImage for corrupt / unexpected ones."""
    try:
        header = Image.open(io.BytesIO(data))
    except Exception as e:  # noqa: BLE001 -- PIL raises many types for bad bytes; all mean "corrupt"
        raise _BadImage("corrupt", f"cannot open: {e}") from None
    if header.mode != "RGB" and header.mode not in CONVERTIBLE_MODES:
        raise _BadImage("unexpected", f"mode {header.mode} cannot be converted to RGB "
                                      f"(expected RGB or one of {', '.join(CONVERTIBLE_MODES)})")
    w, h = header.size
    if spec.native_sizes and (w, h) not in spec.native_sizes:
        expected = " or ".join(f"{a}x{b}" for a, b in spec.native_sizes)
        raise _BadImage("unexpected", f"size {w}x{h}, expected {expected}")
    upscaled: list[str | None] = []
    for kind, size in variants:  # judged on the full-resolution crop (draft only ever shrinks >= 2x the size)
        l, t, r, b = _crop_box(kind, w, h)
        upscaled.append(f"crop {r - l}x{b - t}" if min(r - l, b - t) < size else None)
    out: list[np.ndarray | None] = [None] * len(variants)
    scales = [_draft_scale(kind, size, w, h) if header.format == "JPEG" else 1 for kind, size in variants]
    for k, scale in enumerate(sorted(set(scales))):  # usually one scale: each image is decoded once
        im = header if k == 0 else Image.open(io.BytesIO(data))  # draft() only works before decoding
        try:
            if scale > 1:
                im.draft(im.mode, (w // scale, h // scale))
            im = _to_rgb(im)
        except Exception as e:  # noqa: BLE001 -- truncated / broken data, whatever PIL calls it
            raise _BadImage("corrupt", f"cannot decode: {e}") from None
        for i, (kind, size) in enumerate(variants):
            if scales[i] == scale:
                box = _crop_box(kind, *im.size)
                crop = im.crop(box)
                if crop.size != (size, size):
                    crop = crop.resize((size, size), Image.LANCZOS)
                out[i] = np.asarray(crop, dtype=np.uint8)
    return _Decoded(out, None if header.mode == "RGB" else CONVERTIBLE_MODES[header.mode], upscaled)


#: our half-resolution CelebA copy (``img_align_celeba_half.zip``): its DCGAN crop is 54x54
HALF_RES_CELEBA = (89, 109)


def _half_res_celeba(spec: DatasetSpec, crop: str, upscaled: dict[str, str]) -> bool:
    """Every upscaled image is a DCGAN crop of the half-resolution CelebA copy: expected, documented, no warning."""
    if spec.name != "celeba" or _crop_kind(spec, crop) != "celeba108":
        return False
    l, t, r, b = _crop_box("celeba108", *HALF_RES_CELEBA)
    return set(upscaled.values()) == {f"crop {r - l}x{b - t}"}


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


_NO_INDEX = object()


def _raw_index(processed: Path):
    try:
        return json.loads((processed / INDEX_NAME).read_text())
    except (OSError, ValueError):
        return None


def _read_index(processed: Path, raw=_NO_INDEX) -> dict:
    index = _raw_index(processed) if raw is _NO_INDEX else raw
    if not isinstance(index, dict) or index.get("version") != INDEX_VERSION:
        return {"version": INDEX_VERSION, "datasets": {}}  # none, or an older layout: ignored, see _stale_note
    return index


def _prepare_cmd(variants: Iterable[str], processed: Path, seed: int = 0, test_fraction: float = TEST_FRACTION,
                 val_fraction: float = VAL_FRACTION, by_identity: bool = False) -> str:
    """The shell command that (re)builds ``variants`` in ``processed`` (for error messages)."""
    cmd = f"python -m facefill.data prepare --variants {' '.join(variants)} --processed-dir {processed}"
    if seed:
        cmd += f" --seed {seed}"
    if float(test_fraction) != TEST_FRACTION:
        cmd += f" --test-fraction {test_fraction}"
    if float(val_fraction) != VAL_FRACTION:
        cmd += f" --val-fraction {val_fraction}"
    return cmd + (" --by-identity" if by_identity else "")


_stale_warned: set[str] = set()


def _stale_note(processed: Path, raw=_NO_INDEX) -> str | None:
    """How to rebuild ``processed`` when its index.json was written by an older facefill, else None."""
    old = _raw_index(processed) if raw is _NO_INDEX else raw
    if not isinstance(old, dict) or old.get("version") == INDEX_VERSION:
        return None
    variants = [f"{ds}/{key}" for ds, e in (old.get("datasets") or {}).items()
                for key in (e.get("variants") or {})] or ["DATASET/CROP/SIZE"]
    return (f"the processed cache {processed / INDEX_NAME} is from an older facefill (index version "
            f"{old.get('version')}: train/test only, no val split) and is ignored. Rebuild it with "
            f"`dvc repro prepare_data` or `python -m facefill.pipeline prepare` (for this folder: "
            f"`{_prepare_cmd(variants, processed)}`).")


def _write_json_atomic(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1))
    os.replace(tmp, path)


def _split_by(by_identity: bool) -> str:
    return "identity" if by_identity else "image"


def _open_npy(npy: Path, rebuild: str) -> np.ndarray:
    """Memory-map a cached array; a truncated / damaged file raises DataError naming it and the rebuild command.

    Deliberately no automatic rebuild (see the module docstring); the broken file is left where it is.
    """
    try:
        return np.load(npy, mmap_mode="r")
    except (ValueError, OSError, EOFError) as e:  # "mmap length is greater than file size", bad header, ...
        raise DataError(f"processed cache {npy} is truncated or corrupt ({e}): rebuild it with "
                        f"`python -m facefill.pipeline prepare` (or `dvc repro prepare_data`; outside the pipeline: "
                        f"`{rebuild}`); nothing was deleted") from None


def _from_cache(dataset, crop, size, split, limit, data_dir, processed_dir, seed, test_fraction,
                val_fraction=VAL_FRACTION, by_identity=False):
    """Images from the processed cache, or None when it does not (fully) cover the request."""
    processed = _resolve_processed(processed_dir)
    raw = _raw_index(processed)
    note = _stale_note(processed, raw)
    if note and str(processed) not in _stale_warned:
        _stale_warned.add(str(processed))
        log.warning("%s Until then images are decoded from the archives (slower).", note[0].upper() + note[1:])
    entry = _read_index(processed, raw)["datasets"].get(dataset)
    variant = (entry or {}).get("variants", {}).get(f"{crop}/{size}")
    if (variant is None or entry["seed"] != seed or entry["test_fraction"] != float(test_fraction)
            or entry.get("val_fraction") != float(val_fraction) or entry.get("split_by") != _split_by(by_identity)):
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
    arr = _open_npy(npy, _prepare_cmd([f"{dataset}/{crop}/{size}"], processed, seed, test_fraction, val_fraction,
                                      by_identity))
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
               data_dir=None, processed_dir=None, seed: int = 0, test_fraction: float = TEST_FRACTION,
               val_fraction: float = VAL_FRACTION, by_identity: bool = False) -> np.ndarray:
    """uint8 (N, size, size, 3): the first ``limit`` images of ``split`` ("train", "val", "test") in split order.

    Reads ``processed_dir`` (default data/processed) when ``prepare`` cached this
    (dataset, crop, size, seed, test_fraction, val_fraction, by_identity); else decodes
    only those images from the archive. Any unusable image among them raises DataError.
    ``by_identity=True``: identity-disjoint splits (``split_by_identity``).
    """
    spec = _spec(dataset)
    size = _check_size(size)
    kind = _crop_kind(spec, crop)
    _check_fraction(test_fraction, val_fraction)
    if split not in SPLITS:
        raise ConfigError(f"split={split!r}: use one of {SPLITS}")
    if limit is not None and (isinstance(limit, bool) or int(limit) < 0):
        raise ConfigError(f"limit={limit!r} must be None (all) or >= 0")
    if by_identity:
        identities(dataset, [])  # ConfigError now for datasets without identities

    cached = _from_cache(dataset, crop, size, split, limit, data_dir, processed_dir, seed, test_fraction,
                         val_fraction, by_identity)
    if cached is not None:
        _warn_if_short(dataset, split, limit, len(cached))
        return cached

    try:
        source = find_archive(dataset, data_dir)
    except DataNotFoundError as e:
        note = _stale_note(_resolve_processed(processed_dir))
        if note:
            raise DataNotFoundError(f"{e} Also, {note}") from None
        raise
    names = _source_names(source)
    wanted = split_indices(dataset, names, seed, test_fraction, data_dir, val_fraction=val_fraction,
                           by_identity=by_identity)[split][:limit]
    pos = {names[i]: p for p, i in enumerate(wanted)}
    images = np.zeros((len(wanted), size, size, 3), dtype=np.uint8)
    bad: dict[str, tuple[str, str]] = {}
    for name, data in _tqdm(_iter_members(source, pos), total=len(pos), desc=f"{dataset} {split}", leave=False,
                            disable=len(pos) < 1000):
        try:
            images[pos[name]] = _decode_variants(data, spec, [(kind, size)]).images[0]
        except _BadImage as e:
            bad[name] = (e.kind, e.reason)
    if bad:
        raise DataError(f"{len(bad)} {dataset} {split} image(s) in {source} are unusable:\n{_summarize(bad)}\n"
                        "Replace them with good copies, or load a different subset; "
                        "`python -m facefill.data prepare` lists every bad image.")
    log.info("%s/%s/%d %s: decoded %d images directly from %s (no matching cache in %s)", dataset, crop, size,
             split, len(images), source, _resolve_processed(processed_dir))
    _warn_if_short(dataset, split, limit, len(images))
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


def _identity_datasets(datasets: Iterable[str], by_identity) -> set[str]:
    """Which of ``datasets`` prepare splits by identity: True = those with identity labels, or a named subset."""
    if by_identity is True:
        without = [d for d in datasets if not _spec(d).identity]
        if without:
            log.info("%s: no identity labels, split by image", ", ".join(without))
        return {d for d in datasets if _spec(d).identity}
    if not by_identity:
        return set()
    chosen = {by_identity} if isinstance(by_identity, str) else set(by_identity)
    for d in chosen:
        identities(d, [])  # ConfigError for datasets without identities
    return chosen


def prepare(variants: list[str], data_dir=None, processed_dir=DEFAULT_PROCESSED_DIR, seed: int = 0,
            test_fraction: float = TEST_FRACTION, limit: int | None = None, strict: bool = False, *,
            val_fraction: float = VAL_FRACTION, by_identity: bool | Iterable[str] = False) -> dict:
    """Decode each image once and write one .npy per variant plus index.json; returns the index.

    ``limit`` keeps ``limit`` images per dataset: the first ``round(limit *
    test_fraction)`` of test, then a val share of the rest (``_n_part``), the others
    from the start of train (smoke runs); bad images are listed and excluded
    (``strict``: DataError instead). ``by_identity``: True splits every dataset that
    has identity labels (LFW) by person and the others by image, or give the dataset
    names. Crops smaller than the size are upscaled with an ``UpscaleWarning`` per
    dataset/size (count, examples). Files are written under temporary names and renamed
    at the end; when a dataset fails, the datasets already finished are still kept.
    Other variants already cached for a dataset survive when its split and source are
    unchanged.
    """
    _check_fraction(test_fraction, val_fraction)
    parsed = [_parse_variant(v) for v in variants]
    if not parsed:
        raise ConfigError("prepare needs at least one variant like 'lfw/default/250'")
    processed = _resolve_processed(processed_dir)
    by_dataset: dict[str, list[tuple[str, int]]] = {}
    for dataset, crop, size in parsed:
        if (crop, size) not in by_dataset.setdefault(dataset, []):
            by_dataset[dataset].append((crop, size))
    by_person = _identity_datasets(by_dataset, by_identity)
    processed.mkdir(parents=True, exist_ok=True)

    new_entries, finished_tmp = {}, []  # finished_tmp: (tmp, final) npy paths, renamed once all succeeded
    try:
        for dataset, crops in by_dataset.items():
            entry, tmps = _prepare_dataset(dataset, crops, data_dir, processed, seed, test_fraction, limit, strict,
                                           val_fraction, dataset in by_person)
            new_entries[dataset] = entry
            finished_tmp += tmps
    except BaseException as e:
        ctrl_c = isinstance(e, KeyboardInterrupt) and not isinstance(e, Interrupted)
        try:
            if new_entries:  # nothing already computed is lost: keep the datasets that did finish
                _commit(processed, new_entries, finished_tmp)
                if not ctrl_c:  # the Interrupted message below says it
                    log.warning("kept the finished dataset(s) %s in %s", ", ".join(new_entries), processed)
        finally:
            for tmp, _ in finished_tmp:
                tmp.unlink(missing_ok=True)  # only those not renamed
        if ctrl_c:
            kept = (f"the finished dataset(s) {', '.join(new_entries)} are kept in {processed}" if new_entries
                    else f"nothing new was written to {processed} (the cache that was there is unchanged)")
            raise Interrupted(f"prepare stopped by Ctrl-C; {kept}; rerun the same command to prepare the rest") from None
        raise
    return _commit(processed, new_entries, finished_tmp)


#: an old index entry whose values equal the new one's for these keys has the same rows in its .npy files
_SAME_ROWS = ("source", "source_bytes", "source_sha256", "seed", "test_fraction", "val_fraction", "split_by",
              "limit", "names", "train", "val", "test", "cached")


def _commit(processed: Path, new_entries: dict, finished_tmp: list[tuple[Path, Path]]) -> dict:
    index = _read_index(processed)
    for dataset, entry in new_entries.items():  # keep other variants of an unchanged dataset
        old = index["datasets"].get(dataset)
        if not old or any(old.get(k) != entry[k] for k in _SAME_ROWS):
            continue
        for key, variant in old.get("variants", {}).items():
            npy = processed / variant["file"]
            if key in entry["variants"] or not npy.is_file():
                continue
            try:
                ok = list(np.load(npy, mmap_mode="r").shape) == variant["shape"]
            except (ValueError, OSError, EOFError):
                ok = False
            if ok:
                entry["variants"][key] = variant
    # Drop the old entries first, so index.json never points at a .npy that is being replaced.
    for dataset in new_entries:
        index["datasets"].pop(dataset, None)
    _write_json_atomic(processed / INDEX_NAME, index)
    for tmp, final in finished_tmp:
        os.replace(tmp, final)
    index["datasets"].update(new_entries)
    _write_json_atomic(processed / INDEX_NAME, index)
    log.info("wrote %s", processed / INDEX_NAME)
    return index


def _prepare_dataset(dataset, crops, data_dir, processed, seed, test_fraction, limit, strict,
                     val_fraction=VAL_FRACTION, by_identity=False):
    if limit is not None and limit < 0:
        raise ConfigError(f"limit={limit} must be None (all images) or >= 0")
    spec = _spec(dataset)
    source = find_archive(dataset, data_dir)
    names = _source_names(source)
    if not names:
        list_images(dataset, data_dir)  # raises the "no images" DataError
    split = split_indices(dataset, names, seed, test_fraction, data_dir, val_fraction=val_fraction,
                          by_identity=by_identity)
    if limit is None:
        selected = list(range(len(names)))
    else:  # smoke runs: the first images of each split, `limit` in all, shared like the split itself
        n_test = min(round(limit * test_fraction), len(split["test"]))
        n_val = min(_n_part(limit - n_test, val_fraction), len(split["val"]))
        n_train = min(limit - n_test - n_val, len(split["train"]))
        if n_train + n_val + n_test < limit:
            want_test = round(limit * test_fraction)
            want_val = _n_part(limit - want_test, val_fraction)
            warn_user(f"{dataset}: limit={limit} asks for train/val/test {limit - want_test - want_val}/{want_val}/{want_test} "
                      f"images but its splits give only {n_train}/{n_val}/{n_test} ({len(names)} images in all), so "
                      f"{n_train + n_val + n_test} are prepared. Add images, or set data.limit / --limit to at most "
                      f"{n_train + n_val + n_test} (null: all) so that it says what is used.", SplitSizeWarning)
        selected = sorted(split["train"][:n_train].tolist() + split["val"][:n_val].tolist()
                          + split["test"][:n_test].tolist())
    row_of = {names[i]: row for row, i in enumerate(selected)}
    variants = [(_crop_kind(spec, crop), size) for crop, size in crops]
    files = [(processed / (_npy_name(dataset, crop, size) + ".tmp"), processed / _npy_name(dataset, crop, size))
             for crop, size in crops]
    arrays = [np.lib.format.open_memmap(tmp, mode="w+", dtype=np.uint8, shape=(len(selected), size, size, 3))
              for (tmp, _), (_, size) in zip(files, crops)]  # on disk: LFW at 250 px is ~2.5 GB
    bad: dict[str, tuple[str, str]] = {}
    converted: dict[str, str] = {}
    upscaled: list[dict[str, str]] = [{} for _ in crops]
    try:
        log.info("%s: decoding %d images from %s into %s", dataset, len(selected), source,
                 ", ".join(f"{c}/{s}" for c, s in crops))
        for name, data in _tqdm(_iter_members(source, row_of), total=len(row_of), desc=dataset, unit="img"):
            try:
                dec = _decode_variants(data, spec, variants)
            except _BadImage as e:
                bad[name] = (e.kind, e.reason)
                continue
            if dec.converted:
                converted[name] = dec.converted
            for k, (arr, out, up) in enumerate(zip(arrays, dec.images, dec.upscaled)):
                arr[row_of[name]] = out
                if up:
                    upscaled[k][name] = up
        bad = dict(sorted(bad.items()))
        if bad:
            log.warning("%s: %d unusable image(s) excluded:\n%s", dataset, len(bad), _summarize(bad))
            if strict:
                raise DataError(f"{len(bad)} {dataset} image(s) in {source} are unusable (strict mode):\n"
                                f"{_summarize(bad, limit=len(bad))}\nReplace them, or run without --strict "
                                "to exclude them.")
        if converted:
            kinds: dict[str, int] = {}
            for reason in converted.values():
                kinds[reason] = kinds.get(reason, 0) + 1
            log.warning("%s: %d image(s) converted to RGB (%s)", dataset, len(converted),
                        "; ".join(f"{n} {r}" for r, n in sorted(kinds.items())))
        n_usable = len(selected) - len(bad)
        for (crop, size), ups in zip(crops, upscaled):
            if ups:
                ups = dict(sorted(ups.items()))
                smallest = min(min(map(int, u.split()[-1].split("x"))) for u in ups.values())
                eg = ", ".join(f"{n} ({u})" for n, u in list(ups.items())[:3])
                if _half_res_celeba(spec, crop, ups):
                    # Not a warning: our half-resolution CelebA copy (89x109) has a 54-px DCGAN crop, and the
                    # project's parameters (celeba/default/64, the DCGAN papers' 64 px) ask for this upscale on
                    # purpose; advising "size <= 54" on every prepare contradicted them. Still recorded in the index.
                    log.info("%s %s/%d: the half-resolution copy's %d DCGAN crops (54x54) are upscaled to %dx%d as the "
                             "parameters ask; the official img_align_celeba.zip (178x218) needs no upscaling",
                             dataset, crop, size, len(ups), size, size)
                    continue
                warnings.warn(f"{dataset} {crop}/{size}: {len(ups)} of {n_usable} images are smaller than "
                              f"{size}x{size} after the crop and were upscaled (e.g. {eg}); for sharp images use "
                              f"size <= {smallest} or a higher-resolution copy of {dataset}",
                              UpscaleWarning, stacklevel=3)
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
            tmp.with_name(tmp.name + ".compact").unlink(missing_ok=True)
        raise

    def listing(items: dict, limit: int | None = None) -> dict:
        return {"count": len(items), "images": dict(list(sorted(items.items()))[:limit])}

    entry = {
        "source": str(source),
        "source_bytes": _source_bytes(source),
        "source_sha256": _sha256(source),
        "partition": str(_partition_path(dataset, data_dir) or "seeded"),
        "split_by": _split_by(by_identity),
        "seed": seed,
        "test_fraction": float(test_fraction),
        "val_fraction": float(val_fraction),
        "limit": limit,
        "n_images": len(names),
        "names": names,
        "train": split["train"].tolist(),
        "val": split["val"].tolist(),
        "test": split["test"].tolist(),
        "cached": usable,
        "corrupt": listing({n: r for n, (k, r) in bad.items() if k == "corrupt"}),
        "unexpected": listing({n: r for n, (k, r) in bad.items() if k == "unexpected"}),
        "converted": listing(converted),
        "variants": {f"{crop}/{size}": {"file": final.name, "crop": crop, "size": size,
                                        "shape": [len(usable), size, size, 3],
                                        "upscaled": listing(ups, limit=10)}  # examples only: may be every image
                     for (crop, size), (_, final), ups in zip(crops, files, upscaled)},
    }
    return entry, files


# ----------------------------------------------------------------------------- CLI


def info(data_dir=None, processed_dir=DEFAULT_PROCESSED_DIR) -> str:
    """What the data dir and processed dir hold, as printable text."""
    root = resolve_data_dir(data_dir)
    env = os.environ.get(ENV_DATA_DIR)
    lines = [f"data dir: {root} ({f'from {ENV_DATA_DIR}' if env else 'from argument / default'})"]
    for name in DATASETS:
        try:
            source = _locate(name, data_dir)
            if source is None:
                lines.append(f"  {name:10s} MISSING: {_not_found_message(name, data_dir)}")
                continue
            n = len(_source_names(source))
            part = _partition_path(name, data_dir)
        except FacefillError as e:
            lines.append(f"  {name:10s} ERROR: {e}")
            continue
        lines.append(f"  {name:10s} {source} ({n} images" + (f", partition {part.name}" if part else "") + ")")
    processed = _resolve_processed(processed_dir)
    raw = _raw_index(processed)
    index = _read_index(processed, raw)
    lines.append(f"processed dir: {processed}")
    for entry in index["datasets"].values():
        for v in entry["variants"].values():
            lines.append(f"  {v['file']}: {v['shape']} seed={entry['seed']} test_fraction={entry['test_fraction']}"
                         f" val_fraction={entry['val_fraction']} split_by={entry['split_by']}"
                         f" train/val/test={len(entry['train'])}/{len(entry['val'])}/{len(entry['test'])}"
                         f" corrupt={entry['corrupt']['count']} unexpected={entry['unexpected']['count']}"
                         f" upscaled={v['upscaled']['count']}")
    note = _stale_note(processed, raw)
    if note:
        lines.append(f"  STALE: {note}")
    elif not index["datasets"]:
        lines.append("  (empty: run `python -m facefill.data prepare --variants ...`)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m facefill.data", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("prepare", help="decode archives into processed .npy caches (DVC prepare_data stage)")
    p.add_argument("--variants", nargs="+", required=True, help="dataset/crop/size, e.g. lfw/default/250")
    p.add_argument("--data-dir", default=None,
                   help=f"folder holding the archives (default: ${ENV_DATA_DIR}, else data/raw); given, it wins over {ENV_DATA_DIR}")
    p.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--test-fraction", type=float, default=TEST_FRACTION)
    p.add_argument("--val-fraction", type=float, default=VAL_FRACTION,
                   help="share of the training part held out as val (0: no val split)")
    p.add_argument("--by-identity", nargs="*", default=None, metavar="DATASET",
                   help="identity-disjoint splits: for the named datasets, or (no names) every dataset with "
                        "identities (lfw)")
    p.add_argument("--limit", type=int, default=None,
                   help="at most N images per dataset (smoke runs), taken from the splits in the same shares: "
                        "72/8/20 %% train/val/test with the default --test-fraction and --val-fraction")
    p.add_argument("--strict", action="store_true", help="fail on corrupt/unexpected images instead of skipping")
    i = sub.add_parser("info", help="show what the data dir and processed dir hold")
    i.add_argument("--data-dir", default=None, help=f"folder holding the archives (wins over {ENV_DATA_DIR})")
    i.add_argument("--processed-dir", default=DEFAULT_PROCESSED_DIR)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with _explicit_data_dir(args.data_dir) as data_dir:
            _run_command(args, data_dir)
    except Interrupted as e:
        print(f"facefill: {e}", file=sys.stderr)
        sys.exit(130)
    except KeyboardInterrupt:
        print(f"facefill: {args.command} stopped by Ctrl-C; nothing was changed; rerun the same command.", file=sys.stderr)
        sys.exit(130)
    except FacefillError as e:
        sys.exit(f"error: {e}")


@contextlib.contextmanager
def _explicit_data_dir(data_dir):
    """An explicit ``--data-dir`` beats ``FACEFILL_DATA_DIR`` (the environment may be set by a profile the
    user forgot): the variable is ignored while the command runs, with a note when they differ. The path
    is the shell's, relative to the current folder."""
    if data_dir is None:
        yield None
        return
    explicit = Path(data_dir).expanduser().resolve()
    env = os.environ.get(ENV_DATA_DIR)
    if env and Path(env).expanduser().resolve() != explicit:
        print(f"facefill: note: using --data-dir {explicit}, not {ENV_DATA_DIR}={env}", file=sys.stderr, flush=True)
    saved = os.environ.pop(ENV_DATA_DIR, None)
    try:
        yield explicit
    finally:
        if saved is not None:
            os.environ[ENV_DATA_DIR] = saved


def _run_command(args, data_dir) -> None:
    """The ``prepare`` / ``info`` command of :func:`main`, with the data dir already chosen."""
    if args.command == "prepare":
        by_identity = False if args.by_identity is None else (args.by_identity or True)
        index = prepare(args.variants, data_dir, args.processed_dir, args.seed, args.test_fraction,
                        args.limit, args.strict, val_fraction=args.val_fraction, by_identity=by_identity)
        for dataset, entry in index["datasets"].items():
            ups = ", ".join(f"{k}: {v['upscaled']['count']}" for k, v in entry["variants"].items()
                            if v.get("upscaled", {}).get("count"))
            print(f"{dataset}: {len(entry['cached'])} images cached (train/val/test "
                  f"{len(entry['train'])}/{len(entry['val'])}/{len(entry['test'])}, split by "
                  f"{entry['split_by']}), corrupt={entry['corrupt']['count']} "
                  f"unexpected={entry['unexpected']['count']} converted={entry['converted']['count']}"
                  + (f", upscaled ({ups})" if ups else ""))
    else:
        print(info(data_dir, args.processed_dir))


if __name__ == "__main__":
    main()
