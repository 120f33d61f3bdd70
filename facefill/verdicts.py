"""Verdicts: a statistically honest decision for every paper claim.

A *claim* is one sentence or table cell of a paper ("CE beats Telea on PSNR", Table 2) or a probe
of ours, turned into a comparison of two arms on the **same test images**: arm ``a`` and arm ``b``
each give one per-image metric array per training seed (a learning-free method gives one). Its
verdict is exactly one of

- ``reproduced`` -- the confidence interval of mean(a) - mean(b) lies on the paper's side,
- ``not reproduced`` -- it lies on the other side, or (given an equivalence margin) tightly around 0,
- ``inconclusive: <reason>`` -- the data cannot decide: the interval includes 0, a gate failed, or
  two trained models were compared with too few seeds.

All tolerances are the ``verdicts:`` section of params.yaml (:class:`Tolerances`), fixed before
any run looks at test data.

## Statistics: at the level a rerun changes (:func:`seed_level_interval`)

A trained model's score varies with the test images drawn *and* with the training run (seed). The
model behind every interval is two-level, per arm k and seed s, image i:

    y_ksi = mu_k + u_ks + v_ki + e_ksi,   Var u = sigma_uk^2 (seeds), Var e = sigma_ek^2 (seed x image)

with the images shared by both arms (paired: the image effects v_ai - v_bi = w_i, Var w = sigma_w^2).
The difference of the arms' means D has

    Var D = sigma_ua^2/S_a + sigma_ub^2/S_b + sigma_w^2/n + sigma_ea^2/(n S_a) + sigma_eb^2/(n S_b).

Estimated by moments: the residual mean square of each arm's two-way (seed x image) table estimates
sigma_ek^2 with (S_k-1)(n-1) df; the variance of the per-seed means minus MSE_k/n estimates sigma_uk^2
(floored at 0) with S_k-1 df; and the variance of the seed-averaged per-image differences, over n,
estimates sigma_w^2/n plus the seed x image terms, which the seed parts already count, so the MSEs
are subtracted from it once (n-1 df). Welch-Satterthwaite combines the parts into one df, and the
interval is D +- t_{df} SE -- so with 3 seeds whose spread dominates, t has ~2 df, not the z of a
percentile bootstrap. Plain Satterthwaite df run high exactly when a 2-df seed part came out small
(coverage 90-93 % at 3 seeds in simulation), so the df are computed with each seed part scaled to its
chi-square's ``DF_QUANTILE`` bound (the SE itself is unchanged). A learning-free arm is one deterministic row (no seed terms). A trained
arm with fewer than ``min_seeds`` seeds has no estimable seed spread: its claims are not decided.
Coverage is proven by simulation (:func:`simulate_coverage`, ``scripts/coverage_simulation.py``,
``reports/benchmarks/coverage.md``): nominal 95 % intervals cover the true difference in 93-97.5 %
of simulated studies with 3 or 5 seeds, 100 or 1,000 images and seed shares of 0, 50 and 85 %.
The interval is analytic, so a verdict does not depend on a resampling stream.

**p-values.** A directional claim tests D != 0 (two-sided t); a ``similar`` claim tests equivalence
by two one-sided tests, p = 2 max(P(T <= (-margin - D)/SE), P(T >= (margin - D)/SE)), so its
(1 - level) interval lies inside +-margin exactly when p < level.

**The paper's effect** (``paper_effect``: the paper's a - b in metric units). As a replication
test (Simonsohn's "small telescopes"), an interval that lies entirely below the paper's effect is a
decision even when it includes 0: ``not reproduced`` ("smaller than the paper reports"); one that
excludes 0 on the paper's side but also lies below its effect is ``reproduced`` with that note.

**Holm within each paper** (:func:`decide_paper`, statsmodels' ``multipletests``). The inferential
claims of one paper in one claims.json are one family, fixed in advance: every claim counts, whatever
its gates say. The claim ranked k by p is tested at alpha/(m - k + 1) while every better-ranked claim
passed; from the first failure on, the failing level is kept. A claim's interval is the t interval at
its level, so every decisive verdict of a paper holds at family-wise error <= alpha.
``kind: measurement`` claims (parameter counts, multiply-adds, timings of one interleaved run) are
deterministic: they are compared as numbers, outside Holm, and get no interval.

**Budget stability.** With ``require_half_budget``, a claim with a trained arm is decided only when
each trained arm also has its half-budget arrays (``half_arrays``) and the verdict is the same at
half and full budget; both differences are reported.

**Pairing.** Arrays may carry the test-image ids they were scored on (``<key>.ids`` beside ``<key>``
in the same npz, :func:`save_arrays`); both arms' ids must match, or the claim errors.

## Gates (run first, at the plain ``confidence``, never Holm-adjusted)

- **convergence** (:func:`convergence_gate`) on a held-out validation curve: enough points, and the
  final value -- the median of the last ``convergence_window`` points, so one spike cannot decide --
  within ``convergence_max_above_min`` of the best such running median (a run that ends clearly above
  its best fails). No slope is extrapolated: whether more training would change a verdict is asked
  directly by budget stability. The Theil-Sen slope of the last half is reported, not gated.
- **sanity** (:func:`sanity_gate`): the model (all its seeds) beats every trivial baseline with a
  seed-level interval that excludes 0 in the right direction. It asks whether a *model* is broken:
  the blocking gate pools the task and masks the model was trained for; a row where a working model
  loses to a trivial baseline on another mask or metric uses ``blocking: false`` and shows the
  failure as a caveat next to its verdict instead of vetoing it.
"""
from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from .config import check_keys, load_params, repo_root
from .errors import ConfigError, DataError

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


