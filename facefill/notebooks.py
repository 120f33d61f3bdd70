"""Keep the notebooks reviewable: py:percent sources (jupytext) are the truth, .ipynb files are
generated from them with outputs stripped — except the cells marked ``# NBVAL_CHECK_OUTPUT``,
whose outputs nbval compares and which are refreshed from a smoke-profile execution.

    python -m facefill.notebooks sync      # params.yaml → parameters cells of the .py; .py → .ipynb
    python -m facefill.notebooks refresh   # also execute (smoke) and store the checked outputs

``params.yaml`` is the one place for a parameter's value: ``sync`` first rewrites the values of each
notebook's ``parameters`` cell from its section (``base`` + the ``smoke`` overrides,
:func:`sync_parameters`), keeping the cell's names, order and comments, so changing a loss weight
is one edit in params.yaml followed by ``make sync-notebooks``.
"""
from __future__ import annotations

import argparse
import ast
import copy
import hashlib
import json
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


def _literal(value) -> str:
    """A parameter value as the parameters cell writes it (strings in double quotes, like the cells)."""
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_literal(k)}: {_literal(v)}" for k, v in value.items()) + "}"
    return repr(value)


def sync_parameters(source: str, values: dict[str, object]) -> str:
    """``source`` (a py:percent notebook) with the value of every assignment of its ``parameters`` cell
    that ``values`` names replaced by that value. Lines whose value already equals it (same type too:
    6 is not 6.0) keep their spelling (``1e-4`` stays ``1e-4``); names, order and comments stay."""
    lines = source.splitlines(keepends=True)
    start = next((i for i, l in enumerate(lines) if l.startswith("# %%") and "parameters" in l), None)
    if start is None:
        raise ConfigError("no cell tagged parameters (a line '# %% tags=[\"parameters\"]').")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("# %%")), len(lines))
    cell = "".join(lines[start + 1 : end])
    offsets = [0]
    for line in cell.splitlines(keepends=True):
        offsets.append(offsets[-1] + len(line))
    edits = []
    for node in ast.parse(cell).body:
        if not (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)):
            continue
        name = node.targets[0].id
        if name not in values:
            continue
        old, new = ast.literal_eval(node.value), values[name]
        if old == new and type(old) is type(new):
            continue
        a = offsets[node.value.lineno - 1] + len(cell.splitlines(keepends=True)[node.value.lineno - 1].encode()[: node.value.col_offset].decode())
        b = offsets[node.value.end_lineno - 1] + len(cell.splitlines(keepends=True)[node.value.end_lineno - 1].encode()[: node.value.end_col_offset].decode())
        edits.append((a, b, _literal(new)))
    for a, b, text in sorted(edits, reverse=True):
        cell = cell[:a] + text + cell[b:]
    return "".join(lines[: start + 1]) + cell + "".join(lines[end:])


def smoke_values(py: Path, root: Path | None = None) -> dict[str, object] | None:
    """The values params.yaml gives the notebook ``py`` on the smoke profile, or None for a notebook
    that is no stage of the registry."""
    from . import papers
    from .config import load_params, section

    root = root or repo_root()
    sec = {nb: s for s, nb in papers.NOTEBOOKS.items()}.get(py.stem)
    return None if sec is None else section(load_params(root / "params.yaml"), sec, "smoke")


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
        values = smoke_values(py, root)
        if values is not None:  # params.yaml is the source of the parameters cell's values
            text = py.read_text()
            synced = sync_parameters(text, values)
            if synced != text:
                py.write_text(synced)
                written.append(py)
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
