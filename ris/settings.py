"""Settings for the RIS: one module, read from the environment (django-environ), in three sections.

1. Reading the environment: the one file read besides the environment (.env), when, and which wins.
2. Development and production: DJANGO_DEBUG and every setting that changes with it. Nothing after this
   section looks at DEBUG, so what differs between a laptop and a department is all in one place.
3. The same in development and production: apps, database, login, scheduling, worklist export, Celery,
   logging, and the built-in DICOM server.

With DJANGO_DEBUG=1 (`make` sets it) and nothing else this is a laptop set-up: SQLite in var/, tasks run
in-process. A department leaves DJANGO_DEBUG off and sets DATABASE_URL (PostgreSQL), CELERY_BROKER_URL
(Redis) and the production variables listed in .env.example.
"""

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# ======================================================================================================
# Reading the environment
# ======================================================================================================
# Every setting below is read from an environment variable, its default beside it. One file fills in
# what the environment leaves unset: .env beside manage.py (BASE_DIR / ".env"), loaded here, once, at
# import, before any setting is read, and only if it exists. A variable set in the real environment
# always wins over the same line in .env (overwrite=False). No other file is read.
# RIS_IGNORE_DOTENV=1 skips .env. It only counts in the real environment, since it is read before the
# file: the test settings set it so a deployer's .env never leaks into a test run.
env = environ.Env()
env_file = BASE_DIR / ".env"
if env_file.exists() and not env.bool("RIS_IGNORE_DOTENV", default=False):
    env.read_env(str(env_file), overwrite=False)

# ======================================================================================================
# Development and production: everything DJANGO_DEBUG changes
# ======================================================================================================
# Off (the default) is production; on is the laptop set-up of `make run` and the tests. Nothing after
# this section reads DEBUG (tests/deploy/test_settings.py checks), so a new difference goes here.
DEBUG = env.bool("DJANGO_DEBUG", default=False)

if DEBUG:
    # --- Development (DJANGO_DEBUG on) ---------------------------------------------------------------
    # A public key and local host names, so `make run` needs no other variable. Static files keep
    # Django's plain storage, served from static/ as they are: no collectstatic step.
    SECRET_KEY = env("DJANGO_SECRET_KEY", default="dev-only-insecure-key-never-use-in-production")
    ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
else:
    # --- Production (DJANGO_DEBUG off) ---------------------------------------------------------------
    # No default for the key or the host names: the app refuses to start without them rather than run
    # with a guessable key.
    try:
        SECRET_KEY = env("DJANGO_SECRET_KEY")
        ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS")
    except ImproperlyConfigured as exc:
        raise ImproperlyConfigured(
            f"{exc}. Production (DJANGO_DEBUG off) needs DJANGO_SECRET_KEY and DJANGO_ALLOWED_HOSTS; "
            "see .env.example. For a local trial use `make run`."
        ) from None
    if len(SECRET_KEY) < 32:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be at least 32 characters long.")
    # env.list keeps empty items: "" and "," give [""] and ["", ""]. Without a host name every request
    # would be refused with a 400 and nothing in the log would say why.
    ALLOWED_HOSTS = [host.strip() for host in ALLOWED_HOSTS if host.strip()]
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured(
            "DJANGO_ALLOWED_HOSTS is empty. Production (DJANGO_DEBUG off) needs the host names the app "
            "is reached by, comma-separated (e.g. ris.example.org); see .env.example."
        )
    # The PACS link (ORTHANC_URL, see "PACS" below) talks to Orthanc with a user of its RegisteredUsers:
    # production refuses to follow a PACS anonymously.
    if env("ORTHANC_URL", default="") and not (
        env("ORTHANC_USERNAME", default="") and env("ORTHANC_PASSWORD", default="")
    ):
        raise ImproperlyConfigured(
            "ORTHANC_URL is set but ORTHANC_USERNAME or ORTHANC_PASSWORD is not: production talks to the "
            "PACS with credentials (a user of Orthanc's RegisteredUsers); see .env.example."
        )
    # Hashed, pre-compressed files served by WhiteNoise with far-future caching; needs `collectstatic`
    # (the Docker image runs it at build time).
    STORAGES = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "ris.storage.StaticFilesStorage"},
    }