@dataclass
class Tolerances:
    confidence: float = 0.95  # two-sided level of every interval, before Holm
    min_seeds: int = 3  # seeds a trained arm needs before a claim on it is decided
    require_half_budget: bool = True  # decide only claims whose verdict is the same at half and full budget
    convergence_min_points: int = 20
    convergence_window: int = 5  # the final value is the mean of this many last points
    convergence_max_above_min: float = 0.05
    plateau_max_late_gain: float = 0.02  # a `plateau: true` curve may improve at most this much over its last half

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "bool":
                if not isinstance(v, (bool, np.bool_)):
                    raise ConfigError(f"verdicts.{f.name} must be true or false, got {v!r}: fix params.yaml.")
            elif f.type == "int":
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                    raise ConfigError(f"verdicts.{f.name} must be a positive integer, got {v!r}: fix params.yaml.")
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(f"verdicts.{f.name} must be a number, got {v!r}: fix params.yaml.")
                setattr(self, f.name, float(v))
        if not 0 < self.confidence < 1:
            raise ConfigError(f"verdicts.confidence must lie in (0, 1), got {self.confidence}: fix params.yaml.")
        if self.min_seeds < 2:
            raise ConfigError(f"verdicts.min_seeds={self.min_seeds}: a seed spread needs at least 2 seeds; fix params.yaml.")
        if self.convergence_max_above_min < 0 or self.plateau_max_late_gain <= 0:
            raise ConfigError("verdicts.convergence_max_above_min must be >= 0 and plateau_max_late_gain > 0: fix params.yaml.")

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @classmethod
    def from_params(cls, params: Mapping | None = None) -> "Tolerances":
        """From the ``verdicts:`` section of ``params`` (as :func:`facefill.config.load_params` returns; default: params.yaml)."""
        params = load_params() if params is None else params
        sec = params.get("verdicts")
        if not isinstance(sec, Mapping):
            raise ConfigError("params.yaml has no `verdicts:` mapping: add it (confidence, min_seeds, require_half_budget, convergence_*; see facefill/verdicts.py).")
        names = [f.name for f in fields(cls)]
        check_keys(sec, names, "params.yaml verdicts")
        missing = [n for n in names if n not in sec]
        if missing:
            raise ConfigError(f"params.yaml verdicts: is missing {missing}: add them (no silent defaults for how claims are decided).")
        return cls(**sec)


@dataclass
class GateResult:
    name: str
    passed: bool
    detail: str
    values: dict  # numbers behind the detail; values["failures"]: the short reasons for the verdict


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------

@dataclass
class Interval:
    """mean(a) - mean(b) with its seed-level standard error, Satterthwaite df and variance parts."""

    diff: float
    se: float
    df: float
    parts: dict  # the three variance terms: seeds of a, seeds of b, images (incl. seed x image noise)

    def ci(self, level: float) -> tuple[float, float]:
        """The (1 - level) two-sided t interval."""
        q = float(stats.t.ppf(1 - level / 2, self.df)) if self.se > 0 else 0.0
        return self.diff - q * self.se, self.diff + q * self.se

    def p_value(self) -> float:
        """Two-sided p of 'difference != 0'."""
        if self.se == 0:
            return 1.0 if self.diff == 0 else 0.0
        return float(2 * stats.t.sf(abs(self.diff) / self.se, self.df))

    def equivalence_p(self, margin: float) -> float:
        """Two one-sided tests of |difference| < margin: p < level iff the (1 - level) interval lies inside +-margin."""
        if self.se == 0:
            return 0.0 if abs(self.diff) < margin else 1.0
        lo = stats.t.cdf((-margin - self.diff) / self.se, self.df)
        hi = stats.t.sf((margin - self.diff) / self.se, self.df)
        return float(min(1.0, 2 * max(lo, hi)))


DF_QUANTILE = 0.35  # see _variance_parts; chosen by simulate_coverage over the settings of reports/benchmarks/coverage.md


def _chi2_inflation(s: int) -> float:
    """(S-1)/chi2_{S-1}(DF_QUANTILE): how much larger a seed variance may be than its S-seed estimate."""
    return (s - 1) / float(stats.chi2.ppf(DF_QUANTILE, s - 1))


def _variance_parts(a: np.ndarray, b: np.ndarray) -> tuple:
    """Vectorised over leading axes: a (..., S_a, n), b (..., S_b, n) → diff, (A, B, W), df."""
    n = a.shape[-1]

    def seed_term(x):
        s = x.shape[-2]
        m = x.mean(-1)  # per-seed means
        if s < 2:
            z = np.zeros(x.shape[:-2])
            return m.mean(-1), z, z, s
        resid = x - m[..., None] - x.mean(-2, keepdims=True) + x.mean((-2, -1), keepdims=True)
        # seed x image noise (none to estimate for a per-seed quantity, n = 1: e.g. an area under a curve)
        mse = (resid ** 2).sum((-2, -1)) / ((s - 1) * (n - 1)) if n > 1 else np.zeros(x.shape[:-2])
        return m.mean(-1), m.var(-1, ddof=1) / s, mse, s  # sigma_u^2/S + sigma_e^2/(nS): unbiased, S-1 df

    mean_a, seed_a, mse_a, sa = seed_term(a)
    mean_b, seed_b, mse_b, sb = seed_term(b)
    d = a.mean(-2) - b.mean(-2)  # seed-averaged per-image differences
    # their variance holds sigma_w^2 + the seed x image noise the seed terms already count: subtract it once
    noise = (mse_a / sa if sa > 1 else 0.0) + (mse_b / sb if sb > 1 else 0.0)
    images = np.maximum(d.var(-1, ddof=1) - noise, 0.0) / n if n > 1 else np.zeros(d.shape[:-1])
    var = seed_a + seed_b + images
    # Satterthwaite's df from the estimated parts run high exactly when a 2-df seed part came out small
    # (the SE is then too small as well); the df use each seed part scaled to its chi-square's
    # DF_QUANTILE bound, which restores coverage at 3 seeds (simulate_coverage; the SE is unchanged)
    up_a = seed_a * _chi2_inflation(sa) if sa > 1 else 0.0
    up_b = seed_b * _chi2_inflation(sb) if sb > 1 else 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        denom = ((up_a ** 2 / (sa - 1) if sa > 1 else 0.0) + (up_b ** 2 / (sb - 1) if sb > 1 else 0.0)
                 + (images ** 2 / (n - 1) if n > 1 else 0.0))
        df = np.where(denom > 0, (up_a + up_b + images) ** 2 / np.where(denom > 0, denom, 1.0), np.inf)
    return mean_a - mean_b, (seed_a, seed_b, images), df


