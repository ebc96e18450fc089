"""The orders resource: booking under the front desk's rules, reading, the list, and every change."""

import base64
from datetime import UTC, datetime, time, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone, translation

from access_audit.models import AccessAction, AccessEvent
from api.models import IdempotentRequest
from scheduling import rules, services
from scheduling.forms import BookingForm
from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db

ORDERS = "/api/v1/orders"


def problem_type(slug: str) -> str:
    return reverse("api:problem_type", args=[slug])


def url(name: str, order: Order) -> str:
    return reverse(f"api:{name}", args=[order.pk])


def local(moment: datetime) -> str:
    """A naive ISO time, as a client in the clinic writes it."""
    return f"{timezone.localtime(moment):%Y-%m-%dT%H:%M:%S}"


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


@pytest.fixture
def booking(patient, procedure, room, tomorrow_at):
    """booking(**changes) -> the body of a booking of `procedure` for `patient` in `room` tomorrow 09:00."""

    def make(**changes):
        return {
            "patient": patient.pk,
            "procedure": procedure.pk,
            "room": room.pk,
            "start": tomorrow_at(9).isoformat(),
            **changes,
        }

    return make


@pytest.fixture
def booked(api, booking):
    """An order booked through the API: the response's body."""
    response = api.post(ORDERS, booking(), format="json")
    assert response.status_code == 201, response.json()
    return response.json()


@pytest.fixture
def back_to_english():
    # A request in Thai leaves Thai active in this thread; later tests expect the default language.
    yield
    translation.deactivate()


# --- booking --------------------------------------------------------------------------------------


def test_it_books_an_order_as_the_client(api, booking, patient, room, tomorrow_at):
    response = api.post(ORDERS, booking(reason="Headache", placer_order_number="P-1"), format="json")

    assert response.status_code == 201
    order = Order.objects.get()
    assert response["Location"] == reverse("api:order_detail", args=[order.pk])
    assert response["ETag"] == '"1"'
    assert order.patient == patient and order.room == room
    assert order.scheduled_start == tomorrow_at(9)
    assert order.scheduled_end == tomorrow_at(9, 30)
    assert order.reason == "Headache"
    assert order.booked_by == api.record.user
    assert order.placer_order_number == "P-1"
    assert order.placer_authority == api.record.user.username
    assert order.history.get().history_user == api.record.user


def test_it_answers_with_the_order_as_documented(api, booking, patient, procedure, room, tomorrow_at):
    body = api.post(ORDERS, booking(placer_order_number="P-7"), format="json").json()
    order = Order.objects.get()

    assert body == {
        "id": order.pk,
        "accession_number": order.accession_number,
        "study_instance_uid": order.study_instance_uid,
        "requested_procedure_id": order.accession_number,
        "sps_id": f"{order.accession_number}S1",
        "status": "SCHEDULED",
        "patient": {
            "id": patient.pk,
            "mrn": patient.mrn,
            "issuer": patient.issuer,
            "name": patient.display_name,
        },
        "procedure": {
            "id": procedure.pk,
            "code_value": "CTHEAD",
            "code_meaning": "CT Head without contrast",
            "modality": "CT",
        },
        "room": {"id": room.pk, "name": "CT 1", "ae_title": "CT01"},
        "start": body["start"],
        "end": body["end"],
        "requested_start": None,
        "duration_minutes": 30,
        "priority": "ROUTINE",
        "referring_physician": "",
        "requesting_physician": "",
        "reason": "",
        "notes": "",
        "placer_order_number": "P-7",
        "cancel_reason": "",
        "discontinue_reason": "",
        "version": 1,
        "booked_at": body["booked_at"],
        "updated_at": body["updated_at"],
        "booked_by": api.record.user.username,
        "links": {
            "self": f"/api/v1/orders/{order.pk}",
            "worklist_item": f"/api/v1/orders/{order.pk}/worklist-item",
        },
    }
    # In the clinic's time, with its offset.
    start = datetime.fromisoformat(body["start"])
    assert start == tomorrow_at(9) and start.utcoffset() == tomorrow_at(9).utcoffset()
    assert datetime.fromisoformat(body["end"]) == tomorrow_at(9, 30)


