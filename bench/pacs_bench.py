"""The PACS link in `make bench` (issue 16): how soon after its last image an exam is completed.

On the bench PostgreSQL database that bench/run.py seeded: STUDIES orders booked (through the scheduling
services, each with its worklist file) in a CT room set to complete on study arrival; a private Orthanc
(/usr/sbin/Orthanc, StableAge STABLE_AGE s, HTTP with a RegisteredUsers user, as in production); the
follower as `manage.py follow_pacs --every POLL_SECONDS`, the loop `make run` uses. The bench sends each
study (two CT images, pydicom's CT_small.dcm with the order's accession number) with dcmtk's storescu,
one every SEND_INTERVAL s so that several wait for stability at once, and notes the wall clock when
storescu returns (the last instance stored). The order's completion time is its COMPLETED event's `at`
(written in the transaction that completes it; same machine clock). Latency = completed - stored.

The floor is Orthanc's StableAge: it reports a study stable only after StableAge seconds without a new
instance, and its countdown runs on a one-second tick, so a study is stable between StableAge and
StableAge + 1 s after its last image. The follower adds its poll interval (at most POLL_SECONDS) and
its own work (reading the study and its series, the transaction that records it and completes the order,
the worklist file's removal).

Also timed: an idle round of the follower (nothing new in the feed), in-process, what each poll costs the
PACS and the database when nothing arrives.

`python bench/pacs_bench.py book '{...}'` and `... idle '{...}'` are the Django sides (run with the
bench's environment).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time as clock
from datetime import datetime
from pathlib import Path

from figures import free_port, pct

ROOT = Path(__file__).resolve().parent.parent
ORTHANC = "/usr/sbin/Orthanc"
STUDIES = 40
IMAGES_PER_STUDY = 2
SEND_INTERVAL = 0.5
STABLE_AGE = 3
POLL_SECONDS = 0.25
TIMEOUT = 60  # after the last study sent
IDLE_ROUNDS = 50
USER, PASSWORD = "bench", "bench-pacs-2026"


def log(message: str) -> None:
    print(f"[{clock.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def start_orthanc(folder: Path) -> tuple[subprocess.Popen, str, int]:
    http_port, dicom_port = free_port(), free_port()
    config = folder / "orthanc.json"
    config.write_text(
        json.dumps(
            {
                "Name": "RIS bench PACS",
                "StorageDirectory": str(folder / "storage"),
                "IndexDirectory": str(folder / "index"),
                "DicomAet": "ORTHANC",
                "DicomPort": dicom_port,
                "HttpPort": http_port,
                "StableAge": STABLE_AGE,
                "RemoteAccessAllowed": True,
                "AuthenticationEnabled": True,
                "RegisteredUsers": {USER: PASSWORD},
                "DicomAlwaysAllowStore": True,
            }
        )
    )
    log_file = (folder / "orthanc.log").open("wb")
    process = subprocess.Popen([ORTHANC, str(config)], stdout=log_file, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{http_port}"
    import requests

    deadline = clock.monotonic() + 30
    while clock.monotonic() < deadline:
        try:
            if requests.get(f"{url}/system", auth=(USER, PASSWORD), timeout=2).status_code == 200:
                return process, url, dicom_port
        except requests.RequestException:
            pass
        if process.poll() is not None:
            break
        clock.sleep(0.1)
    raise SystemExit(f"Orthanc did not start: see {folder / 'orthanc.log'}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def study_files(folder: Path, accession: str, study_uid: str) -> list[Path]:
    """IMAGES_PER_STUDY copies of CT_small.dcm in one series of a study of its own (a modality writes its
    own StudyInstanceUID here, so the follower matches by accession number, its usual way)."""
    import pydicom
    from pydicom.data import get_testdata_file
    from pydicom.uid import generate_uid

    series_uid = generate_uid()
    paths = []
    for number in range(1, IMAGES_PER_STUDY + 1):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.AccessionNumber = accession
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        path = folder / f"{accession}-{number}.dcm"
        ds.save_as(path)
        paths.append(path)
    return paths


def summary(values: list[float]) -> dict:
    return {
        "n": len(values),
        "p50": pct(values, 50),
        "p95": pct(values, 95),
        "min": min(values, default=float("nan")),
        "max": max(values, default=float("nan")),
    }


def bench_pacs(bench, py: str) -> dict:
    """The PACS section: study-to-completion latency, and the follower's idle round. Skipped (with the
    reason) without Orthanc or storescu."""
    missing = [p for p in (ORTHANC, shutil.which("storescu")) if not p or not Path(p).exists()]
    if missing:
        log("pacs: Orthanc or storescu missing (apt-get install orthanc dcmtk): section skipped")
        return {"missing": "Orthanc or storescu not installed"}
    started = clock.perf_counter()
    log(
        f"8. PACS: {STUDIES} studies sent to Orthanc (StableAge {STABLE_AGE} s), followed every {POLL_SECONDS} s"
    )
    orders = json.loads(
        bench.run(py, "bench/pacs_bench.py", "book", json.dumps({"count": STUDIES})).splitlines()[-1]
    )
    with tempfile.TemporaryDirectory(prefix="pacs-bench-") as name:
        folder = Path(name)
        orthanc, url, dicom_port = start_orthanc(folder)
        env = {**bench.env, "ORTHANC_URL": url, "ORTHANC_USERNAME": USER, "ORTHANC_PASSWORD": PASSWORD}
        follower = bench.start(
            "follow_pacs", py, "manage.py", "follow_pacs", "--every", str(POLL_SECONDS), env=env
        )
        try:
            stored: dict[int, float] = {}
            for order in orders:
                files = study_files(folder, order["accession"], order["study_uid"])
                subprocess.run(
                    ["storescu", "-aec", "ORTHANC", "127.0.0.1", str(dicom_port), *map(str, files)],
                    check=True,
                    capture_output=True,
                )
                stored[order["id"]] = clock.time()
                clock.sleep(SEND_INTERVAL)
            ids = ",".join(str(o["id"]) for o in orders)
            deadline = clock.monotonic() + TIMEOUT
            while clock.monotonic() < deadline:
                done = bench.sql(
                    f"SELECT order_id, max(at) FROM scheduling_orderevent WHERE kind = 'completed' "
                    f"AND order_id IN ({ids}) GROUP BY order_id"
                )
                if len(done) == len(orders):
                    break
                clock.sleep(0.2)
            latency = [at.timestamp() - stored[order_id] for order_id, at in done]
            files_left = sum(
                1 for o in orders if (bench.worklists / "WORKLIST" / f"{o['accession']}.wl").exists()
            )
            studies = bench.sql(
                "SELECT count(*), sum(instance_count) FROM pacs_link_study WHERE state = 'matched'"
            )[0]
            bench.stop(follower)
            log("   idle rounds of the follower")
            idle = json.loads(
                bench.run(
                    py, "bench/pacs_bench.py", "idle", json.dumps({"rounds": IDLE_ROUNDS}), env=env
                ).splitlines()[-1]
            )
        finally:
            bench.stop(follower)
            stop(orthanc)
    result = {
        "studies": STUDIES,
        "images_per_study": IMAGES_PER_STUDY,
        "stable_age": STABLE_AGE,
        "poll_seconds": POLL_SECONDS,
        "send_interval": SEND_INTERVAL,
        "completed": len(latency),
        "timeouts": STUDIES - len(latency),
        "latency": summary(latency),
        "files_left": files_left,
        "matched_studies": studies[0],
        "matched_images": studies[1] or 0,
        "idle": idle,
        "seconds": clock.perf_counter() - started,
    }
    log(f"   {result}")
    try:
        import pacs_render
    except ImportError:
        log("pacs: bench/pacs_render.py is absent: no render figures")
    else:
        result["render"] = pacs_render.bench_render(bench)
    return result


# --- the document --------------------------------------------------------------------------------------


def _met(ok: bool) -> str:
    return "yes" if ok else "**no**"


def pacs_rows(r: dict) -> list[list[str]]:
    header = ["Measure", "Figure", "Baseline (same run)", "Ratio", "Target", "Met?"]
    if r.get("missing"):
        return [header, ["PACS link", r["missing"], "-", "-", "-", "-"]]
    lat, idle = r["latency"], r["idle"]
    target = r["stable_age"] + 2
    rows = [
        header,
        [
            f"Last image stored (storescu returns) to order completed, {r['studies']} studies of "
            f"{r['images_per_study']} CT images sent every {r['send_interval']} s, follower polling every "
            f"{r['poll_seconds']} s (`follow_pacs --every`)",
            f"p50 {lat['p50']:.2f} s, p95 {lat['p95']:.2f} s, max {lat['max']:.2f} s; {r['completed']} completed, "
            f"{r['timeouts']} timeouts, {r['files_left']} worklist files left",
            f"Orthanc's StableAge {r['stable_age']} s (the floor: stable {r['stable_age']}-{r['stable_age'] + 1} s "
            "after the last image)",
            f"p95 {lat['p95'] / r['stable_age']:.2f}x StableAge",
            f"≤ StableAge + 2 s = {target} s",
            _met(lat["p95"] <= target and r["timeouts"] == 0 and r["files_left"] == 0),
        ],
        [
            "An idle round of the follower (nothing new: one /changes request, the cursor's transactions)",
            f"p50 {idle['p50']:.1f} ms, p95 {idle['p95']:.1f} ms ({idle['n']} rounds)",
            "-",
            "-",
            "(informative)",
            "-",
        ],
    ]
    render = r.get("render")
    if render:
        import pacs_render

        rows += [list(row) for row in pacs_render.render_rows(render)[1:]]
    return rows


def pacs_document(r: dict, markdown) -> str:
    machine = r.get("machine", "")
    return f"""<!-- pacs -->
