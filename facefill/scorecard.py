"""The scorecard stage: recompute every claim's verdict and collect them in one table.

``python -m facefill.scorecard`` reads every ``reports/*/claims.json`` (written by a stage with
:func:`facefill.verdicts.write_claims`), **recomputes** each claim from the arrays and histories it
references with the tolerances now in params.yaml, and

- fails (exit code 2) when a stored verdict or number differs from the recomputed one (more than
  1e-9 relative): the claims.json is stale -- an array, a history or ``verdicts:`` changed
  without rerunning the stage -- so ``dvc repro`` must run first;
- otherwise writes ``reports/SCORECARD.md`` (counts per verdict, then one table per paper) and
  ``reports/scorecard.csv`` (one row per claim).

Holm's family is one paper's claims within one claims.json, exactly as the stage decided them.
"""
from __future__ import annotations

import argparse
import math
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from .config import load_params, repo_root
from .errors import DataError, FacefillError
from .experiments import study_data
from .verdicts import Tolerances, claim_row, evaluate_claims, read_claims

REL_TOL = 1e-9
CSV_COLUMNS = ["id", "paper", "stage", "statement", "source", "metric", "higher_is_better", "kind", "direction", "margin",
               "paper_value", "a", "b", "a_mean", "b_mean", "diff", "ci_low", "ci_high", "alpha", "p_value", "p_holm",
               "n_images", "n_seeds_a", "n_seeds_b", "gates_passed", "verdict"]


class StaleClaimsError(DataError):
    """A stored claim differs from its recomputation."""


def find_claim_files(reports: Path) -> list[Path]:
    return sorted(Path(reports).glob("*/claims.json"))