# --- HTTPS and the reverse proxy: on in production, off in development --------------------------------
# Each default follows DJANGO_DEBUG, and each has its own variable to override it either way.
# In production the app sits behind a TLS-terminating reverse proxy (nginx, Traefik, a load balancer)
# that sets X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-For. Trust those headers only behind
# such a proxy: a client talking to gunicorn directly could otherwise claim to be on HTTPS, on another
# host or at another address.
# Trust X-Forwarded-Proto: a request that reached the proxy over HTTPS counts as secure.
BEHIND_PROXY = env.bool("DJANGO_SECURE_PROXY_SSL_HEADER", default=not DEBUG)
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# X-Forwarded-For is not trusted by default, even here: see RIS_PROXY_COUNT under "Login throttling".
# Trust X-Forwarded-Host: redirects and the CSRF origin check use the host the client asked the proxy for.
USE_X_FORWARDED_HOST = env.bool("DJANGO_USE_X_FORWARDED_HOST", default=not DEBUG)
# Redirect http:// to https://, except container and load-balancer health probes, which speak plain
# HTTP to the app itself.
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
# The session and CSRF cookies are sent over HTTPS only.
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
# HSTS tells browsers to refuse plain HTTP for this host for that many seconds, and it cannot be taken
# back before it expires. The default is one hour so a misconfigured first deployment recovers quickly;
# raise it (31536000, a year) once HTTPS is known to work. 0 turns HSTS off.
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 3600)
# HSTS covers every subdomain too.
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
# "preload" asks browsers to ship the host in their built-in HSTS list, which takes months to undo; the
# list accepts only a max-age of a year or more with subdomains. So on by default only then, and
# asked for with less the app refuses to start.
HSTS_PRELOADABLE = SECURE_HSTS_SECONDS >= 31536000 and SECURE_HSTS_INCLUDE_SUBDOMAINS
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=HSTS_PRELOADABLE)
if SECURE_HSTS_PRELOAD and not HSTS_PRELOADABLE:
    raise ImproperlyConfigured(
        "DJANGO_SECURE_HSTS_PRELOAD needs DJANGO_SECURE_HSTS_SECONDS of at least 31536000 (a year) and "
        "DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS on; unset it, or raise the max-age once HTTPS works."
    )
# Without preload `check --deploy` warns (security.W021) that the host cannot join the preload list:
# that is the point until the max-age is a year.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD or not SECURE_HSTS_SECONDS else ["security.W021"]
# The order list's index carries procedure_id for PostgreSQL's index-only scans (scheduling migration
# 0008); SQLite, the embedded default, builds it without that column and says so (models.W040).
SILENCED_SYSTEM_CHECKS += ["models.W040"]

# ======================================================================================================
# The same in development and production
# ======================================================================================================

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    # The project's own signal receivers (ris/apps.py): the idle logout's clock starts at login.
    "ris",
    "crispy_bootstrap5",
    "axes",
    "simple_history",
    "scheduling",
    "worklist_export",
    "access_audit",
    # The built-in DICOM server; its settings are in the last section.
    "mwl_server",
    # The order API (REST, OpenAPI); its settings are in the section "Order API".
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
    # The HL7 v2 link with the HIS (`manage.py serve_hl7`, the outbox); settings in the section "HL7".
    "hl7_link",
    # The PACS link with Orthanc (studies close exams, images with CT windows); section "PACS".
    "pacs_link",
    # The department's reports with charts (volumes, room use, waiting, turnaround): admin, department lead.
    "reports",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Content-Security-Policy and Permissions-Policy ("Response headers" below).
    "ris.middleware.SecurityHeadersMiddleware",
    # No copy of a logged-in user's page in the browser's cache (shared front-desk PCs).
    "ris.middleware.NoStoreForUsersMiddleware",
    # Ends a session idle for RIS_IDLE_LOGOUT_MINUTES, before the login check below sends it to log in.
    "ris.idle.IdleLogoutMiddleware",
    # Every page is behind login; the few public ones are listed with @login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    # Records who made each change to a patient or an order (django-simple-history).
    "simple_history.middleware.HistoryRequestMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its lockout response.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "ris.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "scheduling.roles.roles_context",
                "scheduling.context_processors.to_schedule",
                "pacs_link.context_processors.unmatched_studies",
                "ris.idle.idle_logout",
            ],
            # Every template's |date shows the year in B.E. under Thai (ris/dates.py).
            "builtins": ["ris.templatetags.buddhist_era"],
        },
    },
]

