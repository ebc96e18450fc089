"""HL7 v2 field names, and a message split field by field, for the Interface page.

The names are the standard's own (v2.5.1 chapter texts; IHE RAD TF-2 for IPC and ZDS), shown untranslated
next to the field number as DICOM keywords are on the worklist dump: they are the words an interface
engineer at the HIS searches the specification and their own mapping for. Only the segments the RIS
reads or writes are named; any other segment is still shown, by number alone.

The split is for reading, not for acting: it never refuses a message (a message that could not be
parsed is exactly the one an administrator opens), so it is a plain split by the message's own
separators rather than the parser the inbound pipeline relies on (hl7_link.inbound).
"""

from __future__ import annotations

from dataclasses import dataclass, field

SEGMENT_NAMES = {
    "MSH": "Message Header",
    "EVN": "Event Type",
    "PID": "Patient Identification",
    "PV1": "Patient Visit",
    "MRG": "Merge Patient Information",
    "ORC": "Common Order",
    "OBR": "Observation Request",
    "TQ1": "Timing/Quantity",
    "IPC": "Imaging Procedure Control",
    "ZDS": "Additional Identification Information (IHE)",
    "ERR": "Error",
    "MSA": "Message Acknowledgment",
}

FIELD_NAMES: dict[str, tuple[str, ...]] = {
    "MSH": (
        "Field Separator",
        "Encoding Characters",
        "Sending Application",
        "Sending Facility",
        "Receiving Application",
        "Receiving Facility",
        "Date/Time of Message",
        "Security",
        "Message Type",
        "Message Control ID",
        "Processing ID",
        "Version ID",
        "Sequence Number",
        "Continuation Pointer",
        "Accept Acknowledgment Type",
        "Application Acknowledgment Type",
        "Country Code",
        "Character Set",
        "Principal Language of Message",
        "Alternate Character Set Handling Scheme",
        "Message Profile Identifier",
    ),
    "EVN": (
        "Event Type Code",
        "Recorded Date/Time",
        "Date/Time Planned Event",
        "Event Reason Code",
        "Operator ID",
        "Event Occurred",
        "Event Facility",
    ),
    "PID": (
        "Set ID - PID",
        "Patient ID",
        "Patient Identifier List",
        "Alternate Patient ID - PID",
        "Patient Name",
        "Mother's Maiden Name",
        "Date/Time of Birth",
        "Administrative Sex",
        "Patient Alias",
        "Race",
        "Patient Address",
        "County Code",
        "Phone Number - Home",
        "Phone Number - Business",
        "Primary Language",
        "Marital Status",
        "Religion",
        "Patient Account Number",
        "SSN Number - Patient",
        "Driver's License Number - Patient",
        "Mother's Identifier",
        "Ethnic Group",
        "Birth Place",
        "Multiple Birth Indicator",
        "Birth Order",
        "Citizenship",
        "Veterans Military Status",
        "Nationality",
        "Patient Death Date and Time",
        "Patient Death Indicator",
        "Identity Unknown Indicator",
        "Identity Reliability Code",
        "Last Update Date/Time",
        "Last Update Facility",
        "Species Code",
        "Breed Code",
        "Strain",
        "Production Class Code",
        "Tribal Citizenship",
    ),
    "PV1": (
        "Set ID - PV1",
        "Patient Class",
        "Assigned Patient Location",
        "Admission Type",
        "Preadmit Number",
        "Prior Patient Location",
        "Attending Doctor",
        "Referring Doctor",
        "Consulting Doctor",
        "Hospital Service",
        "Temporary Location",
        "Preadmit Test Indicator",
        "Re-admission Indicator",
        "Admit Source",
        "Ambulatory Status",
        "VIP Indicator",
        "Admitting Doctor",
        "Patient Type",
        "Visit Number",
        "Financial Class",
        "Charge Price Indicator",
        "Courtesy Code",
        "Credit Rating",
        "Contract Code",
        "Contract Effective Date",
        "Contract Amount",
        "Contract Period",
        "Interest Code",
        "Transfer to Bad Debt Code",
        "Transfer to Bad Debt Date",
        "Bad Debt Agency Code",
        "Bad Debt Transfer Amount",
        "Bad Debt Recovery Amount",
        "Delete Account Indicator",
        "Delete Account Date",
        "Discharge Disposition",
        "Discharged to Location",
        "Diet Type",
        "Servicing Facility",
        "Bed Status",
        "Account Status",
        "Pending Location",
        "Prior Temporary Location",
        "Admit Date/Time",
        "Discharge Date/Time",
        "Current Patient Balance",
        "Total Charges",
        "Total Adjustments",
        "Total Payments",
        "Alternate Visit ID",
        "Visit Indicator",
        "Other Healthcare Provider",
    ),
    "MRG": (
        "Prior Patient Identifier List",
        "Prior Alternate Patient ID",
        "Prior Patient Account Number",
        "Prior Patient ID",
        "Prior Visit Number",
        "Prior Alternate Visit ID",
        "Prior Patient Name",
    ),
    "ORC": (
        "Order Control",
        "Placer Order Number",
        "Filler Order Number",
        "Placer Group Number",
        "Order Status",
        "Response Flag",
        "Quantity/Timing",
        "Parent",
        "Date/Time of Transaction",
        "Entered By",
        "Verified By",
        "Ordering Provider",
        "Enterer's Location",
        "Call Back Phone Number",
        "Order Effective Date/Time",
        "Order Control Code Reason",
        "Entering Organization",
        "Entering Device",
        "Action By",
        "Advanced Beneficiary Notice Code",
        "Ordering Facility Name",
        "Ordering Facility Address",
        "Ordering Facility Phone Number",
        "Ordering Provider Address",
        "Order Status Modifier",
        "Advanced Beneficiary Notice Override Reason",
        "Filler's Expected Availability Date/Time",
        "Confidentiality Code",
        "Order Type",
        "Enterer Authorization Mode",
        "Parent Universal Service Identifier",
    ),
    "OBR": (
        "Set ID - OBR",
        "Placer Order Number",
        "Filler Order Number",
        "Universal Service Identifier",
        "Priority - OBR",
        "Requested Date/Time",
        "Observation Date/Time",
        "Observation End Date/Time",
        "Collection Volume",
        "Collector Identifier",
        "Specimen Action Code",
        "Danger Code",
        "Relevant Clinical Information",
        "Specimen Received Date/Time",
        "Specimen Source",
        "Ordering Provider",
        "Order Callback Phone Number",
        "Placer Field 1",
        "Placer Field 2",
        "Filler Field 1",
        "Filler Field 2",
        "Results Rpt/Status Chng - Date/Time",
        "Charge to Practice",
        "Diagnostic Serv Sect ID",
        "Result Status",
        "Parent Result",
        "Quantity/Timing",
        "Result Copies To",
        "Parent",
        "Transportation Mode",
        "Reason for Study",
        "Principal Result Interpreter",
        "Assistant Result Interpreter",
        "Technician",
        "Transcriptionist",
        "Scheduled Date/Time",
        "Number of Sample Containers",
        "Transport Logistics of Collected Sample",
        "Collector's Comment",
        "Transport Arrangement Responsibility",
        "Transport Arranged",
        "Escort Required",
        "Planned Patient Transport Comment",
        "Procedure Code",
        "Procedure Code Modifier",
        "Placer Supplemental Service Information",
        "Filler Supplemental Service Information",
        "Medically Necessary Duplicate Procedure Reason",
        "Result Handling",
    ),
    "TQ1": (
        "Set ID - TQ1",
        "Quantity",
        "Repeat Pattern",
        "Explicit Time",
        "Relative Time and Units",
        "Service Duration",
        "Start Date/Time",
        "End Date/Time",
        "Priority",
        "Condition Text",
        "Text Instruction",
        "Conjunction",
        "Occurrence Duration",
        "Total Occurrences",
    ),
    "IPC": (
        "Accession Identifier",
        "Requested Procedure ID",
        "Study Instance UID",
        "Scheduled Procedure Step ID",
        "Modality",
        "Protocol Code",
        "Scheduled Station Name",
        "Scheduled Procedure Step Location",
        "Scheduled Station AE Title",
    ),
    "ZDS": ("Study Instance UID",),
    "ERR": (
        "Error Code and Location",
        "Error Location",
        "HL7 Error Code",
        "Severity",
        "Application Error Code",
        "Application Error Parameter",
        "Diagnostic Information",
        "User Message",
        "Inform Person Indicator",
        "Override Type",
        "Override Reason Code",
        "Help Desk Contact Point",
    ),
    "MSA": (
        "Acknowledgment Code",
        "Message Control ID",
        "Text Message",
        "Expected Sequence Number",
        "Delayed Acknowledgment Type",
        "Error Condition",
    ),
}


