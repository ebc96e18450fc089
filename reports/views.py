"""The Reports page (the admin and the department lead): four charts of the department's numbers, each
with its CSV. The numbers come from reports.selectors, counted in the database."""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.text import format_lazy
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_GET

from ris.dates import date_format
from scheduling.models import Modality, Weekday
from scheduling.roles import ADMIN, DEPARTMENT_LEAD, require_role

from . import charts, selectors
from .forms import ReportForm
from .selectors import OUTCOMES, WEEKDAYS, Filters

OUTCOME_LABELS = {
    "completed": gettext_lazy("Completed"),
    "cancelled": gettext_lazy("Cancelled"),
    "no_show": gettext_lazy("No show"),
    "open": gettext_lazy("Not done yet"),
}
OUTCOME_COLOURS = dict(zip(OUTCOMES, charts.PALETTE, strict=False))


def _modality(code: str) -> str:
    try:
        return str(Modality(code).label)
    except ValueError:
        return code


def _band(low: int, high: int | None) -> str:
    if high is None:
        return _("%(low)s days or more") % {"low": low}
    if high - low == 1:
        return _("under a day") if low == 0 else _("%(low)s days") % {"low": low}
    return _("%(low)s-%(high)s days") % {"low": low, "high": high - 1}


def _round(value: float | int | None, digits: int = 1) -> float | int | str:
    if value is None:
        return ""
    return round(value, digits) if isinstance(value, float) else value


# --- the charts ----------------------------------------------------------------------------------


