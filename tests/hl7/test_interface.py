"""The Interface page: the inbound log searched and read field by field, reprocessing, and the outbound state.

Messages that matter arrive through hl7_link.inbound.receive, as the listener hands them over; the log
rows the search is tried on are written directly, so each filter is tried against rows it must leave out.
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from hl7_link.inbound import receive
from hl7_link.models import (
    AckCode,
    Charset,
    Message,
    OutboundMessage,
    OutboundState,
    Receiver,
    Sender,
)
from hl7_link.services import sender_save
from scheduling.models import Order, OrderEvent, OrderStatus
from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("hl7_link:message_list")
OUTBOUND = reverse("hl7_link:outbound")


@pytest.fixture
def it_admin(db):
    return UserFactory(username="it", roles=[ADMIN])


@pytest.fixture
def admin_page(client, it_admin):
    client.force_login(it_admin)
    return client


@pytest.fixture
def hosxp(db):
    """The hospital's HIS, which sends Thai names as TIS-620 bytes with MSH-18 empty."""
    return sender_save(sender=Sender(application="HOSXP", default_charset=Charset.TIS620))


def orm(
    control_id: str,
    *,
    code: str = "MRBRAIN",
    mrn: str = "HN000123",
    placer: str = "PL0001",
    family: str = "ใจดี",
    given: str = "สมชาย",
) -> str:
    """An ORM^O01 new order (IHE RAD-2, v2.3.1) from HOSXP with no time: it waits to be scheduled."""
    return "\r".join(
        [
            f"MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203100000||ORM^O01|{control_id}|P|2.3.1",
            f"PID|1||{mrn}^^^HOSPITAL^MR||{family}^{given}||19800517|M",
            "PV1|1|O|OPD^^^HOSPITAL",
            f"ORC|NW|{placer}^HOSXP|||||||20261203100000|||1234^Sukjai^Wichai",
            f"OBR|1|{placer}^HOSXP||{code}^MR Brain^L||||||||||||1234^Sukjai^Wichai||||||||MR|||||||Headache",
            "",
        ]
    )


def log_row(**fields) -> Message:
    values = {
        "sending_application": "HOSXP",
        "message_type": "ORM^O01",
        "version": "2.3.1",
        "raw": b"MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203||ORM^O01|X|P|2.3.1\r",
        "ack_code": AckCode.AA,
    }
    values.update(fields)
    return Message.objects.create(**values)


def listed(response) -> list[str]:
    """The control IDs of the messages on the page, in their order."""
    return [message.control_id for message in response.context["page"].messages]


# --- who may see it -------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client):
    response = client.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("role", [FRONT_DESK, TECHNOLOGIST])
def test_the_front_desk_and_technologists_are_refused(client, role):
    message = log_row(control_id="M1")
    receiver = Receiver.objects.create(name="HIS", host="127.0.0.1", port=9)
    client.force_login(UserFactory(username="someone", roles=[role]))

    for url in (
        LIST,
        reverse("hl7_link:message_detail", args=[message.pk]),
        OUTBOUND,
    ):
        assert client.get(url).status_code == 403
    assert client.post(reverse("hl7_link:message_reprocess", args=[message.pk])).status_code == 403
    assert client.post(reverse("hl7_link:receiver_retry", args=[receiver.pk])).status_code == 403
    message.refresh_from_db()
    assert message.attempts == 0 and message.processed_at is None


def test_the_admin_role_reads_the_interface_page(admin_page):
    log_row(control_id="M1")
    response = admin_page.get(LIST)
    assert response.status_code == 200
    assert listed(response) == ["M1"]


def test_reprocess_is_a_post_with_the_csrf_token(client, it_admin):
    message = log_row(control_id="M1")
    client.handler.enforce_csrf_checks = True
    client.force_login(it_admin)
    url = reverse("hl7_link:message_reprocess", args=[message.pk])
    assert client.get(url).status_code == 405
    assert client.post(url).status_code == 403
    message.refresh_from_db()
    assert message.attempts == 0


# --- search ---------------------------------------------------------------------------------------


