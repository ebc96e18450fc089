"""The Reports page and its CSV downloads: who may read them, what they say, in Thai and in English."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.conf import settings
from django.urls import reverse

from scheduling.roles import ADMIN, DEPARTMENT_LEAD, FRONT_DESK, TECHNOLOGIST
from tests.factories import UserFactory
from tests.reports.test_numbers import week  # noqa: F401
from tests.scheduling.test_i18n import english_leftovers, visible_text

pytestmark = pytest.mark.django_db

WEEK = {"date_from": "2026-11-02", "date_to": "2026-11-08"}
CHARTS = ("daily", "utilisation", "rooms", "waiting", "to-schedule", "turnaround")


@pytest.fixture
def lead(client):
    client.force_login(UserFactory(username="lead", roles=[DEPARTMENT_LEAD]))
    return client


def rows(response) -> list[list[str]]:
    text = response.content.decode("utf-8")
    assert text.startswith("\ufeff")  # so a spreadsheet reads the Thai as UTF-8
    return list(csv.reader(io.StringIO(text[1:])))


@pytest.mark.parametrize("roles, allowed", [
    ([DEPARTMENT_LEAD], True), ([ADMIN], True), ([FRONT_DESK], False), ([TECHNOLOGIST], False), ([], False),
])  # fmt: skip
def test_only_the_department_lead_and_the_admin_read_the_reports(client, roles, allowed):
    client.force_login(UserFactory(username="someone", roles=roles))

    pages = [reverse("reports:report")] + [reverse("reports:csv", args=[c]) for c in CHARTS]
    for url in pages:
        assert client.get(url, WEEK).status_code == (200 if allowed else 403), url
    navbar = client.get(reverse("scheduling:schedule")).content.decode()
    assert (reverse("reports:report") in navbar) is allowed


def test_a_visitor_is_sent_to_log_in(client):
    response = client.get(reverse("reports:csv", args=["daily"]), WEEK)

    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_the_page_shows_each_chart_with_its_csv_link(lead, week):  # noqa: F811
    response = lead.get(reverse("reports:report"), WEEK)

    html = response.content.decode()
    for chart in (
        "chart-daily",
        "chart-utilisation",
        "chart-waiting",
        "chart-to-schedule",
        "chart-turnaround",
    ):
        if chart == "chart-to-schedule":
            continue  # nothing waits to be booked in this week's data
        assert f'id="{chart}"' in html and f'aria-labelledby="{chart}-title {chart}-desc"' in html
    for chart in CHARTS:
        assert reverse("reports:csv", args=[chart]) + "?" in html
    assert "275 of 2789 minutes" in html and "(10%)" in html
    assert "65 booked minutes fell when no room was open." in html
    assert "No order waits to be booked." in html
    # Each bar says its number when pointed at, and the heatmap its share.
    assert "<title>2/11: Completed 2</title>" in html
    assert "<title>Monday 09: 75%</title>" in html
    assert "<title>Wednesday 00: No opening hours, 30 minutes booked</title>" in html
    assert "<title>Saturday 12: No opening hours</title>" in html
    # Each room's booked and opening hours: CT 1 185 of 2,550 minutes, MR 1 90 of 239.
    rooms = re.search(r'<table[^>]*id="rooms-table".*?</table>', html, re.S).group(0)
    cells = [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", rooms, re.S)]
    assert cells == ["CT 1", "3.1", "42.5", "7%", "MR 1", "1.5", "4.0", "38%"]


def test_each_csv_holds_the_numbers_of_its_chart(lead, week):  # noqa: F811
    daily = rows(lead.get(reverse("reports:csv", args=["daily"]), WEEK))
    assert daily[0] == ["Day", "Completed", "Cancelled", "No show", "Not done yet", "Total"]
    assert daily[1:] == [
        ["2026-11-02", "2", "1", "0", "0", "3"],
        ["2026-11-03", "2", "0", "1", "0", "3"],
        ["2026-11-04", "0", "0", "0", "0", "0"],
        ["2026-11-05", "0", "0", "0", "1", "1"],
        ["2026-11-06", "0", "0", "0", "0", "0"],
        ["2026-11-07", "0", "0", "0", "0", "0"],
        ["2026-11-08", "1", "0", "0", "0", "1"],
    ]

    use = rows(lead.get(reverse("reports:csv", args=["utilisation"]), WEEK))
    assert use[0] == ["Weekday", "Hour", "Booked minutes", "Opening minutes", "Share booked (%)"]
    cells = {(r[0], r[1]): r[2:] for r in use[1:]}
    assert cells[("Monday", "09:00")] == ["45", "60", "75.0"]
    assert cells[("Tuesday", "23:00")] == ["30", "59", "50.8"]
    assert cells[("Wednesday", "00:00")] == ["30", "0", ""]
    assert cells[("Thursday", "16:00")] == ["30", "30", "100.0"]
    assert cells[("Friday", "12:00")] == ["0", "60", "0.0"]
    assert ("Saturday", "12:00") not in cells
    assert sum(int(r[2]) for r in use[1:]) == 275 and sum(int(r[3]) for r in use[1:]) == 2789

    rooms = rows(lead.get(reverse("reports:csv", args=["rooms"]), WEEK))
    assert rooms == [
        ["Room", "Booked minutes", "Opening minutes", "Share booked (%)"],
        ["CT 1", "185", "2550", "7.3"],
        ["MR 1", "90", "239", "37.7"],
    ]

    waiting = rows(lead.get(reverse("reports:csv", args=["waiting"]), WEEK))
    assert waiting == [
        ["Modality", "Exams", "Median days", "90th percentile days"],
        ["CT", "5", "1.0", "11.2"],
        ["MR", "2", "15.5", "27.9"],
    ]

    turnaround = rows(lead.get(reverse("reports:csv", args=["turnaround"]), WEEK))
    assert turnaround[1:] == [
        ["CT 1", "3", "10.0", "14.0", "3", "25.0", "29.0"],
        ["MR 1", "2", "15.0", "15.0", "2", "40.0", "48.0"],
    ]
    response = lead.get(reverse("reports:csv", args=["turnaround"]), WEEK)
    assert response["Content-Disposition"] == 'attachment; filename="turnaround-20261102-20261108.csv"'


def test_a_room_and_a_modality_narrow_every_chart(lead, week):  # noqa: F811
    daily = rows(lead.get(reverse("reports:csv", args=["daily"]), {**WEEK, "room": week["mr"].pk}))
    assert [r[-1] for r in daily[1:]] == ["0", "2", "0", "0", "0", "0", "0"]
    waiting = rows(lead.get(reverse("reports:csv", args=["waiting"]), {**WEEK, "modality": "MR"}))
    assert [r[0] for r in waiting[1:]] == ["MR"]


@pytest.mark.parametrize("query, field, message", [
    ({"date_from": "2026-11-08", "date_to": "2026-11-02"}, "date_to", "The end date is before the start date."),
    ({"date_from": "2024-01-01", "date_to": "2026-11-02"}, "date_to", "Choose at most 731 days."),
    ({"date_from": "31/02/2026"}, "date_from", ""),
    ({"room": "999999"}, "room", "Select a valid choice."),
    ({"modality": "XX"}, "modality", "Select a valid choice."),
])  # fmt: skip
def test_a_wrong_choice_is_said_next_to_its_field(lead, query, field, message):
    response = lead.get(reverse("reports:report"), query)

    assert response.status_code == 400
    form = response.context["form"]
    assert field in form.errors
    assert message in " ".join(form.errors[field])
    html = response.content.decode()
    assert 'class="invalid-feedback d-block"' in html
    assert "chart-daily" not in html  # nothing counted from a choice that is not one
    csv_response = lead.get(reverse("reports:csv", args=["daily"]), query)
    assert csv_response.status_code == 400 and csv_response.content


def test_an_unknown_chart_is_not_found(lead):
    assert lead.get(reverse("reports:csv", args=["pie"]), WEEK).status_code == 404


def test_in_thai_the_page_reads_thai_with_buddhist_era_years(lead, week):  # noqa: F811
    lead.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"

    html = lead.get(
        reverse("reports:report"), {"date_from": "02/11/2569", "date_to": "08/11/2569"}
    ).content.decode()

    assert '<html lang="th">' in html
    assert "รายงาน" in html
    assert "2569" in html and not re.search(r"\b2026\b", html.split("<main", 1)[-1].split("</form>", 1)[-1])
    # The charts' own words are Thai: the legend, the weekdays of the heatmap.
    assert "ตรวจเสร็จแล้ว" in html and "ไม่มีเวลาทำการ" in html
    assert "วันจันทร์" in html
    # No English UI text left: every msgid shown has its Thai (the check of tests/scheduling/test_i18n.py).
    assert english_leftovers(visible_text(html)) == []
    daily = rows(
        lead.get(reverse("reports:csv", args=["daily"]), {"date_from": "02/11/2569", "date_to": "08/11/2569"})
    )
    assert daily[1][0] == "2026-11-02"  # the file is for machines: ISO dates


def test_on_sqlite_the_reports_read_without_taking_a_write_lock(week):  # noqa: F811
    # SQLite's transactions begin IMMEDIATE here (a write lock): a report must not hold one while the
    # front desk books. Inside a test's transaction an atomic block would show as a SAVEPOINT.
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reports import selectors
    from tests.reports.test_numbers import WEEK as FILTERS

    assert connection.vendor == "sqlite"
    with CaptureQueriesContext(connection) as queries:
        selectors.page(FILTERS)
        selectors.turnaround(FILTERS)
    assert queries.captured_queries
    assert [q["sql"] for q in queries.captured_queries if "SAVEPOINT" in q["sql"].upper()] == []
