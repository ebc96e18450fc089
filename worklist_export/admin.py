from django.contrib import admin

from .models import WorklistEntry


@admin.register(WorklistEntry)
class WorklistEntryAdmin(admin.ModelAdmin):
    """One entry per order ever exported: two million after five years. The changelist neither counts
    them all (show_full_result_count) nor searches with a wildcard or UPPER(): the accession number,
    which also names the file, is matched exactly, as typed, on its unique index."""

    list_display = ("order", "path", "exported_at", "removed_at", "last_error_code", "last_error")
    list_select_related = ("order__procedure",)
    search_fields = ("order__accession_number__exact",)
    show_full_result_count = False
    readonly_fields = [f.name for f in WorklistEntry._meta.fields]
    raw_id_fields = ("order",)
