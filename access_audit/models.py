"""Who read which patient's data, when, and how: the reads that the change history (simple-history) does
not see. One row per patient (and order) read; a query answered with several patients gives several rows,
written together."""

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from scheduling.models import Order, Patient


class AccessAction(models.TextChoices):
    PATIENT_VIEWED = "patient_viewed", _("Viewed patient")
    ORDER_VIEWED = "order_viewed", _("Viewed order")
    SLIP_PRINTED = "slip_printed", _("Printed appointment slip")
    WORKLIST_FILE_DOWNLOADED = "wl_downloaded", _("Downloaded .wl file")
    WORKLIST_DUMP_VIEWED = "wl_dump_viewed", _("Viewed .wl dump")
    MODALITY_QUERY = "modality_query", _("Ran a query as a modality")
    STATION_FIND = "station_find", _("DICOM C-FIND by a station")
    # The image page (pacs_link): one event per page view of a series, not per image it then loads.
    IMAGES_VIEWED = "images_viewed", _("Viewed images")


class AccessEvent(models.Model):
    at = models.DateTimeField(_("when"), default=timezone.now)
    action = models.CharField(_("action"), max_length=32, choices=AccessAction.choices)
    # Who: a logged-in user for the web pages; a DICOM station is known only by the AE title it called
    # with and its address. PROTECT, like Order.booked_by: accounts are deactivated, never deleted, and
    # an account's reads must outlive it.
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("user"),
    )
    calling_ae = models.CharField(_("calling AE title"), max_length=16, blank=True)
    address = models.GenericIPAddressField(_("address"), null=True, blank=True)
    # PROTECT rather than SET_NULL: a read whose patient was deleted would no longer say whose data was
    # read. Orders already protect their patient; a patient with reads can be deleted only once the
    # purge has removed them, and a future merge of duplicate patients must move these rows to the
    # patient it keeps (the reads of the duplicate are reads of that person), not lose them.
    patient = models.ForeignKey(
        Patient,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_events",
        verbose_name=_("patient"),
    )
    order = models.ForeignKey(
        Order,
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="access_events",
        verbose_name=_("order"),
    )
    # For queries: the matching keys sent, and how many items came back in all (the same on each row
    # of one query).
    query_summary = models.CharField(_("query"), max_length=255, blank=True)
    item_count = models.PositiveIntegerField(_("items returned"), null=True, blank=True)

    class Meta:
        ordering = ["-at", "-pk"]
        verbose_name = _("access log entry")
        verbose_name_plural = _("access log")
        indexes = [
            # The patient page's "reads of this patient, newest first".
            models.Index(fields=["patient", "-at"], name="access_patient_newest"),
            # The purge: everything older than the retention.
            models.Index(fields=["at"], name="access_at"),
        ]
        constraints = [
            # A read nobody can be held to account for is worth nothing.
            models.CheckConstraint(
                condition=Q(user__isnull=False) | ~Q(calling_ae=""),
                name="access_has_who",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.who} {self.get_action_display()}"

    @property
    def who(self) -> str:
        if self.user_id is not None:
            return self.user.get_username()
        return f"{self.calling_ae} ({self.address})" if self.address else self.calling_ae
