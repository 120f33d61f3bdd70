"""The train / val / test splits: seeded by image, by identity, or CelebA's official partition; and the
warnings when a split is smaller than what was asked for."""

from __future__ import annotations

import logging
import sys
import warnings
from pathlib import Path

import numpy as np

from facefill.errors import ConfigError, DataError, FacefillWarning, SplitSizeWarning

from .sources import DATASETS, _data_root, _spec

log = logging.getLogger("facefill.data")  # one logger for the whole package, named as before the split

SPLITS = ("train", "val", "test")

#: the 80/20 train/test protocol of paper 000, used by every notebook (not a parameter, so the
#: processed cache and the notebooks can never disagree about the split)
TEST_FRACTION = 0.2
#: share of the training part held out as the validation split (model selection, convergence checks);
#: carved out of the former train split only, so the test split is unaffected
VAL_FRACTION = 0.1


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
