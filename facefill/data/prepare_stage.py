"""``prepare``, the DVC ``prepare_data`` stage: decode every image of a dataset once into one ``.npy`` per
(crop, size) and record splits and unusable images in ``index.json``, keeping finished datasets on failure."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from facefill.errors import ConfigError, DataError, FacefillWarning, Interrupted, SplitSizeWarning

from .archives import _iter_members, _sha256, _source_names, list_images
from .cache import (DEFAULT_PROCESSED_DIR, INDEX_NAME, _npy_name, _read_index, _resolve_processed, _source_bytes,
                    _split_by, _write_json_atomic)
from .decode import _BadImage, _check_size, _crop_kind, _decode_variants, _half_res_celeba, _summarize
from .loading import _tqdm
from .sources import _spec, find_archive
from .splits import (TEST_FRACTION, VAL_FRACTION, _check_fraction, _n_part, _partition_path, identities, split_indices,
                     warn_user)

log = logging.getLogger("facefill.data")  # one logger for the whole package, named as before the split


class UpscaleWarning(FacefillWarning):
    """``prepare`` had to enlarge images whose crop is smaller than the requested size."""


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
