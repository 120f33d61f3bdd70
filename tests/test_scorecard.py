"""facefill.scorecard: recompute stored claims, refuse stale ones, write SCORECARD.md and scorecard.csv."""
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from facefill.scorecard import main
from facefill.verdicts import Tolerances, evaluate_claims, write_claims

VERDICTS = {"confidence": 0.95, "min_seeds": 3, "require_half_budget": False, "convergence_min_points": 20,
            "convergence_window": 5, "convergence_max_above_min": 0.05, "plateau_max_late_gain": 0.02}


@pytest.fixture
def project(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"profile": "smoke", "seed": 0, "verdicts": VERDICTS}))
    d = tmp_path / "reports" / "00_x"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    base = 25 + 2 * rng.standard_normal(300)
    arrays = {"telea": base, "flat": base - 5}
    for s in range(3):
        arrays[f"ce{s}"] = base + 1 + 0.5 * rng.standard_normal(300)
    np.savez(d / "arrays.npz", **arrays)
    steps = np.arange(0, 2000, 50)
    pd.DataFrame({"step": steps, "val": 0.1 + np.exp(-steps / 100)}).to_csv(d / "history.csv", index=False)
    ref = "reports/00_x/arrays.npz:"
    ce = {"label": "CE", "trained": True, "arrays": [f"{ref}ce{s}" for s in range(3)]}
    specs = [
        {"id": "ce.beats_telea", "paper": "pathak2016", "statement": "CE | beats Telea", "source": "Table 2", "metric": "psnr",
         "higher_is_better": True, "kind": "directional", "direction": "greater", "margin": None, "paper_value": 21.3,
         "a": ce, "b": {"label": "Telea", "trained": False, "arrays": [f"{ref}telea"]}, "link": "claims.md",
         "gates": [{"type": "convergence", "label": "CE seed 0", "history": "reports/00_x/history.csv", "column": "val"},
                   {"type": "sanity", "baselines": {"flat": f"{ref}flat"}, "higher_is_better": True}]},
        {"id": "ce.similar_telea", "paper": "pathak2016", "statement": "probe (ours)", "source": "probe (ours)",
         "metric": "psnr", "higher_is_better": True, "kind": "similar", "margin": 0.2,
         "a": ce, "b": {"label": "Telea", "trained": False, "arrays": [f"{ref}telea"]}},
    ]
    tol = Tolerances.from_params({"verdicts": VERDICTS})
    write_claims(evaluate_claims(specs, tol, root=tmp_path), d / "claims.json")
    return tmp_path


def test_scorecard_passes_and_writes(project, capsys):
    assert main(["--root", str(project)]) == 0, capsys.readouterr().err
    md = (project / "reports" / "SCORECARD.md").read_text()
    assert "## pathak2016" in md and "[`ce.beats_telea`](00_x/)" in md and "(00_x/claims.md)" in md
    assert "CE \\| beats Telea (Table 2)" in md and "1 reproduced · 1 not reproduced · 0 inconclusive" in md
    csv = pd.read_csv(project / "reports" / "scorecard.csv")
    assert list(csv["verdict"]) == ["reproduced", "not reproduced"] and set(csv["stage"]) == {"00_x"}
    assert main(["--root", str(project)]) == 0  # idempotent


def _tamper(project, fn):
    path = project / "reports" / "00_x" / "claims.json"
    recs = json.loads(path.read_text())
    fn(recs)
    path.write_text(json.dumps(recs))


