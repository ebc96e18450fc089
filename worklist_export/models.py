"""Export state: one row per order that the worklist export has dealt with."""

from django.db import models
from django.db.models import Q, Value
from django.utils.translation import gettext_lazy as _

from scheduling.models import Order

from .problems import problem_message


class WorklistEntry(models.Model):
    """Where an order's .wl file is and what it holds, or why it could not be written.

    An order is pending (changed but not yet exported) when it has no entry or when the entry was last
    synced before order.updated_at.
    """

    order = models.OneToOneField(Order, on_delete=models.CASCADE, related_name="worklist_entry")
    # Relative to WORKLIST_DIR with / separators; empty when no file should exist (removed or failed).
    path = models.CharField(_("file"), max_length=255, blank=True)
    # sha256 of the dataset bytes written (the file meta is left out: it holds a fresh instance UID).
    content_sha256 = models.CharField(max_length=64, blank=True)
    # sha256 of the values the dataset was built from: reconciliation skips orders whose values
    # and file are unchanged without building a dataset.
    source_sha256 = models.CharField(max_length=64, blank=True)
    file_size = models.PositiveIntegerField(null=True, blank=True)
    # The file's inode, size, mtime and ctime (writer.file_stamp) when this system last wrote or checked
    # it. Reconciliation trusts a file whose stamp still matches without reading it; any write to the
    # file since (edited in place, copied over, restored from a backup) changes the stamp, and the file
    # is then compared and rewritten.
    file_stamp = models.CharField(max_length=100, blank=True)
    exported_at = models.DateTimeField(_("exported at"), null=True, blank=True)
    removed_at = models.DateTimeField(_("removed at"), null=True, blank=True)
    # When the folder last matched the order (written, found unchanged or removed).
    synced_at = models.DateTimeField(_("synced at"), null=True, blank=True)
    # Why the order is not on its worklist, in English: for the logs and the admin, and all that rows
    # from before the codes have. The pages show error_message: the code and its parameters
    # (worklist_export.problems) in the reader's language. The failed entries' index is on this text:
    # every error stores it, with or without a code. The database defaults let the bulk SQL of
    # bench/scale.py and the realstack tests, which name the older columns only, insert entries.
    last_error = models.TextField(_("last error"), blank=True)
    last_error_code = models.CharField(
        _("last error code"), max_length=40, blank=True, default="", db_default=""
    )
    last_error_params = models.JSONField(
        _("last error parameters"), blank=True, default=dict, db_default=Value({}, models.JSONField())
    )
    last_attempt_at = models.DateTimeField(_("last attempt at"), null=True, blank=True)

    class Meta:
        verbose_name = _("worklist entry")
        verbose_name_plural = _("worklist entries")
        # Partial: of two million entries (one per past order) only the few that name a file or hold
        # an error are ever looked for, by reconciliation and the Worklist problems page.
        indexes = [
            models.Index(fields=["path"], condition=~Q(path=""), name="entry_with_file_idx"),
            models.Index(fields=["order"], condition=~Q(last_error=""), name="entry_failed_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.order_id}: {self.path or '(no file)'}"

    @property
    def error_message(self) -> str:
        """last_error in the active language (the reader's): its code and parameters rendered, or the
        stored text for a row without a code."""
        if not self.last_error_code:
            return self.last_error
        return problem_message(self.last_error_code, self.last_error_params, fallback=self.last_error)

    def is_pending_for(self, order: Order) -> bool:
        return self.synced_at is None or self.synced_at < order.updated_at
