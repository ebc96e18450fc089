"""The management commands with any arguments: they run, or stop with a clear message and no traceback.

In process, a refusal is a CommandError with a message (what manage.py prints as "CommandError: ..."
on stderr, exit status 1); the few examples at the end run manage.py itself to check exactly that.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from hypothesis import given
from hypothesis import strategies as st

from scheduling.validators import AE_TITLE_RE

from .helpers import ae_titles, counted, texts

pytestmark = pytest.mark.django_db

OPTION_TOKENS = [
    "--check",
    "--check=1",
    "--bogus",
    "-v",
    "--verbosity",
    "0",
    "3",
    "9",
    "x",
    "--no-color",
    "--skip-checks",
    "--",
    "-",
    "--port",
    "--ae-title",
]


def _refusal_is_clear(exc: CommandError) -> None:
    message = str(exc).strip()
    assert message, "CommandError without a message"
    assert "Traceback" not in message


@given(argv=st.lists(st.one_of(st.sampled_from(OPTION_TOKENS), texts(12)), max_size=4))
@counted
def test_export_worklists_with_any_arguments(argv):
    try:
        call_command("export_worklists", *argv, stdout=open(os.devnull, "w"), stderr=open(os.devnull, "w"))
    except CommandError as exc:
        _refusal_is_clear(exc)
    except SystemExit as exc:
        # --check on a folder that differs; never anything else.
        assert exc.code == 1 and "--check" in argv


@given(
    layout=st.one_of(st.sampled_from(["orthanc", "wlmscpfs", "ORTHANC", "", "flat"]), texts(10)),
    folder=st.sampled_from(["ok", "a-file", "missing/deeper"]),
)
@counted
def test_export_worklists_with_bad_settings(settings, tmp_path, layout, folder):
    root = tmp_path / folder
    if folder == "a-file":
        root.write_text("not a folder")
    settings.WORKLIST_LAYOUT = layout
    settings.WORKLIST_DIR = str(root)
    try:
        call_command("export_worklists", stdout=open(os.devnull, "w"))
    except CommandError as exc:
        _refusal_is_clear(exc)
    else:
        assert layout in ("orthanc", "wlmscpfs") and folder != "a-file"


def _legal_ae(value: str) -> bool:
    return bool(AE_TITLE_RE.match(value)) and bool(value.strip())


def bad_server_options() -> st.SearchStrategy[dict]:
    """Options of which at least one is wrong: a port outside 1-65535 or an AE title DCMTK refuses."""
    bad_port = st.one_of(st.integers(max_value=0), st.integers(min_value=65536))
    bad_ae = ae_titles().filter(lambda ae: not _legal_ae(ae))
    return st.one_of(
        st.fixed_dictionaries({"port": bad_port}, optional={"ae_title": ae_titles().filter(_legal_ae)}),
        st.fixed_dictionaries({"ae_title": bad_ae}, optional={"port": st.integers(1, 65535)}),
        st.fixed_dictionaries({"port": bad_port, "ae_title": bad_ae}),
    )


@given(options=bad_server_options())
@counted
def test_serve_dicom_refuses_a_bad_port_or_ae_title(options):
    # Reaching start_server means the options were let through: fail rather than serve forever.
    with mock.patch(
        "mwl_server.management.commands.serve_dicom.start_server",
        side_effect=AssertionError(f"serve_dicom started with {options!r}"),
    ):
        with pytest.raises(CommandError) as refused:
            call_command("serve_dicom", stdout=open(os.devnull, "w"), **options)
    _refusal_is_clear(refused.value)


@given(settings_ae=ae_titles().filter(lambda ae: not _legal_ae(ae)))
@counted
def test_serve_dicom_refuses_a_bad_ae_title_setting(settings, settings_ae):
    settings.DICOM_SERVER_AE = settings_ae
    with mock.patch("mwl_server.management.commands.serve_dicom.start_server", side_effect=AssertionError):
        with pytest.raises(CommandError) as refused:
            call_command("serve_dicom", port=11112, stdout=open(os.devnull, "w"))
    _refusal_is_clear(refused.value)


# --- manage.py itself ---------------------------------------------------------------------------------


def manage(*argv: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "ris.settings_test"}
    return subprocess.run(
        [sys.executable, "manage.py", *argv],
        cwd=Path(django_settings.BASE_DIR),
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["serve_dicom", "--port", "70000"], "The port must be between 1 and 65535, not 70000."),
        (["serve_dicom", "--port", "0"], "The port must be between 1 and 65535, not 0."),
        (["serve_dicom", "--port", "-5"], "The port must be between 1 and 65535, not -5."),
        (
            ["serve_dicom", "--ae-title", "ABCDEFGHIJKLMNOPQ"],
            "AE title 'ABCDEFGHIJKLMNOPQ': An AE title is 1",
        ),
        (["serve_dicom", "--ae-title", "bad.ae"], "AE title 'bad.ae': An AE title is 1 to 16 characters"),
        (["serve_dicom", "--port", "abc"], "argument --port: invalid int value: 'abc'"),
        (["export_worklists", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_it_stops_a_command_with_a_message_and_no_traceback(argv, says):
    result = manage(*argv)

    assert result.returncode != 0
    assert says in result.stderr
    assert "Traceback" not in result.stderr
