"""What the PACS pages read: the unmatched studies, the orders a study may belong to, an order's studies,
and the instances of a series in the order a viewer scrolls them.

Database reads only, except series_instance_ids, which asks Orthanc (the database records series, not
their instances) and caches the answer briefly so that an image page's many image requests cost one
call to the PACS, not one each.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.db.models import F, Prefetch, Q, QuerySet

from scheduling.models import Order, OrderStatus

from . import orthanc
from .models import Series, Study, StudyState

UNMATCHED_PER_PAGE = 50
# A patient has rarely more than a few open orders; a study is linked to one of the latest.
CANDIDATE_ORDERS_LIMIT = 20
# How long an image page's instance list stays cached: long enough for a session of scrolling, short
# enough that a series the PACS is still receiving shows its new images on the next page view.
INSTANCE_LIST_SECONDS = 300


def unmatched_studies_count() -> int:
    """How many studies wait on the Unmatched studies list: a COUNT over the partial index
    study_unmatched_idx, which holds those alone (the navigation's badge)."""
    return Study.objects.filter(state=StudyState.UNMATCHED).count()


@dataclass
class StudyPage:
    studies: list[Study]
    # Cursors for the neighbouring pages (a study id), None at either end.
    older: int | None
    newer: int | None


def _older_than(anchor: Study) -> Q:
    """Studies after `anchor` in the list's order: last received newest first, never-received (NULL)
    first of all, as PostgreSQL's DESC index sorts them; then the higher id first."""
    if anchor.last_received is None:
        return Q(last_received__isnull=True, pk__lt=anchor.pk) | Q(last_received__isnull=False)
    return Q(last_received__lt=anchor.last_received) | Q(last_received=anchor.last_received, pk__lt=anchor.pk)


def _newer_than(anchor: Study) -> Q:
    if anchor.last_received is None:
        return Q(last_received__isnull=True, pk__gt=anchor.pk)
    return (
        Q(last_received__isnull=True)
        | Q(last_received__gt=anchor.last_received)
        | Q(last_received=anchor.last_received, pk__gt=anchor.pk)
    )


def unmatched_page(
    *, before: int | None = None, after: int | None = None, size: int = UNMATCHED_PER_PAGE
) -> StudyPage:
    """One page of the unmatched studies, the last received first, by keyset on (last_received, id).

    The partial index study_unmatched_idx is walked from the cursor and stops after a page; no COUNT,
    as the Interface page's message list (hl7_link.views.message_page). `before`: the page after that
    study (older); `after`: the page just before it (newer).
    """
    unmatched = Study.objects.filter(state=StudyState.UNMATCHED)
    newest_first = [F("last_received").desc(nulls_first=True), F("id").desc()]
    anchor_id = before or after
    anchor = unmatched.filter(pk=anchor_id).only("pk", "last_received").first() if anchor_id else None
    if anchor is not None and after:
        rows = list(
            unmatched.filter(_newer_than(anchor)).order_by(
                F("last_received").asc(nulls_last=True), F("id").asc()
            )[: size + 1]
        )
        more_newer = len(rows) > size
        rows = rows[:size][::-1]
        return StudyPage(rows, older=rows[-1].pk if rows else None, newer=rows[0].pk if more_newer else None)
    if anchor is not None:
        unmatched = unmatched.filter(_older_than(anchor))
    rows = list(unmatched.order_by(*newest_first)[: size + 1])
    older = rows[size - 1].pk if len(rows) > size else None
    rows = rows[:size]
    newer = rows[0].pk if anchor is not None and rows else None
    return StudyPage(rows, older=older, newer=newer)


def order_candidates(*, patient_id: str) -> list[Order]:
    """The orders a study with this PatientID may belong to: those of the patients whose MRN is it (of
    any issuer, merged records included: the study names the ID the modality had), not cancelled, the
    latest first. Through the UPPER(mrn) index (scheduling migration 0007's patient_mrn_prefix)."""
    patient_id = patient_id.strip()
    if not patient_id:
        return []
    return list(
        Order.objects.filter(patient__mrn__iexact=patient_id)
        .exclude(status=OrderStatus.CANCELLED)
        .select_related("patient", "procedure", "room")
        .order_by(F("scheduled_start").desc(nulls_first=True), "-pk")[:CANDIDATE_ORDERS_LIMIT]
    )


def order_studies(*, order: Order) -> list[Study]:
    """The studies the PACS holds for `order`, the first received first, each with its series."""
    return list(
        Study.objects.filter(order=order)
        .prefetch_related(Prefetch("series", queryset=Series.objects.order_by("number", "id")))
        .order_by(F("first_received").asc(nulls_last=True), "id")
    )


def order_images_context(*, order: Order) -> dict[str, object]:
    """What the order page's Images section (templates/pacs_link/_order_images.html) needs: the
    order's studies and whether a PACS is configured. Database only: the thumbnails are separate
    requests, so the order page never waits for the PACS."""
    return {"pacs_studies": order_studies(order=order), "pacs_configured": bool(settings.ORTHANC_URL)}


def series_for_viewer() -> QuerySet[Series]:
    return Series.objects.select_related("study", "study__order", "study__order__patient")


def _instance_number(instance: dict) -> int | None:
    raw = str(instance.get("MainDicomTags", {}).get("InstanceNumber", "")).strip()
    try:
        return int(raw)
    except ValueError:
        return None


def _frames(instance: dict) -> int:
    """The instance's NumberOfFrames (Orthanc keeps it among an instance's main tags): 1 when absent."""
    raw = str(instance.get("MainDicomTags", {}).get("NumberOfFrames", "")).strip()
    try:
        return max(1, int(raw))
    except ValueError:
        return 1


def series_instances(*, series: Series) -> list[tuple[str, int]]:
    """The Orthanc ids of the series' instances with their frame counts, by InstanceNumber (those
    without one last, then by id, so the order is stable). Cached for INSTANCE_LIST_SECONDS. Raises
    orthanc.PacsUnavailable."""
    key = f"pacs:series-instances:v2:{series.orthanc_id}"  # v2: with the frame counts
    found = cache.get(key)
    if found is None:
        with orthanc.client() as pacs:
            instances = pacs.series_instances(series.orthanc_id)
        instances.sort(
            key=lambda item: (_instance_number(item) is None, _instance_number(item) or 0, item["ID"])
        )
        found = [(str(item["ID"]), _frames(item)) for item in instances]
        cache.set(key, found, INSTANCE_LIST_SECONDS)
    return found


def series_instance_ids(*, series: Series) -> list[str]:
    """The Orthanc ids of the series' instances, in series_instances' order."""
    return [instance for instance, _frames in series_instances(series=series)]


def series_images(*, series: Series) -> list[tuple[str, int]]:
    """The series' images as the image page scrolls them: (instance id, frame) for each frame of each
    instance in turn, so a multi-frame instance (an enhanced CT or MR, an ultrasound loop) is as many
    images as it has frames, and a series of single-frame instances is one image per instance."""
    return [
        (instance, frame) for instance, frames in series_instances(series=series) for frame in range(frames)
    ]
