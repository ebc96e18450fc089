"""Requested orders (from the hospital system, no room or time yet) and the worklist export: never a
file or an item, in either layout, by the task, the reconcile or the pages; once booked, the file."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from pydicom import dcmread

from scheduling import services
from scheduling.models import Order, OrderStatus
from tests.factories import OrderFactory, ThaiPatientFactory
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import worklists_reconcile
from worklist_export.selectors import order_export_state, worklist_problem_orders
from worklist_export.services import order_sync_worklist

pytestmark = pytest.mark.django_db


def wl_files(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.wl"))


def waiting(**fields) -> Order:
    """A requested order written straight to the database, for the export's own code paths."""
    return OrderFactory(
        status=OrderStatus.REQUESTED, room=None, scheduled_start=None, scheduled_end=None, **fields
    )


@pytest.fixture(params=["orthanc", "wlmscpfs"])
def folder(request, worklist_dir, settings):
    """The test's worklist folder in each layout: flat (Orthanc), and one folder per called AE."""
    settings.WORKLIST_LAYOUT = request.param
    settings.WORKLIST_CALLED_AE = "WORKLIST"
    return worklist_dir


@pytest.fixture
def request_order(patient, procedure, user, tomorrow_at, after_commit):
    """request_order(**changes) -> an order requested through the service the HL7 link calls, with
    the export's task run after commit as for any change."""

    def make(**changes) -> Order:
        args = {"patient": patient, "procedure": procedure, "user": user, "requested_start": tomorrow_at(9)}
        args.update(changes)
        with after_commit():
            return services.order_request(**args)

    return make


def test_syncing_a_requested_order_writes_nothing_and_records_nothing(folder):
    order = waiting()

    assert order_sync_worklist(order_id=order.pk) == "absent"

    assert wl_files(folder) == []
    assert not WorklistEntry.objects.filter(order=order).exists()


def test_an_order_requested_through_the_service_gets_no_file(folder, request_order):
    order = request_order()

    assert order.status == OrderStatus.REQUESTED
    assert wl_files(folder) == []
    assert not WorklistEntry.objects.filter(order=order).exists()


def test_booking_a_requested_order_puts_it_on_the_worklist(
    worklist_dir, request_order, room, user, tomorrow_at, after_commit
):
    order = request_order(patient=ThaiPatientFactory())

    with after_commit():
        services.order_schedule(order=order, room=room, start=tomorrow_at(10), user=user)

    item = dcmread(worklist_dir / f"{order.accession_number}.wl")
    assert item.PatientName == "ใจดี^สมชาย"
    step = item.ScheduledProcedureStepSequence[0]
    assert (step.ScheduledStationAETitle, step.ScheduledProcedureStepStartTime) == ("CT01", "100000")


def test_cancelling_a_requested_order_leaves_the_folder_alone(folder, request_order, user, after_commit):
    order = request_order()

    with after_commit():
        services.order_cancel(order=order, reason="Ordered twice", user=user)

    assert wl_files(folder) == []


def test_the_reconcile_writes_the_booked_and_leaves_the_requested_out(folder, order):
    waiting(accession_number="REQ1")

    report = worklists_reconcile()

    assert report.counts()["missing"] == 1
    assert report.counts()["failed"] == 0
    assert [p.rsplit("/", 1)[-1] for p in wl_files(folder)] == [f"{order.accession_number}.wl"]
    assert worklists_reconcile(check=True).has_differences is False


def test_the_reconcile_removes_a_file_named_after_a_requested_order(folder, settings):
    waiting(accession_number="REQ2")
    path = "WORKLIST/REQ2.wl" if settings.WORKLIST_LAYOUT == "wlmscpfs" else "REQ2.wl"
    stray = folder / path
    stray.parent.mkdir(exist_ok=True)
    stray.write_bytes(b"not from us")

    report = worklists_reconcile()

    assert [(line.kind, line.path) for line in report.lines if line.kind == "stale"] == [("stale", path)]
    # Described as an order of the RIS: its procedure, patient and status, no room or time needed.
    [line] = [line for line in report.lines if line.kind == "stale"]
    assert "requested" in line.detail
    assert not stray.exists()


def test_the_problems_page_leaves_an_old_requested_order_out(worklist_dir, clerk, settings):
    order = waiting()
    # Waiting much longer than the export's grace period: still nothing for the export to do.
    Order.objects.filter(pk=order.pk).update(updated_at=timezone.now() - timedelta(hours=3))

    assert order not in worklist_problem_orders()
    response = clerk.get(reverse("worklist_export:problems"))
    assert response.status_code == 200
    assert order.accession_number not in response.content.decode()


def test_the_order_page_says_no_file_and_not_export_pending(worklist_dir):
    order = waiting()

    state = order_export_state(order=order)

    assert (state.entry, state.pending, state.file_path) == (None, False, None)


@pytest.mark.parametrize("view", ["worklist_export:order_file", "worklist_export:order_dump"])
def test_the_file_and_its_contents_are_a_404_saying_so(worklist_dir, clerk, view):
    order = waiting()

    response = clerk.get(reverse(view, args=[order.pk]))

    assert response.status_code == 404
    assert "has no worklist file" in response.content.decode()
