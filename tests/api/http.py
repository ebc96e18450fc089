"""The order API served by a production-like gunicorn, and the HTTP callers that talk to it.

The server is the one tests/security starts (tests/security/conftest.py: ris.settings with DJANGO_DEBUG
off, a secret key, the host name, a SQLite file migrated for the run, the static files collected), with
what the API tests need put in its database first: staff with their roles, API clients with their
tokens, rooms, procedures, patients and orders (`seed`, run inside the server's environment by
manage.py, as a deployment's own shell would). Everything after that goes over real HTTP, from any
address of 127.0.0.0/8, so the address allow-list of a client can be tried from inside and outside.

One sync worker: the throttle counts in the default cache (locmem without RIS_CACHE_URL), which is one
per process. A gunicorn that cannot start fails the test, never skips it (CI must run these).
"""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from pathlib import Path

from tests.security.conftest import (
    PASSWORD,
    Browser,
    gunicorn_serving,
    install_site,
    manage,
    production_env,
)

JSON = "application/json"
PROBLEM = "application/problem+json"


@dataclass
class Answer:
    """One response as the caller saw it: status, headers and the raw body."""

    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def content_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip()

    def json(self):
        return json.loads(self.body)

    def problem(self) -> dict:
        """The RFC 9457 document of a refusal; fails unless the answer is one, with its status inside."""
        assert self.content_type == PROBLEM, f"{self.status} {self.content_type}: {self.body[:500]!r}"
        document = self.json()
        assert document["status"] == self.status, document
        return document

    def __repr__(self) -> str:
        return f"<Answer {self.status} {self.content_type} {self.body[:300]!r}>"


@dataclass
class Caller:
    """An HTTP caller of the API from `source`: with an API client's bearer `token`, or a logged-in
    member of staff (a session cookie, and its CSRF token on writes, as the docs page's "try it" sends)."""

    port: int
    token: str | None = None
    source: str = "127.0.0.1"
    cookies: dict[str, str] = field(default_factory=dict)
    language: str = "en"
    # A session's writes carry the CSRF token, as the docs page's script sends it; False to leave it out.
    csrf: bool = True
    timeout: float = 60

    def request(
        self, method: str, path: str, body: object = None, headers: dict[str, str] | None = None
    ) -> Answer:
        sent = {"Host": "127.0.0.1", "Accept": JSON, "Accept-Language": self.language}
        if self.token is not None:
            sent["Authorization"] = f"Bearer {self.token}"
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
            if self.csrf and method not in ("GET", "HEAD", "OPTIONS") and "csrftoken" in self.cookies:
                sent["X-CSRFToken"] = self.cookies["csrftoken"]
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            sent["Content-Type"] = JSON
        sent.update(headers or {})
        conn = http.client.HTTPConnection(
            "127.0.0.1", self.port, timeout=self.timeout, source_address=(self.source, 0)
        )
        try:
            conn.request(method, path, body=data, headers=sent)
            response = conn.getresponse()
            payload = response.read()
        finally:
            conn.close()
        for raw in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(raw).items():
                self.cookies[name] = morsel.value
        return Answer(response.status, response.headers, payload)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        return self.request("GET", path, headers=headers)

    def post(self, path: str, body: object = None, headers: dict[str, str] | None = None) -> Answer:
        return self.request("POST", path, {} if body is None else body, headers)

    def patch(self, path: str, body: object = None, headers: dict[str, str] | None = None) -> Answer:
        return self.request("PATCH", path, {} if body is None else body, headers)


@dataclass
class Server:
    """The running gunicorn and what `seed` put in its database (ids, tokens, usernames)."""

    port: int
    log: Path
    seeded: dict

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, name: str, source: str = "127.0.0.1") -> Caller:
        """A caller with the token of the seeded API client `name`."""
        return Caller(self.port, token=self.seeded["tokens"][name], source=source)

    def anonymous(self, source: str = "127.0.0.1") -> Caller:
        return Caller(self.port, source=source)

    def staff(self, username: str, source: str = "127.0.0.1") -> Caller:
        """A caller logged in through the login page as the seeded user `username`."""
        browser = Browser(self.port, source)
        status = browser.log_in(username, PASSWORD)
        assert status == 302, f"{username} could not log in ({status})"
        return Caller(self.port, source=source, cookies=dict(browser.cookies))


