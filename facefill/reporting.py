"""Report artefacts of a notebook run: tables (CSV + Markdown), figures, metrics.json, paper numbers.

Every table is written with a header line saying which profile, how much data and which device
produced it, and paper-vs-ours tables always print ``paper | ours | Δ`` with our bootstrap interval.
The papers' numbers are data (``facefill/experiments/<paper>.yaml``, read by ``facefill.experiments.study_data``), never typed into a notebook.
"""
from __future__ import annotations

import json
import math
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import pandas as pd
import torch

from .config import PIPELINE_ENV, PROFILES, check_keys, notebook_parameters, repo_root
from . import profiling
from .errors import ConfigError
from .profiling import timed
from .papers import NOTEBOOKS
from .runtime import configure_reproducibility, resolve_device, set_seed

@dataclass
class Run:
    """Where a notebook writes, and the facts every table must state."""

    name: str
    params: dict
    root: Path
    output_dir: Path
    checkpoint_dir: Path
    device: torch.device
    context: dict = field(default_factory=dict)

    # ------------------------------------------------------------------ context
    def describe(self, **facts: Any) -> None:
        """Add facts (dataset, n_train, n_test, precision, ...) to the context every table states."""
        self.context.update(facts)

    def context_line(self) -> str:
        facts = {"profile": self.params["profile"], "seed": self.params["seed"], "device": self.device.type, **self.context}
        return " · ".join(f"{k}: {v}" for k, v in facts.items())

    # ------------------------------------------------------------------ artefacts
    def save_table(self, df: pd.DataFrame, name: str, title: str, notes: Iterable[str] = (), floatfmt: str = ".4g") -> pd.DataFrame:
        """Write ``name.csv`` and ``name.md`` (title, context line, table, notes); returns ``df``."""
        df.to_csv(self.output_dir / f"{name}.csv", index=False)
        md = [f"### {title}", "", f"*{self.context_line()}*", "", df.astype(object).where(df.notna(), None).to_markdown(index=False, floatfmt=floatfmt, missingval="—")]
        notes = list(notes)
        if notes:
            md += ["", *[f"- {n}" for n in notes]]
        (self.output_dir / f"{name}.md").write_text("\n".join(md) + "\n")
        return df

    def save_figure(self, fig, name: str, dpi: int = 110) -> Path:
        path = self.output_dir / f"{name}.png"
        with timed("figures"):
            fig.savefig(path, dpi=dpi, bbox_inches="tight")
        return path

    def save_metrics(self, metrics: Mapping[str, Any]) -> dict:
        """Merge ``metrics`` into ``metrics.json`` (small, flat-ish JSON for ``dvc metrics``)."""
        path = self.output_dir / "metrics.json"
        current = json.loads(path.read_text()) if path.exists() else {"profile": self.params["profile"], **self.context}
        current.update(_jsonable(metrics))
        path.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
        return current


def _jsonable(x):
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item"):
        x = x.item()
    if isinstance(x, float):
        return round(x, 6) if math.isfinite(x) else str(x)
    return x


_PLAIN = (str, int, float, bool, type(None), list, dict, tuple)
_IPYTHON_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}


def notebook_parameter_names(namespace: Mapping[str, Any]) -> list[str]:
    """Names of the plain-valued globals defined so far: in the cell after ``parameters`` these are
    exactly the parameters (papermill's injected ones included)."""
    return [k for k, v in namespace.items() if not k.startswith("_") and k not in _IPYTHON_NAMES and isinstance(v, _PLAIN)]


def start(name: str, params: Mapping[str, Any], expected: Iterable[str] | None = None) -> Run:
    """Begin a notebook run: validate the parameters, seed everything, create the output folders.

    ``params`` is the notebook's ``globals()`` (called in the cell after ``parameters``, so its plain
    values are the parameters, papermill's injected ones included) or a plain parameter dict;
    ``expected`` the names the notebook declares, to catch stray keys. When the
    notebook's source ``notebooks/<name>.py`` exists, ``params`` is also checked against its
    parameters cell (:func:`check_notebook_parameters`): a name papermill injected that the cell
    does not declare (``-p stepz 3``) and a value of the wrong type or range (``-p steps '"6"'``)
    stop the notebook here, in its first cell, instead of training on defaults.
    """
    namespace = None
    if "__name__" in params:  # a notebook's globals(): its parameters are the plain values defined so far
        namespace = params
        params = {k: namespace[k] for k in notebook_parameter_names(namespace)}
    params = dict(params)
    explore = explore_values(name, params)
    if explore is not None:
        params.update(explore)
        if namespace is not None:
            namespace.update(explore)  # the notebook's variables agree with run.params
    if expected is not None:
        check_keys(params, set(expected), f"the parameters of {name}")
    root = repo_root()
    source = notebook_source(name, root)
    if source is not None:
        check_notebook_parameters(name, params, source)
    if params.get("profile") not in PROFILES:
        raise ConfigError(f"profile={params.get('profile')!r}; choose one of {PROFILES}.")
    out = (root / params["output_dir"]).resolve()
    ckpt = (root / params["checkpoint_dir"]).resolve()
    out.mkdir(parents=True, exist_ok=True)
    ckpt.mkdir(parents=True, exist_ok=True)
    environment = configure_reproducibility(device=params.get("device", "auto"))
    set_seed(int(params["seed"]))
    device = resolve_device(params.get("device", "auto"))
    run = Run(name, params, root, out, ckpt, device)
    profiling.record_to(out / "timings.json")  # where this run spends its time (facefill.profiling)
    (out / "environment.json").write_text(json.dumps(_jsonable(environment), indent=2, sort_keys=True) + "\n")
    print(f"{name}: profile={params['profile']} seed={params['seed']} device={device} threads={environment['threads']} "
          f"torch={torch.__version__} python={platform.python_version()}\n  outputs → {out}\n  checkpoints → {ckpt}")
    return run


