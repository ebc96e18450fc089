"""The PACS pages: the Unmatched studies list and its resolution, the image page and the images it loads.

Who: the front desk and Admin resolve unmatched studies; they and the technologists view images. Each
view checks the role itself; LoginRequiredMiddleware has sent anonymous visitors to the login page first.

What the image views serve is only ever an instance of a Series we recorded: the series comes from our
database by its id (404 otherwise) and the instance must be one of that series' instances in the PACS
(404 otherwise), so no address here fetches an arbitrary Orthanc resource. The PACS being down is a
503 with a sentence, never a server error: the order page's thumbnails and the image page say so.
"""

from __future__ import annotations

import math
import re

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from access_audit.models import AccessAction
from access_audit.services import access_record
from scheduling.forms import add_service_error
from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST, require_role

from . import images, selectors, services
from .forms import NotOursForm, PatientOrdersForm, StudyLinkForm
from .models import Series, Study, StudyState, WindowPreset
from .orthanc import PacsNotFound, PacsUnavailable

# Who may look at images, and who may decide where an unmatched study belongs.
VIEWERS = (FRONT_DESK, TECHNOLOGIST, ADMIN)
RESOLVERS = (FRONT_DESK, ADMIN)
THUMBNAIL_SIZE = 128
# A window outside these is a typing slip, not a window (CT values span -1024..3071 HU; MR and PET
# values reach a few hundred thousand at most). Refusing it also bounds the render cache's keys.
WINDOW_LIMIT = 1_000_000
FORMATS = {"png": ("png", "image/png"), "jpg": ("jpeg", "image/jpeg")}


def _cursor(request: HttpRequest, name: str) -> int | None:
    value = request.GET.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


# --- unmatched studies --------------------------------------------------------------------------


@require_GET
@require_role(*RESOLVERS)
def unmatched_list(request: HttpRequest) -> HttpResponse:
    """The studies whose accession matched no order (or a cancelled one), the last received first."""
    page = selectors.unmatched_page(before=_cursor(request, "before"), after=_cursor(request, "after"))
    return render(request, "pacs_link/unmatched_list.html", {"page": page})


def _unmatched_study(pk: int) -> Study:
    return get_object_or_404(Study.objects.prefetch_related("series"), pk=pk, state=StudyState.UNMATCHED)


def _study_to_resolve(pk: int) -> Study:
    """The study a form was posted for, in whatever state: one resolved meanwhile by someone else is
    refused by the service, with a sentence at the field, rather than a bare 404."""
    return get_object_or_404(Study.objects.select_related("order").prefetch_related("series"), pk=pk)


def _render_resolve(
    request: HttpRequest,
    study: Study,
    *,
    link_form: StudyLinkForm | None = None,
    not_ours_form: NotOursForm | None = None,
    status: int = 200,
) -> HttpResponse:
    search = PatientOrdersForm(request.GET or None, initial={"mrn": study.patient_id})
    mrn = search.cleaned_data["mrn"] if search.is_valid() else ""
    candidates = selectors.order_candidates(patient_id=mrn or study.patient_id)
    if link_form is None:
        link_form = StudyLinkForm(candidates=candidates)
    context = {
        "study": study,
        "search": search,
        "searched_mrn": mrn or study.patient_id,
        "candidates": candidates,
        "link_form": link_form,
        "not_ours_form": not_ours_form or NotOursForm(),
    }
    return render(request, "pacs_link/study_resolve.html", context, status=status)


@require_GET
@require_role(*RESOLVERS)
def study_resolve(request: HttpRequest, pk: int) -> HttpResponse:
    """One unmatched study: the orders it may belong to, and the two ways to resolve it."""
    return _render_resolve(request, _unmatched_study(pk))


@require_POST
@require_role(*RESOLVERS)
def study_link(request: HttpRequest, pk: int) -> HttpResponse:
    study = _study_to_resolve(pk)
    mrn = request.GET.get("mrn", "").strip()
    candidates = selectors.order_candidates(patient_id=mrn or study.patient_id)
    form = StudyLinkForm(request.POST, candidates=candidates)
    if form.is_valid():
        order = form.cleaned_data["order"]
        try:
            study = services.study_link(study=study, order=order, user=request.user)
        except ValidationError as error:
            # At the field the clerk used: the typed accession, else the chosen order.
            field = "accession_number" if form.cleaned_data.get("accession_number") else "order"
            add_service_error(form, ValidationError({field: error.messages}))
        else:
            messages.success(
                request,
                _("Study %(study)s linked to order %(accession)s.")
                % {"study": study, "accession": order.accession_number},
            )
            return redirect("pacs_link:unmatched_list")
    return _render_resolve(request, study, link_form=form, status=400)


