"""/healthz: can this instance do its job? For container health checks and load balancers.

Reports each dependency as "ok" or "error" (the broker also as "eager" when tasks run in-process) and
answers 200 only when all are usable, 503 otherwise. It never shows exception text, hosts or paths:
the page needs no login, so the details go to the log instead.
"""

import logging
import tempfile

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

logger = logging.getLogger(__name__)

BROKER_TIMEOUT_SECONDS = 2


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def _broker() -> str:
    if not settings.CELERY_BROKER_URL:
        return "eager"
    from ris.celery import app

    with app.connection_for_write() as conn:
        # One attempt with a short timeout: a probe must answer before the prober gives up on it.
        conn.ensure_connection(max_retries=1, interval_start=0, timeout=BROKER_TIMEOUT_SECONDS)
    return "ok"


def _worklist_dir() -> str:
    # Not *.wl, so no worklist server ever reads it; deleted on close.
    with tempfile.NamedTemporaryFile(dir=settings.WORKLIST_DIR, prefix=".healthz-", suffix=".tmp") as f:
        f.write(b"ok")
        f.flush()
    return "ok"


CHECKS = {"database": _database, "broker": _broker, "worklist_dir": _worklist_dir}


@login_not_required
@require_GET
@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    results = {}
    for name, check in CHECKS.items():
        try:
            results[name] = check()
        except Exception:
            logger.warning("health check %s failed", name, exc_info=True)
            results[name] = "error"
    healthy = "error" not in results.values()
    return JsonResponse(
        {"status": "ok" if healthy else "error", "checks": results}, status=200 if healthy else 503
    )