## PACS link (issue 16): study arrival to completed exam, and image rendering

Written by `python bench/run.py --only pacs` (and `make bench`). {machine}

{markdown(pacs_rows(r))}

- **Study to completion**: {r.get("studies", "-")} orders booked through the scheduling services in a CT
  room that completes on study arrival, each with its worklist file; a private Orthanc 1.10 (StableAge
  {r.get("stable_age", "-")} s, HTTP basic authentication); `manage.py follow_pacs --every {r.get("poll_seconds", "-")}`
  on the bench PostgreSQL database. Each study (two CT images, its order's accession number, a
  StudyInstanceUID of the modality's own) is sent by dcmtk's `storescu`, one every
  {r.get("send_interval", "-")} s so that several wait for stability at once. Latency: from the moment
  storescu returns (the last instance is stored) to the `at` of the order's COMPLETED event (the
  transaction that completes it). Orthanc calls a study stable only after StableAge seconds without a new
  image, on a one-second tick: StableAge is the floor, the follower's share is what lies above it (its
  poll interval, reading the study and its series, one transaction for the study, its order and the
  cursor). The worklist files are checked gone at the end.
- **Idle round**: `follow_once()` in-process when the feed has nothing new: what each poll costs when no
  images arrive (production polls every PACS_POLL_SECONDS, 5 s by default).
