"""The browser under the Content-Security-Policy, and the idle logout on a shared front-desk PC.

Chromium reports every script or style the policy refuses on its console ("Refused to execute ..."), and
fires a securitypolicyviolation event, which an init script (not subject to the policy) logs too. The
front desk's whole round (language switch, autocomplete, slots, booking, the day board's menu and
refresh, the slip's Print button, the admin's widgets) must work and leave no such message.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from scheduling import services
from scheduling.models import Order
from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
REPORT_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  console.error(`CSP violation: ${event.violatedDirective} blocked ${event.blockedURI || "inline"}`);
});
"""


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


@pytest.fixture
def console(page) -> list[str]:
    """Every console message and page error of the test, CSP violations among them."""
    messages: list[str] = []
    page.add_init_script(REPORT_VIOLATIONS)
    page.on("console", lambda message: messages.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: messages.append(f"pageerror: {error}"))
    return messages


def policy_complaints(messages: list[str]) -> list[str]:
    pattern = re.compile(r"Content Security Policy|CSP violation|Refused to|Permissions-Policy|pageerror")
    return [message for message in messages if pattern.search(message)]


def log_in(page, username: str) -> None:
    page.goto("/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Schedule|^ตารางนัด"))).to_be_visible()


def test_the_front_desk_round_works_under_the_policy_without_a_violation(page, console, fast_board):
    UserFactory(username="nok", roles=[FRONT_DESK, TECHNOLOGIST], is_staff=True, is_superuser=True)
    room = RoomFactory(name="CT 1", modality="CT", ae_title="CT01")
    procedure = ProcedureFactory(
        code_value="CTHEAD", code_meaning="CT Head", modality="CT", default_duration=30
    )
    PatientFactory(family_name="Jaidee", given_name="Malee", mrn="HN990010")

    log_in(page, "nok")
    response = page.request.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]

    # The language switch submits itself (static/ris/page.js, formerly onchange=).
    page.get_by_label("Language").select_option("th")
    expect(page.get_by_role("heading", name=re.compile("^ตารางนัด"))).to_be_visible()
    page.get_by_label("ภาษา").select_option("en")
    expect(page.get_by_role("heading", name=re.compile("^Schedule"))).to_be_visible()

    # Booking: the patient autocomplete, then the slots the server offers.
    page.locator("nav").get_by_role("link", name="Book exam", exact=True).click()
    page.get_by_role("combobox", name="Patient").fill("Jaidee")
    page.get_by_role("option", name=re.compile("Malee Jaidee")).click()
    page.locator("#id_procedure").select_option(str(procedure.pk))
    page.locator("#id_room").select_option(str(room.pk))
    page.locator("#id_date").fill(tomorrow().isoformat())
    expect(page.locator("#id_slot option", has_text="09:00")).to_have_count(1)
    page.locator("#id_slot").select_option("09:00")
    page.get_by_role("button", name="Book", exact=True).click()
    expect(page.get_by_role("alert").filter(has_text="Booked CT Head")).to_be_visible()

    # The day board: its blocks placed by their style="top: ..." attributes, its menu filled by board.js,
    # and its refresh.
    page.goto(f"/?date={tomorrow().isoformat()}")
    block = page.locator("article.board-block").first
    expect(block).to_contain_text("09:00")
    assert block.evaluate("element => element.offsetTop") > 0
    block.get_by_role("button", name=re.compile("^Actions for")).click()
    expect(block.get_by_role("link", name="Reschedule")).to_be_visible()
    page.keyboard.press("Escape")
    page.locator("body").click(position={"x": 5, "y": 5})
    services.order_book(
        patient=PatientFactory(family_name="Smith", given_name="Anna"),
        procedure=procedure,
        room=room,
        start=timezone.make_aware(datetime.combine(tomorrow(), time(13))),
        user=UserFactory(username="ploy"),
    )
    expect(page.locator("article.board-block", has_text="Anna Smith")).to_be_visible(timeout=15_000)

    # The slip's Print button (formerly onclick=).
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_role("link", name=re.compile("Malee Jaidee|\\d{11}")).first.click()
    page.get_by_role("link", name="Appointment slip").click()
    page.evaluate("window.print = () => { window.printed = true; }")
    page.get_by_role("button", name="Print").click()
    assert page.evaluate("window.printed") is True

    # The admin's own scripts: the date shortcuts of the order's change form.
    page.goto(f"/admin/scheduling/order/{Order.objects.get(patient__mrn='HN990010').pk}/change/")
    expect(page.get_by_role("link", name="Today").first).to_be_visible()

    assert policy_complaints(console) == []


@pytest.fixture
def short_idle(settings):
    """Logged out after 6 s without activity, warned 1.5 s before."""
    settings.RIS_IDLE_LOGOUT_MINUTES = 0.1


def test_an_unattended_board_warns_then_logs_out(page, console, fast_board, short_idle):
    UserFactory(username="nok", roles=[FRONT_DESK])

    log_in(page, "nok")
    warning = page.get_by_role("alertdialog")
    # The board refreshes every second meanwhile: background requests, not activity.
    expect(warning).to_be_visible(timeout=8_000)
    expect(warning).to_contain_text("You will be logged out in")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=%2F$"), timeout=8_000)

    page.goto("/patients/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/patients/$"))
    assert policy_complaints(console) == []


def test_stay_logged_in_keeps_the_session(page, console, short_idle):
    UserFactory(username="nok", roles=[FRONT_DESK])

    log_in(page, "nok")
    warning = page.get_by_role("alertdialog")
    expect(warning).to_be_visible(timeout=8_000)
    warning.get_by_role("button", name="Stay logged in").click()
    expect(warning).to_be_hidden()
    page.wait_for_timeout(2_500)  # past the first deadline

    page.get_by_role("link", name="Patients", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Patients"))).to_be_visible()
    assert policy_complaints(console) == []
