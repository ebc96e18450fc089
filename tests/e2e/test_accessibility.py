"""Every page of the front desk and its administrators, in English and in Thai, passes axe-core's
WCAG 2.1 A and AA rules with no violation, checked in Chromium.

axe-core is vendored in tests/e2e/vendor/axe-core (a test tool, never served to users; update.sh there
re-vendors it). The pages' Content-Security-Policy allows scripts from 'self' only, so a <script> tag
added to the page (Playwright's add_script_tag) would be refused. page.evaluate runs the engine's text
through the DevTools protocol instead, which the page's policy does not govern: the pages are checked
exactly as served, with their policy on, and nothing in the app is loosened for the test.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page

from access_audit.models import AccessEvent
from hl7_link.inbound import receive
from hl7_link.models import Charset, Message, Sender
from hl7_link.services import sender_save
from scheduling.models import OrderStatus
from tests.e2e.test_csp_and_idle import log_in
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.hl7.test_interface import orm
from worklist_export.models import WorklistEntry

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

AXE_SOURCE = (Path(__file__).parent / "vendor" / "axe-core" / "axe.min.js").read_text(encoding="utf-8")
# WCAG 2.1 A and AA, plus one of axe's best-practice rules: a header cell with no text (a column of
# buttons) leaves a screen reader announcing nothing for the column.
WCAG_21_AA = {
    "runOnly": {"type": "tag", "values": ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]},
    "rules": {"empty-table-header": {"enabled": True}},
}

# Runs axe in the page and keeps what a failure message needs: the rule, its impact, help and the
# elements (CSS selectors) that break it.
RUN_AXE = """
async (options) => {
  const result = await axe.run(document, options);
  return result.violations.map((v) => ({
    id: v.id,
    impact: v.impact,
    help: v.help,
    nodes: v.nodes.map((node) => ({
      target: node.target.join(" "),
      why: [...node.any, ...node.all, ...node.none].map((check) => check.message).join("; "),
    })),
  }));
}
"""


def axe_violations(page: Page) -> list[dict]:
    """axe-core's WCAG 2.1 AA violations on the page as it is now."""
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(AXE_SOURCE)
    return page.evaluate(RUN_AXE, WCAG_21_AA)


def describe(found: dict[str, list[dict]]) -> str:
    lines = []
    for name, violations in found.items():
        for v in violations:
            lines.append(f"{name}: {v['id']} ({v['impact']}, {len(v['nodes'])}x) {v['help']}")
            lines += [f"    {node['target']}: {node['why']}" for node in v["nodes"]]
    return "\n".join(lines)


