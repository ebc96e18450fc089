"""The order-event stream (scheduling.events): every change writes its events in its own transaction,
and the consumers (the worklist export first) hear of them only after commit."""

import ast
import logging
from datetime import timedelta
from pathlib import Path
from unittest import mock

import pytest
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Max

from scheduling import events, services
from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus, Priority
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory

pytestmark = pytest.mark.django_db


def last_event_id() -> int:
    return OrderEvent.objects.aggregate(last=Max("id"))["last"] or 0


def events_since(mark: int) -> list[OrderEvent]:
    return list(OrderEvent.objects.filter(id__gt=mark).order_by("id"))


def test_a_booking_writes_one_event(book, user):
    order = book()

    [event] = OrderEvent.objects.all()

    assert (event.order, event.kind, event.status, event.version, event.actor) == (
        order,
        OrderEventKind.BOOKED,
        OrderStatus.SCHEDULED,
        1,
        user,
    )


def _reschedule(order, user, tomorrow_at):
    return services.order_reschedule(order=order, start=tomorrow_at(14), user=user)


def _details(order, user, tomorrow_at):
    return services.order_update_details(order=order, user=user, priority=Priority.STAT)


def _arrive(order, user, tomorrow_at):
    return services.order_arrive(order=order, user=user)


def _start(order, user, tomorrow_at):
    return services.order_start(order=order, user=user)


def _complete(order, user, tomorrow_at):
    return services.order_complete(order=order, user=user)


def _cancel(order, user, tomorrow_at):
    return services.order_cancel(order=order, reason="Patient unwell", user=user)


def _discontinue(order, user, tomorrow_at):
    return services.order_discontinue(order=order, reason="Contrast reaction", user=user)


