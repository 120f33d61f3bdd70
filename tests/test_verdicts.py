"""facefill.verdicts: gates, bootstrap statistics, Holm, claim decisions -- on synthetic data."""
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from facefill.errors import ConfigError, DataError
from facefill.verdicts import (
    GateResult, Tolerances, bootstrap_p_value, claim_line, convergence_gate, decide, evaluate_claim, evaluate_claims, holm,
    holm_levels, paired_bootstrap, percentile_ci, render_claims_markdown, sanity_gate, two_level_bootstrap, write_claims,
)

TOL = Tolerances(n_boot=1000)
STEPS = np.arange(0, 2000, 20.0)  # 100 validation points


# --- tolerances ---------------------------------------------------------------------------------

def test_tolerances_from_params_strict():
    good = {"confidence": 0.95, "n_boot": 2000, "min_seeds": 3, "convergence_min_points": 20, "convergence_tail": 0.2,
            "convergence_max_gain": 0.02, "convergence_max_above_min": 0.05}
    assert Tolerances.from_params({"verdicts": good}) == Tolerances()
    assert Tolerances.from_params().n_boot >= 1  # the project's params.yaml
    with pytest.raises(ConfigError, match="n_bot"):
        Tolerances.from_params({"verdicts": {**good, "n_bot": 5}})
    with pytest.raises(ConfigError, match="missing"):
        Tolerances.from_params({"verdicts": {k: v for k, v in good.items() if k != "min_seeds"}})
    with pytest.raises(ConfigError, match="positive integer"):
        Tolerances.from_params({"verdicts": {**good, "n_boot": 2000.5}})
    with pytest.raises(ConfigError, match="confidence"):
        Tolerances.from_params({"verdicts": {**good, "confidence": 95}})


# --- convergence gate ----------------------------------------------------------------------------

def test_convergence_falling_curve_fails():
    g = convergence_gate(STEPS, 0.5 + np.exp(-STEPS / 3000), TOL, label="CE seed 0")
    assert not g.passed and "still improving" in g.detail and g.detail.startswith("CE seed 0")
    json.dumps(asdict(g))  # JSON-serialisable


def test_convergence_flat_passes():
    g = convergence_gate(STEPS, 0.5 + np.exp(-STEPS / 100), TOL)
    assert g.passed, g.detail


def test_convergence_diverging_fails():
    v = np.r_[np.linspace(1.0, 0.5, 50), np.linspace(0.5, 0.8, 50)]
    g = convergence_gate(STEPS, v, TOL)
    assert not g.passed and "trails the best" in g.detail


def test_convergence_noisy_flat_passes():
    v = 0.5 + 0.005 * np.random.default_rng(0).standard_normal(STEPS.size)
    assert convergence_gate(STEPS, v, TOL).passed


def test_convergence_too_few_points_fails_and_nan_rows_skipped():
    v = np.full(STEPS.size, np.nan)
    v[::10] = 0.5  # validation logged every 10th step: 10 points
    g = convergence_gate(STEPS, v, TOL)
    assert not g.passed and "only 10 validation points" in g.detail


def test_convergence_higher_is_better_with_min_points():
    s = np.arange(6.0)
    rising = np.array([0.1, 0.3, 0.5, 0.6, 0.7, 0.8])
    assert not convergence_gate(s, rising, TOL, higher_is_better=True, min_points=5).passed
    assert convergence_gate(s, np.array([0.1, 0.6, 0.8, 0.8, 0.8, 0.8]), TOL, higher_is_better=True, min_points=5).passed
    assert not convergence_gate(s, rising, TOL, higher_is_better=True).passed  # default needs 20 points


def test_convergence_smoothing_reads_a_noisy_share_at_its_plateau():
    """A detector share of 256 samples at a 0.75 plateau: s.e. ~0.027. One lucky point (+2 s.e.) makes the raw
    curve "trail its best by 7 %"; trailing means of 3 see the plateau. Smoothing does not pass a rising curve."""
    s = np.arange(1.0, 21.0) * 135
    plateau = np.r_[np.linspace(0.0, 0.75, 10), 0.75 + 0.027 * np.array([1, -1, 2, -1, 1, -1, 1, -1, 0, 0])]
    raw = convergence_gate(s, plateau, TOL, higher_is_better=True, min_points=15)
    assert not raw.passed and "trails the best" in raw.detail
    smooth = convergence_gate(s, plateau, TOL, higher_is_better=True, min_points=15, smooth=3)
    assert smooth.passed and "trailing means of 3" in smooth.detail and smooth.values["n_points"] == 20, smooth.detail
    rising = convergence_gate(s, np.linspace(0.0, 0.8, 20), TOL, higher_is_better=True, min_points=15, smooth=3)
    assert not rising.passed and "still improving" in rising.detail
    with pytest.raises(ConfigError, match="smooth"):
        convergence_gate(s, plateau, TOL, smooth=0)


