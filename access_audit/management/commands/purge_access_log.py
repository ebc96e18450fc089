"""manage.py purge_access_log [--days N]: delete the access log records older than the retention.

Celery beat runs the same purge daily; without a beat (`make run`, no broker) run this from cron.
"""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from access_audit.services import access_log_purge


class Command(BaseCommand):
    help = "Delete access log records older than ACCESS_AUDIT_RETENTION_DAYS (or --days)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--days",
            type=int,
            default=None,
            help=f"keep this many days instead of ACCESS_AUDIT_RETENTION_DAYS ({settings.ACCESS_AUDIT_RETENTION_DAYS})",
        )

    def handle(self, *args, days: int | None, **options):
        try:
            deleted = access_log_purge(retention_days=days)
        except ValueError as exc:
            raise CommandError(str(exc)) from None
        kept = settings.ACCESS_AUDIT_RETENTION_DAYS if days is None else days
        self.stdout.write(f"{deleted} access log record(s) older than {kept} days deleted.")
