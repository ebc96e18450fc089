"""A department lead reads the week's reports in Thai in Chromium: the dates typed in B.E., each chart
drawn with Thai labels (a screenshot of each), and a chart's CSV downloaded from its link.

The data is the hand-checked week of tests/reports/test_numbers.py.
"""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from scheduling.models import OrderStatus, Priority
from scheduling.roles import DEPARTMENT_LEAD
from tests.e2e.test_csp_and_idle import console, log_in, policy_complaints  # noqa: F401
from tests.factories import OrderFactory, UserFactory
from tests.reports.test_numbers import week  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_a_department_lead_reads_the_week_in_thai(
    page,
    live_server,
    console,  # noqa: F811
    shoot,
    artifacts_root,
    request,
    week,  # noqa: F811
):
    UserFactory(username="lead", roles=[DEPARTMENT_LEAD])
    # Two orders waiting to be booked, so the To schedule chart has bars.
    for days, priority in ((2, Priority.ROUTINE), (20, Priority.STAT)):
        OrderFactory(status=OrderStatus.REQUESTED, room=None, scheduled_start=None, scheduled_end=None,
                     priority=priority, booked_at=timezone.now() - timedelta(days=days))  # fmt: skip
    log_in(page, "lead")
    page.context.add_cookies([{"name": settings.LANGUAGE_COOKIE_NAME, "value": "th", "url": live_server.url}])

    page.goto(reverse("reports:report"))
    expect(page.get_by_role("heading", name="รายงาน", exact=True)).to_be_visible()
    # The week typed as a Thai clerk types it: day first, the year in B.E.
    page.get_by_role("textbox", name="ตั้งแต่").fill("02/11/2569")
    page.get_by_role("textbox", name="ถึง", exact=True).fill("08/11/2569")
    page.get_by_role("button", name="แสดง").click()

    expect(page.locator("#report-scope")).to_contain_text("2569")
    for chart in ("daily", "utilisation", "waiting", "to-schedule", "turnaround"):
        svg = page.locator(f"#chart-{chart}")
        expect(svg).to_be_visible()
        # Drawn: the browser laid out the labels (Thai glyphs from the page's fonts), not empty boxes.
        assert svg.bounding_box()["height"] > 100
        folder = artifacts_root / request.node.name
        folder.mkdir(parents=True, exist_ok=True)
        svg.screenshot(path=str(folder / f"chart-{chart}.png"))
    legend = page.locator("#chart-daily text", has_text="ตรวจเสร็จแล้ว")
    expect(legend).to_have_count(1)
    assert legend.bounding_box()["width"] > 40  # the Thai words have width: a font drew them
    expect(page.locator("#chart-utilisation text", has_text="วันจันทร์")).to_have_count(1)
    rooms = page.locator("#rooms-table")
    expect(rooms.locator("th").first).to_have_text("ห้อง")
    expect(rooms.locator("tbody tr")).to_have_count(2)
    rooms.screenshot(path=str(artifacts_root / request.node.name / "rooms-table.png"))
    shoot("reports-thai")

    with page.expect_download() as download_info:
        page.locator("#report-daily a[download]").click()
    download = download_info.value
    assert download.suggested_filename == "exams-per-day-20261102-20261108.csv"
    rows = list(csv.reader(io.StringIO(open(download.path(), encoding="utf-8-sig").read())))
    assert rows[0][0] == "วันที่" and rows[1] == ["2026-11-02", "2", "1", "0", "0", "3"]
    assert policy_complaints(console) == []