# --- sanity gate ---------------------------------------------------------------------------------

def test_sanity_gate():
    rng = np.random.default_rng(1)
    model = 25 + rng.standard_normal((3, 500))
    good = {"mean colour": 20 + rng.standard_normal(500), "mean patch": 22 + rng.standard_normal(500)}
    g = sanity_gate(model, good, True, TOL)
    assert g.passed and "mean colour" in g.detail and "mean patch" in g.detail
    bad = {**good, "copy": model.mean(0) + 0.01 * rng.standard_normal(500)}
    g = sanity_gate(model, bad, True, TOL)
    assert not g.passed and "does not beat copy" in g.detail and g.values["baselines"]["mean colour"]["passed"]
    assert sanity_gate(-model, {k: -v for k, v in good.items()}, False, TOL).passed  # lower is better


# --- statistics ----------------------------------------------------------------------------------

def test_paired_bootstrap_pairs_images():
    rng = np.random.default_rng(2)
    difficulty = 10 * rng.standard_normal(400)  # large per-image variance, shared by both arms
    a, b = difficulty + 0.3 + 0.1 * rng.standard_normal(400), difficulty
    lo, hi = percentile_ci(paired_bootstrap(a, b, 1000, 0), 0.05)
    assert 0.2 < lo < 0.3 < hi < 0.4


def test_two_level_bootstrap_effect_and_null():
    rng = np.random.default_rng(3)
    b = rng.standard_normal(300)
    big = b + 1 + 0.5 * rng.standard_normal((3, 300))
    lo, hi = percentile_ci(two_level_bootstrap(big, b, 1000, 0), 0.05)
    assert lo > 0.5
    null = b + 0.5 * rng.standard_normal((3, 300))
    lo, hi = percentile_ci(two_level_bootstrap(null, b, 1000, 0), 0.05)
    assert lo < 0 < hi


def test_seed_resampling_widens_ci_when_seeds_disagree():
    rng = np.random.default_rng(4)
    b = rng.standard_normal(500)
    noise = 0.3 * rng.standard_normal((3, 500))
    agree = b + 1 + noise
    disagree = agree + np.array([[-0.5], [0.0], [0.5]])  # same seed mean, but the runs differ
    w_agree = np.ptp(percentile_ci(two_level_bootstrap(agree, b, 1000, 0), 0.05))
    w_dis = np.ptp(percentile_ci(two_level_bootstrap(disagree, b, 1000, 0), 0.05))
    w_flat = np.ptp(percentile_ci(paired_bootstrap(disagree.mean(0), b, 1000, 0), 0.05))
    assert w_dis > 3 * w_agree and w_dis > 3 * w_flat


def test_p_value_floor_and_symmetry():
    assert bootstrap_p_value(np.ones(999)) == pytest.approx(1 / 1000)
    assert bootstrap_p_value(np.r_[-np.ones(50), np.ones(50)]) == 1.0


def test_holm():
    p = [0.02, 0.3, 0.4, 0.5, 0.6]
    assert holm([0.02])[0] == pytest.approx(0.02)
    assert holm(p)[0] == pytest.approx(0.1)  # passes alone, fails among five
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm_levels([0.001, 0.011, 0.02, 0.5], 0.05), [0.05 / 4, 0.05 / 3, 0.05 / 2, 0.05])
    np.testing.assert_allclose(holm_levels([0.03, 0.001, 0.04], 0.05), [0.05 / 2, 0.05 / 3, 0.05 / 2])  # frozen after a failure


def test_decide():
    assert decide("directional", 0.1, 0.5, "greater") == "reproduced"
    assert decide("directional", -0.5, -0.1, "less") == "reproduced"
    assert decide("directional", -0.5, -0.1, "greater") == "not reproduced"
    assert decide("directional", -0.1, 0.2, "greater") == "inconclusive: CI includes 0"
    assert decide("directional", -0.1, 0.2, "greater", margin=0.3) == "not reproduced"
    assert decide("similar", -0.1, 0.2, margin=0.3) == "reproduced"
    assert decide("similar", 0.4, 0.6, margin=0.3) == "not reproduced"
    assert decide("similar", 0.2, 0.6, margin=0.3).startswith("inconclusive: CI crosses")


# --- claims from files ---------------------------------------------------------------------------

