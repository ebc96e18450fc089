"""Who may do what: every role against every action, checked on the server.

Each action is a real request with valid data, so "allowed" means the action went through (a redirect
after POST, or the admin page) and "refused" means 403 with nothing changed in the database.
"""

from dataclasses import dataclass
from datetime import timedelta

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.urls import reverse
from django.utils import timezone

from scheduling.models import Order, OrderStatus, Patient, Procedure, Room
from scheduling.roles import ADMIN, ADMIN_PERMISSIONS, DEPARTMENT_LEAD, FRONT_DESK, TECHNOLOGIST
from tests.factories import OrderFactory, ProcedureFactory, UserFactory
from worklist_export.models import WorklistEntry

pytestmark = pytest.mark.django_db


def tomorrow() -> str:
    return (timezone.localdate() + timedelta(days=1)).isoformat()


@dataclass
class Action:
    name: str
    method: str
    # (order, patient, procedure, room) -> (url, data)
    request: object
    # the order's status the action needs to succeed
    status: str = OrderStatus.SCHEDULED
    # what a user with the Admin role (staff, but not superuser) gets when refused: 403, or where the
    # admin hides the object altogether (a superuser's account) what it answers for an unknown one:
    # 404, or for a change form 302 to the admin's index ("... doesn't exist. Perhaps it was deleted?")
    admin_refused: int = 403


PATIENT_DATA = {"issuer": "RIS", "family_name": "Jaidee", "given_name": "Malee", "birth_date": "1990-01-01"}

FRONT_DESK_ACTIONS = [
    Action(
        "register patient",
        "post",
        lambda o, p, proc, r: (reverse("scheduling:patient_create"), {**PATIENT_DATA, "mrn": "HN900"}),
    ),
    Action(
        "edit patient",
        "post",
        lambda o, p, proc, r: (
            reverse("scheduling:patient_update", args=[p.pk]),
            {**PATIENT_DATA, "mrn": p.mrn, "phone": "081 234 5678"},
        ),
    ),
    Action(
        "book",
        "post",
        lambda o, p, proc, r: (
            reverse("scheduling:order_create"),
            {
                "patient": p.pk,
                "procedure": proc.pk,
                "room": r.pk,
                "date": tomorrow(),
                "slot": "13:00",
                "priority": "ROUTINE",
                "confirm_patient_overlap": "on",
            },
        ),
    ),
    Action(
        "reschedule",
        "post",
        lambda o, p, proc, r: (
            reverse("scheduling:order_reschedule", args=[o.pk]),
            {"room": r.pk, "date": tomorrow(), "slot": "11:00"},
        ),
    ),
    Action(
        "cancel",
        "post",
        lambda o, p, proc, r: (reverse("scheduling:order_cancel", args=[o.pk]), {"reason": "Patient called"}),
    ),
    Action(
        "edit details",
        "post",
        lambda o, p, proc, r: (
            reverse("scheduling:order_update", args=[o.pk]),
            {"priority": "STAT", "reason": "Trauma"},
        ),
    ),
]
TECHNOLOGIST_ACTIONS = [
    Action("arrive", "post", lambda o, *_: (reverse("scheduling:order_arrive", args=[o.pk]), {})),
    Action(
        "start",
        "post",
        lambda o, *_: (reverse("scheduling:order_start", args=[o.pk]), {}),
        status=OrderStatus.ARRIVED,
    ),
    Action(
        "complete",
        "post",
        lambda o, *_: (reverse("scheduling:order_complete", args=[o.pk]), {}),
        status=OrderStatus.IN_PROGRESS,
    ),
]
ADMIN_ACTIONS = [
    Action(f"admin {model} list", "get", lambda *_, url=url: (reverse(url), {}))
    for model, url in [
        ("procedure", "admin:scheduling_procedure_changelist"),
        ("room", "admin:scheduling_room_changelist"),
        ("user", "admin:auth_user_changelist"),
    ]
]


def admin_order_change(o, p, proc, r):
    """The order's admin change form as the browser posts it, with the priority raised to STAT."""
    start = timezone.localtime(o.scheduled_start)
    return reverse("admin:scheduling_order_change", args=[o.pk]), {
        "room": r.pk,
        "scheduled_start_0": start.date().isoformat(),
        "scheduled_start_1": start.strftime("%H:%M:%S"),
        "duration_minutes": o.duration_minutes,
        "priority": "STAT",
        "referring_physician": "",
        "requesting_physician": "",
        "reason": "Trauma",
        "notes": "",
        "status": o.status,
        "cancel_reason": "",
    }


