"""facefill.verdicts: gates, seed-level statistics (with a coverage simulation), Holm, claim decisions -- on synthetic data."""
import json
from dataclasses import asdict

import numpy as np
import pandas as pd
import pytest

from facefill.errors import ConfigError, DataError
from facefill.verdicts import (
    GateResult, Tolerances, claim_line, convergence_gate, decide, evaluate_claim, evaluate_claims, holm, holm_levels, plain_line,
    render_claims_markdown, sanity_gate, save_arrays, seed_level_interval, simulate_coverage, write_claims,
)

TOL = Tolerances(require_half_budget=False)  # the half-budget rule has its own tests
STEPS = np.arange(0, 2000, 20.0)  # 100 validation points


# --- tolerances ---------------------------------------------------------------------------------

def test_tolerances_from_params_strict():
    good = {"confidence": 0.95, "min_seeds": 3, "require_half_budget": True, "convergence_min_points": 20,
            "convergence_window": 5, "convergence_max_above_min": 0.05, "plateau_max_late_gain": 0.02}
    assert Tolerances.from_params({"verdicts": good}) == Tolerances()
    assert Tolerances.from_params().min_seeds >= 2  # the project's params.yaml
    with pytest.raises(ConfigError, match="n_boot"):
        Tolerances.from_params({"verdicts": {**good, "n_boot": 5}})  # the bootstrap is gone: an unknown key
    with pytest.raises(ConfigError, match="missing"):
        Tolerances.from_params({"verdicts": {k: v for k, v in good.items() if k != "min_seeds"}})
    with pytest.raises(ConfigError, match="positive integer"):
        Tolerances.from_params({"verdicts": {**good, "convergence_window": 2.5}})
    with pytest.raises(ConfigError, match="confidence"):
        Tolerances.from_params({"verdicts": {**good, "confidence": 95}})
    with pytest.raises(ConfigError, match="true or false"):
        Tolerances.from_params({"verdicts": {**good, "require_half_budget": "yes"}})
    with pytest.raises(ConfigError, match="at least 2 seeds"):
        Tolerances.from_params({"verdicts": {**good, "min_seeds": 1}})


# --- convergence gate: does the run end at its best? ----------------------------------------------

def test_convergence_flat_and_still_falling_curves_pass():
    """No extrapolation: a curve that still falls ends at its best (budget stability asks whether more would matter)."""
    assert convergence_gate(STEPS, 0.5 + np.exp(-STEPS / 100), TOL).passed
    g = convergence_gate(STEPS, 0.5 + np.exp(-STEPS / 3000), TOL, label="CE seed 0")
    assert g.passed and g.detail.startswith("CE seed 0") and g.values["last_half_change"] > 0.05
    json.dumps(asdict(g))  # JSON-serialisable


def test_convergence_a_curve_that_ends_above_its_best_fails():
    v = np.r_[np.linspace(1.0, 0.5, 50), np.linspace(0.5, 0.8, 50)]
    g = convergence_gate(STEPS, v, TOL)
    assert not g.passed and "trails the best" in g.detail


def test_convergence_one_spike_cannot_decide_but_a_rise_at_the_end_does():
    v = 0.5 + 0.005 * np.random.default_rng(0).standard_normal(STEPS.size)
    assert convergence_gate(STEPS, v, TOL).passed
    spike = v.copy()
    spike[-1] = 0.6  # one point 20 % up: the mean of the last 5 moves 4 %
    assert convergence_gate(STEPS, spike, TOL).passed
    rising = v.copy()
    rising[-10:] += np.linspace(0, 0.1, 10)  # the last tenth climbs 20 %: ends clearly above its best
    assert not convergence_gate(STEPS, rising, TOL).passed
    dip = v.copy()
    dip[40] = 0.3  # one lucky low point is not "the best"
    assert convergence_gate(STEPS, dip, TOL).passed


def test_convergence_too_few_points_fails_and_nan_rows_skipped():
    v = np.full(STEPS.size, np.nan)
    v[::10] = 0.5  # validation logged every 10th step: 10 points
    g = convergence_gate(STEPS, v, TOL)
    assert not g.passed and "only 10 validation points" in g.detail


def test_convergence_higher_is_better_and_window():
    s = np.arange(1.0, 21.0) * 135
    plateau = np.r_[np.linspace(0.0, 0.75, 10), 0.75 + 0.027 * np.array([1, -1, 2, -1, 1, -1, 1, -1, 0, 0])]
    g = convergence_gate(s, plateau, TOL, higher_is_better=True, min_points=15, smooth=3)
    assert g.passed and g.values["window"] == 3, g.detail
    falling = np.r_[np.linspace(0.0, 0.8, 14), np.linspace(0.8, 0.6, 6)]
    assert not convergence_gate(s, falling, TOL, higher_is_better=True, min_points=15, smooth=3).passed
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


# --- statistics: seed-level t intervals ----------------------------------------------------------

