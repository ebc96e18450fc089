"""The order API over real HTTP: gunicorn with production settings (tests/api/http.py).

What only the deployed app shows: the bearer token and its refusals as a client's HTTP library sees
them, the address allow-list against the connection's real address (not a header the caller sends),
the scopes of API clients and of logged-in staff (with the CSRF token a session write needs), a retried
booking that books once, the per-client rate budget, and If-Match against a change made in between.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, time, timedelta

import pytest
from django.utils import timezone

from tests.api.http import Caller, Server, serve

ROOM, PROCEDURE = 1, 1

CLIENT_SCOPES = {
    "Reader": ["read"],
    "Booker": ["book"],
    "Workflow": ["workflow"],
    "Admin": ["admin"],
    "Clinic portal": ["read", "book"],
}
SPEC = {
    "staff": {
        "frontdesk": ["Front desk"],
        "tech": ["Technologist"],
        "admin": ["Admin"],
        "nobody": [],
    },
    "superusers": ["root"],
    "clients": {
        **{name: {"scopes": scopes} for name, scopes in CLIENT_SCOPES.items()},
        "Disabled": {"scopes": ["admin"], "enabled": False},
        "Desk network": {"scopes": ["read"], "allowed_addresses": "127.0.5.0/24\n10.20.0.0/16"},
        "Throttled": {"scopes": ["read"], "rate_limit": "5/min"},
        "Neighbour": {"scopes": ["read"]},
        "Retrying portal": {"scopes": ["read", "book"]},
        "HIS": {"scopes": ["read", "book"]},
        "Scanner desk": {"scopes": ["read", "book", "workflow"]},
    },
    "rooms": 2,
    "patients": 6,
    "orders": 4,
    "requested": 3,
}
PROCEDURES = "/api/v1/procedures"


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("api-http"), SPEC)


def start_at(days: int, hour: int, minute: int = 0) -> str:
    """An ISO start `days` from today at hour:minute, clinic time: each test books on days of its own."""
    day = timezone.localdate() + timedelta(days=days)
    return timezone.make_aware(datetime.combine(day, time(hour, minute))).isoformat()


def booking(server: Server, start: str, **extra) -> dict:
    return {
        "patient": server.seeded["patients"][0],
        "procedure": PROCEDURE,
        "room": ROOM,
        "start": start,
        "confirm_patient_overlap": True,
        **extra,
    }


# --- the token ------------------------------------------------------------------------------------


def test_no_token_is_a_401_problem_asking_for_a_bearer_token(server):
    answer = server.anonymous().get(PROCEDURES)

    assert answer.status == 401
    assert answer.problem()["type"] == "/api/problems/not-authenticated"
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="api"'


@pytest.mark.parametrize(
    "token",
    ["nonsense", "abc.def", "{prefix}.{wrong_secret}", "{prefix}", "{token}x"],
    ids=["garbage", "unknown-prefix", "wrong-secret", "prefix-only", "token-plus-one"],
)
def test_a_wrong_token_is_a_401_problem_whatever_is_wrong_with_it(server, token):
    right = server.seeded["tokens"]["Reader"]
    prefix = right.partition(".")[0]
    sent = token.format(prefix=prefix, wrong_secret="x" * 43, token=right)

    answer = Caller(server.port, token=sent).get(PROCEDURES)

    assert answer.status == 401
    document = answer.problem()
    assert document["type"] == "/api/problems/not-authenticated"
    assert document["detail"] == "Invalid API token."
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_right_token_is_let_in(server):
    answer = server.client("Reader").get(PROCEDURES)

    assert answer.status == 200
    assert [p["code_value"] for p in answer.json()] == ["CTCHEST", "CTHEAD"]


def test_a_disabled_client_is_a_403_problem_with_its_right_token(server):
    answer = server.client("Disabled").get(PROCEDURES)

    assert answer.status == 403
    document = answer.problem()
    assert document["type"] == "/api/problems/forbidden"
    assert "disabled" in document["detail"]


def test_the_allow_list_lets_in_an_address_inside_it(server):
    assert server.client("Desk network", source="127.0.5.7").get(PROCEDURES).status == 200


def test_the_allow_list_refuses_an_address_outside_it_naming_it(server):
    answer = server.client("Desk network", source="127.0.6.7").get(PROCEDURES)

    assert answer.status == 403
    document = answer.problem()
    assert document["type"] == "/api/problems/forbidden"
    assert "127.0.6.7" in document["detail"]


def test_a_forwarded_for_header_does_not_get_an_outside_address_in(server):
    # No proxy is configured (RIS_PROXY_COUNT 0): the header is the caller's word, not its address.
    outside = server.client("Desk network", source="127.0.6.8")

    answer = outside.get(PROCEDURES, headers={"X-Forwarded-For": "127.0.5.7"})

    assert answer.status == 403
    assert "127.0.6.8" in answer.problem()["detail"]


# --- scopes: who may do what -------------------------------------------------------------------------

READ, BOOK, WORKFLOW = "read", "book", "workflow"
ALL = {READ, BOOK, WORKFLOW}

# Who has which scopes: API clients by what the admin gave them ("admin" is all of them); staff by their
# roles, as on the pages (front desk books, the technologist moves exams along, the Admin role reads).
CALLER_SCOPES = {
    "client:Reader": {READ},
    "client:Booker": {BOOK},
    "client:Workflow": {WORKFLOW},
    "client:Admin": ALL,
    "client:Clinic portal": {READ, BOOK},
    "staff:frontdesk": {READ, BOOK},
    "staff:tech": {READ, WORKFLOW},
    "staff:admin": {READ},
    "staff:nobody": set(),
    "staff:root": ALL,
}

# (method, path, the scope it needs, body, headers, the status when let in). The writes are sent so
# that nothing changes when they are let in: an empty body (400 at its fields) or a stale If-Match
# (412), so every cell of the matrix can run against the same records in any order.
STALE = {"If-Match": '"999"'}
ENDPOINTS = [
    ("GET", PROCEDURES, READ, None, {}, 200),
    ("GET", "/api/v1/rooms", READ, None, {}, 200),
    ("GET", "/api/v1/slots?date={tomorrow}&room=1&procedure=1", READ, None, {}, 200),
    ("GET", "/api/v1/patients?q=Jaidee", READ, None, {}, 200),
    ("GET", "/api/v1/patients/{patient}", READ, None, {}, 200),
    ("GET", "/api/v1/orders", READ, None, {}, 200),
    ("GET", "/api/v1/orders?status=REQUESTED", READ, None, {}, 200),
    ("GET", "/api/v1/orders/{order}", READ, None, {}, 200),
    ("GET", "/api/v1/orders/{order}/worklist-item", READ, None, {}, 200),
    ("GET", "/api/v1/events", READ, None, {}, 200),
    ("POST", "/api/v1/patients", BOOK, {}, {}, 400),
    ("PATCH", "/api/v1/patients/{patient}", BOOK, {}, {}, 400),
    ("POST", "/api/v1/orders", BOOK, {}, {}, 400),
    ("PATCH", "/api/v1/orders/{order}", BOOK, {}, {}, 400),
    ("POST", "/api/v1/orders/{order}/reschedule", BOOK, {}, {}, 400),
    ("POST", "/api/v1/orders/{requested}/schedule", BOOK, {}, {}, 400),
    ("POST", "/api/v1/orders/{order}/cancel", BOOK, {}, {}, 400),
    ("POST", "/api/v1/orders/{order}/arrive", WORKFLOW, None, STALE, 412),
    ("POST", "/api/v1/orders/{order}/start", WORKFLOW, None, STALE, 412),
    ("POST", "/api/v1/orders/{order}/complete", WORKFLOW, None, STALE, 412),
]
MATRIX = [
    pytest.param(caller, *endpoint, id=f"{caller}-{endpoint[0]}-{endpoint[1]}")
    for caller in CALLER_SCOPES
    for endpoint in ENDPOINTS
]


@pytest.fixture(scope="module")
def callers(server) -> dict[str, Caller]:
    """One caller per row of CALLER_SCOPES; staff logged in once through the login page."""
    made = {}
    for key in CALLER_SCOPES:
        kind, name = key.split(":")
        made[key] = server.client(name) if kind == "client" else server.staff(name)
    return made


@pytest.mark.parametrize("caller,method,path,scope,body,headers,let_in", MATRIX)
def test_the_access_matrix(server, callers, caller, method, path, scope, body, headers, let_in):
    url = path.format(
        tomorrow=(timezone.localdate() + timedelta(days=1)).isoformat(),
        patient=server.seeded["patients"][0],
        order=server.seeded["orders"][0],
        requested=server.seeded["requested"][0],
    )

    answer = callers[caller].request(method, url, body, headers)

    if scope in CALLER_SCOPES[caller]:
        assert answer.status == let_in, answer
    else:
        assert answer.status == 403, answer
        document = answer.problem()
        assert document["type"] == "/api/problems/forbidden"
        assert f"“{scope}”" in document["detail"]


def test_a_staff_write_without_the_csrf_token_is_refused(server):
    clerk = server.staff("frontdesk")
    start = start_at(20, 9)
    without_token = Caller(server.port, cookies=dict(clerk.cookies), csrf=False)

    refused = without_token.post("/api/v1/orders", booking(server, start))
    booked = clerk.post("/api/v1/orders", booking(server, start))

    assert refused.status == 403
    assert "CSRF" in refused.problem()["detail"]
    assert booked.status == 201, booked
    assert booked.json()["booked_by"] == "frontdesk"


def test_an_api_booking_names_the_client_as_who_booked(server):
    answer = server.client("HIS").post("/api/v1/orders", booking(server, start_at(21, 9)))

    assert answer.status == 201, answer
    assert answer.json()["booked_by"] == "api-his"


def test_a_taken_slot_is_a_409_naming_the_order_that_holds_it(server):
    his = server.client("HIS")
    first = his.post("/api/v1/orders", booking(server, start_at(28, 9)))

    second = his.post(
        "/api/v1/orders", booking(server, start_at(28, 9, 15), patient=server.seeded["patients"][1])
    )

    assert first.status == 201, first
    assert second.status == 409
    document = second.problem()
    assert document["type"] == "/api/problems/slot-taken"
    assert document["order"] == {
        "id": first.json()["id"],
        "accession_number": first.json()["accession_number"],
        "url": first.headers["Location"],
    }
    assert first.json()["accession_number"] in document["errors"]["start"][0]


@pytest.mark.parametrize(
    "language,message",
    [
        ("en", "This time has already passed; choose a later one."),
        ("th", "เวลานี้ผ่านไปแล้ว กรุณาเลือกเวลาที่หลังจากนี้"),
    ],
)
def test_a_refusal_is_worded_as_the_booking_form_words_it_in_the_callers_language(server, language, message):
    his = server.client("HIS")
    his.language = language

    answer = his.post("/api/v1/orders", booking(server, start_at(-1, 9)))

    assert answer.status == 422
    assert answer.problem()["errors"]["start"] == [message]
    assert answer.headers["Content-Language"] == language


# --- a retried booking books once ------------------------------------------------------------------


def test_a_retry_with_the_same_idempotency_key_gets_the_first_answer_and_books_once(server):
    portal = server.client("Retrying portal")
    body = booking(server, start_at(22, 10), placer_order_number="PO-1001")
    key = {"Idempotency-Key": "5b0c6a52-1d6f-4a57-9d1c-3f0d1b2c7e11"}

    first = portal.post("/api/v1/orders", body, headers=key)
    retry = portal.post("/api/v1/orders", body, headers=key)
    found = portal.get("/api/v1/orders?placer_order_number=PO-1001")

    assert first.status == 201, first
    assert "Idempotent-Replayed" not in first.headers
    assert retry.status == 201
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry.headers["Location"] == first.headers["Location"] == f"/api/v1/orders/{first.json()['id']}"
    assert [o["id"] for o in found.json()["results"]] == [first.json()["id"]]


def test_the_same_idempotency_key_with_another_body_is_a_422_and_books_nothing(server):
    portal = server.client("Retrying portal")
    key = {"Idempotency-Key": "key-reused-for-another-booking"}
    first = portal.post(
        "/api/v1/orders", booking(server, start_at(23, 9), placer_order_number="PO-2001"), headers=key
    )

    other = portal.post(
        "/api/v1/orders", booking(server, start_at(23, 11), placer_order_number="PO-2002"), headers=key
    )

    assert first.status == 201, first
    assert other.status == 422
    assert other.problem()["type"] == "/api/problems/idempotency-key-reused"
    assert portal.get("/api/v1/orders?placer_order_number=PO-2002").json()["results"] == []


def test_a_retry_without_a_key_is_stopped_by_the_placer_order_number(server):
    portal = server.client("Retrying portal")
    first = portal.post("/api/v1/orders", booking(server, start_at(24, 9), placer_order_number="PO-3001"))

    again = portal.post("/api/v1/orders", booking(server, start_at(24, 14), placer_order_number="PO-3001"))

    assert first.status == 201, first
    assert again.status == 409
    document = again.problem()
    assert document["type"] == "/api/problems/placer-number-taken"
    assert document["order"]["id"] == first.json()["id"]


# --- the rate budget ------------------------------------------------------------------------------


def test_the_sixth_request_in_a_minute_of_a_five_a_minute_client_is_a_429_with_retry_after(server):
    throttled, neighbour = server.client("Throttled"), server.client("Neighbour")

    statuses = [throttled.get(PROCEDURES).status for _ in range(5)]
    sixth = throttled.get(PROCEDURES)

    assert statuses == [200] * 5
    assert sixth.status == 429
    assert sixth.problem()["type"] == "/api/problems/throttled"
    assert 1 <= int(sixth.headers["Retry-After"]) <= 60
    # The budget is the client's own: another client is not held back.
    assert neighbour.get(PROCEDURES).status == 200


# --- If-Match: a change made in between is not overwritten ----------------------------------------


def test_a_change_with_the_etag_of_an_older_version_is_a_412(server):
    desk = server.client("Scanner desk")
    booked = desk.post("/api/v1/orders", booking(server, start_at(25, 9)))
    url = booked.headers["Location"]
    read = desk.get(url)
    etag = read.headers["ETag"]

    moved = desk.post(f"{url}/reschedule", {"start": start_at(25, 13)}, headers={"If-Match": etag})
    stale = desk.post(f"{url}/cancel", {"reason": "Patient called"}, headers={"If-Match": etag})
    now = desk.get(url)

    assert booked.status == 201, booked
    assert read.status == 200 and etag == f'"{read.json()["version"]}"'
    assert moved.status == 200, moved
    assert moved.headers["ETag"] != etag
    assert stale.status == 412
    assert stale.problem()["type"] == "/api/problems/stale-version"
    assert stale.headers["ETag"] == moved.headers["ETag"]
    assert now.json()["status"] == "SCHEDULED"
    assert now.json()["start"] == moved.json()["start"]


def test_a_clerk_and_a_client_holding_the_same_etag_cannot_both_change_the_order(server):
    client, clerk = server.client("Scanner desk"), server.staff("frontdesk")
    booked = client.post("/api/v1/orders", booking(server, start_at(26, 9)))
    url = booked.headers["Location"]
    etag = clerk.get(url).headers["ETag"]
    assert client.get(url).headers["ETag"] == etag

    first = client.patch(url, {"notes": "Bring earlier films"}, headers={"If-Match": etag})
    second = clerk.patch(url, {"notes": "Fasting from midnight"}, headers={"If-Match": etag})

    assert first.status == 200, first
    assert second.status == 412
    assert second.problem()["type"] == "/api/problems/stale-version"
    assert client.get(url).json()["notes"] == "Bring earlier films"


def test_the_workflow_steps_honour_if_match(server):
    desk = server.client("Scanner desk")
    booked = desk.post("/api/v1/orders", booking(server, start_at(27, 9)))
    url, etag = booked.headers["Location"], booked.headers["ETag"]

    arrived = desk.post(f"{url}/arrive", headers={"If-Match": etag})
    started_stale = desk.post(f"{url}/start", headers={"If-Match": etag})
    started = desk.post(f"{url}/start", headers={"If-Match": arrived.headers["ETag"]})

    assert arrived.status == 200, arrived
    assert started_stale.status == 412
    assert started.status == 200 and started.json()["status"] == "IN_PROGRESS"


# --- a requested order: on the To schedule list, booked with its ETag --------------------------------


def test_a_clerk_books_a_requested_order_from_the_list_and_a_second_booking_with_its_etag_is_a_412(server):
    clerk, client = server.staff("frontdesk"), server.client("HIS")
    to_schedule = clerk.get("/api/v1/orders?status=REQUESTED&limit=200")
    [waiting] = [row for row in to_schedule.json()["results"] if row["id"] == server.seeded["requested"][1]]
    url = f"/api/v1/orders/{waiting['id']}"
    etag = clerk.get(url).headers["ETag"]

    booked = clerk.post(
        f"{url}/schedule", {"room": ROOM, "start": start_at(29, 9)}, headers={"If-Match": etag}
    )
    again = client.post(
        f"{url}/schedule", {"room": ROOM, "start": start_at(29, 10)}, headers={"If-Match": etag}
    )
    still = clerk.get("/api/v1/orders?status=REQUESTED&limit=200").json()["results"]

    assert to_schedule.status == 200
    assert (waiting["status"], waiting["room"], waiting["start"]) == ("REQUESTED", None, None)
    assert booked.status == 200, booked
    assert (booked.json()["status"], booked.json()["room"]["id"]) == ("SCHEDULED", ROOM)
    assert datetime.fromisoformat(booked.json()["start"]) == datetime.fromisoformat(start_at(29, 9))
    assert booked.json()["accession_number"] == waiting["accession_number"]
    assert again.status == 412
    assert again.problem()["type"] == "/api/problems/stale-version"
    assert waiting["id"] not in [row["id"] for row in still]
    assert clerk.get(url).json()["start"] == booked.json()["start"]