OPENING_HOURS_NONE = {
    "opening_hours-TOTAL_FORMS": "0",
    "opening_hours-INITIAL_FORMS": "0",
    "opening_hours-MIN_NUM_FORMS": "0",
    "opening_hours-MAX_NUM_FORMS": "1000",
}


def delete_selected_procedure(*_):
    unused = ProcedureFactory(code_value="XROLD", code_meaning="X-ray, no longer offered", modality="DX")
    return reverse("admin:scheduling_procedure_changelist"), {
        "action": "delete_selected",
        "_selected_action": [unused.pk],
        "post": "yes",
    }


def superuser_change(*_):
    """The change form of another superuser's account, with a new e-mail address."""
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    joined = timezone.localtime(boss.date_joined)
    return reverse("admin:auth_user_change", args=[boss.pk]), {
        "username": "boss",
        "email": "boss@evil.example",
        "is_active": "on",
        "is_staff": "on",
        "is_superuser": "on",
        "date_joined_0": joined.date().isoformat(),
        "date_joined_1": joined.strftime("%H:%M:%S"),
    }


def superuser_password(*_):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)
    return reverse("admin:auth_user_password_change", args=[boss.pk]), {
        "password1": "Taken-Over-2026",
        "password2": "Taken-Over-2026",
    }


# Changes through the admin: a catalogue entry added or deleted, a room added, an order and a patient
# corrected (their admin change forms), a user added.
ADMIN_ACTIONS += [
    Action("admin change order", "post", admin_order_change),
    Action(
        "admin change patient",
        "post",
        lambda o, p, proc, r: (
            reverse("admin:scheduling_patient_change", args=[p.pk]),
            {**PATIENT_DATA, "mrn": p.mrn, "phone": "081 234 5678"},
        ),
    ),
    Action(
        "admin add room",
        "post",
        lambda *_: (
            reverse("admin:scheduling_room_add"),
            {
                "name": "DX 1",
                "modality": "DX",
                "ae_title": "DX01",
                "station_name": "DXSTATION1",
                "location": "Building A",
                "worklist_charset": "ISO_IR 192",
                "called_ae_title": "",
                "completion": "mpps",
                "active": "on",
                **OPENING_HOURS_NONE,
            },
        ),
    ),
    Action("admin delete procedures (bulk action)", "post", delete_selected_procedure),
    Action(
        "admin add procedure",
        "post",
        lambda *_: (
            reverse("admin:scheduling_procedure_add"),
            {
                "code_value": "XRHAND",
                "coding_scheme": "RIS",
                "code_meaning": "X-ray hand",
                "modality": "DX",
                "default_duration": 10,
                "active": "on",
            },
        ),
    ),
    Action(
        "admin add user",
        "post",
        lambda *_: (
            reverse("admin:auth_user_add"),
            {"username": "newclerk", "password1": "Correct-Horse-42", "password2": "Correct-Horse-42"},
        ),
    ),
]
# A superuser's account is a superuser's business: an Admin who could reset its password could log in
# as that superuser. The admin hides it from them (404, as for an unknown user).
SUPERUSER_ACTIONS = [
    Action("admin change a superuser", "post", superuser_change, admin_refused=302),
    Action("admin reset a superuser's password", "post", superuser_password, admin_refused=404),
]
# Re-export a worklist item (Worklist problems page): the front desk's bookings, Admin's support.
WORKLIST_ACTIONS = [
    Action(
        "retry worklist export",
        "post",
        lambda o, *_: (reverse("worklist_export:problem_retry", args=[o.pk]), {}),
    ),
]
ACTIONS = {
    a.name: a
    for a in [
        *FRONT_DESK_ACTIONS,
        *TECHNOLOGIST_ACTIONS,
        *ADMIN_ACTIONS,
        *SUPERUSER_ACTIONS,
        *WORKLIST_ACTIONS,
    ]
}

ALLOWED = {
    "front desk": {a.name for a in [*FRONT_DESK_ACTIONS, *WORKLIST_ACTIONS]},
    "technologist": {a.name for a in TECHNOLOGIST_ACTIONS},
    "admin": {a.name for a in [*ADMIN_ACTIONS, *WORKLIST_ACTIONS]},
    "superuser": set(ACTIONS),
    "no role": set(),
    "anonymous": set(),
}


