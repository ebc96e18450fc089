"""Bad input, generated: whatever arrives, receive() answers with a parsable ACK and never half-saves.

Messages are built from the segments an order or ADT carries, with fields drawn from text that includes
separators, escapes (good and broken), Thai letters, control characters and huge values, encoded in a
character set that may not be the one MSH-18 or the sender claims; and plain random bytes.
"""

import hl7
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hl7_link.inbound import receive
from tests.hl7.conftest import adt, counts, hl7_ts, mrg, obr, omg, orc, orm, pid, pv1, tomorrow, tq1

FUZZ = settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,
)

MESSAGE_TYPES = [
    "ADT^A01",
    "ADT^A04",
    "ADT^A08",
    "ADT^A40",
    "ORM^O01",
    "OMG^O19^OMG_O19",
    "ADT^A99",
    "SIU^S12",
    "",
    "ORM",
    "^^^",
]
VERSIONS = ["2.3.1", "2.5.1", "2.3", "2.5", "2.9", "", "x"]
CHARSETS = ["", "UNICODE UTF-8", "8859/1", "8859/11", "KLINGON", "UNICODE"]
ENCODINGS = ["ascii", "utf-8", "latin-1", "tis_620"]

field_text = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=30),
    st.sampled_from(
        ["\\F\\", "\\X41\\", "\\Xzz\\", "\\", "\\.br\\", "\\E", '""', "^^^", "~~", "&&", "|", "\r", "\n"]
    ),
    st.sampled_from(
        ["ใจดี", "สมชาย", "Müller", "20260101", "25690101", "S", "NW", "CA", "XO", "DC", "CTHEAD"]
    ),
    st.integers(min_value=1000, max_value=70000).map(lambda n: "A" * n),
)
fields = st.lists(field_text, max_size=12)


def segment(name: str):
    return fields.map(lambda values: "|".join([name, *values]))


known_segment = st.one_of(
    st.just(pid()),
    st.just(orc(control="NW", placer="PX")),
    st.just(orc(control="CA", placer="PX")),
    st.just(obr(placer="PX")),
    st.just(tq1(start="209901011000")),
    *(
        segment(name)
        for name in ["PID", "PV1", "ORC", "OBR", "TQ1", "MRG", "EVN", "ZDS", "NTE", "XYZ", "MSH"]
    ),
)


@st.composite
def messages(draw) -> bytes:
    header = [
        "MSH",
        "^~\\&",
        draw(st.sampled_from(["HOSXP", "HOSXP", "STRANGER", "", "A" * 300])),
        "H",
        "RIS",
        "R",
        "20260101",
        "",
        draw(st.sampled_from(MESSAGE_TYPES)),
        draw(st.sampled_from(["", "C1", "C2", "X" * 250])) or draw(st.text(min_size=1, max_size=10)),
        draw(st.sampled_from(["P", "T", "D", ""])),
        draw(st.sampled_from(VERSIONS)),
        "",
        "",
        "",
        "",
        "",
        draw(st.sampled_from(CHARSETS)),
    ]
    body = draw(st.lists(known_segment, max_size=6))
    terminator = draw(st.sampled_from(["\r", "\n", "\r\n"]))
    text = terminator.join(["|".join(header), *body]) + terminator
    encoded = text.encode(draw(st.sampled_from(ENCODINGS)), errors="replace")
    if draw(st.booleans()):
        position = draw(st.integers(min_value=0, max_value=len(encoded)))
        encoded = encoded[:position] + draw(st.binary(max_size=20)) + encoded[position:]
    return encoded


def check(raw: bytes, before: tuple[int, ...]) -> None:
    reply = receive(raw)
    assert isinstance(reply, bytes) and reply.startswith(b"MSH|^~\\&|")
    # The answer is in the message's character set, whose bytes below 0x80 are ASCII: MSA reads alike.
    text = reply.decode("latin-1")
    assert "\n" not in text
    answer = hl7.parse(text)
    code = str(answer.extract_field("MSA", 1, 1))
    assert code in ("AA", "AE", "AR"), text
    if code != "AA":
        assert counts() == before, text
    # A refusal says why; the catch-all answer would mean a handler crashed on this input.
    assert "failed to process" not in text, raw


@pytest.fixture
def senders(hl7_sender, hl7_catalog):
    return hl7_sender


@FUZZ
@given(raw=messages())
def test_generated_messages_always_get_an_answer_and_refusals_save_nothing(senders, raw):
    check(raw, counts())


@FUZZ
@given(raw=st.binary(max_size=300))
def test_random_bytes_always_get_an_answer(senders, raw):
    check(raw, counts())


@FUZZ
@given(prefix=st.binary(max_size=40), tail=st.binary(max_size=200))
def test_random_bytes_after_a_valid_msh_get_an_answer(senders, prefix, tail):
    raw = b"MSH|^~\\&|HOSXP|H|RIS|R|20260101||ORM^O01|F1|P|2.3.1\r" + prefix + b"|" + tail
    check(raw, counts())


@FUZZ
@given(text=st.text(max_size=200), encoding=st.sampled_from(ENCODINGS), charset=st.sampled_from(CHARSETS))
def test_text_in_the_wrong_character_set_gets_an_answer(senders, text, encoding, charset):
    raw = (
        f"MSH|^~\\&|HOSXP|H|RIS|R|20260101||ADT^A08|W1|P|2.5.1|||||TH|{charset}\r"
        f"PID|1||HN1^^^^MR||{text}^{text}||19800101|M\r"
    ).encode(encoding, errors="replace")
    check(raw, counts())


def valid_messages() -> list[bytes]:
    start = hl7_ts(tomorrow(10))
    return [
        orm(pid(mrn="F1"), pv1(referring="D1^Doe^Jane"), orc(placer="FZ", start=start), obr(placer="FZ")),
        omg(
            pid(mrn="F2"), orc(placer="FY"), tq1(start=start, priority="S"), obr(placer="FY", reason="^Pain")
        ),
        orm(orc(control="XO", placer="FZ", start=start, priority="S"), obr(placer="FZ")),
        orm(orc(control="CA", placer="FY")),
        adt("A08", pid(mrn="F1", family="Fuzz", address="1 Road^^Bangkok", phone="02")),
        adt("A40", pid(mrn="F2"), mrg(mrn="F1")),
    ]


@st.composite
def mutated(draw) -> bytes:
    """A valid message with one to three fields replaced by drawn text."""
    segments = draw(st.sampled_from(valid_messages())).decode("ascii").rstrip("\r").split("\r")
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        index = draw(st.integers(min_value=1, max_value=len(segments) - 1))
        values = segments[index].split("|")
        number = draw(st.integers(min_value=1, max_value=max(1, len(values) + 2)))
        values += [""] * (number + 1 - len(values))
        values[number] = draw(field_text)
        segments[index] = "|".join(values)
    # New control IDs: each example is a new message, not a repeat answered from the log.
    segments[0] = segments[0].replace("|MSG", f"|Z{draw(st.integers(0, 10**9))}M", 1)
    return ("\r".join(segments) + "\r").encode(
        draw(st.sampled_from(["utf-8", "tis_620", "latin-1"])), errors="replace"
    )


@FUZZ
@given(raw=mutated())
def test_valid_messages_with_fields_replaced_get_an_answer_and_refusals_save_nothing(senders, raw):
    check(raw, counts())
