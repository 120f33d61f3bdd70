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
import re
import sys
from collections import Counter
from pathlib import Path

import pandas as pd

from .config import load_params, repo_root
from .errors import DataError, FacefillError
from .experiments import study_data
from .verdicts import Tolerances, claim_row, evaluate_claims, plain_line, read_claims, verdict_category, write_claims

REL_TOL = 1e-9
#: result key set by ``--redecide``: the claims were re-decided from the stage's arrays after the run, so
#: the stage's own notebook and tables still quote its run's verdicts (the scorecard says so)
REDECIDED = "redecided_after_run"
CSV_COLUMNS = ["id", "paper", "stage", "statement", "source", "metric", "higher_is_better", "kind", "direction", "margin",
               "paper_value", "a", "b", "a_mean", "b_mean", "diff", "ci_low", "ci_high", "alpha", "p_value", "p_holm",
               "n_images", "n_seeds_a", "n_seeds_b", "df", "half_diff", "half_verdict", "gates_passed", "verdict", "note", "plain"]


class StaleClaimsError(DataError):
    """A stored claim differs from its recomputation."""


def find_claim_files(reports: Path) -> list[Path]:
    return sorted(Path(reports).glob("*/claims.json"))


def differences(stored, fresh, where: str = "result") -> list[str]:
    """Where two JSON values differ: strings/bools exactly, numbers beyond REL_TOL relative."""
    if isinstance(stored, dict) and isinstance(fresh, dict):
        stored = {k: v for k, v in stored.items() if k != REDECIDED}
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
    """The verdict with its reason shortened to a countable category."""
    if not verdict.startswith("inconclusive"):
        return verdict.split(" (")[0]
    reason = verdict.split(": ", 1)[1]
    for words, short in (("gate failed", None), ("seed(s)", "too few seeds"), ("no half-budget run", "no half-budget run"),
                         ("changes with the budget", "verdict changes with the budget")):
        if words in reason:
            return "inconclusive: " + (short or reason.split(" (")[0])
    return "inconclusive: " + reason.split(" ±")[0]


def _paper_numbers(x, out: set) -> set:
    """Every number of a study YAML outside its claims and deviation log: what the papers report."""
    if isinstance(x, dict):
        for k, v in x.items():
            if k not in ("claims", "deviations"):
                _paper_numbers(v, out)
    elif isinstance(x, list):
        for v in x:
            _paper_numbers(v, out)
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        out.add(round(float(x), 6))
    elif isinstance(x, str):
        out |= {round(float(m), 6) for m in re.findall(r"\d+\.\d+", x)}
    return out


