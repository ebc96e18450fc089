"""Faults never lose an exam: Redis down at booking, a worker killed mid-write, a worklist folder that is
read-only or full, PostgreSQL restarted under load. Each booking made is saved once, and its .wl file
appears once the fault is gone; a partial .wl file is never visible.

Nothing here touches the machine's shared services: each test starts its own redis-server (and, for the
database restart, its own PostgreSQL cluster) on a free port, and its own Celery worker against them.
Each test prints its figures (run with -s to see them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from pydicom import dcmread
from redis import Redis

from ris.celery import app
from scheduling import services
from scheduling.models import Order, Patient
from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.realstack.conftest import BASE_DIR, _logs, _start, _stop, _subprocess_env
from worklist_export.dataset import order_source
from worklist_export.encoding import source_bytes
from worklist_export.models import WorklistEntry
from worklist_export.reconcile import worklists_reconcile
from worklist_export.selectors import order_export_state
from worklist_export.services import order_sync_worklist
from worklist_export.tasks import reconcile_worklists, sync_order_worklist
from worklist_export.writer import file_content_sha256

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

# Debian keeps PostgreSQL's server programs (initdb, pg_ctl) off PATH, in one folder per version.
PG_ROOT = Path("/usr/lib/postgresql")
# A clerk must never wait on a dead broker for longer than this (the publish retry policy in settings).
CLERK_WAIT_LIMIT = 3.0


def need(program: str, package: str) -> str:
    """The path of `program`; a missing one fails the test (never skips): CI must run these faults."""
    found = shutil.which(program)
    if found is None:
        pytest.fail(
            f"{program} is not installed; the fault tests need it (apt-get install {package})", pytrace=False
        )
    return found


def postgres_bin() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin with initdb and pg_ctl; fails the test if there is none."""
    found = [folder for folder in PG_ROOT.glob("*/bin") if (folder / "initdb").is_file()]
    found = [folder for folder in found if (folder / "pg_ctl").is_file()]
    if not found:
        pytest.fail(
            f"no initdb and pg_ctl under {PG_ROOT}/*/bin: the PostgreSQL restart test runs a cluster of its "
            "own with them (apt-get install postgresql)",
            pytrace=False,
        )
    return max(found, key=lambda folder: [int(n) for n in re.findall(r"\d+", folder.parent.name)])


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 20.0) -> float:
    """Poll until condition() holds; return the seconds it took, or fail naming `what`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"after {timeout:.0f} s: {what}")
        time.sleep(0.1)
    return time.monotonic() - started


def wl_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.wl"))


def assert_complete(path: Path, order: Order) -> None:
    """A whole, parseable worklist item for `order` (a server reads any *.wl it finds)."""
    ds = dcmread(path)
    assert ds.AccessionNumber == order.accession_number
    assert ds.ScheduledProcedureStepSequence[0].ScheduledStationAETitle == order.room.ae_title


# --- a private Redis --------------------------------------------------------------------------------


class PrivateRedis:
    """A redis-server of this test alone, without persistence, that the test may kill and restart."""

    def __init__(self, folder: Path) -> None:
        self.binary = need("redis-server", "redis-server")
        self.port = free_port()
        self.folder = folder
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        log = (self.folder / "redis.log").open("a")
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.folder),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        _logs["redis"] = self.folder / "redis.log"
        wait_for(self.answers, f"redis-server on port {self.port} answered", timeout=10)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), 0.2):
                return True
        except OSError:
            return False


@contextlib.contextmanager
def publishing_to(url: str) -> Iterator[None]:
    """Make this process's Celery app publish to `url` (the test's Redis) instead of the shared one."""
    old = app.conf.broker_url, app.conf.result_backend

    def reset_pools() -> None:
        # Forget the app's pools, never close them: kombu keeps them in a registry by URL, and the
        # shared broker's pool must still work for the tests that come after this one.
        app._pool = None
        app.amqp._producer_pool = None

    # Celery reads CELERY_BROKER_URL from the environment before its configuration: change both.
    old_env = os.environ["CELERY_BROKER_URL"]
    os.environ["CELERY_BROKER_URL"] = url
    app.conf.broker_url = app.conf.result_backend = url
    reset_pools()
    try:
        assert app.connection_for_write().as_uri(include_password=True) == url
        yield
    finally:
        reset_pools()
        os.environ["CELERY_BROKER_URL"] = old_env
        app.conf.broker_url, app.conf.result_backend = old


@pytest.fixture
def redis(tmp_path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path)
    server.start()
    try:
        with publishing_to(server.url):
            yield server
    finally:
        server.kill()
        _logs.pop("redis", None)


def start_celery(kind: str, tmp_path: Path, redis: PrivateRedis, **env: str) -> subprocess.Popen:
    """A worker or a beat (reconcile every 2 s) of this test, on its Redis and the test database."""
    env = {"CELERY_BROKER_URL": redis.url, "CELERY_RESULT_BACKEND": redis.url, **env}
    if kind == "worker":
        args = ["worker", "--pool=solo", "-l", "info", "-n", f"faults-{redis.port}@%h"]
        return _start("worker", args, tmp_path / "worker.log", " ready.", **env)
    args = ["beat", "-l", "info", "-s", str(tmp_path / "celerybeat-schedule")]
    return _start(
        "beat", args, tmp_path / "beat.log", "beat: Starting", WORKLIST_RECONCILE_SECONDS="2", **env
    )


@pytest.fixture
def worker(redis, tmp_path) -> Iterator[subprocess.Popen]:
    proc = start_celery("worker", tmp_path, redis)
    try:
        yield proc
    finally:
        _stop(proc)
        _logs.pop("worker", None)


@pytest.fixture
def beat(redis, worker, tmp_path) -> Iterator[subprocess.Popen]:
    proc = start_celery("beat", tmp_path, redis)
    try:
        yield proc
    finally:
        _stop(proc)
        _logs.pop("beat", None)


@pytest.fixture(autouse=True)
def forget_logs() -> Iterator[None]:
    """The logs of this test's processes are shown under its failure, then forgotten."""
    yield
    for name in ("redis", "worker", "beat", "postgres", "clerks", "writer"):
        _logs.pop(name, None)


