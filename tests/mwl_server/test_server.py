"""serve_dicom's listener over the network (a thread of this process, so it sees the test database)."""

import re
import socket

import pytest
from django.core.management import CommandError, call_command
from django.urls import reverse
from django.utils import timezone

from scheduling.models import CharacterSet, OrderStatus
from tests.factories import RoomFactory, ThaiPatientFactory
from tests.mwl_server.dicom import (
    echo,
    find,
    mpps_dataset,
    mpps_set_dataset,
    n_create,
    n_set,
    new_uid,
    running_server,
    worklist_query,
)

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def port(settings):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    with running_server() as port:
        yield port


def test_c_echo_answers_a_known_caller(port, room):
    assert echo(port) == "ok"
    assert echo(port, calling=room.ae_title) == "ok"


def test_an_unknown_caller_is_rejected(port, room):
    assert echo(port, calling="STRANGER") == "rejected"


def test_a_wrong_called_ae_title_is_rejected(port):
    assert echo(port, called="OTHERAE") == "rejected"


def test_any_caller_is_accepted_when_allowed(port, settings):
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = True
    assert echo(port, calling="STRANGER") == "ok"


def test_a_new_room_may_call_at_once(port):
    RoomFactory(ae_title="US07", modality="US")
    assert echo(port, calling="US07") == "ok"


def test_c_find_answers_in_the_station_charset(port, book):
    room = RoomFactory(ae_title="CT66", worklist_charset=CharacterSet.THAI)
    order = book(room=room, patient=ThaiPatientFactory())
    [answer], final = find(port, worklist_query(PatientName="ใจ*"))
    assert final.Status == 0x0000
    assert answer.SpecificCharacterSet == "ISO_IR 166"
    assert answer.PatientName == "ใจดี^สมชาย"
    assert answer.AccessionNumber == order.accession_number
    assert answer.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == "CT66"


@pytest.mark.parametrize(
    "keys, status",
    [
        ({"SpecificCharacterSet": "ISO_IR 999"}, 0xA900),
        ({"PatientBirthDate": "1980-05-17"}, 0xA900),
        ({"PatientBirthDate": "19800518-19800517"}, 0xA900),
    ],
)
def test_a_bad_identifier_gets_a_failure_status(port, book, keys, status):
    book()
    answers, final = find(port, worklist_query(**keys))
    assert answers == []
    assert final.Status == status
    assert final.ErrorComment


def test_mpps_moves_the_order_through_in_progress_to_completed(port, book, worklist_dir):
    order = book()
    uid = new_uid()
    assert n_create(port, uid, mpps_dataset(order), calling="CT01") == 0x0000
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    [answer], _ = find(port, worklist_query(AccessionNumber=order.accession_number))
    assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"

    assert n_set(port, uid, mpps_set_dataset("COMPLETED"), calling="CT01") == 0x0000
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert find(port, worklist_query(AccessionNumber=order.accession_number))[0] == []
    assert not (worklist_dir / f"{order.accession_number}.wl").exists()


def board_block(client, accession: str, day) -> str:
    """The opening tag of the exam's block on the day board's refresh partial (what board.js polls)."""
    response = client.get(reverse("scheduling:schedule"), {"date": day.isoformat(), "partial": "1"})
    assert response.status_code == 200
    [block] = re.findall(rf'<article [^>]*data-accession="{accession}"[^>]*>', response.content.decode())
    return block


def test_an_exam_the_scanner_started_shows_in_progress_on_the_day_board(port, book, client, user):
    order = book()
    client.force_login(user)
    day = timezone.localtime(order.scheduled_start).date()
    assert "· Scheduled" in board_block(client, order.accession_number, day)

    # The scanner calls with its own station AE title, as in the room.
    assert n_create(port, new_uid(), mpps_dataset(order), calling=order.room.ae_title) == 0x0000

    block = board_block(client, order.accession_number, day)
    assert 'title="' in block and '· In progress"' in block
    assert "border-warning bg-warning-subtle" in block


def test_mpps_failures_reach_the_modality(port, book):
    order = book()
    assert n_create(port, new_uid(), mpps_dataset(order, status="COMPLETED")) == 0x0106
    assert n_create(port, new_uid(), mpps_dataset(None, AccessionNumber="NOPE")) == 0x0110
    assert n_set(port, new_uid(), mpps_set_dataset("COMPLETED")) == 0x0112
    # ...and the server is still there.
    assert echo(port) == "ok"


def test_serve_dicom_reports_a_port_in_use():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        busy = sock.getsockname()[1]
        with pytest.raises(CommandError, match="Cannot listen"):
            call_command("serve_dicom", port=busy, bind="127.0.0.1")
