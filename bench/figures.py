"""Small helpers shared by the bench driver (run.py, scale_bench.py) and its stages: percentiles of
timed runs, a free port for the servers it starts."""

import socket


def pct(values: list[float], p: float) -> float:
    """The p-th percentile of `values` by linear interpolation between the closest ranks (nan if none)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