WSGI_APPLICATION = "ris.wsgi.application"

# Origins allowed to POST forms besides the app's own, with scheme: needed when the proxy's public
# origin differs from the Host the app sees (a non-standard port, say).
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'ris.sqlite3'}"),
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Bookings lock rows; SQLite serialises writers. Wait for the lock instead of failing at once,
    # and take the write lock at BEGIN so two bookings never interleave their overlap checks.
    DATABASES["default"].setdefault("OPTIONS", {}).update({"timeout": 20, "transaction_mode": "IMMEDIATE"})
elif DATABASES["default"]["ENGINE"].startswith("django.db.backends.postgresql"):
    # PostgreSQL compiles a plan it estimates as costly (jit_above_cost); for the front desk's short
    # queries at two million orders the compiling took longer than the query (Worklist problems page:
    # 193 ms with JIT, 136 ms without). A DATABASE_URL that sets its own options keeps them.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("options", "-c jit=off")
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# Reused for a minute: opening a PostgreSQL connection per request cost as much server CPU as the
# booking itself (bench: 37.6 -> 61.1 API bookings/s on 2 cores). CONN_HEALTH_CHECKS drops a connection
# that died (a restarted database) before a request uses it.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- Login throttling (django-axes) -------------------------------------------------------------
# After AXES_FAILURE_LIMIT wrong passwords for one username from one address, that pair is refused,
# even with the right password, for AXES_COOLOFF_MINUTES. Keyed on username and address together so
# a stranger cannot lock a clerk out from elsewhere, and one address cannot guess many passwords for
# one user. `manage.py axes_reset_username <name>` lifts a lockout early.
# Behind the reverse proxy REMOTE_ADDR is the proxy's for every client, which would make the key the
# username alone: anyone typing wrong passwords for a clerk's username would lock that clerk out at
# every desk. So the address is the one the proxy appends to X-Forwarded-For, with RIS_PROXY_COUNT
# proxies in front of gunicorn (below; unless set, 0: REMOTE_ADDR). ris/proxy.py holds the rule; axes'
# AXES_IPWARE_* settings would need django-ipware, which is not installed, and would do nothing without it.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
# Guessing spread over many addresses, or one address trying many usernames, is limited too, with
# higher limits (whoever reaches them locks out more than themselves); ris/throttle.py counts each.
AXES_LOCKOUT_PARAMETERS = "ris.throttle.lockout_parameters"
AXES_HANDLER = "ris.throttle.LoginThrottleHandler"
RIS_USERNAME_FAILURE_LIMIT = env.int("RIS_USERNAME_FAILURE_LIMIT", default=20)
RIS_ADDRESS_FAILURE_LIMIT = env.int("RIS_ADDRESS_FAILURE_LIMIT", default=30)
# How many reverse proxies in front of gunicorn append the caller's address to X-Forwarded-For. 0 (the
# default) ignores the header and keys on the connection's address: a client reaching gunicorn
# directly could otherwise name a new address for every guess, or a clerk's address to lock them out.
# Set it only behind the proxy (1 for the one of docker-compose.yml), and only if clients cannot reach
# gunicorn past it. Left at 0 behind a proxy, every client has the proxy's address, so the address
# limit counts every desk together: RIS_ADDRESS_FAILURE_LIMIT wrong passwords anywhere lock out everyone.
RIS_PROXY_COUNT = env.int("RIS_PROXY_COUNT", default=0)
# Password-reset requests (the anonymous form mails a link) per client address per hour.
RIS_PASSWORD_RESET_LIMIT = env.int("RIS_PASSWORD_RESET_LIMIT", default=5)
AXES_RESET_ON_SUCCESS = True
# The clerk's language and the site's look rather than axes' one-line English text.
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_CLIENT_IP_CALLABLE = "ris.proxy.client_ip"