def differences(stored, fresh, where: str = "result") -> list[str]:
    """Where two JSON values differ: strings/bools exactly, numbers beyond REL_TOL relative."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        out = [f"{where}.{k}: stored {stored.get(k)!r}, recomputed {fresh.get(k)!r}" for k in sorted(set(stored) ^ set(fresh))]
        return out + [d for k in sorted(set(stored) & set(fresh)) for d in differences(stored[k], fresh[k], f"{where}.{k}")]
    if isinstance(stored, list) and isinstance(fresh, list) and len(stored) == len(fresh):
        return [d for i, (s, f) in enumerate(zip(stored, fresh)) for d in differences(s, f, f"{where}[{i}]")]
    nums = all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in (stored, fresh))
    if nums and math.isclose(stored, fresh, rel_tol=REL_TOL, abs_tol=1e-12) or not nums and stored == fresh:
        return []
    return [f"{where}: stored {stored!r}, recomputed {fresh!r}"]


def recompute(path: Path, tol: Tolerances, root: Path) -> tuple[list[dict], list[str]]:
    """The recomputed records of one claims.json and the mismatches against the stored ones."""
    stored = read_claims(path)
    fresh = evaluate_claims([{k: v for k, v in r.items() if k != "result"} for r in stored], tol, root)
    problems = []
    for s, f in zip(stored, fresh):
        if "result" not in s:
            problems.append(f"claim {s['id']!r} has no result: write claims.json with facefill.verdicts.write_claims")
            continue
        diff = differences(s["result"], f["result"])
        if diff:
            head = f"claim {s['id']!r} ({path}): verdict stored {s['result'].get('verdict')!r}, recomputed {f['result']['verdict']!r}"
            problems.append(head + "".join(f"\n    {d}" for d in diff[:5]) + (f"\n    ... {len(diff) - 5} more" if len(diff) > 5 else ""))
    return fresh, problems


def _category(verdict: str) -> str:
    if not verdict.startswith("inconclusive"):
        return verdict
    reason = verdict.split(": ", 1)[1]
    if "gate failed" in reason:
        return "inconclusive: " + reason.split(" (")[0]
    if "seed(s)" in reason:
        return "inconclusive: too few seeds"
    return "inconclusive: " + reason.split(" ±")[0]


def untested_claims(paper: str, records: list[dict]) -> list[dict]:
    """The claims of ``paper``'s study file that this run did not score (e.g. an arm the profile does not
    train): a scorecard must say so rather than drop them. A study claim counts as scored when a record has
    its id or expands it (``ours_vs_si.ssim`` → ``ours_vs_si.ssim.center``)."""
    try:
        claims = study_data(paper).get("claims", [])
    except FacefillError:
        return []  # a claims.json of a paper without a study file (e.g. a user's own stage)
    ids = [r["id"] for r in records]
    key = lambda c: c.get("id") or c["family"]  # noqa: E731 a family expands into one claim per mask kind
    return [{**c, "id": key(c)} for c in claims if not any(i == key(c) or i.startswith(key(c) + ".") for i in ids)]


def render_scorecard(stages: dict[str, list[dict]], tol: Tolerances) -> str:
    records = [(stage, r) for stage, recs in stages.items() for r in recs]
    lines = ["# Scorecard: which paper claims we reproduce", "",
             f"Every verdict is recomputed by `python -m facefill.scorecard` from the per-image arrays and histories its "
             f"stage saved, with `params.yaml` `verdicts:`: {tol.confidence:.0%} percentile intervals of a paired two-level "
             f"bootstrap of mean(a) − mean(b) ({tol.n_boot} resamples, seeds then images), Holm-adjusted within each paper; "
             f"*inconclusive* when a gate fails (convergence: ≥ {tol.convergence_min_points} validation points, the last "
             f"{tol.convergence_tail:.0%} of steps predicting < {tol.convergence_max_gain:.0%} further gain and the final value "
             f"within {tol.convergence_max_above_min:.0%} of the best; sanity: beats every trivial baseline) or when two trained "
             f"models have fewer than {tol.min_seeds} seeds per arm. Details: `facefill/verdicts.py`.", ""]
    if not records:
        return "\n".join(lines + ["No `reports/*/claims.json` yet: run `dvc repro`.", ""])
    top = Counter(r["result"]["verdict"].split(":")[0] for _, r in records)
    lines += [f"**{len(records)} claims:** " + " · ".join(f"{top[k]} {k}" for k in ("reproduced", "not reproduced", "inconclusive")), "",
              "| verdict | claims |", "|---|---|"]
    cats = Counter(_category(r["result"]["verdict"]) for _, r in records)
    order = lambda k: (not k.startswith("reproduced"), k.startswith("inconclusive"), k)  # noqa: E731 reproduced, not, inconclusive
    lines += [f"| {k} | {cats[k]} |" for k in sorted(cats, key=order)]
    head = ["claim", "what is tested (source)", "metric", "paper value", "ours: a vs b, Δ = a − b [CI]", "gates", "verdict"]
    for paper in dict.fromkeys(r["paper"] for _, r in records):
        lines += ["", f"## {paper}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        lines += ["| " + " | ".join(claim_row(r, f"{stage}/")) + " |" for stage, r in records if r["paper"] == paper]
        missing = untested_claims(paper, [r for _, r in records if r["paper"] == paper])
        if missing:
            lines += ["", "Not scored in this run (the profile does not train what they need; see the notebook's summary):"]
            lines += [f"- `{c['id']}`: {c['statement']}" for c in missing]
    return "\n".join(lines) + "\n"


def scorecard_table(stages: dict[str, list[dict]]) -> pd.DataFrame:
    rows = []
    for stage, recs in stages.items():
        for r in recs:
            res = r["result"]
            rows.append({"id": r["id"], "paper": r["paper"], "stage": stage, "statement": r["statement"], "source": r["source"],
                         "metric": r["metric"], "higher_is_better": r["higher_is_better"], "kind": r["kind"],
                         "direction": r.get("direction"), "margin": r.get("margin"), "paper_value": r.get("paper_value"),
                         "a": r["a"]["label"], "b": r["b"]["label"],
                         **{k: res[k] for k in ("a_mean", "b_mean", "diff", "ci_low", "ci_high", "alpha", "p_value", "p_holm",
                                                "n_images", "n_seeds_a", "n_seeds_b")},
                         "gates_passed": all(g["passed"] for g in res["gates"]), "verdict": res["verdict"]})
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def build(root: Path, reports: Path, tol: Tolerances) -> dict[str, list[dict]]:
    """Recompute every claims.json under ``reports``; raise StaleClaimsError on any mismatch."""
    stages, problems, seen = {}, [], {}
    for path in find_claim_files(reports):
        stages[path.parent.name], bad = recompute(path, tol, root)
        problems += bad
        for r in stages[path.parent.name]:
            if r["id"] in seen:
                raise DataError(f"claim id {r['id']!r} appears in {seen[r['id']]} and {path}: claim ids must be unique across stages.")
            seen[r["id"]] = path
    if problems:
        raise StaleClaimsError(f"{len(problems)} stored claim(s) differ from their recomputation:\n  " + "\n  ".join(problems)
                               + "\nRerun `dvc repro` (the stages that write these claims.json) so they match the arrays and params.yaml.")
    return stages


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.scorecard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="project root (default: the folder holding params.yaml)")
    p.add_argument("--reports", help="reports folder (default: ROOT/reports)")
    args = p.parse_args(argv)
    try:
        root = Path(args.root).resolve() if args.root else repo_root()
        reports = Path(args.reports) if args.reports else root / "reports"
        tol = Tolerances.from_params(load_params(root / "params.yaml"))
        stages = build(root, reports, tol)
        reports.mkdir(parents=True, exist_ok=True)
        (reports / "SCORECARD.md").write_text(render_scorecard(stages, tol))
        scorecard_table(stages).to_csv(reports / "scorecard.csv", index=False)
        n = sum(map(len, stages.values()))
        print(f"scorecard: {n} claim(s) from {len(stages)} stage(s) recomputed and unchanged; wrote {reports / 'SCORECARD.md'}")
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
