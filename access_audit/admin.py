"""The access log in the admin: read-only. Rows are written only by the services and removed only by
the purge; a log anyone could edit would prove nothing."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _

from .models import AccessEvent


@admin.register(AccessEvent)
class AccessEventAdmin(admin.ModelAdmin):
    list_display = ("at", "who", "action", "patient", "order", "item_count", "query_summary")
    list_filter = ("action", "at")
    list_select_related = ("user", "patient", "order", "order__procedure")
    # The patient page links here with ?patient__id__exact=<pk>; a filter listing every patient would
    # be far too long, so the lookup is allowed without one (a local foreign key).
    search_fields = ("patient__mrn", "order__accession_number", "user__username", "calling_ae")
    date_hierarchy = "at"
    show_full_result_count = False

    @admin.display(description=_("read by"))
    def who(self, event: AccessEvent) -> str:
        return event.who

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AccessEvent | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AccessEvent | None = None) -> bool:
        return False
