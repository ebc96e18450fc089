"""The HL7 v2 link in `make bench` (issue 15): orders from the HIS through MLLP, and the outbox back to it,
on the bench PostgreSQL database that bench/run.py seeded.

- Inbound: `manage.py serve_hl7` in a subprocess, HL7_CLIENTS connections of the bench's own MLLP client,
  each sending one message at a time and waiting for its ACK. ORM^O01 NW (v2.3.1, IHE RAD-2) with a
  catalog code and a start time in a free slot, so each order is booked and its worklist file written
  before the ACK; the baseline is ADT^A08 carrying the patient exactly as stored (a message that changes
  nothing), in turns with the orders so both meet the same moments of a shared machine. Then each kind
  on one connection alone: the time of one message with nobody ahead of it.
- Outbox: a receiver that was down for an hour: OUTBOX_EVENTS order events queued for it (bookings and
  status changes written to the order-event stream while nothing listened), then a small MLLP listener
  in the bench process that answers AA, and `manage.py hl7_outbox` draining the queue. Checked: every
  queued message arrived, in order per order. The baseline is the same messages sent by the bench's own
  client to the same listener: what MLLP and the listener alone cost.

`python bench/hl7_bench.py backlog '{...}'` is the Django side of the outbox measure (bench_outbox runs it
with the bench's environment).
"""

from __future__ import annotations

import json
import os
import re
import socket
import socketserver
import subprocess
import sys
import threading
import time as clock
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from figures import free_port, pct

ROOT = Path(__file__).resolve().parent.parent
SENDER = "BENCHHIS"  # MSH-3 of the bench's messages, listed in HL7_KNOWN_SENDERS
HL7_CLIENTS = 4
ORM_SECONDS = 20
A08_SECONDS = 10
SINGLE_SECONDS = 5  # each kind on one connection, after the turns
ROUNDS = 4  # A08, ORM, A08, ORM ... A08: each kind's seconds in ROUNDS phases, A08 once more at the end
WARMUP = 20  # messages of each kind before the timed phases (the sender's record is made by the first)
OUTBOX_EVENTS = 5000
OUTBOX_TIMEOUT = 600
TARGET_RATE, TARGET_P95 = 100, 50
START, END, FS, CR = b"\x0b", b"\x1c", "|", "\r"
# The bench rooms are open 07:00-20:00 every day (bench/stages.py), in the clinic's time zone, which is
# the time zone of an HL7 time stamp without an offset.
OPENS_MINUTES, OPEN_MINUTES = 7 * 60, 13 * 60


def log(message: str) -> None:
    print(f"[{clock.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- MLLP ----------------------------------------------------------------------------------------------


class Mllp:
    """One MLLP connection: a frame out, the one answer frame back (the bench's own client, so the
    figures do not depend on the RIS's MLLP code on both ends)."""

    def __init__(self, port: int, timeout: float = 30):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, payload: bytes) -> bytes:
        self.sock.sendall(START + payload + END + b"\r")
        while END + b"\r" not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("the listener closed the connection before its ACK")
            self.buffer += chunk
        answer, _sep, self.buffer = self.buffer.partition(END + b"\r")
        return answer.lstrip(START)

    def close(self) -> None:
        self.sock.close()


def field(message: bytes, segment: str, number: int) -> str:
    """Field `number` of the first `segment` of a message (MSH counted as HL7 counts it), "" if none."""
    text = message.decode("utf-8", errors="replace")
    for line in text.split(CR):
        if line.startswith(segment + FS):
            fields = line.split(FS)
            index = number - 1 if segment == "MSH" else number
            return fields[index] if index < len(fields) else ""
    return ""


class _AckHandler(socketserver.BaseRequestHandler):
    """The HIS's side of the outbox: answers every frame AA and notes what arrived, in arrival order."""

    def handle(self) -> None:
        server: Listener = self.server  # type: ignore[assignment]
        self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = b""
        while True:
            while END + b"\r" not in buffer:
                chunk = self.request.recv(65536)
                if not chunk:
                    return
                buffer += chunk
            payload, _sep, buffer = buffer.partition(END + b"\r")
            payload = payload.lstrip(START)
            control_id = field(payload, "MSH", 10)
            with server.lock:
                server.received.append((clock.perf_counter(), control_id, field(payload, "MSH", 9), payload))
            ack = CR.join(
                [
                    FS.join(
                        ["MSH", "^~\\&", SENDER, "HOSP", field(payload, "MSH", 3), field(payload, "MSH", 4)]
                        + [datetime.now().strftime("%Y%m%d%H%M%S"), "", "ACK", f"A{control_id}", "P"]
                        + [field(payload, "MSH", 12) or "2.3.1"]
                    ),
                    FS.join(["MSA", "AA", control_id]),
                ]
            )
            self.request.sendall(START + ack.encode() + END + b"\r")


class Listener(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int):
        super().__init__(("127.0.0.1", port), _AckHandler)
        self.lock = threading.Lock()
        self.received: list[tuple[float, str, str, bytes]] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()


# --- messages ------------------------------------------------------------------------------------------


