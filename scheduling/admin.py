"""Admin for the catalog, rooms, patients and orders.

Orders, patients, rooms and procedures are written through the services, as from the front desk: an
admin edit that double-books a room is refused at the field and saves nothing, and every change reaches
the worklist. A requested order (from the hospital system, no room or time yet) is booked here by
giving it both, through the service the front desk's To schedule list uses.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import SEARCH_VAR
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import AbstractBaseUser, Group, User
from django.core.exceptions import PermissionDenied
from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import Max, Min, Q, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import number_format
from django.utils.functional import cached_property
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from . import rules, selectors, services
from .forms import PATIENT_FIELDS, PatientForm, add_problems, check_edit_conflict, version_field
from .models import AccessionCounter, OpeningHours, Order, OrderStatus, Patient, Procedure, Room
from .roles import ROLES

ORDER_IDENTIFIERS = (
    "accession_number",
    "requested_procedure_id",
    "sps_id",
    "study_instance_uid",
    "scheduled_end",
    "booked_by",
    "booked_at",
    "requested_start",
)
SCHEDULE_FIELDS = ("scheduled_start", "room", "duration_minutes")
BOOKING_FIELDS = (
    "patient",
    "procedure",
    "room",
    "scheduled_start",
    "duration_minutes",
    "priority",
    "referring_physician",
    "requesting_physician",
    "reason",
    "notes",
)


PATIENT_SEARCH_LIMIT = 1000


def patients_not_all_shown(limit: int) -> str:
    return _(
        "More than %(limit)s patients match. The list shows %(limit)s of them: add to the search to "
        "narrow it."
    ) % {"limit": number_format(limit, force_grouping=True)}


@admin.register(Patient)
class PatientAdmin(SimpleHistoryAdmin):
    list_display = (
        "mrn",
        "issuer",
        "family_name",
        "given_name",
        "romanized_family_name",
        "birth_date",
        "sex",
        "national_id",
    )
    # Merged records stay (their history, the identifiers they were known by): this finds them.
    list_filter = ("sex", ("merged_into", admin.EmptyFieldListFilter))
    # Searched as at the front desk, from the indexes (see get_search_results); the fields named here
    # only make the admin show its search box.
    search_fields = ("mrn",)
    search_help_text = _(
        "The MRN or its start, part of a name in Thai or Latin letters, a national ID (or its first "
        "six digits or more) or a passport number."
    )
    # At a million patients, counting the whole table for "N total" under every search costs more
    # than the search; a birth-date hierarchy grouped the whole table by year for its links, and an
    # issuer filter read every row for its list of issuers.
    show_full_result_count = False
    form = PatientForm  # says "MRN already registered" at the field, and what changed meanwhile
    # "version" is the form's hidden field (the version the page was opened at), not the model's: it is
    # excluded from the model fields, which the admin may not list as it is not editable.
    fields = (*PATIENT_FIELDS, "version", "merged_into", "created_at", "updated_at")
    exclude = ("version",)
    # A merge moves orders and marks the record (services.patient_merge, from HL7): never a field edit.
    readonly_fields = ("merged_into", "created_at", "updated_at")

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Patient], search_term: str
    ) -> tuple[QuerySet[Patient], bool]:
        """As the front desk's list: at most PATIENT_SEARCH_LIMIT matches, sorted, and a word if more.

        Counting and sorting the 50,000 patients a common fragment matches took 1.8 s at a million.
        """
        if not search_term.split():
            return queryset, False
        found = selectors.patients_matching(query=search_term, queryset=queryset).order_by()
        ids = list(found.values_list("pk", flat=True)[: PATIENT_SEARCH_LIMIT + 1])
        if len(ids) > PATIENT_SEARCH_LIMIT:
            messages.info(request, patients_not_all_shown(PATIENT_SEARCH_LIMIT))
        return queryset.filter(pk__in=ids[:PATIENT_SEARCH_LIMIT]), False

    def get_ordering(self, request: HttpRequest) -> Any:
        if request.GET.get(SEARCH_VAR, "").split():
            return selectors.patient_name_order_unindexed()  # sorts the found few, see there
        return super().get_ordering(request)

    def get_paginator(self, request: HttpRequest, queryset: QuerySet[Patient], *args: Any, **kwargs: Any):
        if request.GET.get(SEARCH_VAR, "").split():
            # At most PATIENT_SEARCH_LIMIT ids, counted and sliced at once. (EstimatedCountPaginator's
            # second id list beside them made PostgreSQL scan the whole table: 117 ms.)
            return super().get_paginator(request, queryset, *args, **kwargs)
        # Unfiltered, the changelist counted the million patients for every page (110 ms).
        return EstimatedCountPaginator(queryset, *args, **kwargs)

    def save_model(self, request: HttpRequest, obj: Patient, form: forms.ModelForm, change: bool) -> None:
        # The form has already checked every field and the MRN; the admin knows what it is registering.
        values = {name: getattr(obj, name) for name in PATIENT_FIELDS}
        if change:
            services.patient_update(
                patient=obj, user=request.user, expected_version=form.cleaned_data["version"], **values
            )
        else:
            obj.pk = services.patient_register(confirm_duplicate=True, user=request.user, **values).pk


@admin.register(Procedure)
class ProcedureAdmin(admin.ModelAdmin):
    list_display = ("code_meaning", "code_value", "coding_scheme", "modality", "default_duration", "active")
    list_filter = ("modality", "active", "coding_scheme")
    search_fields = ("code_value", "code_meaning", "body_part")

    def save_model(self, request: HttpRequest, obj: Procedure, form: forms.ModelForm, change: bool) -> None:
        services.procedure_save(procedure=obj)


class OpeningHoursInline(admin.TabularInline):
    model = OpeningHours
    extra = 0


@admin.register(Room)
class RoomAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "modality",
        "ae_title",
        "station_name",
        "location",
        "worklist_charset",
        "completion",
        "active",
    )
    # The edit form shows every field, "exams completed by" (Room.completion) among them.
    list_filter = ("modality", "active", "worklist_charset", "completion")
    search_fields = ("name", "ae_title", "station_name", "location")
    inlines = [OpeningHoursInline]

    def save_model(self, request: HttpRequest, obj: Room, form: forms.ModelForm, change: bool) -> None:
        # Through the service: the room's values are in its orders' worklist items.
        services.room_save(room=obj)


class OrderAdminForm(forms.ModelForm):
    """Checks an admin's booking or correction against the booking rules; writes nothing.

    `clean()` runs the same checks as the front desk (rules.py) and puts each problem at its field;
    OrderAdmin.save_model then writes through the services, which check again with the rows locked.
    """

    confirm_patient_overlap = forms.BooleanField(
        label=_("Book anyway if the patient has an overlapping exam"), required=False
    )
    # The order's version when the page was opened: its details are not saved over another change.
    version = version_field()

    class Meta:
        model = Order
        fields = (*BOOKING_FIELDS, "status", "cancel_reason")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial.setdefault("version", self.instance.version)
        if self.instance.pk is None and "duration_minutes" in self.fields:
            self.fields["duration_minutes"].required = False
            self.fields["duration_minutes"].help_text = _("Empty: the procedure's default duration.")
        # The model lets room and time be empty only for an order never booked (requested, or such a
        # request cancelled); a new order and a booked one need both here, and a requested one gets
        # both at once or stays requested.
        unbooked = self.instance.pk is not None and self.instance.scheduled_start is None
        for name in ("room", "scheduled_start"):
            if name not in self.fields:
                continue
            if not unbooked:
                self.fields[name].required = True
            elif self.instance.status == OrderStatus.REQUESTED:
                self.fields[name].help_text = _("Give the room and the start to book this requested order.")

    def _get_validation_exclusions(self) -> set[str]:
        # Status changes are checked by rules.check_transition, whose message ("Give a reason for the
        # cancellation.") beats the model's generic "Constraint ... is violated".
        return {*super()._get_validation_exclusions(), "status"}

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if self.errors:
            return cleaned
        if self.instance.pk is None:
            procedure = cleaned["procedure"]
            problems = rules.check_booking(
                patient=cleaned["patient"],
                procedure=procedure,
                room=cleaned["room"],
                start=cleaned["scheduled_start"],
                duration_minutes=cleaned["duration_minutes"] or procedure.default_duration,
                confirm_patient_overlap=cleaned["confirm_patient_overlap"],
            )
        else:
            problems = self._change_problems(cleaned)
        add_problems(self, problems, {"start": "scheduled_start", "reason": "cancel_reason"})
        return cleaned

    def _change_problems(self, cleaned: dict[str, Any]) -> list[rules.Problem]:
        """The rules of each change the admin made, checked against the order as saved."""
        saved = Order.objects.select_related("patient", "procedure", "room").get(pk=self.instance.pk)
        changed = set(self.changed_data)
        problems: list[rules.Problem] = []
        if changed & set(SCHEDULE_FIELDS) and saved.status == OrderStatus.REQUESTED:
            problems += self._booking_problems(saved, cleaned)
        elif changed & set(SCHEDULE_FIELDS):
            problems += rules.check_reschedule(
                order=saved,
                start=cleaned["scheduled_start"],
                room=cleaned["room"],
                duration_minutes=cleaned["duration_minutes"],
                confirm_patient_overlap=cleaned["confirm_patient_overlap"],
            )
        if changed & set(services.ORDER_DETAIL_FIELDS):
            problems += rules.check_editable(order=saved)
            check_edit_conflict(self, self._changed_details())
        if "status" in changed:
            problems += rules.check_transition(
                order=saved, to=cleaned["status"], reason=cleaned.get("cancel_reason", "")
            )
        return problems

    def _booking_problems(self, saved: Order, cleaned: dict[str, Any]) -> list[rules.Problem]:
        """The booking of a requested order (services.order_schedule): a room and a start, held to the
        rules of a booking (rules.check_schedule, which the service checks again with the room locked)."""
        room, start = cleaned["room"], cleaned["scheduled_start"]
        if room is None or start is None:
            return [
                rules.Problem(
                    "room" if room is None else "start",
                    _("Give the room and the start to book this requested order."),
                    "booking_incomplete",
                )
            ]
        return rules.check_schedule(
            order=saved,
            room=room,
            start=start,
            duration_minutes=cleaned["duration_minutes"],
            confirm_patient_overlap=cleaned["confirm_patient_overlap"],
        )

    def _changed_details(self) -> dict[str, Any]:
        changed = set(self.changed_data)
        return {
            name: self.cleaned_data[name]
            for name in services.ORDER_DETAIL_FIELDS
            if name in changed and name in self.cleaned_data
        }

    def order_write(self, *, user: AbstractBaseUser) -> Order:
        """The checked changes, written through the services (OrderAdmin.save_model calls this)."""
        data = self.cleaned_data
        if self.instance.pk is None:
            return services.order_book(
                user=user,
                start=data["scheduled_start"],
                **{
                    name: data[name]
                    for name in (
                        "patient",
                        "procedure",
                        "room",
                        "duration_minutes",
                        "confirm_patient_overlap",
                        *services.ORDER_DETAIL_FIELDS,
                    )
                },
            )
        changed = set(self.changed_data)
        order = Order.objects.get(pk=self.instance.pk)
        if changed & set(SCHEDULE_FIELDS) and order.status == OrderStatus.REQUESTED:
            order = services.order_schedule(
                order=order,
                user=user,
                room=data["room"],
                start=data["scheduled_start"],
                duration_minutes=data["duration_minutes"],
                confirm_patient_overlap=data["confirm_patient_overlap"],
            )
        elif changed & set(SCHEDULE_FIELDS):
            order = services.order_reschedule(
                order=order,
                user=user,
                start=data["scheduled_start"],
                room=data["room"],
                duration_minutes=data["duration_minutes"],
                confirm_patient_overlap=data["confirm_patient_overlap"],
            )
        details = self._changed_details()
        if details:
            order = services.order_update_details(
                order=order, user=user, expected_version=data["version"], **details
            )
        if "status" in changed:
            order = services.order_transition(
                order=order, user=user, to=data["status"], reason=data.get("cancel_reason", "")
            )
        return order


class EstimatedCountPaginator(Paginator):
    """A paginator that does not count two million rows for every changelist page, nor join every
    row it skips.

    On PostgreSQL the count is the planner's estimate of the filtered query's rows (EXPLAIN, no rows
    read) when that is large, and exact below EXACT_COUNT_BELOW, where counting is cheap and the
    clerk may care whether there are 3 or 4. SQLite, a small clinic's database, always counts.

    A page reads its ids first (the OFFSET walks the ordering index), then those rows with their
    list_select_related joins: ?p=999 joined 99,900 skipped orders to their patients otherwise.
    """

    EXACT_COUNT_BELOW = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connections[queryset.db].vendor == "postgresql":
            plan = json.loads(queryset.order_by().explain(format="json"))
            estimate = int(plan[0]["Plan"]["Plan Rows"])
            if estimate >= self.EXACT_COUNT_BELOW:
                return estimate
        return super().count

    def page(self, number) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        ids = list(self.object_list.values_list("pk", flat=True)[bottom : bottom + self.per_page])
        # By id alone, not under the filters and search again: they were applied to find the ids.
        rows = self.object_list.model._default_manager.filter(pk__in=ids)
        rows.query.select_related = self.object_list.query.select_related
        return Page(rows.order_by(*self.object_list.query.order_by), number, self)


class DateHierarchyQuerySet(QuerySet):
    """The admin's orders, whose date hierarchy lists years and months from the first and last start.

    Django lists them with SELECT DISTINCT date_trunc(...) over every order: 0.66 s at two million
    orders, on every changelist page. MIN and MAX of the whole table are two lookups at the ends of
    the start index; every year and month between them is listed, which a hospital booking every day
    fills anyway. They are the table's, not the search's or the filters' (a year may then show no
    order of a search): over the orders of a search for "Smith" the same MIN and MAX took 0.36 s each.
    Days still come from the orders (one month of them).
    """

    def datetimes(self, field_name: str, kind: str, order: str = "ASC", tzinfo=None, is_dst=None):
        if kind not in ("year", "month"):
            return super().datetimes(field_name, kind, order, tzinfo)
        span = self.model._base_manager.aggregate(first=Min(field_name), last=Max(field_name))
        if span["first"] is None:
            return []
        tz = tzinfo or timezone.get_current_timezone()
        first, last = (timezone.localtime(span[key], tz) for key in ("first", "last"))
        periods, year, month = [], first.year, first.month if kind == "month" else 1
        while (year, month) <= (last.year, last.month if kind == "month" else 1):
            periods.append(datetime(year, month, 1, tzinfo=tz))
            year, month = (year + 1, 1) if kind == "year" or month == 12 else (year, month + 1)
        return periods if order == "ASC" else periods[::-1]


@admin.register(Order)
class OrderAdmin(SimpleHistoryAdmin):
    form = OrderAdminForm
    # Two million orders: no COUNT of the whole table on every page, an estimated one of the filtered
    # rows (EstimatedCountPaginator), and newest first on the (scheduled_start, id) index.
    show_full_result_count = False
    paginator = EstimatedCountPaginator
    ordering = ("-scheduled_start", "-pk")
    list_display = (
        "accession_number",
        "scheduled_start",
        "patient",
        "procedure",
        "room",
        "priority",
        "status",
    )
    list_filter = ("status", "priority", "procedure__modality", "room")
    # The admin shows its search box when there are search fields; get_search_results says what is
    # searched (these two, and the patient search).
    search_fields = ("=accession_number", "=study_instance_uid")
    search_help_text = _(
        "An exact accession number or study instance UID, or the patient's MRN or name as on the "
        "patient search."
    )
    date_hierarchy = "scheduled_start"
    list_select_related = ("patient", "procedure", "room")
    raw_id_fields = ("patient",)
    readonly_fields = ORDER_IDENTIFIERS

    # "version": the form's hidden field (see PatientAdmin), not the model's.
    exclude = ("version",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Order]:
        orders = super().get_queryset(request)
        return DateHierarchyQuerySet(model=orders.model, query=orders.query, using=orders._db)

    def get_changelist_instance(self, request: HttpRequest):
        changelist = super().get_changelist_instance(request)
        drilled = any(key.startswith(f"{self.date_hierarchy}__") for key in request.GET)
        if changelist.query and not drilled:
            # The drill-down's first step is MIN and MAX of the listed orders' starts: over the orders
            # of a search ("Smith": thousands of patients) 0.36 s, at the ends of the index or not.
            # A search lists few enough orders to read without it; chosen dates still apply.
            changelist.date_hierarchy = None
        return changelist

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Order], search_term: str
    ) -> tuple[QuerySet[Order], bool]:
        """An exact accession number or study UID, else the orders of the patients the patient search
        finds (on its MRN and trigram name indexes).

        Not the admin's icontains over joined columns: at two million orders that scanned them all.
        Two queries, not one OR: an OR of an indexed equality with a patient subquery is planned as
        a scan of every order on PostgreSQL.
        """
        term = search_term.strip()
        if not term:
            return queryset, False
        exact = queryset.filter(Q(accession_number__in={term, term.upper()}) | Q(study_instance_uid=term))
        if " " not in term and exact.exists():
            return exact, False
        patients = selectors.patient_search(query=term).order_by().values("pk")
        return queryset.filter(patient__in=patients), False

    def get_fields(self, request: HttpRequest, obj: Order | None = None) -> list[str]:
        booking = [*BOOKING_FIELDS, "confirm_patient_overlap"]
        if obj is None:
            return booking
        return [*booking, "status", "cancel_reason", "version", *ORDER_IDENTIFIERS]

    def get_readonly_fields(self, request: HttpRequest, obj: Order | None = None) -> tuple[str, ...]:
        # No service moves an order to another patient or procedure: cancel and book again instead.
        if obj is None:
            return ()
        return (*ORDER_IDENTIFIERS, "patient", "procedure")

    def save_model(self, request: HttpRequest, obj: Order, form: OrderAdminForm, change: bool) -> None:
        # Through the services, as from the front desk. The admin's transaction is still open: should
        # the locked re-check refuse (someone took the slot since clean()), nothing of the change stays.
        order = form.order_write(user=request.user)
        obj.pk = order.pk
        form.instance = order

    def has_delete_permission(self, request: HttpRequest, obj: Order | None = None) -> bool:
        # Orders are cancelled, never deleted: the worklist and the audit trail must see it.
        return False


@admin.register(AccessionCounter)
class AccessionCounterAdmin(admin.ModelAdmin):
    """Shown for reference only: editing a counter by hand could hand out an accession number twice."""

    list_display = ("day", "last_value")
    list_filter = ("day",)
    search_fields = ("day",)
    date_hierarchy = "day"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AccessionCounter | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AccessionCounter | None = None) -> bool:
        return False


class RoleAwareUserAdmin(UserAdmin):
    """The Admin role manages users and their roles, but only a superuser makes superusers, hands out
    single permissions or touches a superuser's account: otherwise an Admin could make themselves
    superuser with one tick, or reset a superuser's password and log in as them.

    A superuser is invisible to everyone else here: not listed, and their change, password and delete
    pages answer 404 as for an unknown user.

    Nor does an Admin take over anyone else's account or widen their own: they cannot set another
    user's password (a forgotten one is reset by mail, or by a superuser) nor change another user's
    e-mail address (where that mail goes), and on their own account the roles, staff status and active
    flag are read-only (another Admin or a superuser changes those).
    """

    def get_queryset(self, request: HttpRequest):
        users = super().get_queryset(request)
        if request.user.is_superuser:
            return users
        return users.filter(is_superuser=False)

    def has_change_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: User | None = None) -> bool:
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_delete_permission(request, obj)

    def get_readonly_fields(self, request: HttpRequest, obj=None) -> tuple[str, ...]:
        readonly = tuple(super().get_readonly_fields(request, obj))
        if request.user.is_superuser:
            return readonly
        readonly = (*readonly, "is_superuser", "user_permissions")
        if obj is None:
            return readonly
        if obj.pk == request.user.pk:
            return (*readonly, "groups", "is_staff", "is_active")
        return (*readonly, "email")

    def get_fieldsets(self, request: HttpRequest, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if request.user.is_superuser or obj is None or obj.pk == request.user.pk:
            return fieldsets
        # No "Reset password" button on someone else's account (user_change_password refuses it anyway).
        return [
            (name, {**options, "fields": [f for f in options["fields"] if f != "password"]})
            for name, options in fieldsets
        ]

    def user_change_password(self, request: HttpRequest, id: str, form_url: str = "") -> HttpResponse:
        user = self.get_object(request, unquote(id))
        if user is not None and not request.user.is_superuser:
            if user.pk != request.user.pk:
                raise PermissionDenied
            # Their own: the admin's own form, which asks for the current password first, so a session
            # left open at a desk cannot be turned into a new password.
            return HttpResponseRedirect(reverse("admin:password_change"))
        return super().user_change_password(request, id, form_url)

    def formfield_for_manytomany(self, db_field, request: HttpRequest, **kwargs: Any):
        # The groups an Admin hands out are the three roles; a group a superuser made for other
        # purposes (with permissions of its own) is theirs to give.
        if db_field.name == "groups" and not request.user.is_superuser:
            kwargs["queryset"] = Group.objects.filter(name__in=ROLES)
        return super().formfield_for_manytomany(db_field, request, **kwargs)


admin.site.unregister(User)
admin.site.register(User, RoleAwareUserAdmin)
