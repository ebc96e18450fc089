"""The DICOM facts a patient's, a room's and an order's values are held to, each defined once.

The form fields, the services, the worklist export and the built-in DICOM server all ask here: whether
a text fits a station's character set, and how a name becomes a DICOM person name (PN). Keeping one
definition means a value that validates at the front desk is the value the scanner receives.
"""

from __future__ import annotations

from pydicom.charset import python_encoding

# DICOM PN: at most 64 characters per component group (MWL-NOTES section 2).
PN_GROUP_MAX = 64

# The Specific Character Set of a Latin-1 station (ISO_IR 100).
LATIN1 = "ISO_IR 100"


def charset_codec(charset: str) -> str | None:
    """The Python codec of a DICOM Specific Character Set term ("ISO_IR 166" -> "iso8859_11"), or None."""
    return python_encoding.get(charset)


def unencodable(text: str, charset: str) -> list[str]:
    """The characters of `text` that the DICOM character set `charset` cannot hold, sorted, each once.

    Empty when the whole text fits. Raises KeyError for a term that is not a character set.
    """
    codec = python_encoding[charset]
    try:
        text.encode(codec)
    except UnicodeEncodeError:
        pass
    else:
        return []
    bad = set()
    for ch in set(text):
        try:
            ch.encode(codec)
        except UnicodeEncodeError:
            bad.add(ch)
    return sorted(bad)


def fits_charset(text: str, charset: str) -> bool:
    """Whether every character of `text` can be written in the DICOM character set `charset`."""
    return not unencodable(text, charset)


def person_name(*components: str) -> str:
    """One PN component group: family^given^middle^prefix^suffix.

    Each component is stripped (a space typed around a name part is not part of the name, and the
    forms strip it too) and trailing empty components are left out, as PS3.5 section 6.2.1 recommends.
    """
    return "^".join(part.strip() for part in components).rstrip("^")
