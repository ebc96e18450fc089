"""Patients, the procedure catalog, rooms (scheduled stations) and orders.

Field lengths follow the DICOM value representations the values end up in (see MWL-NOTES section 2):
SH 16, LO 64, PN 64 per component group, CS 16, AE 16. Validating here means a clerk sees the problem
at the field, not a modality that silently drops the worklist item.
"""

from datetime import date, datetime, timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import get_language, pgettext_lazy
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from . import validators
from .dicom import LATIN1, PN_GROUP_MAX, charset_codec, fits_charset, person_name, unencodable


class Sex(models.TextChoices):
    FEMALE = "F", _("Female")
    MALE = "M", _("Male")
    OTHER = "O", _("Other")


class PregnancyStatus(models.TextChoices):
    # DICOM (0010,21C0) Pregnancy Status, US: 1 not pregnant, 2 possibly, 3 definitely, 4 unknown.
    NOT_PREGNANT = "1", _("Not pregnant")
    POSSIBLY_PREGNANT = "2", _("Possibly pregnant")
    DEFINITELY_PREGNANT = "3", _("Definitely pregnant")
    UNKNOWN = "4", _("Unknown")


class Modality(models.TextChoices):
    CT = "CT", _("CT")
    MR = "MR", _("MR")
    US = "US", _("Ultrasound")
    DX = "DX", _("Digital radiography")
    CR = "CR", _("Computed radiography")
    MG = "MG", _("Mammography")
    RF = "RF", _("Fluoroscopy")
    XA = "XA", _("Angiography")
    NM = "NM", _("Nuclear medicine")
    PT = "PT", _("PET")


class CharacterSet(models.TextChoices):
    UTF8 = "ISO_IR 192", _("Unicode UTF-8 (ISO_IR 192)")
    LATIN1 = "ISO_IR 100", _("Latin-1 (ISO_IR 100)")
    THAI = "ISO_IR 166", _("Thai TIS-620 (ISO_IR 166)")


class Language(models.TextChoices):
    """The languages a patient is spoken to in: the slip and its preparation text (settings.LANGUAGES)."""

    THAI = "th", "ไทย"
    ENGLISH = "en", "English"


# The name prefixes the patient form offers (free text stays possible): the Thai titles of adults and
# of children under 15, then the English ones. They go into the DICOM name prefix component as typed.
NAME_PREFIXES = ("นาย", "นาง", "นางสาว", "เด็กชาย", "เด็กหญิง", "Mr", "Mrs", "Ms", "Miss")


