"""Merging a duplicate patient record into the one in use (the hospital's merge, HL7 ADT^A40)."""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from scheduling import services
from scheduling.models import OrderEvent, OrderEventKind, OrderStatus
from tests.factories import OrderFactory, PatientFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def source(db):
    return PatientFactory(mrn="HN-OLD")


@pytest.fixture
def target(db):
    return ThaiPatientFactory(mrn="HN-NEW")


def in_status(status, **fields):
    if status == OrderStatus.CANCELLED:
        fields["cancel_reason"] = "Patient ill"
    if status == OrderStatus.REQUESTED:
        fields.update(room=None, scheduled_start=None, scheduled_end=None)
    return OrderFactory(status=status, **fields)


def test_every_order_moves_to_the_record_in_use(source, target, user):
    orders = [in_status(status, patient=source) for status in OrderStatus]

    assert services.patient_merge(source=source, target=target, user=user) == target

    for order in orders:
        before = order.version
        order.refresh_from_db()
        assert order.patient == target
        assert order.version == before + 1
        # Who moved it, in the order's history.
        latest = order.history.latest("history_date")
        assert (latest.patient_id, latest.history_user) == (target.pk, user)


def test_the_old_record_is_marked_merged_in_its_history(source, target, user):
    services.patient_merge(source=source, target=target, user=user)

    source.refresh_from_db()
    assert source.merged_into == target
    assert source.version == 2
    latest = source.history.latest("history_date")
    assert (latest.merged_into_id, latest.history_user) == (target.pk, user)


def test_the_orders_on_a_worklist_get_an_event_so_their_items_are_rewritten(source, target, user):
    orders = {status: in_status(status, patient=source) for status in OrderStatus}

    services.patient_merge(source=source, target=target, user=user)

    changed = OrderEvent.objects.filter(kind=OrderEventKind.PATIENT_CHANGED)
    assert {e.order_id for e in changed} == {
        orders[s].pk for s in (OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS)
    }
    # Each event carries the order as the merge left it.
    for event in changed:
        assert event.version == orders[event.status].version + 1


def test_the_worklist_item_then_names_the_patient_in_use(
    source, target, user, book, worklist_dir, after_commit
):
    order = book(patient=source)

    with after_commit():
        services.patient_merge(source=source, target=target, user=user)

    item = (worklist_dir / f"{order.accession_number}.wl").read_bytes()
    assert b"HN-NEW" in item and b"HN-OLD" not in item


@pytest.mark.parametrize(
    "case, code",
    [
        ("itself", "merge_into_self"),
        ("already merged", "already_merged"),
        ("into a merged one", "merge_into_merged"),
    ],
)
def test_a_merge_that_would_lose_track_is_refused(source, target, user, case, code):
    elsewhere = PatientFactory()
    if case == "itself":
        args = {"source": source, "target": source}
    elif case == "already merged":
        services.patient_merge(source=source, target=elsewhere, user=user)
        args = {"source": source, "target": target}
    else:
        services.patient_merge(source=target, target=elsewhere, user=user)
        args = {"source": source, "target": target}
    order = OrderFactory(patient=args["source"])

    with pytest.raises(ValidationError) as refused:
        services.patient_merge(user=user, **args)

    assert [e.code for e in refused.value.error_list] == [code]
    order.refresh_from_db()
    assert order.patient == args["source"]


def test_a_merged_record_takes_no_new_order(source, target, user, procedure, room, tomorrow_at):
    services.patient_merge(source=source, target=target, user=user)
    source.refresh_from_db()

    with pytest.raises(ValidationError) as refused:
        services.order_book(patient=source, procedure=procedure, room=room, start=tomorrow_at(9), user=user)
    with pytest.raises(ValidationError):
        services.order_request(patient=source, procedure=procedure, user=user)

    assert list(refused.value.error_dict) == ["patient"]
    assert "HN-NEW" in refused.value.messages[0]


def test_the_merged_records_national_id_is_free_for_the_record_in_use(user):
    source = PatientFactory(national_id="3500100123457")
    target = PatientFactory()

    services.patient_merge(source=source, target=target, user=user)
    # The ID is free again for the record in use (the merged record keeps it, not holding it).
    services.patient_update(patient=target, user=user, national_id="3500100123457")

    target.refresh_from_db()
    assert target.national_id == "3500100123457"


def test_the_merged_records_page_links_to_the_record_in_use_and_offers_no_booking(
    clerk, source, target, user
):
    services.patient_merge(source=source, target=target, user=user)

    html = clerk.get(reverse("scheduling:patient_detail", args=[source.pk])).content.decode()
    in_use = clerk.get(reverse("scheduling:patient_detail", args=[target.pk])).content.decode()

    assert 'id="merged-into"' in html and target.get_absolute_url() in html
    assert f"{reverse('scheduling:order_create')}?patient={source.pk}" not in html
    assert f"{reverse('scheduling:order_create')}?patient={target.pk}" in in_use
