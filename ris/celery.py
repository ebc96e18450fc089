"""The Celery app: configured from Django settings (namespace CELERY), tasks found in each app.

Broker, result backend, serialisation (JSON only), time limits and the beat schedule (the worklist
reconcile) are all settings; see the Celery section of ris/settings.py.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ris.settings")

app = Celery("ris")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