def seed(spec: dict) -> dict:
    """Fill the database as `spec` says; run inside the server's environment (see `serve`).

    spec: {"staff": {username: [role, ...]}, "superusers": [username],
           "clients": {name: {"scopes": [...], "allowed_addresses": ..., "rate_limit": ..., "enabled": ...}},
           "rooms": n, "patients": n, "orders": n, "requested": n, "past": n}
    Rooms are CT rooms open 08:00-17:00 every day; orders are booked through scheduling.services from
    tomorrow on, one per room and half hour, the patients in turn; the last fifth are moved along the
    workflow (arrived, in progress, completed, cancelled) so every status has records. Then the
    requested orders: as the HIS sends them over HL7 with no room free (scheduling.services.order_request),
    each asking for a time tomorrow, the patients in turn. Last, the past orders: booked yesterday, still
    scheduled, their time over (what a no-show is marked on), at most 16.
    Returns {"tokens": {name: token}, "rooms": [ids], "procedures": [ids], "patients": [ids],
    "orders": [ids], "requested": [ids], "past": [ids]}.
    """
    from datetime import datetime, time, timedelta

    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.utils import timezone

    from api.services import api_client_create
    from scheduling import services
    from scheduling.roles import ADMIN, roles_ensure
    from tests.factories import PatientFactory, ProcedureFactory, RoomFactory

    roles_ensure()
    User = get_user_model()
    for username, roles in spec.get("staff", {}).items():
        user = User.objects.create_user(username, password=PASSWORD, is_staff=ADMIN in roles)
        user.groups.add(*Group.objects.filter(name__in=roles))
    for username in spec.get("superusers", []):
        User.objects.create_superuser(username, password=PASSWORD)
    tokens = {}
    for name, fields in spec.get("clients", {}).items():
        _client, tokens[name] = api_client_create(name=name, **fields)

    rooms = [RoomFactory(name=f"CT {n}", ae_title=f"CT{n:02d}") for n in range(1, spec.get("rooms", 1) + 1)]
    procedures = [
        ProcedureFactory(code_value="CTHEAD", code_meaning="CT Head without contrast", default_duration=30),
        ProcedureFactory(code_value="CTCHEST", code_meaning="CT Chest with contrast", default_duration=30),
    ]
    patients = [PatientFactory() for _ in range(spec.get("patients", 1))]
    booker = User.objects.create_user("seed-booker", password=PASSWORD)
    tomorrow = timezone.localdate() + timedelta(days=1)
    orders = []
    for n in range(spec.get("orders", 0)):
        day, slot = divmod(n, len(rooms) * 16)
        room_index, half_hour = divmod(slot, 16)
        start = timezone.make_aware(
            datetime.combine(tomorrow + timedelta(days=day), time(8)) + timedelta(minutes=30 * half_hour)
        )
        orders.append(
            services.order_book(
                patient=patients[n % len(patients)],
                procedure=procedures[n % len(procedures)],
                room=rooms[room_index],
                start=start,
                user=booker,
                confirm_patient_overlap=True,
            )
        )
    # The last fifth of the orders: one in each status after scheduled, in turn.
    steps = ["arrived", "in_progress", "completed", "cancelled"]
    for index, order in enumerate(orders[len(orders) - len(orders) // 5 :]):
        wanted = steps[index % len(steps)]
        if wanted == "cancelled":
            services.order_cancel(order=order, reason="Seeded: patient cancelled", user=booker)
            continue
        services.order_arrive(order=order, user=booker)
        if wanted in ("in_progress", "completed"):
            services.order_start(order=order, user=booker)
        if wanted == "completed":
            services.order_complete(order=order, user=booker)

    requested = [
        services.order_request(
            patient=patients[n % len(patients)],
            procedure=procedures[n % len(procedures)],
            user=booker,
            requested_start=timezone.make_aware(datetime.combine(tomorrow, time(10))),
            placer_order_number=f"HIS{n:05d}",
            placer_authority="HIS",
        )
        for n in range(spec.get("requested", 0))
    ]

    return {
        "tokens": tokens,
        "rooms": [r.pk for r in rooms],
        "procedures": [p.pk for p in procedures],
        "patients": [p.pk for p in patients],
        "orders": [o.pk for o in orders],
        "requested": [o.pk for o in requested],
        "past": [
            o.pk
            for o in _seed_past(
                spec.get("past", 0), room=rooms[0], procedure=procedures[0], patients=patients, user=booker
            )
        ],
    }


def _seed_past(count: int, *, room, procedure, patients, user) -> list:
    """`count` orders of yesterday from 08:00, half an hour each, booked with the clock set back to the
    day before: no booking is taken for a time that has passed."""
    from datetime import datetime, time, timedelta

    import time_machine
    from django.utils import timezone

    from scheduling import services

    yesterday = timezone.localdate() - timedelta(days=1)
    booked_on = timezone.make_aware(datetime.combine(yesterday - timedelta(days=1), time(7)))
    with time_machine.travel(booked_on, tick=False):
        return [
            services.order_book(
                patient=patients[n % len(patients)],
                procedure=procedure,
                room=room,
                start=timezone.make_aware(datetime.combine(yesterday, time(8)) + timedelta(minutes=30 * n)),
                user=user,
                confirm_patient_overlap=True,
            )
            for n in range(count)
        ]


def _seed_main(spec_path: str, out_path: str) -> None:
    """manage.py shell's entry: read the spec, seed, write what was made for the test process."""
    spec = json.loads(Path(spec_path).read_text())
    Path(out_path).write_text(json.dumps(seed(spec)))


def serve(tmp: Path, spec: dict, **extra_env: str) -> Iterator[Server]:
    """A freshly migrated SQLite file under `tmp` (install_site), seeded with `spec`, served by gunicorn
    (1 worker)."""
    env = production_env(tmp, **extra_env)
    install_site(tmp)
    spec_path, out_path = tmp / "seed-spec.json", tmp / "seeded.json"
    spec_path.write_text(json.dumps(spec))
    manage(
        env,
        "shell",
        "-c",
        f"from tests.api.http import _seed_main; _seed_main({str(spec_path)!r}, {str(out_path)!r})",
    )
    seeded = json.loads(out_path.read_text())
    with gunicorn_serving(env, tmp) as (port, log):
        yield Server(port, log, seeded)
