"""GET /api/v1/orders/<id>/worklist-item: the order's worklist item as DICOM JSON, equal to its .wl file."""

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from pydicom import dcmread
from pydicom.dataset import Dataset

from access_audit.models import AccessAction, AccessEvent
from scheduling import services
from scheduling.models import CharacterSet, Order
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from worklist_export.dataset import order_dataset
from worklist_export.reconcile import worklists_reconcile

pytestmark = pytest.mark.django_db


def item_url(order) -> str:
    return reverse("api:order_worklist_item", args=[order.pk])


def assert_same_dataset(api: Dataset, wl: Dataset, where: str = "") -> None:
    """Every attribute of both, in order, with equal VR and value; sequences item by item."""
    assert [e.tag for e in api] == [e.tag for e in wl], where
    for element in api:
        other = wl[element.tag]
        name = f"{where}{element.keyword or element.tag}"
        assert element.VR == other.VR, name
        if element.VR == "SQ":
            assert len(element.value) == len(other.value), name
            for index, (a, b) in enumerate(zip(element.value, other.value, strict=True)):
                assert_same_dataset(a, b, f"{name}[{index}].")
        else:
            assert element.value == other.value, name
            assert str(element.value) == str(other.value), name


@pytest.mark.parametrize(
    "charset, patient_factory, patient_name, allergies",
    [
        # A Thai name in TIS-620 and in UTF-8.
        (CharacterSet.THAI, ThaiPatientFactory, "ใจดี^สมชาย", "แพ้ไอโอดีน"),
        (CharacterSet.UTF8, ThaiPatientFactory, "ใจดี^สมชาย", "แพ้ไอโอดีน"),
        # A Latin-1 room gets the Thai patient's romanised name, and accented Latin as it is.
        (CharacterSet.LATIN1, ThaiPatientFactory, "Jaidee^Somchai", "Iodine"),
        (
            CharacterSet.LATIN1,
            lambda **kw: PatientFactory(family_name="Müller", given_name="Zoë", **kw),
            "Müller^Zoë",
            "Jod (Kontrastmittel), Nüsse",
        ),
    ],
)
def test_the_item_equals_the_wl_file_attribute_for_attribute(
    reader, worklist_dir, book, charset, patient_factory, patient_name, allergies
):
    room = RoomFactory(ae_title="ITEM01", worklist_charset=charset)
    patient = patient_factory(weight_kg=Decimal("72.5"), pregnancy_status="4", allergies=allergies)
    order = book(
        room=room,
        patient=patient,
        priority="STAT",
        referring_physician="Dr Malee",
        placer_order_number="HIS-0042",
        placer_authority="Clinic portal",
    )
    wl = dcmread(worklist_dir / f"{order.accession_number}.wl")

    response = reader.get(item_url(order))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom+json"
    body = response.json()
    assert body["00080005"] == {"vr": "CS", "Value": [charset]}
    assert body["00100010"] == {"vr": "PN", "Value": [{"Alphabetic": patient_name}]}
    assert body["00402016"] == {"vr": "LO", "Value": ["HIS-0042"]}
    assert body["00102110"] == {"vr": "LO", "Value": [allergies]}
    assert_same_dataset(Dataset.from_json(body), wl)


def test_plain_json_is_given_to_a_client_that_asks_for_it(reader, worklist_dir, book):
    order = book()

    response = reader.get(item_url(order), HTTP_ACCEPT="application/json")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert response.json() == reader.get(item_url(order)).json()


def test_an_order_beyond_the_export_window_has_its_item_before_its_file(
    reader, worklist_dir, book, tomorrow_at
):
    order = book(start=tomorrow_at(9) + timedelta(days=40))
    assert not list(worklist_dir.glob("*.wl"))

    response = reader.get(item_url(order))

    assert response.status_code == 200
    assert_same_dataset(Dataset.from_json(response.json()), order_dataset(order))


