"""Keep the notebooks reviewable: py:percent sources (jupytext) are the truth, .ipynb files are
generated from them with outputs stripped — except the cells marked ``# NBVAL_CHECK_OUTPUT``,
whose outputs nbval compares and which are refreshed from a smoke-profile execution.

    python -m facefill.notebooks sync      # .py → .ipynb, keep checked outputs, strip the rest
    python -m facefill.notebooks refresh   # also execute (smoke) and store the checked outputs
"""
from __future__ import annotations

import argparse
import copy
import sys
from pathlib import Path

import jupytext
import nbformat

from .config import repo_root

CHECK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and CHECK in cell.source


def build(py: Path, keep_from: Path | None = None, outputs: dict[str, list] | None = None):
    """The .ipynb for ``py``: sources from the .py, outputs only on checked cells (from ``outputs``
    or the existing notebook ``keep_from``), execution counts cleared."""
    nb = jupytext.read(py)
    if outputs is None:
        outputs = {}
        if keep_from and keep_from.exists():
            old = nbformat.read(keep_from, as_version=4)
            outputs = {c.source: c.outputs for c in old.cells if is_checked(c)}
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.execution_count = None
            cell.outputs = copy.deepcopy(outputs.get(cell.source, [])) if is_checked(cell) else []
            for o in cell.outputs:
                if "execution_count" in o:
                    o["execution_count"] = None
            if cell.outputs:  # nbval refuses a reference cell with outputs but no count ("Unrun reference cell has outputs")
                cell.execution_count = 1
    nb.metadata.pop("widgets", None)
    return nb


def sync(execute: bool = False, only: str | None = None) -> list[Path]:
    root = repo_root()
    written = []
    for py in sorted((root / "notebooks").glob("[0-9][0-9]_*.py")):
        if only and only not in py.stem:
            continue
        ipynb = py.with_suffix(".ipynb")
        outputs = _execute_checked(py) if execute else None
        nb = build(py, keep_from=ipynb, outputs=outputs)
        nbformat.write(nb, ipynb)
        written.append(ipynb)
    return written


def _execute_checked(py: Path) -> dict[str, list]:
    """Run the notebook on its (smoke) defaults in a scratch copy; return checked cells' outputs."""
    from nbclient import NotebookClient

    nb = build(py)
    NotebookClient(nb, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(py.parent)}}).execute()
    return {c.source: c.outputs for c in nb.cells if is_checked(c)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.notebooks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("cmd", choices=["sync", "refresh"])
    p.add_argument("--only", help="substring of the notebook name")
    args = p.parse_args(argv)
    for path in sync(execute=args.cmd == "refresh", only=args.only):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
