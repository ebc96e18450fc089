"""Retention: records older than ACCESS_AUDIT_RETENTION_DAYS are purged, daily by beat or by command."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.utils import timezone

from access_audit import services
from access_audit.models import AccessAction, AccessEvent
from access_audit.tasks import purge_access_log

pytestmark = pytest.mark.django_db


@pytest.fixture
def aged(user, patient):
    """aged(days) -> a read made `days` days ago."""

    def make(days: float) -> AccessEvent:
        return AccessEvent.objects.create(
            action=AccessAction.PATIENT_VIEWED,
            user=user,
            patient=patient,
            at=timezone.now() - timedelta(days=days),
        )

    return make


def remaining() -> list[int]:
    return sorted(AccessEvent.objects.values_list("pk", flat=True))


def test_the_purge_removes_only_records_older_than_the_retention(aged, settings):
    settings.ACCESS_AUDIT_RETENTION_DAYS = 30
    old, older = aged(31), aged(400)
    kept = [aged(29.9), aged(0)]

    assert services.access_log_purge() == 2

    assert remaining() == sorted(e.pk for e in kept)
    assert not AccessEvent.objects.filter(pk__in=[old.pk, older.pk]).exists()


def test_the_purge_works_through_a_backlog_in_batches(aged, settings, monkeypatch):
    monkeypatch.setattr(services, "PURGE_BATCH", 2)
    settings.ACCESS_AUDIT_RETENTION_DAYS = 10
    for _ in range(5):
        aged(11)
    kept = aged(1)

    assert services.access_log_purge() == 5
    assert remaining() == [kept.pk]


def test_the_purge_refuses_a_retention_that_would_empty_the_log(aged):
    event = aged(5)

    with pytest.raises(ValueError):
        services.access_log_purge(retention_days=0)
    assert remaining() == [event.pk]


def test_the_default_retention_is_400_days():
    assert settings.ACCESS_AUDIT_RETENTION_DAYS == 400


def test_the_command_purges_with_the_setting_or_its_days(aged, settings, capsys):
    settings.ACCESS_AUDIT_RETENTION_DAYS = 100
    aged(200)
    middle = aged(50)
    recent = aged(1)

    call_command("purge_access_log")
    assert remaining() == sorted([middle.pk, recent.pk])
    assert "1 access log record(s) older than 100 days deleted." in capsys.readouterr().out

    call_command("purge_access_log", "--days", "10")
    assert remaining() == [recent.pk]

    with pytest.raises(CommandError):
        call_command("purge_access_log", "--days", "0")


def test_the_beat_runs_the_purge_task_daily(aged, settings):
    entry = next(e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"].endswith("purge_access_log"))
    assert entry["task"] == f"{purge_access_log.__module__}.{purge_access_log.__name__}"
    assert entry["schedule"] == 24 * 3600

    settings.ACCESS_AUDIT_RETENTION_DAYS = 7
    aged(8)
    kept = aged(6)
    assert purge_access_log.delay().get() == 1
    assert remaining() == [kept.pk]