# The admin shows each patient's and order's history, but never restores an old version: that would
# write the row directly, past the booking rules and the worklist export.
SIMPLE_HISTORY_REVERT_DISABLED = True

# --- Sessions on shared front-desk PCs --------------------------------------------------------------
# The login ends with the browser, after RIS_IDLE_LOGOUT_MINUTES without activity (ris/idle.py says
# what counts; 0 turns it off), and in any case after a 12-hour shift.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = 12 * 3600
# How far ahead an exam may be booked (scheduling.rules.within_horizon).
RIS_BOOKING_HORIZON_DAYS = env.int("RIS_BOOKING_HORIZON_DAYS", default=730)
RIS_IDLE_LOGOUT_MINUTES = env.int("RIS_IDLE_LOGOUT_MINUTES", default=30)

# --- Response headers (ris/middleware.py) -----------------------------------------------------------
# Scripts only from our own static files: no inline <script>, no onclick=, no eval. Style sheets
# likewise, but style="" attributes are allowed (style-src-attr): the day board places each block with
# style="top: ...px; height: ...px" and attributes cannot run script. Bootstrap's icons are data: SVGs.
RIS_CSP = {
    "default-src": ["'self'"],
    "script-src": ["'self'"],
    "style-src": ["'self'"],
    "style-src-attr": ["'unsafe-inline'"],
    "img-src": ["'self'", "data:"],
    "font-src": ["'self'"],
    "connect-src": ["'self'"],
    "object-src": ["'none'"],
    "base-uri": ["'none'"],
    "form-action": ["'self'"],
    "frame-ancestors": ["'none'"],
}
# Browser features no page of the RIS uses, refused to the page and to anything it could embed.
RIS_PERMISSIONS_POLICY_DENY = [
    "camera",
    "microphone",
    "geolocation",
    "payment",
    "usb",
    "serial",
    "hid",
    "midi",
    "display-capture",
]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "scheduling:schedule"
LOGOUT_REDIRECT_URL = "login"

# Internationalisation: the clinic's time zone is a setting; every datetime is aware.
LANGUAGE_CODE = env("DJANGO_LANGUAGE_CODE", default="en")
LANGUAGES = [("en", "English"), ("th", "ไทย")]
LOCALE_PATHS = [BASE_DIR / "locale"]
FORMAT_MODULE_PATH = ["ris.formats"]
TIME_ZONE = env("TIME_ZONE", default="Asia/Bangkok")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Production serves them hashed and compressed (STORAGES, in the production section above).
STATIC_ROOT = env("DJANGO_STATIC_ROOT", default=str(BASE_DIR / "staticfiles"))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# --- Scheduling -------------------------------------------------------------------------------
# Accession numbers are <prefix><YYMMDD><5-digit daily sequence>; the prefix keeps them unique
# across sites that share a PACS. At most 3 characters so the SPS ID (<accession>S1) fits in SH (16).
RIS_ACCESSION_PREFIX = env("RIS_ACCESSION_PREFIX", default="")
# The accession is also the worklist file's name and a DICOM SH: Thai letters failed every export,
# a fourth character left no room for the sequence (every booking refused), "../" escaped the folder.
if RIS_ACCESSION_PREFIX and not (
    len(RIS_ACCESSION_PREFIX) <= 3
    and RIS_ACCESSION_PREFIX.isascii()
    and RIS_ACCESSION_PREFIX.isalnum()
    and RIS_ACCESSION_PREFIX == RIS_ACCESSION_PREFIX.upper()
):
    raise ImproperlyConfigured(
        f"RIS_ACCESSION_PREFIX={RIS_ACCESSION_PREFIX!r} is not allowed: use at most 3 characters, "
        "capital letters A-Z and digits 0-9 only (or leave it empty)."
    )
