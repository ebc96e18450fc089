"""One path for every worklist item: the per-order task and the reconcile write the same bytes, from the
one encoder, and only a named export error is taken for bad data.
"""

from datetime import date

import pytest
from pydicom import dcmread

from scheduling import services
from scheduling.models import CharacterSet
from tests.factories import OrderFactory, PatientFactory, RoomFactory
from tests.worklist_export.oracle import dataset_bytes, source_dataset
from worklist_export import encoding, reconcile, writer
from worklist_export import services as export_services
from worklist_export.dataset import order_body, order_dataset, order_source
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import worklists_reconcile
from worklist_export.services import order_sync_worklist

pytestmark = pytest.mark.django_db


def file_body(path) -> bytes:
    data = path.read_bytes()
    group_length = int.from_bytes(data[140:144], "little")
    return data[144 + group_length :]


@pytest.mark.parametrize(
    "charset, family, given",
    [
        (CharacterSet.UTF8, "ใจดี", "สมชาย"),
        (CharacterSet.LATIN1, "Müller", "Zoë"),
        (CharacterSet.THAI, "วงศ์สวัสดิ์", "ประเสริฐ"),
    ],
)
def test_the_task_and_the_reconcile_write_identical_items(worklist_dir, charset, family, given):
    room = RoomFactory(worklist_charset=charset)
    order = OrderFactory(room=room, patient=PatientFactory(family_name=family, given_name=given))
    path = worklist_dir / f"{order.accession_number}.wl"

    assert order_sync_worklist(order_id=order.pk) == "written"
    by_task = path.read_bytes()
    path.unlink()
    WorklistEntry.objects.all().delete()
    worklists_reconcile()
    by_reconcile = path.read_bytes()

    # The file meta differs only in its fresh SOP instance UID; the item is the same, byte for byte,
    # and is what pydicom writes for the same item.
    assert file_body(path) == order_body(order) == dataset_bytes(source_dataset(order_source(order)))
    assert by_task[: 128 + 4] == by_reconcile[: 128 + 4]
    metas = []
    for data in (by_task, by_reconcile):
        path.write_bytes(data)
        ds = dcmread(path)
        assert ds.file_meta.MediaStorageSOPClassUID == encoding.MWL_SOP_CLASS_UID
        assert ds.AccessionNumber == order.accession_number
        # Each write has a fresh instance UID (and so, at times, another group length); nothing else differs.
        metas.append(
            {
                e.keyword: e.value
                for e in ds.file_meta
                if e.keyword not in ("MediaStorageSOPInstanceUID", "FileMetaInformationGroupLength")
            }
        )
    assert metas[0] == metas[1]


def test_the_task_writes_through_the_encoder(worklist_dir, monkeypatch):
    order = OrderFactory()
    calls = []
    real = encoding.part10_bytes

    def counting(body, **kwargs):
        calls.append(body)
        return real(body, **kwargs)

    monkeypatch.setattr(writer, "part10_bytes", counting)
    order_sync_worklist(order_id=order.pk)
    assert calls == [order_body(order)]


def test_the_built_in_server_reads_what_the_file_holds(worklist_dir):
    order = OrderFactory()
    order_sync_worklist(order_id=order.pk)
    from_file = dcmread(worklist_dir / f"{order.accession_number}.wl")
    served = order_dataset(order)
    assert [e.tag for e in served] == [e.tag for e in from_file]
    assert served.PatientName == from_file.PatientName
    assert served.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == (
        from_file.ScheduledProcedureStepSequence[0].ScheduledStationAETitle
    )


@pytest.mark.parametrize("error", [TypeError("a bug"), ValueError("also a bug"), KeyError("charset")])
def test_a_programming_error_in_the_task_surfaces(worklist_dir, monkeypatch, error):
    order = OrderFactory()

    def broken(order):
        raise error

    monkeypatch.setattr(export_services, "order_source", broken)
    with pytest.raises(type(error)):
        order_sync_worklist(order_id=order.pk)
    # Not recorded as data for the clerk to fix.
    assert not WorklistEntry.objects.filter(order=order, last_error__gt="").exists()


def test_a_programming_error_in_the_reconcile_surfaces(worklist_dir, monkeypatch):
    OrderFactory()

    def broken(order):
        raise ValueError("not the data's fault")

    monkeypatch.setattr(reconcile, "order_source", broken)
    with pytest.raises(ValueError, match="not the data's fault"):
        worklists_reconcile()
    assert not WorklistEntry.objects.filter(last_error__gt="").exists()


def test_an_unusable_called_ae_is_an_export_error_for_the_clerk(worklist_dir, settings):
    settings.WORKLIST_LAYOUT = "wlmscpfs"
    settings.WORKLIST_CALLED_AE = "../x"
    order = OrderFactory()
    assert order_sync_worklist(order_id=order.pk) == "failed"
    entry = WorklistEntry.objects.get(order=order)
    assert "cannot name a folder" in entry.last_error and "WORKLIST_CALLED_AE" in entry.last_error


def test_a_name_with_spaces_round_the_parts_exports_as_it_validates(worklist_dir, user):
    """A service caller (HL7, the API) sends "Jaidee " and " Somchai": stored, validated and exported
    as Jaidee^Somchai, the same as the form (which strips) would have it."""
    patient = services.patient_register(
        mrn=" HN900 ", family_name="Jaidee ", given_name=" Somchai", birth_date=date(1970, 1, 2)
    )
    patient.refresh_from_db()
    assert (patient.mrn, patient.family_name, patient.given_name) == ("HN900", "Jaidee", "Somchai")
    assert patient.dicom_name == "Jaidee^Somchai"
    assert order_dataset(OrderFactory(patient=patient)).PatientName == "Jaidee^Somchai"


def test_a_name_saved_with_spaces_past_the_services_still_exports_trimmed(worklist_dir):
    # Written straight to the database (an old row, a script): the export and the validation agree.
    patient = PatientFactory(family_name="Jaidee ", given_name=" Somchai", name_prefix=" Mr ")
    assert patient.dicom_name == "Jaidee^Somchai^^Mr"
    assert order_dataset(OrderFactory(patient=patient)).PatientName == "Jaidee^Somchai^^Mr"
    latin = RoomFactory(worklist_charset=CharacterSet.LATIN1)
    patient.romanized_family_name, patient.romanized_given_name = " Jaidee", "Somchai "
    patient.save()
    assert order_dataset(OrderFactory(patient=patient, room=latin)).PatientName == "Jaidee^Somchai^^Mr"


def test_patient_update_and_order_details_strip_text_too(user, order):
    services.patient_update(patient=order.patient, family_name="  Srisuk ", allergies=" Iodine ")
    order.patient.refresh_from_db()
    assert (order.patient.family_name, order.patient.allergies) == ("Srisuk", "Iodine")
    services.order_update_details(order=order, user=user, reason=" Headache ", notes="\n Wheelchair \n")
    order.refresh_from_db()
    assert (order.reason, order.notes) == ("Headache", "Wheelchair")
