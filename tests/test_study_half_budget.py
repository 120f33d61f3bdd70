"""Budget stability on the study side: with ``verdicts.require_half_budget`` every trained arm of a claim
carries its half-budget models' arrays, scored on the same images, and those models are the half runs."""
from pathlib import Path

import numpy as np
import pytest
import torch

from facefill.config import load_params, section
from facefill.experiments.study import HALF_SUFFIX, half_name
from facefill.reporting import Run
from facefill.train import HALF_DIR

pytestmark = pytest.mark.real_data


def _run(tmp_path: Path, name: str, params: dict) -> Run:
    out, ckpt = tmp_path / "reports", tmp_path / "models"
    out.mkdir()
    ckpt.mkdir()
    return Run(name, params, tmp_path, out, ckpt, torch.device("cpu"))


def trained_arms(specs: list[dict]) -> list[dict]:
    return [arm for s in specs for arm in (s["a"], s["b"]) if arm["trained"]]


def check_half_arrays(study, specs: list[dict]) -> None:
    """Every trained arm has half arrays, one per seed, stored, on the same images, not equal to the full ones."""
    arms = trained_arms(specs)
    assert arms, "no claim with a trained arm"
    saved = np.load(study.store.path)
    for arm in arms:
        assert len(arm["half_arrays"]) == len(arm["arrays"]) >= 2, arm["label"]
        for full, half in zip(arm["arrays"], arm["half_arrays"]):
            tag = HALF_SUFFIX.replace(" ", "_")  # as the store writes it in keys
            assert tag in half and tag not in full
            f, h = saved[full.split(":", 1)[-1]], saved[half.split(":", 1)[-1]]
            assert f.shape == h.shape and not np.allclose(f, h), (full, half)


def test_context_encoder_study_scores_its_half_budget_models(tmp_path):
    from facefill.experiments.pathak2016 import METHOD, ContextEncoderStudy

    params = {**section(load_params(), "context_encoder", "smoke"), "seed": 0, "profile": "smoke",
              "data_dir": None, "processed_dir": "data/processed", "n_test": 8, "progress": False}
    study = ContextEncoderStudy(params, _run(tmp_path, "00", params))
    assert study.half_budget and study.train_cfg.half_budget
    study.load()
    runs = study.train()
    for r in runs:
        assert r.half is not None
        assert (tmp_path / "models" / f"seed{r.seed}" / HALF_DIR / "last.pt").is_file()
        full = dict(r.task.generator.named_parameters())
        assert any(not torch.equal(p, full[n]) for n, p in r.half.generator.named_parameters())  # another model
    table = study.evaluate()
    assert half_name(METHOD) in set(table["method"])
    assert not any(HALF_SUFFIX in k for k in study.filled["main"])  # figures show the full-budget models
    specs = study.claim_specs()
    check_half_arrays(study, specs)
    records = study.decide()
    assert all("half_diff" in r for r in records if r.get("interval", "").startswith("seed-level"))
