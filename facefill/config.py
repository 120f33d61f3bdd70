"""params.yaml: profiles, per-notebook sections, and strict validation.

Layout of ``params.yaml``::

    profile: default          # the profile `dvc repro` runs: smoke | default | paper
    seed: 0                   # the one seed of the pipeline
    data: {...}               # where the archives are and what prepare_data decodes
    smoke:   {context_encoder: {...}, ...}
    default: {context_encoder: {...}, ...}
    paper:   {context_encoder: {...}, ...}

Each notebook has one section per profile with *flat* keys that are exactly the notebook's
``parameters`` cell. Unknown keys are errors (with a did-you-mean), never silently ignored.
"""
from __future__ import annotations

import difflib
import os
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Mapping

import yaml

from .errors import ConfigError

PROFILES = ("smoke", "default", "paper")
TOP_LEVEL_KEYS = {"profile", "seed", "data", *PROFILES}


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


def _did_you_mean(key: str, valid) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def check_keys(given: Mapping[str, Any], valid, where: str) -> None:
    """Raise ConfigError for keys of ``given`` not in ``valid``, naming the place and the valid keys."""
    unknown = [k for k in given if k not in valid]
    if unknown:
        hints = "".join(_did_you_mean(k, valid) for k in unknown)
        raise ConfigError(f"unknown parameter(s) {unknown} in {where}.{hints} Valid keys: {sorted(valid)}.")


def load_params(path: str | Path | None = None) -> dict:
    path = Path(path) if path else repo_root() / "params.yaml"
    try:
        params = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path} not found: run from the project root or set FACEFILL_ROOT.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path} is not valid YAML: {e}") from None
    check_keys(params, TOP_LEVEL_KEYS, str(path))
    if params.get("profile") not in PROFILES:
        raise ConfigError(f"{path}: profile={params.get('profile')!r}; choose one of {PROFILES}.")
    return params


def section(params: dict, name: str, profile: str | None = None) -> dict:
    """The flat parameters of notebook section ``name`` in ``profile`` (default: params['profile'])."""
    profile = profile or params["profile"]
    if profile not in PROFILES:
        raise ConfigError(f"profile={profile!r}; choose one of {PROFILES}.")
    sections = params.get(profile) or {}
    if name not in sections:
        raise ConfigError(f"params.yaml has no section {profile}.{name}.{_did_you_mean(name, sections)}")
    return dict(sections[name])


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