def explore_values(name: str, params: Mapping[str, Any]) -> dict | None:
    """Interactive exploration of a trained pipeline: the parameters of ``params["profile"]``.

    When a notebook runs outside the pipeline (no ``FACEFILL_PIPELINE=1``, e.g. in JupyterLab) with
    ``profile`` set to anything but ``smoke``, its values come from that profile's section of
    ``params.yaml`` (as ``python -m facefill.pipeline run`` would inject them), the checkpoints are the
    pipeline's (``models/<name>``, so finished runs resume instead of retraining) and the outputs go
    to ``build/explore/<name>`` (``reports/`` stays the pipeline's). Returns those values (and says
    what it did), or ``None`` when nothing changes.
    """
    import os

    section = {nb: sec for sec, nb in NOTEBOOKS.items()}.get(name)
    if os.environ.get(PIPELINE_ENV) == "1" or params.get("profile") in (None, "smoke") or section is None:
        return None
    profile = params["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r}; choose one of {PROFILES}.")
    values = notebook_parameters(section, profile)
    values["output_dir"] = f"build/explore/{name}"
    changed = [f"{k} {params.get(k)!r}→{v!r}" for k, v in values.items() if params.get(k) != v and k not in ("output_dir", "checkpoint_dir")]
    print(f"{name}: interactive run with profile={profile!r}: {len(changed)} parameter(s) from params.yaml "
          f"({profile}.{section} over base.{section}): {', '.join(changed) or 'none differ'}\n"
          f"  checkpoints → {values['checkpoint_dir']} (the pipeline's: finished runs resume, nothing retrains)\n"
          f"  outputs → {values['output_dir']} (reports/ is left to the pipeline)")
    return values


def notebook_source(name: str, root: Path | None = None) -> Path | None:
    """The source of notebook ``name``: ``notebooks/<name>.py`` (else the .ipynb), or None."""
    root = root or repo_root()
    for suffix in (".py", ".ipynb"):
        path = root / "notebooks" / f"{name}{suffix}"
        if path.is_file():
            return path
    return None


def check_notebook_parameters(name: str, params: Mapping[str, Any], source: str | Path) -> None:
    """Compare the names and values a notebook received with its parameters cell in ``source``.

    ``params`` holds the plain globals of the kernel (see :func:`notebook_parameter_names`), which
    include what papermill injected. A name that is neither declared in the parameters cell nor bound
    anywhere in the notebook can only have come from outside (``papermill -p stepz 3``): a
    ConfigError with a did-you-mean. Declared values are checked against the type of their default
    and their range (:func:`facefill.config.check_parameters`).
    """
    from .config import check_parameters, did_you_mean
    from .notebooks import declared_parameters, top_level_names

    declared = declared_parameters(source)
    unknown = [k for k in params if k not in declared]
    if unknown:
        unknown = [k for k in unknown if k not in top_level_names(source)]
    if unknown:
        hints = "".join(did_you_mean(k, declared) for k in unknown)
        raise ConfigError(
            f"{name}: unknown parameter(s) {unknown}: the notebook's parameters cell does not declare them "
            f"(passed with papermill -p, or defined by hand in this kernel session: restart it).{hints} "
            f"Its parameters: {sorted(declared)}.")
    check_parameters({k: v for k, v in params.items() if k in declared}, declared,
                     f"{name} (parameters cell or papermill -p)", style="notebook")


def use_pipeline_backend() -> None:
    """Switch matplotlib to the non-interactive Agg backend when ``python -m facefill.pipeline run``
    executes this notebook (it sets ``FACEFILL_PIPELINE=1``, which the kernel inherits); in Jupyter
    and under nbval the notebook keeps its inline backend. Figures are saved to the report folder
    either way. Call it before the first figure."""
    import os

    if os.environ.get(PIPELINE_ENV) == "1":
        import matplotlib

        matplotlib.use("Agg")


