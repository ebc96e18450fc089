"""The order API in `make bench` (issue 14): a booking through POST /api/v1/orders beside the booking
form, in the same run, on the gunicorn, PostgreSQL database and Celery worker that bench/run.py started.

- Latency: one booking at a time, the form and the API taking turns on the form latency bench's plan of
  slots (each on days of its own), each POST timed and then its worklist file awaited, so both figures
  come from the same moments of the machine.
- Throughput: API_CLIENTS clients, each with a token of its own, booking distinct free slots for
  API_LOAD_SECONDS; the form with as many logged-in clerks on the next free slots is the baseline.

`python bench/api_bench.py clients '{"count": 8}'` is the Django side: it creates API clients in the
bench database and prints their tokens (bench_api runs it with the bench's environment).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time as clock
from datetime import date, datetime, time, timedelta
from pathlib import Path

from figures import pct

ROOT = Path(__file__).resolve().parent.parent
ORDERS = "/api/v1/orders"
LATENCY_BOOKINGS = 200  # as many as the form latency bench
LATENCY_WARMUP = 8
API_CLIENTS = 8
API_LOAD_SECONDS = 20
FORM_LOAD_SECONDS = 10
DRAIN_TIMEOUT = 180
OPENS_MINUTES, OPEN_MINUTES = 7 * 60, 13 * 60  # the bench rooms: 07:00-20:00 every day
TARGET_RATIO, TARGET_RATE = 1.2, 100


def log(message: str) -> None:
    print(f"[{clock.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def api_post(port: int, token: str, payload: dict, headers: dict | None = None) -> tuple[int, dict, bytes]:
    """POST /api/v1/orders on a connection of its own, as the form bench posts the form."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    sent = {
        "Host": "127.0.0.1",
        "Authorization": f"Bearer {token}",
        "Content-Type": "application/json",
        "Accept": "application/json",
        **(headers or {}),
    }
    try:
        conn.request("POST", ORDERS, body=json.dumps(payload), headers=sent)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def api_body(patient: int, procedure: int, room: int, start: datetime) -> dict:
    """The booking form's fields (bench/run.py booking_body) as an API client sends them."""
    return {
        "patient": patient,
        "procedure": procedure,
        "room": room,
        "start": start.isoformat(),
        "priority": "ROUTINE",
        "referring_physician": "Dr Wattana",
        "reason": "Follow-up",
    }


def api_tokens(bench, py: str, count: int) -> list[str]:
    out = bench.run(py, "bench/api_bench.py", "clients", json.dumps({"count": count}))
    return json.loads(out.strip().splitlines()[-1])["tokens"]


def next_free_day(bench) -> date:
    """The day after the last order booked so far (the seed's and the measures' before this one)."""
    # Bookings run 07:00-20:00 in the clinic's time zone: the same date in UTC or the server's zone.
    ((last,),) = bench.sql("SELECT max(scheduled_start)::date FROM scheduling_order")
    return last + timedelta(days=1)


def free_slots(rooms, procs, first_day: date, days: int) -> list[tuple[int, int, datetime]]:
    """(room, procedure, start) of every slot of `days` days from `first_day`, time by time across the
    rooms, so that clients taking every n-th one book in different rooms at once."""
    slots = []
    for d in range(days):
        day = first_day + timedelta(days=d)
        per_room = []
        for room_id, modality in rooms:
            procedure, minutes = procs[modality]
            starts = range(OPENS_MINUTES, OPENS_MINUTES + OPEN_MINUTES - minutes + 1, minutes)
            per_room.append(
                [(room_id, procedure, datetime.combine(day, time()) + timedelta(minutes=m)) for m in starts]
            )
        for k in range(max(len(s) for s in per_room)):
            slots.extend(s[k] for s in per_room if k < len(s))
    return slots