def seed_level_interval(a, b) -> Interval:
    """Seed-level Welch-Satterthwaite interval of mean(a) - mean(b) (see the module docstring).

    ``a``: (seeds_a, images) or (images,); ``b`` likewise, on the same images (a learning-free
    method: one row). Images are paired within each seed.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.size == 0 or b.size == 0:
        raise DataError(f"seed_level_interval needs (seeds, images) arrays on the same images, got {a.shape} and {b.shape}.")
    diff, parts, df = _variance_parts(a, b)
    var = float(sum(parts))
    return Interval(float(diff), math.sqrt(var), float(df),
                    {"seeds_a": float(parts[0]), "seeds_b": float(parts[1]), "images": float(parts[2])})


def simulate_coverage(n_studies: int, seeds: tuple[int, int], n_images: int, seed_share: float, level: float = 0.05,
                      rng_seed: int = 0, method: str = "t") -> float:
    """Share of simulated studies whose (1 - level) interval covers the true difference.

    Two-level model as in the module docstring with sigma_w = sigma_e = 1; ``seeds`` = (S_a, S_b),
    S_b = 1 meaning a learning-free arm b (no seed terms); ``seed_share``: the seed terms' share of
    Var D at this design. ``method``: ``t`` (ours) or ``z`` (the same SE with a normal quantile, as a
    percentile bootstrap behaves: the negative control a coverage test must be able to fail).
    """
    sa, sb = seeds
    rng = np.random.default_rng(rng_seed)
    inv = 1 / sa + (1 / sb if sb > 1 else 0.0)
    rest = (1.0 + inv) / n_images  # sigma_w^2/n + sigma_e^2 (1/S_a + 1/S_b)/n
    sigma_u = math.sqrt(seed_share / (1 - seed_share) * rest / inv) if seed_share > 0 else 0.0
    covered = 0
    for start in range(0, n_studies, 100):  # chunks bound memory at 1,000 images x 5 seeds
        k = min(100, n_studies - start)
        w = rng.standard_normal((k, 1, n_images))
        a = w + sigma_u * rng.standard_normal((k, sa, 1)) + rng.standard_normal((k, sa, n_images))
        if sb > 1:
            b = sigma_u * rng.standard_normal((k, sb, 1)) + rng.standard_normal((k, sb, n_images))
        else:
            b = np.zeros((k, 1, n_images))
        diff, parts, df = _variance_parts(a, b)
        se = np.sqrt(sum(parts))
        q = stats.t.ppf(1 - level / 2, df) if method == "t" else stats.norm.ppf(1 - level / 2)
        covered += int((np.abs(diff) <= q * se).sum())  # the true difference is 0
    return covered / n_studies


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values, in the input order (statsmodels' step-down)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(pvalues, np.float64)
    return multipletests(p, method="holm")[1] if p.size else p


def holm_levels(pvalues: Sequence[float], alpha: float) -> np.ndarray:
    """The level each test is decided at: alpha/(m-k+1) for rank k, frozen at the first failure.

    Hand-written because the intervals need the level itself, which statsmodels does not return."""
    p = np.asarray(pvalues, np.float64)
    levels, failed = np.empty(p.size), None
    for k, i in enumerate(np.argsort(p, kind="stable")):  # k is 0-based: alpha/(m - k)
        levels[i] = level = failed if failed is not None else alpha / (p.size - k)
        if failed is None and p[i] > level:
            failed = level  # step-down stops: this and every later claim keep this level
    return levels

# ---------------------------------------------------------------------------------------------
# Gates
# ---------------------------------------------------------------------------------------------

def convergence_gate(steps, values, tol: Tolerances, name: str = "convergence", *, higher_is_better: bool = False,
                     min_points: int | None = None, label: str = "", smooth: int | None = None,
                     plateau: bool = False) -> GateResult:
    """Did a validation curve (lower is better, unless ``higher_is_better``) end at its best?

    The final value is the median of the last ``smooth`` points (default ``convergence_window``) and
    the best is the best such running median anywhere on the curve, so neither one spike (up or down)
    nor the noise of a share of n samples decides. The gate fails when the final value trails the best by more than
    ``convergence_max_above_min`` (relative) or the curve has fewer than ``min_points`` points. No
    slope is extrapolated (whether more training changes a verdict is budget stability's question);
    the Theil-Sen slope of the curve's last half is reported as its change over that half.

    ``plateau``: also require that change to stay below ``plateau_max_late_gain`` -- for a curve whose
    budget cannot be halved cheaply or that should simply be run until it is flat (the z-search
    objective of paper 003: iterations until it plateaus).
    """
    s, v = np.asarray(steps, np.float64).ravel(), np.asarray(values, np.float64).ravel()
    if s.shape != v.shape:
        raise DataError(f"convergence gate {label!r}: {s.size} steps but {v.size} values.")
    keep = np.isfinite(s) & np.isfinite(v)  # validation is logged every k steps only: NaN rows are skipped
    order = np.argsort(s[keep], kind="stable")
    s, v = s[keep][order], v[keep][order]
    need, who = tol.convergence_min_points if min_points is None else int(min_points), f"{label}: " if label else ""
    window = tol.convergence_window if smooth is None else smooth
    if isinstance(window, bool) or int(window) != window or window < 1:
        raise ConfigError(f"convergence gate {label!r}: smooth={window!r} must be a whole number of points >= 1.")
    window = int(window)
    if s.size < max(need, window + 1):
        why = f"only {s.size} validation points, need {max(need, window + 1)}"
        return GateResult(name, False, who + why, {"n_points": int(s.size), "min_points": need, "failures": [who + why]})
    trailing = np.median(np.lib.stride_tricks.sliding_window_view(v, window), axis=1)  # one spike cannot move a median
    final, best = float(trailing[-1]), float(trailing.max() if higher_is_better else trailing.min())
    sign = 1.0 if higher_is_better else -1.0
    behind = sign * (best - final) / max(abs(best), 1e-12)  # how far the final value trails the best, relative
    half = s >= s[0] + (s[-1] - s[0]) / 2
    slope = float(stats.theilslopes(v[half], s[half])[0]) if half.sum() >= 2 and np.ptp(s[half]) > 0 else 0.0
    change = sign * slope * float(np.ptp(s[half])) / max(abs(final), 1e-12)  # improvement over the last half
    failures = []
    if behind > tol.convergence_max_above_min:
        failures.append(f"{who}final {final:.4g} trails the best {best:.4g} by {behind:.1%} (max {tol.convergence_max_above_min:.0%})")
    if plateau and change > tol.plateau_max_late_gain:
        failures.append(f"{who}still improving: {change:.1%} over the last half of the run (Theil-Sen; max {tol.plateau_max_late_gain:.0%})")
    detail = ("; ".join(failures) if failures else f"{who}ends at its best") + (
        f" -- {s.size} points, medians of {window}: final {final:.4g} vs best {best:.4g} ({behind:+.1%}); "
        f"Theil-Sen over the last half: {change:+.1%}")
    vals = {"n_points": int(s.size), "min_points": need, "window": window, "final": final, "best": best,
            "behind_best": float(behind), "last_half_change": float(change), "higher_is_better": bool(higher_is_better),
            "failures": failures}
    return GateResult(name, not failures, detail, vals)


def sanity_gate(model, baselines: Mapping[str, Any], higher_is_better: bool, tol: Tolerances, name: str = "sanity") -> GateResult:
    """Does the model (all its seeds) beat every trivial baseline (seed-level interval excludes 0)?"""
    m = np.atleast_2d(np.asarray(model, np.float64))  # (seeds, images)
    if not baselines:
        raise ConfigError("a sanity gate needs at least one baseline (e.g. mean colour, mean training patch).")
    per, failures, parts = {}, [], []
    for bname, base in baselines.items():
        b = np.asarray(base, np.float64)
        if b.shape != m.shape[1:]:
            raise DataError(f"sanity gate: baseline {bname!r} has shape {b.shape}, the model {m.shape[1:]}: score both on the same images.")
        iv = seed_level_interval(m, b)
        lo, hi = iv.ci(tol.alpha)
        ok = lo > 0 if higher_is_better else hi < 0
        per[bname] = {"delta": iv.diff, "ci_low": lo, "ci_high": hi, "passed": bool(ok)}
        parts.append(f"{bname} {iv.diff:+.4g} [{lo:+.4g}, {hi:+.4g}]")
        if not ok:
            failures.append(f"does not beat {parts[-1]}")
    detail = ("; ".join(failures) if failures else "beats every baseline") + " -- model - baseline: " + ", ".join(parts)
    return GateResult(name, not failures, detail, {"baselines": per, "higher_is_better": bool(higher_is_better), "failures": failures})


# ---------------------------------------------------------------------------------------------
# Claim specs: validation and loading
# ---------------------------------------------------------------------------------------------

CLAIM_KEYS = {"id", "paper", "statement", "source", "metric", "higher_is_better", "kind", "direction", "margin",
              "paper_value", "paper_effect", "a", "b", "gates", "link", "result"}  # "result": a stored record may be re-evaluated
KINDS = ("directional", "similar", "measurement")
REQUIRED = ("id", "paper", "statement", "source", "metric", "higher_is_better", "kind", "a", "b")
ARM_KEYS = {"label", "trained", "arrays", "half_arrays"}
GATE_KEYS = {"convergence": {"type", "label", "history", "step_column", "column", "higher_is_better", "min_points", "smooth",
                             "plateau"},
             "sanity": {"type", "label", "model", "baselines", "higher_is_better", "blocking"}}


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def validate_spec(spec: Mapping) -> None:
    """Raise ConfigError, naming the claim, for any key or value the schema does not allow."""
    cid = spec.get("id", "?") if isinstance(spec, Mapping) else "?"

    def bad(msg):
        raise ConfigError(f"claim {cid!r}: {msg} (see the claim-spec schema in facefill/verdicts.py).")

    if not isinstance(spec, Mapping):
        bad(f"a claim spec must be a mapping, got {type(spec).__name__}")
    check_keys(spec, CLAIM_KEYS, f"claim {cid!r}")
    for k in REQUIRED:
        if k not in spec:
            bad(f"missing required key {k!r}")
    for k in ("id", "paper", "statement", "source", "metric"):
        if not isinstance(spec[k], str) or not spec[k].strip():
            bad(f"{k} must be a non-empty string")
    if not isinstance(spec["higher_is_better"], bool):
        bad("higher_is_better must be true or false")
    margin = spec.get("margin")
    if margin is not None and not (_is_num(margin) and margin > 0):
        bad(f"margin must be null or a positive number in metric units, got {margin!r}")
    if spec["kind"] in ("directional", "measurement"):
        if spec.get("direction") not in ("greater", "less"):
            bad(f"a {spec['kind']} claim needs direction: greater|less (the sign of a - b), got {spec.get('direction')!r}")
    elif spec["kind"] == "similar":
        if margin is None:
            bad("a similar claim needs a margin")
        if spec.get("direction") is not None:
            bad("a similar claim has no direction")
    else:
        bad(f"kind must be one of {KINDS}, got {spec['kind']!r}")
    effect = spec.get("paper_effect")
    if effect is not None and not (_is_num(effect) and spec["kind"] == "directional"):
        bad(f"paper_effect (the paper's a - b, metric units) must be a number on a directional claim, got {effect!r}")
    pv = spec.get("paper_value")
    if pv is not None and not (_is_num(pv) or isinstance(pv, str)):
        bad(f"paper_value must be null, a number or a string, got {pv!r}")
    if "link" in spec and not isinstance(spec["link"], str):
        bad("link must be a path (string) relative to the stage's report folder")
    for arm in ("a", "b"):
        x = spec[arm]
        if not isinstance(x, Mapping):
            bad(f"{arm} must be a mapping with label, trained, arrays")
        check_keys(x, ARM_KEYS, f"claim {cid!r} arm {arm}")
        if not isinstance(x.get("label"), str) or not isinstance(x.get("trained"), bool):
            bad(f"{arm} needs label (string) and trained (true/false)")
        for key in ("arrays", "half_arrays"):
            refs = x.get(key, ["-"])
            if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
                bad(f"{arm}.{key} must be a non-empty list of 'path.npz:key' or 'path.npy' references, one per seed")
        if "half_arrays" in x and not x["trained"]:
            bad(f"{arm}.half_arrays: only a trained arm has a half-budget run")
    gates = spec.get("gates", [])
    if not isinstance(gates, list):
        bad("gates must be a list")
    for g in gates:
        if not isinstance(g, Mapping) or g.get("type") not in GATE_KEYS:
            bad(f"each gate needs type: convergence|sanity, got {g!r}")
        check_keys(g, GATE_KEYS[g["type"]], f"claim {cid!r} {g['type']} gate")
        need = ("history", "column") if g["type"] == "convergence" else ("baselines",)
        for k in need:
            if k not in g:
                bad(f"a {g['type']} gate needs {k!r}")
        if g["type"] == "sanity" and (not isinstance(g["baselines"], Mapping) or not g["baselines"]):
            bad("sanity gate baselines must map names to array references")
        if not isinstance(g.get("blocking", True), bool):
            bad("a sanity gate's blocking must be true (a failure makes the claim inconclusive) or false (a caveat)")


def _file(ref: str, root: Path, cid: str) -> Path:
    p = root / ref
    if not p.is_file():
        raise DataError(f"claim {cid!r}: {p} not found: rerun the stage that writes it (`dvc repro`).")
    return p


def load_array(ref: str, root: Path, cid: str = "?", cache: dict | None = None) -> np.ndarray:
    """A per-image array from 'path.npz:key' or 'path.npy' (paths relative to the project root)."""
    cache = {} if cache is None else cache
    path, key = ref.rsplit(":", 1) if ".npz:" in ref else (ref, None)
    if path.endswith(".npz") and key is None or not path.endswith((".npz", ".npy")):
        raise ConfigError(f"claim {cid!r}: array reference {ref!r} must be 'path.npz:key' or 'path.npy'.")
    if path not in cache:
        p = _file(path, root, cid)
        if key is None:
            cache[path] = np.load(p, allow_pickle=False)
        else:
            with np.load(p, allow_pickle=False) as z:
                cache[path] = {k: z[k] for k in z.files}
    arr = cache[path]
    if key is not None:
        if key not in arr:
            raise DataError(f"claim {cid!r}: {path} has no array {key!r} (it has {sorted(arr)}): rerun the stage that writes it.")
        arr = arr[key]
    arr = np.asarray(arr, np.float64)
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise DataError(f"claim {cid!r}: {ref} must be a finite per-image 1-D array, got shape {arr.shape}: rerun the stage that writes it.")
    return arr


IDS_SUFFIX = ".ids"  # the test-image ids of array <key> are stored as <key>.ids in the same npz


def save_arrays(path, arrays: Mapping[str, Any], ids: Mapping[str, Any]) -> Path:
    """Write per-image ``arrays`` to an npz with the test-image ids each was scored on.

    ``ids`` maps each array key (or ``"*"`` for all of them) to its ids (strings or integers, one per
    image); a paired claim later checks that both arms' ids match (:func:`load_ids`).
    """
    path = Path(path)
    out = {}
    for k, v in arrays.items():
        i = ids.get(k, ids.get("*"))
        if i is None:
            raise ConfigError(f"save_arrays: no test-image ids for {k!r}: give ids[{k!r}] or ids['*'].")
        i = np.asarray(i)
        if i.shape != np.shape(v):
            raise DataError(f"save_arrays: {k!r} has {np.shape(v)} values but {i.shape} ids.")
        out[k], out[k + IDS_SUFFIX] = np.asarray(v), i.astype(str)
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **out)
    return path


def load_ids(ref: str, root: Path, cid: str = "?", cache: dict | None = None) -> np.ndarray | None:
    """The test-image ids stored beside an 'path.npz:key' array, or None (arrays written before ids)."""
    if ".npz:" not in ref:
        return None
    path, key = ref.rsplit(":", 1)
    load_array(ref, root, cid, cache)  # fills the cache and checks the array
    z = cache[path]
    return np.asarray(z[key + IDS_SUFFIX]).astype(str) if key + IDS_SUFFIX in z else None


def _stack(refs, root, cid, cache) -> tuple[np.ndarray, np.ndarray | None]:
    arrs = [load_array(r, root, cid, cache) for r in refs]
    if len({a.size for a in arrs}) != 1:
        raise DataError(f"claim {cid!r}: arrays {refs} have different lengths {[a.size for a in arrs]}: score every seed on the same images.")
    ids = [load_ids(r, root, cid, cache) for r in refs]
    known = [i for i in ids if i is not None]
    for r, i in zip(refs, ids):
        if i is not None and not np.array_equal(i, known[0]):
            raise DataError(f"claim {cid!r}: {r} was scored on other test images than {refs[0]} (ids differ): score every seed on the same images.")
    return np.stack(arrs), (known[0] if known else None)


def _check_pairing(cid: str, ids_a, ids_b, n_a: int, n_b: int) -> bool:
    """Paired arms must be scored on the same images: equal ids when both arms have them. True when checked."""
    if n_a != n_b:
        raise DataError(f"claim {cid!r}: a has {n_a} images, b {n_b}: score both arms on the same test images.")
    if ids_a is None or ids_b is None:
        return False
    if not np.array_equal(ids_a, ids_b):
        bad = int(np.sum(ids_a != ids_b))
        raise DataError(f"claim {cid!r}: the arms were scored on different test images or in another order ({bad} of {n_a} ids differ): "
                        "pair them by id before comparing (rerun the stage).")
    return True


def _run_gate(g: Mapping, i: int, spec: Mapping, tol: Tolerances, root: Path, cache: dict) -> GateResult:
    cid, label = spec["id"], g.get("label", "")
    if g["type"] == "convergence":
        path = _file(g["history"], root, cid)
        h, cols = pd.read_csv(path), (g.get("step_column", "step"), g["column"])
        if any(c not in h.columns for c in cols):
            raise DataError(f"claim {cid!r}: {path} has no column(s) {[c for c in cols if c not in h.columns]} (it has {list(h.columns)}).")
        h = h.dropna(subset=[cols[1]])
        return convergence_gate(h[cols[0]], h[cols[1]], tol, higher_is_better=bool(g.get("higher_is_better", False)),
                                min_points=g.get("min_points"), label=label, smooth=g.get("smooth"),
                                plateau=bool(g.get("plateau", False)))
    model, _ = _stack(g.get("model", spec["a"]["arrays"]), root, cid, cache)  # default: arm a
    base = {k: load_array(r, root, cid, cache) for k, r in g["baselines"].items()}
    res = sanity_gate(model, base, bool(g.get("higher_is_better", spec["higher_is_better"])), tol)
    if not g.get("blocking", True):
        res.values["blocking"] = False
    if label:
        res.detail, res.values["failures"] = f"{label}: {res.detail}", [f"{label}: {f}" for f in res.values["failures"]]
    return res


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------

SMALLER_THAN_PAPER = "smaller than the paper reports"
CHANGES_WITH_BUDGET = "verdict changes with the budget"


def decide(kind: str, ci_low: float, ci_high: float, direction: str | None = None, margin: float | None = None,
           paper_effect: float | None = None) -> str:
    """The statistical verdict from an interval of a - b (gates, seeds and budgets are checked by the caller).

    directional: reproduced if the CI excludes 0 on the paper's side; not reproduced if it excludes 0
    on the other side, lies inside +-margin, or lies entirely below the paper's effect (small
    telescopes: "smaller than the paper reports", even when it includes 0).
    similar: reproduced iff the CI lies inside +-margin, not reproduced iff it lies entirely outside.
    measurement: ``ci_low == ci_high`` is the measured difference; on the paper's side (beyond the
    margin when one is given) or not.
    """
    if kind == "similar":
        if -margin < ci_low and ci_high < margin:
            return REPRODUCED
        if ci_low > margin or ci_high < -margin:
            return NOT_REPRODUCED
        return f"inconclusive: CI crosses the margin ±{margin:g}"
    lo, hi = (ci_low, ci_high) if direction == "greater" else (-ci_high, -ci_low)  # > 0: on the paper's side
    if kind == "measurement":
        return REPRODUCED if lo > (margin or 0.0) else NOT_REPRODUCED
    if lo > 0:
        return REPRODUCED
    if hi < 0 or (margin is not None and -margin < lo and hi < margin):
        return NOT_REPRODUCED
    if paper_effect is not None and hi < abs(paper_effect):
        return f"{NOT_REPRODUCED}: {SMALLER_THAN_PAPER} ({abs(paper_effect):+g})"
    return "inconclusive: CI includes 0"


def verdict_category(verdict: str) -> str:
    """``reproduced``, ``not reproduced`` or ``inconclusive``: the part before any reason."""
    return verdict.split(":", 1)[0]


@dataclass
class _Evidence:  # everything but the level: computed once, decided after Holm
    spec: dict
    a: np.ndarray
    b: np.ndarray
    interval: Interval | None  # None for a measurement
    half: Interval | None  # at half budget, when every trained arm has half_arrays
    p: float | None  # None: not an inferential claim (outside Holm)
    gates: list
    ids_checked: bool


def _p(spec: Mapping, iv: Interval) -> float:
    return iv.equivalence_p(spec["margin"]) if spec["kind"] == "similar" else iv.p_value()


def _gather(spec: Mapping, tol: Tolerances, root: Path, cache: dict) -> _Evidence:
    validate_spec(spec)
    cid = spec["id"]
    (a, ids_a), (b, ids_b) = _stack(spec["a"]["arrays"], root, cid, cache), _stack(spec["b"]["arrays"], root, cid, cache)
    checked = _check_pairing(cid, ids_a, ids_b, a.shape[1], b.shape[1])
    gates = [_run_gate(g, i, spec, tol, root, cache) for i, g in enumerate(spec.get("gates", []))]
    clean = {k: v for k, v in spec.items() if k != "result"}
    if spec["kind"] == "measurement":
        if a.std(0).max() > 0 or b.std(0).max() > 0:
            raise DataError(f"claim {cid!r}: a measurement claim needs deterministic arrays (equal across seeds); use kind: directional.")
        return _Evidence(clean, a, b, None, None, None, gates, checked)
    iv = seed_level_interval(a, b)
    half = None
    trained = [k for k in ("a", "b") if spec[k]["trained"]]
    if trained and all("half_arrays" in spec[k] for k in trained):
        ha = _stack(spec["a"]["half_arrays"], root, cid, cache)[0] if spec["a"]["trained"] else a
        hb = _stack(spec["b"]["half_arrays"], root, cid, cache)[0] if spec["b"]["trained"] else b
        half = seed_level_interval(ha, hb)
    return _Evidence(clean, a, b, iv, half, _p(spec, iv), gates, checked)


def _decide(ev: _Evidence, tol: Tolerances, level: float | None, p_holm: float | None) -> dict:
    s = ev.spec
    # a non-blocking gate (``blocking: false``: e.g. a working model that loses to a trivial baseline on
    # another mask or metric than it was trained for) is a caveat next to the verdict, not a veto
    blocking = [g.passed or g.values.get("blocking", True) for g in ev.gates]
    failed = [g for g, b in zip(ev.gates, blocking) if not g.passed and b]
    caveats = [f"caveat: {'; '.join(g.values['failures'])}" for g, b in zip(ev.gates, blocking) if not b]
    a_mean, b_mean = float(ev.a.mean()), float(ev.b.mean())
    common = {"a_mean": a_mean, "b_mean": b_mean, "diff": a_mean - b_mean, "n_images": int(ev.a.shape[1]),
              "n_seeds_a": int(len(ev.a)), "n_seeds_b": int(len(ev.b)), "gates": [asdict(g) for g in ev.gates],
              "ids_checked": ev.ids_checked}
    if ev.interval is None:  # a measurement: the numbers themselves, no interval, outside Holm
        verdict = decide("measurement", a_mean - b_mean, a_mean - b_mean, s.get("direction"), s.get("margin"))
        if failed:
            verdict = "inconclusive: " + "; ".join(f"{g.name} gate failed ({'; '.join(g.values['failures'])})" for g in failed)
        result = {**common, "ci_low": None, "ci_high": None, "p_value": None, "p_holm": None, "alpha": None,
                  "interval": "measurement (deterministic: no interval)", "verdict": verdict}
        return {**s, "result": _jsonable(result)}
    lo, hi = ev.interval.ci(level)
    stat = decide(s["kind"], lo, hi, s.get("direction"), s.get("margin"), s.get("paper_effect"))
    trained = [k for k in ("a", "b") if s[k]["trained"]]
    few = [(len(x), s[k]["label"]) for k, x in (("a", ev.a), ("b", ev.b)) if s[k]["trained"] and len(x) < tol.min_seeds]
    half = {}
    if ev.half is not None:
        hlo, hhi = ev.half.ci(level)
        half = {"half_diff": ev.half.diff, "half_ci_low": hlo, "half_ci_high": hhi,
                "half_verdict": decide(s["kind"], hlo, hhi, s.get("direction"), s.get("margin"), s.get("paper_effect"))}
    if failed:
        verdict = "inconclusive: " + "; ".join(f"{g.name} gate failed ({'; '.join(g.values['failures'])})" for g in failed)
    elif few:
        n, label = few[0]
        verdict = (f"inconclusive: {n} seed(s) of {label}, need {tol.min_seeds} per trained arm "
                   f"(the seed-to-seed spread decides; {verdict_category(stat)} on these seeds)")
    elif trained and tol.require_half_budget and ev.half is None:
        verdict = f"inconclusive: no half-budget run, so budget stability is unknown ({verdict_category(stat)} at full budget)"
    elif half and verdict_category(half["half_verdict"]) != verdict_category(stat):
        verdict = f"inconclusive: {CHANGES_WITH_BUDGET} ({half['half_verdict']} at half, {stat} at full)"
    else:
        verdict = stat
    notes = []
    pe = s.get("paper_effect")
    if pe is not None and verdict == REPRODUCED:
        top = hi if s.get("direction") == "greater" else -lo
        if top < abs(pe):
            notes.append(f"{SMALLER_THAN_PAPER} ({abs(pe):+g})")
    note = "; ".join(notes + caveats)
    result = {**common, "ci_low": lo, "ci_high": hi, "p_value": ev.p, "p_holm": float(p_holm), "alpha": float(level),
              "se": ev.interval.se, "df": ev.interval.df, "variance_parts": ev.interval.parts,
              "interval": f"seed-level t, {ev.interval.df:.1f} df", **half, "note": note, "verdict": verdict}
    return {**s, "result": _jsonable(result)}


def _root(root) -> Path:
    return Path(root) if root is not None else repo_root()


def evaluate_claim(spec: Mapping, tol: Tolerances, root=None, alpha: float | None = None) -> dict:
    """One claim on its own, at level ``alpha`` (default 1 - confidence, i.e. no multiplicity correction)."""
    ev = _gather(spec, tol, _root(root), {})
    return _decide(ev, tol, tol.alpha if alpha is None else alpha, ev.p)


def decide_paper(specs: Sequence[Mapping], tol: Tolerances, root=None, cache: dict | None = None) -> list[dict]:
    """The claims of one paper, decided together: Holm's step-down over its inferential claims."""
    if len({s.get("paper") for s in specs}) > 1:
        raise ConfigError(f"decide_paper got claims of several papers {sorted({str(s.get('paper')) for s in specs})}: use evaluate_claims.")
    cache = {} if cache is None else cache
    order = sorted(range(len(specs)), key=lambda i: str(specs[i].get("id")))  # ties in p are broken by id
    evs = {i: _gather(specs[i], tol, _root(root), cache) for i in order}
    family = [i for i in order if evs[i].p is not None]
    levels, adj = holm_levels([evs[i].p for i in family], tol.alpha), holm([evs[i].p for i in family])
    at = {i: (levels[j], adj[j]) for j, i in enumerate(family)}
    return [_decide(evs[i], tol, *at.get(i, (None, None))) for i in range(len(specs))]


