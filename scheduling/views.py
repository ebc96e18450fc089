"""Front-desk pages. Each view loads, validates with a form, calls a service and redirects after POST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib import messages
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import F
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from access_audit.models import AccessAction
from access_audit.selectors import patient_access_log
from access_audit.services import access_record
from mwl_server.selectors import mpps_refusals_for_order
from pacs_link.selectors import order_images_context
from ris.dates import date_format, parse_local_date
from worklist_export.selectors import order_export_state

from . import rules, selectors, services
from .barcode import code128_svg
from .forms import (
    BOOKING_ERROR_FIELDS,
    SLOT_QUERY_FIELDS,
    BookingForm,
    CancelForm,
    NoShowCountsForm,
    OrderDetailsForm,
    OrderFilterForm,
    PatientForm,
    PatientSearchForm,
    RescheduleForm,
    ScheduleForm,
    SlotQueryForm,
    add_service_error,
    ask_confirmation,
    show_edit_conflict,
)
from .models import Order, OrderStatus, Patient
from .roles import FRONT_DESK, TECHNOLOGIST, require_role, user_roles
from .status_actions import order_page_actions
from .validators import validate_calendar_date

ORDERS_PER_PAGE = 25
TO_SCHEDULE_PER_PAGE = 25
TO_CALL_BACK_PER_PAGE = 25
PATIENTS_PER_PAGE = 25
# A clerk narrows the search long before the 40th page; a count and an OFFSET bounded by this stay
# fast at a million patients (selectors.patient_search_first says how the patients are chosen).
PATIENT_LIST_LIMIT = 1000


def _order_for_page(pk: int) -> Order:
    return get_object_or_404(Order.objects.select_related("patient", "procedure", "room", "booked_by"), pk=pk)


def _error_messages(request: HttpRequest, form) -> None:
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        for error in errors:
            messages.error(request, f"{label}: {error}" if label else error)


# --- schedule -----------------------------------------------------------------------------------


# The board's blocks are drawn at this many pixels per minute (a 15-minute slot is 30 px high).
BOARD_PX_PER_MINUTE = 2
# The board asks the server for a fresh copy this often, so clerks see each other's bookings.
BOARD_REFRESH_SECONDS = 20


@require_GET
def schedule(request: HttpRequest) -> HttpResponse:
    """The day board: rooms side by side, exams placed on a time grid. ?partial=1 gives the grid alone."""
    today = timezone.localdate()
    day = today
    if raw := request.GET.get("date"):
        try:
            day = parse_local_date(raw)
            validate_calendar_date(day)
        except ValidationError as error:
            day = today
            messages.warning(request, error.messages[0])
        else:
            if raw != day.isoformat():
                # The date box sends the day as typed (04/12/2569); the board's address, which its
                # refresh, the day links and a bookmark reuse, carries the ISO date.
                return redirect(f"{request.path}?date={day.isoformat()}")
    context = {
        "day": day,
        "today": today,
        "previous_day": day - timedelta(days=1),
        "next_day": day + timedelta(days=1),
        "board": selectors.day_board(day=day),
        "px": BOARD_PX_PER_MINUTE,
        "slot_px": BOARD_PX_PER_MINUTE * settings.RIS_SLOT_MINUTES,
        "refresh_seconds": BOARD_REFRESH_SECONDS,
        "cancel_form": CancelForm(),
        "back": f"{request.path}?date={day.isoformat()}",
    }
    if request.GET.get("partial"):
        return render(request, "scheduling/_board.html", context)
    return render(request, "scheduling/schedule.html", context)


# --- patients -----------------------------------------------------------------------------------


@require_GET
def patient_list(request: HttpRequest) -> HttpResponse:
    form = PatientSearchForm(request.GET)
    if not form.is_valid():
        _error_messages(request, form)
    found = selectors.patient_search_first(
        query=form.cleaned_data.get("q", ""),
        birth_date=form.cleaned_data.get("birth_date"),
        limit=PATIENT_LIST_LIMIT,
    )
    page = Paginator(found.patients, PATIENTS_PER_PAGE).get_page(request.GET.get("page"))
    context = {"form": form, "page": page, "more": found.more, "limit": PATIENT_LIST_LIMIT}
    return render(request, "scheduling/patient_list.html", context)


AUTOCOMPLETE_LIMIT = 10


@require_GET
def patient_autocomplete(request: HttpRequest) -> JsonResponse:
    """Up to 10 patients matching ?q= as {results: [{id, label, url}], more}, for the suggestion lists.

    more: more patients match than are suggested (the ten are then not the first ten by name).
    """
    # Through the search form, as the patient list: it refuses what no name holds (a NUL character,
    # which PostgreSQL cannot even compare) with a message instead of a server error.
    form = PatientSearchForm({"q": request.GET.get("q", "")})
    if not form.is_valid():
        return JsonResponse({"results": [], "errors": form.errors}, status=400)
    query = form.cleaned_data["q"]
    if not query:
        return JsonResponse({"results": []})
    found = selectors.patient_search_first(query=query, limit=AUTOCOMPLETE_LIMIT)
    results = [
        {
            "id": patient.pk,
            "label": " · ".join(
                part
                for part in (
                    patient.display_name,
                    patient.romanized_display_name,
                    patient.mrn,
                    # Found by a national ID or passport, the clerk sees the number they typed.
                    patient.formatted_national_id,
                    patient.passport_number,
                    date_format(patient.birth_date, "SHORT_DATE_FORMAT"),
                )
                if part
            ),
            "url": patient.get_absolute_url(),
        }
        for patient in found.patients
    ]
    return JsonResponse({"results": results, "more": found.more})


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def patient_create(request: HttpRequest) -> HttpResponse:
    form = PatientForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_register(
                confirm_duplicate=form.cleaned_data["confirm_duplicate"],
                user=request.user,
                **form.patient_fields(),
            )
        except services.DuplicatePatientWarning as warning:
            ask_confirmation(form, "confirm_duplicate", warning)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Registered %(patient)s.") % {"patient": patient})
            return redirect(patient)
    return render(request, "scheduling/patient_form.html", {"form": form})


@require_GET
def patient_detail(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient.objects.select_related("merged_into"), pk=pk)
    # The requested orders (no time yet) on top, then the latest first.
    orders = patient.orders.select_related("procedure", "room").order_by(
        F("scheduled_start").desc(nulls_first=True), "-pk"
    )
    context = {"patient": patient, "orders": orders, "history": selectors.record_history(instance=patient)}
    access_record(request=request, action=AccessAction.PATIENT_VIEWED, patient=patient)
    context["access_log"] = patient_access_log(patient=patient, user=request.user)
    return render(request, "scheduling/patient_detail.html", context)


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def patient_update(request: HttpRequest, pk: int) -> HttpResponse:
    patient = get_object_or_404(Patient, pk=pk)
    form = PatientForm(request.POST or None, instance=patient)
    if request.method == "POST" and form.is_valid():
        try:
            patient = services.patient_update(
                patient=patient,
                user=request.user,
                expected_version=form.cleaned_data["version"],
                **form.patient_fields(),
            )
        except services.EditConflict as conflict:
            show_edit_conflict(form, conflict)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Saved %(patient)s.") % {"patient": patient})
            return redirect(patient)
    return render(request, "scheduling/patient_form.html", {"form": form, "patient": patient})


# --- booking ------------------------------------------------------------------------------------


def _slot_query(request: HttpRequest) -> dict[str, str]:
    """What a booking page's address may preset (SLOT_QUERY_FIELDS): never a confirmation, which a
    clerk gives only by ticking it on the page and posting."""
    return {name: request.GET[name] for name in SLOT_QUERY_FIELDS if name in request.GET}


def _say_booked(request: HttpRequest, order: Order) -> None:
    """The clerk's confirmation of a booking, from the booking page or the To schedule list alike."""
    messages.success(
        request,
        _("Booked %(procedure)s for %(patient)s at %(start)s. Accession number %(accession)s.")
        % {
            "procedure": order.procedure.code_meaning,
            "patient": order.patient.display_name,
            "start": date_format(timezone.localtime(order.scheduled_start), "SHORT_DATETIME_FORMAT"),
            "accession": order.accession_number,
        },
    )


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def order_create(request: HttpRequest) -> HttpResponse:
    if request.method == "POST" and "refresh" in request.POST:
        # "Show free times" without JavaScript: the same form with the slots of the chosen room and
        # day, nothing booked. A POST, so the reason and notes never end up in a URL (access logs).
        form = BookingForm.refreshed(request.POST)
    elif request.method == "POST":
        form = BookingForm(request.POST)
        if form.is_valid():
            try:
                order = services.order_book(user=request.user, **form.booking_fields())
            except services.PatientOverlapWarning as warning:
                ask_confirmation(form, "confirm_patient_overlap", warning)
            except ValidationError as error:
                add_service_error(form, error, BOOKING_ERROR_FIELDS)
            else:
                _say_booked(request, order)
                _called_back_on_rebooking(request, order)
                return redirect(order)
    else:
        initial = {"date": timezone.localdate(), **_slot_query(request)}
        form = BookingForm(initial=initial)
    return render(request, "scheduling/order_form.html", {"form": form, "patient": form.chosen_patient})