def compare(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Paper-vs-ours table. Each row: ``metric``, ``paper`` (None when the paper has no number),
    ``ours``, optional ``ci_low``/``ci_high`` and any extra columns (e.g. ``method``, ``dataset``).
    Adds ``Δ = ours − paper`` and a formatted ``ours 95% CI``."""
    out = []
    for r in rows:
        r = dict(r)
        paper, ours = r.get("paper"), r.get("ours")
        r["Δ (ours − paper)"] = (ours - paper) if paper is not None and ours is not None else None
        if "ci_low" in r:
            r["ours 95% CI"] = f"[{r.pop('ci_low'):.4g}, {r.pop('ci_high'):.4g}]"
        out.append(r)
    df = pd.DataFrame(out)
    first = [c for c in ("dataset", "method", "metric", "paper", "ours", "Δ (ours − paper)", "ours 95% CI") if c in df]
    return df[first + [c for c in df.columns if c not in first]]


def image_grid(rows: list[torch.Tensor], titles: list[str] | None = None, n: int | None = None, scale: float = 1.6):
    """A matplotlib figure with one row per tensor (N, 3, H, W) in [-1, 1], ``n`` columns."""
    import matplotlib.pyplot as plt

    n = n or rows[0].shape[0]
    fig, axes = plt.subplots(len(rows), n, figsize=(scale * n, scale * len(rows)), squeeze=False)
    for i, row in enumerate(rows):
        for j in range(n):
            ax = axes[i][j]
            ax.imshow(((row[j].float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).cpu().numpy())
            ax.set_xticks([]), ax.set_yticks([])
            if j == 0 and titles:
                ax.set_ylabel(titles[i], fontsize=9)
    fig.tight_layout()
    return fig


def loss_figure(history: pd.DataFrame, columns: list[str], title: str, logy: bool = True):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    for c in columns:
        ax.plot(history["step"], history[c], label=c)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if logy:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    return fig


#: a run named "<arm> seed 3", "<arm> · seed 3", "<arm> s3" or "seed 3": one seed of an arm
SEED_NAME = re.compile(r"^(?P<arm>.*?)[\s·]*(?:\bseed |(?<=\s)s)(?P<seed>\d+)$")


def runs_by_arm(names: Iterable[str]) -> dict[str, list[str]]:
    """Run names grouped by arm (the name without its seed; "all seeds" when only a seed is named)."""
    groups: dict[str, list[str]] = {}
    for name in names:
        m = SEED_NAME.match(name)
        arm = (m.group("arm").strip() or "all seeds") if m else name
        groups.setdefault(arm, []).append(name)
    return groups


def _curve(history: pd.DataFrame, column: str) -> pd.Series:
    """``column`` against step, logged rows only (a fresh Series: a history's ``attrs`` never travel into pandas ops)."""
    d = history[["step", column]].dropna().groupby("step")[column].last()
    return pd.Series(d.to_numpy(), index=d.index.to_numpy())


def loss_figure_runs(histories: Mapping[str, pd.DataFrame], columns: list[str], title: str, logy: bool = True):
    """One panel per column, one curve per arm: the mean over its seeds (:func:`runs_by_arm`) with a band
    from their minimum to their maximum, on the steps every seed logged; NaN rows (columns logged every
    k steps only, such as a validation loss) are skipped. One legend below the panels, off the data."""
    import matplotlib.pyplot as plt

    groups = runs_by_arm(histories)
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6), squeeze=False)
    handles = {}
    for ax, c in zip(axes[0], columns):
        for k, (arm, names) in enumerate(groups.items()):
            series = [_curve(histories[n], c) for n in names if c in histories[n]]
            if not series:
                continue
            curves = pd.concat(series, axis=1, join="inner")
            color = f"C{k % 10}"
            (line,) = ax.plot(curves.index, curves.mean(axis=1), color=color, lw=1.3)
            if curves.shape[1] > 1:
                ax.fill_between(curves.index, curves.min(axis=1), curves.max(axis=1), color=color, alpha=0.2, lw=0)
            handles[arm] = (line, f"{arm} (mean of {curves.shape[1]} seeds, band: min–max)" if curves.shape[1] > 1 else arm)
        ax.set_xlabel("step")
        ax.set_title(c)
        if logy:
            ax.set_yscale("log")
    fig.suptitle(title)
    rows = math.ceil(len(handles) / 2)
    fig.tight_layout(rect=(0, min(0.45, 0.07 * rows + 0.03), 1, 1))
    fig.legend([h for h, _ in handles.values()], [t for _, t in handles.values()], loc="lower center", ncol=2, fontsize=8,
               frameon=False)
    return fig
