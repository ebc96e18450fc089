"""A no-show told to the HIS: SIU^S26 to an appointment receiver, an order status update (ORC-5 CA with
ORC-16 NOSHOW) to an order receiver; sent over MLLP to a real listener (python-hl7's, tests/hl7/test_outbox.py).
And the HIS cancelling a no-show afterwards is answered as a cancellation already done."""

from __future__ import annotations

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from hl7_link.inbound import receive
from hl7_link.models import OUTBOUND_KINDS, AppointmentStyle, Hl7Version, Receiver
from hl7_link.outbox import outbox_deliver
from scheduling import services
from scheduling.models import Order, OrderEventKind, OrderStatus
from tests.hl7.conftest import hl7_ts, obr, orc, orm, parse_ack, pid, tomorrow
from tests.hl7.test_outbox import book, field, his, make_receiver  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db


def no_show(order, user, after_commit):
    with time_machine.travel(order.scheduled_end + timedelta(minutes=10), tick=False), after_commit():
        return services.order_no_show(order=order, user=user)


def test_an_siu_receiver_gets_s26_with_the_noshow_status(his, book, user, after_commit):  # noqa: F811
    receiver = make_receiver(his)
    order = book(9, placer_order_number="PL9", placer_authority="HOSXP")
    no_show(order, user, after_commit)

    assert outbox_deliver(receiver) == 2

    assert his.types == ["SIU^S12", "SIU^S26"]
    s26 = his.messages[1]
    assert field(s26, "SCH", 1, 1, 1) == "PL9"
    assert field(s26, "SCH", 2, 1, 1) == order.accession_number
    assert field(s26, "SCH", 6, 1, 1) == "S26"
    assert field(s26, "SCH", 6, 1, 2) == "Notification that patient did not show up for scheduled appointment"
    assert field(s26, "SCH", 25) == "Noshow"
    # The missed appointment's own time, not the moment it was marked.
    assert field(s26, "SCH", 11, 1, 4) == timezone.localtime(tomorrow(9)).strftime("%Y%m%d%H%M%S%z")
    assert field(s26, "AIL", 3, 1, 1) == order.room.ae_title


@pytest.mark.parametrize(
    "version, message_type",
    [(Hl7Version.V231, "ORM^O01"), (Hl7Version.V251, "OMG^O19^OMG_O19")],
)
def test_an_order_receiver_gets_a_status_update_that_is_not_a_cancellation(
    his,  # noqa: F811
    book,  # noqa: F811
    user,
    after_commit,
    version,
    message_type,
):
    receiver = make_receiver(his, version=version, appointment_style=AppointmentStyle.ORDER)
    no_show(book(9), user, after_commit)

    assert outbox_deliver(receiver) == 2

    assert his.types == [message_type, message_type]
    update = his.messages[1]
    assert field(update, "ORC", 1) == "SC" and field(update, "ORC", 5) == "CA"
    assert [field(update, "ORC", 16, 1, n) for n in (1, 2)] == ["NOSHOW", "No show"]


def test_a_receiver_that_did_not_choose_no_shows_is_not_told(his, book, user, after_commit):  # noqa: F811
    kinds = [str(kind) for kind in OUTBOUND_KINDS if kind != OrderEventKind.NO_SHOW]
    receiver = make_receiver(his, kinds=kinds)
    no_show(book(9), user, after_commit)

    assert outbox_deliver(receiver) == 1
    assert his.types == ["SIU^S12"]


def test_a_new_receiver_is_told_of_no_shows():
    assert str(OrderEventKind.NO_SHOW) in Receiver().kinds


def test_the_his_cancelling_a_no_show_is_answered_as_done(hl7_sender, hl7_catalog, user):
    receive(orm(pid(mrn="HN1"), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1")))
    order = Order.objects.get(placer_order_number="PL1")
    with time_machine.travel(order.scheduled_end + timedelta(minutes=10), tick=False):
        services.order_no_show(order=order, user=user)

    answer = parse_ack(receive(orm(orc(control="CA", placer="PL1"))))

    assert (answer.code, answer.value("ORC-1"), answer.value("ORC-5")) == ("AA", "CR", "CA")
    assert Order.objects.get(pk=order.pk).status == OrderStatus.NO_SHOW
