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

## Statistics

**Two-level paired bootstrap** (:func:`two_level_bootstrap`). A trained model's score varies with
the test images drawn *and* with the training run (seed). Each of ``n_boot`` resamples draws the
seeds of each arm with replacement -- independently, seed 0 of A has nothing to do with seed 0 of
B -- then one set of image indices with replacement, shared by both arms (paired: both arms are
scored on the same images, which cancels the per-image difficulty), and records
mean(a) - mean(b). With one seed per arm this is the ordinary paired bootstrap
(:func:`paired_bootstrap`). With 3-5 seeds the seed level is crude (it underestimates the seed
variance by about (S-1)/S), one more reason two trained models need ``min_seeds`` seeds each.

**Intervals and p-values.** Intervals are percentile intervals of the bootstrap distribution d.
A directional claim tests d != 0: p = 2 min(P(d <= 0), P(d >= 0)). A ``similar`` claim tests
equivalence: p = 2 max(P(d <= -margin), P(d >= margin)). Both are floored at 1/(n_boot + 1).
The (1 - level) percentile interval excludes 0 (lies inside +-margin) exactly when p < level, up
to quantile interpolation, so interval and p-value tell the same story.

**Holm within each paper** (:func:`decide_paper`). The claims of one paper in one claims.json are
one family, fixed in advance: every claim counts, whatever its gates say. Rank them by p (ties by
id), m claims. The claim ranked k (1-based) is tested at level alpha/(m - k + 1) as long as every
better-ranked claim passed its own level; from the first claim k* that fails, it and all later
ones keep the failing level alpha/(m - k* + 1) (Holm's step-down stops there; their larger p
cannot pass it anyway). A claim's interval is the percentile interval at its level, so every
decisive verdict of a paper holds at family-wise error <= alpha = 1 - confidence.
``p_holm`` is the usual Holm-adjusted p-value, reported alongside.

## Gates (run first, at the plain ``confidence``, never Holm-adjusted)

- **convergence** (:func:`convergence_gate`) on a held-out validation curve: enough points, a
  least-squares line through the last ``convergence_tail`` of the step range predicts less than
  ``convergence_max_gain`` relative improvement over as many steps again, and the final value
  (that line at the last step: less noisy than the last raw point) is within
  ``convergence_max_above_min`` of the run's best value.
- **sanity** (:func:`sanity_gate`): the model (averaged over seeds) beats every trivial baseline
  with a paired-bootstrap interval that excludes 0 in the right direction.
