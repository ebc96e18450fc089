from django.contrib import admin

from .models import WorklistEntry


@admin.register(WorklistEntry)
class WorklistEntryAdmin(admin.ModelAdmin):
    list_display = ("order", "path", "exported_at", "removed_at", "last_error")
    list_select_related = ("order__procedure",)
    search_fields = ("order__accession_number", "path")
    readonly_fields = [f.name for f in WorklistEntry._meta.fields]