def test_interval_pairs_images():
    rng = np.random.default_rng(2)
    difficulty = 10 * rng.standard_normal(400)  # large per-image variance, shared by both arms
    a, b = difficulty + 0.3 + 0.1 * rng.standard_normal(400), difficulty
    lo, hi = seed_level_interval(a, b).ci(0.05)
    assert 0.28 < lo < 0.3 < hi < 0.32


def test_seed_spread_widens_the_interval_with_t_not_z():
    rng = np.random.default_rng(4)
    b = rng.standard_normal(500)
    agree = b + 1 + 0.3 * rng.standard_normal((3, 500))
    disagree = agree + np.array([[-0.5], [0.0], [0.5]])  # same mean, but the runs differ
    iv_agree, iv_dis = seed_level_interval(agree, b), seed_level_interval(disagree, b)
    assert np.ptp(iv_dis.ci(0.05)) > 10 * np.ptp(iv_agree.ci(0.05))
    assert iv_dis.df < 2.5  # 3 seeds that disagree: ~2 df, not a normal quantile
    assert iv_dis.parts["seeds_a"] > 10 * iv_dis.parts["images"]


def test_interval_is_the_paired_t_test_for_two_learning_free_arms():
    from scipy import stats

    rng = np.random.default_rng(5)
    a, b = rng.standard_normal(50) + 0.4, rng.standard_normal(50)
    iv = seed_level_interval(a, b)
    ref = stats.ttest_rel(a, b)
    assert iv.p_value() == pytest.approx(ref.pvalue) and iv.df == pytest.approx(49)
    lo, hi = iv.ci(0.05)
    rlo, rhi = ref.confidence_interval(0.95)
    assert (lo, hi) == pytest.approx((rlo, rhi))
    assert iv.equivalence_p(10.0) < 1e-6 and iv.equivalence_p(0.01) > 0.5


@pytest.mark.parametrize("seeds", [(3, 3), (3, 1)])
def test_coverage_of_nominal_95_percent_intervals(seeds):
    """The fast version of scripts/coverage_simulation.py: 400 simulated studies per setting (the committed table:
    1,000 per setting, 3 and 5 seeds, 100 and 1,000 images). A z quantile with the same SE -- how a percentile
    bootstrap behaves with 3 seeds -- must fail where the seeds dominate: the test can fail."""
    for share in (0.0, 0.5, 0.85):
        cov = simulate_coverage(400, seeds, 100, share, rng_seed=11)
        assert 0.925 <= cov <= 0.98, (seeds, share, cov)
    assert simulate_coverage(400, seeds, 100, 0.85, rng_seed=11, method="z") < 0.91


def test_verdicts_do_not_depend_on_a_resampling_stream(project):
    """Analytic intervals: twenty recomputations (in any order, with other claims around) give one verdict."""
    spec = claim("c", CE, TELEA)
    first = evaluate_claim(spec, TOL, root=project)["result"]
    for _ in range(20):
        assert evaluate_claim(spec, TOL, root=project)["result"] == first


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
    # small telescopes: an interval entirely below the paper's effect decides, even across 0
    assert decide("directional", -0.4, 1.2, "greater", paper_effect=2.03).startswith("not reproduced: smaller than the paper")
    assert decide("directional", -0.4, 2.5, "greater", paper_effect=2.03) == "inconclusive: CI includes 0"
    assert decide("directional", -1.2, 0.4, "less", paper_effect=-2.03).startswith("not reproduced: smaller")
    assert decide("measurement", 5.0, 5.0, "greater") == "reproduced"
    assert decide("measurement", 5.0, 5.0, "greater", margin=10) == "not reproduced"


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


def test_claim_on_a_trained_arm_with_too_few_seeds_is_not_decided(project):
    one = arm("CE", ["ce0"])
    tiny = arm("tiny", ["tiny0", "tiny1", "tiny2"])
    assert verdict(claim("c", one, tiny), project).startswith("inconclusive: 1 seed(s) of CE")
    v = verdict(claim("c", one, TELEA), project)  # against a learning-free method too: the seed spread is unknown
    assert v.startswith("inconclusive: 1 seed(s) of CE") and "reproduced on these seeds" in v
    assert verdict(claim("c", CE, TELEA), project) == "reproduced"