"""
from __future__ import annotations

import json
import math
import zlib
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import check_keys, load_params, repo_root
from .errors import ConfigError, DataError

REPRODUCED, NOT_REPRODUCED = "reproduced", "not reproduced"


@dataclass
class Tolerances:
    confidence: float = 0.95  # two-sided level of every interval, before Holm
    n_boot: int = 2000  # bootstrap resamples
    min_seeds: int = 3  # seeds per arm before two *trained* models may be compared
    convergence_min_points: int = 20
    convergence_tail: float = 0.2
    convergence_max_gain: float = 0.02
    convergence_max_above_min: float = 0.05

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int":
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                    raise ConfigError(f"verdicts.{f.name} must be a positive integer, got {v!r}: fix params.yaml.")
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                    raise ConfigError(f"verdicts.{f.name} must be a number, got {v!r}: fix params.yaml.")
                setattr(self, f.name, float(v))
        if not (0 < self.confidence < 1 and 0 < self.convergence_tail < 1):
            raise ConfigError(f"verdicts.confidence and verdicts.convergence_tail must lie in (0, 1), got {self.confidence}, {self.convergence_tail}: fix params.yaml.")
        if self.convergence_max_gain <= 0 or self.convergence_max_above_min < 0:
            raise ConfigError("verdicts.convergence_max_gain must be > 0 and convergence_max_above_min >= 0: fix params.yaml.")

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @classmethod
    def from_params(cls, params: Mapping | None = None) -> "Tolerances":
        """From the ``verdicts:`` section of ``params`` (as :func:`facefill.config.load_params` returns; default: params.yaml)."""
        params = load_params() if params is None else params
        sec = params.get("verdicts")
        if not isinstance(sec, Mapping):
            raise ConfigError("params.yaml has no `verdicts:` mapping: add it (confidence, n_boot, min_seeds, convergence_*; see facefill/verdicts.py).")
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

def _counts(rng: np.random.Generator, n: int, rows: int) -> np.ndarray:
    """How often each of n items is drawn in each of ``rows`` resamples of n with replacement."""
    idx = rng.integers(0, n, size=(rows, n)) + n * np.arange(rows)[:, None]
    return np.bincount(idx.ravel(), minlength=rows * n).reshape(rows, n).astype(np.float64)


def _chunks(n_boot: int, n: int):
    step = max(1, 1_000_000 // max(n, 1))  # bounds the (rows, n) count matrix to ~8 MB
    for start in range(0, n_boot, step):
        yield slice(start, min(n_boot, start + step))


def paired_bootstrap(a, b, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of mean(a - b): ``a``, ``b`` per-image arrays on the same images."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    if d.ndim != 1 or d.size == 0:
        raise DataError(f"paired_bootstrap needs two per-image arrays of the same length, got shapes {np.shape(a)} and {np.shape(b)}.")
    rng, out = np.random.Generator(np.random.PCG64(seed)), np.empty(n_boot)
    for s in _chunks(n_boot, d.size):
        out[s] = _counts(rng, d.size, s.stop - s.start) @ d / d.size
    return out


def two_level_bootstrap(a, b, n_boot: int, seed: int) -> np.ndarray:
    """Bootstrap distribution of mean(a) - mean(b) over seeds, then images (paired).

    ``a``: (n_seeds_a, n_images); ``b``: (n_seeds_b, n_images) or (n_images,) for a learning-free
    method. Seeds of each arm are resampled independently, images jointly. Resampling counts turn
    both levels into weights, so each resample costs two small matrix products, not a gather.
    """
    a, b = np.atleast_2d(np.asarray(a, np.float64)), np.atleast_2d(np.asarray(b, np.float64))
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1] or a.size == 0 or b.size == 0:
        raise DataError(f"two_level_bootstrap needs (seeds, images) arrays on the same images, got {a.shape} and {b.shape}.")
    n = a.shape[1]
    rng, out = np.random.Generator(np.random.PCG64(seed)), np.empty(n_boot)
    wa = _counts(rng, a.shape[0], n_boot) / a.shape[0]  # (n_boot, seeds_a) seed weights
    wb = _counts(rng, b.shape[0], n_boot) / b.shape[0]
    for s in _chunks(n_boot, n):
        c = _counts(rng, n, s.stop - s.start) / n  # (rows, images) image weights, shared: paired
        out[s] = ((c @ a.T) * wa[s]).sum(1) - ((c @ b.T) * wb[s]).sum(1)
    return out


def _floor(p: float, n_boot: int) -> float:
    return float(min(1.0, max(p, 1.0 / (n_boot + 1))))


def bootstrap_p_value(dist) -> float:
    """Two-sided p of 'mean difference != 0': 2 min(P(d <= 0), P(d >= 0)), floored at 1/(n_boot+1)."""
    d = np.asarray(dist)
    return _floor(2 * min(np.mean(d <= 0), np.mean(d >= 0)), d.size)


def equivalence_p_value(dist, margin: float) -> float:
    """p of 'difference within +-margin': 2 max(P(d <= -margin), P(d >= margin)), floored."""
    d = np.asarray(dist)
    return _floor(2 * max(np.mean(d <= -margin), np.mean(d >= margin)), d.size)


def percentile_ci(dist, level: float) -> tuple[float, float]:
    """The (1 - level) two-sided percentile interval."""
    lo, hi = np.quantile(np.asarray(dist), [level / 2, 1 - level / 2])
    return float(lo), float(hi)


def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-adjusted p-values: p_(k) -> max_{j<=k} min(1, (m - j + 1) p_(j)), in the input order."""
    p = np.asarray(pvalues, np.float64)
    order, m = np.argsort(p, kind="stable"), p.size
    adj = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order])) if m else p
    out = np.empty(m)
    out[order] = adj
    return out


