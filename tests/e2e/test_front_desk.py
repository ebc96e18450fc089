"""The front desk in a real browser, with the worklist checked on a real wlmscpfs.

A new clerk logs in, registers a Thai patient, books a CT for tomorrow 09:00 from the keyboard, finds it
on the day board, and a modality's C-FIND sees it with the Thai name intact; moving it to 10:30 and
cancelling it from the board change what the modality sees.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from time import sleep

import pytest
from django.utils import timezone
from playwright.sync_api import expect
from pydicom.dataset import Dataset

from scheduling import services
from scheduling.forms import SlotQueryForm
from scheduling.models import Order, OrderStatus
from scheduling.roles import FRONT_DESK, TECHNOLOGIST
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.mwl_server import dicom

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"


@pytest.fixture
def clerk():
    return UserFactory(username="nok", roles=[FRONT_DESK, TECHNOLOGIST])


@pytest.fixture
def ct_room():
    return RoomFactory(name="CT 1", modality="CT", ae_title="CT01", location="Building A")


@pytest.fixture
def ct_head():
    return ProcedureFactory(
        code_value="CTHEAD",
        code_meaning="CT Head without contrast",
        modality="CT",
        default_duration=30,
        instructions_en="Nothing to eat for 4 hours before the exam.",
    )


def tomorrow():
    return timezone.localdate() + timedelta(days=1)


def at(hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(tomorrow(), time(hour, minute)))


def log_in(page, username: str) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name=re.compile("^Schedule"))).to_be_visible()


def worklist_query(**patient_keys) -> Dataset:
    """What a CT scanner asks: its items for tomorrow, with the keys it shows the radiographer."""
    return dicom.worklist_query(
        {"Modality": "CT", "ScheduledProcedureStepStartDate": f"{tomorrow():%Y%m%d}"}, **patient_keys
    )


def type_date(page, day: date) -> None:
    """Type `day` into the focused date field, as a clerk at an English desk does: dd/mm/yyyy, C.E.

    The field is a text box in the page's language and era (ris/dates.py), not the browser's own date
    input, whose parts follow the browser's locale (only en-US in Debian's Chromium).
    """
    page.keyboard.type(f"{day:%d/%m/%Y}")


def tab_to(page, field, *, at_most: int = 5) -> None:
    """Press Tab until `field` has the focus, as a clerk does; fail if it takes more than `at_most`."""
    for _ in range(at_most):
        page.keyboard.press("Tab")
        if field.evaluate("element => element === document.activeElement"):
            return
    raise AssertionError(f"{at_most} presses of Tab did not reach {field}")


def board_block(page, accession: str):
    return page.locator(f'article.board-block[data-accession="{accession}"]')


def test_a_new_clerk_books_moves_and_cancels_a_thai_patients_ct(
    page, shoot, clerk, ct_room, ct_head, wlmscpfs, fast_board
):
    # 1. Every page needs a login.
    page.goto("/orders/")
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/orders/$"))
    shoot("login-required")
    log_in(page, "nok")
    shoot("day-board-today")

    # 2. Register the patient with a Thai name and its romanised form.
    page.get_by_role("link", name="Patients", exact=True).click()
    page.get_by_role("link", name="Register patient").click()
    page.get_by_label("Patient ID (MRN)").fill("HN990001")
    page.locator("#id_given_name").fill("สมชาย")
    page.locator("#id_family_name").fill("ใจดี")
    page.locator("#id_romanized_given_name").fill("Somchai")
    page.locator("#id_romanized_family_name").fill("Jaidee")
    page.locator("#id_birth_date").fill("1980-05-17")
    page.locator("#id_sex").select_option("M")
    shoot("patient-form")
    page.get_by_role("button", name="Register", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("สมชาย ใจดี"))).to_be_visible()

    # 3. Book a CT for tomorrow 09:00 with the keyboard only, from the patient search to Enter: the
    #    autocomplete picks the patient, procedure then has the focus, Tab moves on, the date is typed,
    #    the slots come from the server, Enter books. From here to Enter the test only presses keys,
    #    waits and looks: it never clicks, fills or focuses.
    page.locator("nav").get_by_role("link", name="Book exam", exact=True).click()
    picker = page.get_by_role("combobox", name="Patient")
    expect(picker).to_be_focused()
    page.keyboard.type("ใจดี")
    expect(
        page.get_by_role("option", name=re.compile("สมชาย ใจดี · Somchai Jaidee · HN990001"))
    ).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Enter")
    expect(page.get_by_text("HN990001")).to_be_visible()
    expect(page.locator("#id_procedure")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the only CT procedure
    page.keyboard.press("Tab")
    expect(page.locator("#id_room")).to_be_focused()
    page.keyboard.press("ArrowDown")  # the only CT room
    page.keyboard.press("Tab")
    expect(page.locator("#id_date")).to_be_focused()
    type_date(page, tomorrow())
    expect(page.locator("#id_date")).to_have_value(f"{tomorrow():%d/%m/%Y}")
    slot = page.locator("#id_slot")
    tab_to(page, slot)  # past the date's calendar button
    expect(slot.locator("option", has_text="09:00")).to_have_count(1)
    page.keyboard.type("09:00")
    expect(slot).to_have_value("09:00")
    tab_to(page, page.locator("#id_reason"))  # past priority, referring and requesting physician
    page.keyboard.type("Headache")
    shoot("booking-form")
    page.keyboard.press("Enter")
    expect(
        page.get_by_role("alert").filter(has_text="Booked CT Head without contrast for สมชาย ใจดี")
    ).to_be_visible()
    order = Order.objects.get(patient__mrn="HN990001")
    assert order.scheduled_start == at(9)
    shoot("order-booked")

    # 4. It is on tomorrow's day board, in the CT 1 column.
    page.get_by_role("link", name="Schedule", exact=True).click()
    page.get_by_role("link", name=re.compile("Next day")).click()
    block = board_block(page, order.accession_number)
    expect(block).to_contain_text("สมชาย ใจดี")
    expect(block).to_contain_text("CT Head without contrast")
    expect(block).to_contain_text("09:00–09:30")
    shoot("day-board-tomorrow")

    # 5. The scanner's worklist query returns it, with the Thai name intact.
    answers = wlmscpfs.find(worklist_query())
    assert [(a.AccessionNumber, str(a.PatientName)) for a in answers] == [
        (order.accession_number, "ใจดี^สมชาย")
    ]
    assert answers[0].ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "090000"

    # 6. Reschedule to 10:30 from the board's block menu.
    block.get_by_role("button", name=f"Actions for {order.accession_number}").click()
    block.get_by_role("link", name="Reschedule").click()
    page.locator("#id_slot").select_option("10:30")
    shoot("reschedule")
    page.get_by_role("button", name="Move").click()
    expect(page.get_by_role("alert").filter(has_text="moved to CT 1")).to_be_visible()
    (answer,) = wlmscpfs.find(worklist_query(PatientID="HN990001"))
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == "103000"
    assert str(answer.PatientName) == "ใจดี^สมชาย"

    # 7. The appointment slip: barcode, preparation, the new time.
    page.get_by_role("link", name="Appointment slip").click()
    slip = page.locator("article.slip")
    expect(slip.locator(".slip-barcode-svg svg")).to_be_visible()
    expect(slip).to_contain_text("Nothing to eat for 4 hours before the exam.")
    expect(slip).to_contain_text("10:30–11:00")
    expect(slip).to_contain_text("Somchai Jaidee")
    expect(page.get_by_role("button", name="Print")).to_be_visible()
    shoot("appointment-slip")
    page.emulate_media(media="print")
    expect(page.locator("nav.navbar")).to_be_hidden()
    shoot("appointment-slip-print")
    page.emulate_media(media="screen")

    # 8. Another clerk books 13:00 meanwhile: the board shows it without a reload.
    page.goto(f"/?date={tomorrow().isoformat()}")
    other = services.order_book(
        patient=PatientFactory(family_name="Smith", given_name="Anna"),
        procedure=ct_head,
        room=ct_room,
        start=at(13),
        user=UserFactory(username="ploy"),
    )
    expect(board_block(page, other.accession_number)).to_contain_text("Anna Smith", timeout=15_000)
    shoot("board-refreshed-with-another-clerks-booking")

    # 9. Cancel from the board, with a reason: the worklist no longer offers it.
    block = board_block(page, order.accession_number)
    block.get_by_role("button", name=f"Actions for {order.accession_number}").click()
    block.get_by_label("Reason for cancellation").fill("Patient postponed")
    shoot("cancel-from-board")
    block.get_by_role("button", name="Cancel order").click()
    expect(
        page.get_by_role("alert").filter(has_text=f"Order {order.accession_number} cancelled.")
    ).to_be_visible()
    expect(board_block(page, order.accession_number)).to_have_class(re.compile("board-cancelled"))
    shoot("cancelled-on-board")
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED
    assert wlmscpfs.find(worklist_query(PatientID="HN990001")) == []

    # 10. The same board in Thai.
    page.get_by_label("Language").select_option("th")
    expect(page.get_by_role("heading", name=re.compile("^ตารางนัด"))).to_be_visible()
    expect(page.get_by_role("link", name="จองตรวจ", exact=True).first).to_be_visible()
    shoot("day-board-in-thai")
    page.goto(f"/orders/{other.pk}/slip/")
    expect(page.locator("article.slip")).to_contain_text("ใบนัด")
    shoot("appointment-slip-in-thai")


def test_a_booking_that_collides_is_refused_with_a_message(page, shoot, clerk, ct_room, ct_head, wlmscpfs):
    patient = PatientFactory(family_name="Jaidee", given_name="Malee", mrn="HN990002")
    log_in(page, "nok")
    page.goto(
        f"/orders/new/?patient={patient.pk}&procedure={ct_head.pk}&room={ct_room.pk}&date={tomorrow().isoformat()}"
    )
    page.locator("#id_slot").select_option("11:00")

    # Someone else takes 11:00 while this clerk is still on the form.
    taken = services.order_book(
        patient=PatientFactory(),
        procedure=ct_head,
        room=ct_room,
        start=at(11),
        user=UserFactory(username="ploy"),
    )
    page.get_by_role("button", name="Book", exact=True).click()

    expect(
        page.get_by_text(
            re.compile(f"CT 1 is already booked 11:00-11:30 \\(accession {taken.accession_number}\\)")
        )
    ).to_be_visible()
    shoot("collision-refused")
    assert not Order.objects.filter(patient=patient).exists()


def test_an_anonymous_visitor_is_sent_to_the_login_page(page, shoot):
    for path in ("/", "/patients/", "/orders/new/", "/patients/autocomplete/?q=a"):
        page.goto(path)
        expect(page).to_have_url(re.compile(r"/accounts/login/\?next="))
    expect(page.get_by_role("button", name="Log in")).to_be_visible()
    shoot("anonymous-redirected")


def test_typing_a_date_keeps_the_slots_of_the_whole_date(page, clerk, ct_room, ct_head, monkeypatch):
    # Typing a date changes the field at every key (0, 04, 04/, ... 04/12/2026), and each change
    # asks for the slots. The answers for the partial dates come back last here, as they can from a
    # busy server: the list must still be that of the date finally typed.
    patient = PatientFactory(mrn="HN990004")

    class SlowToRefuse(SlotQueryForm):
        def is_valid(self):
            valid = super().is_valid()
            if not valid:
                sleep(0.5)
            return valid

    monkeypatch.setattr("scheduling.views.SlotQueryForm", SlowToRefuse)
    log_in(page, "nok")
    page.goto(f"/orders/new/?patient={patient.pk}&procedure={ct_head.pk}&room={ct_room.pk}")
    expect(page.locator("#id_procedure")).to_be_focused()
    date_field = page.locator("#id_date")
    tab_to(page, date_field)
    type_date(page, tomorrow())
    expect(date_field).to_have_value(f"{tomorrow():%d/%m/%Y}")

    slot = page.locator("#id_slot")
    expect(slot.locator("option", has_text="09:00")).to_have_count(1)
    sleep(1.5)  # the stale answers have all arrived
    expect(slot.locator("option", has_text="09:00")).to_have_count(1)
