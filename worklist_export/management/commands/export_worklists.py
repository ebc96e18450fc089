"""manage.py export_worklists [--check | --every SECONDS]: make the worklist folder(s) equal to the active
orders, once or periodically."""

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from worklist_export.reconcile import (
    CHANGED,
    FAILED,
    LOCKFILE_MISSING,
    MISSING,
    ORPHAN,
    STALE,
    ReconcileReport,
    worklists_reconcile,
)
from worklist_export.writer import worklist_layout, worklist_root

VERBS = {
    False: {
        MISSING: "wrote",
        CHANGED: "rewrote",
        STALE: "removed stale",
        ORPHAN: "removed orphan",
        LOCKFILE_MISSING: "created",
    },
    True: {
        MISSING: "missing",
        CHANGED: "differs",
        STALE: "stale",
        ORPHAN: "orphan",
        LOCKFILE_MISSING: "missing",
    },
}


class Command(BaseCommand):
    help = (
        "Write missing and changed worklist files and remove stale and orphan ones, so the folder "
        "matches the active orders. With --check, only report differences (exit status 1 if any). "
        "With --every, repeat until interrupted: the periodic reconcile of a site without a Celery beat."
    )
    # Run by cron, by `make run` every minute and by support staff in a hurry: Django's system checks
    # (URLs, admin, templates) are for `manage.py check` and runserver, and cost a tenth of a run.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Change nothing; exit 1 when the folder differs."
        )
        parser.add_argument(
            "--every",
            type=int,
            metavar="SECONDS",
            help="Reconcile every SECONDS seconds until interrupted; print only rounds that changed something.",
        )
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="With --every: stop when the process that started this one ends (`make run`).",
        )

    def handle(self, *args, check: bool = False, every: int | None = None, verbosity: int = 1, **options):
        try:
            worklist_layout()
        except ValueError as exc:
            # A setting the export cannot work with (WORKLIST_LAYOUT): say which, not a traceback.
            raise CommandError(str(exc)) from exc
        if every is None:
            try:
                report = worklists_reconcile(check=check)
            except OSError as exc:
                raise CommandError(f"Cannot update {worklist_root()}: {exc}") from exc
            self._print(report, verbosity)
            if check and report.has_differences:
                raise SystemExit(1)
            return
        if check:
            raise CommandError("--every repairs the folder; it cannot be combined with --check.")
        if every < 1:
            raise CommandError(f"--every needs a number of seconds of at least 1, not {every}.")
        self._loop(every, verbosity, stop_with_parent=options.get("stop_with_parent", False))

    def _loop(self, every: int, verbosity: int, *, stop_with_parent: bool) -> None:
        # A shell's background job ignores Ctrl-C; watching the parent ends it with `make run`.
        parent = os.getppid()
        self.stdout.write(f"Reconciling {worklist_root()} every {every} s; Ctrl-C to stop.")
        try:
            while True:
                try:
                    report = worklists_reconcile()
                except (OSError, DatabaseError) as exc:
                    # A full disk, an unmounted share, a locked database: the next round tries again,
                    # which is what this loop is for; stopping would leave the folder unwatched.
                    self.stderr.write(f"Cannot update {worklist_root()}, retrying in {every} s: {exc}")
                else:
                    if report.has_differences or verbosity >= 2:
                        self._print(report, verbosity)
                deadline = time.monotonic() + every
                while (left := deadline - time.monotonic()) > 0:
                    if stop_with_parent and os.getppid() != parent:
                        return
                    time.sleep(min(left, 1.0))
        except KeyboardInterrupt:
            pass

    def _print(self, report: ReconcileReport, verbosity: int) -> None:
        verbs = VERBS[report.check]
        for line in report.lines:
            if line.kind == FAILED:
                self.stderr.write(f"failed {line.path}: {line.detail}")
            elif verbosity >= 2 or line.kind == LOCKFILE_MISSING:
                self.stdout.write(f"{verbs[line.kind]} {line.path} ({line.detail})")

        counts = report.counts()
        self.stdout.write(
            f"{worklist_root()} ({worklist_layout()} layout): "
            f"{counts[MISSING]} {verbs[MISSING]}, {counts[CHANGED]} {verbs[CHANGED]}, "
            f"{counts[STALE]} {verbs[STALE]}, {counts[ORPHAN]} {verbs[ORPHAN]}, "
            f"{counts[FAILED]} failed, {counts['unchanged']} unchanged."
        )
