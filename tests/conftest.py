"""Shared test set-up: locate the real face archives, skip what needs them when they are absent."""
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_SHARED = ROOT.parent / "shared" / "data"
if not os.environ.get("FACEFILL_DATA_DIR") and _SHARED.is_dir():
    os.environ["FACEFILL_DATA_DIR"] = str(_SHARED)  # the offline copy beside the checkout


def _have_real_data() -> bool:
    from facefill.data import find_archive
    from facefill.errors import DataNotFoundError

    try:
        for name in ("celeba-hq", "lfw", "celeba"):
            find_archive(name)
    except DataNotFoundError:
        return False
    return True


HAVE_REAL_DATA = _have_real_data()
REASON = "real face archives not found: set FACEFILL_DATA_DIR to the folder holding them (see README, 'Data')"


def pytest_collection_modifyitems(config, items):
    if not HAVE_REAL_DATA:
        skip = pytest.mark.skip(reason=REASON)
        for item in items:
            if "real_data" in item.keywords or str(item.fspath).endswith(".ipynb"):
                item.add_marker(skip)
    problem = notebooks_not_run_in_ci(config, items)
    if problem:
        raise pytest.UsageError(problem)


def notebooks_not_run_in_ci(config, items) -> str | None:
    """Under CI (the ``CI`` environment variable, which `.ci/run` sets), a run with nbval must execute
    every notebook: a notebook that is not collected, or whose cells are skipped (the data archives
    are missing), fails the run instead of letting nbval pass on nothing. The check applies when
    nbval is on; "not collected" only when the whole notebooks/ folder was asked for (`make test`)."""
    if not os.environ.get("CI") or not (config.getoption("nbval", False) or config.getoption("nbval_lax", False)):
        return None
    collected: dict[str, list] = {}
    for item in items:
        path = Path(str(item.fspath))
        if path.suffix == ".ipynb":
            collected.setdefault(path.name, []).append(item)
    expected = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    here = Path(config.invocation_params.dir)
    whole_folder = any((here / a.split("::")[0]).resolve() == ROOT / "notebooks" for a in config.args)
    missing = [n for n in expected if n not in collected] if whole_folder else []
    skipped = sorted(n for n, its in collected.items() if any(i.get_closest_marker("skip") for i in its))
    if not (missing or skipped):
        return None
    why = [f"not collected: {missing}"] if missing else []
    why += [f"skipped: {skipped} ({REASON})"] if skipped else []
    return "CI must run every notebook with nbval, but " + "; ".join(why) + "."


@pytest.fixture
def real_data():
    if not HAVE_REAL_DATA:
        pytest.skip(REASON)


# --- shared by the training tests (test_train_faults, test_code_fingerprint) ---------------------

@pytest.fixture
def images():
    """24 random 64-px RGB uint8 images: enough for a tiny fit."""
    import numpy as np

    return np.random.default_rng(0).integers(0, 256, size=(24, 64, 64, 3), dtype=np.uint8)


@pytest.fixture
def notices(monkeypatch):
    """Everything fit() tells the user, in order (fit must say it through train.notice)."""
    from facefill import train

    said = []
    monkeypatch.setattr(train, "notice", said.append)
    return said
