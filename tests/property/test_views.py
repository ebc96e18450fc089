"""Every form through its real view, logged in with the role that uses it.

For any input: no server error; a refused POST shows a message at the field and leaves the database
exactly as it was; an accepted one leaves data that exports as a worklist item.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from unittest import mock

import pytest
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape
from hypothesis import given
from hypothesis import strategies as st

from mwl_server.query import QueryResult, query_targets
from scheduling.models import Modality, Order, OrderStatus, Patient
from scheduling.roles import ADMIN, FRONT_DESK
from tests.factories import UserFactory

from .helpers import (
    assert_exportable,
    assert_messages_at_fields,
    counted,
    date_strings,
    db_snapshot,
    future_date_strings,
    ids,
    page_numbers,
    rolled_back,
    texts,
)
from .test_forms import (
    booking_changes,
    name_group_fields,
    patient_changes,
    procedure_data,
    room_data,
    valid_booking,
    valid_patient,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def clerk(client):
    client.force_login(UserFactory(username="prop-frontdesk", roles=[FRONT_DESK]))
    return client


@pytest.fixture
def admin(client):
    client.force_login(UserFactory(username="prop-admin", roles=[ADMIN]))
    return client


# A change to any of these can move the exam's start: the booking service then answers at the slot
# (or the room or procedure), whichever of them was typed.
SCHEDULE_INPUTS = {"patient", "procedure", "room", "date", "slot"}


def booking_fields(changes) -> set[str]:
    return {*changes, "slot", "room", "procedure"} if SCHEDULE_INPUTS & set(changes) else set(changes)


def assert_refused(response, form_key: str = "form", fields=None) -> None:
    """The page came back with the form, a message at each refused field, and nothing saved."""
    assert response.status_code == 200, response.status_code
    form = response.context[form_key]
    assert_messages_at_fields(form, response.content)
    if fields is not None:
        assert set(form.errors) <= {*fields, "__all__"}, form.errors


def post_and_check(client, url, data, *, form_key="form", fields=None):
    """POST; on refusal check the messages and that the database is unchanged. Returns the response."""
    before = db_snapshot()
    response = client.post(url, data)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:
        assert_refused(response, form_key, fields)
        assert db_snapshot() == before, "a refused POST changed the database"
    return response


# --- patients -------------------------------------------------------------------------------------


@given(changes=patient_changes())
@counted
def test_registering_a_patient(clerk, room, procedure, changes):
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:patient_create"),
            {**valid_patient(), **changes},
            fields={*changes, *name_group_fields(changes)},
        )
        if response.status_code == 302:
            patient = Patient.objects.latest("pk")
            assert_exportable(patient=patient, room=room, procedure=procedure)


@given(changes=patient_changes())
@counted
def test_editing_a_patient(clerk, patient, room, procedure, changes):
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:patient_update", args=[patient.pk]),
            {**valid_patient(), **changes},
            fields={*changes, *name_group_fields(changes)},
        )
        if response.status_code == 302:
            patient.refresh_from_db()
            assert_exportable(patient=patient, room=room, procedure=procedure)


def assert_filter_errors_shown(response) -> None:
    """A search or filter page never refuses a GET: each bad value is named in a message on the page."""
    form = response.context["form"]
    if not form.is_valid():
        page = response.content.decode()
        for field, errors in form.errors.items():
            for error in errors:
                assert escape(f"{form.fields[field].label}: {error}") in page


@given(
    params=st.fixed_dictionaries(
        {}, optional={"q": texts(), "birth_date": date_strings(), "page": page_numbers()}
    )
)
@counted
def test_searching_patients(clerk, patient, params):
    response = clerk.get(reverse("scheduling:patient_list"), params)

    assert response.status_code == 200
    assert_filter_errors_shown(response)


@given(q=st.one_of(texts(), st.sampled_from(["\x00", "a\x00", "%", "_", "Jai", "HN0"])))
@counted
def test_the_patient_autocomplete(clerk, patient, q):
    response = clerk.get(reverse("scheduling:patient_autocomplete"), {"q": q})

    assert response.status_code in (200, 400)
    body = json.loads(response.content)
    assert isinstance(body["results"], list)
    if response.status_code == 400:
        assert body["errors"]["q"] and all(body["errors"]["q"])


# --- booking ---------------------------------------------------------------------------------------


@given(data=st.data())
@counted
def test_booking(clerk, patient, procedure, room, data):
    changes = data.draw(booking_changes(patient, procedure, room))
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:order_create"),
            {**valid_booking(patient, procedure, room), **changes},
            fields=booking_fields(changes),
        )
        if response.status_code == 302:
            assert_exportable(order=Order.objects.latest("pk"))


@given(params=st.dictionaries(st.sampled_from(["patient", "procedure", "room", "date", "slot"]), texts(30)))
@counted
def test_the_booking_page_with_any_query_string(clerk, patient, procedure, room, params):
    response = clerk.get(reverse("scheduling:order_create"), params)

    assert response.status_code == 200


@given(
    params=st.fixed_dictionaries(
        {"room": ids(), "date": date_strings(), "procedure": ids()}, optional={"order": ids()}
    )
)
@counted
def test_the_free_slots_endpoint(clerk, procedure, room, params):
    response = clerk.get(reverse("scheduling:slots"), params)

    assert response.status_code in (200, 400)
    body = json.loads(response.content)
    assert isinstance(body["slots"], list)
    if response.status_code == 400:
        assert body["errors"]
        assert all(messages and all(messages) for messages in body["errors"].values())


@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "room": ids(),
            "date": date_strings(),
            "slot": st.one_of(st.sampled_from(["10:00", "16:45", "25:00", ""]), texts(8)),
            "confirm_patient_overlap": st.sampled_from(["", "on"]),
        },
    )
)
@counted
def test_rescheduling(clerk, order, changes):
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:order_reschedule", args=[order.pk]),
            {"room": str(order.room_id), "date": tomorrow, "slot": "10:00", **changes},
            fields=booking_fields(changes),
        )
        if response.status_code == 302:
            assert_exportable(order=Order.objects.get(pk=order.pk))


@given(params=st.dictionaries(st.sampled_from(["room", "date", "slot"]), texts(30)))
@counted
def test_the_reschedule_page_with_any_query_string(clerk, order, params):
    response = clerk.get(reverse("scheduling:order_reschedule", args=[order.pk]), params)

    assert response.status_code == 200


@given(reason=texts(300), next_url=st.one_of(st.just(""), texts(40), st.just("//evil.example/")))
@counted
def test_cancelling(clerk, order, reason, next_url):
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:order_cancel", args=[order.pk]),
            {"reason": reason, "next": next_url},
            form_key="cancel_form",
            fields={"reason"},
        )
        if response.status_code == 302:
            assert Order.objects.get(pk=order.pk).status == OrderStatus.CANCELLED
            assert not response["Location"].startswith("//evil")


@given(
    changes=st.fixed_dictionaries(
        {},
        optional={
            "priority": st.one_of(st.sampled_from(["STAT", "HIGH", "LOW", ""]), texts(10)),
            "referring_physician": texts(),
            "requesting_physician": texts(),
            "reason": texts(),
            "notes": texts(500),
        },
    )
)
@counted
def test_editing_an_order(clerk, order, changes):
    with rolled_back():
        response = post_and_check(
            clerk,
            reverse("scheduling:order_update", args=[order.pk]),
            {"priority": "ROUTINE", **changes},
            fields=changes,
        )
        if response.status_code == 302:
            assert_exportable(order=Order.objects.get(pk=order.pk))


@given(
    params=st.fixed_dictionaries(
        {},
        optional={
            "date_from": date_strings(),
            "date_to": date_strings(),
            "status": st.one_of(st.sampled_from(OrderStatus.values), texts(12)),
            "modality": st.one_of(st.sampled_from(Modality.values), texts(4)),
            "room": ids(),
            "sort": st.one_of(st.sampled_from(["start", "-start"]), texts(6)),
            "page": page_numbers(),
        },
    )
)
@counted
def test_the_order_list_filters(clerk, order, params):
    response = clerk.get(reverse("scheduling:order_list"), params)

    assert response.status_code == 200
    assert_filter_errors_shown(response)


@given(day=date_strings(), partial=st.sampled_from(["", "1"]))
@counted
def test_the_day_board_with_any_date(clerk, order, day, partial):
    response = clerk.get(reverse("scheduling:schedule"), {"date": day, "partial": partial})

    if response.status_code == 302:
        # A day typed as the date box shows it (02/01/2569, 2026-1-2): to the board's ISO address.
        assert re.fullmatch(r"/\?date=\d{4}-\d{2}-\d{2}", response["Location"]), response["Location"]
        response = clerk.get(response["Location"])
    assert response.status_code == 200


# --- query as a modality ---------------------------------------------------------------------------


@given(
    params=st.fixed_dictionaries(
        {"room": ids()},
        optional={
            "day": date_strings(),
            "target": st.one_of(st.sampled_from(list(query_targets())), texts(12)),
        },
    )
)
@counted
def test_the_query_as_a_modality_page(clerk, room, params):
    def answer(*, room, day, target):
        return QueryResult(target=target, calling_ae=room.ae_title)

    # The C-FIND itself is tested against real servers in tests/interop; here only the form matters.
    with mock.patch("mwl_server.views.modality_query", side_effect=answer):
        response = clerk.get(reverse("mwl_server:query"), params)

    assert response.status_code == 200
    form = response.context["form"]
    if not form.is_valid():
        assert_messages_at_fields(form, response.content)


# --- the admin ---------------------------------------------------------------------------------------


INLINE_MANAGEMENT = {
    "opening_hours-TOTAL_FORMS": "0",
    "opening_hours-INITIAL_FORMS": "0",
    "opening_hours-MIN_NUM_FORMS": "0",
    "opening_hours-MAX_NUM_FORMS": "1000",
}


def _admin_form(response):
    return response.context["adminform"].form


@given(data=room_data())
@counted
def test_adding_a_room_in_the_admin(admin, patient, procedure, data):
    url = reverse("admin:scheduling_room_add")
    with rolled_back():
        before = db_snapshot()
        response = admin.post(url, {**data, **INLINE_MANAGEMENT})
        assert response.status_code in (200, 302)
        if response.status_code == 200:
            assert_messages_at_fields(_admin_form(response), response.content)
            assert db_snapshot() == before
        else:
            from scheduling.models import Room

            room = Room.objects.latest("pk")
            procedure.modality = room.modality
            assert_exportable(patient=patient, procedure=procedure, room=room)


@given(data=procedure_data())
@counted
def test_adding_a_procedure_in_the_admin(admin, patient, room, data):
    url = reverse("admin:scheduling_procedure_add")
    with rolled_back():
        before = db_snapshot()
        response = admin.post(url, data)
        assert response.status_code in (200, 302)
        if response.status_code == 200:
            assert_messages_at_fields(_admin_form(response), response.content)
            assert db_snapshot() == before
        else:
            from scheduling.models import Procedure

            procedure = Procedure.objects.latest("pk")
            room.modality = procedure.modality
            assert_exportable(patient=patient, procedure=procedure, room=room)


def order_admin_changes(*, change: bool) -> st.SearchStrategy[dict[str, str]]:
    """The admin order form (OrderAdminForm) with one to four fields replaced by anything. The start is
    the admin's split date and time; a change has the status and the cancellation reason too."""
    fields = {
        "room": ids(),
        "scheduled_start_0": st.one_of(date_strings(), future_date_strings()),
        "scheduled_start_1": st.one_of(
            st.sampled_from(["", "09:00", "24:00", "9:5", "23:59:59", "25:00:00", "07:00", "16:59"]),
            st.times().map(lambda t: t.strftime("%H:%M:%S")),
            texts(8),
        ),
        "duration_minutes": st.one_of(
            st.integers(-(2**40), 2**40).map(str), st.sampled_from(["", "0", "1", "1440", "1e3"]), texts(5)
        ),
        "priority": st.one_of(st.sampled_from(["STAT", "ROUTINE", "HIGH", "stat", ""]), texts(10)),
        "referring_physician": texts(),
        "requesting_physician": texts(),
        "reason": texts(),
        "notes": texts(300),
        "confirm_patient_overlap": st.sampled_from(["", "on", "False", "garbage"]),
    }
    if change:
        fields["status"] = st.one_of(st.sampled_from(OrderStatus.values), texts(12))
        fields["cancel_reason"] = st.one_of(st.just("Patient called"), texts(250))
    else:
        fields["patient"] = ids()
        fields["procedure"] = ids()
    return st.fixed_dictionaries({}, optional=fields).filter(lambda d: 1 <= len(d) <= 4)


