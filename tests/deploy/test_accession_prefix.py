"""RIS_ACCESSION_PREFIX is checked at start-up: a prefix no accession number could carry stops the app
with a clear message, instead of failing every export (Thai letters), refusing every booking (a fourth
character: "the counter is exhausted") or naming files outside the worklist folder ("../").

Run in a subprocess, as tests/deploy/test_settings.py: settings are read once per process.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

BASE_DIR = Path(__file__).resolve().parents[2]
MESSAGE = "use at most 3 characters, capital letters A-Z and digits 0-9 only"


def run(args: list[str], prefix: str) -> subprocess.CompletedProcess:
    # A clean slate, as in test_settings.py: nothing from the developer's shell or .env leaks in.
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR", "SYSTEMROOT")}
    env = {
        **keep,
        "DJANGO_SETTINGS_MODULE": "ris.settings",
        "DJANGO_DEBUG": "1",
        "RIS_IGNORE_DOTENV": "1",
        "RIS_ACCESSION_PREFIX": prefix,
    }
    return subprocess.run(
        [sys.executable, *args], cwd=BASE_DIR, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize("prefix", ["ไทย", "ABCD", "../", "ct", "A B", "A-1"])
def test_it_refuses_to_start_with_a_prefix_no_accession_can_carry(prefix):
    result = run(["-c", "import ris.settings"], prefix)

    assert result.returncode != 0
    assert f"RIS_ACCESSION_PREFIX={prefix!r} is not allowed: {MESSAGE}" in result.stderr


def test_manage_py_stops_with_the_message():
    result = run(["manage.py", "check"], "../")

    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and MESSAGE in result.stderr


@pytest.mark.parametrize("prefix", ["", "CT", "R9Z"])
def test_a_prefix_of_up_to_three_capitals_and_digits_starts(prefix):
    result = run(["-c", "import ris.settings as s; print(repr(s.RIS_ACCESSION_PREFIX))"], prefix)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr(prefix)
