"""Dates as people read and type them: the Buddhist era (B.E., C.E. + 543) in Thai, C.E. in English.

Stored values, URLs, data attributes, HL7 and DICOM stay ISO and C.E.; only what a person reads or
types changes era. Which is which follows one rule:

- Shown: a named format (DATE_FORMAT, SHORT_DATETIME_FORMAT, ...: what `{{ day|date }}` and
  `{{ day|date:"SHORT_DATE_FORMAT" }}` use) is for people, so its year is B.E. under Thai. A literal
  format (`|date:"Y-m-d"`, `|date:"c"`) is code talking to code (a link's ?date=, a datetime
  attribute) and stays C.E. in every language.
- Typed: `LocalDateField` shows dd/mm/yyyy in the interface's era and reads it back (see
  `parse_local_date` for what it accepts). A text field rather than `<input type="date">`, whose
  parts follow the browser's locale: Debian's Chromium ships only en-US, so it showed mm/dd/yyyy in C.E.
  to a Thai clerk.

The admin is left in C.E.: its calendar widget writes dates with DATE_INPUT_FORMATS in C.E., and a list
in B.E. beside inputs in C.E. would mislead more than it helps the few people who use it.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.utils import dateformat, formats, timezone, translation
from django.utils.functional import lazy
from django.utils.translation import gettext_lazy as _

BE_OFFSET = 543
# A day-first year from here on is B.E. in Thai, a lower one is refused there as C.E. The two readings
# never overlap for a real date: B.E. 2400 is C.E. 1857, before any living patient, and C.E. 2400 is
# centuries past any booking.
FIRST_BE_YEAR = 2400

# Thai digits (๐-๙) as some keyboards and pasted documents give them.
THAI_DIGITS = str.maketrans("๐๑๒๓๔๕๖๗๘๙", "0123456789")
ISO_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")
DAY_FIRST_RE = re.compile(r"(\d{1,2})[/.\-](\d{1,2})[/.\-](\d{4})|(\d{2})(\d{2})(\d{4})")


def buddhist_era() -> bool:
    """Whether people read and type years in B.E.: under the Thai interface."""
    return (translation.get_language() or "").split("-")[0] == "th"


def local_year(year: int) -> int:
    """`year` (C.E.) as the interface writes it."""
    return year + BE_OFFSET if buddhist_era() else year


class BuddhistDateFormat(dateformat.DateFormat):
    """Django's DateFormat with the year characters in B.E.; every other character as Django's."""

    def o(self) -> int:
        return self.data.isocalendar().year + BE_OFFSET

    def y(self) -> str:
        return f"{(self.data.year + BE_OFFSET) % 100:02d}"

    def Y(self) -> str:
        return f"{self.data.year + BE_OFFSET:04d}"


def date_format(value: date | datetime, format: str | None = None, use_l10n: bool | None = None) -> str:
    """django.utils.formats.date_format with the year in B.E. under Thai for a named format.

    A literal format ("Y-m-d", "c") is for machines and stays C.E.: see the module docstring.
    """
    pattern = formats.get_format(format or "DATE_FORMAT", use_l10n=use_l10n)
    if buddhist_era() and (format is None or format in formats.FORMAT_SETTINGS):
        return BuddhistDateFormat(value).format(pattern)
    return dateformat.format(value, pattern)


def format_input_date(value: date) -> str:
    """A date as the date field shows it: dd/mm/yyyy, the year in the interface's era."""
    return f"{value.day:02d}/{value.month:02d}/{local_year(value.year):04d}"


def _example() -> str:
    return format_input_date(date(timezone.localdate().year, 12, 31))


def parse_local_date(text: str) -> date:
    """A date as a clerk types it in the active interface; ValidationError says what to type instead.

    Accepted: day first, dd/mm/yyyy (also with - or . between, or the eight digits alone), the year in
    B.E. under Thai and in C.E. under English; and ISO yyyy-mm-dd, always C.E., in both (what links,
    scripts and pasted system dates carry). Thai digits count as digits.

    Refused, with a message saying what to type: under Thai, a day-first year below 2400, rather than
    taken as C.E.: it is as likely a slip of the finger (2023 for 2523) as a C.E. year, and a birth date
    off by 543 years is worse than being asked again; under Thai, an ISO date with a year from 2400 (a
    B.E. year in ISO order); two-digit years, as 17/05/23 could be 1923, 2023 or B.E. 2523.
    """
    cleaned = text.strip().translate(THAI_DIGITS)
    invalid = ValidationError(
        _("Enter the date as day/month/year, e.g. %(example)s."),
        code="invalid",
        params={"example": _example()},
    )
    if match := ISO_RE.fullmatch(cleaned):
        year, month, day = (int(part) for part in match.groups())
        if buddhist_era() and year >= FIRST_BE_YEAR:
            # 2569-12-04: ISO is C.E., so this is B.E. in the wrong order; asked again, day first.
            raise invalid
        # Whoever sends ISO knows the format: an impossible day (1970-02-30) is told so in Django's own
        # words, the same the API gives for it.
        invalid = ValidationError(forms.DateField.default_error_messages["invalid"], code="invalid")
    elif match := DAY_FIRST_RE.fullmatch(cleaned):
        day, month, year = (int(part) for part in match.groups() if part is not None)
        if buddhist_era():
            if year < FIRST_BE_YEAR:
                raise ValidationError(
                    _("Type the year in the Buddhist era (B.E.): %(be)s rather than %(ce)s."),
                    code="era",
                    params={"be": year + BE_OFFSET, "ce": year},
                )
            year -= BE_OFFSET
    else:
        raise invalid
    try:
        return date(year, month, day)
    except ValueError:
        raise invalid from None


class LocalDateInput(forms.TextInput):
    """A text box for one date, dd/mm/yyyy in the interface's era; digits typed straight in.

    The placeholder names the parts rather than showing an example date, which in an empty filter box
    reads as a date already chosen.
    """

    def __init__(self, attrs: dict[str, Any] | None = None) -> None:
        super().__init__(
            {
                "inputmode": "numeric",
                "autocomplete": "off",
                "size": 10,
                # Translators: the parts of a typed date; in Thai the year is B.E. (วว/ดด/ปปปป).
                "placeholder": _("dd/mm/yyyy"),
                **(attrs or {}),
            }
        )

    def format_value(self, value: Any) -> str | None:
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, str) and ISO_RE.fullmatch(value.strip()):
            # An ISO initial value (a link's ?date=2026-12-04) is shown in the interface's era.
            try:
                value = parse_local_date(value)
            except ValidationError:
                pass
        if isinstance(value, date):
            return format_input_date(value)
        # What the clerk typed, as typed, when the form comes back with an error.
        return super().format_value(value)


def _help_text() -> str:
    return _("Day/month/year, e.g. %(example)s.") % {"example": _example()}


class LocalDateField(forms.DateField):
    """A date typed in the interface's era (`parse_local_date`), stored and cleaned as a C.E. date.

    Its help text (shown where a form renders one) gives an example in the reader's era, so a Thai clerk
    sees a B.E. year to copy.
    """

    widget = LocalDateInput

    def __init__(self, **kwargs: Any) -> None:
        # A model's date field passes help_text="" when it has none.
        kwargs["help_text"] = kwargs.get("help_text") or lazy(_help_text, str)()
        super().__init__(**kwargs)

    def to_python(self, value: Any) -> date | None:
        if value in self.empty_values:
            return None
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        return parse_local_date(str(value))
