"""`manage.py serve_hl7` as a separate process, and Debian's `mllp_send` as the HIS that talks to it.

The listener reads and writes the test database as tests/mwl_server/process.py's serve_dicom does: the
test creates rooms and procedures in a `transaction=True` test, so they are committed where the
subprocess reads them (the SQLite test database file, or the PostgreSQL test database). `mllp_send`
(python3-hl7's client, an MLLP implementation independent of ours) sends from a file of framed messages
and prints each answer frame as it comes; missing, it fails the test (tests.mwl_server.dicom.require).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from hl7_link.mllp import END_BLOCK, START_BLOCK, frame
from tests.mwl_server.dicom import free_port, require
from tests.mwl_server.process import database_url

MLLP_SEND = "/usr/bin/mllp_send"


@dataclass
class Listener:
    """One serve_hl7 process on a fixed port; start() again after kill() gives a new one on that port."""

    tmp_path: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None
    starts: int = 0

    @property
    def log(self) -> Path:
        return self.tmp_path / f"serve_hl7-{self.port}-{self.starts}.log"

    def start(self) -> Listener:
        self.starts += 1
        environment = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.hl7.listener_settings",
            "DATABASE_URL": database_url(),
            "WORKLIST_DIR": str(settings.WORKLIST_DIR),
            "WORKLIST_LAYOUT": str(settings.WORKLIST_LAYOUT),
            "WORKLIST_CALLED_AE": str(settings.WORKLIST_CALLED_AE),
            "HL7_KNOWN_SENDERS": "HIS",
            "PYTHONUNBUFFERED": "1",
            **self.env,
        }
        command = [sys.executable, "manage.py", "serve_hl7", "--bind", "127.0.0.1", "--port", str(self.port)]
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                command, cwd=settings.BASE_DIR, env=environment, stdout=out, stderr=subprocess.STDOUT
            )
        self._wait_until_up()
        return self

    def _wait_until_up(self) -> None:
        deadline = time.monotonic() + 60  # Django's start-up on a busy two-core machine
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"serve_hl7 exited with {self.process.returncode}:\n{self.output()}")
            # The line it prints once its socket listens: a connection before it could be refused.
            if "HL7 listener (MLLP) on" in self.output():
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    pass
            time.sleep(0.1)
        pytest.fail(f"serve_hl7 did not listen on port {self.port}:\n{self.output()}")

    def output(self) -> str:
        return "\n".join(
            (self.tmp_path / f"serve_hl7-{self.port}-{n}.log").read_text(errors="replace")
            for n in range(1, self.starts + 1)
            if (self.tmp_path / f"serve_hl7-{self.port}-{n}.log").exists()
        )

    def kill(self) -> None:
        """SIGKILL: no clean-up at all, as a power cut or the OOM killer would do it."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def mllp_send_path() -> str:
    return require("mllp_send", MLLP_SEND)


def write_messages(path: Path, messages: Iterable[bytes]) -> Path:
    """A file for `mllp_send -f`: the messages framed one after another, as an HIS would stream them."""
    path.write_bytes(b"".join(frame(message) for message in messages))
    return path


def mllp_send_command(port: int, path: Path, *options: str) -> list[str]:
    return [mllp_send_path(), *options, "-p", str(port), "-f", str(path), "127.0.0.1"]


def mllp_send(port: int, path: Path, *options: str, timeout: float = 120) -> list[bytes]:
    """Run mllp_send on the file; the answer frames it printed (their payloads), in order."""
    result = subprocess.run(mllp_send_command(port, path, *options), capture_output=True, timeout=timeout)
    assert result.returncode == 0, result.stderr.decode(errors="replace")
    return answers(result.stdout)


def answers(printed: bytes) -> list[bytes]:
    """The answer payloads in mllp_send's output: it prints each frame it received, then a newline."""
    found = []
    for chunk in printed.split(END_BLOCK):
        start = chunk.find(START_BLOCK)
        if start != -1:
            found.append(chunk[start + 1 :])
    return found


