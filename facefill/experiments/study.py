"""The contract every paper's study follows: its set-up, the claim specs it builds and how they are decided.

A study (one per paper, ``facefill/experiments/<KEY>.py`` beside ``<KEY>.yaml``) subclasses
:class:`Study` and provides ``claim_specs()``; the base class gives it the parameters, the run, the
model and training configs, precision, the paper's YAML, the seeds, the array store (arrays saved with
the ids of the test images they were scored on) and :meth:`Study.decide`, which decides every claim
with :mod:`facefill.verdicts` and writes ``claims.json``. :meth:`Study.claim_spec` turns one YAML
claim and its two arms into a spec, so the claim fields are written in one place.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import verdicts
from ..config import pick
from ..reporting import Run
from ..runtime import autocast_factory, resolve_precision
from ..train import HALF_DIR, TrainConfig, load_modules
from . import ArrayStore, study_data

#: fields a claim copies from its YAML entry (null when the entry does not set them)
CLAIM_FIELDS = ("statement", "source", "metric", "higher_is_better", "kind", "direction", "margin", "paper_value")
#: fields copied only when the YAML sets them (older claims.json files do not have them)
OPTIONAL_CLAIM_FIELDS = ("paper_effect",)
#: appended to a trained method's name for its half-budget model in the array store (budget stability)
HALF_SUFFIX = " (half budget)"


def half_name(method: str) -> str:
    """The array-store name of ``method``'s half-budget model."""
    return method + HALF_SUFFIX


def half_task(task, checkpoint_dir: Path, device):
    """A copy of ``task`` holding the half-budget run of the run whose checkpoints are in ``checkpoint_dir``
    (``fit(half_budget=True)`` trained it there, in ``HALF_DIR``); modules in eval mode."""
    twin = copy.deepcopy(task)
    load_modules(twin, Path(checkpoint_dir) / HALF_DIR / "last.pt", device)
    for m in twin.modules.values():
        m.eval()
    return twin


class Study:
    """Base of the study classes: ``KEY`` names the paper's YAML, ``CONFIG`` the model config read from the
    parameters (None: the study builds its configs itself). Sets ``p``, ``run``, ``cfg``, ``train_cfg``,
    ``precision``, ``autocast``, ``paper``, ``seeds`` (``seed``, ``seed + 1``, … ``n_seeds`` of them;
    just ``seed`` without ``n_seeds``), ``store`` (the stage's ``arrays.npz``) and ``half_budget``: whether
    every trained run also trains at half its steps (``train_cfg.half_budget``), read from the one place that
    needs it, ``verdicts.require_half_budget``; the half-budget models are scored under :func:`half_name`
    and given to the claims as ``half_arrays``."""

    KEY: str
    CONFIG: type | None = None

    def __init__(self, params: dict, run: Run):
        self.p, self.run = params, run
        self.cfg = pick(params, self.CONFIG) if self.CONFIG is not None else None
        self.half_budget = verdicts.Tolerances.from_params().require_half_budget
        self.train_cfg = replace(pick(params, TrainConfig), half_budget=self.half_budget)
        self.precision = resolve_precision(params["precision"], run.device)
        self.autocast = autocast_factory(run.device, self.precision)
        self.paper = study_data(self.KEY)
        self.seeds = [params["seed"] + k for k in range(params.get("n_seeds", 1))]
        self.store = ArrayStore(run.output_dir, run.root)

    def claim_specs(self) -> list[dict]:
        raise NotImplementedError(f"{type(self).__name__} must build its claims (claim_specs)")

    def trained_arm(self, label: str, arrays: list[str], half_arrays: list[str]) -> dict:
        """A trained arm of a claim; its half-budget arrays are given when the runs trained them."""
        return {"label": label, "trained": True, "arrays": arrays, **({"half_arrays": half_arrays} if self.half_budget else {})}

    def claim_spec(self, c: Mapping, a: dict, b: dict, gates: list, **override) -> dict:
        """The spec of YAML claim ``c`` comparing arms ``a`` and ``b`` (``label``, ``trained``, ``arrays``),
        with its gates; ``override`` replaces fields the study derives (e.g. ``id`` per mask kind)."""
        spec = {"id": c.get("id"), "paper": self.KEY, **{k: c.get(k) for k in CLAIM_FIELDS},
                **{k: c[k] for k in OPTIONAL_CLAIM_FIELDS if k in c}, "a": a, "b": b, "gates": gates}
        return {**spec, **override}

    def decide(self) -> list[dict]:
        """Every claim decided by :mod:`facefill.verdicts` (Holm within the paper), written to ``claims.json``."""
        records = verdicts.evaluate_claims(self.claim_specs(), verdicts.Tolerances.from_params(), root=self.run.root)
        verdicts.write_claims(records, self.run.output_dir / "claims.json")
        return records


@dataclass
class TrainedRun:
    """One trained network of a study: its arm, seed, task (generator and discriminator) and history."""
    arm: str
    seed: int
    task: object
    history: pd.DataFrame
    history_path: Path
    half: object | None = None  # the half-budget twin of ``task`` (:func:`half_task`), when trained
