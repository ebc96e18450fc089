"""Field validators that keep every value legal for the DICOM attribute it is written to.

The limits are those of PS3.5 Table 6.2-1 (see MWL-NOTES section 2). A value rejected here is one a
modality would have dropped or garbled, so the message says what to type instead.
"""

import re
import unicodedata
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ris.dates import format_input_date

from .dicom import LATIN1, fits_charset

AE_TITLE_RE = re.compile(r"^[A-Z0-9 \-:@_]{1,16}$")
CS_RE = re.compile(r"^[A-Z0-9 _]{0,16}$")


def default_issuer() -> str:
    return settings.RIS_ISSUER_OF_PATIENT_ID


def _reject_control_characters(value: str) -> None:
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise ValidationError(
            _("Remove control characters (tabs, line breaks) from this field."), code="control"
        )


def validate_lo_text(value: str) -> None:
    """LO/SH-like single-line text: no control characters and no backslash (the DICOM value separator)."""
    _reject_control_characters(value)
    if "\\" in value:
        raise ValidationError(_("The backslash character (\\) is not allowed here."), code="backslash")


validate_sh_text = validate_lo_text


def validate_name_part(value: str) -> None:
    """One component of a person name: ^ and = separate components and groups in DICOM PN."""
    validate_lo_text(value)
    bad = sorted({ch for ch in value if ch in "^="})
    if bad:
        raise ValidationError(
            _("The characters %(chars)s are not allowed in a name."),
            code="pn_delimiter",
            params={"chars": " ".join(bad)},
        )


def validate_latin1(value: str) -> None:
    if not fits_charset(value, LATIN1):
        raise ValidationError(
            _("Use Latin letters only (this name goes to stations that cannot show other scripts)."),
            code="latin1",
        )


def validate_cs(value: str) -> None:
    if not CS_RE.match(value):
        raise ValidationError(
            _("Use at most 16 upper-case letters A-Z, digits, spaces or underscores."), code="cs"
        )


def validate_ae_title(value: str) -> None:
    if not AE_TITLE_RE.match(value) or not value.strip():
        raise ValidationError(
            _("An AE title is 1 to 16 characters of A-Z, 0-9, space and - : @ _ (upper case)."),
            code="ae_title",
        )


def validate_birth_date(value: date) -> None:
    if value > timezone.localdate():
        raise ValidationError(_("The birth date cannot be in the future."), code="future")
    if value.year < 1880:
        raise ValidationError(_("Check the birth date: it is before 1880."), code="too_old")


# The calendar the schedule works in. Beyond it a date is a typo, and at the ends of Python's range
# the day before or after (or the time zone offset) cannot be computed: OverflowError, a server error.
CALENDAR_FIRST = date(1900, 1, 1)
CALENDAR_LAST = date(2999, 12, 31)


def validate_calendar_date(value: date) -> None:
    if not (CALENDAR_FIRST <= value <= CALENDAR_LAST):
        raise ValidationError(
            _("Enter a date between %(first)s and %(last)s."),
            code="calendar",
            # As the date fields show dates: dd/mm/yyyy, the year in B.E. under Thai.
            params={"first": format_input_date(CALENDAR_FIRST), "last": format_input_date(CALENDAR_LAST)},
        )


def validate_weight(value: Decimal) -> None:
    if value is not None and not (Decimal("0.1") <= value <= Decimal("500")):
        raise ValidationError(_("Weight must be between 0.1 and 500 kg."), code="weight")


def validate_duration(value: int) -> None:
    if not (1 <= value <= 720):
        raise ValidationError(_("Duration must be between 1 and 720 minutes."), code="duration")


def thai_national_id_check_digit(first12: str) -> int:
    """The check digit of a Thai national ID from its first 12 digits: weights 13..2, mod 11."""
    total = sum(int(d) * w for d, w in zip(first12, range(13, 1, -1), strict=True))
    return (11 - total % 11) % 10


def validate_thai_national_id(value: str) -> None:
    """13 digits whose last is the check digit of the first 12 (as on the Thai ID card)."""
    if not re.fullmatch(r"\d{13}", value or ""):
        raise ValidationError(
            _("A national ID has 13 digits (like 1101700203450), without dashes or spaces."),
            code="national_id_format",
        )
    if thai_national_id_check_digit(value[:12]) != int(value[12]):
        raise ValidationError(
            _("This national ID's check digit is wrong: check the number against the ID card."),
            code="national_id_checksum",
        )


def format_thai_national_id(value: str) -> str:
    """A national ID as printed on the card, X-XXXX-XXXXX-XX-X; anything else as it is."""
    if not re.fullmatch(r"\d{13}", value or ""):
        return value
    return f"{value[0]}-{value[1:5]}-{value[5:10]}-{value[10:12]}-{value[12]}"


# ISO 3166-1 alpha-3, the country codes of passports (ICAO Doc 9303 uses them in the machine-readable
# zone; Germany's "D" there is written DEU here). Kept here rather than as a dependency: 249 codes.
ISO_3166_ALPHA3 = frozenset(
    """
    ABW AFG AGO AIA ALA ALB AND ARE ARG ARM ASM ATA ATF ATG AUS AUT AZE BDI BEL BEN BES BFA BGD BGR
    BHR BHS BIH BLM BLR BLZ BMU BOL BRA BRB BRN BTN BVT BWA CAF CAN CCK CHE CHL CHN CIV CMR COD COG
    COK COL COM CPV CRI CUB CUW CXR CYM CYP CZE DEU DJI DMA DNK DOM DZA ECU EGY ERI ESH ESP EST ETH
    FIN FJI FLK FRA FRO FSM GAB GBR GEO GGY GHA GIB GIN GLP GMB GNB GNQ GRC GRD GRL GTM GUF GUM GUY
    HKG HMD HND HRV HTI HUN IDN IMN IND IOT IRL IRN IRQ ISL ISR ITA JAM JEY JOR JPN KAZ KEN KGZ KHM
    KIR KNA KOR KWT LAO LBN LBR LBY LCA LIE LKA LSO LTU LUX LVA MAC MAF MAR MCO MDA MDG MDV MEX MHL
    MKD MLI MLT MMR MNE MNG MNP MOZ MRT MSR MTQ MUS MWI MYS MYT NAM NCL NER NFK NGA NIC NIU NLD NOR
    NPL NRU NZL OMN PAK PAN PCN PER PHL PLW PNG POL PRI PRK PRT PRY PSE PYF QAT REU ROU RUS RWA SAU
    SDN SEN SGP SGS SHN SJM SLB SLE SLV SMR SOM SPM SRB SSD STP SUR SVK SVN SWE SWZ SXM SYC SYR TCA
    TCD TGO THA TJK TKL TKM TLS TON TTO TUN TUR TUV TWN TZA UGA UKR UMI URY USA UZB VAT VCT VEN VGB
    VIR VNM VUT WLF WSM YEM ZAF ZMB ZWE
    """.split()
)
PASSPORT_NUMBER_RE = re.compile(r"^[A-Z0-9]{1,20}$")


def validate_passport_number(value: str) -> None:
    """A passport number as printed: capital letters A-Z and digits (ICAO Doc 9303), at most 20."""
    if not PASSPORT_NUMBER_RE.match(value or ""):
        raise ValidationError(
            _("A passport number is capital letters A-Z and digits, without spaces (like AA1234567)."),
            code="passport_number_format",
        )


def validate_country_alpha3(value: str) -> None:
    if value not in ISO_3166_ALPHA3:
        raise ValidationError(
            _("Enter the passport's country as its three-letter code (like GBR, USA, MMR)."),
            code="country_alpha3",
        )
