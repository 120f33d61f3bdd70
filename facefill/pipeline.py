"""Run a notebook as a pipeline stage: params.yaml → papermill → reports/<notebook>/.

``python -m facefill.pipeline run context_encoder`` is what ``dvc.yaml`` calls. It

1. reads ``params.yaml``: the notebook's ``base`` section updated with the active profile's overrides
   (``--profile`` chooses another profile),
2. refuses keys the notebook's ``parameters`` cell does not define (and vice versa), and values of the
   wrong type or out of range (:func:`facefill.config.check_parameters`),
3. empties ``reports/<notebook>/`` (outputs are fully rewritten on every run) — but only a folder that
   a previous run marked as its own (:data:`OUTPUT_MARKER`), never the project, ``$HOME`` or a folder
   holding ``.git`` or the checkpoints (:func:`prepare_output_dir`); checkpoints live in
   ``models/<notebook>/`` and survive, so an interrupted stage resumes instead of retraining,
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
import logging
import os
import shutil
import sys
from pathlib import Path

from .config import PROFILES, _did_you_mean, check_parameters, load_params, repo_root, section
from .errors import ConfigError, FacefillError

#: params.yaml section → notebook (one DVC stage each, in reading order)
NOTEBOOKS = {
    "context_encoder": "00_context_encoder",
    "multiscale": "01_multiscale_context_encoder",
    "cascade": "02_cascade_context_encoder",
    "masked_face": "03_masked_face_inpainting",
    "semantic": "04_semantic_inpainting_landmarks",
    "srgan": "05_srgan_faces",
}

#: file the runner writes into every output folder it creates: only folders holding it are ever emptied
OUTPUT_MARKER = ".facefill-output"

#: parameters every notebook has, filled in by the runner rather than by the profile section
COMMON = ("profile", "seed", "data_dir", "processed_dir", "output_dir", "checkpoint_dir")


#: environment variable the runner sets for the kernel (papermill kernels inherit the environment)
PIPELINE_ENV = "FACEFILL_PIPELINE"


def notebook_path(name: str, root: Path | None = None) -> Path:
    """The committed ``notebooks/<notebook>.ipynb`` (generated from :func:`source_path`; open it in Jupyter)."""
    root = root or repo_root()
    if name not in NOTEBOOKS:
        raise ConfigError(f"unknown stage {name!r}; stages: {list(NOTEBOOKS)}.")
    return root / "notebooks" / f"{NOTEBOOKS[name]}.ipynb"


def source_path(name: str, root: Path | None = None) -> Path:
    """The py:percent source ``notebooks/<notebook>.py``: what the stage depends on and executes."""
    return notebook_path(name, root).with_suffix(".py")


def notebook_parameters(name: str, profile: str | None = None, params: dict | None = None, root: Path | None = None) -> dict:
    """The full parameter dict papermill injects for stage ``name``."""
    root = root or repo_root()
    params = params or load_params(root / "params.yaml")
    profile = profile or params["profile"]
    values = section(params, name, profile)
    clash = [k for k in values if k in COMMON]
    if clash:
        raise ConfigError(f"{profile}.{name} sets {clash}; these come from the top of params.yaml, remove them there.")
    data = params.get("data") or {}
    nb = NOTEBOOKS[name]
    return {
        "profile": profile,
        "seed": int(params.get("seed", 0)),
        "data_dir": data.get("dir"),
        "processed_dir": data.get("processed_dir", "data/processed"),
        "output_dir": f"reports/{nb}",
        "checkpoint_dir": f"models/{nb}",
        **values,
    }


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
        hints = "".join(_did_you_mean(k, declared) for k in unknown)
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


@contextlib.contextmanager
def kernel_output_to_stderr(stream=None):
    """Show what the kernel prints (papermill ``log_output=True`` logs it to the ``papermill`` logger)
    on ``stream`` (stderr), plain, so ``dvc repro`` and ``pipeline run`` show resuming / config
    changed / results as they happen. Restores the logger afterwards."""
    logger = logging.getLogger("papermill")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(_KernelOutput())
    handler.addFilter(lambda r: not r.getMessage().startswith(_PAPERMILL_NOISE))
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


def run(name: str, profile: str | None = None, output_dir: str | None = None, checkpoint_dir: str | None = None) -> Path:
    import papermill

    root = repo_root()
    values = notebook_parameters(name, profile, root=root)
    if output_dir:
        values["output_dir"] = output_dir
    if checkpoint_dir:
        values["checkpoint_dir"] = checkpoint_dir
    check_against_notebook(name, values, root, where=f"params.yaml {values['profile']}.{name}")

    out = prepare_output_dir(root / values["output_dir"], root / values["checkpoint_dir"], root, name)
    executed = out / f"{NOTEBOOKS[name]}.ipynb"
    build_executable(name, executed, root)  # executed in place: papermill reads it, then overwrites it
    print(f"[facefill] {name}: profile={values['profile']} → {executed}", flush=True)
    try:
        with _env(PIPELINE_ENV, "1"), kernel_output_to_stderr():
            papermill.execute_notebook(
                str(executed), str(executed), parameters=values, cwd=str(root),
                kernel_name="python3", progress_bar=False, log_output=True,
            )
    except papermill.PapermillExecutionError as e:
        raise FacefillError(
            f"{NOTEBOOKS[name]}.ipynb failed in cell {e.exec_count}: {e.ename}: {e.evalue}\n"
            f"The executed copy with the traceback is {executed}. Checkpoints in {values['checkpoint_dir']} are kept; "
            "fix the cause and rerun `dvc repro` to resume."
        ) from None
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


def prepare_output_dir(out: str | Path, checkpoint_dir: str | Path, root: Path, stage: str) -> Path:
    """Make ``out`` an empty output folder of ``stage`` without ever deleting what is not ours.

    A missing or empty folder is created and marked with :data:`OUTPUT_MARKER`; a folder that holds
    the marker (a previous run's outputs) is emptied; anything else is refused with a
    :class:`ConfigError`, and so are the project folder, its parents, the home folder and folders
    holding ``.git`` or ``checkpoint_dir``.
    """
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
        for child in out.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / OUTPUT_MARKER).write_text(f"Written by `python -m facefill.pipeline run {stage}`; a rerun empties this folder.\n")
    except PermissionError:
        raise ConfigError(f"cannot write to the output folder {out}: make it writable or choose another --output-dir.") from None
    return out


def prepare(params: dict | None = None) -> dict:
    """The ``prepare_data`` stage: decode the ``data.variants`` of params.yaml once into ``data.processed_dir``."""
    from . import data

    root = repo_root()
    params = params or load_params(root / "params.yaml")
    d = params.get("data") or {}
    from .config import check_keys

    check_keys(d, {"dir", "processed_dir", "limit", "variants"}, "params.yaml data")
    # the split is the protocol constant data.TEST_FRACTION (80/20, paper 000), not a parameter:
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

    todo = ["facefill", "facefill.pipeline"] + sorted(imports(notebook_path(name, root).with_suffix(".py")))
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
    the extrapolated stage times: :func:`facefill.bench.estimate_profile`."""
    import importlib

    # imported by name: the benchmark imports every model, and a static import here would make every
    # stage's DVC deps (which follow this runner's imports) include all of them
    bench = importlib.import_module("facefill.bench")
    params = params or load_params(repo_root() / "params.yaml")
    return bench.estimate_profile(params, profile or params["profile"], stages, device, steps, warmup, compile, out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m facefill.pipeline", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="execute one notebook stage with papermill")
    r.add_argument("stage", choices=list(NOTEBOOKS))
    r.add_argument("--profile", choices=PROFILES)
    r.add_argument("--output-dir")
    r.add_argument("--checkpoint-dir")
    sub.add_parser("check", help="validate params.yaml (every profile: keys, types, ranges) against every notebook's parameters cell")
    sub.add_parser("prepare", help="the prepare_data stage: decode the data.variants of params.yaml")
    d = sub.add_parser("deps", help="print the package files a stage uses (its dvc.yaml code deps)")
    d.add_argument("stage", choices=list(NOTEBOOKS))
    e = sub.add_parser("estimate", help="time a few training steps of every stage at a profile's sizes and extrapolate its wall time")
    e.add_argument("--profile", choices=PROFILES)
    e.add_argument("--stages", nargs="*")
    e.add_argument("--device", default="auto")
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
            print("\n".join(code_deps(args.stage)))
        else:
            print(f"params.yaml OK: {check_all()} notebook sections validated")
    except FacefillError as e:
        print(f"facefill: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
