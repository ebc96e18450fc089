"""The Django side of the benchmarks: `python bench/stages.py <stage> [json args]`.

Each stage runs in its own process with the environment bench/run.py gives it (DATABASE_URL of the
bench database, WORKLIST_DIR of a temporary folder, ...) and prints one JSON object as its last line.
Data is bulk-inserted, not booked through services: 10,000 service calls would take longer than the
whole benchmark is allowed to.
"""

from __future__ import annotations

import cProfile
import io
import json
import os
import pstats
import random
import sys
import time as clock
from datetime import date, datetime, time, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import timezone  # noqa: E402
from figures import pct  # noqa: E402
from pydicom.uid import generate_uid  # noqa: E402

from scheduling.management.commands.seed_demo import PROCEDURES  # noqa: E402
from scheduling.models import CharacterSet, OpeningHours, Order, Patient, Procedure, Room  # noqa: E402
from worklist_export.dataset import order_source  # noqa: E402
from worklist_export.services import worklist_orders  # noqa: E402

USERNAME, PASSWORD = "bench", "bench-pass-2026"
OPENS, CLOSES = time(7), time(20)
SLOT = 15  # minutes: bulk orders are 15-minute exams, back to back
ROOMS = [
    # name, modality, AE title, worklist character set
    ("CT 1", "CT", "CT01", CharacterSet.UTF8),
    ("CT 2", "CT", "CT02", CharacterSet.UTF8),
    ("MR 1", "MR", "MR01", CharacterSet.UTF8),
    ("MR 2", "MR", "MR02", CharacterSet.UTF8),
    ("US 1", "US", "US01", CharacterSet.UTF8),
    ("US 2", "US", "US02", CharacterSet.UTF8),
    ("DX 1", "DX", "DX01", CharacterSet.LATIN1),  # an older console: romanised names only
    ("DX 2", "DX", "DX02", CharacterSet.UTF8),
]
THAI_FAMILY = [
    ("ใจดี", "Jaidee"),
    ("ศรีสุข", "Srisuk"),
    ("วงศ์สวัสดิ์", "Wongsawat"),
    ("แสงทอง", "Saengthong"),
    ("บุญมา", "Boonma"),
    ("รัตนพงษ์", "Rattanapong"),
    ("สุขสมบูรณ์", "Suksomboon"),
    ("ทองดี", "Thongdee"),
    ("พัฒนกุล", "Pattanakul"),
    ("ชัยประเสริฐ", "Chaiprasert"),
]
THAI_GIVEN = [
    ("สมชาย", "Somchai", "M"),
    ("สมหญิง", "Somying", "F"),
    ("ประเสริฐ", "Prasert", "M"),
    ("มาลี", "Malee", "F"),
    ("อนันต์", "Anan", "M"),
    ("วิไลวรรณ", "Wilaiwan", "F"),
    ("กิตติ", "Kitti", "M"),
    ("นภา", "Napa", "F"),
    ("ธนากร", "Thanakorn", "M"),
    ("สุดารัตน์", "Sudarat", "F"),
]
LATIN_FAMILY = [
    "Smith",
    "Müller",
    "Brown",
    "García",
    "Dubois",
    "Rossi",
    "Novák",
    "Johansson",
    "Tanaka",
    "Kowalski",
]
LATIN_GIVEN = [
    ("John", "M"),
    ("Anna", "F"),
    ("Émile", "M"),
    ("Zoë", "F"),
    ("Hiroshi", "M"),
    ("Marta", "F"),
    ("José", "M"),
    ("Ingrid", "F"),
    ("Piotr", "M"),
    ("Chloé", "F"),
]


def emit(result: dict) -> None:
    print(json.dumps(result), flush=True)


def day_at(day: date, moment: time) -> datetime:
    return timezone.make_aware(datetime.combine(day, moment))