def booking_form(patient, procedure, room, start) -> dict[str, str]:
    return {
        "patient": str(patient.pk),
        "procedure": str(procedure.pk),
        "room": str(room.pk),
        "date": start.date().isoformat(),
        "slot": f"{start:%H:%M}",
        "priority": "ROUTINE",
        "confirm_patient_overlap": "on",
    }


# --- 1. Redis down while booking ----------------------------------------------------------------------


def test_a_booking_made_while_redis_is_down_is_saved_and_reaches_the_folder_when_redis_is_back(
    redis, worker, beat, client, user, tomorrow_at, caplog
):
    caplog.set_level("WARNING", logger="worklist_export.tasks")
    folder = Path(settings.WORKLIST_DIR)
    procedure, room = ProcedureFactory(), RoomFactory()
    client.force_login(user)

    redis.kill()
    started = time.monotonic()
    response = client.post(
        reverse("scheduling:order_create"), booking_form(PatientFactory(), procedure, room, tomorrow_at(9))
    )
    view_seconds = time.monotonic() - started
    started = time.monotonic()
    by_service = services.order_book(
        patient=PatientFactory(), procedure=procedure, room=room, start=tomorrow_at(10), user=user
    )
    service_seconds = time.monotonic() - started

    assert response.status_code == 302, response.content.decode()[:2000]
    by_view = Order.objects.get(pk=int(re.search(r"/orders/(\d+)/", response.url).group(1)))
    booked = [by_view, by_service]
    assert max(view_seconds, service_seconds) < CLERK_WAIT_LIMIT
    page = client.get(by_view.get_absolute_url()).content.decode()
    assert "export pending" in page
    assert all(order_export_state(order=o).pending for o in booked)
    assert wl_files(folder) == []
    assert caplog.text.count("not queued (broker unavailable") == len(booked)

    redis.start()
    recovery = wait_for(
        lambda: len(wl_files(folder)) == len(booked), "both files written after Redis came back", timeout=30
    )

    for order in booked:
        assert_complete(folder / f"{order.accession_number}.wl", order)
        order.refresh_from_db()
        assert not order_export_state(order=order).pending
    lost = len(booked) - len(wl_files(folder))
    print(
        f"\n[redis down] faults injected=1 (redis-server SIGKILL) bookings made={len(booked)} "
        f"saved={Order.objects.count()} clerk wait view={view_seconds:.2f}s service={service_seconds:.2f}s "
        f"files after restart={len(wl_files(folder))} in {recovery:.1f}s files lost={lost}"
    )
    assert lost == 0 and Order.objects.count() == len(booked)


