"""`python -m facefill.pipeline estimate`: per-stage throughput and extrapolated wall time (CPU path)."""
import copy
import io
import time

import numpy as np
import pytest
import torch

from facefill import bench, pipeline
from facefill.config import load_params, repo_root

#: values that make every stage's networks tiny (the keys a section does not have are ignored)
TINY = {"batch_size": 2, "width": 4, "d_width": 4, "d_dense": 8, "bottleneck": 16, "ce_width": 4, "ce_bottleneck": 16,
        "ce_batch_size": 2, "batch_images": 2, "n_blocks": 1, "max_width": 8, "z_dim": 8}


def tiny_params():
    params = copy.deepcopy(load_params(repo_root() / "params.yaml"))
    for name in params["base"]:
        params["smoke"][name] = {**(params["smoke"].get(name) or {}),
                                 **{k: v for k, v in TINY.items() if k in params["base"][name]}}
    return params


def test_estimate_prints_every_stage_and_a_total_on_cpu():
    params = tiny_params()
    buf = io.StringIO()
    rows = pipeline.estimate("smoke", device="cpu", steps=1, warmup=0, params=params, out=buf)
    text = buf.getvalue()
    stages = [s for s in params["base"] if s in bench.STAGES]
    assert set(bench.STAGES) >= set(params["base"]), "every params.yaml stage has workloads"
    assert {r["stage"] for r in rows} == set(stages)
    for s in stages:
        assert f"{s:16s} stage total" in text
    assert "total (" in text.splitlines()[-1]
    for r in rows:
        assert r["images_per_s"] > 0 and r["peak_mb"] > 0 and r["steps"] >= 1
        assert np.isclose(r["seconds"], r["steps"] * r["batch"] / r["images_per_s"])
    # the stage's step count follows its parameters: context encoder = n_seeds × steps, plus the half-budget
    # twins fit branches off at lr_decay_start × T/2 (budget stability; tested separately below)
    ce = pipeline.section(params, "context_encoder", "smoke")
    twin = 0.5 * (1 - ce["lr_decay_start"]) if params["verdicts"]["require_half_budget"] else 0.0
    assert [r["steps"] for r in rows if r["stage"] == "context_encoder"] == [round(ce["n_seeds"] * ce["steps"] * (1 + twin))]


def test_extrapolation_from_a_timed_step(monkeypatch):
    def case(device, batch_size, variant):
        return (lambda: time.sleep(0.02)), batch_size  # 4 images per 20 ms: 200 images/s

    monkeypatch.setitem(bench.STAGES, "fake", lambda v: [bench.Workload("sleeper", v["steps"], 4, case)])
    (row,) = bench.estimate_stage("fake", {"steps": 50}, torch.device("cpu"), steps=3, warmup=1)
    assert row["images_per_s"] == pytest.approx(200, rel=0.3)
    assert row["seconds"] == pytest.approx(50 * 4 / 200, rel=0.3)
    assert bench.format_seconds(90) == "90 s" and bench.format_seconds(9000) == "2.5 h"


def test_settings_tried_cpu_simple_cuda_searches():
    free = bench.Workload("w", 10, 8, None, batch_free=True)
    fixed = bench.Workload("w", 10, 8, None)
    assert bench.candidate_settings(free, {"precision": "bf16", "channels_last": True}, torch.device("cpu")) == [("bf16+cl", 8)]
    assert bench.candidate_settings(fixed, {"precision": "fp32", "channels_last": False}, torch.device("cpu")) == [("fp32", 8)]
    cuda = torch.device("cuda")
    assert {b for _, b in bench.candidate_settings(fixed, {}, cuda)} == {8}  # the profile's batch is kept
    tried = bench.candidate_settings(free, {}, cuda)
    assert {b for _, b in tried} == {8, 16, 32} and {v for v, _ in tried} == {"fp32", "fp32+cl", "bf16", "bf16+cl"}


def test_estimate_command_refuses_unknown_stages(capsys):
    assert pipeline.main(["estimate", "--stages", "nope", "--device", "cpu"]) == 2
    assert "no stage ['nope']" in capsys.readouterr().err
    assert pipeline.main(["estimate", "--steps", "0"]) == 2


def _steps(stage: str, half: bool, monkeypatch) -> dict[str, int]:
    from facefill import estimate, verdicts
    from facefill.config import section

    monkeypatch.setattr(verdicts.Tolerances, "from_params", classmethod(lambda cls, params=None: cls(require_half_budget=half)))
    values = section(load_params(repo_root() / "params.yaml"), stage, "default")
    return {w.label: w.steps for w in estimate.STAGES[stage](values)}


def test_workloads_count_every_trained_arm_and_its_half_budget_twin(monkeypatch):
    """The estimate trains what the study trains: stage 01's CE arm, stage 03's diagnostic, and with
    require_half_budget each twin (fit's branch: +1/4 at lr_decay_start 0.5; an independent half run: +1/2)."""
    full, half = _steps("multiscale", False, monkeypatch), _steps("multiscale", True, monkeypatch)
    concat = load_params(repo_root() / "params.yaml")["base"]["multiscale"]["train_concat"]
    assert [k for k in full if k.startswith("CE")] and len(full) == 3 + bool(concat)  # CE, MCE add, the 1-scale ablation (+ concat)
    assert all(half[k] == round(1.25 * full[k]) for k in full)
    full, half = _steps("cascade", False, monkeypatch), _steps("cascade", True, monkeypatch)
    assert all(half[k] == round((1.5 if k.startswith("CCE") else 1.25) * full[k]) for k in full)  # whole steps
    full, half = _steps("srgan", False, monkeypatch), _steps("srgan", True, monkeypatch)
    # SRResNet: constant rate, its half model is the T/2 checkpoint; the GAN arms rerun at T/2 from the half SRResNet
    assert {k: half[k] / full[k] for k in full} == pytest.approx({k: 1.5 if k.startswith("SRGAN") else 1.0 for k in full})
    full = _steps("masked_face", False, monkeypatch)
    v = load_params(repo_root() / "params.yaml")["base"]["masked_face"]
    assert sum(full.values()) == (2 * v["n_seeds"] + 2) * v["steps"]  # two arms × seeds + the two one-seed diagnostics


def test_the_z_search_workload_counts_every_search_the_study_runs():
    """One search per search seed and mask kind, the regressor's on every kind, the uniform-W ablation on each half mask."""
    from facefill.estimate import stage_workloads
    from facefill.experiments.semantic_landmarks import HALF_MASKS, MASK_KINDS

    params = load_params(repo_root() / "params.yaml")
    v = {**params["base"]["semantic"], "n_test": 10, "batch_images": 4, "iterations": 7, "n_seeds": 3}
    for regressor, extra in ((False, 0), (True, len(MASK_KINDS))):
        search = stage_workloads("semantic", {**v, "regressor_search": regressor}, params["base"]["dcgan"])[0]
        assert search.steps == (len(MASK_KINDS) * 3 + extra + len(HALF_MASKS)) * 3 * 7  # 3 chunks of 4 faces
        assert search.batch_size == 4 * v["candidates"]
