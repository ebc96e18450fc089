"""Strategies and checks shared by the property tests."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from datetime import date, datetime, time, timedelta
from typing import Any

from django.apps import apps
from django.db import transaction
from django.utils import timezone
from django.utils.html import escape
from hypothesis import strategies as st
from pydicom import config as dicom_config
from pydicom.dataset import Dataset
from pydicom.valuerep import validate_value

from scheduling.models import Order, Patient, Procedure, Room
from tests.worklist_export.oracle import source_dataset
from worklist_export.dataset import order_source

from .examples import EXAMPLES

# --- bookkeeping ----------------------------------------------------------------------------------


def counted(test):
    """Count every example hypothesis runs through `test` (reported at the end of the session).

    Put it under @given, so hypothesis calls the counting wrapper once per input.
    """
    name = f"{test.__module__.rsplit('.', 1)[-1]}::{test.__name__}"

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        EXAMPLES[name] += 1
        return test(*args, **kwargs)

    return wrapper


@contextlib.contextmanager
def rolled_back() -> Iterator[None]:
    """Run one example in a transaction that is always rolled back, so examples never see each other."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


# Sessions change on every request (messages, login): not part of what a form may or may not save.
_SNAPSHOT_APPS = ("scheduling", "worklist_export", "mwl_server", "auth")


def db_snapshot() -> dict[str, list[tuple]]:
    """Every row of the project's tables (and their history tables): to prove a refusal saved nothing."""
    snapshot = {}
    for label in _SNAPSHOT_APPS:
        for model in apps.get_app_config(label).get_models():
            snapshot[model._meta.label] = list(model.objects.order_by("pk").values_list())
    return snapshot


# --- what a clerk may type ------------------------------------------------------------------------

# Values that broke something somewhere once: DICOM delimiters, control characters, path tricks,
# Windows device names, scripts other than Latin and Thai, the limits and one past them.
NASTY = [
    "",
    " ",
    "   ",
    "^",
    "=",
    "\\",
    "a^b",
    "a=b",
    "a\\b",
    "\x00",
    "a\x00b",
    "\t",
    "a\nb",
    "\r\n",
    "\x1b[31m",
    "\x7f",
    "\x85",
    "\u2028",
    "\u200b",
    "\ufeff",
    "../",
    "../../etc/passwd",
    "/",
    "/etc/passwd",
    "..",
    ".",
    ".hidden",
    "CON",
    "NUL",
    "COM1",
    "ใจดี",
    "สมชาย",
    "Müller",
    "José",
    "Łukasz",
    "王小明",
    "Иван",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "😀",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "%s%(x)s{0}",
    "A" * 16,
    "A" * 17,
    "A" * 64,
    "A" * 65,
    "ก" * 64,
    "ก" * 65,
    "A" * 300,
]

_SPECIAL = "^=\\/.\x00\t\n\r\x1b\x7f\x85\u2028\u200b :@_-"
_alphabet = st.one_of(
    st.characters(codec="utf-8"),
    st.sampled_from(_SPECIAL),
    st.characters(min_codepoint=0x0E01, max_codepoint=0x0E5B),  # Thai
    st.characters(min_codepoint=ord("A"), max_codepoint=ord("Z")),
)


def texts(max_size: int = 90) -> st.SearchStrategy[str]:
    """Any text a browser could post, biased toward the nasty and the near-limit."""
    return st.one_of(
        st.sampled_from(NASTY),
        st.text(_alphabet, max_size=max_size),
        st.text(st.characters(min_codepoint=ord("a"), max_codepoint=ord("z")), min_size=14, max_size=70),
    )


def ae_titles() -> st.SearchStrategy[str]:
    legal = st.text(st.sampled_from("ABCXYZ0189 -:@_"), min_size=1, max_size=18)
    return st.one_of(legal, texts(24), st.sampled_from(["ct01", "CT.01", "CT/01", "CT\\01", "A" * 17]))


def _impossible_date() -> st.SearchStrategy[str]:
    return st.builds(
        lambda y, m, d: f"{y:04d}-{m:02d}-{d:02d}",
        st.integers(0, 10000),
        st.integers(0, 13),
        st.integers(0, 32),
    )


def date_strings() -> st.SearchStrategy[str]:
    """Dates as typed: legal ones from year 1 to 9999, impossible ones, other formats and garbage."""
    return st.one_of(
        st.sampled_from(
            [
                "2026-02-30",
                "2025-02-29",
                "2024-02-29",
                "0001-01-01",
                "9999-12-31",
                "1879-12-31",
                "1880-01-01",
                "31/12/9999",
                "30.02.2026",
                "2026-13-01",
                "tomorrow",
                "-1",
                "99999999",
                "2026-1-1",
            ]
        ),
        st.dates().map(date.isoformat),
        st.dates().map(lambda d: d.strftime("%d/%m/%Y")),
        _impossible_date(),
        texts(20),
    )


def future_date_strings() -> st.SearchStrategy[str]:
    return st.integers(1, 400 * 365).map(lambda n: (timezone.localdate() + timedelta(days=n)).isoformat())


def ids() -> st.SearchStrategy[str]:
    """Primary keys as posted: real-looking, huge, negative, non-numeric."""
    return st.one_of(
        st.integers(-(2**70), 2**70).map(str),
        st.sampled_from(["", "0", "1.5", "1e3", "abc", "1 OR 1=1", "\x00", "NaN", "[]"]),
        texts(12),
    )


def page_numbers() -> st.SearchStrategy[str]:
    return st.one_of(
        st.integers(-(2**80), 2**80).map(str),
        st.sampled_from(["", "last", "0", "-1", "1e400", "inf", "NaN", "2.5", "\x00"]),
        texts(10),
    )


# --- asserting what the clerk sees ----------------------------------------------------------------


def assert_messages_at_fields(form, content: bytes | None = None) -> None:
    """A refused form says why: a non-empty message at a field of the form (or on top), shown on the page."""
    assert form.errors, "refused without a message"
    page = content.decode() if content is not None else None
    for field, messages in form.errors.items():
        assert field == "__all__" or field in form.fields, f"error on unknown field {field!r}"
        for message in messages:
            assert str(message).strip(), f"empty message at {field!r}"
            if page is not None:
                assert escape(message) in page, f"message {message!r} at {field!r} not on the page"


def assert_exportable(
    *,
    patient: Patient | None = None,
    room: Room | None = None,
    procedure: Procedure | None = None,
    order: Order | None = None,
    charset: str | None = None,
) -> Dataset:
    """Build the worklist item and check each value against its VR: what the forms accept, exports.

    Unsaved instances do: the dataset is built from attributes only.
    """
    if order is None:
        order = Order(
            accession_number="26010100001",
            requested_procedure_id="26010100001",
            sps_id="26010100001S1",
            study_instance_uid="2.25.1234567890",
            scheduled_start=timezone.make_aware(datetime.combine(date(2026, 1, 1), time(9))),
            duration_minutes=15,
        )
    order.patient = patient or order.patient
    order.room = room or order.room
    order.procedure = procedure or order.procedure
    if charset is not None:
        order.room.worklist_charset = charset
    ds = source_dataset(order_source(order))  # raises ExportError on a value a modality cannot take
    for element in ds.iterall():
        if isinstance(element.value, str) and element.VR in ("AE", "CS", "SH", "LO", "PN", "DA", "TM", "UI"):
            validate_value(element.VR, element.value, dicom_config.RAISE)
    return ds


def any_of(data: dict[str, Any], *names: str) -> bool:
    return any(name in data for name in names)
