"""Coverage of the verdicts' seed-level t intervals, by simulation: writes reports/benchmarks/coverage.md.

    python scripts/coverage_simulation.py [--studies 1000]

Each setting simulates ``--studies`` studies from the two-level model of facefill.verdicts (seeds and
seed x image noise per arm, per-image differences shared by both arms; the seed terms are the given
share of the variance of the estimated difference) with a true difference of 0, and counts how many
nominal 95 % intervals cover it. ``t`` is the rule the verdicts use; ``z`` the same standard error with
a normal quantile, which is how a percentile bootstrap behaves with 3-5 seeds (the rule before). The
suite runs a fast version (tests/test_verdicts.py::test_coverage_of_nominal_95_percent_intervals).
"""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from facefill.verdicts import DF_QUANTILE, simulate_coverage

TARGET = (0.93, 0.975)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--studies", type=int, default=2000)
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "reports" / "benchmarks" / "coverage.md"))
    args = ap.parse_args(argv)
    t0 = time.perf_counter()
    rows, worst = [], []
    for seeds in ((3, 3), (3, 1), (5, 5), (5, 1)):
        for n in (100, 1000):
            for share in (0.0, 0.5, 0.85):
                t = simulate_coverage(args.studies, seeds, n, share, rng_seed=2026)
                z = simulate_coverage(args.studies, seeds, n, share, rng_seed=2026, method="z")
                worst.append(t)
                b = "learning-free (1)" if seeds[1] == 1 else str(seeds[1])
                rows.append(f"| {seeds[0]} | {b} | {n} | {share:.0%} | {t:.1%} | {z:.1%} | {'✓' if TARGET[0] <= t <= TARGET[1] else '✗'} |")
    ok = all(TARGET[0] <= c <= TARGET[1] for c in worst)
    se = (0.95 * 0.05 / args.studies) ** 0.5
    text = "\n".join([
        "# Coverage of the verdicts' intervals (simulation)", "",
        f"`python scripts/coverage_simulation.py --studies {args.studies}` ({time.perf_counter() - t0:.0f} s). Nominal 95 % "
        f"two-sided intervals of mean(a) − mean(b), true difference 0, {args.studies} simulated studies per row "
        f"(Monte-Carlo standard error of a coverage near 95 %: ±{se:.1%}). Model: per arm and seed a seed effect and "
        "seed × image noise (variance 1), per image a paired difference (variance 1); *seed share* is the seed effects' "
        "share of the variance of the estimated difference at that design. Arm b 'learning-free' is one deterministic "
        "row. **t**: the rule of `facefill.verdicts` (seed-level Welch–Satterthwaite t, df from the seed parts scaled to "
        f"their chi-square's {DF_QUANTILE:.0%} quantile); **z**: the same standard error with a normal quantile, how the "
        "percentile bootstrap used before behaves with 3–5 seeds.", "",
        f"Target: {TARGET[0]:.0%}–{TARGET[1]:.1%} in every row: **{'met' if ok else 'NOT met'}** "
        f"(t: {min(worst):.1%} to {max(worst):.1%}).", "",
        "| seeds a | seeds b | images | seed share | t (ours) | z (control) | in target |", "|---|---|---|---|---|---|---|",
        *rows, ""])
    Path(args.out).write_text(text)
    print(text)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
