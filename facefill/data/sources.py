"""Where the face datasets live: the dataset table (``DATASETS``), the data dir, and finding a dataset's
archive or extracted folder in it (downloading only when allowed)."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

from facefill.errors import ConfigError, DataNotFoundError

log = logging.getLogger("facefill.data")  # one logger for the whole package, named as before the split

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_DATA_DIR = "data/raw"
ENV_DATA_DIR = "FACEFILL_DATA_DIR"
ENV_ALLOW_DOWNLOAD = "FACEFILL_ALLOW_DOWNLOAD"

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".pgm", ".tif", ".tiff")
ARCHIVE_EXTS = (".zip", ".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz")


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
