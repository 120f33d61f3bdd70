"""Hashes of the code that trains a model, for the checkpoint fingerprint of :func:`facefill.train.fit`.

A checkpoint is reused (resumed, or taken as the finished model) only when it was trained by the
same configuration *and the same code* (issue 27 §6: a stage re-evaluated checkpoints that earlier
code had trained, because only the configuration was fingerprinted). :func:`code_fingerprint`
returns one short hash per unit of training code, so that a mismatch can name what changed.

**What is hashed** (the units):

* the module of the task class and, transitively, every module of ``facefill`` (or of the task's own
  top-level package) that it imports, at module level or inside a function (``masks`` is imported
  lazily by the masked context encoder and draws its training masks). These modules define the
  networks, losses, masks and the optimisation step: ``models/*``, ``adversarial``, ``perceptual``,
  ``face_masks``, ``masks``, ...;
* the parts of the trainer that decide what a step computes, by name (:data:`TRAINER_UNITS`): the
  training config and its lr schedule, the batch order and flips, the input conversion, the loop,
  the RNG save/restore around validation, seeding and the autocast precision. The rest of
  ``train.py`` (checkpoint files, messages, export) and of ``runtime.py`` is left out, so that
  editing it does not throw away every trained model;
* the study module that called ``fit`` (the one that configures the run), when there is one with a
  source file. Only that module, not its imports: those are data loading, evaluation and reporting.

**Not followed** (:data:`NOT_TRAINING_CODE`): modules that only raise errors, read or write files,
evaluate or report (``errors``, ``metrics``, ``landmarks``, ``data``, ``config``, ``api``, ``export``, ...), and
``train`` / ``runtime``, whose relevant parts are hashed by name. Not covered at all: the versions
of PyTorch / NumPy, and the content of the training data (the studies put the dataset and ``n_train``
into the configuration fingerprint; DVC tracks the data).

**How**: each unit is hashed from its syntax tree (:func:`ast.parse`), not its text, with every
docstring and bare string statement removed. Comments, docstrings, blank lines and formatting can
then be edited without invalidating checkpoints; any change to what the code does (a statement, a
constant, a name, a default) changes the hash. The tree is serialised by :func:`_canon` (node type
and non-empty fields) rather than :func:`ast.dump`, whose output changed between Python versions.
The only behaviour this misses is code that reads its own docstrings (none in the training code).
"""
from __future__ import annotations

import ast
import hashlib
import sys
from pathlib import Path
from typing import Any

#: Modules whose imports are not followed and whose source is not hashed (see the module docstring).
NOT_TRAINING_CODE = frozenset({
    "facefill",  # the package __init__: version string and a lazy ``load``
    "facefill.errors", "facefill.metrics", "facefill.nsd", "facefill.landmarks", "facefill.data",
    "facefill.config", "facefill.files", "facefill.api", "facefill.export", "facefill.reporting", "facefill.verdicts",
    "facefill.scorecard", "facefill.bench", "facefill.cases", "facefill.estimate", "facefill.cli", "facefill.pipeline", "facefill.video",
    "facefill.notebooks", "facefill.train", "facefill.runtime",
})

#: The top-level definitions of the trainer that decide what a training step computes.
TRAINER_UNITS = {
    "facefill.train": ("TrainConfig", "_as_uint8_tensor", "to_model_input", "BatchOrder", "fit", "_validation",
                       "_rng_state", "_set_rng_state"),
    "facefill.runtime": ("set_seed", "resolve_precision", "autocast_factory"),
}

_digests: dict[tuple[bytes, tuple[str, ...] | None], str] = {}  # (source hash, names) → digest


def _is_string_statement(node: Any) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _canon(node: Any) -> str:
    """A canonical text of a syntax tree: docstrings dropped, no positions, empty fields omitted."""
    if isinstance(node, ast.AST):
        fields = [f"{k}={_canon(v)}" for k, v in ast.iter_fields(node) if v is not None and v != []]
        return f"{type(node).__name__}({','.join(fields)})"
    if isinstance(node, list):
        return "[" + ",".join(_canon(x) for x in node if not _is_string_statement(x)) + "]"
    return repr(node)