@pytest.fixture
def project(tmp_path):
    rng = np.random.default_rng(5)
    n = 400
    base = 25 + 2 * rng.standard_normal(n)
    arrays = {"telea": base, "meancolour": base - 5 + rng.standard_normal(n)}
    for s in range(3):
        arrays[f"ce{s}"] = base + 1 + 0.5 * rng.standard_normal(n)  # CE clearly better than Telea
        arrays[f"ce_twin{s}"] = base + 1 + 0.5 * rng.standard_normal(n)  # indistinguishable from CE
        arrays[f"tiny{s}"] = base + 0.5 * rng.standard_normal(n)  # no effect vs Telea
    d = tmp_path / "reports" / "00_x"
    d.mkdir(parents=True)
    np.savez(d / "arrays.npz", **arrays)
    np.save(d / "telea.npy", base)
    steps = np.arange(0, 3000, 10)
    pd.DataFrame({"step": steps, "val_rec": np.where(steps % 100 == 0, 0.1 + np.exp(-steps / 200), np.nan),
                  "train": 1.0}).to_csv(d / "history.csv", index=False)
    pd.DataFrame({"step": steps[:15], "val_rec": 0.1 + np.exp(-steps[:15] / 2000)}).to_csv(d / "short.csv", index=False)
    return tmp_path


def arm(label, keys, trained=True):
    return {"label": label, "trained": trained, "arrays": [f"reports/00_x/arrays.npz:{k}" for k in keys]}


def claim(cid, a, b, **kw):
    spec = {"id": cid, "paper": "pathak2016", "statement": "CE beats Telea", "source": "Table 2", "metric": "psnr",
            "higher_is_better": True, "kind": "directional", "direction": "greater", "margin": None, "paper_value": None,
            "a": a, "b": b}
    return {**spec, **kw}


CE = arm("CE", ["ce0", "ce1", "ce2"])
TELEA = arm("Telea", ["telea"], trained=False)
CONV = {"type": "convergence", "label": "CE seed 0", "history": "reports/00_x/history.csv", "step_column": "step",
        "column": "val_rec", "higher_is_better": False}
SANITY = {"type": "sanity", "baselines": {"mean colour": "reports/00_x/arrays.npz:meancolour"}, "higher_is_better": True}


def verdict(spec, root, **kw):
    return evaluate_claim(spec, TOL, root=root, **kw)["result"]["verdict"]


def test_claim_reproduced_with_gates(project):
    rec = evaluate_claim(claim("ce.beats_telea", CE, TELEA, gates=[CONV, SANITY]), TOL, root=project)
    r = rec["result"]
    assert r["verdict"] == "reproduced" and r["ci_low"] > 0 and r["n_seeds_a"] == 3 and r["n_seeds_b"] == 1
    assert r["alpha"] == pytest.approx(0.05) and [g["passed"] for g in r["gates"]] == [True, True]
    assert r["diff"] == pytest.approx(r["a_mean"] - r["b_mean"]) and r["n_images"] == 400
    json.dumps(rec)


def test_claim_not_reproduced_opposite_direction(project):
    assert verdict(claim("c", CE, TELEA, direction="less"), project) == "not reproduced"


def test_claim_not_reproduced_by_equivalence_margin(project):
    spec = claim("c", arm("CE", ["ce0", "ce1", "ce2"]), arm("twin", ["ce_twin0", "ce_twin1", "ce_twin2"]), margin=0.5)
    assert verdict(spec, project) == "not reproduced"
    assert verdict({**spec, "margin": None}, project) == "inconclusive: CI includes 0"


def test_claim_similar(project):
    twin = arm("twin", ["ce_twin0", "ce_twin1", "ce_twin2"])
    assert verdict(claim("c", CE, twin, kind="similar", direction=None, margin=0.5), project) == "reproduced"
    assert verdict(claim("c", CE, TELEA, kind="similar", direction=None, margin=0.3), project) == "not reproduced"


def test_claim_inconclusive_seeds_only_for_trained_vs_trained(project):
    one = arm("CE", ["ce0"])
    tiny = arm("tiny", ["tiny0", "tiny1", "tiny2"])
    v = verdict(claim("c", one, tiny), project)
    assert v.startswith("inconclusive: 1 seed(s) of CE")
    assert verdict(claim("c", one, TELEA), project) == "reproduced"  # learning-free b: one CE seed suffices


def test_claim_inconclusive_failed_gate(project):
    short = {**CONV, "history": "reports/00_x/short.csv"}
    v = verdict(claim("c", CE, TELEA, gates=[short]), project)
    assert v.startswith("inconclusive: convergence gate failed (CE seed 0: only 15 validation points")


def test_claim_npy_reference(project):
    b = {"label": "Telea", "trained": False, "arrays": ["reports/00_x/telea.npy"]}
    assert verdict(claim("c", CE, b), project) == "reproduced"


