"""The export's own encoder writes exactly the bytes pydicom writes for the same item.

worklist_export.encoding replaces pydicom on the export's hot path; these tests hold it to pydicom's
output byte for byte, for real orders in every character set and for generated sources that switch
every optional part on and off.
"""

from datetime import datetime
from decimal import Decimal

import pytest
from django.utils import timezone
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom import dcmread
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_file_meta_info

from scheduling.models import CharacterSet
from tests.factories import OrderFactory, PatientFactory, RoomFactory, ThaiPatientFactory
from tests.worklist_export.oracle import dataset_bytes, file_meta, source_dataset
from worklist_export import encoding
from worklist_export.dataset import order_source


def pydicom_bytes(source: dict) -> bytes:
    return dataset_bytes(source_dataset(source))


def real_sources() -> list[dict]:
    start = timezone.make_aware(datetime(2030, 11, 25, 9, 30))
    latin = RoomFactory(ae_title="DX01", worklist_charset=CharacterSet.LATIN1)
    thai_room = RoomFactory(ae_title="US01", worklist_charset=CharacterSet.THAI)
    orders = [
        # Thai, every optional value present, an odd-length name so padding is exercised.
        OrderFactory(
            patient=ThaiPatientFactory(weight_kg=Decimal("72.5"), pregnancy_status="1", allergies="ไอโอดีน"),
            scheduled_start=start,
            referring_physician="Dr Malee",
            priority="STAT",
            placer_order_number="HIS-77001",
        ),
        # Japanese, nothing optional.
        OrderFactory(
            patient=PatientFactory(family_name="山田", given_name="太郎", issuer=""), scheduled_start=start
        ),
        # Accented Latin in a Latin-1 room; Thai patient with a romanised name in Latin-1 and in TIS-620.
        OrderFactory(
            patient=PatientFactory(family_name="Müller", given_name="Zoë"), room=latin, scheduled_start=start
        ),
        OrderFactory(patient=ThaiPatientFactory(), room=latin, scheduled_start=start),
        OrderFactory(patient=ThaiPatientFactory(), room=thai_room, scheduled_start=start),
    ]
    return [order_source(order) for order in orders]


@pytest.mark.django_db
def test_real_orders_encode_to_pydicoms_bytes():
    for source in real_sources():
        assert encoding.source_bytes(source) == pydicom_bytes(source), source["charset"]


TEXT = st.text(
    st.characters(codec="utf-8", exclude_characters="\\^=", exclude_categories=("Cs", "Cc")), max_size=12
)
ASCII = st.text(st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 _"), max_size=16)


@st.composite
def sources(draw) -> dict:
    code = draw(
        st.none()
        | st.fixed_dictionaries({"CodeValue": ASCII, "CodingSchemeDesignator": ASCII, "CodeMeaning": TEXT})
    )
    return {
        "version": "1",
        "charset": "ISO_IR 192",
        "station_ae": draw(ASCII.filter(str.strip)).strip(),
        "start_date": "20301125",
        "start_time": draw(st.sampled_from(["093000", "000000", "235959"])),
        "modality": draw(st.sampled_from(["CT", "MR", "US", "DX"])),
        "sps_description": draw(TEXT).strip(),
        "code": code,
        "sps_id": draw(ASCII),
        "station_name": draw(TEXT),
        "location": draw(TEXT),
        "sps_status": draw(st.sampled_from(["SCHEDULED", "ARRIVED", "STARTED"])),
        "requested_procedure_id": draw(ASCII),
        "study_uid": draw(st.sampled_from(["1.2.3", "1.2.34", "2.25.123456789012345678901234567890"])),
        "priority": draw(st.sampled_from(["", "STAT", "ROUTINE"])),
        "accession": draw(ASCII),
        "placer_order_number": draw(TEXT),
        "referring": draw(TEXT),
        "requesting": draw(TEXT),
        "patient_name": draw(TEXT.filter(str.strip)),
        "patient_id": draw(ASCII),
        "issuer": draw(TEXT),
        "other_ids": draw(
            st.lists(
                st.fixed_dictionaries(
                    {"id": ASCII.filter(str.strip), "issuer": ASCII, "type": st.sampled_from(["NI", "PPN"])}
                ),
                max_size=2,
            )
        ),
        "birth_date": draw(st.sampled_from(["", "19800517"])),
        "sex": draw(st.sampled_from(["", "M", "F", "O"])),
        "weight": draw(st.sampled_from(["", "72.5", "3", "120.25"])),
        "medical_alerts": draw(TEXT),
        "allergies": draw(TEXT),
        "pregnancy": draw(st.sampled_from([None, 1, 2, 3, 4])),
    }


@settings(max_examples=300, deadline=None)
@given(sources())
def test_generated_items_encode_to_pydicoms_bytes(source):
    assert encoding.source_bytes(source) == pydicom_bytes(source)


def test_the_file_meta_is_what_pydicom_writes():
    body = b"\x08\x00\x05\x00CS\x0a\x00ISO_IR 192"
    meta = file_meta()
    buffer = DicomBytesIO()
    buffer.is_little_endian, buffer.is_implicit_VR = True, False
    buffer.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)

    ours = encoding.part10_bytes(body, instance_uid=meta.MediaStorageSOPInstanceUID)

    assert ours == buffer.getvalue() + body


@pytest.mark.django_db
def test_a_written_file_reads_back_as_the_order(tmp_path):
    (source, *_) = real_sources()
    path = tmp_path / "item.wl"
    path.write_bytes(encoding.part10_bytes(encoding.source_bytes(source)))

    ds = dcmread(path)

    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.31"
    assert ds.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert str(ds.PatientName) == source["patient_name"]
    assert ds.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime == source["start_time"]