@pytest.mark.parametrize(
    "before, change, kind, status",
    [
        ([], _reschedule, OrderEventKind.RESCHEDULED, OrderStatus.SCHEDULED),
        ([], _details, OrderEventKind.DETAILS_CHANGED, OrderStatus.SCHEDULED),
        ([], _arrive, OrderEventKind.ARRIVED, OrderStatus.ARRIVED),
        ([_arrive], _start, OrderEventKind.STARTED, OrderStatus.IN_PROGRESS),
        ([_arrive, _start], _complete, OrderEventKind.COMPLETED, OrderStatus.COMPLETED),
        ([], _cancel, OrderEventKind.CANCELLED, OrderStatus.CANCELLED),
        ([_arrive, _start], _discontinue, OrderEventKind.DISCONTINUED, OrderStatus.ARRIVED),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_each_change_of_an_order_writes_one_event(book, user, tomorrow_at, before, change, kind, status):
    order = book()
    for step in before:
        order = step(order, user, tomorrow_at)
    mark = last_event_id()

    changed = change(order, user, tomorrow_at)

    [event] = events_since(mark)
    changed.refresh_from_db()
    assert (event.order_id, event.kind, event.status, event.actor) == (order.pk, kind, status, user)
    assert event.version == changed.version == order.version + 1


def test_a_patient_update_writes_one_event_per_active_order(book, user, patient, tomorrow_at):
    active = [book(start=tomorrow_at(9)), book(start=tomorrow_at(10) + timedelta(days=40))]
    arrived = services.order_arrive(order=book(start=tomorrow_at(11)), user=user)
    services.order_cancel(order=book(start=tomorrow_at(12)), reason="Duplicate", user=user)
    done = book(start=tomorrow_at(13))
    for step in (services.order_arrive, services.order_start, services.order_complete):
        done = step(order=done, user=user)
    book(patient=PatientFactory(), start=tomorrow_at(14))  # someone else's
    mark = last_event_id()

    services.patient_update(patient=patient, user=user, phone="0812345678")

    written = events_since(mark)
    assert sorted(e.order_id for e in written) == sorted([*(o.pk for o in active), arrived.pk])
    assert {(e.kind, e.actor_id) for e in written} == {(OrderEventKind.PATIENT_CHANGED, user.pk)}
    assert {e.order_id: e.status for e in written}[arrived.pk] == OrderStatus.ARRIVED


def test_a_patient_without_orders_changes_without_events(user):
    services.patient_update(patient=PatientFactory(), user=user, phone="0812345678")

    assert not OrderEvent.objects.exists()


@pytest.mark.parametrize("what", ["room", "procedure"])
def test_a_room_or_procedure_save_writes_one_event_per_active_order(
    book, user, room, procedure, tomorrow_at, what
):
    active = [book(start=tomorrow_at(9)), book(start=tomorrow_at(9) + timedelta(days=40))]
    services.order_cancel(order=book(start=tomorrow_at(11)), reason="Duplicate", user=user)
    if what == "room":
        book(room=RoomFactory(name="CT 2", ae_title="CT02"), start=tomorrow_at(15))
    else:
        book(procedure=ProcedureFactory(code_value="CTCHEST", code_meaning="CT Chest"), start=tomorrow_at(15))
    mark = last_event_id()

    if what == "room":
        room.location = "Building B"
        services.room_save(room=room)
        kind = OrderEventKind.ROOM_CHANGED
    else:
        procedure.code_meaning = "CT Head, new protocol"
        services.procedure_save(procedure=procedure)
        kind = OrderEventKind.PROCEDURE_CHANGED

    written = events_since(mark)
    assert sorted(e.order_id for e in written) == [o.pk for o in active]
    # An admin's edit of the catalog: no clerk changed these orders.
    assert {(e.kind, e.actor_id) for e in written} == {(kind, None)}


@pytest.mark.parametrize("refusal", ["slot taken", "in the past", "closed"])
def test_a_refused_booking_writes_no_event(book, user, room, procedure, tomorrow_at, refusal):
    book()
    mark = last_event_id()
    start = {
        "slot taken": tomorrow_at(9),
        "in the past": tomorrow_at(9) - timedelta(days=2),
        "closed": tomorrow_at(20),
    }[refusal]

    with pytest.raises(ValidationError):
        services.order_book(patient=PatientFactory(), procedure=procedure, room=room, start=start, user=user)

    assert events_since(mark) == []
    assert Order.objects.count() == 1


def test_a_refused_change_writes_no_event(book, user):
    order = book()
    mark = last_event_id()

    with pytest.raises(ValidationError):
        services.order_complete(order=order, user=user)  # never arrived
    with pytest.raises(ValidationError):
        services.order_cancel(order=order, reason=" ", user=user)
    with pytest.raises(ValidationError):
        services.order_arrive(order=order, user=user, if_version=order.version + 1)

    assert events_since(mark) == []


# --- the consumers -------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_the_worklist_export_hears_of_a_change_only_when_it_commits(
    user, room, procedure, patient, tomorrow_at
):
    with mock.patch("worklist_export.tasks.sync_order_enqueue") as enqueue:
        with transaction.atomic():
            order = services.order_book(
                patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
            )
            assert enqueue.call_args_list == []
        assert enqueue.call_args_list == [mock.call(order.pk)]

        enqueue.reset_mock()
        with pytest.raises(RuntimeError), transaction.atomic():
            services.order_arrive(order=order, user=user)
            raise RuntimeError("the rest of the request failed")

    assert enqueue.call_args_list == []
    assert list(OrderEvent.objects.values_list("kind", flat=True)) == [OrderEventKind.BOOKED]


def test_a_consumer_gets_the_events_its_transaction_committed(
    book, patient, user, tomorrow_at, after_commit, monkeypatch
):
    orders = [book(start=tomorrow_at(9)), book(start=tomorrow_at(10))]
    calls = []
    monkeypatch.setitem(events._consumers, "recorder", lambda batch: calls.append(list(batch)))

    with after_commit():
        services.patient_update(patient=patient, user=user, phone="0812345678")

    [batch] = calls
    assert [e.order_id for e in batch] == [o.pk for o in orders]
    assert [e.id for e in batch] == [
        e.id for e in OrderEvent.objects.filter(kind=OrderEventKind.PATIENT_CHANGED)
    ]


def test_a_patient_update_queues_the_file_of_each_active_order(
    book, patient, user, tomorrow_at, after_commit
):
    mine = [book(start=tomorrow_at(9)), book(start=tomorrow_at(9) + timedelta(days=40))]
    services.order_cancel(order=book(start=tomorrow_at(11)), reason="Duplicate", user=user)

    with mock.patch("worklist_export.tasks.sync_order_enqueue") as enqueue, after_commit():
        services.patient_update(patient=patient, user=user, phone="0812345678")

    # The patient's own change: every active order is queued; the task knows which belong on the worklist.
    assert [c.args[0] for c in enqueue.call_args_list] == sorted(o.pk for o in mine)


@pytest.mark.parametrize("what", ["room", "procedure"])
def test_a_catalog_edit_queues_only_the_orders_on_the_worklist_now(
    book, user, room, procedure, tomorrow_at, after_commit, what
):
    on_worklist = book()
    book(start=tomorrow_at(9) + timedelta(days=40))  # beyond the window: exported when it enters it
    with after_commit():
        services.order_cancel(order=book(start=tomorrow_at(11)), reason="Duplicate", user=user)

    with mock.patch("worklist_export.tasks.sync_order_enqueue") as enqueue, after_commit():
        if what == "room":
            services.room_save(room=room)
        else:
            services.procedure_save(procedure=procedure)

    assert [c.args[0] for c in enqueue.call_args_list] == [on_worklist.pk]


def test_a_failing_consumer_breaks_neither_the_change_nor_the_other_consumers(
    worklist_dir, user, room, procedure, patient, tomorrow_at, after_commit, monkeypatch, caplog
):
    def broken(batch):
        raise ValueError("HL7 link misconfigured")

    heard = []
    # The broken one first: those after it must still run.
    monkeypatch.setattr(
        events, "_consumers", {"broken": broken, **events._consumers, "recorder": heard.extend}
    )

    with caplog.at_level(logging.ERROR, logger="scheduling.events"), after_commit():
        order = services.order_book(
            patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
        )

    assert Order.objects.filter(pk=order.pk, status=OrderStatus.SCHEDULED).exists()
    assert (worklist_dir / f"{order.accession_number}.wl").is_file()
    assert [e.order_id for e in heard] == [order.pk]
    [record] = [r for r in caplog.records if r.name == "scheduling.events"]
    assert "broken" in record.getMessage() and record.exc_info[0] is ValueError


def test_the_worklist_export_is_subscribed_by_its_app():
    from worklist_export.tasks import worklist_events_consumer

    assert events._consumers["worklist_export"] is worklist_events_consumer


def test_the_scheduling_services_import_nothing_of_the_worklist_export():
    import scheduling.services

    source = Path(scheduling.services.__file__).read_text()
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module)
    assert not {name for name in imported if name.split(".")[0] == "worklist_export"}
    # Nor by name, through importlib or a string path to a task.
    assert "worklist_export" not in source