def stale_numbers(record: dict) -> list[str]:
    """Decimal numbers a claim's statement quotes that its paper's YAML does not report (section numbers
    after '§' aside): a result of some run typed into the text, which the next run makes stale."""
    try:
        known = _paper_numbers(study_data(record["paper"]), set())
    except FacefillError:
        return []  # a paper without a study file (e.g. a user's own stage): nothing to check against
    if record.get("paper_value") is not None and not isinstance(record["paper_value"], str):
        known.add(round(float(record["paper_value"]), 6))
    found = re.findall(r"(?<![\w.§])(\d+\.\d+)", record["statement"])
    return [n for n in found if round(float(n), 6) not in known]


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
             f"stage saved, with `params.yaml` `verdicts:`: {tol.confidence:.0%} seed-level t intervals of mean(a) − mean(b) "
             f"(images paired within each seed, Welch–Satterthwaite df; coverage proven by simulation in "
             f"`reports/benchmarks/coverage.md`), Holm-adjusted within each paper; deterministic measurements are compared "
             f"as numbers, outside Holm. *Inconclusive* when a gate fails (convergence: ≥ {tol.convergence_min_points} "
             f"validation points and the median of the last {tol.convergence_window} within {tol.convergence_max_above_min:.0%} "
             f"of the best running median; sanity: beats every trivial baseline), when a trained arm has fewer than "
             f"{tol.min_seeds} seeds"
             + (", or when a trained arm has no half-budget run or the verdict differs between half and full budget"
                if tol.require_half_budget else "") + ". Details: `facefill/verdicts.py`.", ""]
    if not records:
        return "\n".join(lines + ["No `reports/*/claims.json` yet: run `dvc repro`.", ""])
    redone = [stage for stage, recs in stages.items() if any(r["result"].get(REDECIDED) for r in recs)]
    if redone:
        lines += [f"**Re-decided after their runs:** the claims of {', '.join(f'`{s}`' for s in redone)} were re-decided "
                  "from the arrays those stages saved, under the rules above (`python -m facefill.scorecard --redecide`); "
                  "their notebooks, tables and summaries still quote the verdicts of their own runs until the stages are rerun.", ""]
    top = Counter(verdict_category(r["result"]["verdict"]) for _, r in records)
    lines += [f"**{len(records)} claims:** " + " · ".join(f"{top[k]} {k}" for k in ("reproduced", "not reproduced", "inconclusive")), "",
              "| verdict | claims |", "|---|---|"]
    cats = Counter(_category(r["result"]["verdict"]) for _, r in records)
    order = lambda k: (not k.startswith("reproduced"), k.startswith("inconclusive"), k)  # noqa: E731 reproduced, not, inconclusive
    lines += [f"| {k} | {cats[k]} |" for k in sorted(cats, key=order)]
    papers = list(dict.fromkeys(r["paper"] for _, r in records))
    lines += ["", "| paper | reproduced | not reproduced | inconclusive (why) |", "|---|---|---|---|"]
    for paper in papers:
        mine = [r for _, r in records if r["paper"] == paper]
        n = Counter(verdict_category(r["result"]["verdict"]) for r in mine)
        why = Counter(_category(r["result"]["verdict"]).split(": ", 1)[1] for r in mine
                      if verdict_category(r["result"]["verdict"]) == "inconclusive")
        lines.append(f"| {paper} | {n['reproduced']} | {n['not reproduced']} | {n['inconclusive']}"
                     + (f" ({'; '.join(f'{c} {k}' for k, c in why.most_common())})" if why else "") + " |")
    head = ["claim", "what is tested (source)", "metric", "paper value", "ours: a vs b, Δ = a − b [CI]", "gates", "verdict"]
    for paper in papers:
        lines += ["", f"## {paper}", ""]
        lines += [f"- `{r['id']}`: {plain_line(r)}" for _, r in records if r["paper"] == paper]
        lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
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
                         **{k: res.get(k) for k in ("a_mean", "b_mean", "diff", "ci_low", "ci_high", "alpha", "p_value", "p_holm",
                                                    "n_images", "n_seeds_a", "n_seeds_b", "df", "half_diff", "half_verdict")},
                         "gates_passed": all(g["passed"] for g in res["gates"]), "verdict": res["verdict"],
                         "note": res.get("note", ""), "plain": plain_line(r)})
    return pd.DataFrame(rows, columns=CSV_COLUMNS)


def build(root: Path, reports: Path, tol: Tolerances, redecide: bool = False) -> dict[str, list[dict]]:
    """Recompute every claims.json under ``reports``; raise StaleClaimsError on any mismatch.

    ``redecide``: rewrite each claims.json with its recomputation instead (the rules in
    ``facefill/verdicts.py`` or ``verdicts:`` changed, the saved arrays did not); the stages' notebooks
    still quote their old verdicts until they are rerun.
    """
    stages, problems, seen = {}, [], {}
    for path in find_claim_files(reports):
        stages[path.parent.name], bad = recompute(path, tol, root)
        if redecide and bad:
            for r in stages[path.parent.name]:
                r["result"][REDECIDED] = True
            write_claims(stages[path.parent.name], path)
            print(f"scorecard: re-decided {len(bad)} claim(s) of {path} under the current rules")
            bad = []
        elif any(r.get("result", {}).get(REDECIDED) for r in read_claims(path)):
            for r in stages[path.parent.name]:
                r["result"][REDECIDED] = True
        problems += bad
        for r in stages[path.parent.name]:
            if r["id"] in seen:
                raise DataError(f"claim id {r['id']!r} appears in {seen[r['id']]} and {path}: claim ids must be unique across stages.")
            seen[r["id"]] = path
    for recs in stages.values():
        for r in recs:
            quoted = stale_numbers(r)
            if quoted:
                problems.append(f"claim {r['id']!r}: its statement quotes {', '.join(quoted)}, which its paper does not "
                                "report: a run's result typed into the text goes stale; say it in the notebook's summary "
                                "(formatted from the results) instead")
    if problems:
        raise StaleClaimsError(f"{len(problems)} stored claim(s) differ from their recomputation or quote stale numbers:\n  " + "\n  ".join(problems)
                               + "\nRerun `dvc repro` (the stages that write these claims.json) so they match the arrays and params.yaml.")
    return stages


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.scorecard", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", help="project root (default: the folder holding params.yaml)")
    p.add_argument("--reports", help="reports folder (default: ROOT/reports)")
    p.add_argument("--redecide", action="store_true", help="rewrite stale claims.json files with their recomputation "
                   "(after a change of the rules, not of the arrays) instead of failing")
    args = p.parse_args(argv)
    try:
        root = Path(args.root).resolve() if args.root else repo_root()
        reports = Path(args.reports) if args.reports else root / "reports"
        tol = Tolerances.from_params(load_params(root / "params.yaml"))
        stages = build(root, reports, tol, args.redecide)
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