# Organisation root for StudyInstanceUIDs (e.g. "1.2.826.0.1.3680043.10.1234"); empty gives 2.25.<uuid>.
RIS_UID_ROOT = env("RIS_UID_ROOT", default="")
RIS_ISSUER_OF_PATIENT_ID = env("RIS_ISSUER_OF_PATIENT_ID", default="RIS")
# Granularity of the free slots offered at booking, in minutes.
RIS_SLOT_MINUTES = env.int("RIS_SLOT_MINUTES", default=15)

# --- Worklist export ----------------------------------------------------------------------------
WORKLIST_DIR = env("WORKLIST_DIR", default=str(VAR_DIR / "worklists"))
# "orthanc": one flat folder; "wlmscpfs": <WORKLIST_DIR>/<CALLED AE>/*.wl plus lockfile.
WORKLIST_LAYOUT = env("WORKLIST_LAYOUT", default="orthanc")
# The AE title modalities call the worklist server by (wlmscpfs layout); a room may override it.
WORKLIST_CALLED_AE = env("WORKLIST_CALLED_AE", default="WORKLIST")
# Reconciliation keeps orders whose start lies within this many days back and ahead.
WORKLIST_WINDOW_DAYS_BACK = env.int("WORKLIST_WINDOW_DAYS_BACK", default=1)
WORKLIST_WINDOW_DAYS_AHEAD = env.int("WORKLIST_WINDOW_DAYS_AHEAD", default=30)
# The Worklist problems page lists an order whose change has not reached the folder after this long.
WORKLIST_PENDING_GRACE_SECONDS = env.int("WORKLIST_PENDING_GRACE_SECONDS", default=120)

# --- Access log (access_audit) ------------------------------------------------------------------
# Who read which patient's data is kept this many days, then purged daily (beat below). 400: a year and
# a month, so the yearly review and a complaint about "who saw my record last year" still find every
# read (well past the 90 days of traffic data the Thai Computer Crime Act asks for); not for ever, since
# the log is personal data too (PDPA: kept no longer than its purpose needs).
ACCESS_AUDIT_RETENTION_DAYS = env.int("ACCESS_AUDIT_RETENTION_DAYS", default=400)

# --- Celery -----------------------------------------------------------------------------------
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_RESULT_BACKEND = env("CELERY_RESULT_BACKEND", default=CELERY_BROKER_URL or None)
# No broker configured (the embedded default): tasks run in-process, right after commit.
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_ACKS_LATE = True
# acks_late alone does not bring back a task whose pool process died (SIGKILL, the OOM killer): Celery
# acks it as failed with WorkerLostError, and its file waits for the next reconcile. Rejected instead,
# the message goes back to the queue and another process runs it at once. The tasks are idempotent, so
# running one twice is harmless.
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A web request queues the worklist task after commit. With the broker down the publish must give up
# quickly (about a second) instead of holding the clerk's page: the order is saved, shown as "export
# pending", and the reconcile below exports it. Worker connections keep retrying as before.
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=2.0)
# When the whole worker dies, its unacknowledged tasks stay in Redis and are handed out again once they
# are older than the visibility timeout. It must exceed the longest task and the longest retry countdown
# (retry_backoff_max, 5 minutes), or a task still running or waiting is delivered a second time. Workers
# look for such tasks every tenth of it, at most every 10 s (kombu's own default is every 100 s). A worker
# killed while it looks holds the lock of that search until it expires: at most the timeout itself.
broker_visibility_timeout = env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600)
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "visibility_timeout": broker_visibility_timeout,
    "unacked_restore_interval": max(1, min(10, broker_visibility_timeout // 10)),
    "unacked_restore_throttle": 1,
    "unacked_mutex_expire": min(300, broker_visibility_timeout),
}
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.5,
}
# Results are only kept for inspection; nothing waits on them.
CELERY_RESULT_EXPIRES = 24 * 3600
# Every WORKLIST_RECONCILE_SECONDS, beat queues a sweep that rewrites missing or stale .wl files and
# removes orphans, so a lost task or a file deleted by hand is repaired. Run exactly one beat.
WORKLIST_RECONCILE_SECONDS = env.int("WORKLIST_RECONCILE_SECONDS", default=300)
CELERY_BEAT_SCHEDULE = {
    "reconcile-worklists": {
        "task": "worklist_export.tasks.reconcile_worklists",
        "schedule": float(WORKLIST_RECONCILE_SECONDS),
    },
    "purge-access-log": {"task": "access_audit.tasks.purge_access_log", "schedule": 24 * 3600.0},
    "purge-idempotency-keys": {"task": "api.tasks.purge_idempotency_keys", "schedule": 3600.0},
}

