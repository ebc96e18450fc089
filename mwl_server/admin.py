from django.contrib import admin

from .models import PerformedProcedureStep


@admin.register(PerformedProcedureStep)
class PerformedProcedureStepAdmin(admin.ModelAdmin):
    list_display = ("sop_instance_uid", "order", "status", "calling_ae", "created_at", "ended_at")
    list_filter = ("status",)
    search_fields = ("sop_instance_uid", "order__accession_number", "calling_ae")
    raw_id_fields = ("order",)
    readonly_fields = ("created_at", "updated_at")
