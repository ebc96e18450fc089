"""How many inputs each property test tried: filled by tests.property.helpers.counted, reported at the
end of the run by tests/conftest.py (which also gathers the counts of pytest-xdist's workers)."""

from __future__ import annotations

from collections import Counter

EXAMPLES: Counter[str] = Counter()
