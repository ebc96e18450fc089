"""The Celery app: configured from Django settings (namespace CELERY), tasks found in each app."""

import os

from celery import Celery
from django.conf import settings

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")

app = Celery("ris")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

app.conf.beat_schedule = {
    "reconcile-worklists": {
        "task": "worklist_export.tasks.reconcile_worklists",
        "schedule": float(getattr(settings, "WORKLIST_RECONCILE_SECONDS", 300)),
    },
}
