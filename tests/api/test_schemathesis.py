"""The whole OpenAPI schema exercised by schemathesis against gunicorn (tests/api/http.py).

Every operation is generated from the schema (its examples, the coverage phase's edge cases, then
fuzzing, with valid and invalid data) and sent over HTTP with the token of an admin-scope client; every
answer is held to schemathesis's default checks: no server error, only documented status codes, content
types and headers, bodies as the schema describes them, invalid data refused and valid data accepted.
The database is seeded first (tests/api/http.py `seed`) so generated ids reach real records: rooms,
procedures, patients and orders with ids 1..N, orders in every status, requested ones (no room or
time yet) among them.

Then every status code the schema documents for an operation must have been answered at least once.
The generator reaches some; the others (no token, a missing scope, a spent rate budget, a taken slot, a
stale If-Match, a rule's refusal) are asked for by name as cases of the operation (`_probes`), held
to the same checks; a documented status that no request brings about is listed. Last, every integer a
client may send (an id, a limit) is sent beyond 64 bits, which the generator seldom tries.

The schema is generated in this process, at import: schemathesis makes one test per operation at
collection, before any server runs (its from_fixture loader, which would wait for the server, does not
run under pytest 9). The first test checks that gunicorn serves that same schema at /api/schema/.
Reproducible: a fixed seed, no example database, at most MAX_EXAMPLES per operation.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit

import hypothesis
import pytest
import schemathesis
from django.utils import timezone
from schemathesis.core.parameters import ParameterLocation

from tests.api.http import Caller, Server, serve

ADMIN = "Integration test (admin)"
READER = "Read only"
WORKFLOW = "Workflow only"
SPENT = "Spent budget"
SPEC = {
    "clients": {
        ADMIN: {"scopes": ["admin"]},
        READER: {"scopes": ["read"]},
        WORKFLOW: {"scopes": ["workflow"]},
        # One request a day: after the first, every request of this client is a 429.
        SPENT: {"scopes": ["admin"], "rate_limit": "1/day"},
    },
    "rooms": 3,
    "patients": 20,
    "orders": 40,
    # Requested orders for the schedule operation: the generator books a few, the probes one.
    "requested": 30,
    # Yesterday's exams still scheduled, for the no-show operation's 200.
    "past": 4,
}
MAX_EXAMPLES = 100

# operation label ("GET /api/v1/orders/{id}") -> the status codes its answers had, generated or probed.
SEEN: dict[str, set[int]] = defaultdict(set)


def _schema_document() -> dict:
    from drf_spectacular.generators import SchemaGenerator

    return json.loads(json.dumps(SchemaGenerator().get_schema(request=None, public=True), default=str))


CONFIG = schemathesis.Config.from_dict(
    {
        "seed": 20260301,
        "generation": {
            "mode": "all",
            "max-examples": MAX_EXAMPLES,
            "deterministic": True,
            "database": "none",
            # The token is the test's to send: an admin's here; none, or a lesser one, in the probes.
            "with-security-parameters": False,
        },
        "phases": {"stateful": {"enabled": False}},
        "checks": {
            # Besides 2xx, the answers a well-formed request may get: the client's rights, a missing
            # record, the rules of the front desk (409, 422), a stale If-Match, the rate budget.
            "positive_data_acceptance": {
                "expected-statuses": ["2xx", "401", "403", "404", "409", "412", "422", "429"]
            }
        },
    }
)
DOCUMENT = _schema_document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=CONFIG)

# A 400 for a request the schema calls valid fails when the schema could have said so: its codes
# include one of a constraint JSON Schema states (a minimum or maximum, a length, a choice, a required
# field, a type or format; `duration` and `weight` are the model's ranges), or the problem gives no
# codes at all. Other refusals are rules a schema cannot state, and pass: an id no record has, a rule
# over several fields or parameters, the character rules of DICOM (control characters, the backslash,
# the name delimiter, Latin-1), a date beyond the schedule's calendar, a text of spaces only.
STATABLE_CODES = {
    "required",
    "null",
    "min_length",
    "max_length",
    "min_value",
    "max_value",
    "max_digits",
    "max_decimal_places",
    "max_whole_digits",
    "max_string_length",
    "invalid_choice",
    "not_a_list",
    "empty",
    "date",
    "datetime",
    "duration",
    "weight",
}


def _schema_could_say_why(response) -> bool:
    codes = json.loads(response.content).get("codes") or {}
    return not codes or any(code in STATABLE_CODES for found in codes.values() for code in found)


def _only_empty_query_values(case, response) -> bool:
    """Whether a negative case's invalid values are all query parameters sent empty (`?limit=`).

    Django REST framework reads an optional query parameter sent empty as not sent, as an HTML form
    sends a field left blank: `?limit=` is the default limit, not a refused one. Read from the request
    as sent: a generated array or object can reach the wire as `?limit=` too.
    """
    data = case.meta.phase.data
    if getattr(data, "parameter_location", None) != ParameterLocation.QUERY:
        return False
    names = {m.parameter for m in getattr(data, "mutations", ()) if m.parameter}
    if getattr(data, "parameter", None):
        names.add(data.parameter)
    sent = parse_qs(urlsplit(response.request.url).query, keep_blank_values=True)
    return bool(names) and all(sent.get(name, [""]) == [""] for name in names)


@schema.hook
def filter_failure(context, failure, case, response) -> bool:
    """Keep every failure but three that are not the API's to fix.

    A well-formed request refused (400) for a reason a schema cannot state (above); an empty optional
    query parameter taken as absent; gunicorn's 414 for a request line over its 4094 bytes (the
    coverage phase's longest invalid queries; production runs the same gunicorn limit).
    """
    if response.status_code == 414:
        return case.meta is None or case.meta.generation.mode.is_positive
    if failure.code == "ST202" and response.status_code == 400:
        return _schema_could_say_why(response)
    if failure.code == "ST201" and case.meta is not None:
        return not _only_empty_query_values(case, response)
    return True


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    yield from serve(tmp_path_factory.mktemp("schemathesis"), SPEC)


def bearer(server: Server, client: str | None) -> dict[str, str]:
    return {} if client is None else {"Authorization": f"Bearer {server.seeded['tokens'][client]}"}


def test_gunicorn_serves_the_schema_under_test(server):
    served = Caller(server.port).get("/api/schema/?format=json")

    assert served.status == 200
    assert served.json() == DOCUMENT


@schema.parametrize()
@hypothesis.settings(suppress_health_check=list(hypothesis.HealthCheck), deadline=None)
def test_every_operation_answers_as_the_schema_says(case, server):
    headers = bearer(server, ADMIN)
    response = case.call(base_url=server.base_url, headers=headers)
    if case.method.upper() == case.operation.method.upper():  # not the coverage phase's other methods
        SEEN[case.operation.label].add(response.status_code)
    case.validate_response(response, headers=headers)


# --- the documented statuses the generator does not reach, asked for by name ---------------------


@dataclass
class Probe:
    """A request for one status of one operation: who sends it, and what."""

    client: str | None = ADMIN
    path_parameters: dict = field(default_factory=dict)
    query: dict = field(default_factory=dict)
    headers: dict = field(default_factory=dict)
    body: object = None


class Records:
    """Records in the state a probe needs, made over HTTP (as a client would) when a probe asks.

    Each order is booked in a slot of its own, 100 days ahead and later, in the first room: far from
    the seeded orders and from what the generator books near today.
    """

    def __init__(self, server: Server) -> None:
        self.api = server.client(ADMIN)
        self.room = server.seeded["rooms"][0]
        self.procedure = server.seeded["procedures"][0]
        self.patients = itertools.cycle(server.seeded["patients"])
        self.slots = itertools.count()
        self.names = itertools.count(1)
        self.past_ids = iter(server.seeded["past"])

    def free_start(self) -> str:
        n = next(self.slots)
        day = timezone.localdate() + timedelta(days=100 + n // 16)
        start = datetime.combine(day, time(8)) + timedelta(minutes=30 * (n % 16))
        return timezone.make_aware(start).isoformat()

    @staticmethod
    def past_start() -> str:
        yesterday = timezone.localdate() - timedelta(days=1)
        return timezone.make_aware(datetime.combine(yesterday, time(9))).isoformat()

    def booking(self, start: str | None = None) -> dict:
        return {
            "patient": next(self.patients),
            "procedure": self.procedure,
            "room": self.room,
            "start": start or self.free_start(),
            "confirm_patient_overlap": True,
        }

    def order(self, status: str = "SCHEDULED") -> dict:
        """A new order, moved along the workflow to `status`."""
        while True:
            answer = self.api.post("/api/v1/orders", self.booking())
            if answer.status != 409:  # a slot the generator happened to book: take the next
                break
        assert answer.status == 201, answer
        order = answer.json()
        steps = {"ARRIVED": ["arrive"], "IN_PROGRESS": ["arrive", "start"], "CANCELLED": ["cancel"]}
        for step in steps.get(status, []):
            answer = self.api.post(f"/api/v1/orders/{order['id']}/{step}", {"reason": "Probe"})
            assert answer.status == 200, answer
            order = answer.json()
        return order

    def past(self) -> dict:
        """A seeded order of yesterday still scheduled (one the generator has not marked a no-show)."""
        for pk in self.past_ids:
            order = self.api.get(f"/api/v1/orders/{pk}").json()
            if order["status"] == "SCHEDULED":
                return order
        raise AssertionError("every seeded past order was used")

    def requested(self) -> dict:
        """A requested order not yet booked (by the generator or a probe): the oldest still waiting."""
        answer = self.api.get("/api/v1/orders?status=REQUESTED&limit=1")
        assert answer.status == 200, answer
        [order] = answer.json()["results"]
        return order

    def new_patient(self) -> dict:
        n = next(self.names)
        return {
            "mrn": f"PROBE{n:05d}",
            "family_name": "Probe",
            "given_name": f"Case{n}",
            "birth_date": "1990-02-03",
        }


def _id(order: dict) -> dict:
    return {"id": order["id"]}


STALE = {"If-Match": '"999"'}
MALFORMED = {"If-Match": "not-an-etag"}


def _probes(records: Records, server: Server) -> dict[tuple[str, int], Callable[[], Probe]]:
    """(operation label, status) -> the probe that brings that status about."""
    r = records
    first_patient = {"id": server.seeded["patients"][0]}
    seeded = server.seeded["patients"][0]

    def seeded_patient() -> dict:
        found = r.api.get(f"/api/v1/patients/{seeded}").json()
        return {k: found[k] for k in ("family_name", "given_name", "birth_date")}

    def slot_taken() -> Probe:
        return Probe(body=r.booking(start=r.order()["start"]))

    def reschedule_onto_taken() -> Probe:
        taken = r.order()["start"]
        return Probe(path_parameters=_id(r.order()), body={"start": taken})

    def schedule(start: str | None = None, order: dict | None = None, **probe) -> Probe:
        body = {"room": r.room, "start": start or r.free_start()}
        return Probe(path_parameters=_id(order or r.requested()), body=body, **probe)

    steps = {
        "arrive": ("SCHEDULED", "ARRIVED"),  # (the state it succeeds from, one it is refused from)
        "start": ("ARRIVED", "SCHEDULED"),
        "complete": ("IN_PROGRESS", "SCHEDULED"),
    }
    probes: dict[tuple[str, int], Callable[[], Probe]] = {
        ("GET /api/v1/procedures", 200): lambda: Probe(),
        ("GET /api/v1/rooms", 200): lambda: Probe(),
        ("GET /api/v1/slots", 200): lambda: Probe(
            query={
                "date": (timezone.localdate() + timedelta(days=1)).isoformat(),
                "room": r.room,
                "procedure": r.procedure,
            }
        ),
        ("GET /api/v1/slots", 400): lambda: Probe(query={"room": r.room}),
        ("GET /api/v1/events", 200): lambda: Probe(query={"after": 0}),
        ("GET /api/v1/events", 400): lambda: Probe(query={"limit": 0}),
        ("GET /api/v1/patients", 200): lambda: Probe(query={"q": "Jaidee"}),
        ("GET /api/v1/patients", 400): lambda: Probe(query={}),
        ("POST /api/v1/patients", 201): lambda: Probe(body=r.new_patient()),
        ("POST /api/v1/patients", 400): lambda: Probe(body={}),
        ("POST /api/v1/patients", 409): lambda: Probe(body={**seeded_patient(), "mrn": "PROBE-DUP"}),
        ("POST /api/v1/patients", 422): lambda: Probe(
            body={**r.new_patient(), "mrn": r.api.get(f"/api/v1/patients/{seeded}").json()["mrn"]}
        ),
        ("GET /api/v1/patients/{id}", 200): lambda: Probe(path_parameters=first_patient),
        ("PATCH /api/v1/patients/{id}", 200): lambda: Probe(
            path_parameters=first_patient, body={"phone": "0812345678"}
        ),
        ("PATCH /api/v1/patients/{id}", 400): lambda: Probe(path_parameters=first_patient, body={}),
        ("PATCH /api/v1/patients/{id}", 412): lambda: Probe(
            path_parameters=first_patient, headers=STALE, body={"phone": "0812345678"}
        ),
        ("PATCH /api/v1/patients/{id}", 422): lambda: Probe(
            path_parameters=first_patient, body={"family_name": "Jai^dee"}
        ),
        ("GET /api/v1/orders", 200): lambda: Probe(),
        ("GET /api/v1/orders", 400): lambda: Probe(
            query={"date_from": "2026-03-02", "date_to": "2026-03-01"}
        ),
        ("POST /api/v1/orders", 201): lambda: Probe(body=r.booking()),
        ("POST /api/v1/orders", 400): lambda: Probe(body={}),
        ("POST /api/v1/orders", 409): slot_taken,
        ("POST /api/v1/orders", 422): lambda: Probe(body=r.booking(start=r.past_start())),
        ("GET /api/v1/orders/{id}", 200): lambda: Probe(path_parameters=_id(r.order())),
        ("GET /api/v1/orders/{id}/worklist-item", 200): lambda: Probe(path_parameters=_id(r.order())),
        ("PATCH /api/v1/orders/{id}", 200): lambda: Probe(
            path_parameters=_id(r.order()), body={"notes": "Probe"}
        ),
        ("PATCH /api/v1/orders/{id}", 400): lambda: Probe(path_parameters=_id(r.order()), body={}),
        ("PATCH /api/v1/orders/{id}", 412): lambda: Probe(
            path_parameters=_id(r.order()), headers=STALE, body={"notes": "Probe"}
        ),
        ("PATCH /api/v1/orders/{id}", 422): lambda: Probe(
            path_parameters=_id(r.order("CANCELLED")), body={"notes": "Probe"}
        ),
        ("POST /api/v1/orders/{id}/cancel", 200): lambda: Probe(
            path_parameters=_id(r.order()), body={"reason": "Probe"}
        ),
        ("POST /api/v1/orders/{id}/cancel", 400): lambda: Probe(path_parameters=_id(r.order()), body={}),
        ("POST /api/v1/orders/{id}/cancel", 412): lambda: Probe(
            path_parameters=_id(r.order()), headers=STALE, body={"reason": "Probe"}
        ),
        ("POST /api/v1/orders/{id}/cancel", 422): lambda: Probe(
            path_parameters=_id(r.order("IN_PROGRESS")), body={"reason": "Probe"}
        ),
        ("POST /api/v1/orders/{id}/reschedule", 200): lambda: Probe(
            path_parameters=_id(r.order()), body={"start": r.free_start()}
        ),
        ("POST /api/v1/orders/{id}/reschedule", 400): lambda: Probe(path_parameters=_id(r.order()), body={}),
        ("POST /api/v1/orders/{id}/reschedule", 409): reschedule_onto_taken,
        ("POST /api/v1/orders/{id}/reschedule", 412): lambda: Probe(
            path_parameters=_id(r.order()), headers=STALE, body={"start": r.free_start()}
        ),
        ("POST /api/v1/orders/{id}/reschedule", 422): lambda: Probe(
            path_parameters=_id(r.order()), body={"start": r.past_start()}
        ),
        ("POST /api/v1/orders/{id}/schedule", 200): lambda: schedule(),
        ("POST /api/v1/orders/{id}/schedule", 400): lambda: Probe(
            path_parameters=_id(r.requested()), body={}
        ),
        ("POST /api/v1/orders/{id}/schedule", 409): lambda: schedule(start=r.order()["start"]),
        ("POST /api/v1/orders/{id}/schedule", 412): lambda: schedule(headers=STALE),
        # Already booked: a booked order is moved with reschedule.
        ("POST /api/v1/orders/{id}/schedule", 422): lambda: schedule(order=r.order()),
        # A no-show once the exam's time has passed; a future exam's is refused.
        ("POST /api/v1/orders/{id}/no-show", 200): lambda: Probe(path_parameters=_id(r.past())),
        ("POST /api/v1/orders/{id}/no-show", 400): lambda: Probe(
            path_parameters=_id(r.order()), headers=MALFORMED
        ),
        ("POST /api/v1/orders/{id}/no-show", 412): lambda: Probe(
            path_parameters=_id(r.order()), headers=STALE
        ),
        ("POST /api/v1/orders/{id}/no-show", 422): lambda: Probe(path_parameters=_id(r.order())),
    }
    for step, (ready, refused) in steps.items():
        label = f"POST /api/v1/orders/{{id}}/{step}"
        probes[(label, 200)] = lambda ready=ready: Probe(path_parameters=_id(r.order(ready)))
        probes[(label, 400)] = lambda: Probe(path_parameters=_id(r.order()), headers=MALFORMED)
        probes[(label, 412)] = lambda ready=ready: Probe(path_parameters=_id(r.order(ready)), headers=STALE)
        probes[(label, 422)] = lambda refused=refused: Probe(path_parameters=_id(r.order(refused)))
    return probes


def _any_status_probe(operation, status: int) -> Probe | None:
    """The statuses every operation has: no token, a missing scope, the rate budget spent; no record."""
    ids = {"id": 1} if "{id}" in operation.path else {}
    body = {} if "requestBody" in operation.definition.raw else None
    if status == 401:
        return Probe(client=None, path_parameters=ids, body=body)
    if status == 403:
        # Reading needs "read", which the workflow-only client lacks; the read-only client may not write.
        return Probe(
            client=WORKFLOW if operation.method.upper() == "GET" else READER, path_parameters=ids, body=body
        )
    if status == 429:
        return Probe(client=SPENT, path_parameters=ids, body=body)
    if status == 404 and ids:
        return Probe(path_parameters={"id": 999_999}, body=body)
    return None


def _send(server: Server, operation, probe: Probe):
    case = operation.Case(
        path_parameters=probe.path_parameters,
        query=probe.query,
        headers=probe.headers,
        **({"body": probe.body} if probe.body is not None else {}),
    )
    headers = bearer(server, probe.client)
    response = case.call(base_url=server.base_url, headers=headers)
    try:
        case.validate_response(response, headers=headers)
    except schemathesis.errors.FailureGroup as failures:
        return response, str(failures)
    return response, None


@pytest.fixture(scope="module")
def probes(server) -> dict[tuple[str, int], Callable[[], Probe]]:
    return _probes(Records(server), server)


def test_every_documented_status_is_answered(server, probes):
    """Each operation answers each status its schema documents: generated, or probed for by name."""
    # The spent-budget client's one request of the day.
    Caller(server.port, token=server.seeded["tokens"][SPENT]).get("/api/v1/rooms")
    unreached, wrong, broken = [], [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        for status in sorted(int(code) for code in operation.definition.raw["responses"]):
            if status in SEEN[operation.label]:
                continue
            make = probes.get((operation.label, status))
            probe = make() if make else _any_status_probe(operation, status)
            if probe is None:
                unreached.append(f"{operation.label} {status}: no request of this test brings it about")
                continue
            response, failures = _send(server, operation, probe)
            SEEN[operation.label].add(response.status_code)
            if failures:
                broken.append(
                    f"{operation.label} {status}, the probe's answer breaks the schema:\n{failures}"
                )
            if response.status_code != status:
                wrong.append(f"{operation.label} {status}: the probe was answered {response.status_code}")

    assert not unreached + wrong + broken, "\n".join(unreached + wrong + broken)


def _integer_parameters() -> list[tuple[str, str, str]]:
    """(operation label, where, name) of every integer the schema lets a client send: path and query
    parameters, and the top-level fields of a JSON body."""
    found = set()
    for path, operations in DOCUMENT["paths"].items():
        for method, operation in operations.items():
            label = f"{method.upper()} {path}"
            for parameter in operation.get("parameters", []):
                if parameter["in"] in ("path", "query") and parameter["schema"].get("type") == "integer":
                    found.add((label, parameter["in"], parameter["name"]))
            body = operation.get("requestBody", {}).get("content", {}).get("application/json", {})
            component = body.get("schema", {}).get("$ref", "").rpartition("/")[2]
            for name, field_schema in (
                DOCUMENT["components"]["schemas"].get(component, {}).get("properties", {}).items()
            ):
                if field_schema.get("type") == "integer":
                    found.add((label, "body", name))
    return sorted(found)


@pytest.mark.parametrize("label,where,name", _integer_parameters())
def test_an_integer_beyond_64_bits_is_refused_not_a_server_error(server, probes, label, where, name):
    """A database integer is 64 bits: a larger id or count must be a 4xx like any id no record has, not
    an overflow in the database driver. Sent in an otherwise successful request of the operation."""
    method, path = label.split(" ", 1)
    probe = (probes.get((label, 201)) or probes[(label, 200)])()
    beyond = 2**64 + 1
    if where == "path":
        probe.path_parameters[name] = beyond
    elif where == "query":
        probe.query[name] = beyond
    else:
        probe.body = {**(probe.body or {}), name: beyond}

    response, failures = _send(server, schema[path][method], probe)

    assert response.status_code < 500 and failures is None, failures or response.text