# --- No-shows (scheduling: `manage.py mark_no_shows`) ---------------------------------------------
# At NO_SHOW_END_OF_DAY_TIME (clinic time, HH:MM), beat marks a no-show every exam of the day still
# scheduled whose time has passed, so the "To call back" list is complete by the next morning. Off by
# default: a site whose technologists do not click Arrive for every patient would lose its exams.
NO_SHOW_AT_END_OF_DAY = env.bool("NO_SHOW_AT_END_OF_DAY", default=False)
NO_SHOW_END_OF_DAY_TIME = env("NO_SHOW_END_OF_DAY_TIME", default="20:00")
_no_show_at = NO_SHOW_END_OF_DAY_TIME.split(":")
if not (
    len(_no_show_at) == 2
    and all(part.isdigit() for part in _no_show_at)
    and int(_no_show_at[0]) < 24
    and int(_no_show_at[1]) < 60
):
    raise ImproperlyConfigured(f"NO_SHOW_END_OF_DAY_TIME must be HH:MM, not {NO_SHOW_END_OF_DAY_TIME!r}")
if NO_SHOW_AT_END_OF_DAY:
    CELERY_BEAT_SCHEDULE["mark-no-shows"] = {
        "task": "scheduling.tasks.mark_no_shows",
        # In CELERY_TIMEZONE, the clinic's.
        "schedule": crontab(hour=int(_no_show_at[0]), minute=int(_no_show_at[1])),
    }

# Everything to stdout: the container runtime (or systemd) collects and rotates it.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "plain"}
    },
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}