def segment(message: bytes, name: bytes) -> list[bytes]:
    """The fields of the first `name` segment (index n = field n; MSH's index 1 is its field separator)."""
    for line in message.replace(b"\n", b"\r").split(b"\r"):
        if line.startswith(name + b"|"):
            fields = line.split(b"|")
            return [fields[0], b"|", *fields[1:]] if name == b"MSH" else fields
    return []


def msa(ack: bytes) -> tuple[str, str]:
    """MSA-1 and MSA-2 of an ACK: its code and the control ID it answers."""
    fields = segment(ack, b"MSA")
    return fields[1].decode(), fields[2].decode()


def hl7_segment(name: str, fields: dict[int, str]) -> str:
    """A segment with the given fields by number (PID-5 is `5`), the others empty."""
    values = [""] * max(fields)
    for number, value in fields.items():
        values[number - 1] = value
    return "|".join([name, *values])


def msh(control_id: str, message_type: str, *, sender: str = "HIS", charset: str = "") -> str:
    fields = {2: "^~\\&", 3: sender, 4: "HOSPITAL", 5: "RIS", 6: "RADIOLOGY", 7: "20261202103000"}
    fields |= {9: message_type, 10: control_id, 11: "P", 12: "2.3.1", 18: charset}
    # MSH-1 is the separator itself: the fields start at MSH-2.
    return "MSH|" + hl7_segment("", fields)[2:]


def adt_a04(
    control_id: str,
    *,
    mrn: str,
    family: str = "Jaidee",
    given: str = "Somchai",
    national_id: str = "",
    sender: str = "HIS",
) -> bytes:
    """An ADT^A04 (register a patient) as a v2.3.1 HIS sends it."""
    identifiers = f"{mrn}^^^HOSP^MR" + (f"~{national_id}^^^TH^NI" if national_id else "")
    segments = [
        msh(control_id, "ADT^A04", sender=sender),
        "EVN|A04|20261202103000",
        hl7_segment(
            "PID",
            {
                1: "1",
                3: identifiers,
                5: f"{family}^{given}",
                7: "19800517",
                8: "M",
                11: "12 Sukhumvit Rd^^Bangkok",
            },
        ),
    ]
    return ("\r".join(segments) + "\r").encode("ascii")


def orm_nw(
    control_id: str,
    *,
    placer: str,
    mrn: str,
    start: str = "",
    code: str = "CTHEADWO",
    family: str = "Jaidee",
    given: str = "Somchai",
    sender: str = "HIS",
    encoding: str = "ascii",
    extra: str = "",
) -> bytes:
    """An ORM^O01 NW (IHE RAD-2, v2.3.1) for one exam; `start` "YYYYMMDDHHMMSS" or empty (to schedule).

    MSH-18 stays empty whatever `encoding` the text is written in, as Thai HIS products send TIS-620.
    """
    timing = f"^^^{start}^^R"
    segments = [
        msh(control_id, "ORM^O01", sender=sender),
        hl7_segment("PID", {1: "1", 3: f"{mrn}^^^HOSP^MR", 5: f"{family}^{given}", 7: "19800517", 8: "M"}),
        hl7_segment("PV1", {1: "1", 2: "O", 3: "OPD"}),
        hl7_segment("ORC", {1: "NW", 2: f"{placer}^{sender}", 7: timing, 12: "1234^Suksai^Anan"}),
        hl7_segment(
            "OBR",
            {
                1: "1",
                2: f"{placer}^{sender}",
                4: f"{code}^CT Head without contrast^RIS",
                16: "1234^Suksai^Anan",
                24: "CT",
                27: timing,
                31: "^headache for 2 weeks",
            },
        ),
    ]
    if extra:
        segments.append(extra)
    return ("\r".join(segments) + "\r").encode(encoding)


def day_at(days: int, hour: int, minute: int = 0) -> str:
    """An HL7 time stamp `days` from today at hour:minute, the clinic's local time (no offset)."""
    day = timezone.localdate() + timedelta(days=days)
    return f"{day:%Y%m%d}{hour:02d}{minute:02d}00"
