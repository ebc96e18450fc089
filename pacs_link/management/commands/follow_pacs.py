"""manage.py follow_pacs [--every SECONDS] [--stop-with-parent]: apply the studies that became stable in
the PACS (Orthanc's /changes feed), once or periodically (the follower of a site without a Celery beat:
`make run`)."""

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from pacs_link.follow import follow_once
from pacs_link.orthanc import PacsUnavailable
from pacs_link.tasks import follower_lock


class Command(BaseCommand):
    help = (
        "Record and match the studies that became stable in the PACS since the last run, completing "
        "the orders of rooms that complete on study arrival. With --every, repeat until interrupted: "
        "the follower of a site without a Celery beat."
    )
    # Run every few seconds by `make run`: the system checks are for `manage.py check` and runserver.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=float,
            metavar="SECONDS",
            help="Follow every SECONDS seconds until interrupted; print only rounds that applied a study.",
        )
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="With --every: stop when the process that started this one ends (`make run`).",
        )

    def handle(self, *args, every: float | None = None, verbosity: int = 1, **options):
        if every is None:
            try:
                applied = self._round()
            except PacsUnavailable as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(f"{applied} studies applied.")
            return
        if every <= 0:
            raise CommandError(f"--every needs a positive number of seconds, not {every}.")
        self._loop(every, verbosity, stop_with_parent=options.get("stop_with_parent", False))

    def _round(self) -> int:
        with follower_lock() as held:
            if not held:
                self.stderr.write("Another follower is reading the PACS feed; this round skipped.")
                return 0
            return follow_once()

    def _loop(self, every: float, verbosity: int, *, stop_with_parent: bool) -> None:
        # A shell's background job ignores Ctrl-C; watching the parent ends it with `make run`.
        parent = os.getppid()
        self.stdout.write(f"Following the PACS every {every:g} s; Ctrl-C to stop.")
        failing = False
        try:
            while True:
                try:
                    applied = self._round()
                except (PacsUnavailable, DatabaseError) as exc:
                    # A PACS or database restarting: the next round tries again from the cursor, which
                    # is what this loop is for. Said once per outage, not every few seconds.
                    if not failing or verbosity >= 2:
                        self.stderr.write(f"Cannot follow the PACS, retrying every {every:g} s: {exc}")
                    failing = True
                else:
                    if failing:
                        self.stdout.write("The PACS answers again.")
                    failing = False
                    if applied or verbosity >= 2:
                        self.stdout.write(f"{applied} studies applied.")
                deadline = time.monotonic() + every
                while (left := deadline - time.monotonic()) > 0:
                    if stop_with_parent and os.getppid() != parent:
                        return
                    time.sleep(min(left, 1.0))
        except KeyboardInterrupt:
            pass
