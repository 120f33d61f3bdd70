"""params.yaml: a base section per notebook, per-profile overrides, and strict validation.

Layout of ``params.yaml``::

    profile: default          # the profile `dvc repro` runs: smoke | default | paper
    seed: 0                   # the one seed of the pipeline
    data: {...}               # where the archives are and what prepare_data decodes
    verdicts: {...}           # gate tolerances and statistics of every claim (facefill.verdicts)
    base:    {context_encoder: {...every key...}, ...}
    smoke:   {context_encoder: {...only the keys that differ...}, ...}
    default: {context_encoder: {}, ...}
    paper:   {context_encoder: {...}, ...}

Each notebook has one ``base`` section whose *flat* keys are exactly the notebook's ``parameters``
cell; a profile overrides only what differs (:func:`section` merges them). Every profile lists every
section — ``{}`` when it changes nothing — because each DVC stage reads ``base.SECTION`` and
``${profile}.SECTION``. Unknown keys are errors (with a did-you-mean), never silently ignored.

Values are checked against the notebook's defaults (:func:`check_value`): the type of the default
(an int is accepted for a float, never a float for an int, not even 6.0; ``bool`` is not an int; a
``None`` default accepts anything; :data:`NULLABLE` names may be null) and the ranges of
:data:`RANGES`. ``pipeline check``, ``pipeline run`` and, inside the kernel, ``reporting.start`` all
use these checks, so a bad value fails before anything trains.
"""
from __future__ import annotations

import argparse
import difflib
import fnmatch
import json
import os
import re
from dataclasses import dataclass, fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from . import papers
from .errors import ConfigError

PROFILES = ("smoke", "default", "paper")
TOP_LEVEL_KEYS = {"profile", "seed", "data", "verdicts", "base", *PROFILES}


def repo_root(start: str | Path | None = None) -> Path:
    """The directory holding params.yaml: ``FACEFILL_ROOT``, else the nearest parent of ``start``/cwd,
    else the checkout this package lives in."""
    if os.environ.get("FACEFILL_ROOT"):
        return Path(os.environ["FACEFILL_ROOT"]).resolve()
    for base in (Path(start or Path.cwd()).resolve(), Path(__file__).resolve().parent):
        for d in (base, *base.parents):
            if (d / "params.yaml").exists() and (d / "facefill").is_dir():
                return d
    raise ConfigError("cannot find the project root (a folder with params.yaml and facefill/): run from inside the checkout or set FACEFILL_ROOT.")


