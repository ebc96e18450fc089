"""manage.py hl7_outbox [--every SECONDS] [--stop-with-parent]: send the HL7 outbox to the receivers,
once or periodically (the delivery of a site without a Celery worker: `make run`)."""

import os
import time

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError

from hl7_link.outbox import Round, outbox_run_all


class Command(BaseCommand):
    help = (
        "Queue the order changes each enabled HL7 receiver wants and send its pending messages in order. "
        "With --every, repeat until interrupted: the outbox delivery of a site without a Celery worker."
    )
    # Run every few seconds by `make run`: the system checks are for `manage.py check` and runserver.
    requires_system_checks = []

    def add_arguments(self, parser):
        parser.add_argument(
            "--every",
            type=int,
            metavar="SECONDS",
            help="Run every SECONDS seconds until interrupted; print only rounds that did something.",
        )
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="With --every: stop when the process that started this one ends (`make run`).",
        )

    def handle(self, *args, every: int | None = None, verbosity: int = 1, **options):
        if every is None:
            self._print(outbox_run_all(), verbosity, quiet=False)
            return
        if every < 1:
            raise CommandError(f"--every needs a number of seconds of at least 1, not {every}.")
        self._loop(every, verbosity, stop_with_parent=options.get("stop_with_parent", False))

    def _loop(self, every: int, verbosity: int, *, stop_with_parent: bool) -> None:
        # A shell's background job ignores Ctrl-C; watching the parent ends it with `make run`.
        parent = os.getppid()
        self.stdout.write(f"Sending the HL7 outbox every {every} s; Ctrl-C to stop.")
        try:
            while True:
                try:
                    rounds = outbox_run_all()
                except DatabaseError as exc:
                    # A locked or restarting database: the next round tries again, which is what this
                    # loop is for; the cursor and the pending rows keep what is still to be sent.
                    self.stderr.write(f"Cannot read the HL7 outbox, retrying in {every} s: {exc}")
                else:
                    self._print(rounds, verbosity, quiet=True)
                deadline = time.monotonic() + every
                while (left := deadline - time.monotonic()) > 0:
                    if stop_with_parent and os.getppid() != parent:
                        return
                    time.sleep(min(left, 1.0))
        except KeyboardInterrupt:
            pass

    def _print(self, rounds: list[Round], verbosity: int, *, quiet: bool) -> None:
        if not rounds and not quiet:
            self.stdout.write("No enabled HL7 receiver.")
        for r in rounds:
            # In the loop, a round that did nothing is not printed; a receiver that stays down is
            # reported at each failed attempt, which the backoff spaces out.
            if quiet and not (r.queued or r.answered or r.error) and verbosity < 2:
                continue
            line = f"{r.receiver}: {r.queued} queued, {r.answered} answered, {r.pending} pending"
            if r.error:
                self.stderr.write(f"{line}; {r.error}")
            else:
                self.stdout.write(line)
