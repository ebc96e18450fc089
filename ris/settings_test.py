"""Settings for the fast test tier: SQLite, in-process tasks, a quick password hasher, a temp worklist folder."""

import hashlib
import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ["RIS_IGNORE_DOTENV"] = "1"

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
if "DATABASE_URL" not in os.environ:
    DATABASES["default"]["NAME"] = os.path.join(tempfile.gettempdir(), "ris-test.sqlite3")  # noqa: F405
    # A file, not Django's in-memory default, so that pytest's --reuse-db (on for runs by hand, see
    # pyproject.toml) keeps the migrated test database between runs; CI and `make test` pass --create-db.
    # One file per checkout. Not in mutmut's copy of the project (`make mutate` runs the tests in
    # mutants/): its parallel children would share one file; each keeps a private in-memory database.
    if BASE_DIR.name != "mutants":  # noqa: F405
        checkout = hashlib.sha256(str(BASE_DIR).encode()).hexdigest()[:8]  # noqa: F405
        DATABASES["default"]["TEST"] = {  # noqa: F405
            "NAME": os.path.join(tempfile.gettempdir(), f"ris-test-db-{checkout}.sqlite3")
        }
# Tests log in with force_login; the throttling test switches axes on with the `settings` fixture.
AXES_ENABLED = False
CELERY_BROKER_URL = ""
CELERY_TASK_ALWAYS_EAGER = True
# A subprocess server a test starts (serve_hl7, serve_dicom) is told the test's folder in WORKLIST_DIR.
WORKLIST_DIR = os.environ.get("WORKLIST_DIR") or tempfile.mkdtemp(prefix="ris-worklists-")
LANGUAGE_CODE = "en"
# WhiteNoise warns on every request when STATIC_ROOT does not exist; tests never collect static files.
STATIC_ROOT = tempfile.mkdtemp(prefix="ris-static-")