@pytest.mark.parametrize("how", ["cancel", "complete"])
def test_an_order_on_no_worklist_is_a_404_problem_saying_why(
    reader, worklist_dir, book, user, after_commit, how
):
    order = book()
    with after_commit():
        if how == "cancel":
            services.order_cancel(order=order, reason="Patient unwell", user=user)
        else:
            for step in (services.order_arrive, services.order_start, services.order_complete):
                order = step(order=order, user=user)

    response = reader.get(item_url(order))

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == reverse("api:problem_type", args=["not-found"])
    status = "Cancelled" if how == "cancel" else "Completed"
    assert problem["detail"] == f"Order {order.accession_number} is not on a worklist: status {status}."
    assert not AccessEvent.objects.exists()


def test_an_order_the_export_refuses_is_a_404_problem_naming_the_fix(reader, worklist_dir, book):
    # A Thai name without a romanised one cannot be written for a Latin-1 station: no file, no item.
    room = RoomFactory(ae_title="ITEM01", worklist_charset=CharacterSet.LATIN1)
    order = book(room=room, patient=ThaiPatientFactory(romanized_family_name="", romanized_given_name=""))
    assert not list(worklist_dir.glob("*.wl"))

    response = reader.get(item_url(order))

    assert response.status_code == 404
    detail = response.json()["detail"]
    assert detail.startswith(f"Order {order.accession_number} has no worklist item")
    assert "romanised" in detail
    assert response.json()["error_code"] == "romanized-name-missing"


def test_the_refusal_is_in_the_callers_language_with_the_same_code(reader, worklist_dir, book):
    room = RoomFactory(ae_title="ITEM01", worklist_charset=CharacterSet.THAI)
    order = book(room=room, patient=PatientFactory(allergies="造影剤"))

    english = reader.get(item_url(order), HTTP_ACCEPT_LANGUAGE="en").json()
    thai = reader.get(item_url(order), HTTP_ACCEPT_LANGUAGE="th").json()

    assert english["error_code"] == thai["error_code"] == "value-unencodable"
    assert "Allergies contains characters" in english["detail"]
    # The field and the character set as the Thai catalogue names them.
    assert "ประวัติแพ้" in thai["detail"] and "มอก.620" in thai["detail"]


def test_an_unknown_order_is_a_404_problem(reader):
    response = reader.get(reverse("api:order_worklist_item", args=[999_999]))

    assert response.status_code == 404
    assert response.json()["type"] == reverse("api:problem_type", args=["not-found"])


def test_the_read_is_recorded_in_the_access_log(reader, worklist_dir, book):
    order = book()

    reader.get(item_url(order))

    [event] = AccessEvent.objects.all()
    assert event.action == AccessAction.WORKLIST_DUMP_VIEWED
    assert event.user == reader.record.user
    assert (event.order, event.patient) == (order, order.patient)


def test_it_needs_a_token(client, worklist_dir, book):
    order = book()

    response = client.get(item_url(order))

    assert response.status_code == 401
    assert not AccessEvent.objects.exists()


def test_a_changed_placer_number_rewrites_the_file(worklist_dir, book):
    order = book(placer_order_number="HIS-0042", placer_authority="Clinic portal")
    path = worklist_dir / f"{order.accession_number}.wl"
    assert dcmread(path).PlacerOrderNumberImagingServiceRequest == "HIS-0042"

    # Nothing in the app renumbers an order; a repair in the database must still reach the modality.
    Order.objects.filter(pk=order.pk).update(placer_order_number="HIS-0043")
    report = worklists_reconcile()

    assert report.counts()["unchanged"] == 0
    assert dcmread(path).PlacerOrderNumberImagingServiceRequest == "HIS-0043"


def test_an_order_without_a_placer_number_has_no_such_attribute(worklist_dir, book):
    order = book()
    assert "PlacerOrderNumberImagingServiceRequest" not in dcmread(
        worklist_dir / f"{order.accession_number}.wl"
    )