<!-- /pacs -->
"""


# --- the Django side -----------------------------------------------------------------------------------


def stage_book(args: dict) -> dict:
    """`count` orders booked in a CT room switched to study-arrival completion, on the first free day."""
    from datetime import timedelta

    from django.contrib.auth import get_user_model
    from django.db.models import Max
    from django.utils import timezone

    from scheduling import services
    from scheduling.models import Completion, Order, Patient, Procedure, Room

    user = get_user_model().objects.get(username="bench")
    room = Room.objects.filter(modality="CT").order_by("pk").first()
    room.completion = Completion.STUDY
    services.room_save(room=room)
    procedure = Procedure.objects.filter(modality="CT").order_by("pk").first()
    last = Order.objects.aggregate(last=Max("scheduled_start"))["last"]
    day = timezone.localtime(last).date() + timedelta(days=1)
    minutes = procedure.default_duration
    per_day = 12 * 60 // minutes  # the bench rooms are open 07:00-20:00
    patients = list(Patient.objects.order_by("pk")[: args["count"]])
    booked = []
    for n, patient in enumerate(patients):
        on = day + timedelta(days=n // per_day)
        start = timezone.make_aware(datetime(on.year, on.month, on.day, 7, 0))
        order = services.order_book(
            patient=patient,
            procedure=procedure,
            room=room,
            start=start + timedelta(minutes=minutes * (n % per_day)),
            user=user,
        )
        # The modality's own study UID: the follower matches by accession, as most sites need.
        booked.append(
            {"id": order.pk, "accession": order.accession_number, "study_uid": f"2.25.{order.pk}999"}
        )
    return booked


def stage_idle(args: dict) -> dict:
    """`rounds` follower rounds with nothing new in the feed, in milliseconds."""
    from pacs_link.follow import follow_once
    from pacs_link.orthanc import client

    with client() as orthanc:
        follow_once(orthanc)  # catch up first, so every timed round is idle
        times = []
        for _n in range(args["rounds"]):
            t0 = clock.perf_counter()
            follow_once(orthanc)
            times.append((clock.perf_counter() - t0) * 1000)
    return summary(times)


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")
    import django

    django.setup()
    stages = {"book": stage_book, "idle": stage_idle}
    print(json.dumps(stages[sys.argv[1]](json.loads(sys.argv[2]))))