class Patient(models.Model):
    mrn = models.CharField(_("patient ID (MRN)"), max_length=64, validators=[validators.validate_lo_text])
    issuer = models.CharField(
        _("issuer of patient ID"),
        max_length=64,
        default=validators.default_issuer,
        validators=[validators.validate_lo_text],
    )
    family_name = models.CharField(
        _("family name"), max_length=64, validators=[validators.validate_name_part]
    )
    given_name = models.CharField(
        _("given name"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    middle_name = models.CharField(
        _("middle name"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    name_prefix = models.CharField(
        _("prefix"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    name_suffix = models.CharField(
        _("suffix"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    # For stations that only take Latin-1 (ISO_IR 100): a Thai name cannot be written there.
    romanized_family_name = models.CharField(
        _("romanised family name"),
        max_length=64,
        blank=True,
        validators=[validators.validate_name_part, validators.validate_latin1],
    )
    romanized_given_name = models.CharField(
        _("romanised given name"),
        max_length=64,
        blank=True,
        validators=[validators.validate_name_part, validators.validate_latin1],
    )
    romanized_middle_name = models.CharField(
        _("romanised middle name"),
        max_length=64,
        blank=True,
        validators=[validators.validate_name_part, validators.validate_latin1],
    )
    birth_date = models.DateField(_("birth date"), validators=[validators.validate_birth_date])
    sex = models.CharField(_("sex"), max_length=1, choices=Sex.choices, blank=True)
    phone = models.CharField(_("phone"), max_length=32, blank=True)
    address = models.TextField(_("address"), blank=True)
    weight_kg = models.DecimalField(
        _("weight (kg)"),
        max_digits=5,
        decimal_places=1,
        null=True,
        blank=True,
        validators=[validators.validate_weight],
    )
    allergies = models.CharField(
        _("allergies"), max_length=64, blank=True, validators=[validators.validate_lo_text]
    )
    medical_alerts = models.CharField(
        _("medical alerts"), max_length=64, blank=True, validators=[validators.validate_lo_text]
    )
    pregnancy_status = models.CharField(
        _("pregnancy status"), max_length=1, choices=PregnancyStatus.choices, blank=True
    )
    # The Thai national ID (13 digits with a check digit), as the HIS sends it in PID-3 (type NI).
    national_id = models.CharField(
        _("national ID"),
        max_length=13,
        blank=True,
        validators=[validators.validate_thai_national_id],
    )
    # A foreigner's passport: the number is unique only together with the country that issued it.
    # db_default too, so the bulk fills' raw INSERTs (bench, the real-stack scale test) need not name it.
    passport_number = models.CharField(
        _("passport number"),
        max_length=20,
        blank=True,
        default="",
        db_default="",
        validators=[validators.validate_passport_number],
    )
    passport_country = models.CharField(
        _("passport country"),
        max_length=3,
        blank=True,
        default="",
        db_default="",
        validators=[validators.validate_country_alpha3],
        help_text=_("ISO 3166 three-letter code, as in the passport: THA, MMR, GBR, USA."),
    )
    # The slip is printed in this language, whatever the clerk's interface language.
    preferred_language = models.CharField(
        _("preferred language"),
        max_length=2,
        choices=Language.choices,
        default=Language.THAI,
        db_default=Language.THAI,
    )
    # Set when this record was merged into another (HL7 ADT^A40, or an admin's merge): its orders were
    # moved there; the record stays, so its history and the identifiers it was known by are kept.
    merged_into = models.ForeignKey(
        "self",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        editable=False,
        related_name="merged_records",
        verbose_name=_("merged into"),
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # One more at every edit (services.patient_update). An edit form carries the version it was opened
    # at, and the service refuses to save over a change made since: two clerks editing one patient
    # would otherwise lose the first one's changes without a word.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    # Audit trail: every save keeps a copy with who (the logged-in user, or the services' `user`) and when.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["family_name", "given_name"]
        verbose_name = _("patient")
        verbose_name_plural = _("patients")
        constraints = [
            # An MRN identifies a patient only together with the authority that issued it.
            models.UniqueConstraint(fields=["issuer", "mrn"], name="patient_mrn_unique_per_issuer"),
            models.UniqueConstraint(
                fields=["national_id"],
                condition=~Q(national_id="") & Q(merged_into__isnull=True),
                name="patient_national_id_unique",
            ),
            # As the national ID: a merged record keeps the passport it was known by without holding it.
            models.UniqueConstraint(
                fields=["passport_country", "passport_number"],
                condition=~Q(passport_number="") & Q(merged_into__isnull=True),
                name="patient_passport_unique_per_country",
            ),
        ]
        # The search's indexes on PostgreSQL (MRN prefix, pg_trgm over the names) are in migration
        # 0007_patient_search, as SQL: SQLite has no equivalent and must not get them.
        indexes = [
            models.Index(fields=["family_name", "given_name"]),
            models.Index(fields=["birth_date"]),
        ]

    def __str__(self) -> str:
        return f"{self.display_name} ({self.mrn})"

    def get_absolute_url(self) -> str:
        return reverse("scheduling:patient_detail", args=[self.pk])

    def clean(self) -> None:
        # Each part fits 64 characters, but DICOM PN allows 64 for the whole component group
        # family^given^middle^prefix^suffix: a longer name would be refused at export.
        errors = {}
        # A passport number means nothing without its country, and a country alone identifies nobody.
        if self.passport_number and not self.passport_country:
            errors["passport_country"] = ValidationError(
                _("Enter the country that issued the passport."), code="passport_country_missing"
            )
        if self.passport_country and not self.passport_number:
            errors["passport_number"] = ValidationError(
                _("Enter the passport number, or leave the country empty."), code="passport_number_missing"
            )
        if len(self.dicom_name) > PN_GROUP_MAX:
            errors["family_name"] = self._name_too_long(self.dicom_name)
        if len(self.dicom_romanized_name) > PN_GROUP_MAX:
            errors["romanized_family_name"] = self._name_too_long(self.dicom_romanized_name)
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _name_too_long(name: str) -> ValidationError:
        return ValidationError(
            _(
                "The name is too long for the scanners: all its parts together must fit in "
                "%(max)d characters (now %(length)d). Shorten or leave out a part."
            ),
            code="pn_group_length",
            params={"max": PN_GROUP_MAX, "length": len(name)},
        )

    @property
    def formatted_national_id(self) -> str:
        """The national ID as on the card, X-XXXX-XXXXX-XX-X ("" when there is none)."""
        return validators.format_thai_national_id(self.national_id)

    @property
    def dicom_name(self) -> str:
        """The name as a DICOM PN component group: family^given^middle^prefix^suffix."""
        return person_name(
            self.family_name, self.given_name, self.middle_name, self.name_prefix, self.name_suffix
        )

    @property
    def dicom_romanized_name(self) -> str:
        """The romanised group a Latin-1 station gets: prefix and suffix only when they are Latin-1."""
        if not self.has_romanized_name:
            return ""
        extras = [p if fits_charset(p, LATIN1) else "" for p in (self.name_prefix, self.name_suffix)]
        return person_name(
            self.romanized_family_name, self.romanized_given_name, self.romanized_middle_name, *extras
        )

    @property
    def display_name(self) -> str:
        return self.compose_display_name(
            self.name_prefix, self.given_name, self.middle_name, self.family_name, self.name_suffix
        )

    @staticmethod
    def compose_display_name(prefix: str, given: str, middle: str, family: str, suffix: str) -> str:
        """The name as the front desk reads it: "Dr Anna Smith", "สมชาย ใจดี"."""
        return " ".join(p for p in (prefix, given, middle, family, suffix) if p)

    @property
    def romanized_display_name(self) -> str:
        parts = [self.romanized_given_name, self.romanized_middle_name, self.romanized_family_name]
        return " ".join(p for p in parts if p)

    @property
    def has_romanized_name(self) -> bool:
        return bool(self.romanized_family_name)


class Procedure(models.Model):
    code_value = models.CharField(_("code value"), max_length=16, validators=[validators.validate_sh_text])
    coding_scheme = models.CharField(
        _("coding scheme designator"),
        max_length=16,
        default="RIS",
        validators=[validators.validate_sh_text],
    )
    code_meaning = models.CharField(
        _("code meaning"), max_length=64, validators=[validators.validate_lo_text]
    )
    modality = models.CharField(_("modality"), max_length=16, choices=Modality.choices)
    default_duration = models.PositiveIntegerField(
        _("default duration (minutes)"), default=15, validators=[validators.validate_duration]
    )
    body_part = models.CharField(
        _("body part"), max_length=16, blank=True, validators=[validators.validate_cs]
    )
    # What the patient does before the exam, printed on the slip in the patient's language.
    instructions_th = models.TextField(_("patient preparation (Thai)"), blank=True, default="", db_default="")
    instructions_en = models.TextField(
        _("patient preparation (English)"), blank=True, default="", db_default=""
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["modality", "code_meaning"]
        verbose_name = _("procedure")
        verbose_name_plural = _("procedures")
        constraints = [
            models.UniqueConstraint(
                fields=["coding_scheme", "code_value"], name="procedure_code_unique_per_scheme"
            ),
            models.CheckConstraint(condition=Q(default_duration__gt=0), name="procedure_duration_positive"),
        ]

    def __str__(self) -> str:
        # "CT Head without contrast (CTHEAD)", not "CT CT Head ...": most names already start with it.
        prefix = "" if self.code_meaning.upper().startswith(f"{self.modality} ") else f"{self.modality} "
        return f"{prefix}{self.code_meaning} ({self.code_value})"

    def instructions_in(self, language: str) -> str:
        """The preparation text in `language` ("th" or "en"), else in the other one when only that exists.

        A patient is better served by the other language than by a slip that says nothing.
        """
        thai, english = self.instructions_th.strip(), self.instructions_en.strip()
        if language.split("-")[0] == Language.THAI:
            return thai or english
        return english or thai

    @property
    def preparation(self) -> str:
        """The preparation text in the active interface language (the order page shows it to staff)."""
        return self.instructions_in(get_language() or settings.LANGUAGE_CODE)


class Completion(models.TextChoices):
    """What completes a room's exams, so their worklist items go away (Room.completion)."""

    # The modality's MPPS COMPLETED (mwl_server); the study's arrival in the PACS is recorded only.
    MPPS = "mpps", _("MPPS from the modality")
    # The study's arrival in the PACS (pacs_link), for rooms whose modality sends no MPPS (most
    # ultrasound and X-ray rooms, older CTs). An MPPS, if one comes, completes too: whichever is first.
    STUDY = "study", _("Study arrival in the PACS")
    # A person, on the order page: MPPS IN PROGRESS still starts the exam, and a study is still
    # recorded, but neither completes it.
    MANUAL = "manual", _("Manual, by the staff")


class Room(models.Model):
    """A room with one scanner: the DICOM scheduled station its worklist items are addressed to."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    modality = models.CharField(_("modality"), max_length=16, choices=Modality.choices)
    ae_title = models.CharField(
        _("station AE title"),
        max_length=16,
        unique=True,
        validators=[validators.validate_ae_title],
        help_text=_("At most 16 characters: A-Z, 0-9, space and - : @ _"),
    )
    station_name = models.CharField(
        _("station name"), max_length=16, blank=True, validators=[validators.validate_sh_text]
    )
    location = models.CharField(
        _("location"), max_length=16, blank=True, validators=[validators.validate_sh_text]
    )
    worklist_charset = models.CharField(
        _("worklist character set"),
        max_length=16,
        choices=CharacterSet.choices,
        default=CharacterSet.UTF8,
    )
    called_ae_title = models.CharField(
        _("worklist server called AE title"),
        max_length=16,
        blank=True,
        validators=[validators.validate_ae_title],
        help_text=_("Leave empty to use the site's worklist AE title (wlmscpfs layout only)."),
    )
    completion = models.CharField(
        _("exams completed by"),
        max_length=8,
        choices=Completion.choices,
        default=Completion.MPPS,
        help_text=_("Choose study arrival for a modality that sends no MPPS."),
    )
    active = models.BooleanField(_("active"), default=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("room")
        verbose_name_plural = _("rooms")

    def __str__(self) -> str:
        return f"{self.name} ({self.modality})"

    def clean(self) -> None:
        # These two go into every worklist item of the room, in the room's character set: a letter the
        # set cannot hold would fail every export from this room.
        if charset_codec(self.worklist_charset) is None:
            return  # not a choice: the field itself says so
        errors = {}
        for name in ("station_name", "location"):
            bad = unencodable(getattr(self, name), self.worklist_charset)
            if bad:
                errors[name] = ValidationError(
                    _(
                        "The worklist character set %(charset)s cannot hold %(chars)s; use other letters here."
                    ),
                    code="charset",
                    params={"charset": self.get_worklist_charset_display(), "chars": " ".join(bad)},
                )
        if errors:
            raise ValidationError(errors)

    def hours_for(self, weekday: int) -> "OpeningHours | None":
        """The room's opening hours on `weekday` (0 Monday), or None when it is closed that day.

        The one way opening hours are looked up, by the booking rules, the free slots and the day board:
        it reads the room's few rows once (or uses them when prefetched) rather than a query per question.
        """
        for hours in self.opening_hours.all():
            if hours.weekday == weekday:
                return hours
        return None

    def open_span(self, day: date) -> "tuple[datetime, datetime] | None":
        """When the room opens and closes on `day`, as aware datetimes in the clinic's time zone."""
        hours = self.hours_for(day.weekday())
        return None if hours is None else hours.span_on(day)


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class OpeningHours(models.Model):
    room = models.ForeignKey(Room, on_delete=models.CASCADE, related_name="opening_hours")
    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens = models.TimeField(_("opens"))
    closes = models.TimeField(_("closes"))

    class Meta:
        ordering = ["room", "weekday"]
        verbose_name = _("opening hours")
        verbose_name_plural = _("opening hours")
        constraints = [
            models.UniqueConstraint(fields=["room", "weekday"], name="opening_hours_one_per_weekday"),
            models.CheckConstraint(
                condition=Q(opens__lt=models.F("closes")), name="opening_hours_opens_before_closes"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens:%H:%M}-{self.closes:%H:%M}"

    def span_on(self, day: date) -> tuple[datetime, datetime]:
        """Opening and closing on `day` (which falls on this weekday), aware, in the clinic's time zone."""
        tz = timezone.get_current_timezone()
        return (
            timezone.make_aware(datetime.combine(day, self.opens), tz),
            timezone.make_aware(datetime.combine(day, self.closes), tz),
        )


class Priority(models.TextChoices):
    STAT = "STAT", _("STAT")
    HIGH = "HIGH", _("High")
    ROUTINE = "ROUTINE", _("Routine")
    MEDIUM = "MEDIUM", _("Medium")
    LOW = "LOW", _("Low")


class OrderStatus(models.TextChoices):
    # Ordered (by the HIS over HL7, without a time or with no room free then) and waiting on the front
    # desk's "To schedule" list: no room, no time, not on any worklist until a clerk books it.
    REQUESTED = "REQUESTED", _("Requested")
    SCHEDULED = "SCHEDULED", _("Scheduled")
    ARRIVED = "ARRIVED", _("Arrived")
    IN_PROGRESS = "IN_PROGRESS", _("In progress")
    COMPLETED = "COMPLETED", _("Completed")
    CANCELLED = "CANCELLED", _("Cancelled")
    # The patient did not come: final like cancelled, off the worklist, on the "To call back" list.
    NO_SHOW = "NO_SHOW", _("No show")


# The statuses in which an order belongs on a scanner's worklist.
ACTIVE_STATUSES = (OrderStatus.SCHEDULED, OrderStatus.ARRIVED, OrderStatus.IN_PROGRESS)


# No exam lasts longer (the 720 of validators.validate_duration): an order that overlaps [start, end)
# started after start - ORDER_LONGEST. OrderQuerySet.overlapping says so to the database, so its range
# scan on (room, scheduled_start) covers half a day, not every order the room has had since it opened.
ORDER_LONGEST = timedelta(minutes=720)


class OrderQuerySet(models.QuerySet):
    def overlapping(self, start: datetime, end: datetime) -> "OrderQuerySet":
        """Orders holding any part of [start, end): every status but cancelled keeps its time.

        The one overlap rule, used by the booking check (room taken, patient busy) and the free slots.
        Back to back is not an overlap: an exam ending at 09:15 leaves 09:15 free.
        """
        return self.filter(
            scheduled_start__gt=start - ORDER_LONGEST, scheduled_start__lt=end, scheduled_end__gt=start
        ).exclude(status=OrderStatus.CANCELLED)


class AccessionCounter(models.Model):
    """One row per day; incremented under a row lock so concurrent bookings never share a number."""

    day = models.DateField(unique=True)
    last_value = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.day}: {self.last_value}"


class Order(models.Model):
    """One requested procedure with its one scheduled procedure step."""

    accession_number = models.CharField(_("accession number"), max_length=16, editable=False)
    requested_procedure_id = models.CharField(_("requested procedure ID"), max_length=16, editable=False)
    sps_id = models.CharField(_("scheduled procedure step ID"), max_length=16, editable=False)
    study_instance_uid = models.CharField(_("study instance UID"), max_length=64, editable=False)
    patient = models.ForeignKey(Patient, on_delete=models.PROTECT, related_name="orders")
    procedure = models.ForeignKey(Procedure, on_delete=models.PROTECT, related_name="orders")
    # Room and time are empty only while the order is REQUESTED (a constraint below holds it).
    room = models.ForeignKey(Room, on_delete=models.PROTECT, related_name="orders", null=True, blank=True)
    scheduled_start = models.DateTimeField(_("scheduled start"), null=True, blank=True)
    # What the ordering system asked for (HL7 ORC-7/OBR-27/TQ1-7), kept whether or not it was booked then.
    requested_start = models.DateTimeField(_("requested start"), null=True, blank=True, editable=False)
    duration_minutes = models.PositiveIntegerField(
        _("duration (minutes)"), validators=[validators.validate_duration]
    )
    # Stored rather than computed so PostgreSQL can index [start, end) in the exclusion constraint
    # that guards against double booking; always start + duration, set by the services.
    scheduled_end = models.DateTimeField(_("scheduled end"), null=True, editable=False)
    priority = models.CharField(
        _("priority"), max_length=16, choices=Priority.choices, default=Priority.ROUTINE
    )
    referring_physician = models.CharField(
        _("referring physician"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    requesting_physician = models.CharField(
        _("requesting physician"), max_length=64, blank=True, validators=[validators.validate_name_part]
    )
    reason = models.CharField(
        _("reason for exam"), max_length=64, blank=True, validators=[validators.validate_lo_text]
    )
    notes = models.TextField(_("notes"), blank=True)
    # The number the ordering system gave this order (DICOM Placer Order Number / Imaging Service
    # Request, HL7 ORC-2), and whose number it is: an API client's name or an HL7 sending application.
    # Unique per authority, so a client that retries a booking finds its order instead of a second one.
    placer_order_number = models.CharField(
        _("placer order number"), max_length=16, blank=True, validators=[validators.validate_sh_text]
    )
    placer_authority = models.CharField(_("placer"), max_length=64, blank=True, editable=False)
    status = models.CharField(
        _("status"), max_length=16, choices=OrderStatus.choices, default=OrderStatus.SCHEDULED
    )
    cancel_reason = models.CharField(_("cancellation reason"), max_length=200, blank=True)
    # Why the modality stopped the exam (MPPS DISCONTINUED); the order went back to the front desk.
    discontinue_reason = models.CharField(_("discontinuation reason"), max_length=200, blank=True)
    # When the patient arrived, the exam started and it was completed (services.order_transition, in the
    # transaction of the change; the latest start after a discontinuation). The order events hold the
    # same times; these columns let the reports' turnaround be read from the orders alone.
    arrived_at = models.DateTimeField(_("arrived at"), null=True, blank=True, editable=False)
    started_at = models.DateTimeField(_("started at"), null=True, blank=True, editable=False)
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True, editable=False)
    # A no-show waits on the front desk's "To call back" list until someone has called the patient
    # (services.order_called_back, also on rebooking): then it leaves the list, the no-show stays final.
    called_back_at = models.DateTimeField(_("called back at"), null=True, blank=True, editable=False)
    called_back_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="+",
        null=True,
        blank=True,
        editable=False,
        verbose_name=_("called back by"),
    )
    booked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="booked_orders",
        verbose_name=_("booked by"),
    )
    booked_at = models.DateTimeField(_("booked at"), default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)
    # One more at every edit of the details (services.order_update_details), which the details form
    # carries to refuse saving over another clerk's change; see Patient.version.
    version = models.PositiveIntegerField(_("version"), default=1, editable=False)
    # Audit trail, shown on the order page: who booked, moved, changed or cancelled it, and when.
    history = HistoricalRecords(excluded_fields=["updated_at"])

    objects = OrderQuerySet.as_manager()

    class Meta:
        ordering = ["scheduled_start"]
        verbose_name = _("order")
        verbose_name_plural = _("orders")
        constraints = [
            models.UniqueConstraint(fields=["accession_number"], name="order_accession_unique"),
            models.UniqueConstraint(fields=["study_instance_uid"], name="order_study_uid_unique"),
            models.UniqueConstraint(
                fields=["placer_authority", "placer_order_number"],
                condition=~Q(placer_order_number=""),
                name="order_placer_number_unique",
            ),
            models.CheckConstraint(
                condition=Q(scheduled_end__gt=models.F("scheduled_start")),
                name="order_end_after_start",
            ),
            # Only a requested order waits without a room and a time (and stays so when cancelled).
            models.CheckConstraint(
                condition=Q(status__in=[OrderStatus.REQUESTED, OrderStatus.CANCELLED])
                | Q(room__isnull=False, scheduled_start__isnull=False, scheduled_end__isnull=False),
                name="order_scheduled_has_room_and_time",
            ),
            models.CheckConstraint(
                condition=~Q(status=OrderStatus.CANCELLED) | ~Q(cancel_reason=""),
                name="order_cancel_has_reason",
            ),
            # The overlap queries look back ORDER_LONGEST from a slot's start: no order may last longer.
            # On PostgreSQL a constraint of migration 0009 also holds scheduled_end to that bound.
            models.CheckConstraint(
                condition=Q(duration_minutes__gte=1, duration_minutes__lte=720),
                name="order_duration_bounded",
            ),
            # Room overlap is also excluded by a PostgreSQL exclusion constraint added in a migration
            # (order_room_no_overlap); SQLite relies on the locked check in services.order_book.
        ]
        # The order list and the admin sort by (scheduled_start, pk) and filter by a date range, a room or
        # a status: each index ends in the sort, so a page is read in index order, never sorted in memory,
        # and a page's ids come from the index alone (selectors.order_list_page). The room one also
        # serves the overlap checks (OrderQuerySet.overlapping).
        indexes = [
            # With the procedure: the modality filter is read from the index too (selectors.order_list).
            models.Index(fields=["scheduled_start", "id"], include=["procedure"], name="order_start_idx"),
            models.Index(fields=["room", "scheduled_start", "id"], name="order_room_start_idx"),
            models.Index(fields=["status", "scheduled_start", "id"], name="order_status_start_idx"),
            # The reports (reports/selectors.py): a range of days by scheduled start, with every column
            # their aggregations read, so a year's 400,000 orders are an index-only scan, not a visit of
            # each order's row (bench/reports_bench.py). Partial on what the reports' status lists imply
            # and the overlap checks do not, so those keep order_room_start_idx (one room's half day).
            models.Index(
                fields=["scheduled_start"],
                include=[
                    "status",
                    "room",
                    "procedure",
                    "scheduled_end",
                    "booked_at",
                    "arrived_at",
                    "started_at",
                    "completed_at",
                ],
                condition=~Q(status=OrderStatus.REQUESTED),
                name="order_report_idx",
            ),  # fmt: skip  # fmt: skip
            # The "To schedule" list: requested orders, oldest first.
            models.Index(
                fields=["booked_at", "id"],
                condition=Q(status=OrderStatus.REQUESTED),
                name="order_requested_idx",
            ),
            # The "To call back" list: no-shows nobody has called yet, the latest missed exam first.
            models.Index(
                fields=["-scheduled_start", "-id"],
                condition=Q(status=OrderStatus.NO_SHOW, called_back_at__isnull=True),
                name="order_call_back_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.accession_number} {self.procedure.code_meaning}"

    def get_absolute_url(self) -> str:
        return reverse("scheduling:order_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration(self) -> timedelta:
        return timedelta(minutes=self.duration_minutes)


class OrderEventKind(models.TextChoices):
    # Not the order page's "Booked" (at a time, by someone): what happened to the order.
    REQUESTED = "requested", pgettext_lazy("order event", "Requested")
    BOOKED = "booked", pgettext_lazy("order event", "Booked")
    RESCHEDULED = "rescheduled", _("Rescheduled")
    DETAILS_CHANGED = "details_changed", _("Details changed")
    ARRIVED = "arrived", _("Arrived")
    STARTED = "started", _("Started")
    COMPLETED = "completed", _("Completed")
    CANCELLED = "cancelled", _("Cancelled")
    DISCONTINUED = "discontinued", _("Discontinued at modality")
    PATIENT_CHANGED = "patient_changed", _("Patient details changed")
    ROOM_CHANGED = "room_changed", _("Room changed")
    PROCEDURE_CHANGED = "procedure_changed", _("Procedure changed")
    NO_SHOW = "no_show", _("No show")


class OrderEvent(models.Model):
    """One change of an order, written by the scheduling services in the transaction of the change.

    The transactional outbox every consumer follows: the worklist export (triggered by it after
    commit), the API's event feed (read by id), and the HL7 link. Ids are handed out in commit order
    (scheduling.events serialises the insert), so a reader that has seen id N has seen every event
    committed before it, and "what changed since N" misses nothing.
    """

    id = models.BigAutoField(primary_key=True)
    order = models.ForeignKey(Order, on_delete=models.PROTECT, related_name="events")
    kind = models.CharField(_("what changed"), max_length=32, choices=OrderEventKind.choices)
    # The order as the change left it: a consumer that needs no more reads nothing else.
    status = models.CharField(_("status"), max_length=16, choices=OrderStatus.choices)
    version = models.PositiveIntegerField(_("version"))
    at = models.DateTimeField(_("when"), default=timezone.now)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
    )

    class Meta:
        ordering = ["id"]
        verbose_name = _("order event")
        verbose_name_plural = _("order events")
        indexes = [models.Index(fields=["order", "id"], name="order_event_order_idx")]

    def __str__(self) -> str:
        return f"{self.id} {self.kind} order {self.order_id}"
