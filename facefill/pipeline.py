"""Run a notebook as a pipeline stage: params.yaml → papermill → reports/<notebook>/.

``python -m facefill.pipeline run context_encoder`` is what ``dvc.yaml`` calls. It

1. reads ``params.yaml``: the notebook's ``base`` section updated with the active profile's overrides
   (``--profile`` chooses another profile),
2. refuses keys the notebook's ``parameters`` cell does not define (and vice versa), and values of the
   wrong type or out of range (:func:`facefill.config.check_parameters`),
3. empties ``reports/<notebook>/`` (outputs are fully rewritten on every run) — but only a folder that
   a previous run marked as its own (:data:`OUTPUT_MARKER`, which lists the files that run wrote), and
   only of those files: anything else there (a user's notes) makes it refuse, naming them; never the
   project, ``$HOME`` or a folder holding ``.git`` or the checkpoints (:func:`prepare_output_dir`);
   checkpoints live in ``models/<notebook>/`` and survive, so an interrupted stage resumes instead of
   retraining,
4. builds the notebook from its py:percent source ``notebooks/<notebook>.py`` (the file the DVC stage
   depends on, so saving the .ipynb from Jupyter with outputs does not invalidate the stage) into the
   output folder and executes it there with papermill; the kernel's printed output (resuming, config
   changed, results) is echoed to this process's stderr, and ``FACEFILL_PIPELINE=1`` tells the notebook
   it runs in the pipeline (:func:`facefill.reporting.use_pipeline_backend`).

``python -m facefill.pipeline check`` validates every section of every profile against the notebooks.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
from pathlib import Path

from . import papers
from .config import (COMMON, PIPELINE_ENV, PROFILES, check_parameters, did_you_mean, load_params,  # noqa: F401 (re-exported)
                     notebook_parameters, repo_root, section)
from .errors import ConfigError, FacefillError, Interrupted

#: params.yaml section → notebook (one DVC stage each, in reading order): derived from the paper registry
NOTEBOOKS = papers.NOTEBOOKS
#: every paper's stage, with or without a notebook
SECTIONS = tuple(p.section for p in papers.PAPERS)

#: file the runner writes into every output folder it creates: only folders holding it are ever emptied
OUTPUT_MARKER = ".facefill-output"


def notebook_path(name: str, root: Path | None = None) -> Path:
    """The committed ``notebooks/<notebook>.ipynb`` (generated from :func:`source_path`; open it in Jupyter)."""
    root = root or repo_root()
    if name not in NOTEBOOKS:
        raise ConfigError(f"unknown stage {name!r}; stages: {list(NOTEBOOKS)}.")
    return root / "notebooks" / f"{NOTEBOOKS[name]}.ipynb"


def source_path(name: str, root: Path | None = None) -> Path:
    """The py:percent source ``notebooks/<notebook>.py``: what the stage depends on and executes."""
    return notebook_path(name, root).with_suffix(".py")


def check_against_notebook(name: str, values: dict, root: Path | None = None, where: str = "") -> None:
    """``values`` must set exactly the parameters the notebook's source declares, each of the type of
    its default and within its range (:func:`facefill.config.check_parameters`)."""
    from .notebooks import declared_parameters

    src = source_path(name, root)
    declared = declared_parameters(src)
    where = where or name
    unknown = [k for k in values if k not in declared]
    missing = sorted(set(declared) - set(values))
    if unknown:
        hints = "".join(did_you_mean(k, declared) for k in unknown)
        raise ConfigError(f"{where}: {unknown} are not parameters of {src.name}.{hints} Its parameters: {sorted(declared)}.")
    if missing:
        raise ConfigError(f"{where}: params.yaml does not set {missing}, which {src.name} declares; add them to its base section.")
    check_parameters(values, declared, where)


class _KernelOutput(logging.Formatter):
    """papermill's log records of the kernel's output, as the kernel printed them."""

    def format(self, record):
        return record.getMessage().rstrip("\n")


#: papermill's own bookkeeping lines, not the notebook's output
_PAPERMILL_NOISE = ("Executing Cell ", "Ending Cell ", "Executing notebook with kernel", "Input Notebook", "Output Notebook", "Working directory")
#: the text/plain stand-in of a figure or Markdown display ("<IPython.core.display.Image object>"): the
#: executed notebook holds the real output, a terminal learns nothing from it
_DISPLAY_STUB = re.compile(r"^\s*<IPython\.core\.display\.\w+ object>\s*$")


def _is_kernel_text(record) -> bool:
    msg = record.getMessage()
    return not msg.startswith(_PAPERMILL_NOISE) and not _DISPLAY_STUB.match(msg)


@contextlib.contextmanager
def kernel_output_to_stderr(stream=None):
    """Show what the kernel prints (papermill ``log_output=True`` logs it to the ``papermill`` logger)
    on ``stream`` (stderr), plain, so ``dvc repro`` and ``pipeline run`` show resuming / config
    changed / results as they happen. Restores the logger afterwards."""
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_KernelOutput())
    handler.addFilter(_is_kernel_text)
    saved = logger.level, logger.propagate
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # no second copy through the root logger
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


@contextlib.contextmanager
def _env(name: str, value: str):
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def build_executable(name: str, dest: Path, root: Path | None = None) -> Path:
    """Write the notebook of stage ``name``, built from its .py source, to ``dest`` (to be executed
    there). The committed .ipynb is never executed: it may hold outputs saved from Jupyter."""
    import nbformat

    from .notebooks import build

    src = source_path(name, root)
    if not src.exists():
        raise ConfigError(f"{src} not found: the .py is the notebook's source (jupytext py:percent).")
    nb = build(src, keep_from=notebook_path(name, root))
    nb.metadata.get("jupytext", {}).pop("formats", None)  # the executed copy is not paired with a .py
    nbformat.write(nb, dest)
    return dest


#: how the runner starts the kernel: CurveZMQ encryption of its local sockets where pyzmq supports it (which
#: also ends ipykernel's "running over TCP without encryption" warning on every run), and its own log
#: (``[IPKernelApp]`` lines: the TCP warning where curve is missing, and tracebacks of sockets closing
#: when Ctrl-C stops the run) kept off the terminal. Cell errors and output still come through papermill.
KERNEL_LOG_LEVEL = "CRITICAL"


def _kernel_options() -> dict:
    """papermill keyword arguments (passed on to nbclient) that start a quiet kernel: see :data:`KERNEL_LOG_LEVEL`."""
    opts: dict = {"extra_arguments": [f"--IPKernelApp.log_level={KERNEL_LOG_LEVEL}"]}
    try:
        import zmq
        from traitlets.config import Config

        if zmq.has("curve"):
            opts["config"] = Config({"KernelManager": {"transport_encryption": "auto"}})
    except ImportError:  # pragma: no cover - both come with papermill
        pass
    return opts


#: loggers that talk while papermill shuts the kernel down after a Ctrl-C (ZMQError / KeyboardInterrupt tracebacks)
_UNWIND_LOGGERS = ("papermill", "traitlets", "jupyter_client", "nbclient", "zmq", "asyncio", "tornado")


@contextlib.contextmanager
def _quiet_after_ctrl_c():
    """Run the block with Python's Ctrl-C behaviour, except that from the first Ctrl-C on nothing is
    logged or warned while papermill unwinds and shuts the kernel down: the caller prints one line."""
    import signal
    import threading
    import warnings

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_ctrl_c(signum, frame):
        logging.disable(logging.CRITICAL)  # the kernel shutdown's socket errors, nbclient's "kernel died"
        warnings.simplefilter("ignore")  # inside the catch_warnings below: undone on the way out
        for name in _UNWIND_LOGGERS:
            logging.getLogger(name).disabled = True
        raise KeyboardInterrupt

    saved = {name: logging.getLogger(name).disabled for name in _UNWIND_LOGGERS}
    old = signal.signal(signal.SIGINT, on_ctrl_c)
    try:
        with warnings.catch_warnings():
            yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler if old is None else old)
        logging.disable(logging.NOTSET)
        for name, disabled in saved.items():
            logging.getLogger(name).disabled = disabled


def _has_checkpoints(folder: Path) -> bool:
    try:
        return folder.is_dir() and any(p.is_file() for p in folder.rglob("*"))
    except OSError:
        return False


def _what_now(values: dict, root: Path, custom: bool) -> str:
    """The end of a failure / interrupt line: what is kept (only what is true) and how to go on."""
    again = "rerun the same command" if custom else "rerun `dvc repro` (or the same command)"
    ckpt = values["checkpoint_dir"]
    if _has_checkpoints(root / ckpt):
        return f"the checkpoints in {ckpt} are kept; {again} to resume from them"
    return f"no checkpoint was written to {ckpt}; {again} to start again"


def run(name: str, profile: str | None = None, output_dir: str | None = None, checkpoint_dir: str | None = None) -> Path:
    """Execute stage ``name`` (see the module docstring). Failures raise :class:`FacefillError`, Ctrl-C
    :class:`facefill.errors.Interrupted`, each with one line that says what is kept and how to go on."""
    import papermill

    root = repo_root()
    values = notebook_parameters(name, profile, root=root)
    if output_dir:
        values["output_dir"] = output_dir
    if checkpoint_dir:
        values["checkpoint_dir"] = checkpoint_dir
    check_against_notebook(name, values, root, where=f"params.yaml {values['profile']}.{name}")
    custom = bool(output_dir or checkpoint_dir)

    out = prepare_output_dir(root / values["output_dir"], root / values["checkpoint_dir"], root, name)
    executed = out / f"{NOTEBOOKS[name]}.ipynb"
    try:
        build_executable(name, executed, root)  # executed in place: papermill reads it, then overwrites it
        print(f"[facefill] {name}: profile={values['profile']} → {executed}", flush=True)
        try:
            with _env(PIPELINE_ENV, "1"), kernel_output_to_stderr(), _quiet_after_ctrl_c():
                papermill.execute_notebook(
                    str(executed), str(executed), parameters=values, cwd=str(root),
                    kernel_name="python3", progress_bar=False, log_output=True, **_kernel_options(),
                )
        except KeyboardInterrupt:
            raise Interrupted(f"stage {name} stopped by Ctrl-C; {_what_now(values, root, custom)}.") from None
        except papermill.PapermillExecutionError as e:
            if e.ename in ("Interrupted", "KeyboardInterrupt"):  # the kernel was interrupted (Jupyter's stop button, SIGINT)
                raise Interrupted(f"stage {name} was interrupted in cell {e.exec_count}; {_what_now(values, root, custom)}.") from None
            raise FacefillError(
                f"{NOTEBOOKS[name]}.ipynb failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
                f"The executed copy with the traceback is {executed}; {_what_now(values, root, custom)} once the cause is fixed."
            ) from None
    finally:
        try:  # what this run wrote, however it ended: a rerun deletes exactly these
            record_manifest(out, name)
        except OSError as e:
            print(f"facefill: warning: could not list this run's files in {out / OUTPUT_MARKER} ({e.strerror or e}); "
                  "a rerun into this folder will ask you to empty it first.", file=sys.stderr)
    return executed


def _refusal(out: Path, checkpoint_dir: Path, root: Path) -> str | None:
    """Why ``out`` must never be emptied, or None when it may be (given the marker)."""
    home = Path.home().resolve()
    if out == Path(out.anchor):
        return "it is the file-system root"
    if out == root or out in root.parents:
        return f"it is the project folder {root} or one of its parents"
    if out == home or out in home.parents:
        return "it is your home folder or one of its parents"
    if checkpoint_dir == out or out in checkpoint_dir.parents:
        return f"it holds the checkpoint folder {checkpoint_dir}, which must survive a rerun (give --checkpoint-dir a folder outside it)"
    if out.is_dir():
        for p in out.rglob(".git"):
            return f"it holds a git repository ({p})"
    return None


def _entries(out: Path) -> list[str]:
    """Everything under ``out`` but the marker, as sorted POSIX paths relative to it: files (and links,
    never followed) plus empty folders, the latter with a trailing ``/``."""
    found = []

    def walk(folder: Path, rel: str) -> None:
        with os.scandir(folder) as it:
            children = sorted(it, key=lambda e: e.name)
        if not children and rel:
            found.append(rel + "/")
        for e in children:
            r = f"{rel}/{e.name}" if rel else e.name
            if r == OUTPUT_MARKER:
                continue
            if e.is_dir(follow_symlinks=False):
                walk(Path(e.path), r)
            else:
                found.append(r)

    walk(out, "")
    return sorted(found)


def _marker_text(stage: str, files: list[str] | None) -> str:
    """The marker: JSON naming the stage and, once the run has ended, every file it wrote (``files``;
    null while it runs, so a run killed before recording them leaves no list)."""
    return json.dumps({
        "written_by": f"python -m facefill.pipeline run {stage}",
        "about": "a rerun deletes only the files listed here; it refuses to start while the folder holds anything else",
        "stage": stage,
        "files": files,
    }, indent=1, ensure_ascii=False) + "\n"


def read_manifest(out: str | Path) -> list[str] | None:
    """The files the last run into ``out`` recorded in its marker, or None (no marker, an older format,
    or a run that never got to record them)."""
    try:
        files = json.loads((Path(out) / OUTPUT_MARKER).read_text()).get("files")
    except (OSError, ValueError, AttributeError):
        return None
    return [f for f in files if isinstance(f, str)] if isinstance(files, list) else None


def record_manifest(out: str | Path, stage: str) -> list[str]:
    """Write the marker of ``out`` listing everything under it now: what the run of ``stage`` wrote.
    Called by :func:`run` when the run ends, however it ends."""
    out = Path(out)
    files = _entries(out)
    (out / OUTPUT_MARKER).write_text(_marker_text(stage, files))
    return files


def _name_some(paths: list[str], n: int = 5) -> str:
    shown = ", ".join(paths[:n])
    return shown + (f" (and {len(paths) - n} more)" if len(paths) > n else "")


def prepare_output_dir(out: str | Path, checkpoint_dir: str | Path, root: Path, stage: str) -> Path:
    """Make ``out`` an empty output folder of ``stage`` without ever deleting what is not ours.

    A missing or empty folder is created and marked with :data:`OUTPUT_MARKER`. A folder that holds
    the marker is a previous run's: the files its marker lists (what that run wrote, recorded by
    :func:`record_manifest`) are deleted, but only when nothing else is there: a file or folder the
    run did not write (a user's notes), or a marker without a list (an older facefill, a run that was
    killed), makes it a :class:`ConfigError` naming them. Anything else is refused too, and so are the
    project folder, its parents, the home folder and folders holding ``.git`` or ``checkpoint_dir``.
    A folder that cannot be read, created or written (read-only file system, permissions) is a
    one-line :class:`ConfigError` as well.
    """
    try:
        return _prepare_output_dir(out, checkpoint_dir, root, stage)
    except OSError as e:
        where = Path(e.filename) if getattr(e, "filename", None) else Path(out)
        raise ConfigError(
            f"cannot use the output folder {Path(out)} ({e.strerror or type(e).__name__}"
            + (f": {where}" if where != Path(out) else "") + f"): make it writable or choose another --output-dir, e.g. build/{stage}."
        ) from None


def _prepare_output_dir(out, checkpoint_dir, root, stage: str) -> Path:
    out, checkpoint_dir, root = Path(out).resolve(), Path(checkpoint_dir).resolve(), Path(root).resolve()
    why = _refusal(out, checkpoint_dir, root)
    if why:
        raise ConfigError(f"refusing to use {out} as the output folder: {why}. Choose a new or empty folder, e.g. --output-dir build/{stage}.")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is a file; remove it or choose another --output-dir.")
    if out.is_dir() and any(out.iterdir()):
        if not (out / OUTPUT_MARKER).is_file():
            raise ConfigError(
                f"output folder {out} holds files that facefill did not write (no {OUTPUT_MARKER} marker), and a run empties "
                f"its output folder. Choose a new or empty folder (e.g. --output-dir build/{stage}), or move those files away."
            )
        present = _entries(out)
        manifest = read_manifest(out)
        if manifest is None:
            if present:
                raise ConfigError(
                    f"output folder {out} holds files that no finished run recorded as its own (its {OUTPUT_MARKER} lists none: "
                    f"an older facefill, or a run that was killed): {_name_some(present)}; move them away (delete them if they "
                    f"are old outputs) or choose another --output-dir, e.g. build/{stage}-2."
                )
        else:
            ours = set(manifest)
            folders = {str(p) for f in manifest for p in Path(f).parents}  # an emptied folder of the run's is still its own
            unknown = [p for p in present if p not in ours and not (p.endswith("/") and p.rstrip("/") in folders)]
            if unknown:
                raise ConfigError(
                    f"output folder {out} holds {len(unknown)} file(s) the last run did not write: {_name_some(unknown)}; "
                    f"a rerun deletes that run's files, so move these away or choose another --output-dir, e.g. build/{stage}-2."
                )
        for rel in present:  # every one of them ours (checked above): the previous run's outputs
            if not rel.endswith("/"):
                (out / rel).unlink()
        for folder in sorted((p for p in out.rglob("*") if p.is_dir() and not p.is_symlink()), key=lambda p: len(p.parts), reverse=True):
            if not any(folder.iterdir()):
                folder.rmdir()  # emptied above (or created empty by the run)
    out.mkdir(parents=True, exist_ok=True)
    (out / OUTPUT_MARKER).write_text(_marker_text(stage, None))
    return out


def prepare(params: dict | None = None) -> dict:
    """The ``prepare_data`` stage: decode the ``data.variants`` of params.yaml once into ``data.processed_dir``."""
    from . import data

    root = repo_root()
    params = params or load_params(root / "params.yaml")
    d = params.get("data") or {}
    from .config import check_keys

    check_keys(d, {"dir", "processed_dir", "limit", "variants"}, "params.yaml data")
    # the split is the protocol constants data.TEST_FRACTION / VAL_FRACTION (72/8/20: paper 000's 20 % test), not a parameter:
    # every notebook must read the same split the cache was written with
    return data.prepare(
        list(d.get("variants") or []), data_dir=d.get("dir"), processed_dir=root / d.get("processed_dir", "data/processed"),
        seed=int(params.get("seed", 0)), limit=d.get("limit"),
    )


def code_deps(name: str, root: Path | None = None) -> list[str]:
    """The files of the package a notebook stage uses: the facefill modules its notebook imports,
    transitively (lazy imports inside functions included), and the paper-number files it loads.

    ``dvc.yaml`` lists exactly these as the stage's code deps (a test checks it), so editing one
    paper's model does not rerun the other papers' stages.
    """
    import ast

    root = root or repo_root()
    pkg = root / "facefill"

    def module_file(dotted: str) -> Path | None:
        rel = Path(*dotted.split("."))
        for cand in (root / rel.with_suffix(".py"), root / rel / "__init__.py"):
            if cand.exists():
                return cand
        return None

    def imports(path: Path) -> set[str]:
        tree = ast.parse(path.read_text())
        here = path.relative_to(root).with_suffix("").parts
        package = here[:-1] if path.name != "__init__.py" else here[:-1]
        found: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.split(".")[0] == "facefill"}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1])
                    mod = f"{base}.{node.module}" if node.module else base
                else:
                    mod = node.module or ""
                if mod.split(".")[0] != "facefill":
                    continue
                found.add(mod)
                found |= {f"{mod}.{a.name}" for a in node.names}  # `from facefill import data`
        return found

    if name in NOTEBOOKS:
        todo = ["facefill", "facefill.pipeline"] + sorted(imports(notebook_path(name, root).with_suffix(".py")))
    else:  # a stage without a notebook runs its study module (the DCGAN: python -m facefill.experiments.dcgan_faces)
        study = {p.section: p.study for p in papers.PAPERS}.get(name)
        if study is None:
            raise ConfigError(f"unknown stage {name!r}; stages: {[p.section for p in papers.PAPERS]}.")
        todo = ["facefill", f"facefill.experiments.{study}"]
    seen: set[Path] = set()
    while todo:
        mod = todo.pop()
        parts = mod.split(".")
        for i in range(1, len(parts) + 1):  # a module's parent packages are imported too
            f = module_file(".".join(parts[:i]))
            if f and f not in seen:
                seen.add(f)
                todo += sorted(imports(f))
    for f in list(seen):  # a paper's study module reads the YAML of the same name beside it
        if f.parent == pkg / "experiments" and f.with_suffix(".yaml").exists():
            seen.add(f.with_suffix(".yaml"))
    return sorted(str(p.relative_to(root)) for p in seen)


def write_deps(root: Path | None = None, check: bool = False) -> list[str]:
    """Add to the package-file deps of every notebook stage in ``dvc.yaml`` what :func:`code_deps` finds.

    Only the ``facefill/...`` lines of each stage's ``deps:`` change (the notebook and data lines,
    comments and layout stay), sorted. Files listed by hand stay: code_deps follows static imports
    only, and a stage may load a module by name (the multiscale study times models through
    ``facefill.bench``). ``check``: write nothing, return the stages whose lists lack files.
    Returns the stages changed (or lacking).
    """
    root = root or repo_root()
    path = root / "dvc.yaml"
    lines, out, changed = path.read_text().splitlines(keepends=True), [], []
    stage, in_deps, i = None, False, 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if line.startswith("  ") and not line.startswith("   ") and stripped.endswith(":"):
            stage, in_deps = stripped[:-1], False
        elif stripped == "deps:":
            in_deps = True
        elif in_deps and not stripped.startswith("- "):
            in_deps = False
        if in_deps and stage in SECTIONS and stripped.startswith("- facefill/"):
            indent = line[: len(line) - len(line.lstrip())]
            old = []
            while i < len(lines) and lines[i].strip().startswith("- facefill/"):
                old.append(lines[i].strip()[2:])
                i += 1
            new = sorted({d for d in old if (root / d).exists()} | set(code_deps(stage, root)))  # a moved file's old path goes
            if old != new:
                changed.append(stage)
            out += [f"{indent}- {d}\n" for d in new]
            continue
        out.append(line)
        i += 1
    if changed and not check:
        path.write_text("".join(out))
    return changed


def check_all(root: Path | None = None) -> int:
    root = root or repo_root()
    params = load_params(root / "params.yaml")
    n = 0
    for name in NOTEBOOKS:
        if not source_path(name, root).exists():
            continue
        for profile in PROFILES:
            check_against_notebook(name, notebook_parameters(name, profile, params, root), root, where=f"params.yaml {profile}.{name}")
            n += 1
    return n


def estimate(profile: str | None = None, stages: list[str] | None = None, device: str = "auto", steps: int = 3,
             warmup: int = 2, compile: bool = False, params: dict | None = None, out=None) -> list[dict]:
    """Time a few training steps of every stage's networks at ``profile``'s sizes on ``device`` and print
    the extrapolated stage times: :func:`facefill.estimate.estimate_profile`."""
    import importlib

    # imported by name: the estimate imports every model, and a static import here would make every
    # stage's DVC deps (which follow this runner's imports) include all of them
    est = importlib.import_module("facefill.estimate")
    params = params or load_params(repo_root() / "params.yaml")
    return est.estimate_profile(params, profile or params["profile"], stages, device, steps, warmup, compile, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute one notebook stage with papermill")
    r.add_argument("stage", choices=list(NOTEBOOKS))
    r.add_argument("--profile", choices=PROFILES,
                   help="parameter profile of params.yaml: smoke (minutes, tests), default (what `dvc repro` runs), "
                        "paper (the papers' sizes); default: `profile:` in params.yaml")
    r.add_argument("--output-dir", metavar="DIR",
                   help="where the executed notebook, tables and figures go (default: reports/<notebook>/); it must be "
                        "new, empty, or an earlier run's output folder holding only that run's files, which are replaced")
    r.add_argument("--checkpoint-dir", metavar="DIR",
                   help="where training checkpoints go (default: models/<notebook>/); a rerun resumes from them, "
                        "so it must lie outside --output-dir")
    sub.add_parser("check", help="validate params.yaml (every profile: keys, types, ranges) against every notebook's parameters cell")
    sub.add_parser("prepare", help="the prepare_data stage: decode the data.variants of params.yaml")
    d = sub.add_parser("deps", help="print the package files a stage uses (its dvc.yaml code deps); --write updates dvc.yaml")
    d.add_argument("stage", choices=list(NOTEBOOKS), nargs="?")
    d.add_argument("--write", action="store_true", help="rewrite the facefill/ deps of every notebook stage in dvc.yaml")
    e = sub.add_parser("estimate", help="time a few training steps of every stage at a profile's sizes and extrapolate its wall time")
    e.add_argument("--profile", choices=PROFILES)
    e.add_argument("--stages", nargs="*")
    e.add_argument("--device", default="auto", help="auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps")
    e.add_argument("--steps", type=int, default=3, help="timed steps per network (after warm-up)")
    e.add_argument("--warmup", type=int, default=2)
    e.add_argument("--compile", action="store_true", help="CUDA: also try torch.compile (CUDA graphs) per network")
    args = p.parse_args(argv)
    try:
        if args.cmd == "estimate":
            if args.steps < 1 or args.warmup < 0:
                raise ConfigError(f"--steps {args.steps} must be >= 1 and --warmup {args.warmup} >= 0.")
            estimate(args.profile, args.stages, args.device, args.steps, args.warmup, args.compile)
        elif args.cmd == "run":
            run(args.stage, args.profile, args.output_dir, args.checkpoint_dir)
        elif args.cmd == "prepare":
            prepare()
        elif args.cmd == "deps":
            if args.write:
                changed = write_deps()
                print(f"dvc.yaml: code deps rewritten for {', '.join(changed)}" if changed else "dvc.yaml: code deps up to date")
            elif not args.stage:
                raise ConfigError("name a stage (python -m facefill.pipeline deps context_encoder) or pass --write.")
            else:
                print("\n".join(code_deps(args.stage)))
        else:
            print(f"params.yaml OK: {check_all()} notebook sections validated")
    except Interrupted as e:  # Ctrl-C: one line saying what is kept, no traceback
        print(f"facefill: {e}", file=sys.stderr)
        return 130
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"facefill: `{args.cmd}` stopped by Ctrl-C; rerun the same command to start it again.", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
