"""Why an order is not on its worklist, as a code with parameters, said in the reader's language.

The export runs in Celery tasks and the reconcile, where no request says which language the reader
speaks; and the one message is read later by clerks in Thai or in English. So an entry keeps what went
wrong as a stable code (WorklistEntry.last_error_code, also what API clients match on) and the values
of the message (last_error_params, JSON), and the page renders it in its own language from the
catalogue below. The English text is stored beside them (last_error): for the logs, the admin's list,
and the rows written before the codes, which are shown as they are.

Parameters are data, not display text: a field is stored by its English label (translated through
FIELDS when shown), a status and a character set by their code (shown by their choice labels), a value
as it is (shown quoted, repr, so a stray space or control character can be seen). What comes from the
operating system (an OSError's text) or from pydicom (its reason a value is invalid) stays English.
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.utils import translation
from django.utils.translation import gettext_lazy as _

from scheduling.models import CharacterSet, OrderStatus

logger = logging.getLogger(__name__)

# The codes. Stable: they are stored on entries and given to API clients (error_code); a new kind of
# problem gets a new code, and a code's meaning never changes.
VALUE_EMPTY = "value-empty"
VALUE_BACKSLASH = "value-backslash"
VALUE_TOO_LONG = "value-too-long"
VALUE_TOO_MANY_BYTES = "value-too-many-bytes"
VALUE_UNENCODABLE = "value-unencodable"
VALUE_INVALID = "value-invalid"
AE_TITLE_INVALID = "ae-title-invalid"
ROMANIZED_NAME_MISSING = "romanized-name-missing"
CHARSET_UNKNOWN = "charset-unknown"
STATUS_NOT_EXPORTED = "status-not-exported"
PROCEDURE_UNNAMED = "procedure-unnamed"
CALLED_AE_UNSAFE = "called-ae-unsafe"
FOLDER_MISSING = "folder-missing"
FOLDER_FULL = "folder-full"
FOLDER_READ_ONLY = "folder-read-only"
FOLDER_PERMISSION_DENIED = "folder-permission-denied"
FOLDER_UNWRITABLE = "folder-unwritable"

MESSAGES = {
    VALUE_EMPTY: _("%(field)s is empty; DICOM requires a value."),
    VALUE_BACKSLASH: _("%(field)s contains a backslash (\\), which DICOM does not allow."),
    VALUE_TOO_LONG: _("%(field)s is longer than %(limit)s characters for DICOM: %(value)s."),
    VALUE_TOO_MANY_BYTES: _("%(field)s is longer than %(limit)s bytes for DICOM: %(value)s."),
    VALUE_UNENCODABLE: _(
        "%(field)s contains characters that the station's character set %(charset)s cannot hold "
        "(%(characters)s): %(value)s."
    ),
    VALUE_INVALID: _("%(field)s is not valid for DICOM (%(reason)s): %(value)s."),
    AE_TITLE_INVALID: _("%(field)s is not valid for DICOM (use A-Z, 0-9, space and - : @ _): %(value)s."),
    ROMANIZED_NAME_MISSING: _(
        "Patient %(patient)s has no romanised name, and room %(room)s takes Latin letters only "
        "(ISO_IR 100). Enter the romanised family and given name."
    ),
    CHARSET_UNKNOWN: _("Room %(room)s has an unknown character set %(charset)s."),
    STATUS_NOT_EXPORTED: _("A %(status)s order is not put on a worklist."),
    PROCEDURE_UNNAMED: _("The procedure has neither a name nor a complete code."),
    CALLED_AE_UNSAFE: _(
        "The worklist server's called AE title %(value)s cannot name a folder: set WORKLIST_CALLED_AE, "
        "or the room's worklist server called AE title, to A-Z, 0-9, space and - : @ _."
    ),
    # The folder errors end with the operating system's own words, for whoever fixes the share.
    FOLDER_MISSING: _(
        "The worklist folder cannot be written: it is not there (is the share mounted?): %(error)s"
    ),
    FOLDER_FULL: _("The worklist folder cannot be written: the disk is full: %(error)s"),
    FOLDER_READ_ONLY: _("The worklist folder cannot be written: it is read-only: %(error)s"),
    FOLDER_PERMISSION_DENIED: _(
        "The worklist folder cannot be written: this system is not allowed to write there: %(error)s"
    ),
    FOLDER_UNWRITABLE: _("The worklist folder cannot be written: %(error)s"),
}

# The fields an export error names (ExportError.field, the "field" parameter), by their English
# label as dataset.py passes them, for the reader's language. A label missing here is shown in English.
FIELDS = {
    label: text
    for label, text in [
        ("Room", _("Room")),
        ("Room AE title", _("Room AE title")),
        ("Room station name", _("Room station name")),
        ("Room location", _("Room location")),
        ("Worklist server called AE title", _("Worklist server called AE title")),
        ("Procedure", _("Procedure")),
        ("Procedure name", _("Procedure name")),
        ("Procedure code value", _("Procedure code value")),
        ("Procedure coding scheme", _("Procedure coding scheme")),
        ("Procedure code meaning", _("Procedure code meaning")),
        ("Modality", _("Modality")),
        ("Scheduled procedure step ID", _("Scheduled procedure step ID")),
        ("Requested procedure ID", _("Requested procedure ID")),
        ("Study instance UID", _("Study instance UID")),
        ("Priority", _("Priority")),
        ("Accession number", _("Accession number")),
        ("Placer order number", _("Placer order number")),
        ("Referring physician", _("Referring physician")),
        ("Requesting physician", _("Requesting physician")),
        ("Patient name", _("Patient name")),
        ("Romanised patient name", _("Romanised patient name")),
        ("Patient ID (MRN)", _("Patient ID (MRN)")),
        ("Issuer of patient ID", _("Issuer of patient ID")),
        ("Other patient ID", _("Other patient ID")),
        ("Issuer of other patient ID", _("Issuer of other patient ID")),
        ("Sex", _("Sex")),
        ("Weight", _("Weight")),
        ("Medical alerts", _("Medical alerts")),
        ("Allergies", _("Allergies")),
    ]
}

# errno -> the code of a folder that cannot be written for that reason; any other: FOLDER_UNWRITABLE.
_OS_ERRORS = {
    errno.ENOENT: FOLDER_MISSING,
    errno.ENOTDIR: FOLDER_MISSING,
    errno.ENOSPC: FOLDER_FULL,
    errno.EDQUOT: FOLDER_FULL,
    errno.EROFS: FOLDER_READ_ONLY,
    errno.EACCES: FOLDER_PERMISSION_DENIED,
    errno.EPERM: FOLDER_PERMISSION_DENIED,
}


def _shown(name: str, value: Any) -> Any:
    """A stored parameter as the message shows it, in the active language where it is a label."""
    if name == "field":
        return FIELDS.get(value, value)
    if name == "status":
        return str(OrderStatus(value).label).lower() if value in OrderStatus.values else value
    if name == "charset":
        return CharacterSet(value).label if value in CharacterSet.values else repr(value)
    if name in ("value", "characters"):
        return repr(value)
    return value


@dataclass(frozen=True)
class ExportProblem:
    """One reason an order is not on its worklist: a code of MESSAGES and the values of its message."""

    code: str
    params: dict[str, Any] = field(default_factory=dict)

    def message(self) -> str:
        """The message in the active language (the page's, the API request's)."""
        return str(MESSAGES[self.code]) % {name: _shown(name, v) for name, v in self.params.items()}

    @property
    def text(self) -> str:
        """The message in English, whatever language is active: what last_error and the logs keep."""
        with translation.override("en"):
            return self.message()


def problem_message(code: str, params: Mapping[str, Any], *, fallback: str) -> str:
    """The stored problem `code` with `params` in the active language; `fallback` (the stored English
    text) for a code this version does not know, or a translation whose placeholders do not match."""
    if code not in MESSAGES:
        return fallback
    try:
        return ExportProblem(code, dict(params)).message()
    except (KeyError, ValueError, TypeError) as exc:
        logger.warning("worklist problem %s cannot be shown with %r: %s", code, params, exc)
        return fallback


def os_error_problem(exc: OSError) -> ExportProblem:
    """The problem of a worklist folder that cannot be written, from the OSError that said so."""
    return ExportProblem(_OS_ERRORS.get(exc.errno, FOLDER_UNWRITABLE), {"error": str(exc)})
