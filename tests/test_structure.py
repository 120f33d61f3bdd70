"""The import structure of the package (issue 22): library modules do not import the stage runner, no
module imports another's private names, and no two modules import each other (directly or round a loop).

The imports are read from the source (:mod:`ast`), everywhere in a file: at module level and inside
functions alike, since a function-level import is as much a dependency as a top-level one.
"""
import ast
from pathlib import Path

from facefill import api, bench, cases, estimate, export, pipeline, train

PKG = Path(__file__).resolve().parents[1] / "facefill"

#: the stage runner itself and the tools that drive it may import it; nothing else in the package
RUNNER_USERS = {"pipeline.py", "scorecard.py", "__main__.py"}
#: subpackages whose modules form one unit: they share helpers by private name among themselves (the
#: package's __init__ re-exports the public API), but no module outside may import those names
PACKAGE_INTERNALS = ("data",)


def _modules() -> dict[str, Path]:
    """``facefill.x.y`` → its file, for every module of the package."""
    out = {}
    for f in sorted(PKG.rglob("*.py")):
        parts = list(f.relative_to(PKG.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if f.name == "__init__.py" else parts)] = f
    return out


MODULES = _modules()


def _imports(name: str, path: Path):
    """``(line, module, [(name, asname), ...])`` of every import in ``path`` (module ``name``), relative
    ones resolved; the list is empty for a plain ``import a.b``."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                module = ".".join(base + (node.module.split(".") if node.module else []))
            else:
                module = node.module or ""
            yield node.lineno, module, [(a.name, a.asname) for a in node.names]


def _targets(module: str, names: list) -> set[str]:
    """The package modules an import statement loads: ``from facefill import data`` loads facefill.data."""
    subs = {f"{module}.{n}" for n, _ in names if f"{module}.{n}" in MODULES}
    return subs | ({module} if len(subs) < len(names) or not names else set())


def _bound_modules(name: str, path: Path) -> dict[str, str]:
    """Local names bound to a package module: ``from . import landmarks as lm`` → ``{"lm": "facefill.landmarks"}``."""
    out = {}
    for _, module, names in _imports(name, path):
        out.update({asname or n: f"{module}.{n}" for n, asname in names if f"{module}.{n}" in MODULES})
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
    return out


def _where(path: Path) -> str:
    return path.relative_to(PKG).as_posix()


def test_library_modules_and_studies_do_not_import_the_stage_runner():
    hits = []
    for name, path in MODULES.items():
        if (path.parent == PKG and path.name in RUNNER_USERS) or path.name == "__main__.py":
            continue
        for line, module, names in _imports(name, path):
            if "facefill.pipeline" in _targets(module, names) or module.startswith("facefill.pipeline."):
                hits.append(f"{_where(path)}:{line}")
        for node in ast.walk(ast.parse(path.read_text())):  # importlib.import_module("facefill.pipeline")
            if (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")
                    and node.args and isinstance(node.args[0], ast.Constant) and str(node.args[0].value).startswith("facefill.pipeline")):
                hits.append(f"{_where(path)}:{node.lineno} (by name)")
    assert hits == [], "NOTEBOOKS: facefill.papers; PIPELINE_ENV, notebook_parameters: facefill.config"


def _private(n: str) -> bool:
    return n.startswith("_") and not n.startswith("__")


def test_no_private_name_is_imported_across_modules():
    """Neither ``from .x import _name`` nor ``x._name`` after ``from . import x`` (tests may look inside)."""
    hits = []
    for name, path in MODULES.items():
        for line, module, names in _imports(name, path):
            same_unit = any((name == f"facefill.{p}" or name.startswith(f"facefill.{p}.")) and module.startswith(f"facefill.{p}")
                            for p in PACKAGE_INTERNALS)
            if module.partition(".")[0] == "facefill" and not same_unit:
                hits += [f"{_where(path)}:{line} {module}.{n}" for n, _ in names if _private(n) and f"{module}.{n}" not in MODULES]
        bound = _bound_modules(name, path)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in bound and _private(node.attr):
                hits.append(f"{_where(path)}:{node.lineno} {bound[node.value.id]}.{node.attr}")
    assert hits == [], "make the name public (and say what it is) or move the code that needs it"


def test_no_import_cycle():
    """Package ``__init__`` files aside (a submodule always imports its package first)."""
    graph = {}
    for name, path in MODULES.items():
        graph[name] = {t for _, module, names in _imports(name, path) for t in _targets(module, names)
                       if t in MODULES and t != name and MODULES[t].name != "__init__.py"}
    cycles, done = [], set()

    def visit(node, trail):
        if node in trail:
            cycles.append(" → ".join(trail[trail.index(node):] + [node]))
            return
        if node in done:
            return
        for nxt in sorted(graph[node]):
            visit(nxt, trail + [node])
        done.add(node)

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []


def test_moved_names_stay_importable_from_their_old_homes():
    assert api.export is export.export and api.task_meta is export.task_meta and api.training_landmarks is export.training_landmarks
    assert train.checkpoint_meta is export.checkpoint_meta and train.export_path is export.export_path
    assert bench.STAGES is estimate.STAGES and bench.estimate_stage is estimate.estimate_stage and bench.Workload is estimate.Workload
    assert bench.training_case is cases.training_case and bench.VARIANTS == cases.VARIANTS
    assert pipeline.NOTEBOOKS is __import__("facefill.papers").papers.NOTEBOOKS
    assert pipeline.PIPELINE_ENV == "FACEFILL_PIPELINE" and callable(pipeline.notebook_parameters)