def make_user(who: str):
    if who == "anonymous":
        return None
    if who == "superuser":
        return UserFactory(username="root", is_superuser=True, is_staff=True)
    roles = {"front desk": [FRONT_DESK], "technologist": [TECHNOLOGIST], "admin": [ADMIN], "no role": []}
    return UserFactory(username=who.replace(" ", ""), roles=roles[who])


def snapshot():
    return (
        # Not last_login: logging in is not the action under test.
        list(
            get_user_model()
            .objects.order_by("pk")
            .values_list("username", "password", "email", "is_active", "is_staff", "is_superuser")
        ),
        list(Procedure.objects.order_by("pk").values()),
        list(Room.objects.order_by("pk").values()),
        list(Patient.objects.order_by("pk").values()),
        list(Order.objects.order_by("pk").values()),
        list(WorklistEntry.objects.order_by("pk").values()),
    )


@pytest.mark.parametrize("who", list(ALLOWED))
@pytest.mark.parametrize("action_name", list(ACTIONS))
def test_each_role_can_do_only_its_own_actions(
    client, who, action_name, patient, procedure, room, tomorrow_at
):
    action = ACTIONS[action_name]
    order = OrderFactory(
        patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9), status=action.status
    )
    user = make_user(who)
    if user is not None:
        client.force_login(user)
    url, data = action.request(order, patient, procedure, room)
    before = snapshot()

    response = getattr(client, action.method)(url, data)

    if action_name in ALLOWED[who]:
        expected = 200 if action.method == "get" else 302
        assert response.status_code == expected, (who, action_name, response.content[:500])
        if action.method == "post":
            assert snapshot() != before, f"{who} {action_name}: allowed but nothing changed"
        return
    if who == "anonymous":
        assert response.status_code == 302
        assert "login/?next=" in response.url
    elif who == "admin":
        assert response.status_code == action.admin_refused, (who, action_name, response.status_code)
        if action.admin_refused == 302:
            assert response.url == reverse("admin:index")
    elif action_name.startswith("admin"):
        # Not staff: the admin sends them to its own login page.
        assert response.status_code == 302 and reverse("admin:login") in response.url
    else:
        assert response.status_code == 403, (who, action_name)
    assert snapshot() == before, f"{who} {action_name}: refused but something changed"


def read_urls(order, patient, procedure, room) -> list[str]:
    """Every page and endpoint that only reads: a login is all it takes (see scheduling/roles.py)."""
    day = tomorrow()
    return [
        reverse("scheduling:schedule"),
        reverse("scheduling:patient_list"),
        reverse("scheduling:patient_detail", args=[patient.pk]),
        reverse("scheduling:patient_autocomplete") + "?q=Jaidee",
        reverse("scheduling:order_list"),
        reverse("scheduling:order_detail", args=[order.pk]),
        reverse("scheduling:order_slip", args=[order.pk]),
        reverse("scheduling:slots") + f"?room={room.pk}&date={day}&procedure={procedure.pk}",
        reverse("worklist_export:order_file", args=[order.pk]),
        reverse("worklist_export:order_dump", args=[order.pk]),
        reverse("worklist_export:problems"),
        # The form only: with ?room= the page would ask a worklist server over the network.
        reverse("mwl_server:query"),
    ]


@pytest.fixture
def exported_order(settings, tmp_path, patient, procedure, room, tomorrow_at):
    """An order whose worklist file is on disk, so its file and dump pages have something to show."""
    from worklist_export.services import order_sync_worklist

    settings.WORKLIST_DIR = str(tmp_path / "worklists")
    order = OrderFactory(patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9))
    order_sync_worklist(order_id=order.pk)
    return order


@pytest.mark.parametrize("who", ["front desk", "technologist", "admin", "no role", "superuser"])
def test_every_logged_in_user_can_read(client, who, exported_order, patient, procedure, room):
    client.force_login(make_user(who))

    for url in read_urls(exported_order, patient, procedure, room):
        assert client.get(url).status_code == 200, (who, url)


def test_an_anonymous_visitor_reads_nothing(client, exported_order, patient, procedure, room):
    for url in read_urls(exported_order, patient, procedure, room):
        response = client.get(url)

        assert response.status_code == 302, url
        assert response.url.startswith(reverse("login") + "?next="), url


