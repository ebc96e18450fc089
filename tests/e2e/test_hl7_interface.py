"""An administrator, in Thai, finds a refused HL7 order on the Interface page and reprocesses it.

The HIS sent a Thai patient's order (TIS-620 bytes, MSH-18 empty) for a procedure code the catalog did
not have: it was refused with AE and nothing was booked. Once the code is added, the administrator
searches the log for refused messages, opens the message (the Thai name decoded, PID-5 shown field by
field) and presses Reprocess: the new ACK is AA and the order is waiting to be scheduled.
"""

from __future__ import annotations

import re

import pytest
from django.contrib.auth.models import Group
from playwright.sync_api import expect

from hl7_link.inbound import receive
from hl7_link.models import AckCode, Charset, Message, Sender
from hl7_link.services import sender_save
from scheduling.models import Order, OrderStatus
from scheduling.roles import ADMIN, roles_ensure
from tests.e2e.test_csp_and_idle import PASSWORD, console, log_in, policy_complaints  # noqa: F401
from tests.factories import ProcedureFactory, UserFactory
from tests.hl7.test_interface import orm

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SCREENSHOT = "/tmp/hl7_interface_th.png"


def test_an_admin_reprocesses_a_refused_order_in_thai(page, console, shoot):  # noqa: F811
    roles_ensure()
    admin = UserFactory(username="it-admin", is_staff=True)
    admin.set_password(PASSWORD)
    admin.save()
    admin.groups.add(Group.objects.get(name=ADMIN))
    sender_save(sender=Sender(application="HOSXP", default_charset=Charset.TIS620))
    ProcedureFactory(code_value="CTCHEST", code_meaning="CT Chest", modality="CT", default_duration=20)
    receive(
        orm("HX0001", code="CTCHEST", mrn="HN000124", placer="PL0001", family="สุขใจ", given="มานี").encode(
            "tis-620"
        )
    )
    receive(orm("HX0002", placer="PL0002").encode("tis-620"))
    refused = Message.objects.get(control_id="HX0002")
    assert refused.ack_code == AckCode.AE
    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR", default_duration=30)

    log_in(page, "it-admin")
    page.get_by_label("Language").select_option("th")
    expect(page.locator("html")).to_have_attribute("lang", "th")
    page.goto("/interface/")
    expect(page.locator("html")).to_have_attribute("lang", "th")
    rows = page.locator("table tbody tr")
    expect(rows).to_have_count(2)

    # Search for the refused messages: only the MR order is left.
    search = page.get_by_role("search")
    search.locator("select[name=ack_code]").select_option("AE")
    search.locator("button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"ack_code=AE"))
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("HX0002")
    shoot("search")

    rows.first.get_by_role("link", name="HX0002").click()
    expect(page.locator("#message-raw").first).to_contain_text("PID|1||HN000123^^^HOSPITAL^MR||ใจดี^สมชาย")
    field = page.locator("table.hl7-fields tr", has=page.locator("code", has_text=re.compile("^PID-5$")))
    expect(field.first).to_contain_text("Patient Name")
    expect(field.first).to_contain_text("ใจดี")
    expect(page.locator("#message-error")).to_contain_text("MRBRAIN")

    page.locator("form[action$='/reprocess/'] button[type=submit]").click()
    expect(page.locator(".alert-success")).to_contain_text("AA")
    page.screenshot(path=SCREENSHOT, full_page=True)
    shoot("reprocessed")

    refused.refresh_from_db()
    assert refused.ack_code == AckCode.AA
    order = Order.objects.get(placer_order_number="PL0002")
    assert order.status == OrderStatus.REQUESTED and order.patient.given_name == "สมชาย"
    assert policy_complaints(console) == []
