"""The front-desk pages, as a clerk uses them."""

from datetime import timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Order, OrderStatus, Patient
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(patient, procedure, room, user, tomorrow_at):
    return OrderFactory(
        accession_number="26010100007",
        patient=patient,
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def booking(patient, procedure, room, slot="09:00", **extra):
    data = {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": tomorrow().isoformat(),
        "slot": slot,
        "priority": "ROUTINE",
        "reason": "Headache",
        "confirm_patient_overlap": "False",
    }
    return {**data, **extra}


def shown_messages(response):
    return [str(m) for m in get_messages(response.wsgi_request)]


def pages(order):
    return [
        reverse("scheduling:schedule"),
        reverse("scheduling:patient_list"),
        reverse("scheduling:patient_create"),
        reverse("scheduling:patient_detail", args=[order.patient.pk]),
        reverse("scheduling:patient_update", args=[order.patient.pk]),
        reverse("scheduling:order_list"),
        reverse("scheduling:order_create") + f"?patient={order.patient.pk}",
        reverse("scheduling:order_detail", args=[order.pk]),
        reverse("scheduling:order_reschedule", args=[order.pk]),
        reverse("scheduling:order_update", args=[order.pk]),
        reverse("scheduling:slots")
        + f"?room={order.room.pk}&date={tomorrow().isoformat()}&procedure={order.procedure.pk}",
    ]


def test_it_sends_anonymous_visitors_to_the_login_page(client, order):
    for url in pages(order):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login") + "?next="), url


def test_it_refuses_anonymous_actions(client, order):
    response = client.post(reverse("scheduling:order_cancel", args=[order.pk]), {"reason": "x"})

    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_renders_every_page_for_a_clerk(clerk, order):
    for url in pages(order):
        assert clerk.get(url).status_code == 200, url


def test_the_login_page_renders(client):
    response = client.get(reverse("login"))

    assert response.status_code == 200
    assert b"Log in" in response.content


def test_it_logs_in_and_out(client, user):
    response = client.post(reverse("login"), {"username": "frontdesk", "password": "pw-for-tests-1"})
    assert response.url == reverse("scheduling:schedule")

    response = client.post(reverse("logout"))
    assert response.url == reverse("login")
    assert client.get(reverse("scheduling:schedule")).status_code == 302


def test_it_switches_the_language(clerk):
    response = clerk.post(reverse("set_language"), {"language": "th", "next": "/patients/"})

    assert response.status_code == 302
    assert response.url == "/patients/"


# --- schedule -----------------------------------------------------------------------------------


def test_the_schedule_lists_the_days_orders_per_room(clerk, order):
    response = clerk.get(reverse("scheduling:schedule"), {"date": tomorrow().isoformat()})

    content = response.content.decode()
    assert "CT 1" in content
    assert "26010100007" in content
    assert order.get_absolute_url() in content
    assert 'class="badge text-bg-primary' in content
    assert "09:00–09:30" in content


def test_the_schedule_explains_a_bad_date(clerk):
    response = clerk.get(reverse("scheduling:schedule"), {"date": "31/02/2026"})

    assert response.status_code == 200
    assert "Enter the date as day/month/year, e.g. 31/12/2026." in shown_messages(response)
    assert response.context["day"] == timezone.localdate()


def test_the_schedule_links_to_the_neighbouring_days(clerk):
    response = clerk.get(reverse("scheduling:schedule"), {"date": "2026-03-01"})

    assert b"?date=2026-02-28" in response.content
    assert b"?date=2026-03-02" in response.content


# --- patients -----------------------------------------------------------------------------------


def test_it_finds_patients_by_thai_or_romanised_name_or_mrn(clerk):
    from tests.factories import ThaiPatientFactory

    thai = ThaiPatientFactory(mrn="HN777001")
    PatientFactory(family_name="Smith", given_name="Anna", mrn="HN888001")

    for query in ("ใจดี", "jaidee", "HN777001"):
        response = clerk.get(reverse("scheduling:patient_list"), {"q": query})
        assert list(response.context["page"]) == [thai], query


def test_it_filters_patients_by_birth_date(clerk):
    PatientFactory(family_name="Smith", birth_date="1990-01-01")
    older = PatientFactory(family_name="Smith", birth_date="1950-01-01")

    response = clerk.get(reverse("scheduling:patient_list"), {"q": "smith", "birth_date": "1950-01-01"})

    assert list(response.context["page"]) == [older]


def test_it_paginates_patients(clerk):
    PatientFactory.create_batch(30)

    response = clerk.get(reverse("scheduling:patient_list"))

    assert len(response.context["page"]) == 25
    assert b"Page 1 of 2" in response.content


def test_it_registers_a_patient(clerk):
    response = clerk.post(
        reverse("scheduling:patient_create"),
        {
            "mrn": "HN555001",
            "issuer": "RIS",
            "family_name": "ศรีสุข",
            "given_name": "สมหญิง",
            "romanized_family_name": "Srisuk",
            "romanized_given_name": "Somying",
            "birth_date": "1985-11-02",
            "sex": "F",
            "confirm_duplicate": "False",
        },
    )

    patient = Patient.objects.get(mrn="HN555001")
    assert response.url == patient.get_absolute_url()
    assert patient.romanized_display_name == "Somying Srisuk"


def test_it_warns_about_a_likely_duplicate_then_registers_when_confirmed(clerk):
    PatientFactory(mrn="HN000001", family_name="Jaidee", given_name="Somchai", birth_date="1980-05-17")
    data = {
        "mrn": "HN000002",
        "issuer": "RIS",
        "family_name": "JAIDEE",
        "given_name": "somchai",
        "birth_date": "1980-05-17",
        "confirm_duplicate": "False",
    }

    response = clerk.post(reverse("scheduling:patient_create"), data)

    assert response.status_code == 200
    content = response.content.decode()
    assert "A patient with this name and birth date is already registered: HN000001." in content
    assert 'type="checkbox" name="confirm_duplicate"' in content
    assert not Patient.objects.filter(mrn="HN000002").exists()

    response = clerk.post(reverse("scheduling:patient_create"), {**data, "confirm_duplicate": "on"})

    assert response.status_code == 302
    assert Patient.objects.filter(mrn="HN000002").exists()


def test_it_shows_a_taken_mrn_at_the_field(clerk, patient):
    response = clerk.post(
        reverse("scheduling:patient_create"),
        {"mrn": patient.mrn, "issuer": "RIS", "family_name": "Other", "birth_date": "1990-01-01"},
    )

    assert response.status_code == 200
    assert f"MRN {patient.mrn} of RIS is already registered to" in response.content.decode()
    assert Patient.objects.count() == 1


def test_it_updates_a_patient(clerk, patient):
    response = clerk.post(
        reverse("scheduling:patient_update", args=[patient.pk]),
        {
            "mrn": patient.mrn,
            "issuer": "RIS",
            "family_name": "Jaidee",
            "given_name": "Somchai",
            "birth_date": "1980-05-17",
            "phone": "081 234 5678",
        },
    )

    assert response.url == patient.get_absolute_url()
    patient.refresh_from_db()
    assert patient.phone == "081 234 5678"


def test_the_patient_page_shows_their_orders_and_a_book_button(clerk, order):
    response = clerk.get(reverse("scheduling:patient_detail", args=[order.patient.pk]))

    content = response.content.decode()
    assert "26010100007" in content
    assert f"{reverse('scheduling:order_create')}?patient={order.patient.pk}" in content


# --- booking ------------------------------------------------------------------------------------


def test_the_booking_page_is_prefilled_with_the_patient(clerk, patient):
    response = clerk.get(reverse("scheduling:order_create"), {"patient": patient.pk})

    assert patient.display_name in response.content.decode()
    assert response.context["form"]["patient"].value() == str(patient.pk)


def test_the_booking_page_offers_free_slots_for_the_chosen_room(clerk, patient, procedure, room):
    response = clerk.get(
        reverse("scheduling:order_create"),
        {"patient": patient.pk, "procedure": procedure.pk, "room": room.pk, "date": tomorrow().isoformat()},
    )

    assert b'<option value="08:00">08:00</option>' in response.content


def test_the_slots_endpoint_returns_free_start_times(clerk, order):
    response = clerk.get(
        reverse("scheduling:slots"),
        {"room": order.room.pk, "date": tomorrow().isoformat(), "procedure": order.procedure.pk},
    )

    slots = response.json()["slots"]
    assert slots[0] == "08:00"
    assert "09:00" not in slots and "08:45" not in slots  # 30 minutes at 08:45 would run into 09:00


def test_the_slots_endpoint_frees_the_order_being_rescheduled(clerk, order):
    response = clerk.get(
        reverse("scheduling:slots"),
        {
            "room": order.room.pk,
            "date": tomorrow().isoformat(),
            "procedure": order.procedure.pk,
            "order": order.pk,
        },
    )

    assert "09:00" in response.json()["slots"]


def test_the_slots_endpoint_rejects_a_bad_query(clerk):
    response = clerk.get(reverse("scheduling:slots"), {"date": "soon"})

    assert response.status_code == 400
    assert response.json()["slots"] == []


def test_it_books_an_exam(clerk, patient, procedure, room, tomorrow_at, user):
    response = clerk.post(reverse("scheduling:order_create"), booking(patient, procedure, room, "10:30"))

    order = Order.objects.get()
    assert response.url == order.get_absolute_url()
    assert order.scheduled_start == tomorrow_at(10, 30)
    assert order.booked_by == user
    assert order.reason == "Headache"
    assert any(order.accession_number in m for m in shown_messages(response))


def test_it_refuses_a_double_booking_and_saves_nothing(clerk, order, procedure, room):
    other = PatientFactory()

    response = clerk.post(reverse("scheduling:order_create"), booking(other, procedure, room, "09:00"))

    assert response.status_code == 200
    assert "CT 1 is already booked 09:00-09:30 (accession 26010100007)" in response.content.decode()
    assert Order.objects.count() == 1


def test_it_warns_about_a_patient_overlap_then_books_when_confirmed(clerk, order, procedure):
    second_room = RoomFactory(name="CT 2", ae_title="CT02")

    response = clerk.post(
        reverse("scheduling:order_create"), booking(order.patient, procedure, second_room, "09:00")
    )

    assert response.status_code == 200
    content = response.content.decode()
    assert "already has CT Head without contrast in CT 1 at 09:00" in content
    assert 'type="checkbox" name="confirm_patient_overlap"' in content
    assert Order.objects.count() == 1

    response = clerk.post(
        reverse("scheduling:order_create"),
        booking(order.patient, procedure, second_room, "09:00", confirm_patient_overlap="on"),
    )

    assert response.status_code == 302
    assert Order.objects.filter(room=second_room).count() == 1


# --- orders -------------------------------------------------------------------------------------


def test_the_order_page_shows_identifiers_and_legal_actions_only(clerk, order):
    response = clerk.get(order.get_absolute_url())

    content = response.content.decode()
    for value in (order.accession_number, order.sps_id, order.study_instance_uid, order.patient.display_name):
        assert value in content
    assert reverse("scheduling:order_arrive", args=[order.pk]) in content
    assert reverse("scheduling:order_complete", args=[order.pk]) not in content


def test_it_reschedules_an_order(clerk, order, room, tomorrow_at):
    response = clerk.post(
        reverse("scheduling:order_reschedule", args=[order.pk]),
        {
            "room": room.pk,
            "date": tomorrow().isoformat(),
            "slot": "11:00",
            "confirm_patient_overlap": "False",
        },
    )

    assert response.url == order.get_absolute_url()
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(11)
    assert order.scheduled_end == tomorrow_at(11, 30)
    assert order.accession_number == "26010100007"


def test_it_refuses_to_reschedule_onto_another_booking(clerk, order, room, tomorrow_at, user):
    OrderFactory(accession_number="26010100008", room=room, scheduled_start=tomorrow_at(11), booked_by=user)

    response = clerk.post(
        reverse("scheduling:order_reschedule", args=[order.pk]),
        {"room": room.pk, "date": tomorrow().isoformat(), "slot": "11:00"},
    )

    assert "already booked 11:00-11:30 (accession 26010100008)" in response.context["form"].errors["slot"][0]
    order.refresh_from_db()
    assert order.scheduled_start == tomorrow_at(9)


def test_it_updates_order_details(clerk, order):
    response = clerk.post(
        reverse("scheduling:order_update", args=[order.pk]),
        {
            "priority": "STAT",
            "referring_physician": "Dr Wichai",
            "requesting_physician": "",
            "reason": "Trauma",
        },
    )

    assert response.url == order.get_absolute_url()
    order.refresh_from_db()
    assert (order.priority, order.referring_physician, order.reason) == ("STAT", "Dr Wichai", "Trauma")


def test_it_refuses_a_cancellation_without_a_reason(clerk, order):
    response = clerk.post(reverse("scheduling:order_cancel", args=[order.pk]), {"reason": "  "})

    assert response.status_code == 200
    assert response.context["cancel_form"].errors["reason"] == ["Give a reason for the cancellation."]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_cancels_an_order(clerk, order):
    response = clerk.post(reverse("scheduling:order_cancel", args=[order.pk]), {"reason": "Patient called"})

    assert response.url == order.get_absolute_url()
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert order.cancel_reason == "Patient called"
    assert "Patient called" in clerk.get(order.get_absolute_url()).content.decode()


def test_it_moves_an_order_through_arrive_start_complete(clerk, order):
    for action, status in (
        ("order_arrive", OrderStatus.ARRIVED),
        ("order_start", OrderStatus.IN_PROGRESS),
        ("order_complete", OrderStatus.COMPLETED),
    ):
        response = clerk.post(reverse(f"scheduling:{action}", args=[order.pk]))
        assert response.status_code == 302
        order.refresh_from_db()
        assert order.status == status


def test_it_refuses_an_illegal_transition_with_a_message(clerk, order):
    response = clerk.post(reverse("scheduling:order_complete", args=[order.pk]), follow=True)

    assert "An order that is scheduled cannot be marked completed." in response.content.decode()
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_status_actions_refuse_get(clerk, order):
    assert clerk.get(reverse("scheduling:order_arrive", args=[order.pk])).status_code == 405


def test_the_order_list_filters_by_status_and_sorts(clerk, order, room, tomorrow_at, user):
    later = OrderFactory(room=room, scheduled_start=tomorrow_at(14), booked_by=user)
    OrderFactory(
        room=room, scheduled_start=tomorrow_at(15), booked_by=user, status="CANCELLED", cancel_reason="x"
    )

    response = clerk.get(reverse("scheduling:order_list"), {"status": "SCHEDULED", "sort": "-start"})

    assert list(response.context["page"]) == [later, order]


def test_the_order_list_explains_invalid_filters(clerk, order):
    response = clerk.get(reverse("scheduling:order_list"), {"date_from": "yesterday", "status": "LOST"})

    assert response.status_code == 200
    shown = " ".join(shown_messages(response))
    assert "From: Enter the date as day/month/year, e.g. 31/12/" in shown
    assert "Status: Select a valid choice." in shown
    assert list(response.context["page"]) == [order]


def test_the_order_list_paginates_by_25(clerk, room, user):
    start = timezone.now() + timedelta(days=2)
    for i in range(30):
        OrderFactory(room=room, scheduled_start=start + timedelta(minutes=30 * i), booked_by=user)

    response = clerk.get(reverse("scheduling:order_list"))

    assert len(response.context["page"]) == 25


@pytest.fixture
def week_of_orders(room, user, tomorrow_at):
    """One CT order on each of the next five days at 09:00, and an MR order in an MR room tomorrow."""
    ct = [
        OrderFactory(room=room, scheduled_start=tomorrow_at(9) + timedelta(days=i), booked_by=user)
        for i in range(5)
    ]
    mr_room = RoomFactory(name="MR 1", modality="MR", ae_title="MR01")
    mr = OrderFactory(
        room=mr_room,
        procedure=ProcedureFactory(modality="MR", code_meaning="MR Brain"),
        scheduled_start=tomorrow_at(10),
        booked_by=user,
    )
    return ct, mr


def listed(clerk, **filters):
    response = clerk.get(reverse("scheduling:order_list"), filters)
    assert response.status_code == 200
    return list(response.context["page"])


def test_the_order_list_filters_by_date_range_including_both_days(clerk, week_of_orders):
    ct, mr = week_of_orders
    first, last = tomorrow() + timedelta(days=1), tomorrow() + timedelta(days=3)

    assert listed(clerk, date_from=first.isoformat(), date_to=last.isoformat()) == ct[1:4]
    assert listed(clerk, date_from=(tomorrow() + timedelta(days=4)).isoformat()) == ct[4:]
    assert listed(clerk, date_to=tomorrow().isoformat()) == [ct[0], mr]
    assert listed(clerk, date_from=tomorrow().isoformat(), date_to=tomorrow().isoformat()) == [ct[0], mr]


def test_the_order_list_ignores_a_reversed_end_date_and_says_so(clerk, week_of_orders):
    ct, _mr = week_of_orders
    response = clerk.get(
        reverse("scheduling:order_list"),
        {"date_from": (tomorrow() + timedelta(days=3)).isoformat(), "date_to": tomorrow().isoformat()},
    )

    assert "To: The end date is before the start date." in shown_messages(response)
    assert list(response.context["page"]) == ct[3:]  # the start date still applies


def test_the_order_list_filters_by_modality(clerk, week_of_orders):
    ct, mr = week_of_orders

    assert listed(clerk, modality="MR") == [mr]
    assert listed(clerk, modality="CT") == ct
    assert listed(clerk, modality="US") == []


def test_the_order_list_filters_by_room(clerk, week_of_orders, room):
    ct, mr = week_of_orders

    assert listed(clerk, room=room.pk) == ct
    assert listed(clerk, room=mr.room.pk) == [mr]


def test_the_order_list_combines_filters(clerk, week_of_orders, room):
    ct, mr = week_of_orders

    assert listed(
        clerk, room=room.pk, modality="CT", date_from=tomorrow().isoformat(), date_to=tomorrow().isoformat()
    ) == [ct[0]]
    assert listed(clerk, room=room.pk, modality="MR") == []


def test_the_order_list_rejects_an_unknown_room_and_lists_all(clerk, week_of_orders):
    ct, mr = week_of_orders
    response = clerk.get(reverse("scheduling:order_list"), {"room": "999999"})

    assert any(message.startswith("Room: Select a valid choice.") for message in shown_messages(response))
    assert list(response.context["page"]) == [ct[0], mr, *ct[1:]]


@pytest.fixture
def thirty_orders(room, user, tomorrow_at):
    return [
        OrderFactory(room=room, scheduled_start=tomorrow_at(8) + timedelta(minutes=15 * i), booked_by=user)
        for i in range(30)
    ]


def test_the_order_list_shows_the_second_page(clerk, thirty_orders):
    response = clerk.get(reverse("scheduling:order_list"), {"page": "2"})

    assert list(response.context["page"]) == thirty_orders[25:]
    html = response.content.decode()
    assert "Page 2 of 2" in html
    assert 'href="?page=1"' in html  # Previous
    assert "Next" not in html


def test_the_order_list_falls_back_to_a_real_page(clerk, thirty_orders):
    assert listed(clerk, page="99") == thirty_orders[25:]  # past the end: the last page
    assert listed(clerk, page="two") == thirty_orders[:25]  # not a number: the first


def test_the_order_list_keeps_the_filters_when_paging(clerk, thirty_orders, room):
    OrderFactory(room=RoomFactory(name="CT 2", ae_title="CT02"), booked_by=thirty_orders[0].booked_by)

    response = clerk.get(reverse("scheduling:order_list"), {"room": room.pk, "sort": "-start"})

    assert list(response.context["page"]) == thirty_orders[::-1][:25]
    assert f'href="?room={room.pk}&amp;sort=-start&amp;page=2"' in response.content.decode()
    assert listed(clerk, room=room.pk, sort="-start", page="2") == thirty_orders[::-1][25:]


def test_the_order_list_has_no_pager_for_one_page(clerk, week_of_orders):
    html = clerk.get(reverse("scheduling:order_list")).content.decode()

    assert "Page 1 of" not in html
