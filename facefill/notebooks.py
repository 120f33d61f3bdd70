"""Keep the notebooks reviewable: py:percent sources (jupytext) are the truth, .ipynb files are
generated from them with outputs stripped — except the cells marked ``# NBVAL_CHECK_OUTPUT``,
whose outputs nbval compares and which are refreshed from a smoke-profile execution.

    python -m facefill.notebooks sync      # .py → .ipynb, keep checked outputs, strip the rest
    python -m facefill.notebooks refresh   # also execute (smoke) and store the checked outputs
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import sys
from pathlib import Path

import jupytext
import nbformat

from .config import repo_root
from .errors import ConfigError

CHECK = "NBVAL_CHECK_OUTPUT"


def is_checked(cell) -> bool:
    return cell.cell_type == "code" and CHECK in cell.source


def _read(path: Path):
    path = Path(path)
    return nbformat.read(path, as_version=4) if path.suffix == ".ipynb" else jupytext.read(path)


def declared_parameters(path: str | Path) -> dict[str, object]:
    """The parameters a notebook declares: ``{name: default}`` of the assignments in its cell tagged
    ``parameters`` (the .py source or the .ipynb). Defaults must be literals, as papermill expects."""
    path = Path(path)
    cells = [c for c in _read(path).cells if "parameters" in c.metadata.get("tags", [])]
    if len(cells) != 1:
        raise ConfigError(f"{path.name} must have exactly one cell tagged 'parameters' (found {len(cells)}).")
    declared: dict[str, object] = {}
    for node in ast.parse(cells[0].source).body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else getattr(node, "target", None)
        if not isinstance(node, (ast.Assign, ast.AnnAssign)) or not isinstance(target, ast.Name) or node.value is None:
            continue
        try:
            declared[target.id] = ast.literal_eval(node.value)
        except ValueError:
            raise ConfigError(f"{path.name}, parameters cell: {target.id} = {ast.unparse(node.value)} is not a literal; "
                              "parameters must be plain values (numbers, strings, lists, None).") from None
    return declared


def top_level_names(path: str | Path) -> set[str]:
    """Every global name any code cell of the notebook binds (assignments, imports, loops, defs):
    the names that may legitimately be in the kernel's namespace besides the parameters."""
    names: set[str] = set()

    def visit(node):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            return  # their bodies are another scope
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.Global):
            names.update(node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    for cell in _read(path).cells:
        if cell.cell_type == "code":
            try:
                visit(ast.parse(cell.source))
            except SyntaxError:  # a cell with IPython magics
                continue
    return names


def build(py: Path, keep_from: Path | None = None, outputs: dict[str, list] | None = None):
    """The .ipynb for ``py``: sources from the .py, outputs only on checked cells (from ``outputs``
    or the existing notebook ``keep_from``), execution counts cleared."""
    nb = jupytext.read(py)
    old = nbformat.read(keep_from, as_version=4) if keep_from and Path(keep_from).exists() else None
    if outputs is None:
        outputs = {c.source: c.outputs for c in old.cells if is_checked(c)} if old else {}
    _stable_ids(nb, old)
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


def _stable_ids(nb, old=None) -> None:
    """Cell ids that do not change on every sync: an unchanged cell keeps its id in ``old``; a new
    or edited cell gets one derived from its position and source (jupytext draws random ones)."""
    free: dict[str, list[str]] = {}
    for c in (old.cells if old else []):
        if c.get("id"):
            free.setdefault(c.source, []).append(c.id)
    used = set()
    for i, cell in enumerate(nb.cells):
        ids = free.get(cell.source)
        cid = ids.pop(0) if ids else hashlib.sha1(f"{i}:{cell.cell_type}:{cell.source}".encode()).hexdigest()[:8]
        while cid in used:
            cid = hashlib.sha1(cid.encode()).hexdigest()[:8]
        used.add(cid)
        cell.id = cid


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
