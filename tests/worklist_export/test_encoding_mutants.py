"""The encoder against pydicom where the worklist items themselves never go: the cases mutation testing
(`make mutate`, docs/MUTATION.md) found no test for.

The items have a fixed shape (one SPS item, short values, small tags), so tests/worklist_export/
test_encoding.py cannot tell a signed from an unsigned field or a one-item join from a two-item one.
encode_elements is the encoder of any element list, the file meta included, and it must write what
pydicom writes for all of them.
"""

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian

from tests.worklist_export.oracle import dataset_bytes
from worklist_export import encoding


def pydicom_dataset(elements: list[encoding.Element]) -> Dataset:
    """The same elements as a pydicom Dataset (items of a sequence are element lists too)."""
    ds = Dataset()
    for tag, vr, value in elements:
        if vr == "SQ":
            value = Sequence([pydicom_dataset(item) for item in value])
        ds.add_new(tag, vr, value)
    return ds


def assert_encodes_as_pydicom(elements: list[encoding.Element], codec: str = "utf_8") -> None:
    assert encoding.encode_elements(elements, codec) == dataset_bytes(pydicom_dataset(elements))


def test_element_numbers_above_7fff_encode_as_pydicom_writes_them():
    # (0040,A040) Value Type, short VR; (0040,A730) Content Sequence and (0040,A160) Text Value, long VRs.
    assert_encodes_as_pydicom(
        [
            (0x0040A040, "CS", "TEXT"),
            (0x0040A160, "UT", "Contrast given"),
            (0x0040A730, "SQ", [[(0x0040A040, "CS", "CONTAINER")]]),
        ]
    )


def test_us_and_ul_values_above_the_signed_range_encode_as_pydicom_writes_them():
    assert_encodes_as_pydicom([(0x00280010, "US", 65535), (0x00020000, "UL", 4_000_000_000)])


def test_an_empty_us_value_is_written_empty_as_pydicom_does():
    assert_encodes_as_pydicom([(0x001021C0, "US", "")])


def test_an_odd_length_ob_value_is_padded_with_nul_as_pydicom_does():
    assert_encodes_as_pydicom([(0x00020001, "OB", b"\x00\x01\x02")])


def test_a_sequence_of_two_items_encodes_as_pydicom_writes_it():
    code = [(0x00080100, "SH", "CTHEAD"), (0x00080102, "SH", "L"), (0x00080104, "LO", "CT Head")]
    other = [(0x00080100, "SH", "CTCHEST"), (0x00080102, "SH", "L"), (0x00080104, "LO", "CT Chest")]
    assert_encodes_as_pydicom([(0x00400008, "SQ", [code, other])])


def test_an_ae_title_is_never_written_in_the_items_character_set():
    # PS3.5 6.1.2.3: AE, CS, DA, TM, UI, DS are in the default repertoire whatever the character set.
    # A UTF-8 AE title would reach the modality as bytes pydicom never writes: refuse it instead.
    with pytest.raises(UnicodeEncodeError):
        encoding.encode_elements([(0x00400001, "AE", "CTÉ")], "utf_8")


def test_the_implementation_uid_and_version_are_the_ones_pydicom_writes():
    # part10_bytes takes them from _implementation(), run once at import; call it here so that a
    # change to it shows (the bytes test in test_encoding.py only sees the value computed at import).
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = encoding.MWL_SOP_CLASS_UID
    ds.file_meta.MediaStorageSOPInstanceUID = "2.25.1"
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.PatientID = "HN000001"
    buffer = DicomBytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    buffer.seek(0)
    written = dcmread(buffer).file_meta

    assert encoding._implementation() == (
        str(written.ImplementationClassUID),
        str(written.ImplementationVersionName),
    )
