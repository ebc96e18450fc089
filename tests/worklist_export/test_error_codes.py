"""Export errors as a code with parameters, stored on the entry and shown in the reader's language."""

from __future__ import annotations

import errno
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.translation import trans_real

from scheduling.models import CharacterSet, Order, OrderStatus, Patient
from tests.factories import ThaiPatientFactory
from worklist_export import dataset, problems
from worklist_export.dataset import ExportError, order_source
from worklist_export.models import WorklistEntry
from worklist_export.problems import FIELDS, MESSAGES, ExportProblem, os_error_problem
from worklist_export.reconcile import FAILED, worklists_reconcile
from worklist_export.services import order_sync_worklist

pytestmark = pytest.mark.django_db


def _update(obj, **values) -> None:
    # Straight to the rows, past the forms' validators and the services: data as a bad import left it.
    type(obj).objects.filter(pk=obj.pk).update(**values)


def _thai_unromanised(order: Order) -> None:
    _update(order.room, worklist_charset=CharacterSet.LATIN1)
    thai = ThaiPatientFactory(romanized_family_name="", romanized_given_name="")
    _update(order, patient=thai)


# code, what breaks the order, the parameters expected (a subset: pydicom's reason is its own wording).
CASES: list[tuple[str, Callable[[Order], None], dict]] = [
    (
        problems.VALUE_EMPTY,
        lambda o: _update(o, study_instance_uid=""),
        {"field": "Study instance UID"},
    ),
    (
        problems.VALUE_BACKSLASH,
        lambda o: _update(o.patient, allergies="Iodine\\latex"),
        {"field": "Allergies"},
    ),
    (
        problems.VALUE_TOO_LONG,
        lambda o: _update(o, accession_number="1" * 17),
        {"field": "Accession number", "limit": 16, "value": "1" * 17},
    ),
    (
        problems.VALUE_UNENCODABLE,
        lambda o: (
            _update(o.room, worklist_charset=CharacterSet.THAI),
            _update(o.patient, allergies="造影剤"),
        ),
        {"field": "Allergies", "charset": CharacterSet.THAI, "value": "造影剤"},
    ),
    (
        problems.AE_TITLE_INVALID,
        lambda o: _update(o.room, ae_title="ct01"),
        {"field": "Room AE title", "value": "ct01"},
    ),
    (
        problems.VALUE_INVALID,
        lambda o: _update(o, study_instance_uid="1.02.3"),
        {"field": "Study instance UID", "value": "1.02.3"},
    ),
    (
        problems.ROMANIZED_NAME_MISSING,
        _thai_unromanised,
        {"field": "Romanised patient name", "room": "CT 1"},
    ),
    (
        problems.CHARSET_UNKNOWN,
        lambda o: _update(o.room, worklist_charset="ISO_IR 999"),
        {"field": "Room", "room": "CT 1", "charset": "ISO_IR 999"},
    ),
    (
        problems.PROCEDURE_UNNAMED,
        lambda o: _update(o.procedure, code_value="", code_meaning=""),
        {"field": "Procedure"},
    ),
]
CASE_IDS = [code for code, _, _ in CASES]


def _loaded(order: Order) -> Order:
    return Order.objects.select_related("patient", "procedure", "room").get(pk=order.pk)


def _refused(order: Order) -> ExportError:
    with pytest.raises(ExportError) as caught:
        order_source(_loaded(order))
    return caught.value


@contextmanager
def thai_translation(english: str, thai: str) -> Iterator[None]:
    """The Thai catalogue with `english` translated as `thai`, as once the lead has translated it.

    The compiled catalogue is patched in memory (Django's own, the one gettext reads): the new msgids
    have no Thai yet, and the test must show the page takes the message through gettext.
    """
    catalog = trans_real.translation("th")._catalog
    with mock.patch.dict(catalog._catalogs[0], {english: thai}):
        yield


def _msgid(code: str) -> str:
    with translation.override("en"):
        return str(MESSAGES[code])


@pytest.mark.parametrize("code, breaks, params", CASES, ids=CASE_IDS)
def test_each_export_error_carries_its_code_and_params(order, code, breaks, params):
    breaks(order)

    error = _refused(order)

    assert error.code == code and code in MESSAGES
    assert params.items() <= error.problem.params.items()
    # The English text is the catalogue's message with these parameters, never worded twice.
    assert error.message == str(error) == ExportProblem(code, error.problem.params).text
    assert error.field in FIELDS