def holm_levels(pvalues: Sequence[float], alpha: float) -> np.ndarray:
    """The level each test is decided at: alpha/(m-k+1) for rank k, frozen at the first failure."""
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
                     min_points: int | None = None, label: str = "", smooth: int = 1) -> GateResult:
    """Has a validation curve (lower is better, unless ``higher_is_better``) stopped improving?

    ``smooth`` > 1 replaces each point by the mean of it and the ``smooth - 1`` before it, for curves
    whose points are noisy estimates (a share of n samples has a binomial standard error): the
    maximum of many noisy points sits above the plateau, so "final within x % of the best" would
    fail a converged run. The slope and both values are then those of the trailing means.
    """
    s, v = np.asarray(steps, np.float64).ravel(), np.asarray(values, np.float64).ravel()
    if s.shape != v.shape:
        raise DataError(f"convergence gate {label!r}: {s.size} steps but {v.size} values.")
    keep = np.isfinite(s) & np.isfinite(v)  # validation is logged every k steps only: NaN rows are skipped
    order = np.argsort(s[keep], kind="stable")
    s, v = s[keep][order], v[keep][order]
    need, who = tol.convergence_min_points if min_points is None else int(min_points), f"{label}: " if label else ""
    if isinstance(smooth, bool) or int(smooth) != smooth or smooth < 1:
        raise ConfigError(f"convergence gate {label!r}: smooth={smooth!r} must be a whole number of points >= 1.")
    n_raw, smooth = int(s.size), int(smooth)
    span = float(s[-1] - s[0]) if s.size else 0.0  # of the raw steps: smoothing does not shorten the run
    if smooth > 1 and s.size >= need and s.size >= smooth:
        v, s = np.convolve(v, np.full(smooth, 1.0 / smooth), mode="valid"), s[smooth - 1 :]
    tail = s >= s[-1] - tol.convergence_tail * span if s.size else s.astype(bool)
    if n_raw < need or tail.sum() < 2 or np.ptp(s[tail]) == 0:
        why = f"only {n_raw} validation points, need {need}" if n_raw < need else f"fewer than 2 distinct steps in the last {tol.convergence_tail:.0%} of steps"
        return GateResult(name, False, who + why, {"n_points": n_raw, "min_points": need, "failures": [who + why]})
    sign = 1.0 if higher_is_better else -1.0  # improvement = sign * change
    extra = tol.convergence_tail * span  # extrapolate over as many steps again
    slope, final = np.polyfit(s[tail] - s[-1], v[tail], 1)  # centred at the last step: intercept = fitted final
    gain = sign * slope * extra / max(abs(final), 1e-12)
    best = v.max() if higher_is_better else v.min()
    behind = sign * (best - final) / max(abs(best), 1e-12)  # how far the final value trails the best, relative
    failures = []
    if gain >= tol.convergence_max_gain:
        failures.append(f"{who}still improving: predicted {gain:.2%} more over {extra:g} steps (max {tol.convergence_max_gain:.0%})")
    if behind > tol.convergence_max_above_min:
        failures.append(f"{who}final {final:.4g} trails the best {best:.4g} by {behind:.1%} (max {tol.convergence_max_above_min:.0%})")
    detail = ("; ".join(failures) if failures else f"{who}converged") + (
        f" -- {n_raw} points{f' (trailing means of {smooth})' if smooth > 1 else ''}, last-{tol.convergence_tail:.0%} slope predicts {gain:+.2%} over {extra:g} more steps, "
        f"final {final:.4g} vs best {best:.4g} ({behind:+.1%})")
    vals = {"n_points": n_raw, "min_points": need, "smooth": smooth, "slope": float(slope), "fitted_final": float(final),
            "last_value": float(v[-1]), "best": float(best), "predicted_gain": float(gain), "behind_best": float(behind),
            "higher_is_better": bool(higher_is_better), "failures": failures}
    return GateResult(name, not failures, detail, vals)