def test_spec_validation(project):
    with pytest.raises(ConfigError, match="colour.*claim 'c'"):
        evaluate_claim({**claim("c", CE, TELEA), "colour": 1}, TOL, root=project)
    with pytest.raises(ConfigError, match="direction"):
        evaluate_claim(claim("c", CE, TELEA, direction="up"), TOL, root=project)
    with pytest.raises(ConfigError, match="margin"):
        evaluate_claim(claim("c", CE, TELEA, kind="similar", direction=None), TOL, root=project)
    with pytest.raises(ConfigError, match="histroy"):
        evaluate_claim(claim("c", CE, TELEA, gates=[{**CONV, "histroy": 1}]), TOL, root=project)
    with pytest.raises(DataError, match="missing.npz.*rerun the stage"):
        evaluate_claim(claim("c", arm("CE", ["x"]) | {"arrays": ["reports/00_x/missing.npz:x"]}, TELEA), TOL, root=project)
    with pytest.raises(DataError, match="no array 'nope'"):
        evaluate_claim(claim("c", arm("CE", ["nope"]), TELEA), TOL, root=project)
    with pytest.raises(ConfigError, match="duplicate"):
        evaluate_claims([claim("c", CE, TELEA), claim("c", CE, TELEA)], TOL, root=project)


def test_holm_within_paper(project):
    """A claim that is decisive alone becomes inconclusive among many hopeless claims of its paper."""
    rng = np.random.default_rng(6)
    n = 400
    b = rng.standard_normal(n)
    noise = lambda: 3 * (lambda z: (z - z.mean()) / z.std())(rng.standard_normal(n))  # noqa: E731 exact mean 0, sd 3
    arrays = {"b": b, "a": b + 0.33 + noise()}  # effect = 2.2 standard errors: p ~ 0.03
    for k in range(6):
        arrays[f"null{k}"] = b + noise()  # no effect at all: p ~ 1
    np.savez(project / "reports" / "00_x" / "holm.npz", **arrays)
    ref = lambda k: {"label": k, "trained": False, "arrays": [f"reports/00_x/holm.npz:{k}"]}  # noqa: E731
    target = claim("t", ref("a"), ref("b"))
    alone = evaluate_claim(target, TOL, root=project)["result"]
    assert alone["verdict"] == "reproduced" and 0.001 < alone["p_value"] < 0.05, alone
    family = [target] + [claim(f"n{k}", ref(f"null{k}"), ref("b")) for k in range(6)]
    other = [claim(f"o{k}", ref(f"null{k}"), ref("b"), paper="other") for k in range(6)]
    recs = evaluate_claims(family + other, TOL, root=project)
    r = recs[0]["result"]
    assert r["p_value"] == alone["p_value"] and r["alpha"] < 0.05 and r["p_holm"] > 0.05
    assert r["verdict"] == "inconclusive: CI includes 0" and r["ci_low"] < alone["ci_low"]
    # the other paper is its own family of 6; its best claim fails at 0.05/6, which freezes the rest there
    assert [x["result"]["alpha"] for x in recs[7:]] == pytest.approx([0.05 / 6] * 6)
    assert evaluate_claims([target] + other, TOL, root=project)[0]["result"]["verdict"] == "reproduced"


def test_determinism_and_write(project, tmp_path):
    specs = [claim("ce.beats_telea", CE, TELEA, gates=[CONV, SANITY]), claim("ce.vs.twin", CE, arm("twin", ["ce_twin0"]))]
    r1, r2 = evaluate_claims(specs, TOL, root=project), evaluate_claims(specs, TOL, root=project)
    assert r1 == r2
    p1, p2 = write_claims(r1, tmp_path / "a" / "claims.json"), write_claims(r2, tmp_path / "b.json")
    assert p1.read_text() == p2.read_text() and json.loads(p1.read_text()) == r1
    md = render_claims_markdown(r1)
    assert "`ce.beats_telea`" in md and "**reproduced**" in md and "✓ convergence" in md and md.count("\n") == 4


def test_gate_result_dataclass():
    g = GateResult("x", True, "ok", {"a": 1.0})
    assert asdict(g) == {"name": "x", "passed": True, "detail": "ok", "values": {"a": 1.0}}


def test_claim_line_states_verdict_difference_and_interval():
    rec = {"id": "mce_vs_ce.ms_ssim", "metric": "ms_ssim_percent", "a": {"label": "MCE"}, "b": {"label": "CE"},
           "result": {"verdict": "not reproduced", "diff": -0.41234, "ci_low": -0.7, "ci_high": -0.125}}
    assert claim_line(rec) == ("- `mce_vs_ce.ms_ssim`: **not reproduced** — Δ ms_ssim_percent = -0.4123 "
                               "[-0.7, -0.125] (MCE − CE).")
