"""The worklist item as pydicom builds and writes it: the oracle the export's own encoder is held to.

worklist_export.encoding is the one encoder of every item the system writes or serves. These are the
same item written the readable way, attribute by attribute with pydicom (PS3.4 Table K.6-1), and
pydicom's own writer; tests compare the two byte for byte. Nothing in the app imports this module.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.sequence import Sequence
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from worklist_export.encoding import MWL_SOP_CLASS_UID


def _code_item(code: dict[str, str]) -> Dataset:
    item = Dataset()
    item.CodeValue = code["CodeValue"]
    item.CodingSchemeDesignator = code["CodingSchemeDesignator"]
    item.CodeMeaning = code["CodeMeaning"]
    return item


def _other_id_item(other: dict[str, str]) -> Dataset:
    item = Dataset()
    item.PatientID = other["id"]
    if other["issuer"]:
        item.IssuerOfPatientID = other["issuer"]
    item.TypeOfPatientID = "TEXT"
    qualifiers = Dataset()
    qualifiers.IdentifierTypeCode = other["type"]
    item.IssuerOfPatientIDQualifiersSequence = Sequence([qualifiers])
    return item


def source_dataset(source: dict[str, Any]) -> Dataset:
    """The worklist item for a dict from order_source(). Empty type 1/1C values are left out."""
    ds = Dataset()
    ds.SpecificCharacterSet = source["charset"]

    sps = Dataset()
    sps.ScheduledStationAETitle = source["station_ae"]
    # Separate date and time tags: some modalities ignore the combined DateTime attribute.
    sps.ScheduledProcedureStepStartDate = source["start_date"]
    sps.ScheduledProcedureStepStartTime = source["start_time"]
    sps.Modality = source["modality"]
    sps.ScheduledPerformingPhysicianName = ""
    if source["sps_description"]:
        sps.ScheduledProcedureStepDescription = source["sps_description"]
    if source["code"]:
        sps.ScheduledProtocolCodeSequence = Sequence([_code_item(source["code"])])
    sps.ScheduledProcedureStepID = source["sps_id"]
    sps.ScheduledStationName = source["station_name"]
    sps.ScheduledProcedureStepLocation = source["location"]
    sps.ScheduledProcedureStepStatus = source["sps_status"]
    ds.ScheduledProcedureStepSequence = Sequence([sps])

    ds.RequestedProcedureID = source["requested_procedure_id"]
    if source["sps_description"]:
        ds.RequestedProcedureDescription = source["sps_description"]
    if source["code"]:
        ds.RequestedProcedureCodeSequence = Sequence([_code_item(source["code"])])
    ds.StudyInstanceUID = source["study_uid"]
    ds.ReferencedStudySequence = Sequence()
    ds.ReferencedPatientSequence = Sequence()
    ds.RequestedProcedurePriority = source["priority"]
    ds.AccessionNumber = source["accession"]
    if source["placer_order_number"]:
        ds.PlacerOrderNumberImagingServiceRequest = source["placer_order_number"]
    ds.ReferringPhysicianName = source["referring"]
    ds.RequestingPhysician = source["requesting"]
    ds.AdmissionID = ""
    ds.CurrentPatientLocation = ""

    ds.PatientName = source["patient_name"]
    ds.PatientID = source["patient_id"]
    if source["issuer"]:
        ds.IssuerOfPatientID = source["issuer"]
    if source["other_ids"]:
        ds.OtherPatientIDsSequence = Sequence([_other_id_item(other) for other in source["other_ids"]])
    ds.PatientBirthDate = source["birth_date"]
    ds.PatientSex = source["sex"]
    ds.PatientWeight = source["weight"] or None
    ds.MedicalAlerts = source["medical_alerts"]
    ds.Allergies = source["allergies"]
    ds.PregnancyStatus = source["pregnancy"]
    ds.SpecialNeeds = ""
    ds.PatientState = ""
    return ds


def dataset_bytes(ds: Dataset) -> bytes:
    """The dataset (without file meta) as pydicom writes it in Explicit VR Little Endian."""
    buffer = DicomBytesIO()
    buffer.is_little_endian = True
    buffer.is_implicit_VR = False
    write_dataset(buffer, ds)
    return buffer.getvalue()


def dataset_sha256(ds: Dataset) -> str:
    """What writer.content_sha256 records for the item pydicom would write from `ds`."""
    return hashlib.sha256(dataset_bytes(ds)).hexdigest()


def file_meta() -> FileMetaDataset:
    """The file meta pydicom's save_as writes for a worklist item (a fresh instance UID)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = MWL_SOP_CLASS_UID
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return meta