def sanity_gate(model, baselines: Mapping[str, Any], higher_is_better: bool, tol: Tolerances, seed: int = 0,
                name: str = "sanity") -> GateResult:
    """Does the model beat every trivial baseline (paired bootstrap CI of the mean difference excludes 0)?"""
    m = np.asarray(model, np.float64)
    m = m.mean(0) if m.ndim == 2 else m  # (seeds, images): the seed-averaged model
    if not baselines:
        raise ConfigError("a sanity gate needs at least one baseline (e.g. mean colour, mean training patch).")
    per, failures, parts = {}, [], []
    for i, (bname, base) in enumerate(baselines.items()):
        b = np.asarray(base, np.float64)
        if b.shape != m.shape:
            raise DataError(f"sanity gate: baseline {bname!r} has shape {b.shape}, the model {m.shape}: score both on the same images.")
        lo, hi = percentile_ci(paired_bootstrap(m, b, tol.n_boot, seed + i), tol.alpha)
        delta, ok = float(m.mean() - b.mean()), (lo > 0 if higher_is_better else hi < 0)
        per[bname] = {"delta": delta, "ci_low": lo, "ci_high": hi, "passed": bool(ok)}
        parts.append(f"{bname} {delta:+.4g} [{lo:+.4g}, {hi:+.4g}]")
        if not ok:
            failures.append(f"does not beat {parts[-1]}")
    detail = ("; ".join(failures) if failures else "beats every baseline") + " -- model - baseline: " + ", ".join(parts)
    return GateResult(name, not failures, detail, {"baselines": per, "higher_is_better": bool(higher_is_better), "failures": failures})


# ---------------------------------------------------------------------------------------------
# Claim specs: validation and loading
# ---------------------------------------------------------------------------------------------

CLAIM_KEYS = {"id", "paper", "statement", "source", "metric", "higher_is_better", "kind", "direction", "margin",
              "paper_value", "a", "b", "gates", "link", "result"}  # "result": a stored record may be re-evaluated
REQUIRED = ("id", "paper", "statement", "source", "metric", "higher_is_better", "kind", "a", "b")
ARM_KEYS = {"label", "trained", "arrays"}
GATE_KEYS = {"convergence": {"type", "label", "history", "step_column", "column", "higher_is_better", "min_points", "smooth"},
             "sanity": {"type", "label", "model", "baselines", "higher_is_better"}}


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
    if spec["kind"] == "directional":
        if spec.get("direction") not in ("greater", "less"):
            bad(f"a directional claim needs direction: greater|less (the sign of a - b), got {spec.get('direction')!r}")
    elif spec["kind"] == "similar":
        if margin is None:
            bad("a similar claim needs a margin")
        if spec.get("direction") is not None:
            bad("a similar claim has no direction")
    else:
        bad(f"kind must be 'directional' or 'similar', got {spec['kind']!r}")
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
        if not isinstance(x.get("arrays"), list) or not x["arrays"] or not all(isinstance(r, str) for r in x["arrays"]):
            bad(f"{arm}.arrays must be a non-empty list of 'path.npz:key' or 'path.npy' references, one per seed")
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


def _stack(refs, root, cid, cache) -> np.ndarray:
    arrs = [load_array(r, root, cid, cache) for r in refs]
    if len({a.size for a in arrs}) != 1:
        raise DataError(f"claim {cid!r}: arrays {refs} have different lengths {[a.size for a in arrs]}: score every seed on the same images.")
    return np.stack(arrs)


def _seed(cid: str, salt: str = "") -> int:
    return zlib.crc32(f"{cid}{salt}".encode())  # fixed per claim: recomputation is bit-identical