# --- Built-in DICOM server (mwl_server: `manage.py serve_dicom`) ----------------------------------
# One listener answers Modality Worklist C-FIND from the database, takes MPPS (N-CREATE / N-SET) from
# the scanners and answers C-ECHO.
DICOM_SERVER_AE = env("DICOM_SERVER_AE", default="RISMWL")
DICOM_SERVER_PORT = env.int("DICOM_SERVER_PORT", default=11112)
# DICOM cannot be bound to one interface per peer; firewall the port to the modality network.
DICOM_SERVER_BIND = env("DICOM_SERVER_BIND", default="0.0.0.0")
# Calling AE titles allowed besides every room's station AE title. Anyone else is rejected at
# association unless DICOM_SERVER_ALLOW_ANY_CALLER (a trial set-up only: the worklist holds patient data).
DICOM_SERVER_KNOWN_CALLERS = env.list("DICOM_SERVER_KNOWN_CALLERS", default=[])
DICOM_SERVER_ALLOW_ANY_CALLER = env.bool("DICOM_SERVER_ALLOW_ANY_CALLER", default=False)
# Other AE titles that may send MPPS for a room's orders besides its station AE title: "CT01=CT01WS;MR01=MRC".
DICOM_SERVER_ROOM_CALLERS = env("DICOM_SERVER_ROOM_CALLERS", default="")
# Optional allow-list: an AE title listed here is rejected from any other address ("CT01=10.1.2.5,10.1.3.0/28").
DICOM_SERVER_ALLOWED_ADDRESSES = env("DICOM_SERVER_ALLOWED_ADDRESSES", default="")
# Idle or slow connections must not lock the scanners out: seconds from connecting to a whole association
# request, connections per address, connections still waiting for one, and associations at once.
DICOM_SERVER_REQUEST_TIMEOUT = env.float("DICOM_SERVER_REQUEST_TIMEOUT", default=5)
DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS = env.int("DICOM_SERVER_MAX_CONNECTIONS_PER_ADDRESS", default=10)
DICOM_SERVER_MAX_PENDING = env.int("DICOM_SERVER_MAX_PENDING", default=100)
DICOM_SERVER_MAX_ASSOCIATIONS = env.int("DICOM_SERVER_MAX_ASSOCIATIONS", default=50)
# Seconds of processor time one C-FIND may take before it is refused (A700) rather than keep a thread busy.
DICOM_SERVER_FIND_TIME_LIMIT = env.float("DICOM_SERVER_FIND_TIME_LIMIT", default=30)
# Items one C-FIND may return: past it the answers sent stand and the query ends in A700 (Refused: Out
# of Resources), so the modality knows its list is incomplete. Above a 30-day window of a busy hospital.
DICOM_SERVER_MAX_ANSWERS = env.int("DICOM_SERVER_MAX_ANSWERS", default=25000)
# Worklist items the server keeps decoded between queries (about 14 kB each; 0 keeps none).
DICOM_SERVER_ITEM_CACHE = env.int("DICOM_SERVER_ITEM_CACHE", default=25000)
# DICOM over TLS (PS3.15 B.1), off by default: the server's certificate and key (PEM); with a CA file the
# modalities must present a certificate it signed.
DICOM_SERVER_TLS_CERT = env("DICOM_SERVER_TLS_CERT", default="")
DICOM_SERVER_TLS_KEY = env("DICOM_SERVER_TLS_KEY", default="")
DICOM_SERVER_TLS_CA = env("DICOM_SERVER_TLS_CA", default="")
# "Query as a modality" (/mwl/query/): the worklist servers the page can ask, and how long it waits.
MWL_QUERY_TIMEOUT = env.int("MWL_QUERY_TIMEOUT", default=5)
MWL_QUERY_TARGETS = {
    "builtin": {
        "label": gettext_lazy("Built-in server (serve_dicom)"),
        "host": env("MWL_QUERY_BUILTIN_HOST", default="127.0.0.1"),
        "port": DICOM_SERVER_PORT,
        "called_ae": DICOM_SERVER_AE,
    },
    "orthanc": {
        "label": "Orthanc",
        "host": env("MWL_QUERY_ORTHANC_HOST", default="127.0.0.1"),
        "port": env.int("MWL_QUERY_ORTHANC_PORT", default=4242),
        "called_ae": env("MWL_QUERY_ORTHANC_AE", default="ORTHANC"),
    },
    "wlmscpfs": {
        "label": "DCMTK wlmscpfs",
        "host": env("MWL_QUERY_WLMSCPFS_HOST", default="127.0.0.1"),
        "port": env.int("MWL_QUERY_WLMSCPFS_PORT", default=11113),
        "called_ae": env("MWL_QUERY_WLMSCPFS_AE", default=WORKLIST_CALLED_AE),
        # A room with its own "worklist server called AE title" is asked by that title instead.
        "room_called_ae": True,
    },
}


# --- Order API (api/) ---------------------------------------------------------------------------
# Clients are records an admin manages (API clients in the admin): each has a token, scopes and
# optionally an address allow-list. Staff logged in to the front desk may use it from the browser too.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "api.authentication.ClientTokenAuthentication",
        "api.authentication.StaffSessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.ClientRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.problems.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
# Requests per client (or logged-in user) unless the client has its own rate. Counted in the cache:
# set RIS_CACHE_URL (redis://...) when gunicorn runs several workers, so they share one count.
API_CLIENT_RATE = env("API_CLIENT_RATE", default="50000/hour")
# How long a retried POST with the same Idempotency-Key gets the first answer again.
API_IDEMPOTENCY_HOURS = env.int("API_IDEMPOTENCY_HOURS", default=48)
SPECTACULAR_SETTINGS = {
    "TITLE": "RIS order API",
    "DESCRIPTION": (
        "Patients, the catalog, free slots, orders and their worklist items, and an event feed, for the "
        "systems around a radiology department. Authenticate with `Authorization: Bearer <token>` (an API "
        "client's token, from the admin). Errors are RFC 9457 problem documents in the language of "
        "Accept-Language (th, en)."
    ),
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "AUTHENTICATION_WHITELIST": ["api.authentication.ClientTokenAuthentication"],
    # The schema's enums named for what they are, so a later resource's "status" or "kind" cannot clash.
    "ENUM_NAME_OVERRIDES": {
        "OrderStatus": "scheduling.models.OrderStatus",
        "OrderEventKind": "scheduling.models.OrderEventKind",
        "Priority": "scheduling.models.Priority",
        "Modality": "scheduling.models.Modality",
        "Sex": "scheduling.models.Sex",
        "PregnancyStatus": "scheduling.models.PregnancyStatus",
    },
}
_cache_url = env("RIS_CACHE_URL", default="")
CACHES = {
    "default": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": _cache_url}
        if _cache_url
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    )
}