def hl7_time(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S")


def segment(name: str, values: dict[int, str]) -> str:
    fields = [name] + [""] * max(values)
    for number, value in values.items():
        fields[number] = value
    return FS.join(fields)


def msh(message_type: str, control_id: str, now: datetime) -> str:
    # MSH-2 is the encoding characters; segment() counts from MSH-1 = the separator itself, so shift.
    return FS.join(
        ["MSH", "^~\\&", SENDER, "HOSP", "RIS", "RADIOLOGY", hl7_time(now), "", message_type, control_id]
        + ["P", "2.3.1", "", "", "", "", "", "UNICODE UTF-8"]
    )


def pid(patient: dict) -> str:
    """PID of a patient exactly as the RIS stores it (MRN with its issuer, name, birth date, sex), so
    an ADT^A08 carrying it changes nothing and an order carrying it does not update the patient."""
    identifiers = f"{patient['mrn']}^^^{patient['issuer']}^MR"
    if patient["national_id"]:
        identifiers += f"~{patient['national_id']}^^^THA^NI"
    name = f"{patient['family_name']}^{patient['given_name']}"
    if patient["romanized_family_name"]:
        name += f"~{patient['romanized_family_name']}^{patient['romanized_given_name']}"
    birth = patient["birth_date"].strftime("%Y%m%d") if patient["birth_date"] else ""
    return segment("PID", {1: "1", 3: identifiers, 5: name, 7: birth, 8: patient["sex"]})


def orm_new(control_id: str, placer: str, patient: dict, code: str, meaning: str, start: datetime) -> bytes:
    """ORM^O01 NW as IHE RAD-2 puts it: the start time in ORC-7 and OBR-27, the code in OBR-4."""
    now = datetime.now()
    timing = f"^^^{hl7_time(start)}^^R"
    doctor = "D0042^Wattana^Somsak"
    return CR.join(
        [
            msh("ORM^O01", control_id, now),
            pid(patient),
            segment("PV1", {1: "1", 2: "O", 8: doctor}),
            segment("ORC", {1: "NW", 2: f"{placer}^{SENDER}", 7: timing, 9: hl7_time(now), 12: doctor}),
            segment(
                "OBR",
                {
                    1: "1",
                    2: f"{placer}^{SENDER}",
                    4: f"{code}^{meaning}^RIS",
                    16: doctor,
                    27: timing,
                    31: "Follow-up",
                },
            ),
        ]
    ).encode()


def adt_a08(control_id: str, patient: dict) -> bytes:
    now = datetime.now()
    return CR.join(
        [
            msh("ADT^A08", control_id, now),
            segment("EVN", {1: "A08", 2: hl7_time(now)}),
            pid(patient),
            segment("PV1", {1: "1", 2: "O"}),
        ]
    ).encode()


# --- the plan ------------------------------------------------------------------------------------------


def patients(bench) -> list[dict]:
    columns = (
        "id",
        "mrn",
        "issuer",
        "national_id",
        "family_name",
        "given_name",
        "romanized_family_name",
        "romanized_given_name",
        "birth_date",
        "sex",
        "version",
    )
    rows = bench.sql(
        f"SELECT {', '.join(columns)} FROM scheduling_patient WHERE merged_into_id IS NULL ORDER BY id"
    )
    return [dict(zip(columns, row, strict=True)) for row in rows]


def order_days(bench, window_days: int, needed_slots: int, slots_per_day: int) -> list[date]:
    """Days inside the worklist export window with no order yet (so every slot is free and every booked
    order gets its file), as many as `needed_slots` takes."""
    clinic = ZoneInfo(bench.env.get("TIME_ZONE", "Asia/Bangkok"))
    today = datetime.now(clinic).date()
    taken = {
        row[0]
        for row in bench.sql(
            f"SELECT DISTINCT (scheduled_start AT TIME ZONE '{clinic.key}')::date FROM scheduling_order "
            "WHERE scheduled_start IS NOT NULL AND status <> 'CANCELLED'"
        )
    }
    days = [today + timedelta(days=d) for d in range(1, window_days)]
    days = [day for day in days if day not in taken]
    return days[: -(-needed_slots // slots_per_day)]


def order_plan(bench, days: list[date]) -> list[tuple[str, str, datetime]]:
    """(code, meaning, start) for every slot of `days`: each modality's shortest procedure back to back
    from opening time, each start time once per room of the modality (the RIS books the first free room
    by name), time by time across the modalities."""
    rooms: dict[str, int] = {}
    for (modality,) in bench.sql("SELECT modality FROM scheduling_room WHERE active ORDER BY name"):
        rooms[modality] = rooms.get(modality, 0) + 1
    procedures = {
        modality: (code, meaning, minutes)
        for modality, code, meaning, minutes in bench.sql(
            "SELECT DISTINCT ON (modality) modality, code_value, code_meaning, default_duration "
            "FROM scheduling_procedure WHERE active ORDER BY modality, default_duration, id"
        )
    }
    plan = []
    for day in days:
        per_modality = []
        for modality, count in rooms.items():
            code, meaning, minutes = procedures[modality]
            starts = range(OPENS_MINUTES, OPENS_MINUTES + OPEN_MINUTES - minutes + 1, minutes)
            per_modality.append(
                [
                    (code, meaning, datetime.combine(day, time()) + timedelta(minutes=m))
                    for m in starts
                    for _ in range(count)
                ]
            )
        for k in range(max(len(s) for s in per_modality)):
            plan.extend(s[k] for s in per_modality if k < len(s))
    return plan


def slots_per_day(bench) -> int:
    return len(order_plan(bench, [date(2000, 1, 1)]))


# --- 1. inbound ----------------------------------------------------------------------------------------


def start_serve_hl7(bench, py: str, env: dict, port: int):
    proc = bench.start("serve_hl7", py, "manage.py", "serve_hl7", env=env)
    deadline = clock.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            pass
        if clock.monotonic() > deadline or proc.poll() is not None:
            raise SystemExit(f"serve_hl7 did not start:\n{(bench.tmp / 'serve_hl7.log').read_text()}")
        clock.sleep(0.2)


def run_phase(port: int, clients: int, seconds: float, message, *, limit: int | None = None) -> dict:
    """`clients` connections sending message(n) (the n-th of the phase) one at a time for `seconds`
    (or `limit` messages); ACK latency and codes."""
    cursor, lock = {"next": 0}, threading.Lock()
    outs = [{"times": [], "codes": {}, "samples": [], "exhausted": False} for _ in range(clients)]
    stop_at = clock.monotonic() + seconds

    def client(c: int) -> None:
        out = outs[c]
        conn = Mllp(port)
        try:
            while clock.monotonic() < stop_at:
                with lock:
                    n = cursor["next"]
                    cursor["next"] += 1
                if limit is not None and n >= limit:
                    return
                try:
                    payload = message(n)
                except IndexError:
                    out["exhausted"] = True  # no free slot left in the plan
                    return
                t0 = clock.perf_counter()
                try:
                    ack = conn.send(payload)
                except OSError as exc:  # the connection broke: counted, and this client stops
                    out["codes"]["no ACK"] = out["codes"].get("no ACK", 0) + 1
                    out["samples"].append(repr(exc))
                    return
                out["times"].append((clock.perf_counter() - t0) * 1000)
                code = field(ack, "MSA", 1) or "?"
                out["codes"][code] = out["codes"].get(code, 0) + 1
                if code != "AA" and len(out["samples"]) < 3:
                    out["samples"].append(ack.decode("utf-8", errors="replace"))
        finally:
            conn.close()

    t0 = clock.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = clock.perf_counter() - t0
    times = [t for o in outs for t in o["times"]]
    codes: dict[str, int] = {}
    for o in outs:
        for code, k in o["codes"].items():
            codes[code] = codes.get(code, 0) + k
    return {
        "clients": clients,
        "seconds": elapsed,
        "messages": len(times),
        "rate": len(times) / elapsed,
        "p50": pct(times, 50),
        "p95": pct(times, 95),
        "max": max(times, default=float("nan")),
        "codes": codes,
        "errors": sum(k for code, k in codes.items() if code != "AA"),
        "samples": [s for o in outs for s in o["samples"]][:3],
        "exhausted": any(o["exhausted"] for o in outs),
        "times": times,
    }


def bench_inbound(bench, py: str) -> dict:
    window = int(bench.env.get("WORKLIST_WINDOW_DAYS_AHEAD", "30"))
    per_day = slots_per_day(bench)
    # Room for the orders at twice the target rate, and a few more for the warm-up.
    days = order_days(bench, window, 2 * TARGET_RATE * ORM_SECONDS * 2 + WARMUP, per_day)
    plan = order_plan(bench, days)
    people = patients(bench)
    port = free_port()
    env = {
        **bench.env,
        "HL7_PORT": str(port),
        "HL7_BIND": "127.0.0.1",
        "HL7_KNOWN_SENDERS": SENDER,
    }
    log(
        f"7a. HL7 inbound: serve_hl7, {HL7_CLIENTS} MLLP clients; ORM^O01 NW {ORM_SECONDS} s and ADT^A08 "
        f"(no change) {A08_SECONDS * (ROUNDS + 1) / ROUNDS:.1f} s in turns; {len(plan)} free slots on {len(days)} days"
    )
    proc = start_serve_hl7(bench, py, env, port)
    sent = {"orm": 0, "a08": 0}

    def orm(n: int) -> bytes:
        k = sent["orm"] + n
        code, meaning, start = plan[k]
        # A patient per slot of a time (consecutive k), back after len(people) slots: days later.
        return orm_new(f"ORM{k:06d}", f"HB{k:06d}", people[k % len(people)], code, meaning, start)

    def a08(n: int) -> bytes:
        k = sent["a08"] + n
        return adt_a08(f"A08{k:06d}", people[k % len(people)])

    roots, base = {"serve_hl7": proc.pid}, database(bench)
    versions_before = {p["id"]: p["version"] for p in people}
    # Each kind's totals over its phases: latencies, seconds, ACK codes, CPU seconds, commits.
    totals = {
        kind: {
            "times": [],
            "seconds": 0.0,
            "codes": {},
            "used": {},
            "commits": 0,
            "exhausted": False,
            "phases": [],
        }
        for kind in ("orm", "a08")
    }
    try:
        for kind, make in (("a08", a08), ("orm", orm)):
            warm = run_phase(port, 1, 60, make, limit=WARMUP)
            sent[kind] += warm["messages"]
            if warm["errors"]:
                raise SystemExit(f"warm-up {kind} refused: {warm['codes']} {warm['samples']}")
        # The baseline and the orders take turns, so that both meet the same moments of a shared machine.
        schedule = [("a08", a08, A08_SECONDS / ROUNDS), ("orm", orm, ORM_SECONDS / ROUNDS)] * ROUNDS
        schedule.append(("a08", a08, A08_SECONDS / ROUNDS))
        for kind, make, seconds in schedule:
            commits_before = commits(bench)
            with CpuMeter(roots, base) as meter:
                phase = run_phase(port, HL7_CLIENTS, seconds, make)
            sent[kind] += phase["messages"]
            total = totals[kind]
            total["times"] += phase["times"]
            total["seconds"] += phase["seconds"]
            total["codes"] = merge_codes(total["codes"], phase["codes"])
            total["commits"] += commits(bench) - commits_before
            total["exhausted"] |= phase["exhausted"]
            for k, v in meter.used.items():
                total["used"][k] = total["used"].get(k, 0.0) + v
            total.setdefault("samples", []).extend(phase["samples"])
            total["phases"].append({"rate": phase["rate"], "p95": phase["p95"]})
            log(
                f"   {kind}: {phase['rate']:.1f}/s, p50 {phase['p50']:.0f} ms, p95 {phase['p95']:.0f} ms, {phase['codes']}"
            )
        turns_end = sent["orm"]  # the placer numbers of the orders sent in turns end here
        # One connection alone: the time one message takes with nobody ahead of it in the sender's queue.
        single = {}
        for kind, make in (("a08", a08), ("orm", orm)):
            phase = run_phase(port, 1, SINGLE_SECONDS, make)
            sent[kind] += phase["messages"]
            single[kind] = {k: phase[k] for k in ("messages", "rate", "p50", "p95", "errors")}
            log(f"   {kind}, one connection: {single[kind]}")
    finally:
        bench.stop(proc)

    runs = {}
    for kind, total in totals.items():
        messages, used = len(total["times"]), total["used"]
        cpu_ms = {k: used[k] * 1000 / max(messages, 1) for k in ("serve_hl7", "postgres", "bench client")}
        ours = used["serve_hl7"] + used["postgres"] + used["bench client"]
        runs[kind] = {
            "clients": HL7_CLIENTS,
            "messages": messages,
            "seconds": total["seconds"],
            "rate": messages / total["seconds"],
            "p50": pct(total["times"], 50),
            "p95": pct(total["times"], 95),
            "max": max(total["times"], default=float("nan")),
            "codes": total["codes"],
            "errors": sum(k for code, k in total["codes"].items() if code != "AA"),
            "samples": total.get("samples", [])[:3],
            "exhausted": total["exhausted"],
            "phases": total["phases"],
            "cpu_ms": cpu_ms,
            "cpu_ms_total": sum(cpu_ms.values()),
            "others_cores": max(used["machine"] - ours, 0.0) / total["seconds"],
            "commits_per_message": total["commits"] / max(messages, 1),
        }
    # What the timed phase's orders became (placer numbers after the warm-up's), and whether each booked
    # one has its worklist file.
    timed = (
        f"placer_order_number LIKE 'HB%' AND placer_order_number >= 'HB{WARMUP:06d}' "
        f"AND placer_order_number < 'HB{turns_end:06d}'"
    )
    statuses = dict(bench.sql(f"SELECT status, count(*) FROM scheduling_order WHERE {timed} GROUP BY status"))
    accessions = [
        row[0]
        for row in bench.sql(
            f"SELECT accession_number FROM scheduling_order WHERE {timed} AND status = 'SCHEDULED'"
        )
    ]
    folder = bench.worklists / bench.env["WORKLIST_CALLED_AE"]
    files = sum(1 for accession in accessions if (folder / f"{accession}.wl").exists())
    changed = sum(
        1 for p in patients(bench) if p["id"] in versions_before and p["version"] != versions_before[p["id"]]
    )
    return {
        "orm": runs["orm"],
        "a08": runs["a08"],
        "statuses": statuses,
        "booked": statuses.get("SCHEDULED", 0),
        "requested": statuses.get("REQUESTED", 0),
        "files": files,
        "patients_changed": changed,
        "warmup": WARMUP,
        "plan_days": len(days),
        "single": single,
    }


def merge_codes(*many: dict[str, int]) -> dict[str, int]:
    total: dict[str, int] = {}
    for codes in many:
        for code, k in codes.items():
            total[code] = total.get(code, 0) + k
    return total


def database(bench) -> str:
    return bench.env["DATABASE_URL"].rsplit("/", 1)[1]


def commits(bench) -> int:
    """Transactions committed in the bench database so far (PostgreSQL's statistics)."""
    name = database(bench)
    return bench.sql(f"SELECT xact_commit FROM pg_stat_database WHERE datname = '{name}'", "postgres")[0][0]


# --- 2. outbox -----------------------------------------------------------------------------------------


def next_free_day(bench) -> date:
    ((last,),) = bench.sql("SELECT max(scheduled_start)::date FROM scheduling_order")
    return last + timedelta(days=1)


def bench_outbox(bench, py: str) -> dict:
    port = free_port()
    log(f"7b. HL7 outbox: {OUTBOX_EVENTS} events queued for a receiver that is down, then drained")
    t0 = clock.perf_counter()
    out = bench.run(
        py,
        "bench/hl7_bench.py",
        "backlog",
        json.dumps({"port": port, "events": OUTBOX_EVENTS, "first_day": next_free_day(bench).isoformat()}),
    )
    backlog = json.loads(out.strip().splitlines()[-1])
    backlog["wall_seconds"] = clock.perf_counter() - t0
    log(f"   queued: {backlog}")
    queued = bench.sql(
        "SELECT id, control_id, order_id, event_id FROM hl7_link_outboundmessage "
        f"WHERE receiver_id = {backlog['receiver']} AND state = 'pending' ORDER BY id"
    )

    listener = Listener(port)
    try:
        log("   the receiver is back: manage.py hl7_outbox")
        t0 = clock.perf_counter()
        with CpuMeter({}, database(bench)) as meter:
            done = subprocess.run(
                [py, "manage.py", "hl7_outbox"],
                cwd=ROOT,
                env=bench.env,
                capture_output=True,
                text=True,
                timeout=OUTBOX_TIMEOUT,
            )
        seconds = clock.perf_counter() - t0
        if done.returncode != 0:
            raise SystemExit(f"hl7_outbox failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
        with listener.lock:
            received = list(listener.received)
        first = received[0][0] - t0 if received else float("nan")
        last = received[-1][0] - t0 if received else float("nan")

        # Baseline: the same messages, sent by the bench's client to the same listener on one connection.
        texts = [payload for _t, _c, _k, payload in received[: len(queued)]]
        with listener.lock:
            listener.received.clear()
        conn = Mllp(port)
        t1 = clock.perf_counter()
        for payload in texts:
            conn.send(payload)
        raw_seconds = clock.perf_counter() - t1
        conn.close()
    finally:
        listener.close()

    # Every queued message arrived, once at least, and each order's in the order of its events.
    by_control = {control_id: (om_id, order_id, event_id) for om_id, control_id, order_id, event_id in queued}
    arrived = [c for _t, c, _k, _p in received]
    first_seen: list[str] = []
    seen: set[str] = set()
    for c in arrived:
        if c not in seen:
            seen.add(c)
            first_seen.append(c)
    lost = [c for c in by_control if c not in seen]
    strangers = [c for c in seen if c not in by_control]
    last_event: dict[int, int] = {}
    out_of_order = 0
    for c in first_seen:
        if c not in by_control:
            continue
        _om, order_id, event_id = by_control[c]
        if event_id < last_event.get(order_id, 0):
            out_of_order += 1
        last_event[order_id] = event_id
    ids = [by_control[c][0] for c in first_seen if c in by_control]
    global_inversions = sum(1 for a, b in zip(ids, ids[1:], strict=False) if b < a)
    states = dict(
        bench.sql(
            "SELECT state, count(*) FROM hl7_link_outboundmessage "
            f"WHERE receiver_id = {backlog['receiver']} GROUP BY state"
        )
    )
    types: dict[str, int] = {}
    for _t, _c, kind, _p in received:
        types[kind] = types.get(kind, 0) + 1
    # The receiver stays configured but off, so later measures' bookings do not try to reach it.
    bench.sql(f"UPDATE hl7_link_receiver SET enabled = false WHERE id = {backlog['receiver']}")
    used = meter.used
    result = {
        "backlog": backlog,
        "queued": len(queued),
        "seconds": seconds,
        "rate": len(queued) / seconds,
        "first_message_seconds": first,
        "last_message_seconds": last,
        "delivery_rate": (len(queued) - 1) / (last - first) if last > first else float("nan"),
        "received": len(arrived),
        "duplicates": len(arrived) - len(seen),
        "lost": len(lost),
        "strangers": len(strangers),
        "out_of_order": out_of_order,
        "global_inversions": global_inversions,
        "orders": len(last_event),
        "states": states,
        "types": types,
        "raw_messages": len(texts),
        "raw_seconds": raw_seconds,
        "raw_rate": len(texts) / raw_seconds if raw_seconds else float("nan"),
        # hl7_outbox is a child that ended: its CPU is in this process's children's time.
        "cpu_ms": {
            "hl7_outbox": used["bench children"] * 1000 / max(len(queued), 1),
            "postgres": used["postgres"] * 1000 / max(len(queued), 1),
        },
        "output": done.stdout.strip().splitlines()[-3:],
    }
    log(f"   drained: {result}")
    return result


def _processes() -> dict[int, tuple[int, str, list[int]]]:
    """Every process: (parent, name, [utime, stime, and the same of the children it has waited for]) in
    clock ticks; a PostgreSQL process is named by its title (which names its database)."""
    procs = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            name = stat[stat.index("(") + 1 : stat.rindex(")")]
            if name == "postgres":
                name = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry.name)] = (int(fields[1]), name, [int(v) for v in fields[11:15]])
    return procs


class CpuMeter:
    """CPU seconds used while it is open: each of `roots`' process trees (serve_hl7), this process (the
    bench's client threads and listener) and its children that ended meanwhile (hl7_outbox), PostgreSQL,
    and the whole machine ("machine").

    PostgreSQL is its backends of the bench database and the server's own processes, not the other
    databases' backends (tests of other work may share the server). A backend that ends takes its times
    with it (the postmaster's children's times are every database's), so the backends are sampled every
    SAMPLE seconds and each counts with its last sample.
    """

    SAMPLE = 0.25

    def __init__(self, roots: dict[str, int], database: str):
        self.roots, self.database = roots, database
        self.tick = os.sysconf("SC_CLK_TCK")
        self.used: dict[str, float] = {}

    def _postgres(self, procs) -> dict[int, int]:
        ticks = {}
        for pid, (_ppid, title, times) in procs.items():
            if title.startswith("/usr/lib/postgresql/"):
                ticks[pid] = times[0] + times[1]  # the postmaster itself
            elif title.startswith("postgres:") and postgres_database(title) in (None, self.database):
                ticks[pid] = times[0] + times[1]
        return ticks

    def _totals(self, procs) -> dict[str, float]:
        children: dict[int, list[int]] = {}
        for pid, (ppid, _name, _times) in procs.items():
            children.setdefault(ppid, []).append(pid)

        def tree(pid: int) -> float:
            if pid not in procs:
                return 0.0
            return sum(procs[pid][2]) / self.tick + sum(tree(child) for child in children.get(pid, []))

        totals = {kind: tree(pid) for kind, pid in self.roots.items()}
        own = procs[os.getpid()][2]
        totals["bench client"] = (own[0] + own[1]) / self.tick
        totals["bench children"] = (own[2] + own[3]) / self.tick
        cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in cpu[:8])
        totals["machine"] = (user + nice + system + irq + softirq + steal) / self.tick
        return totals

    def _sample(self) -> None:
        for pid, ticks in self._postgres(_processes()).items():
            self.first.setdefault(pid, 0)  # a backend that started meanwhile: all of its time
            self.last[pid] = ticks

    def _run(self) -> None:
        while not self.stop.wait(self.SAMPLE):
            self._sample()

    def __enter__(self) -> CpuMeter:
        procs = _processes()
        self.before = self._totals(procs)
        self.first = self._postgres(procs)
        self.last = dict(self.first)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join()
        self._sample()
        after = self._totals(_processes())
        self.used = {kind: after[kind] - self.before[kind] for kind in after}
        self.used["postgres"] = sum(self.last[pid] - self.first[pid] for pid in self.last) / self.tick


def postgres_database(title: str) -> str | None:
    """The database of a PostgreSQL process by its title ("postgres: 15/main: postgres ris_bench
    127.0.0.1(52422) idle", "postgres: 15/main: autovacuum worker ris_bench"); None for the server's own
    processes (checkpointer, WAL writer...)."""
    words = title.split()
    for k, word in enumerate(words):
        if k >= 2 and (re.fullmatch(r"[\d.:a-f]+\(\d+\)", word) or word == "[local]"):
            return words[k - 1]
    if "autovacuum worker" in title and len(words) > 4:
        return words[-1]
    return None


def bench_hl7(bench, py: str, yardstick) -> dict:
    """The HL7 section of the run: the inbound measure, then the outbox's (which adds a receiver).

    `yardstick`: bench/run.py's CPU yardstick, taken before and after the section: on a machine shared
    with other work the section's own figures are the ones to compare with its CPU speed.
    """
    started = clock.perf_counter()
    before = yardstick()
    result = {"inbound": bench_inbound(bench, py), "outbox": bench_outbox(bench, py)}
    result["yardstick"] = (before, yardstick())
    result["seconds"] = clock.perf_counter() - started
    result["cores"] = os.cpu_count()
    return result


# --- the document --------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def _codes(codes: dict[str, int]) -> str:
    return ", ".join(f"{code} {n}" for code, n in sorted(codes.items()))


def hl7_rows(r: dict) -> list[list[str]]:
    i, o = r["inbound"], r["outbox"]
    orm, a08 = i["orm"], i["a08"]
    return [
        ["Measure", "Figure", "Baseline (same run)", "Ratio", "Target", "Met?"],
        [
            f"ORM^O01 NW through MLLP (`serve_hl7`), {orm['clients']} connections one message at a time, "
            f"{orm['seconds']:.0f} s: each booked and its worklist file written before the AA",
            f"{orm['rate']:.1f} messages/s, ACK p50 {orm['p50']:.0f} ms, p95 {orm['p95']:.0f} ms: "
            f"{i['booked']} booked, {i['requested']} requested, {i['files']} files; {_codes(orm['codes'])}",
            f"ADT^A08 that changes nothing, in turns with the orders ({a08['seconds']:.0f} s): "
            f"{a08['rate']:.1f} messages/s, p50 {a08['p50']:.0f} ms, p95 {a08['p95']:.0f} ms",
            f"rate {orm['rate'] / a08['rate']:.2f}x, p95 {orm['p95'] / a08['p95']:.2f}x",
            f"≥ {TARGET_RATE} messages/s, p95 ≤ {TARGET_P95} ms",
            _met(orm["rate"] >= TARGET_RATE and orm["p95"] <= TARGET_P95 and orm["errors"] == 0),
        ],
        [
            "CPU per inbound message (serve_hl7, PostgreSQL's backends of the bench database, the client)",
            f"ORM: {orm['cpu_ms_total']:.1f} ms: ceiling {r['cores'] * 1000 / orm['cpu_ms_total']:.0f} "
            f"messages/s on {r['cores']} cores",
            f"A08: {a08['cpu_ms_total']:.1f} ms, ceiling {r['cores'] * 1000 / a08['cpu_ms_total']:.0f} messages/s",
            f"{orm['cpu_ms_total'] / a08['cpu_ms_total']:.2f}x",
            "(informative)",
            "-",
        ],
        [
            f"Outbox drain after an hour down: {o['queued']:,} queued events, one `manage.py hl7_outbox` "
            "to an MLLP listener answering AA",
            f"{o['rate']:.0f} events/s ({o['seconds']:.1f} s with Django's start-up; "
            f"{o['delivery_rate']:.0f}/s from the first message to the last): {o['lost']} lost, "
            f"{o['out_of_order']} out of order, {o['duplicates']} twice",
            f"the same {o['raw_messages']:,} messages from the bench's client on one connection: "
            f"{o['raw_rate']:,.0f} messages/s",
            f"{o['delivery_rate'] / o['raw_rate']:.2f}x",
            "0 lost, in order per order",
            _met(o["lost"] == 0 and o["out_of_order"] == 0 and o["queued"] == OUTBOX_EVENTS),
        ],
    ]


def hl7_document(r: dict, markdown) -> str:
    i, o = r["inbound"], r["outbox"]
    orm, a08 = i["orm"], i["a08"]
    b = o["backlog"]

    def cpu(run: dict) -> str:
        return ", ".join(f"{kind} {ms:.1f}" for kind, ms in run["cpu_ms"].items())

    def turns(run: dict) -> str:
        return ", ".join(f"{p['rate']:.0f}/s p95 {p['p95']:.0f} ms" for p in run["phases"])

    others = max(orm["others_cores"], a08["others_cores"])
    shared = (
        f"other work on the machine used {others:.2f} cores meanwhile: the absolute figures are that much "
        "lower than on a quiet machine, the ratios hold better"
        if others > 0.2
        else f"the section had the machine nearly to itself (others: {others:.2f} cores)"
    )
    return f"""<!-- hl7 -->
## HL7 v2 link (issue 15): orders from the HIS, the outbox back to it

{markdown(hl7_rows(r))}

Measured on {r["cores"]} cores ({r.get("machine", "")}). This section's own CPU yardstick:
{r["yardstick"][0]:.2f} s before it and {r["yardstick"][1]:.2f} s after it (the same loop takes about 0.22 s on
this machine when it is quiet); {shared}. The section took {r["seconds"]:.0f} s.

### How these figures are made
- **Inbound**: `manage.py serve_hl7` on the bench database (`DJANGO_DEBUG=1`, no broker: the worklist file
  is written in the listener's process right after the commit, before the ACK goes), with
  `HL7_KNOWN_SENDERS={SENDER}`. {orm["clients"]} connections of the bench's own MLLP client (a socket and
  the 0x0B / 0x1C 0x0D framing), each sending one message and reading its ACK before the next; the
  latency is from the first byte sent to the whole ACK read. ORM^O01 v2.3.1 as IHE RAD-2: ORC-1 NW, a
  placer number of its own (ORC-2, OBR-2), each modality's shortest procedure by catalog code (OBR-4),
  a start time (ORC-7, OBR-27) on a day nobody had booked inside the export window, each start time
  once per room of its modality: each order is booked in the first free room by name (for a second
  order at a time, one query finds the first room taken, and the second is the one tried and booked). {i["booked"]} booked,
  {i["requested"]} left Requested; {i["files"]} of the booked have their `.wl` file. The PID carries
  the patient as stored (MRN and issuer, name in Thai or Latin script, birth date, sex), in UTF-8
  (MSH-18 `UNICODE UTF-8`). The baseline is ADT^A08 with the same PID, which changes nothing
  ({i["patients_changed"]} patients' versions moved). Orders and baseline take turns: A08, ORM, A08,
  ... A08, {ROUNDS} phases of ORM ({turns(orm)}) and {ROUNDS + 1} of A08 ({turns(a08)}), after
  {i["warmup"]} of each on one connection. All messages come from one sender, whose messages the RIS
  applies one at a time in the order received (inbound.py: a lock per sender, and the sender's row
  locked, from the message's arrival to its commit): the connections overlap their network, their
  parsing and the worklist file of the message before (written after its commit, outside the lock, and
  before its ACK), not their transactions, so the rate is about one over the time one message holds
  that lock, and a message waits for the ones ahead of it; the listener is one Python process, so the
  rate is also at most one over its CPU time per message.
  On one connection alone ({SINGLE_SECONDS} s each, after the turns) an ORM takes p50 {i["single"]["orm"]["p50"]:.0f} ms,
  p95 {i["single"]["orm"]["p95"]:.0f} ms ({i["single"]["orm"]["rate"]:.1f}/s), an A08 p50 {i["single"]["a08"]["p50"]:.0f} ms,
  p95 {i["single"]["a08"]["p95"]:.0f} ms ({i["single"]["a08"]["rate"]:.1f}/s). PostgreSQL transactions per message (its
  `xact_commit`, where each statement outside a transaction counts as one): ORM
  {orm["commits_per_message"]:.1f}, A08 {a08["commits_per_message"]:.1f}.
- **CPU per message**: /proc times over the phases divided by their messages, in ms. ORM: {cpu(orm)};
  A08: {cpu(a08)}. serve_hl7 is its process; PostgreSQL is the backends of the bench database and the
  server's own processes (other databases' backends left out); the client is the bench process. The
  ceiling is the cores divided by the total.
- **Outbox**: a receiver (SIU for bookings, v2.3.1, UTF-8) added while nothing listened on its port;
  then an hour of the department's work for it: {b["events"]:,} order events on {b["orders"]:,} seeded
  orders, written with the stream's own `scheduling.events.orders_changed` as the services write them
  (booked, then arrived, started, completed, each order's status and version moved with its event), in
  rounds of {b["round"]} orders, one transaction per step of a round, so that one order's events lie among
  other orders' ({b["seconds"]:.1f} s). Without a broker the outbox is filled after each commit; a
  delivery attempt meanwhile found nobody ({b["last_error"] or "no error recorded"}). {o["queued"]:,}
  messages pending. Then a listener in the bench process answering AA to every frame, and one
  `manage.py hl7_outbox` timed from its start to its exit: the first message came
  {o["first_message_seconds"]:.2f} s after the start (Django's start-up), the last at
  {o["last_message_seconds"]:.2f} s. Received: {_codes(o["types"])}; {o["received"]:,} frames,
  {o["lost"]} queued messages missing, {o["strangers"]} never queued, {o["duplicates"]} twice; per order,
  each message came after the one of its previous event ({o["out_of_order"]} did not), and
  {o["global_inversions"]} came before a message queued earlier. Outbox rows after: {_codes(o["states"])}.
  CPU per event: hl7_outbox {o["cpu_ms"]["hl7_outbox"]:.1f} ms, PostgreSQL {o["cpu_ms"]["postgres"]:.1f}
  ms. The baseline sends the messages as received, from the bench's client over one connection to the
  same listener: what MLLP and the listener cost without the outbox's bookkeeping.
<!-- /hl7 -->
"""


# --- the Django side -----------------------------------------------------------------------------------


def stage_backlog(args: dict) -> dict:
    """A receiver that is down, and `events` order events for it: an hour of a department's work.

    The events are written with the order-event stream's own service (scheduling.events.orders_changed)
    on seeded orders that have none, their status moved as the services move it: booked, arrived,
    started, completed. 5,000 service calls, one booking or status change each, would take minutes on
    this machine; what the outbox sees (events after its cursor, committed, each with the order's status
    and version as saved) is the same.
    """
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.db.models import F

    from hl7_link.models import AppointmentStyle, Charset, Hl7Version, OutboundMessage, Receiver
    from hl7_link.outbox import outbox_deliver, outbox_fill
    from hl7_link.services import receiver_save
    from scheduling import events
    from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus

    user = get_user_model().objects.get(username="bench")
    receiver = receiver_save(
        receiver=Receiver(
            name="Bench HIS",
            host="127.0.0.1",
            port=args["port"],
            receiving_application=SENDER,
            receiving_facility="HOSP",
            charset=Charset.UTF8,
            version=Hl7Version.V231,
            appointment_style=AppointmentStyle.SIU,
        )
    )
    # The worklist files of these orders are not what is measured: only the HL7 link follows the stream.
    events._consumers.pop("worklist_export", None)
    steps = (
        (OrderStatus.ARRIVED, OrderEventKind.ARRIVED),
        (OrderStatus.IN_PROGRESS, OrderEventKind.STARTED),
        (OrderStatus.COMPLETED, OrderEventKind.COMPLETED),
    )
    count = args["events"] // (1 + len(steps))
    chosen = list(
        Order.objects.filter(status=OrderStatus.SCHEDULED)
        .exclude(pk__in=OrderEvent.objects.values("order_id"))
        .order_by("scheduled_start", "id")
        .values_list("pk", flat=True)[:count]
    )
    round_size = 50
    t0 = clock.perf_counter()
    for first in range(0, len(chosen), round_size):
        # A round of orders: all booked, then all arrived, ... each step one transaction (as a busy
        # front desk commits them), so one order's events lie among the other orders' events.
        ids = chosen[first : first + round_size]
        with transaction.atomic():
            events.orders_changed(
                Order.objects.filter(pk__in=ids).order_by("pk"), OrderEventKind.BOOKED, user=user
            )
        for status, kind in steps:
            with transaction.atomic():
                Order.objects.filter(pk__in=ids).update(status=status, version=F("version") + 1)
                events.orders_changed(Order.objects.filter(pk__in=ids).order_by("pk"), kind, user=user)
    seconds = clock.perf_counter() - t0
    # Whatever the consumer had not yet taken into the outbox (without a broker it fills after each
    # commit), and a delivery attempt meanwhile, which finds nobody listening.
    outbox_fill(receiver)
    outbox_deliver(receiver)
    receiver.refresh_from_db()
    # The receiver is back and its backoff has run out: the next attempt is due now.
    Receiver.objects.filter(pk=receiver.pk).update(next_attempt_at=None)
    return {
        "receiver": receiver.pk,
        "orders": len(chosen),
        "events": OrderEvent.objects.filter(order_id__in=chosen).count(),
        "round": round_size,
        "seconds": seconds,
        "pending": OutboundMessage.objects.filter(receiver=receiver, state="pending").count(),
        "failures": receiver.failures,
        "last_error": receiver.last_error[:200],
    }


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")
    import django

    django.setup()
    stages = {"backlog": stage_backlog}
    print(json.dumps(stages[sys.argv[1]](json.loads(sys.argv[2]))))