def test_each_filter_leaves_the_other_messages_out(admin_page, hosxp):
    other = sender_save(sender=Sender(application="LABSYS"))
    now = timezone.now()
    patient = PatientFactory(mrn="HN777001")
    order = OrderFactory(
        placer_order_number="PL777", placer_authority="HOSXP", accession_number="26120300077"
    )
    log_row(sender=hosxp, control_id="A1", received_at=now - timedelta(days=3), patient=patient)
    log_row(sender=hosxp, control_id="A2", message_type="ADT^A08", received_at=now - timedelta(days=2))
    log_row(
        sender=hosxp,
        control_id="A3",
        ack_code=AckCode.AE,
        error="OBR-4: procedure code MRXYZ is not in the catalog",
        received_at=now - timedelta(days=1),
    )
    log_row(sender=other, sending_application="LABSYS", control_id="B1", received_at=now, order=order)
    log_row(sending_application="STRANGER", control_id="C1", ack_code=AckCode.AR, received_at=now)

    def search(**query) -> list[str]:
        response = admin_page.get(LIST, query)
        assert response.status_code == 200
        return sorted(listed(response))

    assert search() == ["A1", "A2", "A3", "B1", "C1"]
    assert search(sender=hosxp.pk) == ["A1", "A2", "A3"]
    assert search(control_id="A2") == ["A2"]
    assert search(control_id="C1") == ["C1"]  # from a sender we do not know, refused (AR)
    assert search(sender=other.pk, control_id="A2") == []
    assert search(message_type="adt") == ["A2"]
    assert search(message_type="ORM^O01") == ["A1", "A3", "B1", "C1"]
    assert search(ack_code="AE") == ["A3"]
    assert search(ack_code="AR") == ["C1"]
    two_days_ago = timezone.localdate(now - timedelta(days=2))
    assert search(date_from=two_days_ago.isoformat(), date_to=two_days_ago.isoformat()) == ["A2"]
    assert search(date_from=timezone.localdate(now).isoformat()) == ["B1", "C1"]
    assert search(q="hn777001") == ["A1"]  # the patient's MRN
    assert search(q="PL777") == ["B1"]  # the order's placer number
    assert search(q="26120300077") == ["B1"]  # its accession number
    assert search(q="MRXYZ") == ["A3"]  # the error
    assert search(q="nothing like it") == []
    assert search(sender=hosxp.pk, ack_code="AA", q="HN777001") == ["A1"]


def test_a_bad_search_says_so_and_lists_nothing(admin_page):
    log_row(control_id="A1")
    response = admin_page.get(LIST, {"date_from": "2026-12-05", "date_to": "2026-12-01"})
    assert listed(response) == []
    assert "The end date is before the start date." in response.content.decode()


