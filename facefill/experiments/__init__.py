"""Experiment logic of each paper: training its runs, evaluating them next to baselines, claims.

One module per paper (``pathak2016.py`` …) with a YAML file of the same name beside it that holds
the paper's published numbers, the claims the study scores and the deviation log — data, never
typed into a notebook. The notebooks show the lesson; these modules do the plumbing.

Shared here:

* :func:`study_data` — read a paper's YAML;
* :func:`deviation_table` — the deviation log rendered with this run's values;
* :class:`ArrayStore` — per-image metric arrays saved as one ``arrays.npz`` per stage, the evidence
  every verdict of ``claims.json`` is recomputed from by the ``scorecard`` stage.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import yaml

from ..errors import ConfigError

HERE = Path(__file__).parent


def study_data(key: str) -> dict:
    """The YAML of one paper: ``source``, ``metrics`` (published numbers), ``claims``, ``deviations``."""
    path = HERE / f"{key}.yaml"
    if not path.exists():
        raise ConfigError(f"no study file {path.name}; available: {sorted(p.stem for p in HERE.glob('*.yaml'))}")
    return yaml.safe_load(path.read_text())


def deviation_table(rows: list[Mapping[str, str]], values: Mapping[str, Any]) -> pd.DataFrame:
    """The deviation log as a table; ``{name}`` placeholders in the ``ours`` column take this run's values."""
    out = []
    for r in rows:
        try:
            ours = str(r["ours"]).format(**values)
        except KeyError as e:
            raise ConfigError(f"deviation {r['aspect']!r} uses {{{e.args[0]}}}, which this run does not define.") from None
        out.append({"aspect": r["aspect"], "paper / reference": r["paper"], "ours": ours, "why": r["why"]})
    return pd.DataFrame(out, columns=["aspect", "paper / reference", "ours", "why"])


def project_path(path: Path, root: Path) -> str:
    """``path`` relative to the project root when inside it (how claims cite evidence), else absolute."""
    path, root = Path(path).resolve(), Path(root).resolve()
    return path.relative_to(root).as_posix() if path.is_relative_to(root) else path.as_posix()


class ArrayStore:
    """Per-image arrays of one stage, written once to ``<output_dir>/arrays.npz``.

    Keys are ``dataset__method__metric`` (``__seedK`` after the method for trained models); a claim
    refers to one as ``reports/<stage>/arrays.npz:<key>`` (paths relative to the project root).
    """

    def __init__(self, output_dir: Path, root: Path):
        self.path = Path(output_dir) / "arrays.npz"
        self.rel = project_path(self.path, root)
        self.arrays: dict[str, np.ndarray] = {}
        self.ids: dict[str, np.ndarray] = {}  # dataset -> test-image ids (content hashes), saved beside its arrays

    def set_images(self, dataset: str, images) -> np.ndarray:
        """Record the test images the arrays of ``dataset`` are scored on: every array of it is saved with
        their ids (:func:`image_ids`), and a claim pairing two arms checks that the ids match."""
        self.ids[dataset] = image_ids(images)
        return self.ids[dataset]

    @staticmethod
    def key(dataset: str, method: str, metric: str, seed: int | None = None) -> str:
        name = method.replace(" ", "_")
        return f"{dataset}__{name}{'' if seed is None else f'__seed{seed}'}__{metric}"

    def put(self, dataset: str, method: str, metric: str, values, seed: int | None = None) -> str:
        k = self.key(dataset, method, metric, seed)
        self.arrays[k] = np.asarray(values, dtype=np.float64)
        return f"{self.rel}:{k}"

    def ref(self, dataset: str, method: str, metric: str, seed: int | None = None) -> str:
        k = self.key(dataset, method, metric, seed)
        if k not in self.arrays:
            raise KeyError(f"no array {k}; stored: {sorted(self.arrays)[:8]}…")
        return f"{self.rel}:{k}"

    def save(self) -> Path:
        from ..verdicts import IDS_SUFFIX

        out = dict(self.arrays)
        for k, v in self.arrays.items():
            ids = self.ids.get(k.split("__", 1)[0])
            if ids is not None:
                if len(ids) != len(v):
                    raise ConfigError(f"array {k} has {len(v)} values but its dataset has {len(ids)} test images: "
                                      "score every method on all of them.")
                out[k + IDS_SUFFIX] = ids
        np.savez_compressed(self.path, **out)
        return self.path


def image_ids(images) -> np.ndarray:
    """One short id per image: a hash of its pixels (uint8 arrays or float tensors, NHWC or NCHW), so two
    arrays scored on other images, or on the same images in another order, can never be paired."""
    import hashlib

    x = images.detach().cpu().numpy() if hasattr(images, "detach") else np.asarray(images)
    return np.array([hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest()[:16] for im in x])