def _digest(source: bytes, names: tuple[str, ...] | None = None) -> str:
    """Hash of the tree of ``source``, or of its top-level definitions ``names`` only."""
    key = (hashlib.sha256(source).digest(), names)
    if key not in _digests:
        body = ast.parse(source).body
        if names is None:
            text = _canon(body)
        else:
            defs = {n.name: n for n in body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}
            text = "\n".join(f"{n}:{_canon(defs[n]) if n in defs else 'missing'}" for n in names)
        _digests[key] = hashlib.sha256(text.encode()).hexdigest()[:16]
    return _digests[key]


def _real_name(name: str) -> str:
    """The importable name of ``name``: ``__main__`` run with ``python -m pkg.mod`` is ``pkg.mod``."""
    if name == "__main__":
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        return spec.name if spec is not None and spec.name else name
    return name


def _module_file(name: str) -> Path | None:
    """The source file of module ``name``: from ``sys.modules``, else below its top-level package."""
    mod = sys.modules.get(name)
    if mod is not None and getattr(mod, "__file__", None):
        return Path(mod.__file__)
    top, _, rest = name.partition(".")
    root = sys.modules.get(top)
    if root is None or not getattr(root, "__path__", None) or not rest:
        return None
    base = Path(list(root.__path__)[0]).joinpath(*rest.split("."))
    for f in (base.with_suffix(".py"), base / "__init__.py"):
        if f.is_file():
            return f
    return None


def _unit_key(name: str, path: Path) -> str:
    """``facefill.models.cascade`` → ``facefill/models/cascade.py`` (the same in every clone)."""
    return "/".join(name.split(".")) + ("/__init__.py" if path.name == "__init__.py" else ".py")


def _imports(name: str, path: Path, tree: ast.Module) -> set[str]:
    """Names of the modules that module ``name`` (file ``path``) imports anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            subs = [f"{target}.{a.name}" for a in node.names if _module_file(f"{target}.{a.name}") is not None]
            out.update(subs)
            if len(subs) < len(node.names):  # names defined in ``target`` itself
                out.add(target)
    return out


def _task_modules(task_module: str) -> dict[str, Path]:
    """The task's module and the training modules it imports, transitively (see the module docstring)."""
    follow = {"facefill", task_module.partition(".")[0]}
    found: dict[str, Path] = {}
    todo = [task_module]
    while todo:
        name = todo.pop()
        if name in found or name in NOT_TRAINING_CODE or name.partition(".")[0] not in follow:
            continue
        path = _module_file(name)
        if path is None or path.suffix != ".py":
            continue
        found[name] = path
        todo.extend(_imports(name, path, ast.parse(path.read_bytes())))
    return found


def code_fingerprint(task: Any, study: str | None = None) -> dict[str, str]:
    """``{source file: hash}`` of the code that trains ``task`` (an instance or its class), see above.

    ``study``: the module name of the study that configures the run (``fit`` passes its caller's);
    ``None``, ``"__main__"`` without a module name, or a module without a source file: not hashed.
    A task whose module has no source file (defined in a notebook cell) gets ``"<no source>"``.
    """
    cls = task if isinstance(task, type) else type(task)
    task_module = _real_name(cls.__module__)
    units: dict[str, str] = {}
    modules = _task_modules(task_module)
    if task_module not in modules and task_module not in NOT_TRAINING_CODE:
        units[f"{task_module} (task {cls.__qualname__})"] = "<no source>"
    for name, path in modules.items():
        units[_unit_key(name, path)] = _digest(path.read_bytes())
    for name, defs in TRAINER_UNITS.items():
        path = _module_file(name)
        if path is not None:
            units[_unit_key(name, path)] = _digest(path.read_bytes(), defs)
    study = _real_name(study) if study else None
    if study and study != "__main__" and study not in NOT_TRAINING_CODE:
        path = _module_file(study)
        if path is not None and path.suffix == ".py":
            units[_unit_key(study, path)] = _digest(path.read_bytes())
    return dict(sorted(units.items()))


def changed_code(old: dict[str, str] | None, new: dict[str, str]) -> list[str]:
    """The units whose hash differs between two :func:`code_fingerprint` results (added or removed too)."""
    old = old or {}
    return sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k))


__all__ = ["code_fingerprint", "changed_code", "NOT_TRAINING_CODE", "TRAINER_UNITS"]
