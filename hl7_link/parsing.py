"""Reading an HL7 v2 message: its character set, its segments and fields, its escapes and time stamps.

The bytes are decoded once, by MSH-18 or the sender's default, before anything is split: a TIS-620 byte
may be any value above 0x7F, and only decoded text can be split safely. MSH up to MSH-18 is ASCII in every
character set we accept, so the header is read from the bytes first to learn the sender and its set.

python-hl7 splits the text into its tree (segments, fields, repetitions, components, subcomponents); the
values are read through `Parsed` here, which unescapes them itself: python-hl7's unescape turns `\\Xhh\\`
into one character per byte (wrong for UTF-8 and TIS-620) and can raise on a malformed escape.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from datetime import timezone as dt_timezone

import hl7
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import Charset

# MSH-18 (HL7 table 0211) -> Python codec. The ISO 8859 parts are added below for those Python knows.
MSH18_CODECS = {
    "UNICODE UTF-8": "utf-8",
    "ASCII": "ascii",
    # 8859/11 is Latin/Thai: TIS-620 plus a no-break space.
    "8859/11": "tis_620",
}
for _part in range(1, 17):
    _name = f"iso8859_{_part}"
    try:
        codecs.lookup(_name)
    except LookupError:
        continue
    MSH18_CODECS.setdefault(f"8859/{_part}", _name)

# A sender's default (Sender.default_charset, for MSH-18 empty) -> Python codec.
DEFAULT_CODECS = {
    Charset.ASCII: "ascii",
    Charset.UTF8: "utf-8",
    Charset.LATIN1: "latin-1",
    Charset.TIS620: "tis_620",
}

# The Buddhist era runs 543 years ahead: a year past this is a BE year from a misconfigured sender.
LAST_PLAUSIBLE_YEAR = 2400

TS_RE = re.compile(
    r"^(?P<year>\d{4})(?P<month>\d{2})?(?P<day>\d{2})?(?P<hour>\d{2})?(?P<minute>\d{2})?"
    r"(?P<second>\d{2})?(?:\.(?P<fraction>\d{1,4}))?(?P<offset>[+-]\d{4})?$"
)


class ParseProblem(Exception):
    """The message cannot be read: `field` says where ("MSH-18"), the text what is wrong."""

    def __init__(self, text: str, *, field: str = "MSH", code: int = 102) -> None:
        super().__init__(text)
        self.text = text
        self.field = field
        self.code = code


@dataclass(frozen=True)
class Header:
    """MSH as read from the bytes, before decoding: enough to find the sender and the character set."""

    field_separator: str
    encoding_characters: str
    sending_application: str
    sending_facility: str
    receiving_application: str
    receiving_facility: str
    message_type: str
    control_id: str
    processing_id: str
    version: str
    charset: str

    @property
    def message_code(self) -> str:
        return self.message_type.split(self.component_separator)[0].strip()

    @property
    def trigger_event(self) -> str:
        parts = self.message_type.split(self.component_separator)
        return parts[1].strip() if len(parts) > 1 else ""

    @property
    def component_separator(self) -> str:
        return self.encoding_characters[:1] or "^"


def _first_component(value: str, component_separator: str, repetition_separator: str) -> str:
    return value.split(repetition_separator)[0].split(component_separator)[0].strip()


def read_header(raw: bytes) -> Header:
    """MSH from the raw bytes. Raises ParseProblem when the message does not start with MSH."""
    start = raw.lstrip(b"\x0b\r\n\t \xef\xbb\xbf")
    if not start.startswith(b"MSH") or len(start) < 8:
        raise ParseProblem(_("The message does not start with an MSH segment."), field="MSH", code=100)
    separator = chr(start[3])
    line = re.split(rb"[\r\n]", start, maxsplit=1)[0].decode("ascii", errors="replace")
    fields = line.split(separator)
    encoding = fields[1] if len(fields) > 1 else ""
    if separator.isalnum() or len(encoding) < 2 or separator in encoding or encoding[0].isalnum():
        raise ParseProblem(_("MSH-1 and MSH-2 do not hold the separators."), field="MSH-2", code=102)
    component, repetition = encoding[0], encoding[1]

    def field(number: int) -> str:
        # MSH-1 is the separator itself, so MSH-n is fields[n - 1].
        return fields[number - 1] if number - 1 < len(fields) else ""

    def first(number: int) -> str:
        return _first_component(field(number), component, repetition)

    return Header(
        field_separator=separator,
        encoding_characters=encoding,
        sending_application=first(3),
        sending_facility=first(4),
        receiving_application=first(5),
        receiving_facility=first(6),
        message_type=field(9).split(repetition)[0].strip(),
        control_id=field(10).strip(),
        processing_id=first(11),
        version=first(12),
        charset=field(18).split(repetition)[0].strip(),
    )


def codec_for(header: Header, default_charset: str) -> str:
    """The Python codec the message is decoded with: MSH-18's, else the sender's default."""
    if header.charset:
        codec = MSH18_CODECS.get(header.charset.upper())
        if codec is None:
            raise ParseProblem(
                _(
                    "Character set %(charset)s (MSH-18) is not supported: send UNICODE UTF-8 or 8859/1, "
                    "or leave MSH-18 empty and set the sender's character set."
                )
                % {"charset": header.charset},
                field="MSH-18",
                code=103,
            )
        return codec
    return DEFAULT_CODECS.get(default_charset, "ascii")


def decode(raw: bytes, codec: str, *, declared: str) -> str:
    """The whole message as text, with segments ending in \\r. Raises ParseProblem on a byte the
    character set cannot hold, naming it and where to fix the cause."""
    try:
        text = raw.decode(codec)
    except UnicodeDecodeError as exc:
        byte = raw[exc.start]
        if declared:
            hint = _("The bytes do not match MSH-18 %(charset)s.") % {"charset": declared}
        else:
            hint = _("MSH-18 is empty: set the sender's character set (for example TIS-620 for a Thai HIS).")
        raise ParseProblem(
            _("Byte 0x%(byte)02X at position %(position)d cannot be read as %(codec)s. %(hint)s")
            % {"byte": byte, "position": exc.start, "codec": codec, "hint": hint},
            field="MSH-18",
            code=102,
        ) from exc
    # Segments end in \r; some senders (and files saved on Unix or Windows) end them in \n or \r\n.
    text = text.replace("\r\n", "\r").replace("\n", "\r").strip("\x0b\x1c\r\t \ufeff")
    return "\r".join(segment for segment in text.split("\r") if segment.strip())


def unescape(value: str, separators: str, escape: str, codec: str) -> str:
    """A value with its HL7 escapes replaced (\\F\\ \\S\\ \\T\\ \\R\\ \\E\\ \\Xhh..\\ \\.br\\).

    Highlighting (\\H\\ \\N\\) is dropped; a sequence we do not know, or an escape never closed, stays as
    it came, so no text is lost.
    """
    if not escape or escape not in value:
        return value
    known = {
        "F": separators[1],
        "R": separators[2],
        "S": separators[3],
        "T": separators[4] if len(separators) > 4 else "&",
        "E": escape,
        ".br": "\n",
        "H": "",
        "N": "",
    }
    out: list[str] = []
    i = 0
    while i < len(value):
        char = value[i]
        end = value.find(escape, i + 1) if char == escape else -1
        if end == -1:
            out.append(char)
            i += 1
            continue
        sequence = value[i + 1 : end]
        if sequence in known:
            out.append(known[sequence])
        elif sequence[:1] == "X" and len(sequence) > 1 and len(sequence) % 2 == 1:
            try:
                out.append(bytes.fromhex(sequence[1:]).decode(codec))
            except (ValueError, UnicodeDecodeError):
                out.append(value[i : end + 1])
        else:
            out.append(value[i : end + 1])
        i = end + 1
    return "".join(out)


def _as_list(node: object) -> list:
    # python-hl7 makes a level a plain string when the text has no separator for it.
    return [node] if isinstance(node, str) else list(node)


class Parsed:
    """A decoded message split by python-hl7, with HL7-style addresses: `value("PID-5.2")`.

    Addresses: "SEG-field[.component[.subcomponent]]" (1-based as HL7 counts them; MSH-1 is the field
    separator). A missing segment, field or component reads as "".
    """

    def __init__(self, text: str, *, codec: str) -> None:
        self.text = text
        self.codec = codec
        try:
            self.message = hl7.parse(text)
        except Exception as exc:  # python-hl7 raises several kinds (ParseException, IndexError...)
            raise ParseProblem(_("The message cannot be split into segments and fields."), code=100) from exc
        self.separators = self.message.separators
        self.escape = self.message.esc
        self.segment_ids = [self._segment_id(segment) for segment in self.message]

    @staticmethod
    def _segment_id(segment) -> str:
        try:
            return str(_as_list(_as_list(segment[0])[0])[0]).strip()
        except (IndexError, TypeError):
            return ""

    def segments(self, segment_id: str) -> list:
        return [s for s, sid in zip(self.message, self.segment_ids, strict=True) if sid == segment_id]

    def has(self, segment_id: str) -> bool:
        return segment_id in self.segment_ids

    def repetitions(self, segment, field: int) -> list[list[list[str]]]:
        """A field of `segment` as repetitions of components of subcomponents, raw (still escaped)."""
        is_msh = self._segment_id(segment) == "MSH"
        # In python-hl7's tree MSH[1] is MSH-1 like every other segment's [n] is its field n.
        if field >= len(segment) or field < 1 or (is_msh and field <= 2):
            return []
        return [
            [[str(sub) for sub in _as_list(component)] for component in _as_list(repetition)]
            for repetition in _as_list(segment[field])
        ]

    def _unescaped(self, raw: str) -> str:
        return unescape(raw, self.separators, self.escape, self.codec).strip()

    def field_value(
        self, segment, field: int, component: int = 1, subcomponent: int = 1, repetition: int = 1
    ) -> str:
        reps = self.repetitions(segment, field)
        try:
            raw = reps[repetition - 1][component - 1][subcomponent - 1]
        except IndexError:
            return ""
        return self._unescaped(raw)

    def components(self, segment, field: int, repetition: int = 1) -> list[str]:
        """The components of one repetition, each its first subcomponent, unescaped."""
        reps = self.repetitions(segment, field)
        if repetition > len(reps):
            return []
        return [self._unescaped(component[0] if component else "") for component in reps[repetition - 1]]

    def value(self, address: str, segment=None) -> str:
        """The value at `address` ("PID-5.2") in `segment`, or in the first segment of that name."""
        segment_id, field, component, subcomponent = split_address(address)
        if segment is None:
            found = self.segments(segment_id)
            if not found:
                return ""
            segment = found[0]
        return self.field_value(segment, field, component, subcomponent)


ADDRESS_RE = re.compile(r"^([A-Z][A-Z0-9]{2})-(\d{1,3})(?:\.(\d{1,2}))?(?:\.(\d{1,2}))?$")


def split_address(address: str) -> tuple[str, int, int, int]:
    """("PID", 5, 2, 1) from "PID-5.2". Raises ValueError for something that is not an address."""
    match = ADDRESS_RE.match(address.strip().upper())
    if not match:
        raise ValueError(address)
    return match[1], int(match[2]), int(match[3] or 1), int(match[4] or 1)


def parse_ts(value: str, *, field: str) -> tuple[datetime | None, bool]:
    """An HL7 TS/DTM value as an aware datetime, and whether it carried a time of day.

    Without an offset the time is the sender's local time: the clinic's TIME_ZONE. Empty: (None, False).
    Raises ParseProblem (at `field`) for something that is not a time stamp or a Buddhist-era year.
    """
    value = value.strip()
    if not value:
        return None, False
    match = TS_RE.match(value)
    if not match:
        raise ParseProblem(
            _("%(field)s “%(value)s” is not a time stamp (YYYYMMDDHHMM[SS][+ZZZZ]).")
            % {"field": field, "value": value[:40]},
            field=field,
        )
    year = int(match["year"])
    if year > LAST_PLAUSIBLE_YEAR:
        raise ParseProblem(
            _(
                "%(field)s has the year %(year)d: it looks like a Buddhist-era year. The sender must "
                "send Gregorian years (BE minus 543)."
            )
            % {"field": field, "year": year},
            field=field,
        )
    has_time = match["hour"] is not None
    try:
        moment = datetime(
            year,
            int(match["month"] or 1),
            int(match["day"] or 1),
            int(match["hour"] or 0),
            int(match["minute"] or 0),
            int(match["second"] or 0),
            int((match["fraction"] or "0").ljust(6, "0")[:6]),
        )
    except ValueError as exc:
        raise ParseProblem(
            _("%(field)s “%(value)s” is not a real date or time.") % {"field": field, "value": value[:40]},
            field=field,
        ) from exc
    if match["offset"]:
        sign = 1 if match["offset"][0] == "+" else -1
        hours, minutes = int(match["offset"][1:3]), int(match["offset"][3:5])
        if hours > 14 or minutes > 59:
            raise ParseProblem(
                _("%(field)s “%(value)s” has an impossible UTC offset.")
                % {"field": field, "value": value[:40]},
                field=field,
            )
        offset = dt_timezone(sign * timedelta(hours=hours, minutes=minutes))
        return moment.replace(tzinfo=offset), has_time
    try:
        return timezone.make_aware(moment), has_time
    except (ValueError, OverflowError) as exc:
        raise ParseProblem(
            _("%(field)s “%(value)s” is not a real date or time.") % {"field": field, "value": value[:40]},
            field=field,
        ) from exc


def parse_date(value: str, *, field: str) -> date | None:
    """An HL7 DT/TS value's date (a birth date), as written: no time-zone conversion."""
    moment, _has_time = parse_ts(value, field=field)
    if moment is None:
        return None
    match = TS_RE.match(value.strip())
    return date(int(match["year"]), int(match["month"] or 1), int(match["day"] or 1))


# The separators of the messages we write (our ACKs): | ^ ~ \ &.
_ESCAPES = {"\\": "\\E\\", "|": "\\F\\", "^": "\\S\\", "~": "\\R\\", "&": "\\T\\"}


def escape(value: str) -> str:
    """Text made safe for one field of a message we write: separators become escapes, line breaks
    (which would end the segment) spaces."""
    text = " ".join(str(value).split())
    return "".join(_ESCAPES.get(char, char) for char in text)
