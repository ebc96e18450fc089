"""The Thai interface in Chromium: every date a Thai clerk reads is in B.E., and a typed B.E. date books
the right C.E. day.

Debian's Chromium ships only en-US: the date boxes are the page's own text fields (ris/dates.py), so what
is seen here is what the server wrote, whatever the browser's locale.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from playwright.sync_api import expect

from hl7_link.models import AckCode, Message
from scheduling.models import Order
from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST
from tests.e2e.test_front_desk import tab_to
from tests.factories import OrderFactory, ProcedureFactory, RoomFactory, ThaiPatientFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def tomorrow() -> date:
    return timezone.localdate() + timedelta(days=1)


def at(hour: int, minute: int = 0) -> datetime:
    return timezone.make_aware(datetime.combine(tomorrow(), time(hour, minute)))


def be(day: date) -> str:
    """`day` as a Thai clerk types it: dd/mm/yyyy in B.E."""
    return f"{day:%d/%m}/{day.year + 543}"


def ce_years_in(text: str, years: set[int]) -> list[int]:
    return [year for year in years if re.search(rf"(?<!\d){year}(?!\d)", text)]


@pytest.fixture
def thai_page(page, live_server):
    """The browser logged in as a clerk (front desk, scanner and IT), the interface in Thai."""
    clerk = UserFactory(username="nok", roles=[FRONT_DESK, TECHNOLOGIST, ADMIN])
    client = Client()
    client.force_login(clerk)
    page.context.add_cookies(
        [
            {"name": name, "value": value, "url": live_server.url}
            for name, value in [
                (settings.SESSION_COOKIE_NAME, client.cookies[settings.SESSION_COOKIE_NAME].value),
                (settings.LANGUAGE_COOKIE_NAME, "th"),
            ]
        ]
    )
    page.clerk = clerk
    return page


@pytest.fixture
def ct_room():
    return RoomFactory(name="ห้องซีที 1", modality="CT", ae_title="CT01", location="ตึก 1")


@pytest.fixture
def ct_head():
    return ProcedureFactory(code_value="CTHEAD", code_meaning="ซีทีสมอง", modality="CT", default_duration=30)


def test_thai_pages_and_the_slip_show_be_years_and_no_ce_year(thai_page, shoot, ct_room, ct_head):
    patient = ThaiPatientFactory(mrn="HN000777", birth_date=date(1980, 5, 17))
    order = OrderFactory(
        accession_number="26010100007",
        patient=patient,
        procedure=ct_head,
        room=ct_room,
        scheduled_start=at(9),
        booked_by=thai_page.clerk,
    )
    Message.objects.create(
        sending_application="HOSXP",
        message_type="ORM^O01",
        version="2.3.1",
        raw=b"MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203||ORM^O01|X|P|2.3.1\r",
        ack_code=AckCode.AA,
    )
    ce = {timezone.localdate().year, tomorrow().year, 1980}
    pages = {
        "board": f"/?date={tomorrow().isoformat()}",
        "order-list": "/orders/",
        "patient-list": "/patients/?q=HN000777",
        "patient": f"/patients/{patient.pk}/",
        "order": f"/orders/{order.pk}/",
        "to-schedule": "/orders/to-schedule/",
        "to-call-back": "/orders/to-call-back/",
        "booking": f"/orders/new/?patient={patient.pk}",
        "worklist-problems": "/worklist/problems/",
        "hl7-interface": "/interface/",
    }
    for name, url in pages.items():
        thai_page.goto(url)
        expect(thai_page.locator("html")).to_have_attribute("lang", "th")
        shoot(f"thai-{name}")
        text = thai_page.locator("body").inner_text()
        assert ce_years_in(text, ce) == [], (name, text)
        # The date boxes too: their values are not in the page's text.
        values = " ".join(
            thai_page.locator("input:not([type=hidden])").evaluate_all("inputs => inputs.map(i => i.value)")
        )
        assert ce_years_in(values, ce) == [], (name, values)

    thai_page.goto("/")
    assert str(timezone.localdate().year + 543) in thai_page.locator("h1").inner_text()
    thai_page.goto(f"/patients/{patient.pk}/")
    expect(thai_page.locator("main")).to_contain_text("17 พฤษภาคม 2523")
    thai_page.goto(f"/orders/{order.pk}/")
    expect(thai_page.locator("main")).to_contain_text(str(tomorrow().year + 543))

    thai_page.goto(f"/orders/{order.pk}/slip/")
    thai_page.emulate_media(media="print")
    slip = thai_page.locator("article.slip")
    expect(slip).to_contain_text("17 พฤษภาคม 2523")
    expect(slip).to_contain_text(str(tomorrow().year + 543))
    assert ce_years_in(thai_page.locator("body").inner_text(), ce) == []
    shoot("thai-slip-print")


def test_typing_a_be_date_in_the_thai_booking_form_books_the_right_ce_day(thai_page, shoot, ct_room, ct_head):
    patient = ThaiPatientFactory(mrn="HN000778")
    thai_page.goto(f"/orders/new/?patient={patient.pk}&procedure={ct_head.pk}&room={ct_room.pk}")
    date_field = thai_page.locator("#id_date")
    expect(date_field).to_have_value(be(timezone.localdate()))  # today, in B.E.
    expect(date_field).to_have_attribute("inputmode", "numeric")

    # From the keyboard only: Tab into the date box selects what is there, typing replaces it.
    expect(thai_page.locator("#id_procedure")).to_be_focused()
    tab_to(thai_page, date_field)
    thai_page.keyboard.type(be(tomorrow()))
    expect(date_field).to_have_value(be(tomorrow()))
    slot = thai_page.locator("#id_slot")
    expect(slot.locator("option", has_text="09:00")).to_have_count(1)
    tab_to(thai_page, slot)
    thai_page.keyboard.type("09:00")
    expect(slot).to_have_value("09:00")
    shoot("thai-booking-typed-be")
    tab_to(thai_page, thai_page.locator("#id_reason"))
    thai_page.keyboard.press("Enter")

    expect(thai_page.get_by_role("alert")).to_contain_text(patient.given_name)
    order = Order.objects.get(patient=patient)
    assert order.scheduled_start == at(9)
    expect(thai_page.locator("main")).to_contain_text(str(tomorrow().year + 543))
    shoot("thai-booked")


def test_typing_a_be_date_on_the_thai_board_goes_to_that_iso_day(thai_page, shoot):
    thai_page.goto("/")
    box = thai_page.get_by_label("วันที่", exact=True)
    expect(box).to_have_value(be(timezone.localdate()))
    box.focus()
    thai_page.keyboard.press("Control+A")
    thai_page.keyboard.type(be(tomorrow()))
    thai_page.keyboard.press("Enter")

    expect(thai_page).to_have_url(re.compile(rf"/\?date={tomorrow().isoformat()}$"))
    expect(box).to_have_value(be(tomorrow()))
    shoot("thai-board-typed-be")


def test_the_thai_menu_keeps_each_item_on_one_line(thai_page, shoot):
    # 1280 px, a front-desk PC's screen, is too narrow for the whole menu in Thai: whole items wrap onto
    # a second row, none breaks inside (Chromium breaks Thai between words: รอ|ลง|นัด on three lines).
    thai_page.set_viewport_size({"width": 1280, "height": 900})
    thai_page.goto("/")
    shoot("thai-menu-1280")
    lines = thai_page.evaluate(
        """() => [...document.querySelectorAll('.navbar .nav-link, .navbar .navbar-text, .navbar .btn')]
            .map(el => {
                const range = document.createRange();
                range.selectNodeContents(el);
                const tops = new Set([...range.getClientRects()].map(r => Math.round(r.top)));
                return [el.textContent.trim().replace(/\\s+/g, ' '), tops.size];
            })"""
    )
    assert len(lines) >= 10
    assert [text for text, rows in lines if rows > 1] == []