def field_name(segment: str, number: int) -> str:
    """The standard's name of field `number` (1-based) of `segment`; "" when not listed."""
    names = FIELD_NAMES.get(segment, ())
    return names[number - 1] if 1 <= number <= len(names) else ""


@dataclass
class FieldRow:
    """One non-empty field: PID-5, its name, its text, and its repetitions split into components."""

    location: str
    name: str
    value: str
    # [[component, ...], ...] per repetition; shown only when there is more than the plain value.
    repetitions: list[list[str]] = field(default_factory=list)

    @property
    def structured(self) -> bool:
        return len(self.repetitions) > 1 or any(len(components) > 1 for components in self.repetitions)


@dataclass
class SegmentRows:
    segment: str
    name: str
    # The segment's position in the message (1-based): a message may hold two OBRs or ERRs.
    position: int
    fields: list[FieldRow]


def segment_lines(text: str) -> list[str]:
    """The message's segments, one a line: HL7 ends them with CR; a sender's stray LF is taken too."""
    return [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]


def message_rows(text: str) -> list[SegmentRows]:
    """`text` (an HL7 message, already decoded) field by field, numbered as HL7 counts (MSH-1 is the
    field separator itself). Empty fields are left out; escapes are shown as sent."""
    lines = segment_lines(text)
    if not lines or not lines[0].startswith("MSH") or len(lines[0]) < 8:
        separator, encoding = "|", "^~\\&"
    else:
        separator, encoding = lines[0][3], lines[0][4:8]
    component, repetition = encoding[0], encoding[1]
    segments = []
    for position, line in enumerate(lines, start=1):
        parts = line.split(separator)
        name = parts[0]
        values = parts[1:]
        if name == "MSH":
            # MSH-1 is the separator between "MSH" and MSH-2; splitting has swallowed it.
            values = [separator, *values]
        rows = []
        for number, value in enumerate(values, start=1):
            if not value:
                continue
            if name == "MSH" and number <= 2:
                repetitions = [[value]]
            else:
                repetitions = [item.split(component) for item in value.split(repetition)]
            rows.append(
                FieldRow(
                    location=f"{name}-{number}",
                    name=field_name(name, number),
                    value=value,
                    repetitions=repetitions,
                )
            )
        segments.append(SegmentRows(name, SEGMENT_NAMES.get(name, ""), position, rows))
    return segments