@pytest.mark.parametrize("code, breaks, params", CASES, ids=CASE_IDS)
def test_the_task_stores_the_code_params_and_english_text_of_each_error(
    worklist_dir, order, code, breaks, params
):
    breaks(order)
    expected = _refused(order)

    assert order_sync_worklist(order_id=order.pk) == "failed"

    entry = WorklistEntry.objects.get(order=order)
    assert entry.last_error_code == code
    assert entry.last_error_params == expected.problem.params  # as stored: JSON, read back
    assert entry.last_error == expected.message
    assert entry.error_message == expected.message  # English page: the same words


def test_a_status_not_exported_is_coded_and_its_status_translated(order):
    order.status = OrderStatus.CANCELLED  # as the API or the DICOM server could meet it

    with pytest.raises(ExportError) as caught:
        order_source(order)

    error = caught.value

    assert (error.code, error.problem.params) == (problems.STATUS_NOT_EXPORTED, {"status": "CANCELLED"})
    assert error.message == "A cancelled order is not put on a worklist."
    with translation.override("th"):
        assert "ยกเลิกแล้ว" in error.problem.message()


def test_an_unusable_called_ae_stores_its_code(worklist_dir, settings, order):
    settings.WORKLIST_LAYOUT = "wlmscpfs"
    settings.WORKLIST_CALLED_AE = "../x"

    assert order_sync_worklist(order_id=order.pk) == "failed"

    entry = WorklistEntry.objects.get(order=order)
    assert entry.last_error_code == problems.CALLED_AE_UNSAFE
    assert entry.last_error_params == {"field": "Worklist server called AE title", "value": "../x"}
    assert "cannot name a folder" in entry.last_error and "'../x'" in entry.last_error


def test_a_folder_that_cannot_be_written_stores_its_code_and_the_os_words(
    worklist_dir, settings, tmp_path, order
):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    settings.WORKLIST_DIR = str(blocker / "worklists")

    with pytest.raises(OSError):
        order_sync_worklist(order_id=order.pk)

    entry = WorklistEntry.objects.get(order=order)
    assert entry.last_error_code == problems.FOLDER_MISSING
    assert "Not a directory" in entry.last_error_params["error"]
    assert entry.last_error.startswith("The worklist folder cannot be written: it is not there")
    assert entry.last_error.endswith(entry.last_error_params["error"])


@pytest.mark.parametrize(
    "number, code",
    [
        (errno.ENOSPC, problems.FOLDER_FULL),
        (errno.EDQUOT, problems.FOLDER_FULL),
        (errno.EROFS, problems.FOLDER_READ_ONLY),
        (errno.EACCES, problems.FOLDER_PERMISSION_DENIED),
        (errno.ENOENT, problems.FOLDER_MISSING),
        (errno.EIO, problems.FOLDER_UNWRITABLE),
    ],
)
def test_an_os_error_gets_the_code_of_its_errno(number, code):
    exc = OSError(number, "the kernel's words", "/srv/worklists/X.wl")

    problem = os_error_problem(exc)

    assert problem.code == code
    assert problem.params == {"error": str(exc)}
    assert problem.text.startswith("The worklist folder cannot be written") and str(exc) in problem.text


def test_reconcile_stores_the_code_and_gives_an_old_row_its_code(worklist_dir, order):
    _thai_unromanised(order)
    english = _refused(order).message
    # A row from before the codes: the same English text, no code.
    WorklistEntry.objects.create(order=order, last_error=english)

    report = worklists_reconcile()

    assert [line.kind for line in report.lines] == [FAILED]
    entry = WorklistEntry.objects.get(order=order)
    assert (entry.last_error, entry.last_error_code) == (english, problems.ROMANIZED_NAME_MISSING)
    assert entry.last_error_params["room"] == "CT 1"


def test_an_error_is_shown_in_the_readers_language(worklist_dir, order):
    _update(order.room, worklist_charset=CharacterSet.THAI)
    _update(order.patient, allergies="造影剤")
    order_sync_worklist(order_id=order.pk)
    entry = WorklistEntry.objects.get(order=order)

    with translation.override("th"):
        thai = entry.error_message
    with translation.override("en"):
        english = entry.error_message

    assert english == entry.last_error
    assert thai != english
    # The field and the character set are labels the Thai catalogue already has.
    assert "ประวัติแพ้" in thai and "ภาษาไทย มอก.620 (ISO_IR 166)" in thai and "'造影剤'" in thai


