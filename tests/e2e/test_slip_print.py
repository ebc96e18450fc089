"""The appointment slip as Chromium prints it: one page on A4 and on A5, barcode included."""

from __future__ import annotations

import re

import pytest
from django.conf import settings
from django.test import Client

from tests.factories import OrderFactory, ProcedureFactory, RoomFactory, ThaiPatientFactory, UserFactory

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# A long preparation, as a clerk may paste it from the department's leaflet, in Thai and English.
PREPARATION = "\n".join(
    [
        "งดอาหารและเครื่องดื่ม 6 ชั่วโมงก่อนตรวจ ดื่มน้ำเปล่าได้เล็กน้อย",
        "นำผลตรวจค่าการทำงานของไต (creatinine) ภายใน 3 เดือนมาด้วย",
        "แจ้งเจ้าหน้าที่หากแพ้สารทึบรังสี แพ้อาหารทะเล เป็นโรคหอบหืด หรือกำลังตั้งครรภ์",
        "Fast 6 hours before the exam. Water is allowed.",
        "Bring a recent creatinine result. Tell staff about any contrast allergy, asthma or pregnancy.",
        "Remove all metal: jewellery, hairpins, dentures, hearing aids.",
    ]
)


PAPER_MM = {"A4": (210, 297), "A5": (148, 210)}


def pdf_pages(pdf: bytes) -> int:
    """Page objects in a PDF: `/Type /Page` but not `/Type /Pages` (the page tree)."""
    return len(re.findall(rb"/Type\s*/Page(?![a-zA-Z])", pdf))


@pytest.fixture
def slip_page(page, live_server):
    """The slip of a long but realistic order, open in the browser with print media."""
    clerk = UserFactory(username="nok")
    order = OrderFactory(
        patient=ThaiPatientFactory(
            mrn="HN990003", name_prefix="นางสาว", given_name="วิไลวรรณ", family_name="รัตนพงษ์วัฒนากุล"
        ),
        procedure=ProcedureFactory(
            code_meaning="CT Chest, abdomen and pelvis with contrast", instructions_th=PREPARATION
        ),
        room=RoomFactory(name="CT 2 (ห้องซีที 2)", location="Building A F2"),
        booked_by=clerk,
    )
    client = Client()
    client.force_login(clerk)
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )
    page.goto(f"/orders/{order.pk}/slip/")
    page.emulate_media(media="print")
    return page


def test_the_pdf_page_counter_counts_pages():
    assert (
        pdf_pages(b"<< /Type /Pages /Kids [3 0 R 4 0 R] >> << /Type /Page >> << /Type/Page/Parent 2 0 R >>")
        == 2
    )


@pytest.mark.parametrize("paper", ["A4", "A5"])
def test_the_slip_prints_on_one_page_with_its_barcode(slip_page, shoot, paper):
    # The printable area at 96 px per inch (paper width less the 10 mm @page margins), for the screenshot.
    width_mm, height_mm = PAPER_MM[paper]
    slip_page.set_viewport_size(
        {"width": round((width_mm - 20) / 25.4 * 96), "height": round((height_mm - 20) / 25.4 * 96)}
    )
    shoot(f"slip-print-{paper}")
    barcode = slip_page.locator("article.slip .slip-barcode-svg svg")
    assert barcode.is_visible()
    assert barcode.locator("rect").count() > 20  # the bars, not an empty box
    box = barcode.bounding_box()
    assert box and box["width"] > 100 and box["height"] > 30

    pdf = slip_page.pdf(format=paper, print_background=True, prefer_css_page_size=False)

    assert pdf.startswith(b"%PDF")
    assert pdf_pages(pdf) == 1, f"the slip takes {pdf_pages(pdf)} pages on {paper}"
