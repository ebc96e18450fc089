"""manage.py export_worklists [--check]: make the worklist folder(s) equal to the active orders."""

from django.core.management.base import BaseCommand, CommandError

from worklist_export.reconcile import CHANGED, FAILED, MISSING, ORPHAN, STALE, worklists_reconcile
from worklist_export.writer import worklist_layout, worklist_root

VERBS = {
    False: {MISSING: "wrote", CHANGED: "rewrote", STALE: "removed stale", ORPHAN: "removed orphan"},
    True: {MISSING: "missing", CHANGED: "differs", STALE: "stale", ORPHAN: "orphan"},
}


class Command(BaseCommand):
    help = (
        "Write missing and changed worklist files and remove stale and orphan ones, so the folder "
        "matches the active orders. With --check, only report differences (exit status 1 if any)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check", action="store_true", help="Change nothing; exit 1 when the folder differs."
        )

    def handle(self, *args, check: bool = False, verbosity: int = 1, **options):
        try:
            report = worklists_reconcile(check=check)
        except OSError as exc:
            raise CommandError(f"Cannot update {worklist_root()}: {exc}") from exc
        except ValueError as exc:
            # A setting the export cannot work with (WORKLIST_LAYOUT): say which, not a traceback.
            raise CommandError(str(exc)) from exc

        verbs = VERBS[check]
        for line in report.lines:
            if line.kind == FAILED:
                self.stderr.write(f"failed {line.path}: {line.detail}")
            elif verbosity >= 2:
                self.stdout.write(f"{verbs[line.kind]} {line.path} ({line.detail})")

        counts = report.counts()
        self.stdout.write(
            f"{worklist_root()} ({worklist_layout()} layout): "
            f"{counts[MISSING]} {verbs[MISSING]}, {counts[CHANGED]} {verbs[CHANGED]}, "
            f"{counts[STALE]} {verbs[STALE]}, {counts[ORPHAN]} {verbs[ORPHAN]}, "
            f"{counts[FAILED]} failed, {counts['unchanged']} unchanged."
        )
        if check and report.has_differences:
            raise SystemExit(1)