def _run_gate(g: Mapping, i: int, spec: Mapping, tol: Tolerances, root: Path, cache: dict) -> GateResult:
    cid, label = spec["id"], g.get("label", "")
    if g["type"] == "convergence":
        path = _file(g["history"], root, cid)
        h, cols = pd.read_csv(path), (g.get("step_column", "step"), g["column"])
        if any(c not in h.columns for c in cols):
            raise DataError(f"claim {cid!r}: {path} has no column(s) {[c for c in cols if c not in h.columns]} (it has {list(h.columns)}).")
        h = h.dropna(subset=[cols[1]])
        return convergence_gate(h[cols[0]], h[cols[1]], tol, higher_is_better=bool(g.get("higher_is_better", False)),
                                min_points=g.get("min_points"), label=label, smooth=g.get("smooth", 1))
    model = _stack(g.get("model", spec["a"]["arrays"]), root, cid, cache)  # default: arm a
    base = {k: load_array(r, root, cid, cache) for k, r in g["baselines"].items()}
    res = sanity_gate(model, base, bool(g.get("higher_is_better", spec["higher_is_better"])), tol, _seed(cid, f":gate{i}"))
    if label:
        res.detail, res.values["failures"] = f"{label}: {res.detail}", [f"{label}: {f}" for f in res.values["failures"]]
    return res


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------

def decide(kind: str, ci_low: float, ci_high: float, direction: str | None = None, margin: float | None = None) -> str:
    """The statistical verdict from an interval of a - b (gates and seeds are checked by the caller).

    directional: reproduced if the CI excludes 0 on the paper's side (even if the effect is smaller
    than the margin); not reproduced if it excludes 0 on the other side or lies inside +-margin.
    similar: reproduced iff the CI lies inside +-margin, not reproduced iff it lies entirely outside.
    """
    if kind == "similar":
        if -margin < ci_low and ci_high < margin:
            return REPRODUCED
        if ci_low > margin or ci_high < -margin:
            return NOT_REPRODUCED
        return f"inconclusive: CI crosses the margin ±{margin:g}"
    lo, hi = (ci_low, ci_high) if direction == "greater" else (-ci_high, -ci_low)  # > 0: on the paper's side
    if lo > 0:
        return REPRODUCED
    if hi < 0 or (margin is not None and -margin < lo and hi < margin):
        return NOT_REPRODUCED
    return "inconclusive: CI includes 0"


@dataclass
class _Evidence:  # everything but the level: computed once, decided after Holm
    spec: dict
    a: np.ndarray
    b: np.ndarray
    dist: np.ndarray
    p: float
    gates: list


def _gather(spec: Mapping, tol: Tolerances, root: Path, cache: dict) -> _Evidence:
    validate_spec(spec)
    cid = spec["id"]
    a, b = _stack(spec["a"]["arrays"], root, cid, cache), _stack(spec["b"]["arrays"], root, cid, cache)
    if a.shape[1] != b.shape[1]:
        raise DataError(f"claim {cid!r}: a has {a.shape[1]} images, b {b.shape[1]}: score both arms on the same test images.")
    dist = two_level_bootstrap(a, b, tol.n_boot, _seed(cid))
    p = equivalence_p_value(dist, spec["margin"]) if spec["kind"] == "similar" else bootstrap_p_value(dist)
    gates = [_run_gate(g, i, spec, tol, root, cache) for i, g in enumerate(spec.get("gates", []))]
    return _Evidence({k: v for k, v in spec.items() if k != "result"}, a, b, dist, p, gates)


def _decide(ev: _Evidence, tol: Tolerances, level: float, p_holm: float) -> dict:
    s = ev.spec
    lo, hi = percentile_ci(ev.dist, level)
    failed = [g for g in ev.gates if not g.passed]
    few = [(len(x), s[k]["label"]) for k, x in (("a", ev.a), ("b", ev.b)) if len(x) < tol.min_seeds]
    if failed:
        verdict = "inconclusive: " + "; ".join(f"{g.name} gate failed ({'; '.join(g.values['failures'])})" for g in failed)
    elif s["a"]["trained"] and s["b"]["trained"] and few:  # trained vs learning-free needs only >= 1 seed
        n, label = few[0]
        verdict = f"inconclusive: {n} seed(s) of {label}, need {tol.min_seeds} per arm to compare two trained models"
    else:
        verdict = decide(s["kind"], lo, hi, s.get("direction"), s.get("margin"))
    a_mean, b_mean = float(ev.a.mean()), float(ev.b.mean())
    result = {"diff": a_mean - b_mean, "ci_low": lo, "ci_high": hi, "p_value": ev.p, "p_holm": float(p_holm),
              "alpha": float(level), "a_mean": a_mean, "b_mean": b_mean, "n_images": int(ev.a.shape[1]),
              "n_seeds_a": int(len(ev.a)), "n_seeds_b": int(len(ev.b)), "gates": [asdict(g) for g in ev.gates],
              "verdict": verdict}
    return {**s, "result": _jsonable(result)}


