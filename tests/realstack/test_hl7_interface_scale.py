"""The Interface page's log at a million messages on PostgreSQL: each page reads a page of an index.

A million log rows over a year (5 % refused with AE, 1 % AR, two senders, some linked to patients and
orders) are inserted with SQL and analysed. Each search runs as the page runs it (views.message_page)
and its plan is read back with EXPLAIN ANALYZE: the rows the scans of the log produced must stay near a
page, not the table, and no COUNT is ever issued.

Run with the real-stack settings: pytest --ds=ris.settings_realstack -m realstack
tests/hl7/test_interface_scale.py (DATABASE_URL naming a PostgreSQL database).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from hl7_link.models import Message, Sender
from hl7_link.services import sender_save
from hl7_link.views import MESSAGES_PER_PAGE, message_page, message_search
from tests.factories import OrderFactory, PatientFactory
from tests.realstack.conftest import rows_for_the_module
from tests.realstack.plans import nodes

# The million rows are made once for the module and the tests only read them (`million`).
pytestmark = [pytest.mark.realstack, pytest.mark.django_db]

MESSAGES = 1_000_000
# Message i: received i * 30 s after a year ago; refused with AE every 20th, AR every 100th (unknown
# sender, no sender row); every 1000th linked to one of the patients and orders made below.
FILL = """
INSERT INTO hl7_link_message (sender_id, sending_application, sending_facility, control_id, message_type,
  version, charset, raw, peer, received_at, processed_at, ack_code, ack, error, patient_id, order_id,
  attempts)
SELECT CASE WHEN i %% 100 = 0 THEN NULL ELSE (%(senders)s)[1 + i %% 2] END,
  CASE WHEN i %% 100 = 0 THEN 'STRANGER' WHEN i %% 2 = 0 THEN 'HOSXP' ELSE 'LABSYS' END, 'HOSPITAL',
  'C' || i, CASE WHEN i %% 3 = 0 THEN 'ADT^A08' ELSE 'ORM^O01' END, '2.3.1', '',
  convert_to('MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203||ORM^O01|C' || i || '|P|2.3.1' || chr(13)
    || 'PID|1||HN' || i || '^^^HOSPITAL^MR||Jaidee^Somchai||19800517|M' || chr(13), 'UTF8'),
  '10.0.0.5', %(start)s::timestamptz + i * interval '30 seconds', %(start)s::timestamptz + i * interval '30 seconds',
  CASE WHEN i %% 100 = 0 THEN 'AR' WHEN i %% 20 = 0 THEN 'AE' ELSE 'AA' END, ''::bytea,
  CASE WHEN i %% 100 = 0 THEN 'Sending application STRANGER is not known'
       WHEN i %% 20 = 0 THEN 'Procedure code MR' || (i %% 7) || ' (OBR-4) is not in the catalog' ELSE '' END,
  CASE WHEN i %% 1000 = 1 THEN (%(patients)s)[1 + (i / 1000) %% array_length(%(patients)s, 1)] END,
  CASE WHEN i %% 1000 = 1 THEN (%(orders)s)[1 + (i / 1000) %% array_length(%(orders)s, 1)] END,
  1