def test_tampered_verdict_fails(project, capsys):
    _tamper(project, lambda r: r[1]["result"].update(verdict="reproduced"))
    assert main(["--root", str(project)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("facefill: error:") and "'ce.similar_telea'" in err and "dvc repro" in err and "Traceback" not in err
    assert not (project / "reports" / "SCORECARD.md").exists()


def test_tampered_number_fails(project, capsys):
    _tamper(project, lambda r: r[0]["result"].update(ci_low=r[0]["result"]["ci_low"] * (1 + 1e-6)))
    assert main(["--root", str(project)]) == 2
    err = capsys.readouterr().err
    assert "'ce.beats_telea'" in err and "result.ci_low" in err


def test_tiny_float_noise_is_tolerated(project):
    _tamper(project, lambda r: r[0]["result"].update(diff=r[0]["result"]["diff"] * (1 + 1e-12)))
    assert main(["--root", str(project)]) == 0


def test_tampered_array_fails(project, capsys):
    path = project / "reports" / "00_x" / "arrays.npz"
    arrays = dict(np.load(path))
    arrays["ce1"] = arrays["ce1"] - 3.0  # one seed now much worse
    np.savez(path, **arrays)
    assert main(["--root", str(project)]) == 2
    assert "ce.beats_telea" in capsys.readouterr().err


def test_changed_tolerances_fail(project, capsys):
    (project / "params.yaml").write_text(yaml.safe_dump({"profile": "smoke", "seed": 0, "verdicts": {**VERDICTS, "confidence": 0.9}}))
    assert main(["--root", str(project)]) == 2
    assert "Rerun `dvc repro`" in capsys.readouterr().err


def test_missing_array_is_a_clear_error(project, capsys):
    (project / "reports" / "00_x" / "arrays.npz").unlink()
    assert main(["--root", str(project)]) == 2
    err = capsys.readouterr().err
    assert "arrays.npz not found" in err and "rerun the stage" in err


def test_no_claims_yet(tmp_path):
    (tmp_path / "params.yaml").write_text(yaml.safe_dump({"profile": "smoke", "seed": 0, "verdicts": VERDICTS}))
    assert main(["--root", str(tmp_path)]) == 0
    assert "No `reports/*/claims.json` yet" in (tmp_path / "reports" / "SCORECARD.md").read_text()


def test_claims_a_profile_did_not_score_are_listed_not_dropped():
    from facefill.experiments import study_data
    from facefill.scorecard import untested_claims

    ms = [{"id": c["id"]} for c in study_data("multiscale2020")["claims"]]
    assert untested_claims("multiscale2020", ms) == []
    left = untested_claims("multiscale2020", [r for r in ms if r["id"] != "mce.add_vs_concat_quality"])
    assert [c["id"] for c in left] == ["mce.add_vs_concat_quality"] and left[0]["statement"]
    # notebook 04's families expand into one claim per mask kind
    families = [c["family"] for c in study_data("semantic_landmarks")["claims"]]
    expanded = [{"id": f"{f}.{kind}"} for f in families for kind in ("center", "left")]
    assert untested_claims("semantic_landmarks", expanded) == []
    assert [c["id"] for c in untested_claims("semantic_landmarks", expanded[2:])] == [families[0]]
    assert untested_claims("a_users_own_paper", []) == []  # no study file: nothing to compare with


def test_redecide_rewrites_claims_after_a_change_of_rules_and_says_so(project, capsys):
    (project / "params.yaml").write_text(yaml.safe_dump({"profile": "smoke", "seed": 0, "verdicts": {**VERDICTS, "confidence": 0.9}}))
    assert main(["--root", str(project)]) == 2  # stale under the new rules
    assert main(["--root", str(project), "--redecide"]) == 0, capsys.readouterr().err
    recs = json.loads((project / "reports" / "00_x" / "claims.json").read_text())
    assert all(r["result"]["redecided_after_run"] for r in recs) and recs[0]["result"]["alpha"] == pytest.approx(0.1 / 2)
    assert main(["--root", str(project)]) == 0  # now consistent, and the flag survives a plain recomputation
    md = (project / "reports" / "SCORECARD.md").read_text()
    assert "**Re-decided after their runs:** the claims of `00_x`" in md
    assert "| pathak2016 | 1 | 1 | 0 |" in md  # the per-paper summary
    assert "- `ce.beats_telea`: reproduced;" in md  # the plain line


def test_a_statement_quoting_a_runs_number_is_stale():
    from facefill.scorecard import stale_numbers

    rec = {"paper": "pathak2016", "statement": "The CE beats Telea (paper Table 2: 18.58 dB; §3.3).", "paper_value": None}
    assert stale_numbers(rec) == []  # the paper's number and a section number
    rec["statement"] = "The CE beats Telea. The first default run lost this (0.452 vs 0.466)."
    assert stale_numbers(rec) == ["0.452", "0.466"]
    assert stale_numbers({**rec, "paper": "no_such_paper"}) == []


def test_the_scorecard_refuses_a_stale_statement(project, capsys):
    _tamper(project, lambda r: r[0].update(statement="CE beats Telea; our last run: 21.7 dB"))
    assert main(["--root", str(project)]) == 2
    assert "quotes 21.7" in capsys.readouterr().err
