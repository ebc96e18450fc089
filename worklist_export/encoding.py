"""A worklist item's bytes straight from order_source()'s dict: Explicit VR Little Endian, Part 10.

The one encoder of every item: the per-order task, the reconcile and the built-in DICOM server all take
their bytes from here. pydicom builds a Dataset of DataElements and then walks it again to write it:
about 1.2 ms an item, which held a bulk export near 800 items a second per core (docs/BENCHMARKS.md). An
item always has the same shape, so it is encoded here in one pass. pydicom stays the reader and the
test oracle: tests/worklist_export/oracle.py builds the same item as a pydicom Dataset, and
tests/worklist_export/test_encoding.py checks the bytes are identical to pydicom's for every character
set and every optional part.

Encoding as pydicom writes it: elements in tag order, defined lengths for sequences and items, text
values in the item's character set padded with a space to an even length, UIDs padded with NUL.
"""

from __future__ import annotations

import struct
from typing import Any

from pydicom.charset import python_encoding
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import validate_file_meta
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

# Modality Worklist Information Model - FIND.
MWL_SOP_CLASS_UID = "1.2.840.10008.5.1.4.31"

# VRs with a 2-byte reserved field and a 4-byte length in Explicit VR (PS3.5 section 7.1.2).
_LONG_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "SQ", "SV", "UC", "UN", "UR", "UT", "UV"})
# VRs whose value is text in the SpecificCharacterSet; the others are always ASCII (PS3.5 section 6.1.2.3).
_CHARSET_VRS = frozenset({"SH", "LO", "PN", "ST", "LT", "UT", "UC"})

_ITEM = 0xFFFEE000

Element = tuple[int, str, Any]  # (tag, VR, value): str, int (US, UL), bytes (OB), None, or a list of items


def _header(tag: int, vr: str, length: int) -> bytes:
    if vr in _LONG_VRS:
        return struct.pack("<HH2sHI", tag >> 16, tag & 0xFFFF, vr.encode(), 0, length)
    return struct.pack("<HH2sH", tag >> 16, tag & 0xFFFF, vr.encode(), length)


def _value(vr: str, value: Any, codec: str) -> bytes:
    if value is None or value == "":
        return b""
    if vr == "US":
        return struct.pack("<H", value)
    if vr == "UL":
        return struct.pack("<I", value)
    data = value if isinstance(value, bytes) else value.encode(codec if vr in _CHARSET_VRS else "ascii")
    if len(data) % 2:
        data += b"\0" if vr in ("UI", "OB") else b" "
    return data


def encode_elements(elements: list[Element], codec: str) -> bytes:
    """Elements (in any order) as Explicit VR Little Endian bytes, text in Python codec `codec`."""
    out = []
    for tag, vr, value in sorted(elements, key=lambda element: element[0]):
        if vr == "SQ":
            items = [encode_elements(item, codec) for item in value]
            data = b"".join(struct.pack("<HHI", _ITEM >> 16, _ITEM & 0xFFFF, len(i)) + i for i in items)
        else:
            data = _value(vr, value, codec)
        out.append(_header(tag, vr, len(data)))
        out.append(data)
    return b"".join(out)


def _code_item(code: dict[str, str]) -> list[Element]:
    return [
        (0x00080100, "SH", code["CodeValue"]),
        (0x00080102, "SH", code["CodingSchemeDesignator"]),
        (0x00080104, "LO", code["CodeMeaning"]),
    ]


def _other_id_item(other: dict[str, str]) -> list[Element]:
    item: list[Element] = [(0x00100020, "LO", other["id"]), (0x00100022, "CS", "TEXT")]
    if other["issuer"]:
        item.append((0x00100021, "LO", other["issuer"]))
    item.append((0x00100024, "SQ", [[(0x00400035, "CS", other["type"])]]))
    return item


