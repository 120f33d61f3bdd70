"""The loss-curve figure: one mean curve per arm with a min–max band over its seeds, the legend off the data."""
import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PolyCollection  # noqa: E402

from facefill import reporting  # noqa: E402


@pytest.mark.parametrize("names, arms", [
    (["CE seed 0", "CE seed 1", "MCE seed 0"], {"CE": 2, "MCE": 1}),
    (["CE s0", "CE s1", "MCE 1 scale s2"], {"CE": 2, "MCE 1 scale": 1}),
    (["no BN · seed 0", "no BN · seed 1", "no BN, literal 1:1 · seed 0"], {"no BN": 2, "no BN, literal 1:1": 1}),
    (["seed 0", "seed 1"], {"all seeds": 2}),
    (["bicubic", "SRGAN seed 3"], {"bicubic": 1, "SRGAN": 1}),
])
def test_runs_are_grouped_by_arm(names, arms):
    assert {a: len(n) for a, n in reporting.runs_by_arm(names).items()} == arms


def test_one_mean_curve_and_one_band_per_arm():
    steps = np.arange(0, 100, 10)
    runs = {f"{arm} seed {s}": pd.DataFrame({"step": steps, "val": (1 + s) * np.exp(-steps / 50) + k})
            for k, arm in enumerate(["CE", "MCE"]) for s in range(3)}
    runs["single seed 0"] = pd.DataFrame({"step": steps, "val": np.ones(10)})
    runs["CE seed 0"].attrs["half_history"] = runs["CE seed 1"].copy()  # fit's histories carry their half run
    fig = reporting.loss_figure_runs(runs, ["val"], "t")
    ax = fig.axes[0]
    assert len(ax.lines) == 3 and sum(isinstance(c, PolyCollection) for c in ax.collections) == 2  # no band for one seed
    ce = ax.lines[0].get_ydata()
    np.testing.assert_allclose(ce, np.mean([(1 + s) * np.exp(-steps / 50) for s in range(3)], axis=0))
    assert ax.get_legend() is None and len(fig.legends) == 1  # one legend, below the panels
    assert [t.get_text() for t in fig.legends[0].get_texts()][2] == "single"
