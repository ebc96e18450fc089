"""Requested orders: taken without a room or time (the HIS over HL7, the API), placed in the first free
room when they come with a time, and booked by the front desk from the To schedule list."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils import timezone

from scheduling import services
from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus, Priority
from scheduling.roles import TECHNOLOGIST
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory, UserFactory

pytestmark = pytest.mark.django_db


def kinds(order: Order) -> list[str]:
    return list(OrderEvent.objects.filter(order=order).order_by("id").values_list("kind", flat=True))


def shown_messages(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


@pytest.fixture
def requested(patient, procedure, user, tomorrow_at):
    """requested(**changes) -> a REQUESTED order made by services.order_request (as the HL7 link does)."""

    def make(**changes) -> Order:
        args = {"patient": patient, "procedure": procedure, "user": user, "requested_start": tomorrow_at(10)}
        args.update(changes)
        return services.order_request(**args)

    return make


def waiting(**fields) -> Order:
    """A requested order written straight to the database (for the list's order)."""
    return OrderFactory(
        status=OrderStatus.REQUESTED, room=None, scheduled_start=None, scheduled_end=None, **fields
    )


# --- order_request ----------------------------------------------------------------------------------


def test_a_request_is_numbered_at_once_and_waits_without_room_or_time(requested, tomorrow_at):
    order = requested(placer_order_number=" HIS-1 ", placer_authority="HOSXP", reason=" Headache ")

    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED
    assert (order.room, order.scheduled_start, order.scheduled_end) == (None, None, None)
    assert order.requested_start == tomorrow_at(10)
    # What the HIS hears back as the filler order number, and keeps when the order is booked.
    assert order.accession_number and order.requested_procedure_id == order.accession_number
    assert order.sps_id == f"{order.accession_number}S1" and order.study_instance_uid
    assert (order.placer_order_number, order.placer_authority, order.reason) == ("HIS-1", "HOSXP", "Headache")
    assert order.duration_minutes == order.procedure.default_duration
    assert kinds(order) == [OrderEventKind.REQUESTED]


def test_a_request_without_a_time_waits_too(requested):
    order = requested(requested_start=None)

    assert (order.status, order.requested_start) == (OrderStatus.REQUESTED, None)


def test_a_request_for_a_procedure_no_longer_offered_is_refused_at_procedure(requested, procedure):
    procedure.active = False
    procedure.save()

    with pytest.raises(ValidationError) as refused:
        requested()

    assert list(refused.value.error_dict) == ["procedure"]
    assert not Order.objects.exists()


def test_a_placer_number_is_taken_once_per_authority(requested):
    first = requested(placer_order_number="HIS-2", placer_authority="HOSXP")

    with pytest.raises(ValidationError) as refused:
        requested(placer_order_number="HIS-2", placer_authority="HOSXP")
    other_sender = requested(placer_order_number="HIS-2", placer_authority="LAB")

    (error,) = refused.value.error_dict["placer_order_number"]
    assert error.code == "placer_number_taken"
    assert first.accession_number in error.message % error.params
    assert other_sender.status == OrderStatus.REQUESTED


# --- order_place: the HIS door ----------------------------------------------------------------------


@pytest.fixture
def ct_rooms(db):
    """Two CT rooms created out of name order, and an MR room named first that must never be used."""
    ct_b = RoomFactory(name="CT B", ae_title="CTB")
    ct_a = RoomFactory(name="CT A", ae_title="CTA")
    RoomFactory(name="AAA MR", ae_title="MR1", modality="MR")
    return ct_a, ct_b


def place(patient, procedure, user, start, **extra) -> Order:
    return services.order_place(patient=patient, procedure=procedure, user=user, start=start, **extra)


def test_an_order_with_a_time_is_booked_in_the_first_free_room_by_name(
    ct_rooms, patient, procedure, user, tomorrow_at
):
    ct_a, _ct_b = ct_rooms

    order = place(patient, procedure, user, tomorrow_at(9), placer_order_number="P1", placer_authority="HIS")

    order.refresh_from_db()
    assert (order.status, order.room, order.scheduled_start) == (OrderStatus.SCHEDULED, ct_a, tomorrow_at(9))
    assert order.scheduled_end == tomorrow_at(9, 30)
    assert order.requested_start == tomorrow_at(9)  # what the HIS asked for, kept
    assert kinds(order) == [OrderEventKind.BOOKED]


def test_the_placement_note_is_empty_when_booked(ct_rooms, patient, procedure, user, tomorrow_at):
    assert place(patient, procedure, user, tomorrow_at(9)).placement_note == ""


def test_a_busy_room_passes_the_order_to_the_next(ct_rooms, patient, procedure, user, tomorrow_at):
    ct_a, ct_b = ct_rooms
    services.order_book(
        patient=PatientFactory(), procedure=procedure, room=ct_a, start=tomorrow_at(9), user=user
    )

    order = place(patient, procedure, user, tomorrow_at(9, 15))

    assert (order.status, order.room) == (OrderStatus.SCHEDULED, ct_b)
    # The refused try in CT A left nothing behind: one order more, one event more.
    assert Order.objects.count() == 2
    assert OrderEvent.objects.count() == 2


def test_no_room_free_then_leaves_it_requested_with_the_time_asked_and_why(
    ct_rooms, patient, procedure, user, tomorrow_at
):
    for room in ct_rooms:
        services.order_book(
            patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow_at(9), user=user
        )

    order = place(patient, procedure, user, tomorrow_at(9), placer_order_number="P2", placer_authority="HIS")

    order.refresh_from_db()
    assert (order.status, order.room, order.scheduled_start) == (OrderStatus.REQUESTED, None, None)
    assert order.requested_start == tomorrow_at(9)
    assert order.placer_order_number == "P2"
    assert kinds(order) == [OrderEventKind.REQUESTED]


def test_the_note_says_why_no_room_took_it(ct_rooms, patient, procedure, user, tomorrow_at):
    for room in ct_rooms:
        services.order_book(
            patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow_at(9), user=user
        )

    order = place(patient, procedure, user, tomorrow_at(9))

    assert "CT A is already booked" in order.placement_note
    assert "CT B is already booked" in order.placement_note
    assert "To schedule" in order.placement_note


def test_an_order_without_a_time_waits_on_the_list(ct_rooms, patient, procedure, user):
    order = place(patient, procedure, user, None)

    assert (order.status, order.requested_start) == (OrderStatus.REQUESTED, None)
    assert order.placement_note == "No start time was requested: the order waits on the To schedule list."


def test_the_patients_other_exam_then_counts_as_not_free(ct_rooms, patient, procedure, user, tomorrow_at):
    ct_a, _ct_b = ct_rooms
    other = ProcedureFactory(modality="CT")
    services.order_book(patient=patient, procedure=other, room=ct_a, start=tomorrow_at(9), user=user)

    order = place(patient, procedure, user, tomorrow_at(9))

    # Nobody at the HIS can confirm a second exam at an overlapping time: a clerk decides.
    assert order.status == OrderStatus.REQUESTED
    assert "a clerk must confirm a second one" in order.placement_note


def test_a_time_in_the_past_waits_for_a_clerk(ct_rooms, patient, procedure, user):
    order = place(patient, procedure, user, timezone.now() - timedelta(hours=1))

    assert order.status == OrderStatus.REQUESTED
    assert "already passed" in order.placement_note


def test_the_rooms_given_are_tried_in_their_order(ct_rooms, patient, procedure, user, tomorrow_at):
    ct_a, ct_b = ct_rooms

    order = place(patient, procedure, user, tomorrow_at(9), rooms=[ct_b, ct_a])

    assert order.room == ct_b


def test_a_placer_number_already_used_is_refused_not_placed(ct_rooms, patient, procedure, user, tomorrow_at):
    place(patient, procedure, user, tomorrow_at(9), placer_order_number="P3", placer_authority="HIS")

    with pytest.raises(ValidationError) as refused:
        place(patient, procedure, user, tomorrow_at(11), placer_order_number="P3", placer_authority="HIS")

    assert list(refused.value.error_dict) == ["placer_order_number"]
    assert Order.objects.count() == 1


# --- order_schedule ---------------------------------------------------------------------------------


def test_scheduling_books_the_request_and_keeps_its_numbers(
    requested, room, user, tomorrow_at, worklist_dir, after_commit
):
    order = requested(placer_order_number="HIS-9", placer_authority="HOSXP")
    accession, uid = order.accession_number, order.study_instance_uid

    with after_commit():
        booked = services.order_schedule(order=order, room=room, start=tomorrow_at(11), user=user)

    booked.refresh_from_db()
    assert (booked.status, booked.room, booked.scheduled_start) == (
        OrderStatus.SCHEDULED,
        room,
        tomorrow_at(11),
    )
    assert booked.scheduled_end == tomorrow_at(11, 30)
    assert (booked.accession_number, booked.study_instance_uid, booked.placer_order_number) == (
        accession,
        uid,
        "HIS-9",
    )
    assert booked.version == order.version + 1
    assert kinds(booked) == [OrderEventKind.REQUESTED, OrderEventKind.BOOKED]
    assert (worklist_dir / f"{accession}.wl").is_file()


def test_scheduling_refuses_an_order_already_booked(order, room, user, tomorrow_at):
    with pytest.raises(ValidationError) as refused:
        services.order_schedule(order=order, room=room, start=tomorrow_at(14), user=user)

    assert [e.code for e in refused.value.error_list] == ["not_requested"]
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(9)


def test_scheduling_refuses_a_taken_slot_at_start(requested, order, room, user, tomorrow_at):
    waiting_order = requested(patient=PatientFactory())

    with pytest.raises(ValidationError) as refused:
        services.order_schedule(order=waiting_order, room=room, start=tomorrow_at(9, 15), user=user)

    assert list(refused.value.error_dict) == ["start"]
    waiting_order.refresh_from_db()
    assert (waiting_order.status, waiting_order.room) == (OrderStatus.REQUESTED, None)


def test_scheduling_a_stale_version_is_refused(requested, room, user, tomorrow_at):
    order = requested()
    services.order_update_details(order=order, user=user, notes="Someone else's")

    with pytest.raises(services.StaleVersion):
        services.order_schedule(order=order, room=room, start=tomorrow_at(11), user=user, if_version=1)


# --- order_try_schedule (HL7 XO of a requested order) ---------------------------------------------


def test_a_new_time_books_it_when_a_room_is_free(requested, room, user, tomorrow_at):
    order = requested(requested_start=None)

    moved = services.order_try_schedule(order=order, user=user, start=tomorrow_at(13))

    assert (moved.status, moved.room, moved.scheduled_start) == (OrderStatus.SCHEDULED, room, tomorrow_at(13))
    assert moved.placement_note == ""


def test_a_new_time_with_no_room_free_updates_the_request(requested, order, user, tomorrow_at):
    waiting_order = requested(patient=PatientFactory(), requested_start=tomorrow_at(15))

    kept = services.order_try_schedule(order=waiting_order, user=user, start=tomorrow_at(9))

    kept.refresh_from_db()
    assert (kept.status, kept.room, kept.requested_start) == (OrderStatus.REQUESTED, None, tomorrow_at(9))
    assert kept.version == waiting_order.version + 1
    assert kinds(kept) == [OrderEventKind.REQUESTED, OrderEventKind.DETAILS_CHANGED]


def test_a_new_time_for_a_booked_order_is_refused(order, user, tomorrow_at):
    with pytest.raises(ValidationError):
        services.order_try_schedule(order=order, user=user, start=tomorrow_at(13))


# --- the other changes of a requested order ------------------------------------------------------


def test_a_requested_order_is_cancelled_with_a_reason(requested, user):
    order = requested()

    cancelled = services.order_cancel(order=order, reason="Ordered twice", user=user)

    cancelled.refresh_from_db()
    assert (cancelled.status, cancelled.cancel_reason) == (OrderStatus.CANCELLED, "Ordered twice")
    assert kinds(cancelled)[-1] == OrderEventKind.CANCELLED


def test_a_requested_orders_details_change(requested, user):
    order = requested()

    changed = services.order_update_details(order=order, user=user, priority=Priority.STAT)

    assert (changed.priority, changed.status) == (Priority.STAT, OrderStatus.REQUESTED)


def test_rescheduling_a_requested_order_points_to_booking_it(requested, room, user, tomorrow_at):
    order = requested()

    for target in (None, room):
        with pytest.raises(ValidationError) as refused:
            services.order_reschedule(order=order, start=tomorrow_at(10), room=target, user=user)
        assert refused.value.messages == [
            "This order is requested and not booked yet: book it from the To schedule list."
        ]


def test_a_requested_order_cannot_arrive(requested, user):
    with pytest.raises(ValidationError):
        services.order_arrive(order=requested(), user=user)


# --- the To schedule list -------------------------------------------------------------------------


def listed(client) -> list[int]:
    page = client.get(reverse("scheduling:to_schedule"))
    assert page.status_code == 200
    return [order.pk for order in page.context["page"]]


def test_the_list_shows_stat_first_then_by_priority_then_the_oldest(clerk):
    now = timezone.now()
    routine_old = waiting(priority=Priority.ROUTINE, booked_at=now - timedelta(days=3))
    routine_new = waiting(priority=Priority.ROUTINE, booked_at=now - timedelta(hours=1))
    high = waiting(priority=Priority.HIGH, booked_at=now - timedelta(minutes=5))
    stat_new = waiting(priority=Priority.STAT, booked_at=now - timedelta(minutes=1))
    stat_old = waiting(priority=Priority.STAT, booked_at=now - timedelta(hours=2))
    low = waiting(priority=Priority.LOW, booked_at=now - timedelta(days=9))
    OrderFactory()  # booked: not on the list

    assert listed(clerk) == [stat_old.pk, stat_new.pk, high.pk, routine_old.pk, routine_new.pk, low.pk]


def test_the_list_shows_what_the_clerk_needs_to_book(clerk, tomorrow_at):
    order = waiting(
        priority=Priority.STAT,
        requested_start=tomorrow_at(10),
        reason="Fall, head injury",
        placer_authority="HOSXP",
        placer_order_number="ORD-77",
        referring_physician="Dr Somsak",
        booked_at=timezone.now() - timedelta(hours=3),
    )

    html = clerk.get(reverse("scheduling:to_schedule")).content.decode()

    for shown in (
        order.patient.display_name,
        order.procedure.code_meaning,
        "STAT",
        "Fall, head injury",
        "HOSXP · ORD-77",
        "Dr Somsak",
        "3\xa0hours",
        reverse("scheduling:order_schedule", args=[order.pk]),
    ):
        assert shown in html, shown


def test_the_list_pages(clerk):
    for _ in range(30):
        waiting()

    first = clerk.get(reverse("scheduling:to_schedule"))
    second = clerk.get(reverse("scheduling:to_schedule"), {"page": 2})

    assert len(first.context["page"]) == 25 and len(second.context["page"]) == 5


def test_anyone_logged_in_reads_the_list_but_only_the_front_desk_books(client):
    order = waiting()
    client.force_login(UserFactory(roles=[TECHNOLOGIST]))

    page = client.get(reverse("scheduling:to_schedule"))
    booking_page = client.get(reverse("scheduling:order_schedule", args=[order.pk]))
    booking = client.post(reverse("scheduling:order_schedule", args=[order.pk]), {"room": 1, "slot": "09:00"})

    assert page.status_code == 200
    assert order.patient.display_name in page.content.decode()
    assert reverse("scheduling:order_schedule", args=[order.pk]) not in page.content.decode()
    assert (booking_page.status_code, booking.status_code) == (403, 403)
    order.refresh_from_db()
    assert order.status == OrderStatus.REQUESTED


def test_the_navigation_counts_the_orders_waiting(clerk, settings):
    # The badge's context processor, registered as the settings register it.
    processor = "scheduling.context_processors.to_schedule"
    options = settings.TEMPLATES[0]["OPTIONS"]
    if processor not in options["context_processors"]:
        settings.TEMPLATES = [
            {
                **settings.TEMPLATES[0],
                "OPTIONS": {**options, "context_processors": [*options["context_processors"], processor]},
            }
        ]
    for _ in range(3):
        waiting()
    OrderFactory()

    html = clerk.get(reverse("scheduling:patient_list")).content.decode()

    assert 'id="to-schedule-count">3<' in html


def test_the_count_is_one_query(django_assert_num_queries):
    from scheduling.selectors import orders_to_schedule_count

    waiting()
    with django_assert_num_queries(1):
        assert orders_to_schedule_count() == 1


# --- booking from the list, end to end ------------------------------------------------------------


def test_the_booking_page_opens_on_the_requested_day_with_its_free_slots(clerk, requested, room, tomorrow_at):
    order = requested(requested_start=tomorrow_at(10))

    page = clerk.get(reverse("scheduling:order_schedule", args=[order.pk]))

    assert page.status_code == 200
    form = page.context["form"]
    assert form["date"].value() == tomorrow_at(10).date()
    assert form["room"].value() == room.pk
    html = page.content.decode()
    assert 'value="10:00" selected' in html
    assert 'value="08:00"' in html  # the other free times are offered too


def test_a_requested_time_already_past_opens_on_today(clerk, requested):
    order = requested(requested_start=timezone.now() - timedelta(days=2))

    form = clerk.get(reverse("scheduling:order_schedule", args=[order.pk])).context["form"]

    assert form["date"].value() == timezone.localdate()


def test_a_clerk_books_a_requested_order_from_the_list(
    clerk, requested, room, tomorrow_at, worklist_dir, after_commit
):
    order = requested(requested_start=tomorrow_at(10))
    day = tomorrow_at(10).date().isoformat()

    with after_commit():
        response = clerk.post(
            reverse("scheduling:order_schedule", args=[order.pk]),
            {"room": room.pk, "date": day, "slot": "10:30", "confirm_patient_overlap": "False"},
        )

    assert response.status_code == 302
    assert response.url == order.get_absolute_url()
    order.refresh_from_db()
    assert (order.status, order.room, order.scheduled_start) == (
        OrderStatus.SCHEDULED,
        room,
        tomorrow_at(10, 30),
    )
    assert kinds(order)[-1] == OrderEventKind.BOOKED
    assert (worklist_dir / f"{order.accession_number}.wl").is_file()
    (message,) = shown_messages(response)
    assert message.startswith(f"Booked {order.procedure.code_meaning} for {order.patient.display_name} at ")
    assert message.endswith(f"Accession number {order.accession_number}.")
    assert order.pk not in listed(clerk)


def test_a_taken_slot_is_refused_next_to_the_start_time(clerk, requested, order, room, tomorrow_at):
    waiting_order = requested(patient=PatientFactory())

    response = clerk.post(
        reverse("scheduling:order_schedule", args=[waiting_order.pk]),
        {"room": room.pk, "date": tomorrow_at(9).date().isoformat(), "slot": "09:00"},
    )

    assert response.status_code == 200
    assert "slot" in response.context["form"].errors
    waiting_order.refresh_from_db()
    assert waiting_order.status == OrderStatus.REQUESTED


def test_the_booking_page_offers_only_rooms_of_the_procedures_modality(clerk, requested, room):
    mr = RoomFactory(name="MR 1", ae_title="MR1", modality="MR")
    order = requested()

    rooms = list(
        clerk.get(reverse("scheduling:order_schedule", args=[order.pk]))
        .context["form"]
        .fields["room"]
        .queryset
    )

    assert room in rooms and mr not in rooms


def test_booking_an_order_already_booked_sends_the_clerk_to_it(clerk, order):
    response = clerk.get(reverse("scheduling:order_schedule", args=[order.pk]))

    assert response.status_code == 302 and response.url == order.get_absolute_url()
    assert "not waiting to be booked" in shown_messages(response)[0]


def test_rescheduling_a_requested_order_sends_the_clerk_to_booking_it(clerk, requested):
    order = requested()

    response = clerk.get(reverse("scheduling:order_reschedule", args=[order.pk]))

    assert response.url == reverse("scheduling:order_schedule", args=[order.pk])
    assert shown_messages(response) == [
        "This order is requested and not booked yet: book it from the To schedule list."
    ]


# --- the pages of a requested order -------------------------------------------------------------------


def test_the_order_page_says_requested_and_offers_book_not_reschedule(clerk, requested, tomorrow_at):
    order = requested(requested_start=tomorrow_at(10))

    html = clerk.get(order.get_absolute_url()).content.decode()

    assert "Requested" in html and 'id="not-booked"' in html
    assert reverse("scheduling:order_schedule", args=[order.pk]) in html
    assert reverse("scheduling:order_reschedule", args=[order.pk]) not in html
    assert reverse("scheduling:order_cancel", args=[order.pk]) in html


def test_a_requested_order_is_cancelled_from_its_page(clerk, requested):
    order = requested()

    response = clerk.post(reverse("scheduling:order_cancel", args=[order.pk]), {"reason": "Ordered twice"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


def test_the_slip_of_a_requested_order_says_it_is_not_booked(clerk, requested):
    order = requested()

    html = clerk.get(reverse("scheduling:order_slip", args=[order.pk])).content.decode()

    assert "This order is not booked yet: there is no appointment to print." in html
    assert 'class="slip"' not in html


def test_the_lists_and_the_board_cope_with_a_requested_order(clerk, requested, patient):
    order = requested()

    for url in (
        reverse("scheduling:order_list"),
        reverse("scheduling:order_list") + "?status=REQUESTED",
        reverse("scheduling:schedule"),
        reverse("scheduling:patient_detail", args=[patient.pk]),
    ):
        assert clerk.get(url).status_code == 200, url
    assert (
        order.accession_number
        in clerk.get(reverse("scheduling:patient_detail", args=[patient.pk])).content.decode()
    )