def bulk_orders(*, rooms, day: date, per_room: int, minutes: int, prefix: str, patients, user, rng) -> int:
    """`per_room` back-to-back orders of `minutes` in every room on `day`, from opening time."""
    procs_by_modality: dict[str, list[Procedure]] = {}
    for proc in Procedure.objects.all():
        procs_by_modality.setdefault(proc.modality, []).append(proc)
    orders, n = [], 0
    for room in rooms:
        start = day_at(day, OPENS)
        for _ in range(per_room):
            n += 1
            accession = f"{prefix}{day:%y%m%d}{n:05d}"
            orders.append(
                Order(
                    accession_number=accession,
                    requested_procedure_id=accession,
                    sps_id=f"{accession}S1",
                    study_instance_uid=generate_uid(prefix=None),
                    patient=rng.choice(patients),
                    procedure=rng.choice(procs_by_modality[room.modality]),
                    room=room,
                    scheduled_start=start,
                    duration_minutes=minutes,
                    scheduled_end=start + timedelta(minutes=minutes),
                    priority=rng.choice(["ROUTINE"] * 8 + ["HIGH", "STAT"]),
                    # Thai text only where the station takes it, so every bulk order can be exported.
                    referring_physician=rng.choice(
                        ["Dr Wattana", "Dr Smith", ""]
                        + (["นพ. สมศักดิ์"] if room.worklist_charset != CharacterSet.LATIN1 else [])
                    ),
                    reason=rng.choice(["Headache", "Follow-up", "ปวดท้อง", ""]),
                    booked_by=user,
                )
            )
            start += timedelta(minutes=minutes)
    Order.objects.bulk_create(orders, batch_size=2000)
    return len(orders)


