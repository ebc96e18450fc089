"""manage.py serve_dicom: the built-in worklist and MPPS server (C-FIND, N-CREATE/N-SET, C-ECHO)."""

import logging
import os
import ssl
import threading

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, ValidationError
from django.core.management.base import BaseCommand, CommandError

from mwl_server import access
from mwl_server.server import start_server, tls_context
from scheduling.validators import validate_ae_title


class Command(BaseCommand):
    help = (
        "Answer Modality Worklist queries from the database, take MPPS from the modalities and answer "
        "C-ECHO, on DICOM_SERVER_PORT as DICOM_SERVER_AE. Runs until interrupted."
    )

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=None, help="Default: DICOM_SERVER_PORT.")
        parser.add_argument("--bind", default=None, help="Address to listen on. Default: DICOM_SERVER_BIND.")
        parser.add_argument("--ae-title", default=None, help="Called AE title. Default: DICOM_SERVER_AE.")
        parser.add_argument(
            "--stop-with-parent",
            action="store_true",
            help="Stop when the process that started this one ends (`make run` starts it beside runserver).",
        )

    def handle(self, *args, port=None, bind=None, ae_title=None, verbosity=1, **options):
        if verbosity < 2:
            # pynetdicom logs every identifier at INFO: patient names and IDs have no place in the log.
            logging.getLogger("pynetdicom").setLevel(logging.WARNING)
        ae_title = ae_title if ae_title is not None else settings.DICOM_SERVER_AE
        port = port if port is not None else settings.DICOM_SERVER_PORT
        bind = bind if bind is not None else settings.DICOM_SERVER_BIND
        # Checked here: pynetdicom and the socket refuse these with a traceback, or (an AE title with a
        # dot) accept one that newer DCMTK modalities then refuse to call.
        if not 1 <= port <= 65535:
            raise CommandError(f"The port must be between 1 and 65535, not {port}.")
        try:
            validate_ae_title(ae_title)
        except ValidationError as exc:
            raise CommandError(f"AE title {ae_title!r}: {exc.messages[0]}") from None
        try:
            access.room_callers()
            access.allowed_networks()
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc)) from None
        try:
            tls = tls_context() is not None
        except (OSError, ssl.SSLError) as exc:
            raise CommandError(f"TLS (DICOM_SERVER_TLS_CERT, _KEY, _CA): {exc}") from None
        callers = "any calling AE" if settings.DICOM_SERVER_ALLOW_ANY_CALLER else "known calling AEs only"
        over = "TLS" if tls else "plain TCP"
        self.stdout.write(f"DICOM server {ae_title} on {bind}:{port} ({callers}, {over}); Ctrl-C to stop.")
        try:
            server = start_server(host=bind, port=port, ae_title=ae_title, block=False)
        except OSError as exc:
            raise CommandError(f"Cannot listen on {bind}:{port}: {exc}") from exc
        stop = threading.Event()
        if options.get("stop_with_parent"):
            # A shell's background job ignores Ctrl-C; watching the parent ends it with `make run`.
            parent = os.getppid()
            threading.Thread(target=self._watch_parent, args=(parent, stop), daemon=True).start()
        try:
            while not stop.wait(1):
                pass
        except KeyboardInterrupt:
            pass
        finally:
            server.shutdown()
            self.stdout.write("Stopped.")

    @staticmethod
    def _watch_parent(parent: int, stop: threading.Event) -> None:
        while not stop.wait(1):
            if os.getppid() != parent:
                stop.set()
