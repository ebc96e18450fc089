"""Mark a day's scheduled exams whose time has passed as no-shows: the end-of-day run, for cron.

For a site without Celery beat (NO_SHOW_AT_END_OF_DAY schedules the same run in beat). Running the
command is the site's choice, so it does not look at that setting. Idempotent: run it twice, or after
beat did, and nothing is marked twice.
"""

from __future__ import annotations

from datetime import date

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from scheduling import services


class Command(BaseCommand):
    help = "Mark the day's scheduled exams whose time has passed as no-shows (default: today)."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--date", help="The clinic day, YYYY-MM-DD (default: today).")

    def handle(self, *args, **options) -> None:
        day = timezone.localdate()
        if options["date"]:
            try:
                day = date.fromisoformat(options["date"])
            except ValueError as exc:
                raise CommandError(f"--date must be YYYY-MM-DD, not {options['date']!r}") from exc
        marked = services.orders_mark_no_shows(day=day, user=services.no_show_user())
        for order in marked:
            self.stdout.write(f"{order.accession_number} no show")
        self.stdout.write(f"{len(marked)} marked no show on {day.isoformat()}")
