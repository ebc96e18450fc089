"""Percentiles of timed runs, shared by the bench driver (run.py, scale_bench.py) and its stages."""


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of `values` by linear interpolation between the closest ranks (nan if none)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)