def a_day_of_work() -> dict[str, str]:
    """A booked order tomorrow, a requested one, a failed export and HL7 messages; the pages to check."""
    # A superuser: every role's buttons and the admin's pages (the Interface, the access log) at once.
    admin = UserFactory(username="axe", is_staff=True, is_superuser=True)
    room = RoomFactory(name="CT 1", ae_title="CT01")
    procedure = ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head")
    patient = PatientFactory(family_name="Jaidee", given_name="Malee", mrn="HN990020")
    order = OrderFactory(patient=patient, procedure=procedure, room=room, booked_by=admin)
    # One order in each later status that day, so the board and the order list show every colour.
    for hour, status in enumerate(
        [
            OrderStatus.ARRIVED,
            OrderStatus.IN_PROGRESS,
            OrderStatus.COMPLETED,
            OrderStatus.CANCELLED,
            OrderStatus.NO_SHOW,
        ],
        start=1,
    ):
        OrderFactory(
            procedure=procedure,
            room=room,
            status=status,
            cancel_reason="Patient asked" if status == OrderStatus.CANCELLED else "",
            scheduled_start=order.scheduled_start + timedelta(hours=hour),
            scheduled_end=order.scheduled_end + timedelta(hours=hour),
            booked_by=admin,
        )
    requested = OrderFactory(
        patient=PatientFactory(),
        procedure=procedure,
        status=OrderStatus.REQUESTED,
        room=None,
        scheduled_start=None,
        scheduled_end=None,
        requested_start=order.scheduled_start + timedelta(days=1),
        booked_by=admin,
    )
    broken = OrderFactory(procedure=procedure, room=room, booked_by=admin)
    WorklistEntry.objects.create(
        order=broken,
        last_error="The worklist folder cannot be written: [Errno 20] Not a directory",
        last_attempt_at=timezone.now(),
    )
    sender_save(sender=Sender(application="HOSXP", default_charset=Charset.TIS620))
    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR", default_duration=30)
    receive(orm("HX0001").encode("tis-620"))
    receive(orm("HX0002", placer="PL0002", code="NOSUCH").encode("tis-620"))
    refused = Message.objects.get(control_id="HX0002")

    day = timezone.localtime(order.scheduled_start).date()
    return {
        "board": reverse("scheduling:schedule") + f"?date={day:%Y-%m-%d}",
        "patient list (search)": reverse("scheduling:patient_list") + "?q=Jaidee",
        "patient detail": reverse("scheduling:patient_detail", args=[patient.pk]),
        "new patient": reverse("scheduling:patient_create"),
        "order list": reverse("scheduling:order_list"),
        "order detail": reverse("scheduling:order_detail", args=[order.pk]),
        "order detail (export failed)": reverse("scheduling:order_detail", args=[broken.pk]),
        "booking form": reverse("scheduling:order_create") + f"?patient={patient.pk}",
        "slip": reverse("scheduling:order_slip", args=[order.pk]),
        "patient edit": reverse("scheduling:patient_update", args=[patient.pk]),
        "reschedule": reverse("scheduling:order_reschedule", args=[order.pk]),
        "to schedule": reverse("scheduling:to_schedule"),
        "book a requested order": reverse("scheduling:order_schedule", args=[requested.pk]),
        "interface": reverse("hl7_link:message_list"),
        "interface message": reverse("hl7_link:message_detail", args=[refused.pk]),
        "interface outbound": reverse("hl7_link:outbound"),
        "query as a modality": reverse("mwl_server:query"),
        "worklist problems": reverse("worklist_export:problems"),
        "reports": reverse("reports:report")
        + f"?date_from={day - timedelta(days=3):%Y-%m-%d}&date_to={day + timedelta(days=3):%Y-%m-%d}",
        # Last: the pages above wrote the reads it lists.
        "access log": reverse("admin:access_audit_accessevent_changelist"),
    }


@pytest.mark.parametrize("language", ["en", "th"])
def test_every_page_passes_wcag_21_aa(page, live_server, language):
    pages = a_day_of_work()
    found: dict[str, list[dict]] = {}
    # Bootstrap's buttons fade their colours in over .15 s unless motion is reduced: axe must measure
    # the colours a page settles on, not those of a transition under way.
    page.emulate_media(reduced_motion="reduce")

    page.goto(reverse("login"))
    found["login"] = axe_violations(page)
    log_in(page, "axe")
    page.context.add_cookies(
        [{"name": settings.LANGUAGE_COOKIE_NAME, "value": language, "url": live_server.url}]
    )
    for name, url in pages.items():
        response = page.goto(url)
        assert response is not None and response.ok, (name, url, response and response.status)
        assert page.locator("html").get_attribute("lang") == language, (name, url)
        found[name] = axe_violations(page)
    # A form sent back with its errors: the red messages and the invalid fields' outlines.
    page.goto(pages["new patient"])
    page.locator("main form[method=post] button[type=submit]").first.click()
    page.locator(".invalid-feedback").first.wait_for()
    found["new patient (errors)"] = axe_violations(page)

    assert AccessEvent.objects.exists()
    found = {name: violations for name, violations in found.items() if violations}
    if found:
        pytest.fail(f"axe-core WCAG 2.1 AA violations ({language}):\n{describe(found)}", pytrace=False)


def test_axe_runs_under_the_pages_policy_and_finds_an_unlabelled_input(page):
    page.goto(reverse("login"))
    assert "script-src 'self'" in page.request.get(reverse("login")).headers["content-security-policy"]
    page.evaluate("() => document.querySelector('form').append(document.createElement('input'))")

    assert [(v["id"], v["impact"]) for v in axe_violations(page)] == [("label", "critical")]