def test_it_reads_a_time_without_an_offset_as_the_clinics(api, booking, tomorrow_at):
    response = api.post(ORDERS, booking(start=local(tomorrow_at(10, 15))), format="json")

    assert response.status_code == 201
    assert Order.objects.get().scheduled_start == tomorrow_at(10, 15)


def test_it_reads_a_time_with_another_offset(api, booking, tomorrow_at):
    in_utc = tomorrow_at(11).astimezone(UTC)
    response = api.post(ORDERS, booking(start=in_utc.strftime("%Y-%m-%dT%H:%M:%SZ")), format="json")

    assert response.status_code == 201
    assert Order.objects.get().scheduled_start == tomorrow_at(11)


def test_it_takes_the_duration_and_details_given(api, booking, tomorrow_at):
    body = api.post(
        ORDERS,
        booking(duration_minutes=45, priority="STAT", referring_physician="Dr Somsak", notes="Wheelchair"),
        format="json",
    ).json()

    assert body["duration_minutes"] == 45 and body["priority"] == "STAT"
    order = Order.objects.get()
    assert order.scheduled_end == tomorrow_at(9, 45)
    assert (order.referring_physician, order.notes) == ("Dr Somsak", "Wheelchair")


def test_it_refuses_a_time_in_the_past(api, booking):
    yesterday = timezone.localtime() - timedelta(days=1)
    response = api.post(ORDERS, booking(start=yesterday.replace(hour=9, minute=0).isoformat()), format="json")

    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == problem_type("refused")
    assert problem["errors"] == {"start": ["This time has already passed; choose a later one."]}
    assert problem["codes"] == {"start": ["past"]}
    assert not Order.objects.exists()


def test_it_refuses_a_time_outside_the_rooms_hours(api, booking, tomorrow_at):
    response = api.post(ORDERS, booking(start=tomorrow_at(16, 45).isoformat()), format="json")

    assert response.status_code == 422
    assert response.json()["errors"]["start"] == [
        "CT 1 is open 08:00-17:00 on that day; the exam would run 16:45-17:15."
    ]


def test_it_refuses_a_room_of_another_modality(api, booking):
    mr = RoomFactory(name="MR 1", modality="MR", ae_title="MR01")

    response = api.post(ORDERS, booking(room=mr.pk), format="json")

    assert response.status_code == 422
    assert response.json()["errors"]["room"] == [
        "MR 1 is a MR room; CT Head without contrast needs a CT room."
    ]


def test_it_refuses_a_procedure_no_longer_offered(api, booking, procedure):
    procedure.active = False
    procedure.save()

    response = api.post(ORDERS, booking(), format="json")

    assert response.status_code == 422
    assert response.json()["errors"]["procedure"] == ["CT Head without contrast is no longer offered."]


def test_it_answers_a_taken_slot_with_409_naming_the_order_that_holds_it(api, booking, booked):
    other = PatientFactory()

    response = api.post(ORDERS, booking(patient=other.pk), format="json")

    assert response.status_code == 409
    problem = response.json()
    assert problem["type"] == problem_type("slot-taken")
    assert problem["order"] == {
        "id": booked["id"],
        "accession_number": booked["accession_number"],
        "url": f"/api/v1/orders/{booked['id']}",
    }
    assert booked["accession_number"] in problem["errors"]["start"][0]
    assert Order.objects.count() == 1


def test_it_asks_to_confirm_a_patient_overlap(api, booking, booked):
    ct2 = RoomFactory(name="CT 2", ae_title="CT02")

    warned = api.post(ORDERS, booking(room=ct2.pk), format="json")

    assert warned.status_code == 409
    problem = warned.json()
    assert problem["type"] == problem_type("confirmation-required")
    assert problem["confirm"] == "confirm_patient_overlap"
    assert "already has CT Head without contrast in CT 1" in problem["detail"]
    assert Order.objects.count() == 1

    confirmed = api.post(ORDERS, booking(room=ct2.pk, confirm_patient_overlap=True), format="json")

    assert confirmed.status_code == 201
    assert Order.objects.count() == 2


