"""The PACS link: the studies Orthanc received, matched to our orders, and how their images are shown.

The follower (pacs_link.follow) reads Orthanc's /changes feed from a stored cursor (FeedCursor) and, for
each study that became stable, records a Study with its Series and matches it to an order by
AccessionNumber, then StudyInstanceUID. A matched study completes its order when the order's room is set
to complete on study arrival (scheduling.Room.completion), so its worklist item goes away. A study that
matches no order (or only a cancelled one) waits on the Unmatched studies list, where the front desk links
it to an order or marks it as not ours.

The images themselves stay in the PACS: pages fetch an instance from Orthanc and render it here with a
window (pacs_link.rendering); WindowPreset holds the CT windows a site offers, in Hounsfield units.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from scheduling.models import Order


class FeedCursor(models.Model):
    """Where the follower is in a PACS's /changes feed: the last change it applied (Orthanc's Seq).

    One row per PACS (`name`, "orthanc" for ORTHANC_URL). Saved in the transaction that applied the
    change, so a follower stopped at any moment resumes without missing or repeating a study.
    """

    name = models.CharField(_("PACS"), max_length=64, unique=True)
    last_seq = models.BigIntegerField(_("last change applied"), default=0)
    # Orthanc's own database identity would be better, but 1.10 exposes none: the feed's Last seen at
    # the previous poll tells a PACS whose database was replaced (its Last falls below our cursor).
    pacs_last_seq = models.BigIntegerField(_("PACS's last change at the previous poll"), default=0)
    polled_at = models.DateTimeField(_("polled"), null=True, blank=True)
    error = models.TextField(_("last error"), blank=True)
    error_at = models.DateTimeField(_("failing since"), null=True, blank=True)

    class Meta:
        verbose_name = _("PACS feed cursor")
        verbose_name_plural = _("PACS feed cursors")

    def __str__(self) -> str:
        return f"{self.name} @ {self.last_seq}"


class StudyState(models.TextChoices):
    MATCHED = "matched", _("Matched to an order")
    UNMATCHED = "unmatched", _("Unmatched")
    NOT_OURS = "not_ours", _("Not ours")


class MatchedBy(models.TextChoices):
    ACCESSION = "accession", _("Accession number")
    STUDY_UID = "study_uid", _("Study instance UID")
    CLERK = "clerk", _("Linked by the front desk")


class Study(models.Model):
    """A study the PACS holds, as the follower last read it, and the order it belongs to."""

    orthanc_id = models.CharField(_("Orthanc ID"), max_length=64, unique=True)
    study_instance_uid = models.CharField(_("study instance UID"), max_length=64, unique=True)
    accession_number = models.CharField(_("accession number"), max_length=64, blank=True, db_index=True)
    patient_id = models.CharField(_("patient ID in the study"), max_length=64, blank=True)
    patient_name = models.CharField(_("patient name in the study"), max_length=324, blank=True)
    study_date = models.DateField(_("study date"), null=True, blank=True)
    description = models.CharField(_("study description"), max_length=64, blank=True)
    modalities = models.CharField(_("modalities"), max_length=64, blank=True)
    series_count = models.PositiveIntegerField(_("series"), default=0)
    instance_count = models.PositiveIntegerField(_("images"), default=0)
    first_received = models.DateTimeField(_("first image received"), null=True, blank=True)
    last_received = models.DateTimeField(_("last image received"), null=True, blank=True)
    stable_at = models.DateTimeField(_("stable in the PACS"), null=True, blank=True)

    order = models.ForeignKey(
        Order,
        verbose_name=_("order"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="studies",
    )
    state = models.CharField(_("state"), max_length=16, choices=StudyState.choices)
    matched_by = models.CharField(_("matched by"), max_length=16, choices=MatchedBy.choices, blank=True)
    # Why an unmatched study did not match (no order has the accession, the order was cancelled...).
    unmatched_reason = models.CharField(_("why unmatched"), max_length=200, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        verbose_name=_("resolved by"),
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
    )
    resolved_at = models.DateTimeField(_("resolved"), null=True, blank=True)
    created_at = models.DateTimeField(_("first seen"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated"), auto_now=True)

    class Meta:
        verbose_name = _("study")
        verbose_name_plural = _("studies")
        constraints = [
            models.CheckConstraint(
                condition=Q(state="matched", order__isnull=False) | ~Q(state="matched"),
                name="study_matched_has_order",
            )
        ]
        indexes = [
            # The Unmatched studies list: newest first, only the few waiting.
            models.Index(
                fields=["-last_received", "-id"],
                name="study_unmatched_idx",
                condition=Q(state="unmatched"),
            ),
            # The follower's sweep of studies still arriving (NewStudy seen, not yet stable): a few rows
            # among millions, read every round.
            models.Index(fields=["id"], name="study_arriving_idx", condition=Q(stable_at__isnull=True)),
        ]

    def __str__(self) -> str:
        return self.accession_number or self.study_instance_uid


class Series(models.Model):
    """One series of a study: what the order page lists, with a thumbnail of its middle image."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="series")
    orthanc_id = models.CharField(_("Orthanc ID"), max_length=64, unique=True)
    series_instance_uid = models.CharField(_("series instance UID"), max_length=64)
    number = models.IntegerField(_("series number"), null=True, blank=True)
    modality = models.CharField(_("modality"), max_length=16, blank=True)
    description = models.CharField(_("series description"), max_length=64, blank=True)
    body_part = models.CharField(_("body part"), max_length=16, blank=True)
    instance_count = models.PositiveIntegerField(_("images"), default=0)

    class Meta:
        ordering = ["number", "id"]
        verbose_name = _("series")
        verbose_name_plural = _("series")

    def __str__(self) -> str:
        return f"{self.number or ''} {self.description or self.modality}".strip()


class WindowPreset(models.Model):
    """A CT window the image page offers: width and level (centre) in Hounsfield units.

    The VOI LUT linear function of DICOM PS3.3 C.11.2.1.2 with Window Width = `width` and Window Center
    = `level`. Sites edit, add and reorder them in the admin.
    """

    name = models.CharField(_("name"), max_length=64, unique=True)
    name_th = models.CharField(_("name in Thai"), max_length=64, blank=True)
    modality = models.CharField(_("modality"), max_length=16, default="CT")
    width = models.PositiveIntegerField(_("width (HU)"))
    level = models.IntegerField(_("level (HU)"))
    position = models.PositiveSmallIntegerField(_("position"), default=0)
    active = models.BooleanField(_("shown"), default=True)

    class Meta:
        ordering = ["modality", "position", "name"]
        verbose_name = _("window preset")
        verbose_name_plural = _("window presets")
        constraints = [models.CheckConstraint(condition=Q(width__gte=1), name="window_width_positive")]

    def __str__(self) -> str:
        return f"{self.name} {self.width}/{self.level}"
