"""Clients of the order API racing on PostgreSQL through a real gunicorn: fifty bookings of one slot make
one order and forty-nine refusals naming it; a clerk's booking form and an API client on one slot make one
order, the other told why; one Idempotency-Key sent twenty times at once books once.

gunicorn runs ris.settings on the pytest-django test database with several worker processes and threads,
so requests really overlap in PostgreSQL (each request its own connection). Every request is a real HTTP
request on a connection of its own, opened before the threads are released together.
"""

from __future__ import annotations

import http.client
import json
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.urls import reverse
from django.utils import timezone

from api.services import api_client_create
from ris.celery import app
from scheduling.models import Order
from scheduling.roles import FRONT_DESK
from tests.factories import PatientFactory, ProcedureFactory, RoomFactory, UserFactory
from tests.realstack.conftest import BASE_DIR, _logs, _stop, _subprocess_env

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]

PASSWORD = "pw-for-tests-1"
# Four processes of four threads: up to sixteen bookings in PostgreSQL at the same moment.
WORKERS, THREADS = 4, 4
ORDERS = "/api/v1/orders"
BOOKED_MESSAGES = ("is already booked", "was just booked")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def problem_type(self) -> str:
        assert self.headers.get("content-type") == "application/problem+json", (self.status, self.body[:500])
        return self.json()["type"].rsplit("/", 1)[-1]