@pytest.mark.parametrize("field", ["patient", "procedure", "room"])
def test_it_refuses_an_unknown_id_with_400_at_its_field(api, booking, field):
    response = api.post(ORDERS, booking(**{field: 999_999}), format="json")

    assert response.status_code == 400
    problem = response.json()
    assert problem["type"] == problem_type("invalid-request")
    assert list(problem["errors"]) == [field]


def test_it_refuses_a_huge_id_with_400_not_a_server_error(api, booking):
    response = api.post(ORDERS, booking(patient=10**30), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["patient"]


def test_it_refuses_missing_and_malformed_fields_by_field(api):
    response = api.post(
        ORDERS, {"start": "tomorrow", "duration_minutes": 0, "priority": "SOON"}, format="json"
    )

    assert response.status_code == 400
    assert set(response.json()["errors"]) == {
        "patient",
        "procedure",
        "room",
        "start",
        "duration_minutes",
        "priority",
    }


def test_it_refuses_a_date_beyond_the_calendar(api, booking):
    response = api.post(ORDERS, booking(start="9999-12-31T23:59:00"), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["start"]


def test_it_refuses_a_name_the_scanners_cannot_take_at_its_field(api, booking):
    response = api.post(ORDERS, booking(referring_physician="Dr^Somsak"), format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["referring_physician"]
    assert not Order.objects.exists()


# --- placer numbers and retries ------------------------------------------------------------------


def test_it_books_a_placer_number_once_per_client(api, booking, tomorrow_at):
    first = api.post(ORDERS, booking(placer_order_number="HIS-42"), format="json").json()

    again = api.post(
        ORDERS, booking(placer_order_number="HIS-42", start=tomorrow_at(11).isoformat()), format="json"
    )

    assert again.status_code == 409
    problem = again.json()
    assert problem["type"] == problem_type("placer-number-taken")
    assert problem["order"]["id"] == first["id"]
    assert problem["order"]["accession_number"] == first["accession_number"]
    assert list(problem["errors"]) == ["placer_order_number"]
    assert Order.objects.count() == 1


def test_it_lets_another_client_use_the_same_placer_number(api, make_caller, booking, tomorrow_at):
    api.post(ORDERS, booking(placer_order_number="HIS-42"), format="json")
    other = make_caller(scopes=["book"], name="HIS gateway")

    response = other.post(
        ORDERS,
        booking(placer_order_number="HIS-42", patient=PatientFactory().pk, start=tomorrow_at(11).isoformat()),
        format="json",
    )

    assert response.status_code == 201
    assert sorted(Order.objects.values_list("placer_authority", flat=True)) == sorted(
        [api.record.user.username, other.record.user.username]
    )


def test_it_answers_a_retry_with_the_same_key_as_the_first_time(api, booking):
    first = api.post(ORDERS, booking(), format="json", HTTP_IDEMPOTENCY_KEY="book-1")
    retry = api.post(ORDERS, booking(), format="json", HTTP_IDEMPOTENCY_KEY="book-1")

    assert first.status_code == retry.status_code == 201
    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert retry["Location"] == first["Location"] and retry["ETag"] == first["ETag"]
    assert not first.has_header("Idempotent-Replayed")
    assert Order.objects.count() == 1


def test_it_refuses_a_key_reused_for_another_booking(api, booking, tomorrow_at):
    api.post(ORDERS, booking(), format="json", HTTP_IDEMPOTENCY_KEY="book-1")

    response = api.post(
        ORDERS, booking(start=tomorrow_at(11).isoformat()), format="json", HTTP_IDEMPOTENCY_KEY="book-1"
    )

    assert response.status_code == 422
    assert response.json()["type"] == problem_type("idempotency-key-reused")
    assert Order.objects.count() == 1


def test_it_refuses_a_refused_booking_alike_on_retry(api, booking, booked):
    body = booking(patient=PatientFactory().pk)

    first = api.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="taken")
    retry = api.post(ORDERS, body, format="json", HTTP_IDEMPOTENCY_KEY="taken")

    assert first.status_code == retry.status_code == 409
    assert retry.json() == first.json()
    assert retry["Content-Type"] == "application/problem+json"
    assert IdempotentRequest.objects.filter(key="taken").count() == 1


# --- reading --------------------------------------------------------------------------------------


def test_it_reads_an_order_with_its_etag(api, order):
    response = api.get(url("order_detail", order))

    assert response.status_code == 200
    assert response["ETag"] == f'"{order.version}"'
    assert response.json()["accession_number"] == "26010100001"
    assert response.json()["booked_by"] == "frontdesk"


def test_it_records_reading_an_order_in_the_access_log(reader, order):
    reader.get(url("order_detail", order))

    event = AccessEvent.objects.get()
    assert event.action == AccessAction.ORDER_VIEWED
    assert event.order == order and event.patient == order.patient
    assert event.user == reader.record.user


def test_it_records_no_access_for_the_list(reader, order):
    assert reader.get(ORDERS).status_code == 200
    assert not AccessEvent.objects.exists()


@pytest.mark.parametrize("pk", [999_999, 10**30])
def test_it_answers_an_unknown_order_with_404(api, pk):
    response = api.get(f"/api/v1/orders/{pk}")

    assert response.status_code == 404
    assert response.json()["type"] == problem_type("not-found")
    assert api.post(f"/api/v1/orders/{pk}/arrive").status_code == 404


# --- the list -------------------------------------------------------------------------------------


def test_it_filters_the_list_by_every_field(api, tomorrow_at, user):
    ct, mr = RoomFactory(name="CT A", ae_title="CTA"), RoomFactory(name="MR A", modality="MR", ae_title="MRA")
    mr_procedure = ProcedureFactory(modality="MR", code_value="MRBRAIN")
    someone = PatientFactory()
    day_after = tomorrow_at(9) + timedelta(days=1)
    a = OrderFactory(room=ct, scheduled_start=tomorrow_at(9), booked_by=user)
    b = OrderFactory(room=ct, scheduled_start=day_after, status=OrderStatus.ARRIVED, booked_by=user)
    c = OrderFactory(
        room=mr,
        procedure=mr_procedure,
        patient=someone,
        scheduled_start=tomorrow_at(10),
        booked_by=user,
        placer_order_number="HIS-9",
        placer_authority=api.record.user.username,
    )
    d = OrderFactory(
        room=mr,
        procedure=mr_procedure,
        scheduled_start=tomorrow_at(11),
        booked_by=user,
        placer_order_number="HIS-9",
        placer_authority="HL7-HIS",
    )
    tomorrow = timezone.localdate(tomorrow_at(9))

    def ids(**query):
        response = api.get(ORDERS, query)
        assert response.status_code == 200, response.json()
        return [row["id"] for row in response.json()["results"]]

    assert ids() == [a.pk, c.pk, d.pk, b.pk]
    assert ids(date_from=tomorrow, date_to=tomorrow) == [a.pk, c.pk, d.pk]
    assert ids(date_from=tomorrow + timedelta(days=1)) == [b.pk]
    assert ids(date_to=tomorrow) == [a.pk, c.pk, d.pk]
    assert ids(status="ARRIVED") == [b.pk]
    assert ids(room=ct.pk) == [a.pk, b.pk]
    assert ids(modality="MR") == [c.pk, d.pk]
    assert ids(patient=someone.pk) == [c.pk]
    assert ids(accession_number=b.accession_number) == [b.pk]
    assert ids(placer_order_number="HIS-9") == [c.pk]
    assert ids(placer_order_number="HIS-9", placer_authority="HL7-HIS") == [d.pk]
    assert ids(room=mr.pk, status="SCHEDULED", date_from=tomorrow) == [c.pk, d.pk]


@pytest.mark.parametrize(
    "query, field",
    [
        ({"date_from": "2026-13-01"}, "date_from"),
        ({"date_from": "2026-03-02", "date_to": "2026-03-01"}, "date_to"),
        ({"status": "LOST"}, "status"),
        ({"room": "999999"}, "room"),
        ({"modality": "XX"}, "modality"),
        ({"limit": "0"}, "limit"),
        ({"limit": "201"}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"status": ""}, "status"),
        ({"room": ""}, "room"),
        ({"placer_authority": "HL7-HIS"}, "placer_authority"),
        # Edited cursors: a time that would overflow in UTC, an id in other digits.
        ({"cursor": b64("0001-01-01T00:00:00+14:00|1")}, "cursor"),
        ({"cursor": b64("2026-03-02T02:00:00+00:00|\u00b2")}, "cursor"),
        ({"cursor": b64("2026-03-02T02:00:00|1")}, "cursor"),
    ],
)
def test_it_refuses_a_bad_filter_at_its_name(api, query, field):
    response = api.get(ORDERS, query)

    assert response.status_code == 400
    assert list(response.json()["errors"]) == [field]


def test_it_pages_through_every_order_once(api, user, tomorrow_at):
    rooms = [RoomFactory() for _ in range(3)]
    # Several orders share a start time (one per room): the cursor must split ties by id.
    orders = [
        OrderFactory(room=room, scheduled_start=tomorrow_at(hour), booked_by=user)
        for hour in (9, 10, 11)
        for room in rooms
    ]
    expected = [o.pk for o in sorted(orders, key=lambda o: (o.scheduled_start, o.pk))]

    seen, link, pages = [], f"{ORDERS}?limit=2", 0
    while link and pages < 10:  # a cursor that goes back would loop for ever
        response = api.get(link)
        assert response.status_code == 200
        page = response.json()
        assert len(page["results"]) <= 2
        seen += [row["id"] for row in page["results"]]
        link, pages = page["next"], pages + 1

    assert seen == expected
    assert pages == 5


def test_it_keeps_the_filters_in_the_next_link(api, user, tomorrow_at):
    room = RoomFactory()
    for hour in (9, 10, 11):
        OrderFactory(room=room, scheduled_start=tomorrow_at(hour), booked_by=user)
    OrderFactory(scheduled_start=tomorrow_at(9, 30), booked_by=user)

    first = api.get(ORDERS, {"room": room.pk, "limit": 2}).json()
    assert f"room={room.pk}" in first["next"] and "limit=2" in first["next"]
    second = api.get(first["next"]).json()

    assert [row["room"]["id"] for row in first["results"] + second["results"]] == [room.pk] * 3
    assert second["next"] is None


def test_it_neither_repeats_nor_skips_orders_booked_between_pages(api, user, tomorrow_at):
    room = RoomFactory()
    early, late = (OrderFactory(room=room, scheduled_start=tomorrow_at(h), booked_by=user) for h in (9, 12))
    first = api.get(ORDERS, {"limit": 1}).json()
    assert [row["id"] for row in first["results"]] == [early.pk]
    before = OrderFactory(room=room, scheduled_start=tomorrow_at(8), booked_by=user)  # behind the cursor
    between = OrderFactory(room=room, scheduled_start=tomorrow_at(10), booked_by=user)

    rest = api.get(first["next"].replace("limit=1", "limit=10")).json()

    assert [row["id"] for row in rest["results"]] == [between.pk, late.pk]
    assert before.pk not in [row["id"] for row in rest["results"]]


def test_it_reads_a_page_in_a_fixed_number_of_queries(api, user, tomorrow_at, django_assert_max_num_queries):
    for hour in range(8, 16):
        OrderFactory(scheduled_start=tomorrow_at(hour), booked_by=user)

    # Authentication and the throttle, the page's ids, then the orders with what they show.
    with django_assert_max_num_queries(4):
        response = api.get(ORDERS, {"limit": 5})

    assert len(response.json()["results"]) == 5


# --- changes --------------------------------------------------------------------------------------


def test_it_reschedules_an_order(api, booked, tomorrow_at):
    order = Order.objects.get(pk=booked["id"])
    ct2 = RoomFactory(name="CT 2", ae_title="CT02")

    response = api.post(
        url("order_reschedule", order), {"start": local(tomorrow_at(14)), "room": ct2.pk}, format="json"
    )

    assert response.status_code == 200
    assert response["ETag"] == '"2"'
    body = response.json()
    assert (body["room"]["name"], body["version"]) == ("CT 2", 2)
    assert datetime.fromisoformat(body["start"]) == tomorrow_at(14)
    order.refresh_from_db()
    assert (order.room, order.scheduled_start) == (ct2, tomorrow_at(14))
    assert order.accession_number == booked["accession_number"]
    assert order.history.latest().history_user == api.record.user


def test_it_refuses_rescheduling_onto_a_taken_slot_with_409(api, booked, booking, tomorrow_at):
    other = api.post(
        ORDERS, booking(patient=PatientFactory().pk, start=tomorrow_at(11).isoformat()), format="json"
    )

    response = api.post(
        url("order_reschedule", Order.objects.get(pk=other.json()["id"])),
        {"start": tomorrow_at(9, 15).isoformat()},
        format="json",
    )

    assert response.status_code == 409
    assert response.json()["order"]["id"] == booked["id"]


def test_it_asks_to_confirm_rescheduling_onto_the_patients_other_exam(api, booked, booking, tomorrow_at):
    ct2 = RoomFactory(name="CT 2", ae_title="CT02")
    later = api.post(ORDERS, booking(room=ct2.pk, start=tomorrow_at(11).isoformat()), format="json").json()
    move = {"start": tomorrow_at(9).isoformat()}
    order = Order.objects.get(pk=later["id"])

    warned = api.post(url("order_reschedule", order), move, format="json")

    assert warned.status_code == 409
    assert warned.json()["confirm"] == "confirm_patient_overlap"
    confirmed = api.post(
        url("order_reschedule", order), {**move, "confirm_patient_overlap": True}, format="json"
    )
    assert confirmed.status_code == 200
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(9)


def test_it_refuses_to_reschedule_a_cancelled_order(api, booked, tomorrow_at):
    order = Order.objects.get(pk=booked["id"])
    api.post(url("order_cancel", order), {"reason": "Patient called"}, format="json")

    response = api.post(url("order_reschedule", order), {"start": tomorrow_at(14).isoformat()}, format="json")

    assert response.status_code == 422
    assert response.json()["errors"] == {"non_field_errors": ["A cancelled order cannot be rescheduled."]}


def test_it_cancels_an_order_with_a_reason(api, booked):
    order = Order.objects.get(pk=booked["id"])

    response = api.post(url("order_cancel", order), {"reason": "Patient called"}, format="json")

    assert response.status_code == 200
    assert (response.json()["status"], response.json()["cancel_reason"]) == ("CANCELLED", "Patient called")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.history.latest().history_user == api.record.user


@pytest.mark.parametrize("body", [{}, {"reason": "   "}])
def test_it_needs_a_reason_to_cancel(api, booked, body):
    order = Order.objects.get(pk=booked["id"])

    response = api.post(url("order_cancel", order), body, format="json")

    assert response.status_code == 400
    assert response.json()["errors"] == {"reason": ["Give a reason for the cancellation."]}
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_moves_an_order_through_the_exam(api, booked):
    order = Order.objects.get(pk=booked["id"])

    statuses = []
    for step in ("order_arrive", "order_start", "order_complete"):
        response = api.post(url(step, order))
        assert response.status_code == 200, response.json()
        statuses.append(response.json()["status"])

    assert statuses == ["ARRIVED", "IN_PROGRESS", "COMPLETED"]
    assert response["ETag"] == '"4"'
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED


@pytest.mark.parametrize(
    "step, message",
    [
        ("order_start", "An order that is scheduled cannot be marked in progress."),
        ("order_complete", "An order that is scheduled cannot be marked completed."),
    ],
)
def test_it_refuses_a_step_from_the_wrong_status_in_the_rules_words(api, booked, step, message):
    response = api.post(url(step, Order.objects.get(pk=booked["id"])))

    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == problem_type("refused")
    assert problem["errors"] == {"non_field_errors": [message]}
    assert problem["codes"] == {"non_field_errors": ["illegal_transition"]}


def test_it_refuses_to_cancel_a_completed_order(api, order):
    for service in (services.order_arrive, services.order_start, services.order_complete):
        service(order=order, user=order.booked_by)

    response = api.post(url("order_cancel", order), {"reason": "Too late"}, format="json")

    assert response.status_code == 422
    assert response.json()["errors"] == {
        "non_field_errors": ["An order that is completed cannot be marked cancelled."]
    }


def test_it_changes_the_details_sent_and_keeps_the_others(api, booked):
    order = Order.objects.get(pk=booked["id"])
    services.order_update_details(order=order, user=order.booked_by, notes="Wheelchair")

    response = api.patch(
        url("order_detail", order), {"reason": "Follow-up", "priority": "HIGH"}, format="json"
    )

    assert response.status_code == 200
    assert response["ETag"] == '"3"'
    order.refresh_from_db()
    assert (order.reason, order.priority, order.notes) == ("Follow-up", "HIGH", "Wheelchair")
    assert order.history.latest().history_user == api.record.user


def test_it_refuses_an_empty_change_and_changes_nothing(api, booked):
    response = api.patch(url("order_detail", Order.objects.get(pk=booked["id"])), {}, format="json")

    assert response.status_code == 400
    assert "notes" in response.json()["errors"]["non_field_errors"][0]
    assert Order.objects.get().version == 1


def test_it_refuses_a_change_naming_another_field_at_it(api, booked):
    order = Order.objects.get(pk=booked["id"])

    response = api.patch(url("order_detail", order), {"note": "Wheelchair", "reason": "x"}, format="json")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["note"]
    order.refresh_from_db()
    assert (order.version, order.reason) == (1, "")


def test_it_refuses_to_change_a_cancelled_order(api, booked):
    order = Order.objects.get(pk=booked["id"])
    services.order_cancel(order=order, reason="Patient called", user=order.booked_by)

    response = api.patch(url("order_detail", order), {"notes": "x"}, format="json")

    assert response.status_code == 422
    assert response.json()["errors"] == {"non_field_errors": ["A cancelled order cannot be changed."]}


# --- If-Match -------------------------------------------------------------------------------------

CHANGES = [
    ("order_detail", "patch", {"notes": "From the portal"}),
    ("order_reschedule", "post", {"start": "__14:00__"}),
    ("order_cancel", "post", {"reason": "Patient called"}),
    ("order_arrive", "post", None),
]


def _send(api, name, method, body, order, tomorrow_at, **headers):
    if body and body.get("start") == "__14:00__":
        body = {"start": tomorrow_at(14).isoformat()}
    return getattr(api, method)(url(name, order), body, format="json", **headers)


@pytest.mark.parametrize("name, method, body", CHANGES)
def test_it_refuses_a_stale_if_match_with_412_and_changes_nothing(
    api, order, tomorrow_at, name, method, body
):
    services.order_update_details(order=order, user=order.booked_by, notes="Someone else's")

    response = _send(api, name, method, body, order, tomorrow_at, HTTP_IF_MATCH='"1"')

    assert response.status_code == 412
    assert response.json()["type"] == problem_type("stale-version")
    assert response["ETag"] == '"2"'
    order.refresh_from_db()
    assert (order.version, order.status, order.scheduled_start) == (2, OrderStatus.SCHEDULED, tomorrow_at(9))


@pytest.mark.parametrize("name, method, body", CHANGES)
def test_it_lets_a_change_with_a_matching_if_match_through(api, order, tomorrow_at, name, method, body):
    response = _send(api, name, method, body, order, tomorrow_at, HTTP_IF_MATCH=f'"{order.version}"')

    assert response.status_code == 200, response.json()
    assert response["ETag"] == f'"{order.version + 1}"'


def test_it_guards_the_next_change_with_the_etag_of_a_read(api, booked):
    order = Order.objects.get(pk=booked["id"])
    etag = api.get(url("order_detail", order))["ETag"]

    assert api.post(url("order_arrive", order), HTTP_IF_MATCH=etag).status_code == 200
    assert api.post(url("order_start", order), HTTP_IF_MATCH=etag).status_code == 412


def test_it_refuses_a_malformed_if_match_with_400(api, order):
    response = api.post(url("order_arrive", order), HTTP_IF_MATCH="yesterday")

    assert response.status_code == 400
    assert list(response.json()["errors"]) == ["If-Match"]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


# --- scopes ---------------------------------------------------------------------------------------


def test_it_lets_a_reader_read_but_not_book(reader, booking, order):
    assert reader.get(ORDERS).status_code == 200
    assert reader.get(url("order_detail", order)).status_code == 200

    response = reader.post(ORDERS, booking(), format="json")

    assert response.status_code == 403
    assert "book" in response.json()["detail"]
    assert reader.patch(url("order_detail", order), {"notes": "x"}, format="json").status_code == 403
    assert reader.post(url("order_cancel", order), {"reason": "x"}, format="json").status_code == 403
    assert Order.objects.count() == 1


def test_it_forbids_a_booking_client_to_move_the_exam_along(make_caller, order):
    booker = make_caller(scopes=["read", "book"])

    for step in ("order_arrive", "order_start", "order_complete"):
        response = booker.post(url(step, order))
        assert response.status_code == 403
        assert "workflow" in response.json()["detail"]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_forbids_a_workflow_client_to_book_or_cancel(make_caller, booking, order):
    scanner_desk = make_caller(scopes=["read", "workflow"])

    assert scanner_desk.post(ORDERS, booking(), format="json").status_code == 403
    assert scanner_desk.post(url("order_cancel", order), {"reason": "x"}, format="json").status_code == 403
    assert scanner_desk.post(url("order_arrive", order)).status_code == 200


# --- languages ------------------------------------------------------------------------------------


def test_it_refuses_in_thai_as_the_thai_form_does(api, booking, patient, procedure, room, back_to_english):
    yesterday = timezone.localdate() - timedelta(days=1)
    with translation.override("th"):
        form = BookingForm(
            {
                "patient": patient.pk,
                "procedure": procedure.pk,
                "room": room.pk,
                "date": yesterday.isoformat(),
                "slot": "09:00",
                "priority": "ROUTINE",
            }
        )
        assert not form.is_valid()
        on_the_form = form.errors["slot"]

    response = api.post(
        ORDERS,
        booking(start=f"{yesterday.isoformat()}T09:00:00"),
        format="json",
        HTTP_ACCEPT_LANGUAGE="th",
    )

    assert response.status_code == 422
    assert response.json()["errors"]["start"] == on_the_form
    assert on_the_form == ["เวลานี้ผ่านไปแล้ว กรุณาเลือกเวลาที่หลังจากนี้"]


def test_it_refuses_in_english_when_asked_in_english(api, booking):
    yesterday = timezone.localdate() - timedelta(days=1)

    response = api.post(
        ORDERS, booking(start=f"{yesterday.isoformat()}T09:00:00"), format="json", HTTP_ACCEPT_LANGUAGE="en"
    )

    assert response.json()["errors"]["start"] == ["This time has already passed; choose a later one."]


def test_it_words_a_wrong_step_in_thai(api, order, back_to_english):
    with translation.override("th"):
        expected = rules.check_transition(order=order, to=OrderStatus.COMPLETED)[0].message

    response = api.post(url("order_complete", order), HTTP_ACCEPT_LANGUAGE="th")

    assert response.status_code == 422
    assert response.json()["errors"]["non_field_errors"] == [expected]
    assert expected != "An order that is scheduled cannot be marked completed."


def test_it_names_the_clinics_times_in_an_opening_hours_refusal(api, booking, tomorrow_at):
    # The times in the message are the clinic's, whatever offset the client wrote.
    evening = timezone.make_aware(datetime.combine(timezone.localdate(tomorrow_at(9)), time(20)))
    response = api.post(
        ORDERS,
        booking(start=evening.astimezone(timezone.get_fixed_timezone(-300)).isoformat()),
        format="json",
    )

    assert response.status_code == 422
    assert "20:00-20:30" in response.json()["errors"]["start"][0]


def test_it_answers_exactly_what_the_documented_serializer_says(
    api, patient, procedure, room, tomorrow_at, user
):
    from api.orders import OrderSerializer, order_representation
    from scheduling import services

    order = services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )
    order = services.order_cancel(order=order, reason="Duplicate", user=user)
    order.refresh_from_db()
    assert order_representation(order) == OrderSerializer(order).data
    assert api.get(f"/api/v1/orders/{order.pk}").json() == OrderSerializer(order).data