def did_you_mean(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_keys(given: Mapping[str, Any], valid, where: str) -> None:
    """Raise ConfigError for keys of ``given`` not in ``valid``, naming the place and the valid keys."""
    unknown = [k for k in given if k not in valid]
    if unknown:
        hints = "".join(did_you_mean(k, valid) for k in unknown)
        raise ConfigError(f"unknown parameter(s) {unknown} in {where}.{hints} Valid keys: {sorted(valid)}.")


# ---------------------------------------------------------------------------------------------------
# types and ranges

@dataclass(frozen=True)
class Range:
    """A closed or half-open interval; ``None`` bounds are unbounded."""

    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False

    def violation(self, x: float) -> str | None:
        """``None`` when ``x`` lies in the range, else what it must be (``"must be >= 1"``)."""
        below = self.lo is not None and (x <= self.lo if self.lo_open else x < self.lo)
        above = self.hi is not None and (x >= self.hi if self.hi_open else x > self.hi)
        if not (below or above):
            return None
        if self.hi is None:
            return f"must be {'>' if self.lo_open else '>='} {self.lo:g}"
        if self.lo is None:
            return f"must be {'<' if self.hi_open else '<='} {self.hi:g}"
        return f"must lie in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"


#: Ranges of notebook parameters, by name: the first matching pattern (:mod:`fnmatch`) wins. A
#: range applies to a number and to every number of a list (``snapshot_steps``); null is never
#: range-checked (see :data:`NULLABLE`). Names that match nothing are only type-checked.
RANGES: tuple[tuple[str, Range], ...] = (
    ("log_every", Range(1)),                # facefill.train: history every N steps (N = 0 would divide by zero)
    ("checkpoint_every", Range(1)),         # ... a checkpoint every N steps and at the end
    ("*_every", Range(0)),                  # sample_every, record_every, lr_decay_every: 0 = never / only at the end
    ("n_*", Range(1)),                      # counts: n_train, n_test, n_boot, n_blocks, n_figure
    ("*steps", Range(1)),                   # steps, ce64_steps, gan_steps, bench_steps, snapshot_steps, ...
    ("*iterations", Range(1)),              # iterations, study_iterations
    ("*batch_size", Range(1)),              # batch_size, eval_batch_size, ce_batch_size
    ("batch_images", Range(1)),
    ("*width*", Range(1)),                  # width, d_width, ce_width, max_width, reg_width
    ("*bottleneck", Range(1)),
    ("image_size", Range(1)),
    ("hole", Range(1)),
    ("overlap", Range(0)),
    ("lr", Range(0, lo_open=True)),
    ("lr_*", Range(0, lo_open=True)),       # lr_d, lr_g_factor
    ("*_lr", Range(0, lo_open=True)),       # z_lr
    ("*beta*", Range(0, 1, hi_open=True)),  # Adam β1, β2
    ("momentum", Range(0, 1)),
    ("lambda_*", Range(0)),                 # loss weights
    ("*_weight", Range(0)),
    ("max_fraction", Range(0, 1, lo_open=True)),
    ("random_drop", Range(0, 1)),
    ("seed", Range(0)),
)

#: what ``precision`` accepts (:func:`facefill.runtime.resolve_precision`); defined here, without torch,
#: so that ``pipeline check`` can refuse a bad value before anything is imported or trained
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
#: what ``device`` accepts (:func:`facefill.runtime.resolve_device`): ``cuda:N`` picks one GPU, ``mps`` is
#: Apple's GPU (only where torch supports it)
DEVICES = ("auto", "cpu", "cuda", "cuda:N", "mps")
_DEVICE_RE = re.compile(r"auto|cpu|cuda(:\d+)?|mps")


def device_problem(device, name: str = "device") -> str | None:
    """``None`` when ``device`` names a device facefill accepts, else what to write instead."""
    if isinstance(device, str) and _DEVICE_RE.fullmatch(device):
        return None
    low = str(device).strip().lower()
    hint = ("'cuda' (or 'auto': CUDA when present, else the CPU)" if low in {"gpu", "nvidia", "cuda0"} or low.startswith("gpu")
            else f"{low!r}" if _DEVICE_RE.fullmatch(low) else "'auto'")
    return f"{name}={device!r} is not a device: use one of auto, cpu, cuda, cuda:N (e.g. cuda:0) or mps, e.g. {hint}"


def precision_problem(precision, name: str = "precision") -> str | None:
    """``None`` when ``precision`` is one of :data:`PRECISIONS`, else what to write instead."""
    if precision in PRECISIONS:
        return None
    low = str(precision).strip().lower()
    fix = {"float32": "fp32", "fp64": "fp32", "float64": "fp32", "double": "fp32", "float16": "fp16", "half": "fp16",
           "bfloat16": "bf16"}.get(low, low if low in PRECISIONS else "auto")
    return f"{name}={precision!r} is not supported: use one of {', '.join(PRECISIONS)} (e.g. {fix!r})"


#: parameters whose value must be one of a fixed set, by name (fnmatch): name pattern → checker
CHOICES = (("device", device_problem), ("*_device", device_problem),
           ("precision", precision_problem), ("*_precision", precision_problem))

#: Parameters that may be null although the notebook's default is a number: null means "all".
NULLABLE = frozenset({"n_train", "n_test"})

_KIND_NAMES = {bool: "true or false", int: "an int", float: "a number", str: "a string", list: "a list", dict: "a mapping"}


def range_for(name: str) -> Range | None:
    """The :data:`RANGES` entry of parameter ``name`` (the leaf name: ``limit`` for ``data.limit``)."""
    for pattern, rng in RANGES:
        if fnmatch.fnmatchcase(name, pattern):
            return rng
    return None


def _kind(value) -> type | None:
    for t in (bool, int, float, str):  # bool before int: True is an int to Python, not to us
        if isinstance(value, t):
            return t
    if isinstance(value, (list, tuple)):
        return list
    if isinstance(value, Mapping):
        return dict
    return None


def _conforms(value, kind: type) -> bool:
    if kind is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is list:
        return isinstance(value, (list, tuple))
    if kind is dict:
        return isinstance(value, Mapping)
    return isinstance(value, kind)


def _coerce(value, kind: type):
    """What the user most likely meant (``"6"`` → 6, ``6.0`` → 6, ``"yes"`` → True), or raise ValueError."""
    if isinstance(value, str):  # `papermill -p steps '"6"'` passes the quotes along
        s = value.strip()
        value = s[1:-1] if len(s) >= 2 and s[0] == s[-1] and s[0] in "\"'" else value
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
            return int(value)
    elif kind is float:
        if isinstance(value, str):
            return float(value)  # ValueError when it is not a number
    elif kind is bool:
        if isinstance(value, str) and value.strip().lower() in {"true", "yes", "on", "false", "no", "off"}:
            return value.strip().lower() in {"true", "yes", "on"}
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
    elif kind is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
    elif kind is list:
        if isinstance(value, (str, int, float)):
            return [value]
    raise ValueError(value)


def _show(value, style: str = "yaml") -> str:
    """A value as the user wrote it: YAML/JSON for params.yaml (``"6"``, ``null``, ``true``), Python
    for the notebook (``'6'``, ``None``, ``True``)."""
    if style != "yaml":
        return repr(value)
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _papermill_flag(key: str, value) -> str:
    """The papermill option that passes ``value``: -p parses ints, floats, True/False/None; -r is a raw
    string; -y is YAML."""
    if isinstance(value, str):
        plain = value and value.strip() == value and " " not in value
        return f"-r {key} {value}" if plain else f"-y {key} '{_show(value)}'"
    if isinstance(value, (list, tuple, dict)):
        return f"-y {key} '{_show(value)}'"
    return f"-p {key} {value!r}"


def _hint(key: str, value, style: str, example: bool = False, nullable: bool = False) -> str:
    """How to fix it: ``write steps: 6`` (params.yaml) or the papermill / parameters-cell equivalent."""
    eg = "e.g. " if example else ""
    if style == "yaml":
        null = f"{key}: null or " if nullable else ""
        return f"write {null}{eg}{key}: {_show(value)}"
    null = f"-p {key} None or " if nullable else ""
    return f"{eg}pass {null}{_papermill_flag(key, value)} to papermill, or write {key} = {value!r} in the parameters cell"


@dataclass(frozen=True)
class Spec:
    """What a parameter accepts: derived from the notebook's default (:meth:`from_default`)."""

    kind: type | None                  # None: anything
    nullable: bool = False
    item: type | None = None           # element type of a list
    range: Range | None = None
    example: Any = None                # shown when no obvious fix exists

    @classmethod
    def from_default(cls, name: str, default) -> "Spec":
        kind = _kind(default)
        item = None
        if kind is list and default:
            kinds = {_kind(x) for x in default}
            item = kinds.pop() if len(kinds) == 1 else None
        return cls(kind, nullable=kind is None or name in NULLABLE, item=item, range=range_for(name), example=default)

    def what(self) -> str:
        if self.kind is list and self.item in (int, float, str):
            what = f"a list of {_KIND_NAMES[self.item].split()[-1]}s"
        else:
            what = _KIND_NAMES[self.kind]
        if self.nullable:
            what = ("an integer" if self.kind is int else what) + " or null"
        return what


def check_value(name: str, value, spec: Spec, style: str = "yaml", key: str | None = None) -> str | None:
    """``None`` when ``value`` is acceptable for parameter ``name``, else the complaint, e.g.
    ``steps="6" must be an int (write steps: 6)``. ``key`` is the name to write in the fix (the
    leaf of ``data.limit``); ``style`` is ``"yaml"`` (params.yaml) or ``"notebook"`` (papermill)."""
    key = key or name
    if spec.kind is None or (value is None and spec.nullable):
        return None
    ok = _conforms(value, spec.kind)
    if ok and spec.item is not None:
        ok = all(_conforms(x, spec.item) for x in value)
    if not ok:
        try:
            if spec.kind is list and spec.item is not None and isinstance(value, (list, tuple)):
                fixed = [x if _conforms(x, spec.item) else _coerce(x, spec.item) for x in value]
            else:
                fixed = _coerce(value, spec.kind)
            hint = _hint(key, fixed, style)
        except ValueError:
            hint = _hint(key, spec.example, style, example=True, nullable=spec.nullable)
        return f"{name}={_show(value, style)} must be {spec.what()} ({hint})"
    if isinstance(value, str):
        for pattern, problem in CHOICES:
            if fnmatch.fnmatchcase(name, pattern):
                why = problem(value, name)
                if why:
                    return why
                break
    if spec.range is not None and value is not None:
        for x in (value if spec.kind is list else [value]):
            if isinstance(x, (int, float)) and not isinstance(x, bool):
                why = spec.range.violation(x)
                if why:
                    return f"{name}={_show(value, style)} {why}" + (" (every element)" if spec.kind is list else "")
    return None


def check_parameters(values: Mapping[str, Any], defaults: Mapping[str, Any], where: str, style: str = "yaml") -> None:
    """Check every value of ``values`` that ``defaults`` declares (type of the default, range); raise
    one ConfigError listing every bad value, one line each: ``{where}: steps="6" must be an int (...)``."""
    errors = []
    for name, value in values.items():
        if name in defaults:
            msg = check_value(name, value, Spec.from_default(name, defaults[name]), style)
            if msg:
                errors.append(f"{where}: {msg}")
    if errors:
        raise ConfigError("\n".join(errors))


#: what the top of params.yaml accepts (``data`` keys: the prepare_data stage)
DATA_SPECS = {
    "dir": Spec(str, nullable=True, example="data/raw"),
    "processed_dir": Spec(str, example="data/processed"),
    "limit": Spec(int, nullable=True, range=Range(1), example=1000),
    "variants": Spec(list, item=str, example=["celeba-hq/default/128"]),
}
SEED_SPEC = Spec(int, range=Range(0), example=0)


def positive_int(text: str) -> int:
    """An ``argparse`` type for counts (``--batch-size``, ``--steps``): ``0``, ``-3`` or ``ten`` are a
    clear usage error instead of a traceback deep inside the program."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give a whole number >= 1, e.g. 32") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not >= 1; give a whole number >= 1, e.g. 32")
    return value


# ---------------------------------------------------------------------------------------------------
# params.yaml

def load_params(path: str | Path | None = None) -> dict:
    """Read and validate params.yaml: top-level keys, profile, seed, data, and the base/override
    structure (sections present are checked; absent ones are only an error where they are read)."""
    path = Path(path) if path else repo_root() / "params.yaml"
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run from the project root or set FACEFILL_ROOT.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(params, dict):
        raise ConfigError(f"{path} must be a mapping (profile:, seed:, data:, base:, smoke:, ...).")
    check_keys(params, TOP_LEVEL_KEYS, str(path))
    if params.get("profile") not in PROFILES:
        raise ConfigError(f"{path}: profile={params.get('profile')!r}; choose one of {PROFILES}.")
    errors = []
    if "seed" in params:
        msg = check_value("seed", params["seed"], SEED_SPEC)
        errors += [f"params.yaml: {msg}"] if msg else []
    if "data" in params:
        data = params["data"]
        if not isinstance(data, Mapping):
            raise ConfigError("params.yaml: data must be a mapping (dir:, processed_dir:, limit:, variants:).")
        check_keys(data, DATA_SPECS, "params.yaml data")
        for k, v in data.items():
            msg = check_value(f"data.{k}", v, DATA_SPECS[k], key=k)
            errors += [f"params.yaml: {msg}"] if msg else []
    if errors:
        raise ConfigError("\n".join(errors))
    check_structure(params)
    return params


def check_structure(params: Mapping) -> None:
    """``base`` maps each section to its keys; every profile lists exactly the base's sections, each
    a mapping (``{}`` for none) whose keys are keys of the base section."""
    base = params.get("base")
    if base is None:
        if any(p in params for p in PROFILES):
            raise ConfigError("params.yaml has profile sections but no `base:`: write each notebook section once under "
                              "`base:` (every key) and let each profile list only the keys it changes (see the top of params.yaml).")
        return
    if not isinstance(base, Mapping) or not all(isinstance(s, Mapping) for s in base.values()):
        raise ConfigError("params.yaml base: must map each notebook section to its parameters (base: {context_encoder: {...}, ...}).")
    for profile in PROFILES:
        sections = params.get(profile)
        if sections is None:
            sections = {}
        if not isinstance(sections, Mapping):
            raise ConfigError(f"params.yaml {profile}: must map notebook sections to their overrides ({{}} for none).")
        unknown = [s for s in sections if s not in base]
        if unknown:
            hints = "".join(did_you_mean(s, base) for s in unknown)
            raise ConfigError(f"params.yaml {profile}: unknown section(s) {unknown} (not in base).{hints} Sections: {list(base)}.")
        missing = [s for s in base if s not in sections]
        if missing:
            raise ConfigError(f"params.yaml {profile}: no section {missing}: add `{missing[0]}: {{}}` under `{profile}:` "
                              f"(an empty override; each DVC stage reads `base.SECTION` and `${{profile}}.SECTION`).")
        for name, over in sections.items():
            if not isinstance(over, Mapping):
                raise ConfigError(f"params.yaml {profile}.{name} must be a mapping of the keys it changes; write `{name}: {{}}` to change none.")
            check_keys(over, base[name], f"params.yaml {profile}.{name} (an override may only change keys of base.{name})")


def section(params: dict, name: str, profile: str | None = None) -> dict:
    """The flat parameters of notebook section ``name`` in ``profile`` (default: params['profile']):
    ``base.<name>`` updated with ``<profile>.<name>``. Override keys missing from the base are errors."""
    profile = profile or params["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r}; choose one of {PROFILES}.")
    base = params.get("base") or {}
    if name not in base:
        raise ConfigError(f"params.yaml has no section base.{name}.{did_you_mean(name, base)}")
    overrides = params.get(profile) or {}
    if name not in overrides:
        raise ConfigError(f"params.yaml has no section {profile}.{name}: add `{name}: {{}}` under `{profile}:` "
                          "(an empty override; each DVC stage reads `base.SECTION` and `${profile}.SECTION`).")
    over = overrides[name]
    if not isinstance(over, Mapping):
        raise ConfigError(f"params.yaml {profile}.{name} must be a mapping of the keys it changes; write `{name}: {{}}` to change none.")
    check_keys(over, base[name], f"params.yaml {profile}.{name} (an override may only change keys of base.{name})")
    return {**base[name], **over}



#: environment variable the stage runner (``python -m facefill.pipeline run``) sets to ``1`` for the
#: kernel it starts (papermill kernels inherit the environment): the notebook runs in the pipeline
PIPELINE_ENV = "FACEFILL_PIPELINE"

#: parameters every notebook has, filled in by the runner rather than by the profile section
COMMON = ("profile", "seed", "data_dir", "processed_dir", "output_dir", "checkpoint_dir")


def notebook_parameters(name: str, profile: str | None = None, params: dict | None = None, root: Path | None = None) -> dict:
    """The full parameter dict the stage runner (papermill) injects for stage ``name``: the
    :data:`COMMON` values from the top of params.yaml plus :func:`section`."""
    root = root or repo_root()
    params = params or load_params(root / "params.yaml")
    profile = profile or params["profile"]
    values = section(params, name, profile)
    clash = [k for k in values if k in COMMON]
    if clash:
        raise ConfigError(f"{profile}.{name} sets {clash}; these come from the top of params.yaml, remove them there.")
    data = params.get("data") or {}
    nb = papers.NOTEBOOKS[name]
    return {
        "profile": profile,
        "seed": int(params.get("seed", 0)),
        "data_dir": data.get("dir"),
        "processed_dir": data.get("processed_dir", "data/processed"),
        "output_dir": f"reports/{nb}",
        "checkpoint_dir": f"models/{nb}",
        **values,
    }

def build(cls, values: Mapping[str, Any], where: str = ""):
    """Instantiate dataclass ``cls`` from ``values``; unknown keys are a ConfigError."""
    assert is_dataclass(cls)
    names = {f.name for f in fields(cls)}
    check_keys(values, names, where or cls.__name__)
    try:
        return cls(**values)
    except TypeError as e:
        raise ConfigError(f"{where or cls.__name__}: {e}") from None


def pick(values: Mapping[str, Any], cls, rename: Mapping[str, str] | None = None):
    """Build ``cls`` from the subset of a flat notebook-parameter dict that names its fields.

    ``rename`` maps dataclass field → parameter name where they differ (e.g. ``steps`` → ``ce_steps``).
    """
    rename = dict(rename or {})
    out = {}
    for f in fields(cls):
        key = rename.get(f.name, f.name)
        if key in values:
            out[f.name] = values[key]
    return build(cls, out)