@require_POST
@require_role(*RESOLVERS)
def study_not_ours(request: HttpRequest, pk: int) -> HttpResponse:
    study = _study_to_resolve(pk)
    form = NotOursForm(request.POST)
    if form.is_valid():
        try:
            study = services.study_mark_not_ours(
                study=study, user=request.user, reason=form.cleaned_data["reason"]
            )
        except ValidationError as error:
            add_service_error(form, ValidationError({"reason": error.messages}))
        else:
            messages.success(request, _("Study %(study)s marked as not ours.") % {"study": study})
            return redirect("pacs_link:unmatched_list")
    return _render_resolve(request, study, not_ours_form=form, status=400)


# --- images -------------------------------------------------------------------------------------


def _series(pk: int) -> Series:
    return get_object_or_404(selectors.series_for_viewer(), pk=pk)


def _pacs_problem(error: PacsUnavailable) -> HttpResponse:
    """The answer of an image request the PACS could not serve: 404 for an image it no longer holds,
    503 when it did not answer; plain text a person can read (the page shows it)."""
    if isinstance(error, PacsNotFound):
        return HttpResponse(str(error), status=404, content_type="text/plain; charset=utf-8")
    text = _("The PACS did not answer: %(error)s") % {"error": error}
    response = HttpResponse(text, status=503, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = "30"
    return response


def _frame_of(request: HttpRequest, series: Series, instance: str) -> tuple[int, int]:
    """(?f=, the frame count) of `instance`, one of `series`' instances in the PACS, else 404; the
    frame from 0, 0 when not given, else 404 when the instance has no such frame."""
    frames = dict(selectors.series_instances(series=series)).get(instance)
    if frames is None:
        raise Http404(_("This series has no such image."))
    raw = request.GET.get("f", "")
    frame = int(raw) if raw.isdigit() else (0 if raw == "" else -1)
    if not 0 <= frame < frames:
        raise Http404(_("This image has no such frame."))
    return frame, frames


def _window(request: HttpRequest) -> tuple[float | None, float | None]:
    """?w=&l= as floats (both or neither); ValueError for anything else."""
    raw_width, raw_level = request.GET.get("w", ""), request.GET.get("l", "")
    if not raw_width and not raw_level:
        return None, None
    width, level = float(raw_width), float(raw_level)
    if not (math.isfinite(width) and math.isfinite(level)):
        raise ValueError("not a number")
    if not 1 <= width <= WINDOW_LIMIT or abs(level) > WINDOW_LIMIT:
        raise ValueError("out of range")
    return width, level


def _preset_name(preset: WindowPreset, language: str) -> str:
    return preset.name_th if language.startswith("th") and preset.name_th else preset.name


def _presets(modality: str) -> list[dict[str, object]]:
    """The active presets for `modality` as the image page's buttons: "Brain 80/40" (width/level, HU)."""
    language = get_language() or ""
    return [
        {"name": _preset_name(preset, language), "width": preset.width, "level": preset.level}
        for preset in WindowPreset.objects.filter(active=True, modality=modality)
    ]


@require_GET
@require_role(*VIEWERS)
def series_viewer(request: HttpRequest, pk: int) -> HttpResponse:
    """The image page: one image of the series (?i=, from 0), its window, and the series to scroll."""
    series = _series(pk)
    context: dict[str, object] = {"series": series, "study": series.study, "order": series.study.order}
    try:
        instance_ids = selectors.series_instance_ids(series=series)
    except PacsNotFound:
        raise Http404(_("The PACS holds no images of this series.")) from None
    except PacsUnavailable as error:
        context["pacs_error"] = str(error)
        return render(request, "pacs_link/series_viewer.html", context, status=503)
    if not instance_ids:
        raise Http404(_("The PACS holds no images of this series."))
    # What the page scrolls: each frame of each instance (selectors.series_images), from 0.
    shown = selectors.series_images(series=series)
    index = _cursor(request, "i") or 0
    index = min(index, len(shown) - 1)
    context.update(
        instance_ids=instance_ids,
        images=shown,
        index=index,
        instance_id=shown[index][0],
        frame=shown[index][1],
        presets=_presets(series.modality),
        other_series=list(series.study.series.all()),
    )
    # One record per page view: the images it then loads (every slice scrolled) are this one read.
    access_record(request=request, action=AccessAction.IMAGES_VIEWED, order=series.study.order)
    return render(request, "pacs_link/series_viewer.html", context)


@require_GET
@require_role(*VIEWERS)
def series_thumbnail(request: HttpRequest, pk: int) -> HttpResponse:
    """A 128-pixel JPEG of the series' middle image in its own window (the order page's thumbnails)."""
    series = _series(pk)
    try:
        shown = selectors.series_images(series=series)
        if not shown:
            raise Http404(_("The PACS holds no images of this series."))
        instance, frame = shown[len(shown) // 2]
        data = images.rendered(instance, size=THUMBNAIL_SIZE, fmt="jpeg", frame=frame)
    except PacsUnavailable as error:
        return _pacs_problem(error)
    response = HttpResponse(data, content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=300"
    return response


@require_GET
@require_role(*VIEWERS)
def instance_image(request: HttpRequest, pk: int, instance: str, ext: str) -> HttpResponse:
    """One image rendered with ?w=&l= (HU for CT; the file's own window without them), PNG or JPEG;
    ?f= the frame of a multi-frame instance (from 0); ?download=1 makes it a file to save."""
    fmt, content_type = FORMATS[ext]
    try:
        width, level = _window(request)
    except ValueError:
        return HttpResponseBadRequest(
            _("The window needs a width of at least 1 and a level, both numbers."),
            content_type="text/plain; charset=utf-8",
        )
    series = _series(pk)
    try:
        frame, frames = _frame_of(request, series, instance)
        data = images.rendered(instance, width=width, level=level, fmt=fmt, frame=frame)
    except PacsUnavailable as error:
        return _pacs_problem(error)
    response = HttpResponse(data, content_type=content_type)
    # The same address always renders the same picture: the browser may keep it while scrolling.
    response["Cache-Control"] = "private, max-age=3600"
    if request.GET.get("download"):
        number = selectors.series_instance_ids(series=series).index(instance) + 1
        window = f"-w{width:g}-l{level:g}" if width is not None else ""
        # The accession comes from the modality: only safe characters go into the header.
        accession = re.sub(r"[^A-Za-z0-9_-]", "_", series.study.accession_number) or "study"
        of_frames = f"f{frame + 1}" if frames > 1 else ""
        name = f"{accession}-s{series.number or 0}-{number}{of_frames}{window}.{ext}"
        response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


@require_GET
@require_role(*VIEWERS)
def instance_info(request: HttpRequest, pk: int, instance: str) -> JsonResponse | HttpResponse:
    """What the viewer needs to know of one image (?f= a frame of a multi-frame instance): size,
    modality, units ("HU" for CT), its own window."""
    series = _series(pk)
    try:
        frame, _frames = _frame_of(request, series, instance)
        info = images.instance_info(instance, frame)
    except PacsUnavailable as error:
        return _pacs_problem(error)
    response = JsonResponse(info)
    response["Cache-Control"] = "private, max-age=3600"
    return response


@require_GET
@require_role(*VIEWERS)
def instance_values(request: HttpRequest, pk: int, instance: str) -> HttpResponse:
    """The image's Modality LUT values (HU for CT) as little-endian int16, row by row, for the value
    under the pointer (?f= a frame of a multi-frame instance); the size is in X-Rows and X-Columns,
    one step is worth info.json's values_scale. A colour image has no such values: 404."""
    series = _series(pk)
    try:
        frame, _frames = _frame_of(request, series, instance)
        rows, columns, data = images.values_int16(instance, frame)
    except PacsUnavailable as error:
        return _pacs_problem(error)
    except ValueError:
        return HttpResponse(
            _("A colour image has no values to read."), status=404, content_type="text/plain; charset=utf-8"
        )
    response = HttpResponse(data, content_type="application/octet-stream")
    response["X-Rows"] = str(rows)
    response["X-Columns"] = str(columns)
    response["Cache-Control"] = "private, max-age=3600"
    return response