def test_the_forms_of_changing_pages_are_refused_too(client, patient, procedure, room, tomorrow_at):
    order = OrderFactory(patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9))
    client.force_login(make_user("technologist"))

    for url in [
        reverse("scheduling:patient_create"),
        reverse("scheduling:patient_update", args=[patient.pk]),
        reverse("scheduling:order_create"),
        reverse("scheduling:order_reschedule", args=[order.pk]),
        reverse("scheduling:order_update", args=[order.pk]),
    ]:
        assert client.get(url).status_code == 403, url


def test_the_order_page_offers_only_the_buttons_of_the_role(client, patient, procedure, room, tomorrow_at):
    order = OrderFactory(patient=patient, procedure=procedure, room=room, scheduled_start=tomorrow_at(9))
    arrive = reverse("scheduling:order_arrive", args=[order.pk])
    cancel = reverse("scheduling:order_cancel", args=[order.pk])
    reschedule = reverse("scheduling:order_reschedule", args=[order.pk])

    client.force_login(make_user("front desk"))
    front_desk_page = client.get(order.get_absolute_url()).content.decode()
    client.force_login(make_user("technologist"))
    technologist_page = client.get(order.get_absolute_url()).content.decode()
    board = client.get(reverse("scheduling:schedule"), {"date": tomorrow()}).content.decode()

    assert cancel in front_desk_page and reschedule in front_desk_page and arrive not in front_desk_page
    assert arrive in technologist_page and cancel not in technologist_page
    assert reschedule not in technologist_page
    # The board's blocks list their actions; its one menu template holds only the technologist's forms.
    assert f'data-pk="{order.pk}" data-actions="arrive"' in board
    assert reverse("scheduling:order_arrive", args=[0]) in board
    assert reverse("scheduling:order_cancel", args=[0]) not in board
    assert reverse("scheduling:order_create") not in board


def test_the_migration_gives_the_admin_group_its_permissions():
    admin = Group.objects.get(name=ADMIN)
    have = set(admin.permissions.values_list("content_type__app_label", "codename"))
    want = {
        (app, f"{action}_{model}")
        for app, models in ADMIN_PERMISSIONS.items()
        for model, actions in models.items()
        for action in actions
    }
    assert have == want
    assert not Group.objects.get(name=FRONT_DESK).permissions.exists()
    assert not Group.objects.get(name=TECHNOLOGIST).permissions.exists()
    assert not Group.objects.get(name=DEPARTMENT_LEAD).permissions.exists()  # it reads the reports only


def test_an_admin_cannot_make_anyone_a_superuser(client):
    admin = make_user("admin")
    clerk = make_user("front desk")
    client.force_login(admin)

    page = client.get(reverse("admin:auth_user_change", args=[clerk.pk])).content.decode()

    assert 'name="is_superuser"' not in page
    assert 'name="groups"' in page


def test_an_admin_does_not_see_the_superusers(client):
    UserFactory(username="boss", is_superuser=True, is_staff=True)
    clerk = make_user("front desk")
    client.force_login(make_user("admin"))

    listing = client.get(reverse("admin:auth_user_changelist")).content.decode()

    assert reverse("admin:auth_user_change", args=[clerk.pk]) in listing
    assert "boss" not in listing


def test_an_admin_hands_out_only_the_roles(client):
    """A group a superuser made (with permissions of its own) is not the Admin's to give. (Their own
    roles are not theirs to change at all: tests/security/test_admin_escalation.py.)"""
    from django.contrib.auth.models import Permission

    powerful = Group.objects.create(name="Everything")
    powerful.permissions.add(*Permission.objects.all())
    admin = make_user("admin")
    clerk = make_user("front desk")
    client.force_login(admin)
    url = reverse("admin:auth_user_change", args=[clerk.pk])
    joined = timezone.localtime(clerk.date_joined)

    page = client.get(url).content.decode()
    response = client.post(
        url,
        {
            "username": clerk.username,
            "is_active": "on",
            "is_staff": "on",
            "groups": [powerful.pk, Group.objects.get(name=ADMIN).pk],
            "date_joined_0": joined.date().isoformat(),
            "date_joined_1": joined.strftime("%H:%M:%S"),
        },
    )

    assert "Everything" not in page and FRONT_DESK in page and TECHNOLOGIST in page
    assert response.status_code == 200  # the form again, with the refused choice marked
    assert not clerk.groups.filter(name="Everything").exists()