def test_budget_stability_decides_only_what_half_the_budget_confirms(project):
    strict = Tolerances()
    assert evaluate_claim(claim("c", CE, TELEA), strict, root=project)["result"]["verdict"].startswith(
        "inconclusive: no half-budget run")
    same = {**CE, "half_arrays": [f"reports/00_x/arrays.npz:ce_twin{s}" for s in range(3)]}
    r = evaluate_claim(claim("c", same, TELEA), strict, root=project)["result"]
    assert r["verdict"] == "reproduced" and r["half_verdict"] == "reproduced" and "half_diff" in r
    weaker = {**CE, "half_arrays": [f"reports/00_x/arrays.npz:tiny{s}" for s in range(3)]}  # no effect at half budget
    rec = evaluate_claim(claim("c", weaker, TELEA), strict, root=project)
    r = rec["result"]
    assert r["verdict"].startswith("inconclusive: verdict changes with the budget"), r["verdict"]
    line = plain_line(rec)  # names both budgets once, never "same verdict" for a verdict that changed
    assert "same verdict" not in line and "at half budget" in line, line
    with pytest.raises(ConfigError, match="half_arrays"):
        evaluate_claim(claim("c", CE, {**TELEA, "half_arrays": ["reports/00_x/telea.npy"]}), strict, root=project)


def test_arms_scored_on_other_images_are_an_error(project, tmp_path):
    d = project / "reports" / "00_x"
    rng = np.random.default_rng(9)
    ids = np.array([f"img{i:04d}" for i in range(400)])
    vals = {"ce0": rng.standard_normal(400), "ce1": rng.standard_normal(400), "ce2": rng.standard_normal(400)}
    save_arrays(d / "ided.npz", {**vals, "telea": rng.standard_normal(400)}, {"*": ids})
    ce = {"label": "CE", "trained": True, "arrays": [f"reports/00_x/ided.npz:ce{s}" for s in range(3)]}
    telea = {"label": "Telea", "trained": False, "arrays": ["reports/00_x/ided.npz:telea"]}
    assert evaluate_claim(claim("c", ce, telea), TOL, root=project)["result"]["ids_checked"] is True
    perm = rng.permutation(400)
    save_arrays(d / "shuffled.npz", {"telea": rng.standard_normal(400)[perm]}, {"telea": ids[perm]})
    with pytest.raises(DataError, match="different test images or in another order"):
        evaluate_claim(claim("c", ce, {**telea, "arrays": ["reports/00_x/shuffled.npz:telea"]}), TOL, root=project)
    with pytest.raises(DataError, match="ids"):
        save_arrays(tmp_path / "x.npz", {"a": np.zeros(3)}, {"a": ids[:2]})


def test_measurements_are_numbers_outside_holm(project):
    d = project / "reports" / "00_x"
    np.save(d / "params_mce.npy", np.array([5_557_345.0]))
    np.save(d / "params_ce.npy", np.array([5_542_241.0]))
    m = claim("m", {"label": "MCE", "trained": False, "arrays": ["reports/00_x/params_mce.npy"]},
              {"label": "CE", "trained": False, "arrays": ["reports/00_x/params_ce.npy"]}, kind="measurement")
    recs = evaluate_claims([m, claim("c", CE, TELEA)], TOL, root=project)
    r = recs[0]["result"]
    assert r["verdict"] == "reproduced" and r["ci_low"] is None and r["p_value"] is None and r["alpha"] is None
    assert recs[1]["result"]["alpha"] == pytest.approx(0.05)  # a family of one: the measurement is not in it
    assert "measured; deterministic" in claim_line(recs[0])


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


def test_claim_line_states_verdict_difference_and_interval(project):
    rec = evaluate_claim(claim("ce.beats_telea", CE, TELEA), TOL, root=project)
    line = claim_line(rec)
    assert line.startswith("- `ce.beats_telea`: **reproduced** — reproduced; 3×1 seeds × 400 images; CE − Telea: Δ +")
    assert "(95.0% CI)" in line


def test_a_non_blocking_sanity_gate_is_a_caveat_not_a_veto(project):
    losing = {"type": "sanity", "label": "left mask", "baselines": {"CE itself + 2": "reports/00_x/arrays.npz:ce0"},
              "higher_is_better": False}  # lower is better here: the CE cannot beat itself
    r = evaluate_claim(claim("c", CE, TELEA, gates=[losing]), TOL, root=project)["result"]
    assert r["verdict"].startswith("inconclusive: sanity gate failed")
    r = evaluate_claim(claim("c", CE, TELEA, gates=[{**losing, "blocking": False}]), TOL, root=project)["result"]
    assert r["verdict"] == "reproduced" and r["note"].startswith("caveat: left mask: does not beat")
    with pytest.raises(ConfigError, match="blocking"):
        evaluate_claim(claim("c", CE, TELEA, gates=[{**losing, "blocking": "no"}]), TOL, root=project)


def test_a_plateau_gate_fails_a_curve_still_falling_over_its_last_half():
    falling = 0.5 + np.exp(-STEPS / 3000)  # ends at its best, but still falls ~ 10 % over the last half
    assert convergence_gate(STEPS, falling, TOL).passed
    g = convergence_gate(STEPS, falling, TOL, plateau=True, label="z-search")
    assert not g.passed and "still improving" in g.detail
    flat = 0.5 + np.exp(-STEPS / 100) + 0.002 * np.random.default_rng(3).standard_normal(STEPS.size)
    assert convergence_gate(STEPS, flat, TOL, plateau=True).passed