# --- 2. A worker killed in the middle of writing --------------------------------------------------------

# Runs the export in a child process that stops, as if frozen by the kernel, at a chosen point of the
# write: after half of a file's bytes (the per-order task) or with every temporary file of a batch
# written and none renamed (reconcile). It touches `marker` there, so the test kills it at that point.
KILLED_WRITER = textwrap.dedent(
    """
    import os, sys, time
    import django

    django.setup()
    from worklist_export import writer

    mode, marker, order_id = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def freeze():
        open(marker, "w").close()
        time.sleep(600)

    if mode == "task":
        original = writer._write_tmp

        def half_then_freeze(tmp, data, *, fsync):
            original(tmp, data[: len(data) // 2], fsync=fsync)
            freeze()

        writer._write_tmp = half_then_freeze
        from worklist_export.services import order_sync_worklist

        order_sync_worklist(order_id=order_id)
    else:
        writer._flush_files = lambda folder, tmps: freeze()
        from worklist_export.reconcile import worklists_reconcile

        worklists_reconcile()
    """
)


def kill_writer_midway(mode: str, order_id: int, tmp_path: Path) -> list[Path]:
    """Start the export in a child, SIGKILL it at the frozen point; return the temporary files it left."""
    folder = Path(settings.WORKLIST_DIR)
    marker, log = tmp_path / f"frozen-{mode}", tmp_path / f"writer-{mode}.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-c", KILLED_WRITER, mode, str(marker), str(order_id)],
            cwd=BASE_DIR,
            env=_subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: marker.exists() or proc.poll() is not None, f"the {mode} writer froze", timeout=30)
        assert marker.exists(), f"the {mode} writer ended early:\n{log.read_text()[-3000:]}"
        # Frozen mid-write: a server scanning the folder now sees no .wl file, let alone a partial one.
        assert wl_files(folder) == []
        leftovers = sorted(folder.glob(".*.wl.tmp-*"))
        assert leftovers, "the writer had a temporary file open"
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    assert wl_files(folder) == []
    return leftovers


def test_a_writer_killed_mid_write_leaves_no_partial_file_and_the_next_run_completes_it(
    tmp_path, tomorrow_at
):
    folder = Path(settings.WORKLIST_DIR)
    room, procedure = RoomFactory(), ProcedureFactory()
    one = OrderFactory(room=room, procedure=procedure, scheduled_start=tomorrow_at(8))

    # The per-order task, killed with half the file in its temporary file.
    task_leftovers = kill_writer_midway("task", one.pk, tmp_path)
    sizes = [p.stat().st_size for p in task_leftovers]
    # The next run of the task (its retry) writes the whole file; the lock of the dead one was released.
    assert order_sync_worklist(order_id=one.pk) == "written"
    assert_complete(folder / f"{one.accession_number}.wl", one)
    full_size = (folder / f"{one.accession_number}.wl").stat().st_size
    assert all(size < full_size for size in sizes), "the killed writer had written only part of the file"

    # Reconcile writing a batch, killed with every temporary file written and none renamed.
    batch = [
        OrderFactory(room=room, procedure=procedure, scheduled_start=tomorrow_at(9 + i)) for i in range(4)
    ]
    (folder / f"{one.accession_number}.wl").unlink()
    batch_leftovers = kill_writer_midway("reconcile", one.pk, tmp_path)

    report = worklists_reconcile()

    orders = [one, *batch]
    for order in orders:
        assert_complete(folder / f"{order.accession_number}.wl", order)
        assert not WorklistEntry.objects.get(order=order).last_error
    leftover_after = sorted(folder.glob(".*.tmp-*"))
    lost = len(orders) - len(wl_files(folder))
    print(
        f"\n[killed writer] faults injected=2 (SIGKILL in the task mid-file, in reconcile mid-batch) "
        f"orders={len(orders)} temporary files left by the dead writers={len(task_leftovers) + len(batch_leftovers)} "
        f"partial .wl visible=0 written by the next run={report.counts()['missing']} "
        f"temporary files after reconcile={len(leftover_after)} files lost={lost}"
    )
    assert leftover_after == [] and lost == 0


# --- 2b. The Celery worker itself SIGKILLed while it writes ----------------------------------------------