# --- HL7 (hl7_link: `manage.py serve_hl7`, the outbox to the HIS) ----------------------------------
# The MLLP listener for ADT, ORM^O01 and OMG^O19 from the hospital information system.
HL7_PORT = env.int("HL7_PORT", default=2575)
# Bind to the interface the HIS reaches; each sender may also be held to its addresses (admin).
HL7_BIND = env("HL7_BIND", default="0.0.0.0")
# Sending applications (MSH-3) accepted besides the senders configured in the admin (Interface > HL7
# senders). A name listed here gets its sender record, with the defaults below, at its first message.
HL7_KNOWN_SENDERS = env.list("HL7_KNOWN_SENDERS", default=[])
# How a listed sender's bytes are read when MSH-18 is empty: "" (ASCII), "UNICODE UTF-8", "8859/1",
# "TIS-620" (Thai systems often send TIS-620 without saying so).
HL7_DEFAULT_CHARSET = env("HL7_DEFAULT_CHARSET", default="")
# Our own MSH-3 and MSH-4 in ACKs and in the messages we send.
HL7_APPLICATION = env("HL7_APPLICATION", default="RIS")
HL7_FACILITY = env("HL7_FACILITY", default="RADIOLOGY")
# Seconds a connection may stay silent, and the largest frame taken (a bigger one is refused with AR).
HL7_IDLE_TIMEOUT = env.float("HL7_IDLE_TIMEOUT", default=300)
HL7_MAX_MESSAGE_BYTES = env.int("HL7_MAX_MESSAGE_BYTES", default=1_048_576)
# Outbound: seconds to wait for a receiver's connection and ACK, and the longest pause between retries
# (the backoff doubles from 1 s up to this).
HL7_SEND_TIMEOUT = env.float("HL7_SEND_TIMEOUT", default=10)
HL7_RETRY_MAX_SECONDS = env.int("HL7_RETRY_MAX_SECONDS", default=300)
CELERY_BEAT_SCHEDULE["hl7-outbox"] = {"task": "hl7_link.tasks.outbox_run", "schedule": 30.0}

# --- PACS (pacs_link: Orthanc's /changes feed, the images on the order page) ------------------------
# Orthanc's REST API (e.g. http://orthanc:8042). Empty: no PACS link; the order pages show no images.
ORTHANC_URL = env("ORTHANC_URL", default="").rstrip("/")
# HTTP basic credentials of a user in Orthanc's RegisteredUsers; from the environment, never in a file
# of the project. A production RIS with ORTHANC_URL refuses to start without them (checked in the
# Development and production section above).
ORTHANC_USERNAME = env("ORTHANC_USERNAME", default="")
ORTHANC_PASSWORD = env("ORTHANC_PASSWORD", default="")
# Seconds to wait for Orthanc's answer, and between two polls of its /changes feed (the beat task in
# production, `manage.py follow_pacs --every` in `make run`).
ORTHANC_TIMEOUT = env.float("ORTHANC_TIMEOUT", default=10)
PACS_POLL_SECONDS = env.float("PACS_POLL_SECONDS", default=5)
# Rendered images (PNG/JPEG of an instance with a window) are kept here, keyed by instance and window.
PACS_RENDER_CACHE_DIR = env.path("PACS_RENDER_CACHE_DIR", default=BASE_DIR / "var" / "render-cache")
PACS_RENDER_CACHE_MB = env.int("PACS_RENDER_CACHE_MB", default=512)
if ORTHANC_URL:
    CELERY_BEAT_SCHEDULE["pacs-follow"] = {"task": "pacs_link.tasks.follow", "schedule": PACS_POLL_SECONDS}