def valid_order_admin(order: Order | None, patient, procedure, room) -> dict[str, str]:
    day = (timezone.localdate() + timedelta(days=1)).isoformat()
    data = {
        "room": str(room.pk),
        "scheduled_start_0": day,
        "scheduled_start_1": "11:00:00",
        "duration_minutes": "",
        "priority": "ROUTINE",
    }
    if order is None:
        return {**data, "patient": str(patient.pk), "procedure": str(procedure.pk)}
    return {**data, "duration_minutes": str(order.duration_minutes), "status": order.status}


def check_admin_post(client, url: str, data: dict[str, str]):
    """Any input: 302 (saved) or the form again with a message at each refused field and nothing saved."""
    before = db_snapshot()
    response = client.post(url, data)
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:
        assert_messages_at_fields(_admin_form(response), response.content)
        assert db_snapshot() == before, "a refused admin change saved something"
    return response


@given(changes=order_admin_changes(change=False))
@counted
def test_booking_in_the_admin(admin, patient, procedure, room, changes):
    with rolled_back():
        response = check_admin_post(
            admin,
            reverse("admin:scheduling_order_add"),
            {**valid_order_admin(None, patient, procedure, room), **changes},
        )
        if response.status_code == 302:
            assert_exportable(order=Order.objects.latest("pk"))