KILLED_WORKER_ORDERS = 3000
# Written one by one by their tasks, each with its own fsyncs; the rest by a reconcile task, in batches.
KILLED_WORKER_SYNC_TASKS = 300
# A task taken by a worker that was killed is handed out again once it is this old (an hour in production).
KILLED_WORKER_VISIBILITY_TIMEOUT = 4
_RECEIVED = re.compile(r"Task worklist_export\.tasks\.\w+\[([0-9a-f-]+)\] received")
_RECONCILED = re.compile(r"Task worklist_export\.tasks\.reconcile_worklists\[[0-9a-f-]+\] succeeded")


def orders_in_bulk(n: int, first: datetime) -> dict[str, Order]:
    """n active orders from `first` on, a patient each, made in a few statements: {accession: order}."""
    procedure, user = ProcedureFactory(), UserFactory()
    rooms = [RoomFactory() for _ in range(10)]
    patients = Patient.objects.bulk_create([PatientFactory.build() for _ in range(n)])
    orders = [
        OrderFactory.build(
            patient=patient,
            procedure=procedure,
            room=rooms[i % len(rooms)],
            booked_by=user,
            # Back to back in each room: the database refuses overlapping orders in one room.
            scheduled_start=first + timedelta(minutes=15 * (i // len(rooms))),
            duration_minutes=15,
        )
        for i, patient in enumerate(patients)
    ]
    return {order.accession_number: order for order in Order.objects.bulk_create(orders, batch_size=1000)}


def folder_names(folder: Path) -> tuple[list[str], list[str]]:
    """(.wl files, temporary files of writers) in the folder now."""
    names = os.listdir(folder)
    return [n for n in names if n.endswith(".wl")], [n for n in names if ".wl.tmp-" in n]


def expected_hashes(orders: dict[str, Order]) -> dict[str, str]:
    """{accession: sha256 of the dataset bytes the RIS writes for the order} (see file_content_sha256)."""
    return {
        acc: hashlib.sha256(source_bytes(order_source(order))).hexdigest() for acc, order in orders.items()
    }


def assert_every_file_complete(folder: Path, orders: dict[str, Order], hashes: dict[str, str]) -> int:
    """What a server scanning the folder now would read: every .wl file whole, for its own order.

    Parsing alone is not enough: pydicom reads a file cut at an element boundary without a complaint,
    so each file's dataset is also compared byte for byte with the order's.
    """
    names, _tmps = folder_names(folder)
    partial = []
    for name in names:
        try:
            ds = dcmread(folder / name)
            order = orders[ds.AccessionNumber]
        except Exception as exc:  # truncated inside an element, or before the accession number
            partial.append(f"{name}: {exc!r}")
            continue
        if file_content_sha256(folder / name) != hashes[order.accession_number]:
            partial.append(f"{name}: not the order's whole dataset")
            continue
        assert name == f"{order.accession_number}.wl"
        assert ds.PatientName.family_name == order.patient.family_name, name
        assert ds.PatientName.given_name == order.patient.given_name, name
    assert partial == [], f"{len(partial)} partial files visible"
    return len(names)


def pool_children(pid: int) -> list[int]:
    return [int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_the_celery_worker_killed_while_writing_leaves_no_partial_file_and_loses_none(
    redis, tmp_path, tomorrow_at
):
    folder = Path(settings.WORKLIST_DIR)
    n = KILLED_WORKER_ORDERS
    orders = orders_in_bulk(n, tomorrow_at(0))
    hashes = expected_hashes(orders)
    # The per-order tasks of the first orders, then a reconcile, which writes the rest in batches.
    for order in list(orders.values())[:KILLED_WORKER_SYNC_TASKS]:
        sync_order_worklist.delay(order.pk)
    reconcile_worklists.delay()
    broker = Redis(port=redis.port)
    assert broker.llen("celery") == KILLED_WORKER_SYNC_TASKS + 1

    env = {
        "CELERY_BROKER_URL": redis.url,
        "CELERY_RESULT_BACKEND": redis.url,
        "CELERY_BROKER_VISIBILITY_TIMEOUT": str(KILLED_WORKER_VISIBILITY_TIMEOUT),
    }
    logs: list[Path] = []

    def start_worker() -> subprocess.Popen:
        # Prefork, as deployed: a main process that takes tasks from Redis and two pool processes.
        k = len(logs)
        logs.append(tmp_path / f"worker-{k}.log")
        args = [
            "worker",
            "--pool=prefork",
            "--concurrency=2",
            "-l",
            "info",
            "-n",
            f"killed-{k}-{redis.port}@%h",
        ]
        return _start(f"worker-{k}", args, logs[-1], " ready.", **env)

    def kill_while_writing(proc: subprocess.Popen, files: int, victims: list[int]) -> int:
        """Once `files` .wl files are there, SIGKILL `victims` while a temporary file is being written."""
        deadline = time.monotonic() + 30
        while True:
            names, tmps = folder_names(folder)
            if len(names) >= files and tmps:
                break
            assert proc.poll() is None, logs[-1].read_text()[-3000:]
            assert time.monotonic() < deadline, (
                f"the worker wrote {len(names)} of {files} files; queued={broker.llen('celery')} "
                f"unacked={broker.zcard('unacked_index')} restore lock ttl={broker.ttl('unacked_mutex')}"
            )
            time.sleep(0.001)
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        return len(folder_names(folder)[1])

    # Per worker started: (what is killed, once this many files are there). The whole worker's tasks wait
    # in Redis's unacked set for the visibility timeout; the pool processes' tasks are put back at once by
    # the main process (CELERY_TASK_REJECT_ON_WORKER_LOST).
    s = KILLED_WORKER_SYNC_TASKS
    plan = [
        [("whole worker, in the per-order tasks", s // 3)],
        [("pool processes, in the per-order tasks", 2 * s // 3), ("whole worker, in the reconcile", s + 500)],
        [("whole worker, in the redelivered reconcile", s + 1500)],
    ]
    kills: list[str] = []
    worker: subprocess.Popen | None = None
    tmps_at_kills: list[int] = []  # temporary files in the folder right after each kill
    files_checked = 0
    try:
        for kills_of_worker in plan:
            worker = start_worker()
            for what, files in kills_of_worker:
                pool = what.startswith("pool")
                victims = pool_children(worker.pid) if pool else [-worker.pid]
                tmps_at_kills.append(kill_while_writing(worker, files, victims))
                if pool:
                    assert worker.poll() is None, "the worker's main process outlives its pool processes"
                else:
                    worker.wait(10)
                kills.append(what)
                files_checked += assert_every_file_complete(folder, orders, hashes)
            assert worker.poll() is not None
        files_at_last_kill = len(folder_names(folder)[0])
        assert files_at_last_kill < n, "the kills came too late: every file was already written"

        # The next worker runs what is left in the queue, and the killed workers' tasks once they are
        # older than the visibility timeout.
        worker = start_worker()
        wait_for(
            lambda: broker.llen("celery") == 0 and broker.zcard("unacked_index") == 0,
            "the queue and the killed workers' tasks were worked off",
            timeout=60,
        )
        by_tasks = len(folder_names(folder)[0])
        # The beat's reconcile writes whatever a lost task missed and removes the dead writers' temporary
        # files.
        beat = start_celery("beat", tmp_path, redis, **env)
        try:
            wait_for(
                lambda: len(folder_names(folder)[0]) == n and not folder_names(folder)[1],
                "every file written and no temporary file left",
                timeout=30,
            )
        finally:
            _stop(beat)
        files_checked += assert_every_file_complete(folder, orders, hashes)
    finally:
        for k in range(len(logs)):
            _logs.pop(f"worker-{k}", None)
        if worker is not None:
            _stop(worker)

    received = [task for log in logs for task in _RECEIVED.findall(log.read_text(errors="replace"))]
    redelivered = len(received) - len(set(received))
    reconciles = sum(len(_RECONCILED.findall(log.read_text(errors="replace"))) for log in logs)
    names, tmps = folder_names(folder)
    lost = n - len(names)
    print(
        f"\n[killed worker] orders={n} (per-order tasks={s}, then one reconcile task) faults injected={len(kills)} "
        f"(SIGKILL: {'; '.join(kills)}) temporary files right after each kill={tmps_at_kills} "
        f"files checked={files_checked} partial files seen=0 tasks redelivered={redelivered} "
        f"files after the queue was worked off={by_tasks} written by beat's reconcile={n - by_tasks} "
        f"reconciles completed={reconciles} temporary files after reconcile={len(tmps)} files lost={lost}"
    )
    assert redelivered >= 1, "no task of a killed worker was run again"
    assert reconciles >= 1 and lost == 0 and tmps == []


# --- 3. The worklist folder read-only, then full ---------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 512 KiB tmpfs of this test, so it can be made read-only or filled without harming the machine."""
    mount = need("mount", "mount")
    point = tmp_path / "small-disk"
    point.mkdir()
    result = subprocess.run(
        [mount, "-t", "tmpfs", "-o", "size=512k,mode=0755", "tmpfs", str(point)],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (the fault tests run as root): {result.stderr}", pytrace=False)
    try:
        yield point
    finally:
        subprocess.run([need("umount", "mount"), "-l", str(point)], check=False)


def remount(point: Path, option: str) -> None:
    subprocess.run([need("mount", "mount"), "-o", f"remount,{option}", str(point)], check=True)


def fill(point: Path) -> int:
    """Write until the disk is full; return the bytes written."""
    written = 0
    with open(point / "filler", "wb", buffering=0) as fh:
        try:
            while True:
                written += fh.write(b"\0" * 4096)
        except OSError as exc:
            assert exc.errno == 28, exc  # ENOSPC
    return written


def test_a_read_only_or_full_folder_shows_the_error_and_loses_nothing_once_fixed(
    small_disk, redis, tmp_path, client, user, tomorrow_at, settings
):
    folder = small_disk / "worklists"
    settings.WORKLIST_DIR = str(folder)
    worker = start_celery("worker", tmp_path, redis, WORKLIST_DIR=str(folder))
    procedure, room = ProcedureFactory(), RoomFactory()
    client.force_login(user)

    def book(hour: int) -> Order:
        form = booking_form(PatientFactory(), procedure, room, tomorrow_at(hour))
        response = client.post(reverse("scheduling:order_create"), form)
        assert response.status_code == 302, response.content.decode()[:2000]
        return Order.objects.get(pk=int(re.search(r"/orders/(\d+)/", response.url).group(1)))

    def error_of(order: Order) -> str:
        entry = WorklistEntry.objects.filter(order=order).first()
        return entry.last_error if entry else ""

    try:
        healthy = book(8)
        wait_for(lambda: (folder / f"{healthy.accession_number}.wl").exists(), "the first file was written")

        faults = []
        remount(small_disk, "ro")
        read_only = book(9)
        wait_for(lambda: "Read-only file system" in error_of(read_only), "the read-only error was recorded")
        faults.append(("read-only", read_only))

        remount(small_disk, "rw")
        filler_bytes = fill(small_disk)
        full = book(10)
        wait_for(lambda: "No space left on device" in error_of(full), "the disk-full error was recorded")
        faults.append(("disk full", full))

        problems = client.get(reverse("worklist_export:problems")).content.decode()
        for what, order in faults:
            page = client.get(order.get_absolute_url()).content.decode()
            assert "alert-danger" in page and "The worklist folder cannot be written" in page, what
            assert order.get_absolute_url() in problems, what
        assert "No space left on device" in problems
        # Whatever is in the folder is whole: a failed write leaves neither a partial .wl nor its temp file.
        assert wl_files(folder) == [f"{healthy.accession_number}.wl"]
        assert_complete(folder / f"{healthy.accession_number}.wl", healthy)
        assert not list(folder.glob(".*.tmp-*"))

        (small_disk / "filler").unlink()
        for _what, order in faults:
            response = client.post(reverse("worklist_export:problem_retry", args=[order.pk]), follow=True)
            assert "the worklist is up to date" in response.content.decode()
    finally:
        _stop(worker)

    booked = [healthy, *(order for _what, order in faults)]
    for order in booked:
        assert_complete(folder / f"{order.accession_number}.wl", order)
        assert error_of(order) == ""
    assert "No problems" in client.get(reverse("worklist_export:problems")).content.decode()
    lost = len(booked) - len(wl_files(folder))
    print(
        f"\n[folder faults] faults injected=2 (tmpfs remounted read-only, tmpfs filled with {filler_bytes} "
        f"bytes) bookings made={len(booked)} saved={Order.objects.count()} errors shown on the order page and "
        f"the problems page={len(faults)} files after the fix={len(wl_files(folder))} files lost={lost}"
    )
    assert lost == 0 and Order.objects.count() == len(booked)


# --- 4. PostgreSQL restarted under load -------------------------------------------------------------------


class PrivatePostgres:
    """A PostgreSQL cluster of this test alone (initdb in a temporary folder, run as user postgres)."""

    def __init__(self) -> None:
        folder = postgres_bin()
        self.bin = {name: str(folder / name) for name in ("initdb", "pg_ctl", "createdb")}
        self.port = free_port()
        # Not under pytest's tmp_path: its parents are private to root, and the server runs as postgres.
        self.folder = Path(tempfile.mkdtemp(prefix="ris-faults-pg-"))
        shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/ris"

    def _as_postgres(self, *args: str) -> None:
        # Output to a file, never a pipe: the server started by pg_ctl would hold the pipe open forever.
        with (self.folder / "pg_ctl.log").open("a") as out:
            subprocess.run(["runuser", "-u", "postgres", "--", *args], check=True, stdout=out, stderr=out)

    def pg_ctl(self, *args: str) -> None:
        options = f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        log = str(self.folder / "server.log")
        self._as_postgres(
            self.bin["pg_ctl"], "-D", str(self.data), "-o", options, "-l", log, "-w", "-t", "30", *args
        )

    def start(self) -> None:
        self._as_postgres(self.bin["initdb"], "-D", str(self.data), "-A", "trust", "-U", "postgres", "-N")
        self.pg_ctl("start")
        _logs["postgres"] = self.folder / "server.log"
        subprocess.run(
            [self.bin["createdb"], "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "ris"],
            check=True,
        )

    def restart(self) -> None:
        # -m fast: open connections are cut, in-flight transactions roll back, as in a failover.
        self.pg_ctl("-m", "fast", "restart")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self.pg_ctl("-m", "immediate", "stop")
        _logs.pop("postgres", None)
        shutil.rmtree(self.folder, ignore_errors=True)


@pytest.fixture
def postgres() -> Iterator[PrivatePostgres]:
    server = PrivatePostgres()
    try:
        server.start()
        yield server
    finally:
        server.destroy()


# Clerks booking through the web pages (Django's test client, real views and middleware) against the
# private cluster: each thread books its own room slot after slot until told to stop. A request that
# fails (the database is restarting) is pressed again, as a clerk would, until it is booked or refused.
CLERKS = textwrap.dedent(
    """
    import json, re, sys, threading, time
    from datetime import datetime, time as clock, timedelta
    from pathlib import Path

    import django

    django.setup()
    from django.db import close_old_connections, connection
    from django.test import Client
    from django.test.utils import setup_test_environment
    from django.utils import timezone

    from scheduling.roles import FRONT_DESK
    from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory

    setup_test_environment()
    threads, started, stop, results = int(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), Path(sys.argv[4])
    user = UserFactory(username="clerk", roles=[FRONT_DESK])
    procedure = ProcedureFactory(default_duration=15)
    rooms = [RoomFactory(hours=[(d, clock(0), clock(23, 59)) for d in range(7)]) for _ in range(threads)]
    patients = [PatientFactory() for _ in range(threads)]
    first = timezone.make_aware(datetime.combine(timezone.localdate() + timedelta(days=1), clock(6)))
    outcomes = [[] for _ in range(threads)]
    connection.close()

    def clerk(i):
        client = Client(raise_request_exception=False)
        client.force_login(user)
        for k in range(70):
            if stop.exists():
                break
            start = first + timedelta(minutes=15 * k)
            form = {"patient": patients[i].pk, "procedure": procedure.pk, "room": rooms[i].pk,
                    "date": start.date().isoformat(), "slot": f"{start:%H:%M}", "priority": "ROUTINE",
                    "confirm_patient_overlap": "on"}
            errors = 0
            while errors < 100:
                # What a WSGI server does around every request (request_started / request_finished):
                # drop a connection that is broken or too old. The test client leaves it out on
                # purpose, so that tests can share one connection; here it must be in.
                close_old_connections()
                try:
                    response = client.post("/orders/new/", form)
                    status = response.status_code
                except Exception as exc:
                    status = repr(exc)
                finally:
                    close_old_connections()
                if status == 302:
                    pk = int(re.search(r"/orders/(\\d+)/", response.url).group(1))
                    outcomes[i].append({"room": rooms[i].pk, "start": start.isoformat(), "booked": pk,
                                        "errors": errors, "at": time.monotonic()})
                    break
                if status == 200:  # refused at the field: the slot is taken (a lost acknowledgement)
                    outcomes[i].append({"room": rooms[i].pk, "start": start.isoformat(), "booked": None,
                                        "errors": errors, "at": time.monotonic()})
                    break
                errors += 1
                time.sleep(0.1)
            else:
                outcomes[i].append({"room": rooms[i].pk, "start": start.isoformat(), "booked": None,
                                    "errors": errors, "at": time.monotonic(), "gave_up": True})
        connection.close()

    workers = [threading.Thread(target=clerk, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    started.touch()
    for worker in workers:
        worker.join()
    results.write_text(json.dumps({"outcomes": [o for per in outcomes for o in per]}))
    """
)


def test_postgres_restarted_under_load_loses_and_duplicates_no_booking(postgres, redis, tmp_path):
    import psycopg

    folder = tmp_path / "worklists"
    folder.mkdir()
    # Persistent connections (as a deployment would set) are the hard case: every one of them is cut by
    # the restart, and CONN_HEALTH_CHECKS must replace it before a request uses it.
    env = {"DATABASE_URL": postgres.url, "WORKLIST_DIR": str(folder), "DATABASE_CONN_MAX_AGE": "60"}
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"],
        cwd=BASE_DIR,
        env=_subprocess_env(**env),
        capture_output=True,
        text=True,
    )
    assert migrate.returncode == 0, migrate.stderr
    worker = start_celery("worker", tmp_path, redis, **env)
    threads = 4
    started, stop, results = tmp_path / "started", tmp_path / "stop", tmp_path / "results.json"
    log = tmp_path / "clerks.log"
    try:
        with log.open("w") as out:
            clerks = subprocess.Popen(
                [sys.executable, "-c", CLERKS, str(threads), str(started), str(stop), str(results)],
                cwd=BASE_DIR,
                env=_subprocess_env(**env, CELERY_BROKER_URL=redis.url, CELERY_RESULT_BACKEND=redis.url),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        _logs["clerks"] = log
        wait_for(lambda: started.exists() or clerks.poll() is not None, "the clerks started", timeout=60)
        time.sleep(1.0)
        restarted_at = time.monotonic()
        postgres.restart()
        restart_seconds = time.monotonic() - restarted_at
        time.sleep(2.0)
        stop.touch()
        clerks.wait(60)
        assert clerks.returncode == 0, log.read_text()[-3000:]
        outcomes = json.loads(results.read_text())["outcomes"]

        with psycopg.connect(f"host=127.0.0.1 port={postgres.port} user=postgres dbname=ris") as db:
            stored = db.execute(
                "SELECT id, accession_number, room_id, scheduled_start FROM scheduling_order"
            ).fetchall()
        by_id = {row[0]: row for row in stored}
        wait_for(
            lambda: len(wl_files(folder)) >= len(stored),
            f"the worker wrote all {len(stored)} files after the restart",
            timeout=60,
        )
    finally:
        _stop(worker)

    assert not [o for o in outcomes if o.get("gave_up")], "a clerk could not book for 10 s after the restart"
    booked = [o for o in outcomes if o["booked"]]
    refused = [o for o in outcomes if not o["booked"]]
    failed_requests = sum(o["errors"] for o in outcomes)
    after_restart = [o for o in booked if o["at"] > restarted_at + restart_seconds]
    lost = [o for o in booked if o["booked"] not in by_id]
    duplicates = len(stored) - len({(room, start) for _id, _acc, room, start in stored})
    duplicate_accessions = len(stored) - len({acc for _id, acc, _room, _start in stored})
    # A booking whose commit succeeded but whose reply was cut shows up as refused when pressed again.
    unacknowledged = len(stored) - len(booked)
    files = set(wl_files(folder))
    files_lost = [acc for _id, acc, _room, _start in stored if f"{acc}.wl" not in files]
    print(
        f"\n[postgres restart] faults injected=1 (pg_ctl restart -m fast, {restart_seconds:.1f}s) clerks={threads} "
        f"bookings made={len(booked)} (after the restart {len(after_restart)}) failed requests pressed again="
        f"{failed_requests} refused={len(refused)} stored={len(stored)} committed but unacknowledged="
        f"{unacknowledged} lost={len(lost)} duplicates={duplicates + duplicate_accessions} "
        f"files={len(files)} files lost={len(files_lost)}"
    )
    assert after_restart, "no booking went through after the restart"
    assert not lost and duplicates == 0 and duplicate_accessions == 0
    assert 0 <= unacknowledged <= len(refused)
    assert files_lost == []