@require_GET
def slots(request: HttpRequest) -> JsonResponse:
    """Free start times (HH:MM) for ?room=&date=&procedure= (and &order= when rescheduling it)."""
    form = SlotQueryForm(request.GET)
    if not form.is_valid():
        return JsonResponse({"slots": [], "errors": form.errors}, status=400)
    order = form.cleaned_data["order"]
    free = selectors.room_free_slots(
        room=form.cleaned_data["room"],
        day=form.cleaned_data["date"],
        duration_minutes=order.duration_minutes if order else form.cleaned_data["procedure"].default_duration,
        exclude=order,
    )
    return JsonResponse({"slots": [f"{timezone.localtime(s):%H:%M}" for s in free]})


# --- orders -------------------------------------------------------------------------------------


def _render_order(request: HttpRequest, order: Order, cancel_form: CancelForm | None = None) -> HttpResponse:
    context = {
        "order": order,
        "cancel_form": cancel_form or CancelForm(),
        # Only the buttons the order's status and the user's role allow; the actions check the role again.
        "actions": order_page_actions(order=order, roles=user_roles(request.user)),
        "export_state": order_export_state(order=order),
        "history": selectors.record_history(instance=order),
        # MPPS requests the DICOM server refused for this exam (templates/mwl_server/_mpps_refusals.html).
        "mpps_refusals": mpps_refusals_for_order(order=order),
        # The studies the PACS holds for it (templates/pacs_link/_order_images.html).
        **order_images_context(order=order),
    }
    return render(request, "scheduling/order_detail.html", context)


