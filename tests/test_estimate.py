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
    # the stage's step count follows its parameters: context encoder = n_seeds × steps
    ce = pipeline.section(params, "context_encoder", "smoke")
    assert [r["steps"] for r in rows if r["stage"] == "context_encoder"] == [ce["n_seeds"] * ce["steps"]]


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
