"""The stage profile: named sections summed over calls, nested sections, the per-stage table."""
import json
import time

import pytest

from facefill import profiling


def test_sections_sum_over_calls_and_are_written_after_each(tmp_path):
    profiling.record_to(tmp_path / "timings.json")
    for _ in range(2):
        with profiling.timed("baselines"):
            time.sleep(0.01)
    t = json.loads((tmp_path / "timings.json").read_text())
    assert t["baselines"]["calls"] == 2 and t["baselines"]["seconds"] >= 0.02


def test_a_recursive_section_counts_once_and_a_failing_block_still_counts(tmp_path):
    profiling.record_to(None)
    with profiling.timed("fit"):
        with profiling.timed("fit"):  # fit's half run is a nested fit call
            time.sleep(0.01)
    with pytest.raises(RuntimeError), profiling.timed("inference"):
        raise RuntimeError("boom")
    t = profiling.totals()
    assert t["fit"]["calls"] == 1 and t["inference"]["calls"] == 1
    with profiling.timed("fit"):  # the label is free again after the error-free exit
        pass
    assert profiling.totals()["fit"]["calls"] == 2


def test_stage_table_splits_training_from_validation(tmp_path):
    stage = tmp_path / "00_x"
    stage.mkdir()
    (stage / "timings.json").write_text(json.dumps({"fit": {"seconds": 120, "calls": 3}, "validation": {"seconds": 30, "calls": 9},
                                                    "baselines": {"seconds": 60, "calls": 2}, "stage": {"seconds": 300, "calls": 1}}))
    row = profiling.stage_table(tmp_path).iloc[0]
    assert row["training steps"] == pytest.approx(1.5) and row["validation"] == pytest.approx(0.5)
    assert row["wall"] == pytest.approx(5.0) and row["other"] == pytest.approx(2.0)  # 5 - (1.5 + 0.5 + 1)


def test_nested_sections_are_not_counted_twice(tmp_path):
    """dlib inside a validation inside fit: the self times add up to the outer wall time."""
    profiling.record_to(tmp_path / "timings.json")
    with profiling.timed("fit"):
        time.sleep(0.02)
        with profiling.timed("validation"):
            time.sleep(0.02)
            with profiling.timed("dlib"):
                time.sleep(0.03)
    t = profiling.totals()
    assert t["dlib"]["self"] == pytest.approx(t["dlib"]["seconds"])
    assert t["validation"]["self"] == pytest.approx(t["validation"]["seconds"] - t["dlib"]["seconds"], abs=2e-3)
    parts = t["fit"]["self"] + t["validation"]["self"] + t["dlib"]["self"]
    assert parts == pytest.approx(t["fit"]["seconds"], abs=3e-3) and t["fit"]["self"] < t["fit"]["seconds"] - 0.045
    (tmp_path / "00_x").mkdir()
    (tmp_path / "timings.json").rename(tmp_path / "00_x" / "timings.json")
    row = profiling.stage_table(tmp_path).iloc[0]  # minutes; the columns add up to fit's wall time
    total = row["training steps"] + row["validation"] + row["dlib"]
    assert total * 60 == pytest.approx(t["fit"]["seconds"], abs=3e-3)