def wait_for_file(path: Path, since: float, timeout: float = 10) -> float | None:
    while not path.exists():
        if clock.perf_counter() > since + timeout:
            return None
        clock.sleep(0.002)
    return clock.perf_counter()


def bench_api_latency(
    bench, port: int, tokens: list[str], first_day: date, root: Path, *, login, booking_body, http_request
) -> dict:
    """The form and the API in turns on the same plan of slots; POST time and time to the worklist file."""
    log(f"6a. API booking latency: {LATENCY_BOOKINGS} API and {LATENCY_BOOKINGS} form bookings in turns")
    rooms, procs, patients = bench.booking_plan()
    cookies = login(port)
    days = {"form": first_day, "api": first_day + timedelta(days=2)}
    # Patients of their own for each side: a patient is never booked twice at one time.
    mine = {"form": patients[: len(patients) // 2], "api": patients[len(patients) // 2 :]}
    figures = {kind: {"post": [], "visible": [], "timeouts": 0} for kind in days}
    for i in range(LATENCY_WARMUP + LATENCY_BOOKINGS):
        # Which goes first alternates, so neither always follows the other's worklist write.
        for kind in ("form", "api") if i % 2 == 0 else ("api", "form"):
            room_id, procedure, start = bench.latency_slot(i, rooms, procs, days[kind])
            patient = mine[kind][i]
            t0 = clock.perf_counter()
            if kind == "form":
                status, headers, body = http_request(
                    port,
                    "POST",
                    "/orders/new/",
                    booking_body(cookies, patient, procedure, room_id, start),
                    cookies,
                )
                t1 = clock.perf_counter()
                if status != 302 or "/orders/" not in headers.get("location", ""):
                    raise SystemExit(f"form booking {i} refused ({status}): {body[:2000]!r}")
                pk = int(headers["location"].rstrip("/").rsplit("/", 1)[1])
                ((accession,),) = bench.sql(f"SELECT accession_number FROM scheduling_order WHERE id = {pk}")
            else:
                status, headers, body = api_post(
                    port, tokens[0], api_body(patient, procedure, room_id, start)
                )
                t1 = clock.perf_counter()
                if status != 201:
                    raise SystemExit(f"API booking {i} refused ({status}): {body[:2000]!r}")
                accession = json.loads(body)["accession_number"]
            t2 = wait_for_file(root / f"{accession}.wl", t0)
            if t2 is None:
                figures[kind]["timeouts"] += 1
            elif i >= LATENCY_WARMUP:
                figures[kind]["post"].append((t1 - t0) * 1000)
                figures[kind]["visible"].append((t2 - t0) * 1000)
    result = {
        kind: {
            "count": len(f["post"]),
            "timeouts": f["timeouts"],
            "post_p50": pct(f["post"], 50),
            "post_p95": pct(f["post"], 95),
            "visible_p50": pct(f["visible"], 50),
            "visible_p95": pct(f["visible"], 95),
        }
        for kind, f in figures.items()
    }
    log(f"   form {result['form']}; API {result['api']}")
    return result


def run_clients(count: int, seconds: float, attempt) -> dict:
    """attempt(client, n) -> (booked?, ms, status) in `count` threads for `seconds`; the totals."""
    outs = [{"times": [], "booked": 0, "errors": 0, "statuses": {}, "exhausted": False} for _ in range(count)]
    stop_at = clock.monotonic() + seconds

    def client(c: int) -> None:
        out, n = outs[c], 0
        while clock.monotonic() < stop_at:
            try:
                booked, ms, status = attempt(c, n)
            except IndexError:
                out["exhausted"] = True  # no free slot left for this client
                return
            out["times"].append(ms)
            out["booked" if booked else "errors"] += 1
            out["statuses"][status] = out["statuses"].get(status, 0) + 1
            n += 1

    t0 = clock.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = clock.perf_counter() - t0
    times = [t for o in outs for t in o["times"]]
    statuses: dict[str, int] = {}
    for o in outs:
        for status, k in o["statuses"].items():
            statuses[str(status)] = statuses.get(str(status), 0) + k
    return {
        "clients": count,
        "seconds": elapsed,
        "requests": len(times),
        "booked": sum(o["booked"] for o in outs),
        "errors": sum(o["errors"] for o in outs),
        "statuses": statuses,
        "exhausted": any(o["exhausted"] for o in outs),
        "times": times,
    }


def cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far: each of `roots`' process trees (gunicorn, the Celery worker), this process
    (the bench's client threads), the PostgreSQL and Redis servers as a whole (a backend that ended is
    counted in its parent's children's time), and the whole machine ("machine")."""
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, str, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name = stat[stat.index("(") + 1 : stat.rindex(")")]
        fields = stat[stat.rindex(")") + 2 :].split()
        # utime, stime, and the same of the children it has waited for
        procs[int(entry.name)] = (int(fields[1]), name, sum(int(v) for v in fields[11:15]) / tick)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _name, _used) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        return procs[pid][2] + sum(tree(child) for child in children.get(pid, [])) if pid in procs else 0.0

    used = {kind: tree(pid) for kind, pid in roots.items()}
    used["bench client"] = procs[os.getpid()][2]
    used["postgres"] = sum(u for _ppid, name, u in procs.values() if name == "postgres")
    used["redis"] = sum(u for _ppid, name, u in procs.values() if name == "redis-server")
    cpu = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in cpu[:8])
    used["machine"] = (user + nice + system + irq + softirq + steal) / tick
    return used


def queue_drained(redis_url: str, timeout: float) -> float | None:
    """Seconds until the Celery queue is empty (the worker has taken every file to write); None if never."""
    import redis

    queue = redis.Redis.from_url(redis_url)
    t0 = clock.perf_counter()
    while queue.llen("celery"):
        if clock.perf_counter() - t0 > timeout:
            return None
        clock.sleep(0.1)
    return clock.perf_counter() - t0


def bench_api_throughput(
    bench, port: int, tokens: list[str], first_day: date, redis_url: str, *, login, booking_body, http_request
) -> dict:
    """API_CLIENTS API clients on distinct free slots; the form with as many clerks as the baseline."""
    log(
        f"6b. booking throughput: {API_CLIENTS} clients on distinct slots, form {FORM_LOAD_SECONDS} s "
        f"then API {API_LOAD_SECONDS} s"
    )
    rooms, procs, patients = bench.booking_plan()
    # Enough free slots for 400 bookings a second; a client without one stops (reported as exhausted).
    slots = free_slots(rooms, procs, first_day, days=30)
    cursor = {"next": 0}
    lock = threading.Lock()

    def take(c: int, n: int) -> tuple[int, int, int, datetime]:
        # Slots in order across all clients, so that each is booked once; patients of the client's own.
        with lock:
            k = cursor["next"]
            cursor["next"] += 1
        room_id, procedure, start = slots[k]
        mine = patients[c::API_CLIENTS]
        return mine[n % len(mine)], procedure, room_id, start

    sessions = [login(port) for _ in range(API_CLIENTS)]

    def form_attempt(c: int, n: int):
        patient, procedure, room_id, start = take(c, n)
        t0 = clock.perf_counter()
        status, headers, _page = http_request(
            port,
            "POST",
            "/orders/new/",
            booking_body(sessions[c], patient, procedure, room_id, start),
            sessions[c],
        )
        booked = status == 302 and "/orders/" in headers.get("location", "")
        return booked, (clock.perf_counter() - t0) * 1000, status

    def api_attempt(c: int, n: int):
        patient, procedure, room_id, start = take(c, n)
        t0 = clock.perf_counter()
        try:
            status, _headers, _body = api_post(port, tokens[c], api_body(patient, procedure, room_id, start))
        except OSError:
            status = 0
        return status == 201, (clock.perf_counter() - t0) * 1000, status

    roots = {
        Path(str(p.args[0])).name: p.pid
        for p in bench.procs
        if Path(str(p.args[0])).name in ("gunicorn", "celery")
    }
    results = {}
    for label, attempt, seconds in (
        ("form", form_attempt, FORM_LOAD_SECONDS),
        ("api", api_attempt, API_LOAD_SECONDS),
    ):
        cpu_before = cpu_seconds(roots)
        run = run_clients(API_CLIENTS, seconds, attempt)
        drain = queue_drained(redis_url, DRAIN_TIMEOUT)
        # Until the worker has written the files of the run: their cost is part of each booking's.
        cpu_after = cpu_seconds(roots)
        times = run.pop("times")
        used = {k: cpu_after[k] - cpu_before[k] for k in cpu_after}
        ours = sum(v for k, v in used.items() if k != "machine")
        run.update(
            rate=run["booked"] / run["seconds"],
            p50=pct(times, 50),
            p95=pct(times, 95),
            # CPU milliseconds per booking, by process; "others": the rest of the machine meanwhile.
            cpu_ms={k: v * 1000 / max(run["booked"], 1) for k, v in used.items() if k != "machine"},
            others_cores=max(used["machine"] - ours, 0.0) / (run["seconds"] + (drain or 0)),
            drain_seconds=drain,
        )
        run["cpu_ms_total"] = sum(run["cpu_ms"].values())
        # What the machine could do if the stack had every core to itself: cores / CPU per booking.
        run["ceiling"] = os.cpu_count() * 1000 / run["cpu_ms_total"] if run["cpu_ms_total"] else float("nan")
        results[label] = run
        log(f"   {label}: {run}")
    results["double_bookings"] = bench.double_bookings()
    results["cores"] = os.cpu_count()
    return results


_COMMITTED = re.compile(
    r"Book-to-worklist latency.*?\| p50 (\d+) ms, p95 (\d+) ms \| the POST alone: p50 (\d+) ms, p95 (\d+) ms"
)


def committed_latency(document: str = "docs/BENCHMARKS.md") -> dict | None:
    """The book-to-worklist figures of the last committed docs/BENCHMARKS.md (git HEAD), for comparison."""
    try:
        text = subprocess.run(
            ["git", "show", f"HEAD:{document}"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    found = _COMMITTED.search(text)
    written = re.search(r"Written by `make bench` \(bench/run.py\) on (.+?) in", text)
    if not found:
        return None
    p50, p95, post50, post95 = (int(v) for v in found.groups())
    return {
        "visible_p50": p50,
        "visible_p95": p95,
        "post_p50": post50,
        "post_p95": post95,
        "date": written.group(1) if written else "?",
    }


def bench_api(bench, py: str, port: int, redis_url: str, root: Path, **http) -> dict:
    """The API section of the run: latency beside the form, throughput, and book-to-file vs committed.

    `http`: bench/run.py's login, booking_body and http_request, with which the form is posted.
    """
    tokens = api_tokens(bench, py, API_CLIENTS)
    first_day = next_free_day(bench)
    return {
        "latency": bench_api_latency(bench, port, tokens, first_day, root, **http),
        "load": bench_api_throughput(bench, port, tokens, first_day + timedelta(days=4), redis_url, **http),
        "committed": committed_latency(),
        "form_latency": bench.results.get("latency"),  # the form latency measure, when it ran too
        # The web and worker processes inherit it from this environment (ris/settings.py: 0 by default).
        # ris/settings.py reuses connections for 60 s unless DATABASE_CONN_MAX_AGE says otherwise.
        "conn_max_age": os.environ.get("DATABASE_CONN_MAX_AGE", "60"),
    }


# --- the document ----------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def api_rows(r: dict) -> list[list[str]]:
    lat, load = r["latency"], r["load"]
    form, api = lat["form"], lat["api"]
    ratio = api["post_p95"] / form["post_p95"]
    rows = [
        ["Measure", "Figure", "Baseline (same run)", "Ratio", "Target", "Met?"],
        [
            f"API booking POST /api/v1/orders, {api['count']} bookings one at a time (the form's plan of slots)",
            f"p50 {api['post_p50']:.0f} ms, p95 {api['post_p95']:.0f} ms",
            f"the booking form's POST, in turns with it: p50 {form['post_p50']:.0f} ms, p95 {form['post_p95']:.0f} ms",
            f"{ratio:.2f}x at p95",
            f"≤ {TARGET_RATIO}x the form's p95",
            _met(ratio <= TARGET_RATIO),
        ],
        [
            "Book-to-worklist latency through the API (POST to file visible)",
            f"p50 {api['visible_p50']:.0f} ms, p95 {api['visible_p95']:.0f} ms, {api['timeouts']} timeouts",
            f"through the form: p50 {form['visible_p50']:.0f} ms, p95 {form['visible_p95']:.0f} ms, "
            f"{form['timeouts']} timeouts",
            f"{api['visible_p95'] / form['visible_p95']:.2f}x at p95",
            "p95 ≤ 300 ms",
            _met(api["visible_p95"] <= 300 and api["timeouts"] == 0),
        ],
    ]
    committed = r.get("committed")
    if committed:
        now = r.get("form_latency") or form
        source = "the latency measure" if r.get("form_latency") else "the form, in turns with the API"
        growth = now["visible_p95"] / committed["visible_p95"]
        rows.append(
            [
                "Book-to-worklist latency through the form, now by the order-event stream",
                f"p95 {now['visible_p95']:.0f} ms (p50 {now['visible_p50']:.0f} ms; {source})",
                f"last committed docs/BENCHMARKS.md ({committed['date']}): p95 {committed['visible_p95']} ms "
                f"(p50 {committed['visible_p50']} ms)",
                f"{growth:.2f}x at p95",
                f"≤ {TARGET_RATIO}x",
                _met(growth <= TARGET_RATIO),
            ]
        )
    a, f = load["api"], load["form"]
    rows.append(
        [
            f"API booking throughput: {a['clients']} clients (a token each) on distinct free slots, "
            f"{a['seconds']:.0f} s, gunicorn -w 2",
            f"{a['rate']:.1f} bookings/s (p50 {a['p50']:.0f} ms, p95 {a['p95']:.0f} ms): {a['booked']} booked, "
            f"{a['errors']} errors, {load['double_bookings']} double bookings",
            f"the form, {f['clients']} clerks on the next free slots, {f['seconds']:.0f} s: {f['rate']:.1f} "
            f"bookings/s (p95 {f['p95']:.0f} ms), {f['errors']} errors",
            f"{a['rate'] / f['rate']:.2f}x",
            f"≥ {TARGET_RATE} bookings/s on {load['cores']} cores, 0 errors",
            _met(a["rate"] >= TARGET_RATE and a["errors"] == 0 and load["double_bookings"] == 0),
        ]
    )
    rows.append(
        [
            "CPU per API booking, all processes of the stack (gunicorn, PostgreSQL, Celery, Redis, client)",
            f"{a['cpu_ms_total']:.1f} ms: ceiling {a['ceiling']:.0f} bookings/s on {load['cores']} cores",
            f"per form booking: {f['cpu_ms_total']:.1f} ms, ceiling {f['ceiling']:.0f} bookings/s",
            f"{a['cpu_ms_total'] / f['cpu_ms_total']:.2f}x",
            "(informative)",
            "-",
        ]
    )
    return rows


def api_document(r: dict, markdown) -> str:
    load = r["load"]
    a, f = load["api"], load["form"]

    def cpu(run: dict) -> str:
        order = ("gunicorn", "postgres", "celery", "redis", "bench client")
        return ", ".join(f"{kind} {run['cpu_ms'][kind]:.1f}" for kind in order if kind in run["cpu_ms"])

    def drain(run: dict) -> str:
        seconds = run["drain_seconds"]
        return f"{seconds:.1f} s" if seconds is not None else f"more than {DRAIN_TIMEOUT} s"

    def answers(run: dict) -> str:
        return ", ".join(f"{status}: {n}" for status, n in sorted(run["statuses"].items()))

    others = max(a["others_cores"], f["others_cores"])
    neighbours = (
        "the stack did not have the machine to itself, and its rates are that much lower"
        if others > 0.2
        else "the stack had the machine nearly to itself"
    )
    kept = r.get("conn_max_age", "0")
    connections = (
        f"kept for {kept} s" if kept != "0" else "opened for each request and each task"
    ) + f" (`DATABASE_CONN_MAX_AGE={kept}`)"
    committed = r.get("committed") or {}
    return f"""<!-- api -->
## Order API (issue 14): booking beside the form, in the same run

{markdown(api_rows(r))}

Measured on {load["cores"]} cores ({r.get("machine", "")}); database connections
{connections}.

### How these figures are made
- **Latency**: the API client's `POST /api/v1/orders` (bearer token, JSON, no Idempotency-Key) and the
  booking form's POST (a logged-in clerk) take turns, one request at a time, against gunicorn (2 sync
  workers) on the bench PostgreSQL database, with the Celery worker writing the files; which of the two
  goes first alternates. Both follow the plan of the form latency measure (the rooms in turn, each
  modality's shortest procedure, back to back from 07:00), on days of their own, with patients of their
  own. Each POST is timed on a new connection from the start of the request to the end of the answer
  (loopback: the server's time plus well under a millisecond), then the bench polls every 2 ms for
  `<AE>/<accession>.wl`. {r["latency"]["api"]["count"]} of each after {LATENCY_WARMUP} warm-up ones.
- **Book-to-worklist, now and before**: the worklist export follows the order-event stream
  (scheduling/events.py: the event row written in the booking's transaction, the file queued after commit
  by the export's consumer). The figure it is held to is the last committed docs/BENCHMARKS.md's
  ({committed.get("date", "none found")}), from another run: compare the CPU yardsticks of both runs.
- **Throughput**: {a["clients"]} client threads in the bench process, each its own API client (token,
  throttle budget) and its own patients, taking the next free slot of a shared list (every slot of the
  8 rooms, time by time across the rooms, on days no other measure used), so no two requests ask for
  one slot; a new connection per request. Booked means 201, anything else is an error (answers:
  {answers(a)}). The baseline is the booking form with {f["clients"]} logged-in clerks on the next slots
  of the same list for {f["seconds"]:.0f} s (answers: {answers(f)}). Double bookings: the window query of
  the load measure, over every order.
- **CPU per booking**: CPU time read from /proc before the run and once the worker has taken the run's
  last file ({drain(a)} after the API run ended, {drain(f)} after the form's), divided by the bookings, in
  ms. API: {cpu(a)}; form: {cpu(f)}. gunicorn and the worker are their process trees; PostgreSQL and
  Redis the whole servers (a backend that ended included); the bench client is this process. The ceiling
  is the cores divided by the total: the rate if the stack had every core to itself. Other processes on
  the machine used {a["others_cores"]:.2f} cores during the API run and {f["others_cores"]:.2f} during the
  form's: {neighbours}.
<!-- /api -->
"""


# --- the Django side ---------------------------------------------------------------------------------


def stage_clients(args: dict) -> dict:
    from api.services import api_client_create

    tokens = []
    for i in range(args["count"]):
        _client, token = api_client_create(name=f"Bench client {i + 1}", scopes=["read", "book"])
        tokens.append(token)
    return {"tokens": tokens}


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")
    import django

    django.setup()
    stages = {"clients": stage_clients}
    print(json.dumps(stages[sys.argv[1]](json.loads(sys.argv[2]))))