def evaluate_claims(specs: Sequence[Mapping], tol: Tolerances, root=None) -> list[dict]:
    """Every claim, Holm within each paper; records in the input order, deterministic."""
    ids = [s.get("id") if isinstance(s, Mapping) else None for s in specs]
    dup = sorted({str(i) for i in ids if ids.count(i) > 1})
    if dup:
        raise ConfigError(f"duplicate claim id(s) {dup}: give every claim a unique id.")
    papers: dict[Any, list[int]] = {}
    for i, s in enumerate(specs):
        validate_spec(s)
        papers.setdefault(s["paper"], []).append(i)
    out, cache = [None] * len(specs), {}
    for idx in papers.values():
        for i, rec in zip(idx, decide_paper([specs[i] for i in idx], tol, root, cache)):
            out[i] = rec
    return out


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------

def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.bool_, bool)):
        return bool(x)
    if isinstance(x, (np.integer, int)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(x) else None  # JSON has no NaN
    return str(x) if isinstance(x, Path) else x


def write_claims(records: Sequence[Mapping], path) -> Path:
    """claims.json: sorted keys, indent 2, floats at full precision (repr round-trips exactly; the
    scorecard compares recomputed numbers with a 1e-9 relative tolerance)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(_jsonable(list(records)), sort_keys=True, indent=2, allow_nan=False) + "\n")
    return path


def read_claims(path) -> list[dict]:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read claims ({e}): rerun the stage that writes it (`dvc repro`).") from None
    if not isinstance(data, list):
        raise DataError(f"{path} must hold a JSON list of claim records: write it with facefill.verdicts.write_claims.")
    return data


def _md(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _g(x) -> str:
    return "–" if x is None else f"{x:.4g}" if _is_num(x) else _md(x)


def _interval_text(r: Mapping) -> str:
    if r.get("ci_low") is None:
        return f"Δ {r['diff']:+.4g} (measured; deterministic)"
    return f"Δ {r['diff']:+.4g} [{r['ci_low']:+.4g}, {r['ci_high']:+.4g}] ({1 - r['alpha']:.1%} CI)"


def plain_line(rec: Mapping) -> str:
    """One plain sentence: the verdict, at which budgets, on how much data, the difference and its interval."""
    r = rec["result"]
    budget = ""
    if "half_verdict" in r:
        if CHANGES_WITH_BUDGET in r["verdict"]:  # the verdict already names both budgets' verdicts
            budget = f" (Δ {r['half_diff']:+.4g} at half budget)"
        elif verdict_category(r["half_verdict"]) == verdict_category(r["verdict"]):
            budget = f", same verdict at half budget (Δ {r['half_diff']:+.4g})"
        else:
            budget = f"; at half budget {r['half_verdict']} (Δ {r['half_diff']:+.4g})"
    note = f"; {r['note']}" if r.get("note") else ""
    return (f"{r['verdict']}{budget}; {r['n_seeds_a']}×{r['n_seeds_b']} seeds × {r['n_images']} images; "
            f"{rec['a']['label']} − {rec['b']['label']}: {_interval_text(r)}{note}")


def claim_row(rec: Mapping, link_dir: str | None = None) -> list[str]:
    """One table row: claim | tested | metric | paper | ours | gates | verdict."""
    r, a, b = rec["result"], rec["a"], rec["b"]
    cid = f"[`{rec['id']}`]({link_dir})" if link_dir else f"`{rec['id']}`"
    if link_dir and rec.get("link"):
        cid += f" ([figure/table]({link_dir.rstrip('/')}/{rec['link']}))"
    ours = (f"{_md(a['label'])} {_g(r['a_mean'])} vs {_md(b['label'])} {_g(r['b_mean'])}: {_interval_text(r)}; "
            f"{r['n_seeds_a']}×{r['n_seeds_b']} seeds, {r['n_images']} images"
            + (f"; half budget Δ {r['half_diff']:+.4g}" if "half_diff" in r else ""))
    gates = ", ".join(("✓ " if g["passed"] else "✗ ") + g["name"] for g in r["gates"]) or "–"
    metric = f"{_md(rec['metric'])} {'↑' if rec['higher_is_better'] else '↓'}"
    verdict = r["verdict"] if r["verdict"].startswith("inconclusive") else f"**{r['verdict']}**"
    if r.get("note"):
        verdict += f" ({r['note']})"
    tested = _md(rec["statement"]) + ("" if rec["statement"] == rec["source"] else f" ({_md(rec['source'])})")
    return [cid, tested, metric, _g(rec.get("paper_value")), ours, gates, _md(verdict)]


def claim_line(record: Mapping) -> str:
    """One Markdown bullet of a decided claim, for a notebook's summary: id and its plain line."""
    return f"- `{record['id']}`: **{verdict_category(record['result']['verdict'])}** — {plain_line(record)}."


def render_claims_markdown(records: Sequence[Mapping], link_dir: str | None = None) -> str:
    head = ["claim", "tested (source)", "metric", "paper", "ours: a vs b, Δ = a − b [CI]", "gates", "verdict"]
    rows = [head, ["---"] * len(head)] + [claim_row(r, link_dir) for r in records]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"