def test_the_message_goes_through_gettext_with_its_params(worklist_dir, order):
    _thai_unromanised(order)
    order_sync_worklist(order_id=order.pk)
    entry = WorklistEntry.objects.get(order=order)
    patient = Patient.objects.get(pk=Order.objects.get(pk=order.pk).patient_id)
    msgid = _msgid(problems.ROMANIZED_NAME_MISSING)
    assert msgid.startswith("Patient %(patient)s has no romanised name, and room %(room)s")

    with thai_translation(msgid, "ผู้ป่วย %(patient)s ไม่มีชื่ออักษรโรมัน ห้อง %(room)s รับเฉพาะอักษรละติน"):
        with translation.override("th"):
            thai = entry.error_message

    assert thai == f"ผู้ป่วย {patient.display_name} ไม่มีชื่ออักษรโรมัน ห้อง CT 1 รับเฉพาะอักษรละติน"


def test_a_translation_with_wrong_placeholders_shows_the_english_text(worklist_dir, order):
    _thai_unromanised(order)
    order_sync_worklist(order_id=order.pk)
    entry = WorklistEntry.objects.get(order=order)

    with thai_translation(_msgid(problems.ROMANIZED_NAME_MISSING), "ผู้ป่วย %(name)s"):
        with translation.override("th"):
            assert entry.error_message == entry.last_error


def test_an_old_row_without_a_code_shows_its_text(order):
    entry = WorklistEntry.objects.create(order=order, last_error="Room AE title is empty")

    with translation.override("th"):
        assert entry.error_message == "Room AE title is empty"


def test_an_unknown_code_shows_the_stored_text(order):
    entry = WorklistEntry(order=order, last_error="Something new", last_error_code="from-a-newer-version")

    assert entry.error_message == "Something new"


def test_every_field_the_export_names_has_a_translatable_label(order):
    seen: set[str] = set()
    real = dataset._text

    def recording(value, *, vr, label, charset, required=False):
        seen.add(label)
        return real(value, vr=vr, label=label, charset=charset, required=required)

    loaded = _loaded(order)
    # Every optional part present, so each of its values is checked (and its label seen).
    loaded.patient.national_id, loaded.patient.passport_number = "1101700203451", "AA1234567"
    loaded.patient.passport_country = "GBR"
    with mock.patch.object(dataset, "_text", recording):
        order_source(loaded)

    assert len(seen) > 20
    assert seen - FIELDS.keys() == set()


def test_the_pages_show_the_error_in_the_clerks_language(worklist_dir, order, clerk, settings):
    _thai_unromanised(order)
    order_sync_worklist(order_id=order.pk)
    thai = "ผู้ป่วย %(patient)s ไม่มีชื่ออักษรโรมัน"
    patient = Patient.objects.get(pk=Order.objects.get(pk=order.pk).patient_id)
    pages = [reverse("worklist_export:problems"), order.get_absolute_url()]

    english = [clerk.get(url).content.decode() for url in pages]
    clerk.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    try:
        with thai_translation(_msgid(problems.ROMANIZED_NAME_MISSING), thai):
            in_thai = [clerk.get(url).content.decode() for url in pages]
    finally:
        translation.deactivate()

    for html in english:
        assert "has no romanised name" in html
    for html in in_thai:
        assert f"ผู้ป่วย {patient.display_name} ไม่มีชื่ออักษรโรมัน" in html
        assert "has no romanised name" not in html


def test_a_fixed_error_clears_the_code_and_params(worklist_dir, order):
    _update(order.procedure, code_value="", code_meaning="")
    order_sync_worklist(order_id=order.pk)
    # Still found by the failed entries' partial index (last_error != ""): a coded error keeps its text.
    assert WorklistEntry.objects.exclude(last_error="").filter(order=order).exists()

    _update(order.procedure, code_value="CTHEAD", code_meaning="CT Head without contrast")
    assert order_sync_worklist(order_id=order.pk) == "written"

    entry = WorklistEntry.objects.get(order=order)
    assert (entry.last_error, entry.last_error_code, entry.last_error_params) == ("", "", {})
