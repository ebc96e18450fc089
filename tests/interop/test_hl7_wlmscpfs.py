"""A Thai HIS's order, end to end through real peers: mllp_send -> serve_hl7 -> .wl -> wlmscpfs -> findscu.

The HIS sends TIS-620 bytes with MSH-18 empty, as Thai HIS products do; the sender's default character
set (HL7_DEFAULT_CHARSET for a sender listed in HL7_KNOWN_SENDERS) is what makes the name readable. The
modality must get the same name back from DCMTK's worklist server, which knows nothing of HL7.
"""

from __future__ import annotations

import pytest
from pydicom import dcmread

from scheduling.models import CharacterSet, Order, OrderStatus
from tests.factories import ProcedureFactory, RoomFactory
from tests.hl7.serve import Listener, day_at, mllp_send, msa, orm_nw, segment, write_messages
from tests.mwl_server import dicom

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]

FAMILY, GIVEN = "ใจดี", "สมชาย"


@pytest.mark.parametrize("station_charset", [CharacterSet.THAI, CharacterSet.UTF8])
def test_a_thai_name_sent_in_tis620_reaches_the_modality_intact(wlmscpfs, tmp_path, station_charset):
    room = RoomFactory(name="CT Thai", ae_title="CTTH", worklist_charset=station_charset)
    ProcedureFactory(code_value="CTHEADWO", code_meaning="CT Head without contrast")
    message = orm_nw(
        "TH0001",
        placer="TH7001",
        mrn="HN661234",
        start=day_at(1, 10),
        family=FAMILY,
        given=GIVEN,
        encoding="tis-620",
    )
    # Thai bytes, and nothing in MSH-18 says so.
    assert FAMILY.encode("tis-620") in message and segment(message, b"MSH")[18] == b""
    listener = Listener(tmp_path, {"HL7_DEFAULT_CHARSET": "TIS-620"}).start()
    try:
        [ack] = mllp_send(listener.port, write_messages(tmp_path / "thai.hl7", [message]))
    finally:
        listener.stop()

    assert msa(ack) == ("AA", "TH0001"), listener.output()
    order = Order.objects.get(placer_order_number="TH7001")
    assert order.status == OrderStatus.SCHEDULED and order.room == room
    assert segment(ack, b"ORC")[3].split(b"^")[0].decode() == order.accession_number
    assert (order.patient.family_name, order.patient.given_name) == (FAMILY, GIVEN)
    # The file serve_hl7's booking wrote, in the station's character set, where wlmscpfs serves it.
    written = dcmread(wlmscpfs.folder / wlmscpfs.called_ae / f"{order.accession_number}.wl")
    assert written.SpecificCharacterSet == station_charset

    keys = [
        "PatientName",
        "PatientID=HN661234",
        "AccessionNumber",
        "SpecificCharacterSet",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CTTH",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
    ]
    [answer] = dicom.findscu(wlmscpfs.port, wlmscpfs.called_ae, keys, tmp_path / "rsp")
    assert answer.AccessionNumber == order.accession_number
    assert answer.SpecificCharacterSet == station_charset
    assert answer.PatientName == f"{FAMILY}^{GIVEN}"
