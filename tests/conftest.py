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
    if HAVE_REAL_DATA:
        return
    skip = pytest.mark.skip(reason=REASON)
    for item in items:
        if "real_data" in item.keywords or str(item.fspath).endswith(".ipynb"):
            item.add_marker(skip)


@pytest.fixture
def real_data():
    if not HAVE_REAL_DATA:
        pytest.skip(REASON)
