"""The HL7 outbox on the real stack: PostgreSQL, Redis and a Celery worker deliver to a listening HIS.

The HIS is python-hl7's own MLLP server in this process (tests/hl7/test_outbox.py's HisListener). The
orders are booked through scheduling.services, and the worker does the rest: each commit queues
hl7_link.tasks.outbox_run, which fills the outbox from the event stream and delivers it. Faults: the HIS
down and back (nothing lost, the queue drains in order with the same control IDs); PostgreSQL restarted
while orders are booked and sent (each booking reaches the HIS, none twice under two control IDs).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from datetime import timedelta

import psycopg
import pytest
from django.utils import timezone

from hl7_link.models import OutboundMessage, OutboundState, Receiver
from hl7_link.services import receiver_save
from hl7_link.tasks import outbox_run
from scheduling import services
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.hl7.conftest import tomorrow
from tests.hl7.test_outbox import HisListener
from tests.realstack.conftest import BASE_DIR, _logs, _stop, _subprocess_env
from tests.realstack.test_faults import postgres, redis, start_celery, wait_for  # noqa: F401 (fixtures)

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def _accessions(listener: HisListener) -> list[str]:
    return [str(m.segment("SCH")[2][0][0]) for m in listener.messages]


def test_the_worker_delivers_each_booking_and_drains_in_order_after_the_his_was_down(
    celery_worker, eventually
):
    his = HisListener().start()
    try:
        receiver = receiver_save(
            receiver=Receiver(name="HIS", host="127.0.0.1", port=his.port, receiving_application="HOSXP")
        )
        user = UserFactory()
        procedure = ProcedureFactory()
        room = RoomFactory()
        first = services.order_book(
            patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow(9), user=user
        )
        eventually(lambda: len(his.received) == 1, "the worker sent the booking to the HIS")
        assert _accessions(his) == [first.accession_number]

        his.stop()
        later = [
            services.order_book(
                patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow(hour), user=user
            )
            for hour in (10, 11, 12)
        ]
        eventually(
            lambda: Receiver.objects.get(pk=receiver.pk).failures >= 1, "the worker recorded the HIS down"
        )
        down = Receiver.objects.get(pk=receiver.pk)
        assert "Cannot connect" in down.last_error and down.next_attempt_at > timezone.now() - timedelta(
            seconds=5
        )
        eventually(
            lambda: (
                OutboundMessage.objects.filter(receiver=receiver, state=OutboundState.PENDING).count() == 3
            ),
            "the three bookings queued for the HIS",
        )

        # Back up; beat's next run (queued here rather than waited for) drains the queue.
        his.start()
        Receiver.objects.filter(pk=receiver.pk).update(next_attempt_at=None)
        outbox_run.delay()
        eventually(lambda: len(his.received) == 4, "the queue drained after the HIS came back")
        assert _accessions(his) == [first.accession_number, *[o.accession_number for o in later]]
        rows = list(OutboundMessage.objects.filter(receiver=receiver).order_by("id"))
        assert his.control_ids == [row.control_id for row in rows]
        assert {row.state for row in rows} == {OutboundState.SENT}
        recovered = Receiver.objects.get(pk=receiver.pk)
        assert (recovered.failures, recovered.last_error) == (0, "")
    finally:
        his.stop()


# Books orders one after the other against the private cluster, as a front desk would through the
# services: a booking that fails because the database is restarting is tried again until it is booked
# or refused (refused: its commit went through and the answer was lost, so its slot is taken).
BOOKER = textwrap.dedent(
    """
    import json, sys, time
    from datetime import datetime, time as clock, timedelta
    from pathlib import Path

    import django

    django.setup()
    from django.core.exceptions import ValidationError
    from django.db import DatabaseError, close_old_connections
    from django.utils import timezone

    from hl7_link.models import Receiver
    from hl7_link.services import receiver_save
    from scheduling import services
    from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory

    port, count, started, results = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    receiver_save(receiver=Receiver(name="HIS", host="127.0.0.1", port=port, receiving_application="HOSXP"))
    user = UserFactory(username="clerk")
    procedure = ProcedureFactory(default_duration=15)
    room = RoomFactory(hours=[(d, clock(0), clock(23, 59)) for d in range(7)])
    patient = PatientFactory()
    first = timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), clock(6)))
    outcomes = []
    started.touch()
    for k in range(count):
        start = first + timedelta(minutes=15 * k)
        errors = 0
        while True:
            close_old_connections()
            try:
                order = services.order_book(patient=patient, procedure=procedure, room=room, start=start,
                                            user=user, confirm_patient_overlap=True)
            except ValidationError:
                outcomes.append({"start": start.isoformat(), "booked": None, "errors": errors})
                break
            except DatabaseError:
                errors += 1
                time.sleep(0.1)
                continue
            outcomes.append({"start": start.isoformat(), "booked": order.accession_number, "errors": errors})
            break
        time.sleep(0.05)
    results.write_text(json.dumps(outcomes))
    """
)


def test_a_database_restart_loses_and_duplicates_no_message(postgres, redis, tmp_path):  # noqa: F811
    env = {"DATABASE_URL": postgres.url, "DATABASE_CONN_MAX_AGE": "60"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=BASE_DIR,
        env=_subprocess_env(**env),
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    his = HisListener().start()
    worker = start_celery("worker", tmp_path, redis, **env)
    bookings = 60
    started, results, log = tmp_path / "started", tmp_path / "results.json", tmp_path / "booker.log"
    broker = {"CELERY_BROKER_URL": redis.url, "CELERY_RESULT_BACKEND": redis.url}
    try:
        with log.open("w") as out:
            booker = subprocess.Popen(
                [sys.executable, "-c", BOOKER, str(his.port), str(bookings), str(started), str(results)],
                cwd=BASE_DIR,
                env=_subprocess_env(**env, **broker),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _logs["booker"] = log
        wait_for(lambda: started.exists() or booker.poll() is not None, "the booker started", timeout=60)
        wait_for(lambda: len(his.received) >= 10 or booker.poll() is not None, "the first messages arrived")
        restarted_at = time.monotonic()
        postgres.restart()
        restart_seconds = time.monotonic() - restarted_at
        booker.wait(120)
        assert booker.returncode == 0, log.read_text()[-3000:]
        outcomes = json.loads(results.read_text())

        def stored() -> tuple[list[str], list[tuple[str, str]]]:
            with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=ris") as db:
                accessions = [
                    r[0] for r in db.execute("SELECT accession_number FROM scheduling_order ORDER BY id")
                ]
                rows = db.execute(
                    "SELECT control_id, state FROM hl7_link_outboundmessage ORDER BY id"
                ).fetchall()
            return accessions, rows

        # The worker alone catches up: a task cut by the restart is retried, and each later booking's
        # task takes whatever an earlier one left (the cursor and the pending rows keep it).
        def drained() -> bool:
            accessions, rows = stored()
            return len(rows) == len(accessions) and all(state == "sent" for _id, state in rows)

        wait_for(drained, "the worker queued and sent every booking after the restart", timeout=60)
    finally:
        _stop(worker)
        his.stop()
        _logs.pop("booker", None)

    accessions, rows = stored()
    control_ids = [control_id for control_id, _state in rows]
    received = his.control_ids
    first_seen = list(dict.fromkeys(received))
    repeats = len(received) - len(first_seen)
    sent_accessions = _accessions(his)
    booked = [o["booked"] for o in outcomes if o["booked"]]
    worker_log = (tmp_path / "worker.log").read_text(errors="replace")
    retried = sum(1 for line in worker_log.splitlines() if "outbox_run" in line and " retry: " in line)
    print(
        f"\n[hl7 outbox, postgres restart] restart={restart_seconds:.1f}s bookings acknowledged={len(booked)} "
        f"stored={len(accessions)} messages queued={len(rows)} received={len(received)} "
        f"resent with the same MSH-10={repeats} outbox tasks retried by the worker={retried} "
        f"failed bookings retried={sum(o['errors'] for o in outcomes)}"
    )
    # One message per stored booking, each received, in the order queued; a repeat is the same message
    # (same MSH-10) sent again because its ACK was not recorded before the restart.
    assert first_seen == control_ids
    assert sorted(dict.fromkeys(sent_accessions)) == sorted(accessions)
    assert set(booked) <= set(accessions)
    assert repeats <= 2
