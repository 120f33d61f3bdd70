"""The processed cache: ``<processed_dir>/<dataset>__<crop>__<size>.npy`` plus ``index.json``; reading it
back for ``load_faces``, and noticing an index written by an older facefill."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facefill.errors import DataError

from .sources import REPO_ROOT, _locate
from .splits import TEST_FRACTION, VAL_FRACTION

log = logging.getLogger("facefill.data")  # one logger for the whole package, named as before the split

DEFAULT_PROCESSED_DIR = "data/processed"
INDEX_NAME = "index.json"
INDEX_VERSION = 2  # 2: train/val/test splits (1 had train/test only)


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
