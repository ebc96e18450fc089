"""The answers we send to a message: ACK, ORR^O02 (to ORM^O01), ORG^O20 (to OMG^O19), original mode.

MSA-1 says what became of the message (AA applied and committed, AE refused by the application with
nothing saved, AR not taken at all); ERR says where and why, in the version's own style: v2.5 ERR-2
location, ERR-3 code (HL7 table 0357), ERR-4 severity; v2.3.1 ERR-1 segment^sequence^field^code. An
order's answer carries one ORC per order with our accession number as the filler order number.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

from django.conf import settings
from django.utils import timezone

from .models import AckCode
from .parsing import Header, escape

# HL7 table 0357, the codes we answer with.
ERROR_NAMES = {
    100: "Segment sequence error",
    101: "Required field missing",
    102: "Data type error",
    103: "Table value not found",
    200: "Unsupported message type",
    201: "Unsupported event code",
    202: "Unsupported processing id",
    203: "Unsupported version id",
    204: "Unknown key identifier",
    205: "Duplicate key identifier",
    206: "Application record locked",
    207: "Application internal error",
}

# MSA-3 is ST of 80 characters in v2.3.1; ERR-8 (v2.5) takes the whole text.
MSA_TEXT_MAX = 80
# A value of theirs we echo (MSH-3, MSH-10...), cut so a huge field cannot make a huge ACK.
ECHO_MAX = 180


class Problem(Exception):
    """Why a message is refused (AE or AR), and where: the segment, its occurrence and the field."""

    def __init__(
        self,
        text: str,
        *,
        code: int = 207,
        segment: str = "",
        field: int | None = None,
        sequence: int = 1,
        ack_code: str = AckCode.AE,
    ) -> None:
        super().__init__(text)
        self.text = text
        self.code = code
        self.segment = segment
        self.field = field
        self.sequence = sequence
        self.ack_code = ack_code

    @classmethod
    def at(
        cls, address: str, text: str, *, code: int, sequence: int = 1, ack_code: str = AckCode.AE
    ) -> Problem:
        """A problem at "PID-3" (or "MSH", a whole segment)."""
        segment, _, number = address.partition("-")
        number = number.split(".")[0]
        return cls(
            text,
            code=code,
            segment=segment,
            field=int(number) if number.isdigit() else None,
            sequence=sequence,
            ack_code=ack_code,
        )


@dataclass
class OrderReply:
    """One ORC of an order's answer: ORC-1 (OK, CR, DR, XR, or UA/UC/UD/UX when refused), ORC-2 their
    placer number, ORC-3 our accession number, ORC-5 the order's status (table 0038). `unable`: the
    ORC-1 it gets when the message is refused (nothing of it saved, so no accession or status)."""

    control: str
    placer: str = ""
    filler: str = ""
    status: str = ""
    unable: str = "UA"

    def refused(self) -> OrderReply:
        return OrderReply(control=self.unable, placer=self.placer, unable=self.unable)


@dataclass
class Answer:
    ack_code: str
    text: str = ""
    problems: list[Problem] = field(default_factory=list)
    orders: list[OrderReply] = field(default_factory=list)


def _is_v25(version: str) -> bool:
    parts = version.split(".")
    try:
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0) >= (2, 5)
    except ValueError:
        return True


def ack_type(header: Header | None, version: str) -> str:
    """MSH-9 of the answer: ORR^O02 to ORM, ORG^O20 to OMG, else ACK^<their event>."""
    code = header.message_code.upper() if header else ""
    event = header.trigger_event.upper() if header else ""
    structured = _is_v25(version)
    if code == "ORM":
        return "ORR^O02^ORR_O02" if structured else "ORR^O02"
    if code == "OMG":
        return "ORG^O20^ORG_O20"
    event = escape(event[:3]) if event.isalnum() else ""
    return f"ACK^{event}^ACK" if structured and event else f"ACK^{event}" if event else "ACK"


def _err_segments(problems: list[Problem], version: str) -> list[str]:
    segments = []
    for problem in problems:
        name = ERROR_NAMES.get(problem.code, ERROR_NAMES[207])
        location = [
            problem.segment,
            str(problem.sequence) if problem.segment else "",
            str(problem.field or ""),
        ]
        if _is_v25(version):
            where = "^".join(location).rstrip("^")
            code = f"{problem.code}^{escape(name)}^HL70357"
            segments.append(f"ERR||{where}|{code}|E||||{escape(problem.text)}")
        else:
            # ERR-1 ELD: segment^sequence^field^code, the code a CE in subcomponents code&text&table.
            where = "^".join(location)
            segments.append(f"ERR|{where}^{problem.code}&{escape(problem.text)[:200]}&HL70357")
    return segments


def build(header: Header | None, answer: Answer, *, version: str = "", charset: str = "") -> str:
    """The answer to the message whose MSH is `header` (None when it could not be read)."""
    version = version or (header.version if header and header.version else "2.5.1")
    version = escape(version[:16])
    their_app = escape(header.sending_application[:ECHO_MAX]) if header else ""
    their_facility = escape(header.sending_facility[:ECHO_MAX]) if header else ""
    processing = header.processing_id if header and header.processing_id in ("P", "T", "D") else "P"
    control_id = escape(header.control_id[:ECHO_MAX]) if header else ""
    now = timezone.localtime().strftime("%Y%m%d%H%M%S%z")
    msh = [
        "MSH",
        "^~\\&",
        escape(settings.HL7_APPLICATION),
        escape(settings.HL7_FACILITY),
        their_app,
        their_facility,
        now,
        "",
        ack_type(header, version),
        uuid.uuid4().hex[:20].upper(),
        processing,
        version,
        "",
        "",
        "",
        "",
        "",
        escape(charset),
    ]
    segments = [
        "|".join(msh).rstrip("|"),
        f"MSA|{answer.ack_code}|{control_id}|{escape(answer.text)[:MSA_TEXT_MAX]}".rstrip("|"),
    ]
    segments += _err_segments(answer.problems, version)
    for order in answer.orders:
        orc = ["ORC", order.control, escape(order.placer), escape(order.filler), "", order.status]
        segments.append("|".join(orc).rstrip("|"))
    return "\r".join(segments) + "\r"


def encode(text: str, codec: str) -> bytes:
    """The answer in the sender's character set; a letter the set cannot hold (from an echoed value)
    becomes "?" rather than fail the answer."""
    return text.encode(codec, errors="replace")


def fallback(raw: bytes, text: str) -> bytes:
    """An AE answer built without the database or the parser, for when processing itself failed."""
    from .parsing import ParseProblem, read_header

    try:
        header = read_header(raw)
    except ParseProblem:
        header = None
    problem = Problem(text, code=207)
    try:
        return encode(build(header, Answer(AckCode.AE, text, [problem])), "ascii")
    except Exception:  # the last resort must answer something the sender can parse
        return b"MSH|^~\\&|RIS|RADIOLOGY|||||ACK|0|P|2.5.1\rMSA|AE|\r"