@require_GET
def order_detail(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order_for_page(pk)
    access_record(request=request, action=AccessAction.ORDER_VIEWED, order=order)
    return _render_order(request, order)


@require_GET
def order_slip(request: HttpRequest, pk: int) -> HttpResponse:
    """The appointment slip handed to the patient: when, where, how to prepare, and a barcode for check-in.

    The slip is in the patient's preferred language, whatever the clerk's: the template renders it
    under {% language %}, the page around it (menu, Print) stays in the clerk's.
    """
    order = _order_for_page(pk)
    language = order.patient.preferred_language
    context = {
        "order": order,
        "barcode": mark_safe(code128_svg(order.accession_number)),
        "slip_language": language,
        "instructions": order.procedure.instructions_in(language),
    }
    access_record(request=request, action=AccessAction.SLIP_PRINTED, order=order)
    return render(request, "scheduling/order_slip.html", context)


def _redirect_back(request: HttpRequest, order: Order) -> HttpResponse:
    """Back to where the action was taken (the day board posts ?next=), else to the order."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        # Not redirect(): it takes a target without "/" or "." for a view name, and fails to reverse it.
        return HttpResponseRedirect(target)
    return redirect(order)


def _order_step(request: HttpRequest, pk: int, service: Callable[..., Order], done: str) -> HttpResponse:
    order = get_object_or_404(Order, pk=pk)
    try:
        order = service(order=order, user=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(request, done % {"accession": order.accession_number})
    return _redirect_back(request, order)


@require_POST
@require_role(TECHNOLOGIST)
def order_arrive(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_step(request, pk, services.order_arrive, _("Order %(accession)s: patient arrived."))


@require_POST
@require_role(TECHNOLOGIST)
def order_start(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_step(request, pk, services.order_start, _("Order %(accession)s: exam started."))


@require_POST
@require_role(TECHNOLOGIST)
def order_complete(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_step(request, pk, services.order_complete, _("Order %(accession)s: exam completed."))


@require_POST
@require_role(FRONT_DESK)
def order_no_show(request: HttpRequest, pk: int) -> HttpResponse:
    return _order_step(
        request,
        pk,
        services.order_no_show,
        _("Order %(accession)s: marked a no-show, on the To call back list."),
    )


@require_POST
@require_role(FRONT_DESK)
def order_cancel(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order_for_page(pk)
    form = CancelForm(request.POST, order=order)
    if form.is_valid():
        try:
            order = services.order_cancel(order=order, reason=form.cleaned_data["reason"], user=request.user)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(
                request, _("Order %(accession)s cancelled.") % {"accession": order.accession_number}
            )
            return _redirect_back(request, order)
    return _render_order(request, order, cancel_form=form)


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def order_reschedule(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order_for_page(pk)
    if order.status in services.SCHEDULABLE:
        # Nothing to move yet: the clerk is sent to book it, with the rule's words for why.
        for problem in rules.check_reschedulable(order):
            messages.warning(request, problem.message)
        return redirect("scheduling:order_schedule", pk=order.pk)
    if request.method == "POST" and "refresh" in request.POST:
        # "Show free times" without JavaScript, as on the booking page.
        form = RescheduleForm.refreshed(request.POST, order=order)
    elif request.method == "POST":
        form = RescheduleForm(request.POST, order=order)
        if form.is_valid():
            try:
                order = services.order_reschedule(
                    order=order,
                    start=form.cleaned_data["start"],
                    room=form.cleaned_data["room"],
                    confirm_patient_overlap=form.cleaned_data["confirm_patient_overlap"],
                    user=request.user,
                )
            except services.PatientOverlapWarning as warning:
                ask_confirmation(form, "confirm_patient_overlap", warning)
            except ValidationError as error:
                add_service_error(form, error, BOOKING_ERROR_FIELDS)
            else:
                messages.success(
                    request,
                    _("Order %(accession)s moved to %(room)s at %(start)s.")
                    % {
                        "accession": order.accession_number,
                        "room": order.room.name,
                        "start": date_format(
                            timezone.localtime(order.scheduled_start), "SHORT_DATETIME_FORMAT"
                        ),
                    },
                )
                return redirect(order)
    else:
        initial = {
            "room": order.room,
            "date": timezone.localdate(order.scheduled_start),
            **_slot_query(request),
        }
        form = RescheduleForm(initial=initial, order=order)
    return render(request, "scheduling/order_reschedule.html", {"form": form, "order": order})


def _called_back_on_rebooking(request: HttpRequest, order: Order) -> None:
    """A booking made from the To call back list's Rebook (?rebook=<the no-show>) calls that no-show back,
    so it leaves the list; only the same patient's no-show, should the clerk have changed the patient."""
    pk = request.GET.get("rebook", "")
    no_show = (
        Order.objects.filter(pk=pk, status=OrderStatus.NO_SHOW, patient=order.patient).first()
        if pk.isdigit()
        else None
    )
    if no_show is not None:
        services.order_called_back(order=no_show, user=request.user)


@require_GET
@require_role(FRONT_DESK)  # the front desk's list: it shows the patients' phone numbers
def to_call_back(request: HttpRequest) -> HttpResponse:
    """The no-shows to call back and book again, latest first; and how many no-shows each room had a day."""
    page = selectors.orders_to_call_back(after=request.GET.get("after", ""), limit=TO_CALL_BACK_PER_PAGE)
    form = NoShowCountsForm.for_query(request.GET)
    counts = None
    if form.is_valid():
        counts = selectors.no_show_counts(
            date_from=form.cleaned_data["date_from"], date_to=form.cleaned_data["date_to"]
        )
    else:
        _error_messages(request, form)
    context = {"page": page, "form": form, "counts": counts, "first_page": not request.GET.get("after")}
    return render(request, "scheduling/to_call_back.html", context)


@require_POST
@require_role(FRONT_DESK)
def order_called_back(request: HttpRequest, pk: int) -> HttpResponse:
    """The patient of a no-show was called (and will not be booked again now): off the To call back list."""
    order = get_object_or_404(Order, pk=pk)
    try:
        order = services.order_called_back(order=order, user=request.user)
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
    else:
        messages.success(
            request, _("Order %(accession)s: called back.") % {"accession": order.accession_number}
        )
    return redirect("scheduling:to_call_back")


@require_GET
def to_schedule(request: HttpRequest) -> HttpResponse:
    """The requested orders waiting to be booked (from the HIS, the API), most urgent and oldest first."""
    page = Paginator(selectors.orders_to_schedule(), TO_SCHEDULE_PER_PAGE).get_page(request.GET.get("page"))
    return render(request, "scheduling/to_schedule.html", {"page": page, "now": timezone.now()})


def _schedule_initial(order: Order) -> dict[str, object]:
    """What the booking of a requested order opens on: the day asked for (today when none was, or it has
    passed), at the time asked for when it is free, in the first room that does the procedure."""
    initial: dict[str, object] = {"date": timezone.localdate()}
    if order.requested_start is not None and order.requested_start > timezone.now():
        requested = timezone.localtime(order.requested_start)
        initial.update(date=requested.date(), slot=f"{requested:%H:%M}")
    initial["room"] = services.rooms_for(order.procedure).first()
    return initial


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def order_schedule(request: HttpRequest, pk: int) -> HttpResponse:
    """Book a requested order from the offered free slots: what booking does, and the HIS is told."""
    order = _order_for_page(pk)
    if order.status not in services.SCHEDULABLE:
        for problem in rules.check_schedulable(order):
            messages.warning(request, problem.message)
        return redirect(order)
    if request.method == "POST" and "refresh" in request.POST:
        # "Show free times" without JavaScript, as on the booking page.
        form = ScheduleForm.refreshed(request.POST, order=order)
    elif request.method == "POST":
        form = ScheduleForm(request.POST, order=order)
        if form.is_valid():
            try:
                order = services.order_schedule(
                    order=order,
                    room=form.cleaned_data["room"],
                    start=form.cleaned_data["start"],
                    confirm_patient_overlap=form.cleaned_data["confirm_patient_overlap"],
                    user=request.user,
                )
            except services.PatientOverlapWarning as warning:
                ask_confirmation(form, "confirm_patient_overlap", warning)
            except ValidationError as error:
                add_service_error(form, error, BOOKING_ERROR_FIELDS)
            else:
                _say_booked(request, order)
                return redirect(order)
    else:
        form = ScheduleForm(initial={**_schedule_initial(order), **_slot_query(request)}, order=order)
    return render(request, "scheduling/order_schedule.html", {"form": form, "order": order})


@require_http_methods(["GET", "POST"])
@require_role(FRONT_DESK)
def order_update(request: HttpRequest, pk: int) -> HttpResponse:
    order = _order_for_page(pk)
    form = OrderDetailsForm(request.POST or None, instance=order)
    if request.method == "POST" and form.is_valid():
        try:
            order = services.order_update_details(
                order=order,
                user=request.user,
                expected_version=form.cleaned_data["version"],
                **form.detail_fields(),
            )
        except services.EditConflict as conflict:
            show_edit_conflict(form, conflict)
        except ValidationError as error:
            add_service_error(form, error)
        else:
            messages.success(request, _("Order %(accession)s saved.") % {"accession": order.accession_number})
            return redirect(order)
    return render(request, "scheduling/order_update.html", {"form": form, "order": order})


@require_GET
def order_list(request: HttpRequest) -> HttpResponse:
    form = OrderFilterForm(request.GET)
    if not form.is_valid():
        _error_messages(request, form)
    data = form.cleaned_data  # only the valid filters: an invalid one is reported and ignored
    date_from, date_to = selectors.order_list_window(
        date_from=data.get("date_from"), date_to=data.get("date_to")
    )
    orders = selectors.order_list(
        date_from=date_from,
        date_to=date_to,
        status=data.get("status", ""),
        modality=data.get("modality", ""),
        room=data.get("room"),
        descending=data.get("sort") == "-start",
    )
    page = selectors.OrderListPaginator(orders, ORDERS_PER_PAGE).get_page(request.GET.get("page"))
    context = {
        "form": form,
        "page": page,
        "date_from": date_from,
        "date_to": date_to,
        "default_window": not (data.get("date_from") or data.get("date_to")),
        "default_days": selectors.ORDER_LIST_DEFAULT_DAYS,
        "count_capped": page.paginator.count >= selectors.ORDER_LIST_COUNT_CAP,
    }
    return render(request, "scheduling/order_list.html", context)