@given(changes=order_admin_changes(change=True))
@counted
def test_correcting_an_order_in_the_admin(admin, order, patient, procedure, room, changes):
    with rolled_back():
        response = check_admin_post(
            admin,
            reverse("admin:scheduling_order_change", args=[order.pk]),
            {**valid_order_admin(order, patient, procedure, room), **changes},
        )
        if response.status_code == 302:
            changed = Order.objects.get(pk=order.pk)
            assert changed.status in OrderStatus.values
            assert_exportable(order=changed)


# --- logging in ----------------------------------------------------------------------------------


@pytest.fixture
def throttled(settings):
    settings.AXES_ENABLED = True
    UserFactory(username="nok", roles=[FRONT_DESK])


@given(
    username=st.one_of(st.sampled_from(["nok", " nok ", "NOK", "nok\x00", "", "a" * 151]), texts(160)),
    password=st.one_of(st.sampled_from(["", " ", "pw-for-tests-", "\x00"]), texts(40)),
    attempts=st.integers(1, 6),
)
@counted
def test_logging_in_with_anything(client, throttled, username, password, attempts):
    """Never a server error nor a login: each wrong attempt says why, and axes counts each one that
    reached the password check, locking the pair out at AXES_FAILURE_LIMIT."""
    from axes.models import AccessAttempt
    from django.conf import settings

    limit = settings.AXES_FAILURE_LIMIT
    with rolled_back():
        statuses, checked = [], 0
        for _ in range(attempts):
            response = client.post(reverse("login"), {"username": username, "password": password})
            statuses.append(response.status_code)
            assert "_auth_user_id" not in client.session
            if response.status_code == 429:
                assert response.content.strip(), "locked out without a message"
                continue
            assert response.status_code == 200, response.status_code
            form = response.context["form"]
            assert_messages_at_fields(form, response.content)
            # Only "__all__" ("enter a correct username and password"): the password was checked.
            checked += set(form.errors) == {"__all__"}

        failures = sum(AccessAttempt.objects.values_list("failures_since_start", flat=True))
        if checked:
            # Locked-out attempts count too: a guesser gains nothing by carrying on.
            assert failures == attempts
            assert statuses == [200] * min(attempts, limit - 1) + [429] * max(0, attempts - limit + 1)
        else:
            assert failures == 0 and set(statuses) == {200}