def stage_seed(args: dict) -> dict:
    """Rooms, the 20 demo procedures, Thai and Latin patients, a user, and `orders` active orders."""
    rng = random.Random(2026)
    user = get_user_model().objects.create_user(USERNAME, password=PASSWORD, is_staff=True, is_superuser=True)
    rooms = Room.objects.bulk_create(
        Room(
            name=name, modality=mod, ae_title=ae, station_name=ae, location="Building A", worklist_charset=cs
        )
        for name, mod, ae, cs in ROOMS
    )
    OpeningHours.objects.bulk_create(
        OpeningHours(room=room, weekday=wd, opens=OPENS, closes=CLOSES) for room in rooms for wd in range(7)
    )
    Procedure.objects.bulk_create(
        Procedure(
            code_value=code, code_meaning=meaning, modality=mod, default_duration=minutes, body_part=part
        )
        for code, meaning, mod, minutes, part, _prep in PROCEDURES
    )
    patients = []
    for i in range(args["patients"]):
        if i % 2 == 0:
            family, rfamily = rng.choice(THAI_FAMILY)
            given, rgiven, sex = rng.choice(THAI_GIVEN)
        else:
            family, rfamily = rng.choice(LATIN_FAMILY), ""
            (given, sex), rgiven = rng.choice(LATIN_GIVEN), ""
        patients.append(
            Patient(
                mrn=f"HN{i + 1:07d}",
                issuer="RIS",
                family_name=family,
                given_name=given,
                romanized_family_name=rfamily,
                romanized_given_name=rgiven,
                birth_date=date(1940, 1, 1) + timedelta(days=rng.randrange(30000)),
                sex=sex,
                weight_kg=rng.choice([None, 55, 62.5, 70, 81]),
            )
        )
    patients = Patient.objects.bulk_create(patients, batch_size=2000)

    # A working day is every room booked back to back on the 15-minute grid (52 exams per room).
    per_day = len(rooms) * ((CLOSES.hour - OPENS.hour) * 60 // SLOT)
    first_day = timezone.localdate() + timedelta(days=1)
    remaining, day, total = args["orders"], first_day, 0
    t0 = clock.perf_counter()
    while remaining > 0:
        per_room = min((CLOSES.hour - OPENS.hour) * 60 // SLOT, -(-remaining // len(rooms)))
        made = bulk_orders(
            rooms=rooms,
            day=day,
            per_room=per_room,
            minutes=SLOT,
            prefix="B",
            patients=patients,
            user=user,
            rng=rng,
        )
        remaining -= made
        total += made
        day += timedelta(days=1)
    return {
        "orders": total,
        "per_day": per_day,
        "first_day": first_day.isoformat(),
        "first_free_day": day.isoformat(),
        "active_in_window": worklist_orders().count(),
        "seconds": clock.perf_counter() - t0,
    }


# --- baseline: a shell-script exporter calling dump2dcm once per item -------------------------------------


def _dump(source: dict) -> str:
    def line(tag: str, vr: str, value) -> str:
        return f"({tag}) {vr} [{'' if value is None else value}]"

    sps = [
        line("0040,0001", "AE", source["station_ae"]),
        line("0040,0002", "DA", source["start_date"]),
        line("0040,0003", "TM", source["start_time"]),
        line("0008,0060", "CS", source["modality"]),
        line("0040,0006", "PN", ""),
        line("0040,0007", "LO", source["sps_description"]),
        line("0040,0009", "SH", source["sps_id"]),
        line("0040,0010", "SH", source["station_name"]),
        line("0040,0011", "SH", source["location"]),
        line("0040,0020", "CS", source["sps_status"]),
    ]
    rows = [
        line("0008,0005", "CS", source["charset"]),
        line("0008,0050", "SH", source["accession"]),
        line("0008,0090", "PN", source["referring"]),
        line("0010,0010", "PN", source["patient_name"]),
        line("0010,0020", "LO", source["patient_id"]),
        line("0010,0021", "LO", source["issuer"]),
        line("0010,0030", "DA", source["birth_date"]),
        line("0010,0040", "CS", source["sex"]),
        line("0020,000d", "UI", source["study_uid"]),
        line("0032,1060", "LO", source["sps_description"]),
        "(0040,0100) SQ (Sequence with undefined length)",
        "(fffe,e000) na (Item with undefined length)",
        *sps,
        "(fffe,e00d) na (ItemDelimitationItem)",
        "(fffe,e0dd) na (SequenceDelimitationItem)",
        line("0040,1001", "SH", source["requested_procedure_id"]),
        line("0040,1003", "SH", source["priority"]),
    ]
    return "\n".join(rows) + "\n"


def stage_dumps(args: dict) -> dict:
    """Write the dcmdump-style text of `count` orders into args["folder"] (for the dump2dcm baseline)."""
    folder = Path(args["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    for order in worklist_orders().order_by("pk")[: args["count"]]:
        source = order_source(order)
        (folder / f"{source['accession']}.dump").write_text(_dump(source), encoding="utf-8")
        written += 1
    return {"written": written}


# --- day board ------------------------------------------------------------------------------------------


def _profile_top(func, lines: int = 25) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    func()
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("cumulative").print_stats(lines)
    text = out.getvalue()
    # Drop the preamble and the long absolute paths: the frames are what a reader needs.
    text = text.replace(str(ROOT) + "/", "").replace(sys.prefix + "/lib/python3.11/site-packages/", "")
    return "\n".join(text.splitlines()[6:]) if text else ""


def stage_board(args: dict) -> dict:
    """GET /?date= for a day with `small` and a day with `large` orders: server time and SQL queries."""
    rng = random.Random(7)
    user = get_user_model().objects.get(username=USERNAME)
    rooms = list(Room.objects.order_by("pk"))
    patients = list(Patient.objects.all())
    results = {}
    for label, day_offset in (("small", 0), ("large", 1)):
        count = args[label]
        day = date.fromisoformat(args["day"]) + timedelta(days=day_offset)
        per_room = count // len(rooms)
        minutes = min(SLOT, (CLOSES.hour - OPENS.hour) * 60 // per_room)
        bulk_orders(
            rooms=rooms,
            day=day,
            per_room=per_room,
            minutes=minutes,
            prefix="D",
            patients=patients,
            user=user,
            rng=rng,
        )
        client = Client()
        client.force_login(user)
        url = f"/?date={day.isoformat()}"
        for _ in range(3):
            assert client.get(url).status_code == 200
        queries: list[str] = []

        def count(execute, sql, params, many, context, queries=queries):
            queries.append(sql)
            return execute(sql, params, many, context)

        with connection.execute_wrapper(count):
            response = client.get(url)
        assert response.status_code == 200
        times = []
        for _ in range(args["repeat"]):
            t0 = clock.perf_counter()
            client.get(url)
            times.append((clock.perf_counter() - t0) * 1000)
        results[label] = {
            "orders": per_room * len(rooms),
            "queries": len(queries),
            "p50": pct(times, 50),
            "p95": pct(times, 95),
            "bytes": len(response.content),
        }
        if label == "large":
            results["profile"] = _profile_top(lambda client=client, url=url: client.get(url))
    return results


def stage_export_breakdown(args: dict) -> dict:
    """Where a full export spends its time per item, step by step, on `count` orders (milliseconds)."""
    import tempfile

    from tests.worklist_export.oracle import dataset_bytes, source_dataset
    from worklist_export.dataset import source_fingerprint
    from worklist_export.encoding import part10_bytes, source_bytes

    count = args["count"]
    steps: dict[str, float] = {}

    def timed(name, func, items):
        t0 = clock.perf_counter()
        out = [func(item) for item in items]
        steps[name] = (clock.perf_counter() - t0) * 1000 / count
        return out

    t0 = clock.perf_counter()
    orders = list(worklist_orders().order_by("pk")[:count])
    steps["load orders (one query)"] = (clock.perf_counter() - t0) * 1000 / count
    sources = timed("order_source (validate values)", order_source, orders)
    timed("source_fingerprint", source_fingerprint, sources)
    # The same item built and written by pydicom (the tests' oracle), for comparison with the encoder.
    datasets = timed("(before) source_dataset: pydicom Dataset", source_dataset, sources)
    timed("(before) dataset_bytes: pydicom write_dataset", dataset_bytes, datasets)
    bodies = timed("source_bytes: the export's encoder", source_bytes, sources)
    files = timed("part10_bytes: file meta", part10_bytes, bodies)
    with tempfile.TemporaryDirectory(dir=os.environ["WORKLIST_DIR"]) as folder:
        names = iter(range(count))

        def create(data, fsync=False):
            fd = os.open(f"{folder}/{next(names)}.tmp", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            os.write(fd, data)
            if fsync:
                os.fsync(fd)
            os.close(fd)

        timed("create + write a file", create, files)
        names = iter(range(count, 2 * count))
        steps["fsync of each file (what the batch write avoids)"] = 0.0
        timed("fsync of each file (what the batch write avoids)", lambda d: create(d, True), files)
        steps["fsync of each file (what the batch write avoids)"] -= steps["create + write a file"]
    return {"count": count, "steps": steps}


# --- hospital scale: the front-desk screens on a built data set (bench/scale.py) -----------------------


def _next_link(html: str) -> str | None:
    """The href of the page's "next page" link, whatever the pagination: rel=next, or a link saying Next."""
    import html as htmllib
    import re

    for anchor in re.finditer(r"<a\b([^>]*)>(.*?)</a>", html, re.S):
        attrs, text = anchor.group(1), anchor.group(2)
        href = re.search(r'href="([^"]*)"', attrs)
        if href and (re.search(r'rel="[^"]*next', attrs) or re.search(r"\b(Next|Older|More)\b", text)):
            return htmllib.unescape(href.group(1))
    return None


def _page_shown(html: str) -> int | None:
    """The page number the list says it shows ("Page 745 of 745"), when it numbers its pages."""
    import re

    found = re.search(r"Page ([\d,]+) of", html)
    return int(found.group(1).replace(",", "")) if found else None


def _page_1000(client, path: str, query: str, budget: float) -> tuple[str | None, int]:
    """The address of page 1,000 of a list, and the page number actually shown there.

    Numbered pages (?page=N) are asked for directly (a list shorter than that shows its last page: the
    number it shows is returned); a cursor (keyset) link is followed 999 times, for at most `budget`
    seconds, as a clerk paging on would.
    """
    import re

    url = f"{path}?{query}" if query else path
    html = client.get(url).content.decode()
    link = _next_link(html)
    if link is None:
        return None, 1
    if re.search(r"[?&]page=2(&|$)", link):
        url = f"{path}?{query}&page=1000" if query else f"{path}?page=1000"
        return url, _page_shown(client.get(url).content.decode()) or 1000
    reached, deadline = 1, clock.perf_counter() + budget
    while reached < 1000 and clock.perf_counter() < deadline:
        url = link if link.startswith("/") else f"{path}{link}"
        link = _next_link(client.get(url).content.decode())
        reached += 1
        if link is None:
            break
    return url, reached


def _errors(html: str) -> str:
    """The form's error messages in a refused POST, for the bench's failure message."""
    import re

    found = re.findall(r'class="[^"]*(?:invalid-feedback|alert|errorlist)[^"]*"[^>]*>(.*?)</', html, re.S)
    return "\n".join(" ".join(f.split()) for f in found) or html[:3000]


def _measure(client, method: str, url: str, *, repeat: int, budget: float, data_for=None, expect=(200,)):
    """Server time (ms) of `url` after warm-up: p50 and p95 over up to `repeat` requests within `budget` s.

    Queries are counted on one extra request with an execute wrapper (CaptureQueriesContext would see the
    log emptied by request_started). `data_for(i)` gives the POST body of the i-th request (a new slot for
    every booking).
    """
    counter = iter(range(10**6))

    def once():
        i = next(counter)
        t0 = clock.perf_counter()
        if method == "POST":
            response = client.post(url, data_for(i))
        else:
            response = client.get(url)
        elapsed = (clock.perf_counter() - t0) * 1000
        if response.status_code not in expect:
            raise SystemExit(f"{method} {url}: {response.status_code}\n{_errors(response.content.decode())}")
        return response, elapsed

    _response, first = once()
    if first < 1000:
        once()
    queries: list[str] = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response, _t = once()
    times: list[float] = []
    deadline = clock.perf_counter() + budget
    while len(times) < repeat and (len(times) < 3 or clock.perf_counter() < deadline):
        times.append(once()[1])
    return {
        "p50": pct(times, 50),
        "p95": pct(times, 95),
        "n": len(times),
        "queries": len(queries),
        "status": response.status_code,
        "bytes": len(response.content),
    }


def _middle_order() -> Order:
    """An order from the middle of the history (by id): years back at hospital size."""
    first, last = Order.objects.order_by("pk").values_list("pk", flat=True)[0], Order.objects.latest("pk").pk
    return Order.objects.filter(pk__gte=(first + last) // 2).order_by("pk").first()


def _cursor_at(order: Order) -> str:
    """The API list's cursor just before `order`: a page deep in the history, as a follower reaches it."""
    from api.orders import _cursor

    # The position (start, id - 1), written by the API's own cursor function from an order standing there.
    return _cursor(Order(pk=order.pk - 1, scheduled_start=order.scheduled_start, booked_at=order.booked_at))


def stage_scale_http(args: dict) -> dict:
    """Every front-desk screen of issue 12 on a scale database, in-process through the test client."""
    from urllib.parse import quote

    repeat, budget = args.get("repeat", 25), args.get("budget", 20.0)
    user = get_user_model().objects.get(username=USERNAME)
    client = Client()
    client.force_login(user)
    mrn = Patient.objects.order_by("pk").values_list("mrn", flat=True)[Patient.objects.count() // 2]
    today = timezone.localdate()
    wide = f"date_from={today - timedelta(days=60)}&date_to={today + timedelta(days=30)}"
    cases = {
        "autocomplete_thai": f"/patients/autocomplete/?q={quote('สมช')}",
        "autocomplete_thai_vowel": f"/patients/autocomplete/?q={quote('ศรี')}",
        "autocomplete_latin": "/patients/autocomplete/?q=and",
        "autocomplete_mrn": f"/patients/autocomplete/?q={mrn}",
        "autocomplete_mrn_prefix": f"/patients/autocomplete/?q={mrn[:7]}",
        "patient_list_latin": "/patients/?q=and",
        "order_list_first": "/orders/",
        "order_list_filter_first": "/orders/?modality=US",
        "order_list_wide_first": f"/orders/?{wide}",
        "admin_orders_first": "/admin/scheduling/order/",
        "admin_orders_999": "/admin/scheduling/order/?p=999",
        "admin_orders_search": "/admin/scheduling/order/?q=Smith",
        "admin_patients_mrn": f"/admin/scheduling/patient/?q={mrn}",
        "problems": "/worklist/problems/",
        # The order API (issue 14), as the logged-in user (its scopes are the user's roles).
        "api_patients_thai": f"/api/v1/patients?q={quote('สมช')}",
        "api_patients_mrn": f"/api/v1/patients?q={mrn}",
        "api_orders_first": f"/api/v1/orders?date_from={today}",
        "api_orders_all_first": "/api/v1/orders",
        "api_orders_modality": f"/api/v1/orders?date_from={today}&modality=US",
        "api_orders_patient": f"/api/v1/orders?patient={Patient.objects.get(mrn=mrn).pk}",
        "api_orders_accession": f"/api/v1/orders?accession_number={_middle_order().accession_number}",
        "api_orders_cursor_mid": f"/api/v1/orders?cursor={_cursor_at(_middle_order())}",
        "api_events": "/api/v1/events?after=0",
    }
    only = args.get("only")
    if only:
        cases = {name: url for name, url in cases.items() if name in only}
    # The default window (the next 30 days: some 750 pages, so ?page=1000 shows its last page) and a
    # clerk's explicit window of the last 60 days and the next 30, where page 1,000 exists at both sizes
    # (small: 75 days of history).
    pages = {}
    for name, query in (
        ("order_list_last", ""),
        ("order_list_1000", wide),
        ("order_list_filter_last", "modality=US"),
        ("order_list_filter_1000", f"{wide}&status=COMPLETED"),
    ):
        if only and name not in only:
            continue
        t0 = clock.perf_counter()
        url, reached = _page_1000(client, "/orders/", query, args.get("follow_budget", 180.0))
        pages[name] = {"url": url, "reached": reached, "seconds": clock.perf_counter() - t0}
        if url:
            cases[name] = url
    results: dict = {"mrn": mrn, "pages": pages}
    for name, url in cases.items():
        t0 = clock.perf_counter()
        results[name] = _measure(client, "GET", url, repeat=repeat, budget=budget, expect=(200,))
        results[name]["url"] = url
        print(
            f"   {name}: {results[name]['p50']:.0f} ms ({clock.perf_counter() - t0:.0f} s)", file=sys.stderr
        )

    # Free slots and booking on a day of the future window, in its free afternoon (bench/scale.py fills
    # each room from 07:00 to about 15:00).
    day = date.fromisoformat(args["day"])
    rooms = list(Room.objects.order_by("pk"))
    ct = rooms[0]
    procedure = Procedure.objects.filter(modality=ct.modality, default_duration=15).order_by("pk").first()
    results["free_slots"] = _measure(
        client,
        "GET",
        f"/orders/slots/?room={ct.pk}&date={day.isoformat()}&procedure={procedure.pk}",
        repeat=repeat,
        budget=budget,
    )
    booker = Client(enforce_csrf_checks=True)
    booker.force_login(user)
    booker.get("/orders/new/")
    token = booker.cookies["csrftoken"].value
    # Rooms whose modality has a 15-minute procedure, so every booking takes one free grid slot.
    short = {p.modality: p.pk for p in Procedure.objects.filter(default_duration=SLOT).order_by("-pk")}
    rooms = [room for room in rooms if room.modality in short]
    procs = {room.pk: short[room.modality] for room in rooms}
    first, count = Patient.objects.order_by("pk").values_list("pk", flat=True)[0], Patient.objects.count()
    candidates = [first + i * (count // 400) + 17 for i in range(400)]
    busy = set(
        Order.objects.filter(patient_id__in=candidates, scheduled_start__date=day).values_list(
            "patient_id", flat=True
        )
    )
    patients = [pk for pk in candidates if pk not in busy]
    taken = set(Order.objects.filter(scheduled_start__date=day).values_list("room_id", "scheduled_start"))
    free = []
    for minute in range(16 * 60, 21 * 60 - SLOT, SLOT):
        for room in rooms:
            start = day_at(day, time(minute // 60, minute % 60))
            if (room.pk, start) not in taken:
                free.append((room, start))

    def booking(i: int) -> dict:
        room, start = free[i]
        return {
            "csrfmiddlewaretoken": token,
            "patient": patients[i],
            "procedure": procs[room.pk],
            "room": room.pk,
            "date": start.date().isoformat(),
            "slot": f"{start:%H:%M}",
            "priority": "ROUTINE",
            "referring_physician": "Dr Wattana",
            "reason": "Follow-up",
        }

    results["booking"] = _measure(
        booker, "POST", "/orders/new/", repeat=repeat, budget=budget, data_for=booking, expect=(302,)
    )
    board_day = date.fromisoformat(args["board_day"])
    results["board"] = _measure(
        client, "GET", f"/?date={board_day.isoformat()}", repeat=repeat, budget=budget
    )
    results["board"]["orders"] = Order.objects.filter(scheduled_start__date=board_day).count()
    results["patients"] = Patient.objects.count()
    results["orders"] = Order.objects.count()
    return results


def stage_scale_names(args: dict) -> dict:
    """A Latin family name on many worklist items of the window, for the DICOM name query."""
    from django.db.models import Count

    row = (
        Order.objects.filter(status="SCHEDULED", patient__romanized_family_name="")
        .values("patient__family_name")
        .annotate(n=Count("pk"))
        .order_by("-n")
        .first()
    )
    return {"family": row["patient__family_name"], "items": row["n"]}


STAGES = {
    "export_breakdown": stage_export_breakdown,
    "seed": stage_seed,
    "dumps": stage_dumps,
    "board": stage_board,
    "scale_http": stage_scale_http,
    "scale_names": stage_scale_names,
}

if __name__ == "__main__":
    emit(STAGES[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
