"""The PACS link in the admin: the CT window presets a site offers (edited here), and the studies, series
and feed cursors the follower records (read-only: a study is resolved on the Unmatched studies page,
through pacs_link.services, so the order it completes goes through the scheduling services)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from scheduling.admin import EstimatedCountPaginator

from .models import FeedCursor, Series, Study, StudyState, WindowPreset


@admin.register(WindowPreset)
class WindowPresetAdmin(admin.ModelAdmin):
    list_display = ["name", "name_th", "modality", "width", "level", "position", "active"]
    list_editable = ["width", "level", "position", "active"]
    list_filter = ["modality", "active"]
    search_fields = ["name", "name_th"]


class ReadOnlyAdmin(admin.ModelAdmin):
    """What the follower recorded: looked at, never written here."""

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SeriesInline(admin.TabularInline):
    model = Series
    fields = ["number", "modality", "description", "body_part", "instance_count", "viewer_link"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False

    @admin.display(description=_("images"))
    def viewer_link(self, series: Series) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("pacs_link:series_viewer", args=[series.pk]), _("View")
        )

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Study)
class StudyAdmin(ReadOnlyAdmin):
    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_display = [
        "accession_number",
        "patient_id",
        "patient_name",
        "modalities",
        "series_count",
        "instance_count",
        "last_received",
        "state",
        "order",
    ]
    list_filter = ["state", "matched_by", "modalities"]
    list_select_related = ["order"]
    search_fields = ["=accession_number", "=patient_id", "=study_instance_uid"]
    ordering = ["-last_received", "-id"]
    inlines = [SeriesInline]
    fields = [
        "resolve_link",
        "state",
        "unmatched_reason",
        "order",
        "matched_by",
        "resolved_by",
        "resolved_at",
        "accession_number",
        "patient_id",
        "patient_name",
        "study_date",
        "description",
        "modalities",
        "series_count",
        "instance_count",
        "first_received",
        "last_received",
        "stable_at",
        "study_instance_uid",
        "orthanc_id",
        "created_at",
        "updated_at",
    ]
    readonly_fields = fields

    @admin.display(description=_("Unmatched studies page"))
    def resolve_link(self, study: Study) -> str:
        if study.state != StudyState.UNMATCHED:
            return "—"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("pacs_link:study_resolve", args=[study.pk]),
            _("Link it to an order or mark it as not ours"),
        )


@admin.register(FeedCursor)
class FeedCursorAdmin(ReadOnlyAdmin):
    list_display = ["name", "last_seq", "pacs_last_seq", "polled_at", "error_at", "error"]
    fields = ["name", "last_seq", "pacs_last_seq", "polled_at", "error_at", "error"]
    readonly_fields = fields