def _root(root) -> Path:
    return Path(root) if root is not None else repo_root()


def evaluate_claim(spec: Mapping, tol: Tolerances, root=None, alpha: float | None = None) -> dict:
    """One claim on its own, at level ``alpha`` (default 1 - confidence, i.e. no multiplicity correction)."""
    ev = _gather(spec, tol, _root(root), {})
    return _decide(ev, tol, tol.alpha if alpha is None else alpha, ev.p)


def decide_paper(specs: Sequence[Mapping], tol: Tolerances, root=None, cache: dict | None = None) -> list[dict]:
    """The claims of one paper, decided together with Holm's step-down (see the module docstring)."""
    if len({s.get("paper") for s in specs}) > 1:
        raise ConfigError(f"decide_paper got claims of several papers {sorted({str(s.get('paper')) for s in specs})}: use evaluate_claims.")
    cache = {} if cache is None else cache
    order = sorted(range(len(specs)), key=lambda i: str(specs[i].get("id")))  # ties in p are broken by id
    evs = [_gather(specs[i], tol, _root(root), cache) for i in order]
    levels, adj = holm_levels([e.p for e in evs], tol.alpha), holm([e.p for e in evs])
    out = [None] * len(specs)
    for j, i in enumerate(order):
        out[i] = _decide(evs[j], tol, levels[j], adj[j])
    return out


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


def claim_row(rec: Mapping, link_dir: str | None = None) -> list[str]:
    """One table row: claim | tested | metric | paper | ours | gates | verdict."""
    r, a, b = rec["result"], rec["a"], rec["b"]
    cid = f"[`{rec['id']}`]({link_dir})" if link_dir else f"`{rec['id']}`"
    if link_dir and rec.get("link"):
        cid += f" ([figure/table]({link_dir.rstrip('/')}/{rec['link']}))"
    ours = (f"{_md(a['label'])} {_g(r['a_mean'])} vs {_md(b['label'])} {_g(r['b_mean'])}: "
            f"Δ {r['diff']:+.4g} [{r['ci_low']:+.4g}, {r['ci_high']:+.4g}] "
            f"({1 - r['alpha']:.1%} CI; {r['n_seeds_a']}×{r['n_seeds_b']} seeds, {r['n_images']} images)")
    gates = ", ".join(("✓ " if g["passed"] else "✗ ") + g["name"] for g in r["gates"]) or "–"
    metric = f"{_md(rec['metric'])} {'↑' if rec['higher_is_better'] else '↓'}"
    verdict = r["verdict"] if r["verdict"].startswith("inconclusive") else f"**{r['verdict']}**"
    tested = _md(rec["statement"]) + ("" if rec["statement"] == rec["source"] else f" ({_md(rec['source'])})")
    return [cid, tested, metric, _g(rec.get("paper_value")), ours, gates, _md(verdict)]


def claim_line(record: Mapping) -> str:
    """One Markdown bullet of a decided claim, for a notebook's summary: id, verdict, Δ [CI] (a − b)."""
    res = record["result"]
    return (f"- `{record['id']}`: **{res['verdict']}** — Δ {record['metric']} = {res['diff']:+.4g} "
            f"[{res['ci_low']:+.4g}, {res['ci_high']:+.4g}] ({record['a']['label']} − {record['b']['label']}).")


def render_claims_markdown(records: Sequence[Mapping], link_dir: str | None = None) -> str:
    head = ["claim", "tested (source)", "metric", "paper", "ours: a vs b, Δ = a − b [CI]", "gates", "verdict"]
    rows = [head, ["---"] * len(head)] + [claim_row(r, link_dir) for r in records]
    return "\n".join("| " + " | ".join(row) + " |" for row in rows) + "\n"