def source_elements(source: dict[str, Any]) -> list[Element]:
    """The elements of the worklist item for a dict from order_source(). Empty type 1/1C values are
    left out; separate start date and time (some modalities ignore the combined DateTime)."""
    sps: list[Element] = [
        (0x00400001, "AE", source["station_ae"]),
        (0x00400002, "DA", source["start_date"]),
        (0x00400003, "TM", source["start_time"]),
        (0x00080060, "CS", source["modality"]),
        (0x00400006, "PN", ""),
        (0x00400009, "SH", source["sps_id"]),
        (0x00400010, "SH", source["station_name"]),
        (0x00400011, "SH", source["location"]),
        (0x00400020, "CS", source["sps_status"]),
    ]
    elements: list[Element] = [
        (0x00080005, "CS", source["charset"]),
        (0x00400100, "SQ", [sps]),
        (0x00401001, "SH", source["requested_procedure_id"]),
        (0x0020000D, "UI", source["study_uid"]),
        (0x00081110, "SQ", []),
        (0x00081120, "SQ", []),
        (0x00401003, "SH", source["priority"]),
        (0x00080050, "SH", source["accession"]),
        (0x00080090, "PN", source["referring"]),
        (0x00321032, "PN", source["requesting"]),
        (0x00380010, "LO", ""),
        (0x00380300, "LO", ""),
        (0x00100010, "PN", source["patient_name"]),
        (0x00100020, "LO", source["patient_id"]),
        (0x00100030, "DA", source["birth_date"]),
        (0x00100040, "CS", source["sex"]),
        (0x00101030, "DS", source["weight"] or None),
        (0x00102000, "LO", source["medical_alerts"]),
        (0x00102110, "LO", source["allergies"]),
        (0x001021C0, "US", source["pregnancy"]),
        (0x00380050, "LO", ""),
        (0x00380500, "LO", ""),
    ]
    if source["sps_description"]:
        sps.append((0x00400007, "LO", source["sps_description"]))
        elements.append((0x00321060, "LO", source["sps_description"]))
    if source["code"]:
        sps.append((0x00400008, "SQ", [_code_item(source["code"])]))
        elements.append((0x00321064, "SQ", [_code_item(source["code"])]))
    if source["issuer"]:
        elements.append((0x00100021, "LO", source["issuer"]))
    if source["placer_order_number"]:
        elements.append((0x00402016, "LO", source["placer_order_number"]))
    if source["other_ids"]:
        # Never a zero-item sequence (MWL-NOTES section 1): left out when there is no other ID.
        elements.append((0x00101002, "SQ", [_other_id_item(other) for other in source["other_ids"]]))
    return elements


def source_bytes(source: dict[str, Any]) -> bytes:
    """The item (without file meta): what a .wl file holds after its file meta, and what its
    content_sha256 hashes."""
    return encode_elements(source_elements(source), python_encoding[source["charset"]])


def _implementation() -> tuple[str, str]:
    """The implementation class UID and version name pydicom puts in the file meta of what it saves."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MWL_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = "1.2"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    validate_file_meta(meta, enforce_standard=True)
    return str(meta.ImplementationClassUID), str(meta.ImplementationVersionName)


_IMPLEMENTATION_UID, _IMPLEMENTATION_VERSION = _implementation()


def part10_bytes(body: bytes, *, instance_uid: str | None = None) -> bytes:
    """A Part 10 file around dataset bytes: preamble, DICM, file meta (a fresh instance UID), dataset.

    What pydicom's `save_as(enforce_file_format=True)` writes, without encoding the dataset again.
    """
    meta = encode_elements(
        [
            (0x00020001, "OB", b"\x00\x01"),
            (0x00020002, "UI", MWL_SOP_CLASS_UID),
            (0x00020003, "UI", instance_uid or generate_uid()),
            (0x00020010, "UI", ExplicitVRLittleEndian),
            (0x00020012, "UI", _IMPLEMENTATION_UID),
            (0x00020013, "SH", _IMPLEMENTATION_VERSION),
        ],
        "ascii",
    )
    group_length = encode_elements([(0x00020000, "UL", len(meta))], "ascii")
    return b"\0" * 128 + b"DICM" + group_length + meta + body
