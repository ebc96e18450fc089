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


class MppsOperation(models.TextChoices):
    N_CREATE = "N-CREATE", _("N-CREATE (exam started)")
    N_SET = "N-SET", _("N-SET (exam updated, completed or discontinued)")


class MppsRefusal(models.Model):
    """An MPPS request the server refused (wrong station, order not on the worklist, another patient,
    a step created by another AE...): logged, answered with its DIMSE status, and shown on the order page
    so the front desk sees a scanner that tried to act on an exam it should not."""

    order = models.ForeignKey(
        Order,
        # The refusal stays as a record of the attempt even if the order goes; its reason names it.
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="mpps_refusals",
        verbose_name=_("order"),
    )
    operation = models.CharField(_("operation"), max_length=8, choices=MppsOperation.choices)
    sop_instance_uid = models.CharField(_("SOP instance UID"), max_length=64, blank=True)
    calling_ae = models.CharField(_("calling AE title"), max_length=16, blank=True)
    address = models.CharField(_("calling address"), max_length=45, blank=True)
    status = models.PositiveIntegerField(_("DIMSE status"))
    reason = models.CharField(_("reason"), max_length=200)
    created_at = models.DateTimeField(_("refused at"), auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-pk"]
        verbose_name = _("refused MPPS request")
        verbose_name_plural = _("refused MPPS requests")

    def __str__(self) -> str:
        return f"{self.operation} from {self.calling_ae or '?'} refused (0x{self.status:04X}): {self.reason}"

    @property
    def status_hex(self) -> str:
        return f"0x{self.status:04X}"
