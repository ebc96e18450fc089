"""Settings for the real-stack test tier (tests/realstack): PostgreSQL, Redis and a real Celery worker.

Run as its own pytest invocation (`make test` does): pytest -m realstack --ds=ris.settings_realstack
tests/realstack. The worker and beat subprocesses use ris.settings with the same environment, so the
values below go into os.environ, where they inherit them.
"""

import os
import tempfile

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ["RIS_IGNORE_DOTENV"] = "1"
os.environ.setdefault("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/ris")
# A spare Redis database, so the tier never mixes its queue with a developer's running stack.
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/5")
os.environ.setdefault("WORKLIST_DIR", tempfile.mkdtemp(prefix="ris-realstack-worklists-"))
os.environ.setdefault("WORKLIST_LAYOUT", "orthanc")

from .settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
LANGUAGE_CODE = "en"
# Tasks go to Redis and the worker subprocess runs them; nothing runs in the test process.
CELERY_TASK_ALWAYS_EAGER = False