FROM generate_series(0, {messages} - 1) AS i
"""


@pytest.fixture(scope="module")
def million(django_db_setup, django_db_blocker) -> Iterator[dict]:
    """The log filled once for the module's tests, which only read it: inserting and analysing a million
    rows takes tens of seconds (tests.realstack.conftest.rows_for_the_module)."""
    if connection.vendor != "postgresql":
        message = "the scale test of the Interface page needs PostgreSQL (--ds=ris.settings_realstack)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    yield from rows_for_the_module(django_db_blocker, _fill)


def _fill() -> dict:
    senders = [sender_save(sender=Sender(application=name)) for name in ("HOSXP", "LABSYS")]
    patients = [PatientFactory(mrn=f"HN9{i:05d}") for i in range(50)]
    orders = [
        OrderFactory(patient=patients[i], placer_order_number=f"PL{i:05d}", placer_authority="HOSXP")
        for i in range(50)
    ]
    start = timezone.now() - timedelta(days=365)
    with connection.cursor() as cursor:
        cursor.execute(
            FILL.format(messages=MESSAGES),
            {
                "senders": [s.pk for s in senders],
                "patients": [p.pk for p in patients],
                "orders": [o.pk for o in orders],
                "start": start,
            },
        )
        cursor.execute("VACUUM ANALYZE hl7_link_message")
    return {"senders": senders, "patients": patients, "orders": orders, "start": start}


def page_plan(found, **cursor) -> tuple[list[Message], list[dict], list[str]]:
    """The page as the view builds it, the plan nodes of its log query, and every SQL it ran."""
    with CaptureQueriesContext(connection) as queries:
        page = message_page(found, **cursor)
    statements = [query["sql"] for query in queries.captured_queries]
    (sql,) = [s for s in statements if "ORDER BY" in s and "hl7_link_message" in s]
    with connection.cursor() as db:
        db.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}")
        root = db.fetchone()[0][0]["Plan"]
    return page, list(nodes(root)), statements


def log_rows_read(plan_nodes: list[dict]) -> int:
    return sum(
        n["Actual Rows"] * n.get("Actual Loops", 1) + n.get("Rows Removed by Filter", 0)
        for n in plan_nodes
        if n.get("Relation Name") == "hl7_link_message"
    )


def assert_bounded(plan_nodes: list[dict], statements: list[str], limit: int) -> None:
    assert not any("COUNT(" in s.upper() for s in statements), statements
    assert not any(
        n["Node Type"] == "Seq Scan" and n.get("Relation Name") == "hl7_link_message" for n in plan_nodes
    )
    assert log_rows_read(plan_nodes) <= limit, plan_nodes


def test_the_first_page_and_a_page_deep_in_the_year_read_a_page(million):
    page, plan_nodes, statements = page_plan(message_search())
    assert len(page.messages) == MESSAGES_PER_PAGE and page.messages[0].control_id == f"C{MESSAGES - 1}"
    assert_bounded(plan_nodes, statements, MESSAGES_PER_PAGE + 1)

    deep = Message.objects.get(control_id="C500000")
    # From the cursor: the page, the row after it (is there more?) and the cursor's own row, skipped.
    page, plan_nodes, statements = page_plan(message_search(), before=deep.pk)
    assert page.messages[0].control_id == "C499999"
    assert_bounded(plan_nodes, statements, MESSAGES_PER_PAGE + 2)
    page, plan_nodes, statements = page_plan(message_search(), after=deep.pk)
    assert page.messages[-1].control_id == "C500001"
    assert_bounded(plan_nodes, statements, MESSAGES_PER_PAGE + 2)


def test_the_refused_messages_of_a_day_read_their_index(million):
    day = timezone.localdate(million["start"] + timedelta(days=100))
    found = message_search(ack_code="AE", date_from=day, date_to=day)
    page, plan_nodes, statements = page_plan(found)
    # A day holds 2,880 messages, 144 of them AE: the page is the latest 50 of those.
    assert len(page.messages) == MESSAGES_PER_PAGE and {m.ack_code for m in page.messages} == {"AE"}
    assert_bounded(plan_nodes, statements, 200)


def test_a_control_id_of_one_sender_is_found_by_its_unique_index(million):
    found = message_search(sender=million["senders"][0], control_id="C123456")
    page, plan_nodes, statements = page_plan(found)
    assert [m.control_id for m in page.messages] == ["C123456"]
    assert_bounded(plan_nodes, statements, 5)


def test_a_control_id_of_any_sender_known_or_not_is_found_without_walking_the_log(million):
    page, plan_nodes, statements = page_plan(message_search(control_id="C654321"))
    assert [m.control_id for m in page.messages] == ["C654321"]
    assert_bounded(plan_nodes, statements, 5)
    # An unknown sender's (refused with AR, no sender row): among the 10,000 refused, not the million.
    page, plan_nodes, statements = page_plan(message_search(control_id="C654300"))
    assert [m.sending_application for m in page.messages] == ["STRANGER"]
    assert_bounded(plan_nodes, statements, 10_100)


def test_an_mrn_or_a_placer_number_finds_the_messages_by_their_links(million):
    page, plan_nodes, statements = page_plan(message_search(q="hn900003"))
    assert page.messages and all(m.patient_id == million["patients"][3].pk for m in page.messages)
    # The patient's messages (20) and the refused ones whose error might hold the text.
    assert_bounded(plan_nodes, statements, 60_000)

    page, plan_nodes, statements = page_plan(message_search(q="PL00007"))
    assert page.messages and all(m.order_id == million["orders"][7].pk for m in page.messages)
