"""Where a stage spends its wall-clock time: named sections, summed over calls, written beside its outputs.

A stage's notebook calls :func:`facefill.reporting.start`, which points :func:`record_to` at
``<output_dir>/timings.json``; the library times its costly parts with :func:`timed`:

- ``fit`` (a whole training run, its validations included) and ``validation`` (inside it), so the
  training steps alone take ``fit − validation``;
- ``inference`` (batched forward passes of trained models at test time, :func:`facefill.train.evaluate_batches`);
- ``baselines`` and ``baseline:<name>`` (the learning-free fills);
- ``dlib`` (landmarks and face descriptors); ``figures`` (matplotlib files written by a run).

Sections nest (``validation`` runs inside ``fit``, ``dlib`` inside a validation): each label records its
wall time (``seconds``) and its time outside any other timed section (``self``), so the ``self`` times
add up without counting a nested section twice; the notebook's own cell durations (papermill) give
the stage's wall time. ``python -m facefill.profiling`` gathers
every stage's file into one table (``reports/benchmarks/stage_profile.md``). Timings are never
metrics: two runs of the same stage write the same ``metrics.json`` and different ``timings.json``.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from pathlib import Path

_sink: Path | None = None
_totals: dict[str, list] = {}  # label -> [seconds, calls, self seconds]
_open: set[str] = set()  # labels being timed now: a recursive call (fit's half run inside fit) is not counted twice
_stack: list[list] = []  # open sections, innermost last: [label, seconds spent in timed sections nested in it]


def record_to(path: str | Path | None) -> None:
    """Start a new record, written to ``path`` (JSON) after every timed section; ``None`` keeps it in memory."""
    global _sink
    _sink = Path(path) if path is not None else None
    _totals.clear()
    _open.clear()
    _stack.clear()


def totals() -> dict[str, dict[str, float]]:
    """The record so far: ``{label: {"seconds": wall, "calls": n, "self": wall outside nested sections}}``."""
    return {k: {"seconds": round(v[0], 3), "calls": v[1], "self": round(v[2], 3)} for k, v in _totals.items()}


@contextmanager
def timed(label: str):
    """Add the wall time of the ``with`` block to ``label`` (an inner block of the same label is part of the outer one)."""
    if label in _open:
        yield
        return
    _open.add(label)
    frame = [label, 0.0]
    _stack.append(frame)
    t0 = time.perf_counter()
    try:
        yield
    finally:
        elapsed = time.perf_counter() - t0
        _open.discard(label)
        _stack.remove(frame)
        if _stack:
            _stack[-1][1] += elapsed  # the enclosing section's self time leaves this one out
        entry = _totals.setdefault(label, [0.0, 0, 0.0])
        entry[0] += elapsed
        entry[1] += 1
        entry[2] += elapsed - frame[1]
        if _sink is not None and _sink.parent.is_dir():
            _sink.write_text(json.dumps(totals(), indent=1, sort_keys=True) + "\n")


def stage_table(reports: Path) -> "pd.DataFrame":
    """One row per stage with a ``timings.json`` under ``reports`` (minutes per section, and the notebook's
    papermill wall time when its executed copy is there)."""
    import pandas as pd

    rows = []
    for path in sorted(Path(reports).glob("*/timings.json")):
        raw = json.loads(path.read_text())
        # self times add up; a file written before they existed has wall times only (nested ones counted twice)
        exclusive = all("self" in v for v in raw.values())
        t = {k: v["self" if exclusive else "seconds"] for k, v in raw.items()}
        wall = _notebook_seconds(path.parent)
        row = {"stage": path.parent.name, "wall": wall if wall is not None else t.get("stage")}
        parts = {k: v for k, v in t.items() if k.startswith("baseline:")}
        row["training steps"] = t.get("fit", 0.0) - (0.0 if exclusive else t.get("validation", 0.0))
        row |= {k: t.get(k, 0.0) for k in ("validation", "inference", "baselines", "dlib", "figures")}
        if exclusive:  # the column is the whole of `baselines`; its parts stand beside it
            row["baselines"] += sum(parts.values())
        known = sum(row[k] for k in ("training steps", "validation", "inference", "baselines", "dlib", "figures"))
        row["other"] = row["wall"] - known if row["wall"] is not None else None
        row |= {k: raw[k]["seconds"] for k in parts}
        rows.append(row)
    df = pd.DataFrame(rows)
    if not df.empty:
        num = df.columns.drop("stage")
        df[num] = df[num].astype(float) / 60.0
    return df


def _notebook_seconds(folder: Path) -> float | None:
    total, found = 0.0, False
    for nb in folder.glob("*.ipynb"):
        for cell in json.loads(nb.read_text()).get("cells", []):
            d = cell.get("metadata", {}).get("papermill", {}).get("duration")
            if d is not None:
                total, found = total + d, True
    return total if found else None


def main(argv=None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m facefill.profiling", description=__doc__.splitlines()[0])
    ap.add_argument("--reports", default="reports")
    ap.add_argument("--out", default="reports/benchmarks/stage_profile.md")
    a = ap.parse_args(argv)
    df = stage_table(Path(a.reports))
    if df.empty:
        print(f"no */timings.json under {a.reports}: run a stage first (`dvc repro`).")
        return 1
    text = ("# Where each stage spends its time (minutes)\n\n"
            "From each stage's `timings.json` (written by its last run) and its executed notebook's cell times. "
            "`training steps` = fit − validation; `other` = the notebook's wall time minus the timed sections "
            "(data loading, metrics, tables, z-search outside `fit`, …); `baseline:*` are parts of `baselines`.\n\n"
            + df.to_markdown(index=False, floatfmt=".2f") + "\n")
    Path(a.out).write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