def test_pages_run_newest_first_by_cursor_without_counting(admin_page, django_assert_max_num_queries):
    start = timezone.now() - timedelta(hours=1)
    for n in range(120):
        # Pairs received in the same second: the id breaks the tie, so no message is lost between pages.
        log_row(control_id=f"M{n:03d}", received_at=start + timedelta(seconds=n // 2))
    newest_first = [f"M{n:03d}" for n in range(119, -1, -1)]

    with django_assert_max_num_queries(8) as queries:
        first = admin_page.get(LIST)
    # The message log is never counted (the navigation's To schedule badge counts requested orders).
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert not any("hl7_link_message" in sql for sql in counts), counts
    assert listed(first) == newest_first[:50]
    older = first.context["page"].older
    assert first.context["page"].newer is None

    second = admin_page.get(LIST, {"before": older})
    assert listed(second) == newest_first[50:100]
    third = admin_page.get(LIST, {"before": second.context["page"].older})
    assert listed(third) == newest_first[100:]
    assert third.context["page"].older is None

    back = admin_page.get(LIST, {"after": third.context["page"].newer})
    assert listed(back) == newest_first[50:100]
    assert listed(admin_page.get(LIST, {"after": back.context["page"].newer})) == newest_first[:50]
    html = second.content.decode()
    assert (
        f"before={second.context['page'].older}" in html and f"after={second.context['page'].newer}" in html
    )


def test_the_default_page_reads_the_received_index_and_never_sorts(admin_page):
    """A million rows later, the first page is still read from the top of hl7_message_received_idx, and
    an ACK filter from hl7_message_ack_idx (sorting at most the ties of one received time)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from hl7_link.views import message_page, message_search

    log_row(control_id="M1")
    for found, index, sorts in (
        (message_search(), "hl7_message_received_idx", "TEMP B-TREE"),
        (message_search(ack_code="AE"), "hl7_message_ack_idx", "TEMP B-TREE FOR ORDER BY"),
    ):
        with CaptureQueriesContext(connection) as queries:
            message_page(found)
        (sql,) = [query["sql"] for query in queries.captured_queries if "ORDER BY" in query["sql"]]
        with connection.cursor() as cursor:
            cursor.execute(f"EXPLAIN QUERY PLAN {sql}")
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
        assert index in plan and sorts not in plan, plan


# --- one message ----------------------------------------------------------------------------------


def test_a_thai_order_is_shown_decoded_from_tis620_and_field_by_field(admin_page, hosxp):
    ack = receive(orm("TH0001").encode("tis-620"), peer="10.0.0.5")
    message = Message.objects.get(sender=hosxp, control_id="TH0001")

    html = admin_page.get(reverse("hl7_link:message_detail", args=[message.pk])).content.decode()

    assert "ใจดี" in html and "สมชาย" in html
    assert "<code>PID-5</code>" in html and "Patient Name" in html
    assert "<code>OBR-4</code>" in html and "Universal Service Identifier" in html
    assert "<code>OBR-16</code>" in html and "<code>OBR-31</code>" in html and "Reason for Study" in html
    assert "<code>MSH-10</code>" in html and "Message Control ID" in html
    # The identifier's components, split at ^.
    assert "HN000123" in html and "HOSPITAL" in html
    # The ACK as sent, in the sender's character set, with its MSA.
    assert ack.startswith(b"MSH")
    assert "<code>MSA-1</code>" in html and "Acknowledgment Code" in html
    assert "10.0.0.5" in html


def test_the_page_links_the_patient_and_the_order_a_message_touched(admin_page, hosxp):
    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR")
    receive(orm("TH0002").encode("tis-620"))
    message = Message.objects.get(control_id="TH0002")
    assert message.ack_code == AckCode.AA, message.error

    html = admin_page.get(reverse("hl7_link:message_detail", args=[message.pk])).content.decode()

    assert message.order.get_absolute_url() in html and message.order.accession_number in html
    assert message.patient.get_absolute_url() in html


def test_reprocessing_after_the_procedure_is_added_books_the_order(admin_page, hosxp):
    receive(orm("TH0003", placer="PL0003").encode("tis-620"))
    message = Message.objects.get(control_id="TH0003")
    assert message.ack_code == AckCode.AE
    assert "MRBRAIN" in message.error
    assert not Order.objects.filter(placer_order_number="PL0003").exists()
    page = admin_page.get(reverse("hl7_link:message_detail", args=[message.pk])).content.decode()
    assert "MRBRAIN" in page and 'id="message-error"' in page

    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR")
    response = admin_page.post(reverse("hl7_link:message_reprocess", args=[message.pk]), follow=True)

    shown = [str(m) for m in get_messages(response.wsgi_request)] or [
        line for line in response.content.decode().splitlines() if "Reprocessed" in line
    ]
    assert any("Reprocessed: the new ACK is AA." in text for text in shown), shown
    assert response.redirect_chain[-1][0] == reverse("hl7_link:message_detail", args=[message.pk])
    message.refresh_from_db()
    assert message.ack_code == AckCode.AA and message.attempts >= 2
    order = Order.objects.get(placer_order_number="PL0003")
    assert order.status == OrderStatus.REQUESTED and order.patient.family_name == "ใจดี"
    assert message.order == order
    assert b"MSA|AA|TH0003" in bytes(message.ack)


def test_an_accepted_message_is_not_applied_again(admin_page, hosxp):
    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="MR")
    receive(orm("TH0004", placer="PL0004").encode("tis-620"))
    message = Message.objects.get(control_id="TH0004")
    assert message.ack_code == AckCode.AA, message.error
    url = reverse("hl7_link:message_reprocess", args=[message.pk])
    assert url not in admin_page.get(reverse("hl7_link:message_detail", args=[message.pk])).content.decode()

    response = admin_page.post(url, follow=True)

    assert "it is not applied a second time" in response.content.decode()
    assert Order.objects.filter(placer_order_number="PL0004").count() == 1
    message.refresh_from_db()
    assert message.attempts == 1


def test_a_message_that_could_not_be_parsed_is_still_shown(admin_page):
    message = log_row(control_id="", message_type="", raw=b"\x00\xffnot hl7 at all", ack_code=AckCode.AR)
    response = admin_page.get(reverse("hl7_link:message_detail", args=[message.pk]))
    assert response.status_code == 200
    assert "not hl7 at all" in response.content.decode()


# --- outbound -------------------------------------------------------------------------------------


@pytest.fixture
def booked(book):
    """A booked order and the BOOKED event it put on the order-event stream."""
    order = book()
    return order, OrderEvent.objects.filter(order=order).latest("id")


def test_the_outbound_section_shows_each_receiver_and_a_refused_message(admin_page, booked):
    order, event = booked
    his = Receiver.objects.create(
        name="HOSxP gateway",
        host="10.1.1.20",
        port=2576,
        last_event_id=event.pk,
        failures=3,
        next_attempt_at=timezone.now() + timedelta(minutes=4),
        last_error="Connection refused",
    )
    Receiver.objects.create(
        name="Old HIS", host="10.1.1.21", port=2575, enabled=False, last_event_id=event.pk
    )
    OutboundMessage.objects.create(
        receiver=his,
        event=event,
        order=order,
        control_id="RIS000042",
        message_type="SIU^S12",
        text="MSH|^~\\&|RIS|RADIOLOGY|HIS||20261203||SIU^S12|RIS000042|P|2.3.1\r",
        state=OutboundState.REJECTED,
        attempts=1,
        ack_code="AE",
        last_error="AE: patient HN000123 unknown",
    )

    response = admin_page.get(OUTBOUND)

    html = response.content.decode()
    assert response.status_code == 200
    assert "HOSxP gateway" in html and "10.1.1.20:2576" in html and "Old HIS" in html
    assert "Connection refused" in html
    assert "RIS000042" in html and "AE: patient HN000123 unknown" in html and "SIU^S12" in html
    assert order.accession_number in html
    shown = {receiver.name: receiver for receiver in response.context["receivers"]}
    assert shown["HOSxP gateway"].pending == 0 and shown["HOSxP gateway"].failures == 3


class OneAckListener:
    """A real MLLP peer on a free port: takes frames, keeps what it got, answers each with AA."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.received: list[bytes] = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        self.server.settimeout(10)
        try:
            connection, _address = self.server.accept()
        except OSError:
            return
        with connection:
            buffer = b""
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                buffer += chunk
                while b"\x1c\r" in buffer:
                    frame, buffer = buffer.split(b"\x1c\r", 1)
                    payload = frame.lstrip(b"\x0b")
                    self.received.append(payload)
                    control_id = payload.split(b"\r")[0].split(b"|")[9]
                    ack = (
                        b"MSH|^~\\&|HIS||RIS||20261203||ACK|A" + control_id + b"|P|2.3.1\r"
                        b"MSA|AA|" + control_id + b"\r"
                    )
                    connection.sendall(b"\x0b" + ack + b"\x1c\r")

    def close(self) -> None:
        self.server.close()


def test_retry_now_sends_the_waiting_message_before_the_backoff_ends(admin_page, booked, after_commit):
    order, event = booked
    listener = OneAckListener()
    try:
        his = Receiver.objects.create(
            name="HIS",
            host="127.0.0.1",
            port=listener.port,
            last_event_id=event.pk,
            failures=4,
            next_attempt_at=timezone.now() + timedelta(minutes=5),
            last_error="Connection refused",
        )
        waiting = OutboundMessage.objects.create(
            receiver=his,
            event=event,
            order=order,
            control_id="RIS000077",
            message_type="SIU^S12",
            text="MSH|^~\\&|RIS|RADIOLOGY|HIS||20261203||SIU^S12|RIS000077|P|2.3.1\rSCH|1\r",
            attempts=4,
            last_error="Connection refused",
        )
        page = admin_page.get(OUTBOUND).content.decode()
        assert "RIS000077" in page  # waiting after failed attempts

        with after_commit():  # the delivery is queued after the request's commit
            response = admin_page.post(reverse("hl7_link:receiver_retry", args=[his.pk]), follow=True)

        assert response.redirect_chain[-1][0] == OUTBOUND
        assert any(b"|RIS000077|" in payload for payload in listener.received), listener.received
        waiting.refresh_from_db()
        assert waiting.state == OutboundState.SENT
    finally:
        listener.close()


def test_times_are_shown_in_the_clinics_time_zone(admin_page):
    received = timezone.make_aware(datetime(2026, 12, 3, 1, 30), timezone.get_fixed_timezone(0))
    log_row(control_id="TZ1", received_at=received)
    html = admin_page.get(LIST).content.decode()
    assert "08:30" in html  # Asia/Bangkok, UTC+7
