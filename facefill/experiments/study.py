"""The contract every paper's study follows: its set-up, the claim specs it builds and how they are decided.

A study (one per paper, ``facefill/experiments/<KEY>.py`` beside ``<KEY>.yaml``) subclasses
:class:`Study` and provides ``claim_specs()``; the base class gives it the parameters, the run, the
model and training configs, precision, the paper's YAML, the seeds, the array store (arrays saved with
the ids of the test images they were scored on) and :meth:`Study.decide`, which decides every claim
with :mod:`facefill.verdicts` and writes ``claims.json``. :meth:`Study.claim_spec` turns one YAML
claim and its two arms into a spec, so the claim fields are written in one place.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import pandas as pd

from .. import verdicts
from ..config import pick
from ..reporting import Run
from ..runtime import autocast_factory, resolve_precision
from ..train import TrainConfig
from . import ArrayStore, study_data

#: fields a claim copies from its YAML entry (null when the entry does not set them)
CLAIM_FIELDS = ("statement", "source", "metric", "higher_is_better", "kind", "direction", "margin", "paper_value")
#: fields copied only when the YAML sets them (older claims.json files do not have them)
OPTIONAL_CLAIM_FIELDS = ("paper_effect",)


class Study:
    """Base of the study classes: ``KEY`` names the paper's YAML, ``CONFIG`` the model config read from the
    parameters (None: the study builds its configs itself). Sets ``p``, ``run``, ``cfg``, ``train_cfg``,
    ``precision``, ``autocast``, ``paper``, ``seeds`` (``seed``, ``seed + 1``, … ``n_seeds`` of them;
    just ``seed`` without ``n_seeds``) and ``store`` (the stage's ``arrays.npz``)."""

    KEY: str
    CONFIG: type | None = None

    def __init__(self, params: dict, run: Run):
        self.p, self.run = params, run
        self.cfg = pick(params, self.CONFIG) if self.CONFIG is not None else None
        self.train_cfg = pick(params, TrainConfig)
        self.precision = resolve_precision(params["precision"], run.device)
        self.autocast = autocast_factory(run.device, self.precision)
        self.paper = study_data(self.KEY)
        self.seeds = [params["seed"] + k for k in range(params.get("n_seeds", 1))]
        self.store = ArrayStore(run.output_dir, run.root)

    def claim_specs(self) -> list[dict]:
        raise NotImplementedError(f"{type(self).__name__} must build its claims (claim_specs)")

    def claim_spec(self, c: Mapping, a: dict, b: dict, gates: list, **override) -> dict:
        """The spec of YAML claim ``c`` comparing arms ``a`` and ``b`` (``label``, ``trained``, ``arrays``),
        with its gates; ``override`` replaces fields the study derives (e.g. ``id`` per mask kind)."""
        spec = {"id": c.get("id"), "paper": self.KEY, **{k: c.get(k) for k in CLAIM_FIELDS},
                **{k: c[k] for k in OPTIONAL_CLAIM_FIELDS if k in c}, "a": a, "b": b, "gates": gates}
        return {**spec, **override}

    def decide(self) -> list[dict]:
        """Every claim decided by :mod:`facefill.verdicts` (Holm within the paper), written to ``claims.json``."""
        records = verdicts.evaluate_claims(self.claim_specs(), verdicts.Tolerances.from_params())
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
