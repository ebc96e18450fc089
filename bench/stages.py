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


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


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
            "p50": percentile(times, 50),
            "p95": percentile(times, 95),
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


STAGES = {
    "export_breakdown": stage_export_breakdown,
    "seed": stage_seed,
    "dumps": stage_dumps,
    "board": stage_board,
}

if __name__ == "__main__":
    emit(STAGES[sys.argv[1]](json.loads(sys.argv[2]) if len(sys.argv) > 2 else {}))