@dataclass
class Connection:
    """One HTTP connection to gunicorn, opened at once so a later request goes out without a handshake."""

    port: int
    cookies: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.http = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        self.http.connect()

    def request(
        self, method: str, path: str, *, body: bytes | None = None, headers: dict | None = None
    ) -> Answer:
        sent = {"Host": "127.0.0.1", "Accept-Language": "en", **(headers or {})}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        self.http.request(method, path, body=body, headers=sent)
        response = self.http.getresponse()
        data = response.read()
        for raw in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(raw).items():
                self.cookies[name] = morsel.value
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)

    def post_json(self, path: str, payload: dict, *, token: str, headers: dict | None = None) -> Answer:
        return self.request(
            "POST",
            path,
            body=json.dumps(payload).encode(),
            headers={
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )

    def post_form(self, path: str, form: dict) -> Answer:
        body = urllib.parse.urlencode({"csrfmiddlewaretoken": self.cookies["csrftoken"], **form}).encode()
        return self.request(
            "POST", path, body=body, headers={"Content-Type": "application/x-www-form-urlencoded"}
        )

    def close(self) -> None:
        self.http.close()


@dataclass
class Web:
    port: int

    def connect(self, cookies: dict[str, str] | None = None) -> Connection:
        return Connection(self.port, dict(cookies or {}))

    def log_in(self, username: str) -> dict[str, str]:
        """The cookies of a logged-in front-desk session (session and CSRF), as a clerk's browser has them."""
        conn = self.connect()
        conn.request("GET", reverse("login"))
        answer = conn.post_form(reverse("login"), {"username": username, "password": PASSWORD})
        conn.close()
        assert answer.status == 302, (answer.status, answer.body[:2000])
        return conn.cookies


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory) -> Iterator[Web]:
    """gunicorn on the test database, its log attached to a failed test's report."""
    gunicorn = shutil.which("gunicorn", path=str(Path(sys.executable).parent)) or shutil.which("gunicorn")
    if not gunicorn:
        pytest.fail("gunicorn is not installed in the virtualenv (pip install -r requirements.txt)")
    port = free_port()
    log = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    args = [gunicorn, "ris.wsgi:application", "-w", str(WORKERS), "--threads", str(THREADS)]
    args += ["-b", f"127.0.0.1:{port}", "--timeout", "60"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=BASE_DIR,
            env=_subprocess_env(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    _logs["gunicorn"] = log
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = Connection(port)
                status = conn.request("GET", "/healthz").status
                conn.close()
                if status in (200, 503):
                    break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"gunicorn did not start:\n{log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.2)
        yield Web(port)
    finally:
        _stop(proc)
        _logs.pop("gunicorn", None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_leftover_tasks():
    """Bookings queue worklist tasks; a test without the worker leaves them for rows the flush removes."""
    yield
    app.control.purge()


def api_token(name: str = "Clinic portal") -> str:
    _client, token = api_client_create(name=name, scopes=["read", "book"])
    return token


def booking(patient, procedure, room, start: datetime, **extra) -> dict:
    return {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "start": start.isoformat(),
        **extra,
    }


def form_booking(patient, procedure, room, start: datetime) -> dict:
    """The booking form as a clerk submits it."""
    local = timezone.localtime(start)
    return {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": local.date().isoformat(),
        "slot": f"{local:%H:%M}",
        "priority": "ROUTINE",
        "referring_physician": "Dr Wattana",
        "reason": "Follow-up",
    }


def released_together(connections: list[Connection], send: Callable[[int, Connection], Answer]) -> list:
    """send(i, connections[i]) in one thread per connection, released together: each Answer or exception."""
    barrier = threading.Barrier(len(connections))
    results: list = [None] * len(connections)

    def run(i: int) -> None:
        try:
            barrier.wait(10)
            results[i] = send(i, connections[i])
        except Exception as exc:
            results[i] = exc
        finally:
            connections[i].close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(connections))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(thread.is_alive() for thread in threads), "a request got no answer in 90 s"
    return results


def test_fifty_api_bookings_of_one_slot_make_one_order_and_49_refusals_naming_it(
    web, celery_worker, tomorrow_at, eventually
):
    n = 50
    token = api_token()
    room, procedure = RoomFactory(), ProcedureFactory()
    patients = [PatientFactory() for _ in range(n)]
    connections = [web.connect() for _ in range(n)]

    answers = released_together(
        connections,
        lambda i, conn: conn.post_json(
            ORDERS, booking(patients[i], procedure, room, tomorrow_at(10)), token=token
        ),
    )

    failed = [a for a in answers if not isinstance(a, Answer)]
    assert not failed, failed[:3]
    statuses = Counter(a.status for a in answers)
    print(f"\n[API, one slot] attempts={n} answers={dict(statuses)}")
    assert statuses == {201: 1, 409: n - 1}, [a.body[:300] for a in answers if a.status not in (201, 409)][:3]
    order = Order.objects.get(room=room)
    booked = next(a for a in answers if a.status == 201)
    assert booked.json()["accession_number"] == order.accession_number
    for refused in (a for a in answers if a.status == 409):
        assert refused.problem_type() == "slot-taken", refused.body[:500]
        problem = refused.json()
        assert problem["order"]["id"] == order.pk, problem
        assert problem["order"]["accession_number"] == order.accession_number
        assert any(m in " ".join(problem["errors"]["start"]) for m in BOOKED_MESSAGES), problem
    # The modalities see the one order too: its worklist file, and no other.
    folder = Path(settings.WORKLIST_DIR)
    eventually(lambda: (folder / f"{order.accession_number}.wl").exists(), "the winner's worklist file")
    assert [p.name for p in folder.glob("*.wl")] == [f"{order.accession_number}.wl"]


def test_a_form_booking_racing_an_api_booking_of_one_slot_makes_one_order(
    web, tomorrow_at, no_leftover_tasks
):
    rounds = 10
    token = api_token()
    clerk = UserFactory(roles=[FRONT_DESK])
    # The test settings hash with MD5, which gunicorn's settings do not know: a hash it can check.
    clerk.password = PBKDF2PasswordHasher().encode(PASSWORD, "realstack-salt", iterations=1000)
    clerk.save(update_fields=["password"])
    room, procedure = RoomFactory(), ProcedureFactory()
    winners: Counter[str] = Counter()
    session = web.log_in(clerk.username)

    for k in range(rounds):
        start = tomorrow_at(8 + k // 2, 30 * (k % 2))  # 08:00, 08:30, ... 12:30: one slot per round
        form_patient, api_patient = PatientFactory(), PatientFactory()
        form_body = form_booking(form_patient, procedure, room, start)
        api_body = booking(api_patient, procedure, room, start)

        # The API answers faster than the form: hold it back a little in every other round, so that
        # either may take the slot first.
        api_delay = (k // 2) * 0.005 if k % 2 else 0.0

        def send(i: int, conn: Connection, form_body=form_body, api_body=api_body, delay=api_delay) -> Answer:
            if i == 0:
                return conn.post_form(reverse("scheduling:order_create"), form_body)
            time.sleep(delay)
            return conn.post_json(ORDERS, api_body, token=token)

        form_answer, api_answer = released_together([web.connect(session), web.connect()], send)

        assert isinstance(form_answer, Answer) and isinstance(api_answer, Answer), (form_answer, api_answer)
        orders = list(Order.objects.filter(room=room, scheduled_start=start))
        assert len(orders) == 1, (k, orders)
        (order,) = orders
        if order.patient_id == form_patient.pk:
            winners["form"] += 1
            assert form_answer.status == 302 and form_answer.headers["location"] == order.get_absolute_url()
            assert api_answer.status == 409 and api_answer.problem_type() == "slot-taken", api_answer.body[
                :500
            ]
            problem = api_answer.json()
            assert problem["order"]["id"] == order.pk, problem
            assert any(m in problem["detail"] for m in BOOKED_MESSAGES), problem
        else:
            winners["api"] += 1
            assert order.patient_id == api_patient.pk
            assert api_answer.status == 201, api_answer.body[:500]
            assert api_answer.json()["accession_number"] == order.accession_number
            # The clerk gets the form back with the slot refused at the field, as for another clerk.
            assert form_answer.status == 200, (form_answer.status, form_answer.headers)
            page = form_answer.body.decode()
            assert "is-invalid" in page
            assert f"(accession {order.accession_number})" in page or "was just booked" in page, page[-3000:]

    print(f"\n[form vs API] rounds={rounds} winners={dict(winners)}")
    assert Order.objects.filter(room=room).count() == rounds


def test_twenty_requests_with_one_idempotency_key_book_once_and_answer_alike(
    web, tomorrow_at, no_leftover_tasks
):
    n = 20
    token = api_token()
    room, procedure, patient = RoomFactory(), ProcedureFactory(), PatientFactory()
    body = booking(patient, procedure, room, tomorrow_at(11), reason="Follow-up")
    key = {"Idempotency-Key": "portal-req-7f3a"}
    connections = [web.connect() for _ in range(n)]

    answers = released_together(
        connections, lambda i, conn: conn.post_json(ORDERS, body, token=token, headers=key)
    )

    failed = [a for a in answers if not isinstance(a, Answer)]
    assert not failed, failed[:3]
    statuses = Counter(a.status for a in answers)
    print(f"\n[one Idempotency-Key] requests={n} answers={dict(statuses)}")
    assert Order.objects.filter(room=room).count() == 1
    assert set(statuses) <= {201, 409} and statuses[201] >= 1, [(a.status, a.body[:300]) for a in answers]
    assert all(a.problem_type() == "idempotency-key-in-use" for a in answers if a.status == 409)
    assert all(a.headers.get("retry-after") for a in answers if a.status == 409)

    # The first answer and every replay of it: the same status, body, Location and ETag.
    def seen(a: Answer) -> tuple:
        return a.status, a.json(), a.headers.get("location"), a.headers.get("etag")

    booked = [a for a in answers if a.status == 201]
    assert len({json.dumps(seen(a), sort_keys=True) for a in booked}) == 1, [seen(a) for a in booked]
    assert sum(a.headers.get("idempotent-replayed") != "true" for a in booked) == 1
    # A retry after the rush is the same answer again, and still one order.
    conn = web.connect()
    retry = conn.post_json(ORDERS, body, token=token, headers=key)
    conn.close()
    assert seen(retry) == seen(booked[0]) and retry.headers.get("idempotent-replayed") == "true"
    assert Order.objects.filter(room=room).count() == 1