def daily_chart(data: selectors.DailyOutcomes):
    labels = [f"{day.day}/{day.month}" for day in data.days]
    series = [charts.Series(str(OUTCOME_LABELS[o]), data.counts[o], OUTCOME_COLOURS[o]) for o in OUTCOMES]
    totals = data.totals
    desc = _(
        "%(days)s days: %(completed)s completed, %(cancelled)s cancelled, %(no_show)s no-shows, "
        "%(open)s not done yet."
    ) % {"days": len(data.days), **totals}
    return charts.stacked_columns(
        "chart-daily",
        title=_("Exams per day by outcome"),
        desc=desc,
        labels=labels,
        series=series,
        tick_every=max(1, -(-len(labels) // 15)),
    )


def utilisation_chart(data: selectors.Utilisation):
    hours = data.hours
    rows = [str(Weekday(w).label) for w in WEEKDAYS]
    shares = [[data.share(w, h) for h in hours] for w in WEEKDAYS]
    total = data.total_booked / data.total_open if data.total_open else None
    desc = _("Booked minutes as a share of the rooms' opening hours, %(share)s over the range.") % {
        "share": f"{total * 100:.0f}%" if total is not None else "-"
    }
    return charts.heatmap(
        "chart-utilisation",
        title=_("Room utilisation by weekday and hour"),
        desc=desc,
        rows=rows,
        columns=[f"{h:02d}" for h in hours],
        shares=shares,
        closed_label=_("No opening hours"),
        legend_label=_("Share of opening hours booked"),
        outside=[[data.booked[w][h] for h in hours] for w in WEEKDAYS],
        outside_label=_("%(minutes)s minutes booked"),
    )


def waiting_chart(data: selectors.Waiting):
    modalities = list(data.per_modality)
    labels = [_modality(m) for m in modalities]
    series = [
        charts.Series(_("Median"), [data.per_modality[m]["p50"] for m in modalities], charts.PALETTE[0]),
        charts.Series(
            _("90th percentile"), [data.per_modality[m]["p90"] for m in modalities], charts.PALETTE[1]
        ),
    ]
    return charts.horizontal_bars(
        "chart-waiting",
        title=_("Days from booking to exam, per modality"),
        desc=_(
            "The median and the 90th percentile of the days each modality's patients waited for the exam."
        ),
        labels=labels,
        series=series,
        unit=" " + _("d"),
    )


def to_schedule_chart(data: selectors.Waiting):
    labels = [_band(low, high) for (low, high), _n in data.bands]
    series = [charts.Series(_("Orders waiting"), [n for _b, n in data.bands], charts.PALETTE[4])]
    return charts.horizontal_bars(
        "chart-to-schedule",
        title=_("Age of the To schedule list"),
        desc=_("How many requested orders have waited how long to be booked, now."),
        labels=labels,
        series=series,
        counts=True,
    )


def turnaround_chart(data: selectors.Turnaround):
    labels = [room.name for room, _legs in data.per_room]

    def median(legs, leg):
        return round(legs[leg]["p50"], 1) if leg in legs else 0

    series = [
        charts.Series(
            _("Arrival to start"), [median(legs, "wait") for _r, legs in data.per_room], charts.PALETTE[6]
        ),
        charts.Series(
            _("Start to completion"), [median(legs, "exam") for _r, legs in data.per_room], charts.PALETTE[0]
        ),
    ]
    return charts.horizontal_bars(
        "chart-turnaround",
        title=_("Turnaround per room (median minutes)"),
        desc=_(
            "Median minutes from the patient's arrival to the exam's start, and from start to completion."
        ),
        labels=labels,
        series=series,
        stacked=True,
        unit=" " + _("min"),
    )


# --- the CSV downloads ------------------------------------------------------------------------------


def daily_csv(filters: Filters) -> Iterable[list]:
    data = selectors.daily_outcomes(filters)
    yield [_("Day"), *(str(OUTCOME_LABELS[o]) for o in OUTCOMES), _("Total")]
    for day, counts, total in data.rows():
        yield [day.isoformat(), *counts, total]


def utilisation_csv(filters: Filters) -> Iterable[list]:
    data = selectors.utilisation(filters)
    yield [_("Weekday"), _("Hour"), _("Booked minutes"), _("Opening minutes"), _("Share booked (%)")]
    for w in WEEKDAYS:
        for h in selectors.HOURS:
            if data.open[w][h] or data.booked[w][h]:
                share = data.share(w, h)
                yield [Weekday(w).label, f"{h:02d}:00", data.booked[w][h], data.open[w][h],
                       "" if share is None else round(share * 100, 1)]  # fmt: skip


def rooms_csv(filters: Filters) -> Iterable[list]:
    yield [_("Room"), _("Booked minutes"), _("Opening minutes"), _("Share booked (%)")]
    for use in selectors.room_use(filters):
        share = use.share
        yield [use.room.name, use.booked, use.open, "" if share is None else round(share * 100, 1)]


def waiting_csv(filters: Filters) -> Iterable[list]:
    data = selectors.waiting(filters)
    yield [_("Modality"), _("Exams"), _("Median days"), _("90th percentile days")]
    for modality, stats in data.per_modality.items():
        yield [modality, stats["n"], _round(stats["p50"]), _round(stats["p90"])]


def to_schedule_csv(filters: Filters) -> Iterable[list]:
    data = selectors.to_schedule(filters)
    yield [_("Days waiting"), _("Orders waiting")]
    for (low, high), n in data.bands:
        yield [_band(low, high), n]


def turnaround_csv(filters: Filters) -> Iterable[list]:
    data = selectors.turnaround(filters)
    yield [
        _("Room"),
        _("Arrival to start: exams"), _("Arrival to start: median minutes"), _("Arrival to start: 90th percentile"),
        _("Start to completion: exams"), _("Start to completion: median minutes"),
        _("Start to completion: 90th percentile"),
    ]  # fmt: skip
    for room, legs in data.per_room:
        row = [room.name]
        for leg in ("wait", "exam"):
            stats = legs.get(leg, {})
            row += [stats.get("n", 0), _round(stats.get("p50")), _round(stats.get("p90"))]
        yield row


CSV: dict[str, tuple[Callable[[Filters], Iterable[list]], str]] = {
    "daily": (daily_csv, "exams-per-day"),
    "utilisation": (utilisation_csv, "room-utilisation"),
    "rooms": (rooms_csv, "utilisation-per-room"),
    "waiting": (waiting_csv, "waiting-time"),
    "to-schedule": (to_schedule_csv, "to-schedule-age"),
    "turnaround": (turnaround_csv, "turnaround"),
}


# --- views ---------------------------------------------------------------------------------------


@require_GET
@require_role(ADMIN, DEPARTMENT_LEAD)
def report(request: HttpRequest) -> HttpResponse:
    form = ReportForm.for_query(request.GET)
    context: dict[str, object] = {"form": form, "query": request.GET.urlencode()}
    if form.is_valid():
        filters = form.filters
        found = selectors.page(filters)
        daily, use, wait, turn = found.daily, found.utilisation, found.waiting, found.turnaround
        context.update(
            filters=filters,
            range_label=format_lazy("{} – {}", date_format(filters.date_from), date_format(filters.date_to)),
            daily=daily,
            daily_chart=daily_chart(daily),
            outcome_labels=[OUTCOME_LABELS[o] for o in OUTCOMES],
            utilisation=use,
            utilisation_share=(use.total_booked / use.total_open * 100) if use.total_open else None,
            utilisation_chart=utilisation_chart(use),
            rooms=found.rooms,
            waiting=wait,
            waiting_rows=[(_modality(m), stats) for m, stats in wait.per_modality.items()],
            waiting_chart=waiting_chart(wait) if wait.per_modality else None,
            to_schedule_rows=[(_band(low, high), n) for (low, high), n in wait.bands],
            to_schedule_chart=to_schedule_chart(wait),
            turnaround=turn,
            turnaround_chart=turnaround_chart(turn) if turn.per_room else None,
            generated_at=timezone.now(),
        )
    return render(request, "reports/report.html", context, status=200 if form.is_valid() else 400)


@require_GET
@require_role(ADMIN, DEPARTMENT_LEAD)
def report_csv(request: HttpRequest, chart: str) -> HttpResponse:
    if chart not in CSV:
        raise Http404
    form = ReportForm.for_query(request.GET)
    if not form.is_valid():
        errors = "; ".join(f"{form.fields[f].label if f in form.fields else ''}: {' '.join(e)}"
                           for f, e in form.errors.items())  # fmt: skip
        return HttpResponse(errors, status=400, content_type="text/plain; charset=utf-8")
    rows, name = CSV[chart]
    filters = form.filters
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (
        f'attachment; filename="{name}-{filters.date_from:%Y%m%d}-{filters.date_to:%Y%m%d}.csv"'
    )
    # A byte-order mark, so a spreadsheet opening the file reads Thai as UTF-8.
    response.write("\ufeff")
    writer = csv.writer(response)
    writer.writerows(rows(filters))
    return response
