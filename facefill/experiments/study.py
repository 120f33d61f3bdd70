"""The set-up every paper's study shares: its configs, precision, published data, seeds and array store."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ..config import pick
from ..reporting import Run
from ..runtime import autocast_factory, resolve_precision
from ..train import TrainConfig
from . import ArrayStore, study_data


class Study:
    """Base of the study classes: ``KEY`` names the paper's YAML, ``CONFIG`` the model config read from the
    parameters. Sets ``p``, ``run``, ``cfg``, ``train_cfg``, ``precision``, ``autocast``, ``paper``,
    ``seeds`` (``seed``, ``seed + 1``, … ``n_seeds`` of them) and ``store`` (the stage's ``arrays.npz``)."""

    KEY: str
    CONFIG: type

    def __init__(self, params: dict, run: Run):
        self.p, self.run = params, run
        self.cfg = pick(params, self.CONFIG)
        self.train_cfg = pick(params, TrainConfig)
        self.precision = resolve_precision(params["precision"], run.device)
        self.autocast = autocast_factory(run.device, self.precision)
        self.paper = study_data(self.KEY)
        self.seeds = [params["seed"] + k for k in range(params["n_seeds"])]
        self.store = ArrayStore(run.output_dir, run.root)


@dataclass
class TrainedRun:
    """One trained network of a study: its arm, seed, task (generator and discriminator) and history."""
    arm: str
    seed: int
    task: object
    history: pd.DataFrame
    history_path: Path