def test_a_superuser_still_manages_superusers(admin_client):
    boss = UserFactory(username="boss", is_superuser=True, is_staff=True)

    listing = admin_client.get(reverse("admin:auth_user_changelist")).content.decode()
    response = admin_client.get(reverse("admin:auth_user_password_change", args=[boss.pk]))

    assert reverse("admin:auth_user_change", args=[boss.pk]) in listing
    assert response.status_code == 200


@pytest.fixture
def axes_on(settings):
    settings.AXES_ENABLED = True


def test_the_sixth_wrong_password_locks_the_login_even_with_the_right_one(client, axes_on):
    UserFactory(username="nok", roles=[FRONT_DESK])
    login = reverse("login")

    statuses = [
        client.post(login, {"username": "nok", "password": "wrong-password"}).status_code for _ in range(5)
    ]
    # The form again ("enter a correct username and password") four times; the fifth locks.
    assert statuses == [200, 200, 200, 200, 429]

    response = client.post(login, {"username": "nok", "password": "pw-for-tests-1"})

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    # Someone else, from the same address, is not locked out.
    UserFactory(username="som", roles=[FRONT_DESK])
    response = client.post(login, {"username": "som", "password": "pw-for-tests-1"})
    assert response.status_code == 302


def test_four_wrong_passwords_then_the_right_one_logs_in(client, axes_on):
    UserFactory(username="nok", roles=[FRONT_DESK])
    login = reverse("login")
    for _ in range(4):
        client.post(login, {"username": "nok", "password": "wrong-password"})

    response = client.post(login, {"username": "nok", "password": "pw-for-tests-1"})

    assert response.status_code == 302


@pytest.fixture
def behind_proxy(settings, axes_on):
    settings.RIS_PROXY_COUNT = 1


def at_desk(address: str, *, sent: str = "") -> dict[str, str]:
    """What gunicorn sees of a browser at `address` behind the proxy (10.0.0.1), which appends the
    address it was called from to whatever X-Forwarded-For the browser `sent`."""
    forwarded = f"{sent}, {address}" if sent else address
    return {"REMOTE_ADDR": "10.0.0.1", "HTTP_X_FORWARDED_FOR": forwarded}


def test_behind_the_proxy_a_lockout_at_one_desk_leaves_the_other_desks_alone(behind_proxy):
    from django.test import Client

    UserFactory(username="nok", roles=[FRONT_DESK])
    login = reverse("login")
    stranger, clerk = Client(**at_desk("192.168.1.66")), Client(**at_desk("192.168.1.20"))

    statuses = [stranger.post(login, {"username": "nok", "password": "wrong"}).status_code for _ in range(5)]
    response = clerk.post(login, {"username": "nok", "password": "pw-for-tests-1"})

    assert statuses[-1] == 429
    assert response.status_code == 302


def test_behind_the_proxy_a_made_up_forwarded_address_does_not_dodge_the_lockout(client, behind_proxy):
    UserFactory(username="nok", roles=[FRONT_DESK])
    login = reverse("login")

    statuses = [
        client.post(
            login, {"username": "nok", "password": "wrong"}, **at_desk("192.168.1.66", sent=f"203.0.113.{n}")
        ).status_code
        for n in range(6)
    ]

    assert statuses[-2:] == [429, 429]


def test_without_a_proxy_the_forwarded_header_is_not_believed(client, axes_on):
    UserFactory(username="nok", roles=[FRONT_DESK])
    login = reverse("login")

    statuses = [
        client.post(
            login, {"username": "nok", "password": "wrong"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}"
        ).status_code
        for n in range(6)
    ]

    assert statuses[-2:] == [429, 429]


def test_a_locked_out_clerk_is_told_in_thai_how_long_to_wait(client, axes_on):
    from django.utils import translation

    UserFactory(username="nok", roles=[FRONT_DESK])
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    try:
        for _ in range(6):
            response = client.post(reverse("login"), {"username": "nok", "password": "wrong-password"})
    finally:
        translation.deactivate()

    assert response.status_code == 429
    page = response.content.decode()
    assert "บัญชีถูกล็อกชั่วคราว" in page
    assert "ลองใหม่ในอีก 15 นาที" in page
