"""What the modalities told us: one row per Modality Performed Procedure Step (MPPS) SOP instance."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from scheduling.models import Order


class MppsStatus(models.TextChoices):
    # PerformedProcedureStepStatus (0040,0252) values, PS3.3 C.4.14.
    IN_PROGRESS = "IN PROGRESS", _("In progress")
    COMPLETED = "COMPLETED", _("Completed")
    DISCONTINUED = "DISCONTINUED", _("Discontinued")


class PerformedProcedureStep(models.Model):
    """An MPPS instance a modality created (N-CREATE) and later completed or discontinued (N-SET)."""

    sop_instance_uid = models.CharField(_("SOP instance UID"), max_length=64, unique=True)
    order = models.ForeignKey(
        Order, on_delete=models.PROTECT, related_name="performed_steps", verbose_name=_("order")
    )
    status = models.CharField(_("status"), max_length=16, choices=MppsStatus.choices)
    calling_ae = models.CharField(_("modality AE title"), max_length=16, blank=True)
    discontinue_reason = models.CharField(_("discontinuation reason"), max_length=200, blank=True)
    # A readable summary of the attributes received (ids, times, description), for support staff;
    # the full datasets are not kept.
    attributes = models.JSONField(_("attributes received"), default=dict, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    ended_at = models.DateTimeField(_("ended at"), null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        verbose_name = _("performed procedure step")
        verbose_name_plural = _("performed procedure steps")

    def __str__(self) -> str:
        return f"MPPS {self.sop_instance_uid} ({self.status})"

    @property
    def is_final(self) -> bool:
        return self.status in (MppsStatus.COMPLETED, MppsStatus.DISCONTINUED)
