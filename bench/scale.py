"""A hospital-size data set in PostgreSQL, built with set-based SQL: `python bench/scale.py build --size hospital`.

    python bench/scale.py build --size {small,hospital} --db NAME   # drop, create, migrate, fill, ANALYZE
    python bench/scale.py ensure --size {small,hospital}            # name of a built DB for this checkout

Both sizes share 20 rooms (5 CT, 4 MR, 6 US, 5 DX; DX 1 takes Latin-1 only), open every day 07:00-21:00,
the 20 procedures of `seed_demo`, the superuser bench / bench-pass-2026, and the same future: 18,607
SCHEDULED orders over the 30 days from tomorrow, and 2,000 REQUESTED waiting to be booked. They differ
in history:

    small     10,000 patients      81,393 past orders (75 days at 1,086 a day)    102,000 orders in all
    hospital  1,000,000 patients   1,982,263 past orders (1,826 days, ~5 years)   2,002,870 orders in all

Both sizes book the same 1,086 exams a day: a small hospital here is the same department with a short
history, so what grows from one to the other is history and the patient master, which is what the
screens must not depend on. Every order is a 15-minute exam on the 15-minute grid, each room's non-
cancelled orders never overlap (the exclusion constraint order_room_no_overlap checks it on the fill).
Past orders: 88.9% COMPLETED, 3% NO_SHOW, 8% CANCELLED (with a reason), 0.1% ARRIVED or IN_PROGRESS
left over (older than 3 days; in the last 3 days those are COMPLETED too). The exam's times, as the
reports read them, to the microsecond as services stamp them: arrived_at within 10 minutes either
side of the scheduled start, started_at 0-31 minutes after arrival, completed_at 10-41 minutes after
the start, each as far as the order got (a leftover ARRIVED has only its arrival, an IN_PROGRESS no
completion); booked_at 1 hour to 21 days before the exam (never after the build). No-shows older than 3 days were called back a day or two later
(called_back_at, by the bench user); the last 3 days' (about 100) wait on the "To call back" list.
The "To schedule" list holds 2,000 REQUESTED orders (no room, no time; requested up to 90 days ago,
half of them in the last 11 days; 3% STAT; no worklist entry). Every past order has the worklist
entry a real system keeps after years: no file, removed and synced after the exam; the future orders
have none (the bench's first export writes them). The history tables (simple_history) stay empty.

The schema is the checkout's (`manage.py migrate`). The three big tables are filled with INSERT ...
SELECT over generate_series, with their secondary indexes, unique, exclusion and foreign-key
constraints dropped during the fill and put back afterwards (one sort per index instead of two million
inserts into each). Values come from hashint8 of the row number, so two builds are identical apart from
the dates, which follow today (the future starts tomorrow in the clinic's time zone).

`ensure` is the cache `make bench` uses: a built database records the generator version and a digest
of the checkout's migrations (table bench_scale_meta, and the database's comment so it can be checked
without connecting to a template); a database whose key matches is reused as a template, otherwise
ris_bench_scale_<size> is rebuilt. BENCH_SCALE_PREFIX=ris_xyz_scale names them ris_xyz_scale_<size>
instead, so a second checkout's bench neither drops nor rebuilds the first one's.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import time as clock
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))

from scale_names import (  # noqa: E402
    CANCEL_REASONS,
    EXAM_REASONS,
    EXAM_REASONS_LATIN,
    LATIN_FAMILY,
    LATIN_GIVEN,
    REFERRERS_ANY,
    REFERRERS_LATIN,
    THAI_FAMILY,
    THAI_GIVEN,
)

GENERATOR_VERSION = "4"
PG = "postgresql://postgres@127.0.0.1:5432"
PY = (
    str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
)
READY_DIR = Path("/tmp/ris-scale")
# The databases `ensure` builds and the benches copy: <prefix>_<size> (and <prefix>_<size>_run).
PREFIX = os.environ.get("BENCH_SCALE_PREFIX", "ris_bench_scale")
TZ = os.environ.get("TIME_ZONE", "Asia/Bangkok")
ISSUER = os.environ.get("RIS_ISSUER_OF_PATIENT_ID", "RIS")  # validators.default_issuer
USERNAME, PASSWORD = "bench", "bench-pass-2026"

SIZES = {
    "small": {"patients": 10_000, "past": 81_393},
    "hospital": {"patients": 1_000_000, "past": 1_982_263},
}
PAST_PER_DAY = 1_086
FUTURE_ORDERS, FUTURE_DAYS = 18_607, 30
REQUESTED_ORDERS = 2_000  # the To-schedule list, the same at both sizes
OPENS, CLOSES = "07:00", "21:00"  # 56 slots a room: 1,086 a day over 20 rooms is 55 at most
SLOT = 15
ROOMS = [
    # name, modality, AE title, worklist character set
    *((f"CT {i}", "CT", f"CT0{i}", "ISO_IR 192") for i in range(1, 6)),
    *((f"MR {i}", "MR", f"MR0{i}", "ISO_IR 192") for i in range(1, 5)),
    *((f"US {i}", "US", f"US0{i}", "ISO_IR 192") for i in range(1, 7)),
    ("DX 1", "DX", "DX01", "ISO_IR 100"),  # an older console: romanised names only
    *((f"DX {i}", "DX", f"DX0{i}", "ISO_IR 192") for i in range(2, 6)),
]
FILLED = ["scheduling_patient", "scheduling_order", "worklist_export_worklistentry"]
APPS = ["scheduling", "worklist_export", "mwl_server", "access_audit", "ris"]


def log(message: str) -> None:
    print(f"[{clock.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def admin_sql(query: str) -> list[tuple]:
    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        cur = conn.execute(query)
        return cur.fetchall() if cur.description else []


def cache_key(size: str) -> str:
    """The generator version, the size and every migration of the checkout (file names and contents)."""
    digest = hashlib.sha256(f"{GENERATOR_VERSION}:{size}:{SIZES[size]}".encode())
    for app in APPS:
        for path in sorted((ROOT / app / "migrations").glob("*.py")):
            digest.update(path.relative_to(ROOT).as_posix().encode())
            digest.update(path.read_bytes())
    digest.update((ROOT / "requirements.txt").read_bytes())  # third-party apps' migrations
    return digest.hexdigest()[:20]


def quoted(name: str) -> str:
    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise SystemExit(f"{name!r}: use a database name of lower-case letters, digits and _")
    return f'"{name}"'


def db_comment(name: str) -> str | None:
    rows = admin_sql(
        f"SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = '{quoted(name)[1:-1]}'"
    )
    return rows[0][0] if rows else None


def drop_database(name: str) -> None:
    ident = quoted(name)
    if admin_sql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'"):
        admin_sql(f"ALTER DATABASE {ident} WITH is_template false")
        admin_sql(f"DROP DATABASE {ident} WITH (FORCE)")


def django_env(db: str) -> dict:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "ris.settings",
        "DJANGO_DEBUG": "1",
        "DATABASE_URL": f"{PG}/{db}",
        "CELERY_BROKER_URL": "",
        "LOG_LEVEL": "WARNING",
    }


def migrate(db: str) -> None:
    done = subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        env=django_env(db),
        capture_output=True,
        text=True,
    )
    if done.returncode:
        raise SystemExit(f"migrate on {db} failed:\n{done.stdout}\n{done.stderr}")


def password_hash() -> str:
    """The bench user's password hashed as the app's Django would (its PASSWORD_HASHERS)."""
    code = (
        "import django; django.setup(); from django.contrib.auth.hashers import make_password; "
        f"print(make_password({PASSWORD!r}))"
    )
    done = subprocess.run(
        [PY, "-c", code], cwd=ROOT, env=django_env("postgres"), capture_output=True, text=True, check=True
    )
    return done.stdout.strip().splitlines()[-1]


def required_extras(conn, table: str, given: list[str]) -> tuple[str, str]:
    """Columns another change added that are NOT NULL without a database default: filled with an empty value.

    So the generator keeps working when a migration adds, say, a blank CharField; the build prints them.
    """
    rows = conn.execute(
        """SELECT column_name, data_type FROM information_schema.columns
           WHERE table_schema = 'public' AND table_name = %s AND is_nullable = 'NO'
             AND column_default IS NULL AND is_identity = 'NO' AND is_generated = 'NEVER'""",
        [table],
    ).fetchall()
    empty = {
        "character varying": "''",
        "text": "''",
        "integer": "0",
        "bigint": "0",
        "smallint": "0",
        "numeric": "0",
        "boolean": "false",
        "timestamp with time zone": "now()",
        "date": "current_date",
        "jsonb": "'{}'::jsonb",
    }
    extra = [(name, empty.get(kind, "''")) for name, kind in rows if name not in given and name != "id"]
    if extra:
        log(f"   {table}: filling new NOT NULL columns with empty values: {', '.join(n for n, _ in extra)}")
    cols = "".join(f", {name}" for name, _ in extra)
    values = "".join(f", {value}" for _, value in extra)
    return cols, values


def h(key: str, salt: int) -> str:
    """A deterministic pseudo-random non-negative bigint from a row number (SQL expression)."""
    return f"abs(hashint8(({key})::bigint * 16 + {salt})::bigint)"


def u(key: str, salt: int) -> str:
    """The same as a fraction in [0, 1). Written with %% for queries that have parameters."""
    return f"(({h(key, salt)} %% 1000000) / 1000000.0)"


# --- the big tables' secondary indexes and constraints, dropped for the fill -----------------------------


def take_off_indexes(conn) -> list[str]:
    """Drop the filled tables' FK, unique and exclusion constraints and non-primary indexes; their DDL back."""
    tables = ", ".join(f"'{t}'::regclass" for t in FILLED)
    constraints = conn.execute(
        f"""SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid), contype FROM pg_constraint
            WHERE conrelid IN ({tables}) AND contype IN ('f', 'u', 'x')
            ORDER BY contype = 'f' DESC"""
    ).fetchall()
    indexes = conn.execute(
        f"""SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i
            WHERE i.indrelid IN ({tables}) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)"""
    ).fetchall()
    for table, name, _definition, _kind in constraints:
        conn.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _definition in indexes:
        conn.execute(f"DROP INDEX {name}")
    ddl = [definition for _name, definition in indexes]
    # Unique and exclusion first, foreign keys last (they are validated with one join each).
    for table, name, definition, _kind in sorted(constraints, key=lambda c: c[3] == "f"):
        ddl.append(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    return ddl


# --- the build -----------------------------------------------------------------------------------------


def build(size: str, db: str) -> float:
    started = clock.perf_counter()
    spec = SIZES[size]
    key = cache_key(size)
    ident = quoted(db)
    log(f"building {db} ({size}: {spec['patients']:,} patients, {spec['past']:,} past orders), key {key}")
    drop_database(db)
    admin_sql(f"CREATE DATABASE {ident}")
    migrate(db)
    log(f"   migrated ({clock.perf_counter() - started:.0f} s)")
    hashed = password_hash()
    today = datetime.now(ZoneInfo(TZ)).date()
    with psycopg.connect(f"{PG}/{db}", autocommit=True) as conn:
        for setting in (
            "maintenance_work_mem = '1GB'",
            "work_mem = '256MB'",
            "synchronous_commit = off",
            "max_parallel_maintenance_workers = 2",
        ):
            conn.execute(f"SET {setting}")
        with conn.transaction():
            fill_catalog(conn, hashed)
            ddl = take_off_indexes(conn)
            fill_patients(conn, spec["patients"])
            fill_orders(conn, spec["past"], today)
            fill_requested(conn)
            fill_entries(conn)
        log(f"   filled ({clock.perf_counter() - started:.0f} s); indexes and constraints back")
        for statement in ddl:
            t0 = clock.perf_counter()
            conn.execute(statement)
            log(f"      {clock.perf_counter() - t0:5.1f} s  {statement[:110]}")
        for table in FILLED + [
            "scheduling_room",
            "scheduling_procedure",
            "scheduling_openinghours",
            "auth_user",
        ]:
            conn.execute(f"VACUUM (ANALYZE) {table}")
        seconds = clock.perf_counter() - started
        conn.execute("CREATE TABLE bench_scale_meta (key text PRIMARY KEY, value text NOT NULL)")
        meta = {
            "generator": GENERATOR_VERSION,
            "size": size,
            "key": key,
            "built_at": datetime.now(ZoneInfo("UTC")).isoformat(timespec="seconds"),
            "built_on": today.isoformat(),
            "build_seconds": f"{seconds:.0f}",
            "migrations": ",".join(
                f"{app}.{name}"
                for app, name in conn.execute(
                    "SELECT app, name FROM django_migrations ORDER BY id"
                ).fetchall()
            ),
        }
        for k, v in meta.items():
            conn.execute("INSERT INTO bench_scale_meta VALUES (%s, %s)", [k, v])
        counts = conn.execute(
            """SELECT (SELECT count(*) FROM scheduling_patient), (SELECT count(*) FROM scheduling_order),
                      (SELECT count(*) FROM scheduling_order WHERE status = 'SCHEDULED'),
                      (SELECT count(*) FROM worklist_export_worklistentry)"""
        ).fetchone()
    admin_sql(f"COMMENT ON DATABASE {ident} IS 'ris-scale {key} {size} built {meta['built_at']}'")
    admin_sql(f"ALTER DATABASE {ident} WITH is_template true")
    log(
        f"built {db} in {seconds:.0f} s: {counts[0]:,} patients, {counts[1]:,} orders "
        f"({counts[2]:,} scheduled), {counts[3]:,} worklist entries"
    )
    return seconds


def fill_catalog(conn, hashed: str) -> None:
    conn.execute(
        """INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff,
                                  is_active, date_joined)
           VALUES (%s, true, %s, 'Bench', 'User', '', true, true, now())""",
        [hashed, USERNAME],
    )
    for name, modality, ae, charset in ROOMS:
        conn.execute(
            """INSERT INTO scheduling_room (name, modality, ae_title, station_name, location, worklist_charset,
                                            called_ae_title, active, completion)
               VALUES (%s, %s, %s, %s, 'Building A', %s, '', true, 'mpps')""",
            [name, modality, ae, ae, charset],
        )
    conn.execute(
        f"""INSERT INTO scheduling_openinghours (room_id, weekday, opens, closes)
            SELECT id, wd, '{OPENS}', '{CLOSES}' FROM scheduling_room, generate_series(0, 6) wd"""
    )
    # seed_demo's PROCEDURES is a plain list; reading the module source avoids a Django start-up here.
    procedures = _seed_demo_procedures()
    for code, meaning, modality, minutes, part, prep in procedures:
        conn.execute(
            """INSERT INTO scheduling_procedure (code_value, coding_scheme, code_meaning, modality,
                                                 default_duration, body_part, instructions_en, active)
               VALUES (%s, 'RIS', %s, %s, %s, %s, %s, true)""",
            [code, meaning, modality, minutes, part, prep],
        )
    conn.execute(
        """CREATE TEMP TABLE bench_rooms AS
           SELECT (row_number() OVER (ORDER BY r.id) - 1)::int AS ri, r.id AS room_id,
                  r.worklist_charset = 'ISO_IR 100' AS latin1,
                  array_agg(p.id ORDER BY p.id) AS procs
           FROM scheduling_room r JOIN scheduling_procedure p ON p.modality = r.modality
           GROUP BY r.id"""
    )


def _seed_demo_procedures() -> list[tuple]:
    import ast

    source = (ROOT / "scheduling" / "management" / "commands" / "seed_demo.py").read_text()
    tree = ast.parse(source)
    constants = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                constants[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                if node.targets[0].id == "PROCEDURES":
                    # Preparation texts are named constants: resolve them by name.
                    rows = []
                    for elt in node.value.elts:
                        rows.append(
                            tuple(
                                constants[e.id] if isinstance(e, ast.Name) else ast.literal_eval(e)
                                for e in elt.elts
                            )
                        )
                    return rows
    return constants["PROCEDURES"]


def fill_patients(conn, count: int) -> None:
    t0 = clock.perf_counter()
    given = [
        "mrn", "issuer", "family_name", "given_name", "middle_name", "name_prefix", "name_suffix",
        "romanized_family_name", "romanized_given_name", "romanized_middle_name", "birth_date", "sex", "phone",
        "address", "weight_kg", "allergies", "medical_alerts", "pregnancy_status", "created_at", "updated_at",
        "version",
    ]  # fmt: skip
    extra_cols, extra_values = required_extras(conn, "scheduling_patient", given)
    thai_given = [g for g, _r, _s in THAI_GIVEN]
    conn.execute(
        f"""
        INSERT INTO scheduling_patient ({", ".join(given)}{extra_cols})
        SELECT 'HN' || lpad(g::text, 7, '0'), %(issuer)s,
               CASE WHEN thai THEN (%(tf)s::text[])[1 + floor(%(ntf)s * fam * fam)::int]
                    ELSE (%(lf)s::text[])[1 + floor(%(nlf)s * fam * fam)::int] END,
               CASE WHEN thai THEN (%(tg)s::text[])[gi] ELSE (%(lg)s::text[])[gi] END,
               '', '', '',
               CASE WHEN thai THEN (%(tfr)s::text[])[1 + floor(%(ntf)s * fam * fam)::int] ELSE '' END,
               CASE WHEN thai THEN (%(tgr)s::text[])[gi] ELSE '' END,
               '',
               %(today)s::date - 1 - floor({u("g", 3)} * 32870)::int,
               CASE WHEN thai THEN (%(tgs)s::text[])[gi] ELSE (%(lgs)s::text[])[gi] END,
               CASE WHEN {u("g", 4)} < 0.7 THEN '08' || lpad(({h("g", 5)} %% 100000000)::text, 8, '0') ELSE '' END,
               '',
               CASE WHEN {u("g", 6)} < 0.6 THEN round((40 + {u("g", 7)} * 60)::numeric, 1) END,
               CASE WHEN {u("g", 8)} < 0.03 THEN 'Iodinated contrast' ELSE '' END,
               '', '',
               now() - {u("g", 9)} * interval '1826 days',
               now() - {u("g", 9)} * interval '1826 days',
               1{extra_values}
        FROM (SELECT g, g %% 2 = 0 AS thai, {u("g", 1)} AS fam,
                     1 + floor({u("g", 2)} * CASE WHEN g %% 2 = 0 THEN %(ntg)s ELSE %(nlg)s END)::int AS gi
              FROM generate_series(1, %(count)s) g) s
        """,
        {
            "issuer": ISSUER,
            "count": count,
            "today": datetime.now(ZoneInfo(TZ)).date(),
            "tf": [t for t, _r in THAI_FAMILY],
            "tfr": [r for _t, r in THAI_FAMILY],
            "ntf": len(THAI_FAMILY),
            "lf": LATIN_FAMILY,
            "nlf": len(LATIN_FAMILY),
            "tg": thai_given,
            "tgr": [r for _g, r, _s in THAI_GIVEN],
            "tgs": [s for _g, _r, s in THAI_GIVEN],
            "ntg": len(THAI_GIVEN),
            "lg": [n for n, _s in LATIN_GIVEN],
            "lgs": [s for _n, s in LATIN_GIVEN],
            "nlg": len(LATIN_GIVEN),
        },
    )
    log(f"   {count:,} patients ({clock.perf_counter() - t0:.0f} s)")


ORDER_COLUMNS = [
    "accession_number", "requested_procedure_id", "sps_id", "study_instance_uid", "patient_id", "procedure_id",
    "room_id", "scheduled_start", "duration_minutes", "scheduled_end", "priority", "referring_physician",
    "requesting_physician", "reason", "notes", "status", "cancel_reason", "discontinue_reason", "booked_by_id",
    "booked_at", "updated_at", "arrived_at", "started_at", "completed_at", "called_back_at", "called_back_by_id",
    "version",
]  # fmt: skip


def fill_orders(conn, past: int, today: date) -> None:
    """Past orders back from yesterday at PAST_PER_DAY a day, then the 30 days of future from tomorrow."""
    extra_cols, extra_values = required_extras(conn, "scheduling_order", ORDER_COLUMNS)
    pmin, pcount = conn.execute("SELECT min(id), count(*) FROM scheduling_patient").fetchone()
    user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", [USERNAME]).fetchone()[0]
    future_per_day = -(-FUTURE_ORDERS // FUTURE_DAYS)
    params = {
        "tz": TZ,
        "opens": OPENS,
        "pmin": pmin,
        "pcount": pcount,
        "user": user_id,
        "rooms": len(ROOMS),
        "ref_latin": REFERRERS_LATIN,
        "ref_any": REFERRERS_ANY,
        "reason_latin": EXAM_REASONS_LATIN,
        "reason_any": EXAM_REASONS,
        "cancel": CANCEL_REASONS,
    }
    # One row per exam: day offset d and place j within the day give the room (j mod 20) and the slot.
    for label, count, per_day, first_day, step, prefix, uid_base in (
        ("past", past, PAST_PER_DAY, today - timedelta(days=1), -1, "H", 10**20),
        ("future", FUTURE_ORDERS, future_per_day, today + timedelta(days=1), 1, "F", 2 * 10**20),
    ):
        t0 = clock.perf_counter()
        status = (
            """CASE WHEN b < 8890 THEN 'COMPLETED' WHEN b < 9190 THEN 'NO_SHOW' WHEN b < 9990 THEN 'CANCELLED'
                     WHEN d < 3 THEN 'COMPLETED' WHEN b < 9995 THEN 'ARRIVED' ELSE 'IN_PROGRESS' END"""
            if label == "past"
            else "'SCHEDULED'"
        )
        conn.execute(
            f"""
            INSERT INTO scheduling_order ({", ".join(ORDER_COLUMNS)}{extra_cols})
            SELECT acc, acc, acc || 'S1', '2.25.' || ({uid_base}::numeric + k)::text,
                   %(pmin)s + {h("k", 1)} %% %(pcount)s,
                   r.procs[1 + {h("k", 2)} %% cardinality(r.procs)],
                   r.room_id, st, {SLOT}, st + interval '{SLOT} minutes',
                   CASE WHEN pb < 880 THEN 'ROUTINE' WHEN pb < 940 THEN 'HIGH' WHEN pb < 980 THEN 'STAT'
                        WHEN pb < 990 THEN 'MEDIUM' ELSE 'LOW' END,
                   CASE WHEN r.latin1 THEN (%(ref_latin)s::text[])[1 + {h("k", 4)} %% {len(REFERRERS_LATIN)}]
                        ELSE (%(ref_any)s::text[])[1 + {h("k", 4)} %% {len(REFERRERS_ANY)}] END,
                   '',
                   CASE WHEN r.latin1 THEN (%(reason_latin)s::text[])[1 + {h("k", 5)} %% {len(EXAM_REASONS_LATIN)}]
                        ELSE (%(reason_any)s::text[])[1 + {h("k", 5)} %% {len(EXAM_REASONS)}] END,
                   '', status,
                   CASE WHEN status = 'CANCELLED'
                        THEN (%(cancel)s::text[])[1 + {h("k", 6)} %% {len(CANCEL_REASONS)}] ELSE '' END,
                   '', %(user)s, booked,
                   CASE status WHEN 'COMPLETED' THEN fin
                               WHEN 'CANCELLED' THEN booked + (st - booked) / 2
                               WHEN 'SCHEDULED' THEN booked
                               WHEN 'NO_SHOW' THEN least(st + interval '10 hours', now())
                               WHEN 'ARRIVED' THEN arr
                               ELSE beg END,
                   CASE WHEN status IN ('ARRIVED', 'IN_PROGRESS', 'COMPLETED') THEN arr END,
                   CASE WHEN status IN ('IN_PROGRESS', 'COMPLETED') THEN beg END,
                   CASE WHEN status = 'COMPLETED' THEN fin END,
                   CASE WHEN status = 'NO_SHOW' AND d >= 3 THEN called END,
                   CASE WHEN status = 'NO_SHOW' AND d >= 3 THEN %(user)s END,
                   1{extra_values}
            FROM (
                SELECT k, d, j, st, acc, b, pb, {status} AS status,
                       least(st - interval '1 hour' - {h("k", 7)} %% (21 * 24 * 3600) * interval '1 second',
                             now() - {h("k", 7)} %% (20 * 24 * 3600) * interval '1 second')
                         - {h("k", 13)} %% 1000000 * interval '1 microsecond' AS booked,
                       arr, beg, beg + (600 + {h("k", 11)} %% 1861) * interval '1 second'
                                  + {h("k", 16)} %% 1000000 * interval '1 microsecond' AS fin,
                       least(st + interval '1 day' + {h("k", 12)} %% (24 * 60) * interval '1 minute', now())
                         AS called
                FROM (SELECT *, arr + {h("k", 10)} %% 1861 * interval '1 second'
                                 + {h("k", 15)} %% 1000000 * interval '1 microsecond' AS beg FROM (
                SELECT *, st + ({h("k", 9)} %% 1261 - 600) * interval '1 second'
                             + {h("k", 14)} %% 1000000 * interval '1 microsecond' AS arr FROM (
                    SELECT k, d, j, {h("k", 3)} %% 10000 AS b, {h("k", 8)} %% 1000 AS pb,
                           ((day + %(opens)s::time + (j / %(rooms)s) * interval '{SLOT} minutes')
                             AT TIME ZONE %(tz)s) AS st,
                           '{prefix}' || to_char(day, 'YYMMDD') || lpad(j::text, 5, '0') AS acc
                    FROM (SELECT k, k / {per_day} AS d, k %% {per_day} AS j,
                                 %(first)s::date + {step} * (k / {per_day}) AS day
                          FROM generate_series(0, %(count)s - 1) k) n
                ) s) a) t
            ) o
            JOIN bench_rooms r ON r.ri = o.j %% %(rooms)s
            """,
            {**params, "count": count, "first": first_day},
        )
        log(f"   {count:,} {label} orders ({clock.perf_counter() - t0:.0f} s)")


def fill_requested(conn) -> None:
    """The To-schedule list: REQUESTED orders the HIS sent and nobody booked yet, up to 90 days old."""
    t0 = clock.perf_counter()
    extra_cols, extra_values = required_extras(conn, "scheduling_order", ORDER_COLUMNS)
    pmin, pcount = conn.execute("SELECT min(id), count(*) FROM scheduling_patient").fetchone()
    user_id = conn.execute("SELECT id FROM auth_user WHERE username = %s", [USERNAME]).fetchone()[0]
    # Most requests are booked within days; what is left waits longer the fewer there are: the age in
    # seconds is 90 days times the cube of a uniform fraction (half the list under 11 days old).
    conn.execute(
        f"""
        INSERT INTO scheduling_order ({", ".join(ORDER_COLUMNS)}{extra_cols})
        SELECT acc, acc, acc || 'S1', '2.25.3' || lpad(k::text, 20, '0'),
               %(pmin)s + {h("k", 21)} %% %(pcount)s,
               (SELECT array_agg(id ORDER BY id) FROM scheduling_procedure)[1 + {h("k", 22)} %% %(procedures)s],
               NULL, NULL, {SLOT}, NULL,
               CASE WHEN {h("k", 23)} %% 100 < 90 THEN 'ROUTINE' WHEN {h("k", 23)} %% 100 < 97 THEN 'HIGH'
                    ELSE 'STAT' END,
               (%(ref_any)s::text[])[1 + {h("k", 24)} %% {len(REFERRERS_ANY)}], '',
               (%(reason_any)s::text[])[1 + {h("k", 25)} %% {len(EXAM_REASONS)}],
               '', 'REQUESTED', '', '', %(user)s, requested, requested, NULL, NULL, NULL, NULL, NULL,
               1{extra_values}
        FROM (SELECT k, 'R' || lpad(k::text, 8, '0') AS acc,
                     now() - power(({h("k", 26)} %% 1000000) / 1000000.0, 3) * interval '90 days' AS requested
              FROM generate_series(0, %(count)s - 1) k) o
        """,
        {
            "pmin": pmin,
            "pcount": pcount,
            "user": user_id,
            "procedures": conn.execute("SELECT count(*) FROM scheduling_procedure").fetchone()[0],
            "ref_any": REFERRERS_ANY,
            "reason_any": EXAM_REASONS,
            "count": REQUESTED_ORDERS,
        },
    )
    log(f"   {REQUESTED_ORDERS:,} requested orders ({clock.perf_counter() - t0:.0f} s)")


def fill_entries(conn) -> None:
    """The entry of every past order: exported at booking, removed (no file) and synced after the exam."""
    t0 = clock.perf_counter()
    given = [
        "order_id", "path", "content_sha256", "source_sha256", "file_size", "file_stamp", "exported_at",
        "removed_at", "synced_at", "last_error", "last_attempt_at",
    ]  # fmt: skip
    extra_cols, extra_values = required_extras(conn, "worklist_export_worklistentry", given)
    conn.execute(
        f"""
        INSERT INTO worklist_export_worklistentry ({", ".join(given)}{extra_cols})
        SELECT id, '', '', '', NULL, '', booked_at + interval '1 minute', gone, gone, '', gone{extra_values}
        FROM (SELECT id, booked_at,
                     CASE WHEN status IN ('COMPLETED', 'CANCELLED', 'NO_SHOW') THEN updated_at + interval '2 minutes'
                          ELSE least(scheduled_start + interval '2 days', now()) END AS gone
              FROM scheduling_order WHERE status NOT IN ('SCHEDULED', 'REQUESTED')) o
        """
    )
    log(f"   worklist entries ({clock.perf_counter() - t0:.0f} s)")


def ready(size: str) -> None:
    READY_DIR.mkdir(parents=True, exist_ok=True)
    (READY_DIR / f"{size}.ready").touch()


def ensure(size: str) -> str:
    """A built database of `size` for this checkout, built now when none matches: its name."""
    key = cache_key(size)
    for name in (f"{PREFIX}_{size}", f"ris_scale_{size}"):
        comment = db_comment(name) or ""
        if comment.startswith(f"ris-scale {key} "):
            log(f"{size}: reusing {name} ({comment})")
            return name
    name = f"{PREFIX}_{size}"
    log(f"{size}: no built database matches this checkout (key {key}): building {name}")
    build(size, name)
    return name


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="drop, create, migrate and fill a database")
    b.add_argument("--size", choices=SIZES, required=True)
    b.add_argument("--db", help="default ris_bench_scale_<size> (BENCH_SCALE_PREFIX)")
    b.add_argument("--ready", action="store_true", help="touch /tmp/ris-scale/<size>.ready when done")
    e = sub.add_parser("ensure", help="print the name of a built database for this checkout")
    e.add_argument("--size", choices=SIZES, required=True)
    args = parser.parse_args()
    if args.command == "build":
        db = args.db or f"{PREFIX}_{args.size}"
        seconds = build(args.size, db)
        if args.ready or db == f"ris_scale_{args.size}":
            ready(args.size)
        print(f"{db}: built in {seconds:.0f} s")
    else:
        print(ensure(args.size))


if __name__ == "__main__":
    main()
