from django.contrib import admin

from .models import MppsRefusal, PerformedProcedureStep


@admin.register(PerformedProcedureStep)
class PerformedProcedureStepAdmin(admin.ModelAdmin):
    list_display = ("sop_instance_uid", "order", "status", "calling_ae", "created_at", "ended_at")
    list_filter = ("status",)
    search_fields = ("sop_instance_uid", "order__accession_number", "calling_ae")
    raw_id_fields = ("order",)
    readonly_fields = ("created_at", "updated_at")


@admin.register(MppsRefusal)
class MppsRefusalAdmin(admin.ModelAdmin):
    list_display = ("created_at", "operation", "calling_ae", "address", "status_hex", "order", "reason")
    list_filter = ("operation", "calling_ae")
    search_fields = ("order__accession_number", "calling_ae", "address", "sop_instance_uid")
    raw_id_fields = ("order",)

    def has_add_permission(self, request) -> bool:
        return False  # written by the DICOM server only

    def has_change_permission(self, request, obj=None) -> bool:
        return False
