"""The follower of Orthanc's /changes feed: each study that became stable is recorded and matched.

`follow_once` reads the feed from the stored cursor (FeedCursor "orthanc") to its end. For a
StableStudy change it reads the study and its series from the PACS (outside any transaction: slow I/O),
then, in one transaction, upserts the Study and its Series, matches it to an order (which may complete,
pacs_link.services.study_match) and moves the cursor to that change. A follower stopped at any moment
therefore resumes at the first change it had not applied: none is lost, none applied twice. Other
changes are skipped; the cursor moves past them at the end of each page.

Applying a change again is harmless anyway (the upsert is keyed by Orthanc ID and UID, completing a
completed order does nothing), which is what makes a restart from 0 safe when the PACS's feed was
replaced (a new Orthanc database: its Last falls below our cursor).

Times: Orthanc writes every date of its API (a change's Date, LastUpdate, ReceptionDate) in UTC with
one-second resolution (tested with TZ=Asia/Bangkok).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext as _

from . import services
from .models import FeedCursor, Series, Study, StudyState
from .orthanc import Change, Orthanc, PacsNotFound, PacsUnavailable, client

logger = logging.getLogger(__name__)

CURSOR_NAME = "orthanc"
PAGE_SIZE = 100
STABLE_STUDY = "StableStudy"
NEW_STUDY = "NewStudy"


def orthanc_time(value: str) -> datetime | None:
    """An Orthanc date ("20261203T074101", UTC) as an aware datetime, or None when absent or malformed."""
    try:
        return datetime.strptime(value.strip(), "%Y%m%dT%H%M%S").replace(tzinfo=UTC)
    except (AttributeError, ValueError):
        return None


def _dicom_date(value: str) -> date | None:
    try:
        return datetime.strptime(value.strip(), "%Y%m%d").date()
    except (AttributeError, ValueError):
        return None


def _int(value: object) -> int | None:
    try:
        return int(str(value).strip())
    except ValueError:
        return None


@dataclass
class SeriesRead:
    orthanc_id: str
    uid: str
    number: int | None
    modality: str
    description: str
    body_part: str
    instance_count: int


@dataclass
class StudyRead:
    """What the follower read of one study from the PACS, before any database write."""

    orthanc_id: str
    uid: str
    accession_number: str
    patient_id: str
    patient_name: str
    study_date: date | None
    description: str
    first_received: datetime | None
    last_received: datetime | None
    is_stable: bool = False
    series: list[SeriesRead] = field(default_factory=list)

    @property
    def instance_count(self) -> int:
        return sum(s.instance_count for s in self.series)

    @property
    def modalities(self) -> str:
        return ", ".join(sorted({s.modality for s in self.series if s.modality}))


def read_study(orthanc: Orthanc, orthanc_id: str, *, series: bool = True) -> StudyRead:
    """The study as the PACS holds it now: its main tags, its series with their instance counts, and
    when its images arrived.

    Last received is the study's LastUpdate, which Orthanc sets on every instance it stores: exact, and
    free (it comes with /studies/{id}). First received is the ReceptionDate of each series' first
    instance (Orthanc lists a series' instances in the order it stored them), the earliest of them:
    one request per series, where reading every instance's ReceptionDate would be one per image
    (hundreds for a CT) for the same answer. `series=False`: the study's own tags only (one request).
    """
    study = orthanc.study(orthanc_id)
    tags = study.get("MainDicomTags", {})
    patient = study.get("PatientMainDicomTags", {})
    read = StudyRead(
        orthanc_id=orthanc_id,
        uid=str(tags.get("StudyInstanceUID", "")).strip()[:64],
        accession_number=str(tags.get("AccessionNumber", "")).strip()[:64],
        patient_id=str(patient.get("PatientID", "")).strip()[:64],
        patient_name=str(patient.get("PatientName", "")).strip()[:324],
        study_date=_dicom_date(str(tags.get("StudyDate", ""))),
        description=str(tags.get("StudyDescription", "")).strip()[:64],
        first_received=None,
        last_received=orthanc_time(str(study.get("LastUpdate", ""))),
        is_stable=bool(study.get("IsStable", False)),
    )
    if not series:
        return read
    firsts = []
    for series in orthanc.study_series(orthanc_id):
        series_tags = series.get("MainDicomTags", {})
        instances = series.get("Instances", [])
        read.series.append(
            SeriesRead(
                orthanc_id=str(series["ID"]),
                uid=str(series_tags.get("SeriesInstanceUID", "")).strip()[:64],
                number=_int(series_tags.get("SeriesNumber", "")),
                modality=str(series_tags.get("Modality", "")).strip()[:16],
                description=str(series_tags.get("SeriesDescription", "")).strip()[:64],
                body_part=str(series_tags.get("BodyPartExamined", "")).strip()[:16],
                instance_count=len(instances),
            )
        )
        if instances:
            try:
                received = orthanc_time(orthanc.instance_metadata(instances[0], "ReceptionDate"))
            except PacsNotFound:
                received = None  # deleted meanwhile, or stored without the metadata
            if received is not None:
                firsts.append(received)
    read.first_received = min(firsts, default=read.last_received)
    return read


def _earliest(*values: datetime | None) -> datetime | None:
    present = [v for v in values if v is not None]
    return min(present, default=None)


def _existing(read: StudyRead) -> Study | None:
    # By Orthanc ID, else by StudyInstanceUID: the same study under another Orthanc ID (its PatientID
    # changed; Orthanc's ID hashes both) is the same exam.
    return (
        Study.objects.select_for_update()
        .filter(Q(orthanc_id=read.orthanc_id) | Q(study_instance_uid=read.uid))
        .order_by("pk")
        .first()
    )


def record_arrival(read: StudyRead) -> Study | None:
    """Note a study the PACS started receiving (NewStudy), not yet stable: a Study with stable_at empty,
    matched to its order if it has one, but completing nothing until it is stable (`sweep_arriving`).
    None when it is already recorded. Inside the caller's transaction.

    Why: Orthanc keeps the studies waiting for StableAge in memory only. Restarted meanwhile, it never
    sends their StableStudy (tested with 1.10.1: IsStable turns true, the feed stays silent), so a
    follower reading StableStudy alone would miss them for good.
    """
    if _existing(read) is not None:
        return None
    study = Study.objects.create(
        orthanc_id=read.orthanc_id,
        study_instance_uid=read.uid,
        accession_number=read.accession_number,
        patient_id=read.patient_id,
        patient_name=read.patient_name,
        study_date=read.study_date,
        description=read.description,
        last_received=read.last_received,
        first_received=read.last_received,
        state=StudyState.UNMATCHED,
    )
    return services.study_match(study=study, user=services.pacs_user(), complete=False)


def record_study(read: StudyRead, *, stable_at: datetime | None) -> Study:
    """Insert or update the Study and its Series from `read` (inside the caller's transaction).

    Keyed by Orthanc ID, else by StudyInstanceUID, so a study that grows and becomes stable again is
    updated, never duplicated. Series the PACS no longer has are removed.
    """
    study = _existing(read) or Study(state=StudyState.UNMATCHED)
    study.orthanc_id = read.orthanc_id
    study.study_instance_uid = read.uid
    study.accession_number = read.accession_number
    study.patient_id = read.patient_id
    study.patient_name = read.patient_name
    study.study_date = read.study_date
    study.description = read.description
    study.modalities = read.modalities[:64]
    study.series_count = len(read.series)
    study.instance_count = read.instance_count
    study.first_received = _earliest(study.first_received, read.first_received)
    study.last_received = read.last_received
    seen = stable_at or timezone.now()
    # Orthanc dates its changes in whole seconds, this clock to the microsecond: a study stable again is
    # never recorded as stable earlier than it was before (the flaky order of the two in a test).
    study.stable_at = max(study.stable_at, seen) if study.stable_at else seen
    study.save()
    kept = []
    for series in read.series:
        row = (
            Series.objects.filter(
                Q(orthanc_id=series.orthanc_id) | Q(study=study, series_instance_uid=series.uid)
            )
            .order_by("pk")
            .first()
        ) or Series(study=study)
        row.study = study
        row.orthanc_id = series.orthanc_id
        row.series_instance_uid = series.uid
        row.number = series.number
        row.modality = series.modality
        row.description = series.description
        row.body_part = series.body_part
        row.instance_count = series.instance_count
        row.save()
        kept.append(row.pk)
    study.series.exclude(pk__in=kept).delete()
    return study


def _stable(read: StudyRead, *, stable_at: datetime | None) -> Study:
    """Record a stable study and match it (which may complete its order); in the caller's transaction."""
    study = record_study(read, stable_at=stable_at)
    return services.study_match(study=study, user=services.pacs_user())


def _locked_cursor(name: str) -> FeedCursor:
    return FeedCursor.objects.select_for_update().get(name=name)


def _apply(change: Change, read: StudyRead | None, *, name: str) -> bool:
    """Apply `change` with what was read for it (None: the study is gone from the PACS) and move the
    cursor to it, in one transaction. True when a stable study was recorded; False for an arrival, a
    study already recorded as it is now, or a change another follower applied first (the cursor is
    past it)."""
    applied = False
    with transaction.atomic():
        cursor = _locked_cursor(name)
        if cursor.last_seq >= change.seq:
            return False
        if read is not None and change.kind == STABLE_STUDY and not _recorded_as(read):
            _stable(read, stable_at=orthanc_time(change.date))
            applied = True
        elif read is not None and change.kind == NEW_STUDY:
            record_arrival(read)
        cursor.last_seq = change.seq
        cursor.save(update_fields=["last_seq"])
    return applied


def _recorded_as(read: StudyRead) -> bool:
    """Whether the study is already recorded as stable with these images (sweep_arriving saw it stable
    a moment before its StableStudy reached the feed; or the feed is read again from 0)."""
    study = _existing(read)
    return (
        study is not None
        and study.stable_at is not None
        and study.orthanc_id == read.orthanc_id
        and study.last_received == read.last_received
        and study.instance_count == read.instance_count
        and study.series_count == len(read.series)
    )


def _skip_to(seq: int, *, name: str) -> None:
    """Move the cursor past changes that need no work (only forward: never undo another's progress)."""
    with transaction.atomic():
        FeedCursor.objects.filter(name=name, last_seq__lt=seq).update(last_seq=seq)


def _read_change(orthanc: Orthanc, change: Change) -> StudyRead | None:
    try:
        return read_study(orthanc, change.orthanc_id, series=change.kind == STABLE_STUDY)
    except PacsNotFound:
        # Deleted from the PACS since: nothing to record.
        logger.info("PACS study %s is gone; change %s skipped", change.orthanc_id, change.seq)
        return None


def sweep_arriving(orthanc: Orthanc) -> int:
    """Apply the arriving studies (stable_at empty) that the PACS now says are stable, and forget the
    ones it deleted; the number applied. Catches the studies whose StableStudy a PACS restart lost."""
    applied = 0
    for pk, orthanc_id in Study.objects.filter(stable_at__isnull=True).values_list("pk", "orthanc_id"):
        try:
            read = read_study(orthanc, orthanc_id, series=False)
            if not read.is_stable:
                continue
            read = read_study(orthanc, orthanc_id)
        except PacsNotFound:
            Study.objects.filter(pk=pk, stable_at__isnull=True, order__isnull=True).delete()
            continue
        with transaction.atomic():
            # Only if still arriving: the feed's StableStudy may have applied it meanwhile.
            if Study.objects.select_for_update().filter(pk=pk, stable_at__isnull=True).exists():
                _stable(read, stable_at=None)
                applied += 1
    return applied


def follow_once(
    orthanc: Orthanc | None = None, *, name: str = CURSOR_NAME, page_size: int = PAGE_SIZE
) -> int:
    """Apply every StableStudy change after the cursor, page by page until the feed is done, then the
    arriving studies that became stable without one; return how many studies were applied.

    Raises PacsUnavailable (after writing it to the cursor's error) when the PACS does not answer; the
    changes applied until then stay applied, the failing one is tried again next time.
    """
    own = orthanc is None
    if own:
        orthanc = client()
    FeedCursor.objects.get_or_create(name=name)
    applied = 0
    try:
        since = FeedCursor.objects.get(name=name).last_seq
        while True:
            page = orthanc.changes(since, limit=page_size)
            if not page.changes and page.last < since:
                _restart(name=name, pacs_last=page.last, ours=since)
                since = 0
                continue
            for change in page.changes:
                if change.kind not in (STABLE_STUDY, NEW_STUDY):
                    continue
                read = _read_change(orthanc, change)
                applied += _apply(change, read, name=name)
            if page.changes:
                since = max(since, page.changes[-1].seq)
                _skip_to(since, name=name)
            if page.done or not page.changes:
                break
        applied += sweep_arriving(orthanc)
    except PacsUnavailable as exc:
        _failed(name=name, error=str(exc))
        raise
    finally:
        if own:
            orthanc.close()
    _polled(name=name, pacs_last=page.last)
    return applied


def _restart(*, name: str, pacs_last: int, ours: int) -> None:
    """The PACS's feed ends below our cursor: its database was replaced (or restored from a backup).
    Read it again from 0; studies already recorded are updated in place, not duplicated."""
    message = _(
        "The PACS's change feed ends at %(last)d, below the %(ours)d we had applied: its database was "
        "replaced. Reading it again from the start (%(when)s)."
    ) % {"last": pacs_last, "ours": ours, "when": timezone.now().isoformat(timespec="seconds")}
    logger.warning(message)
    with transaction.atomic():
        # A notice, not a failure: error_at (failing since) stays empty.
        FeedCursor.objects.filter(name=name).update(last_seq=0, pacs_last_seq=pacs_last, error=message)


def _failed(*, name: str, error: str) -> None:
    logger.warning("PACS follower: %s", error)
    with transaction.atomic():
        cursor = _locked_cursor(name)
        cursor.error = error
        cursor.error_at = cursor.error_at or timezone.now()
        cursor.save(update_fields=["error", "error_at"])


def _polled(*, name: str, pacs_last: int) -> None:
    with transaction.atomic():
        cursor = _locked_cursor(name)
        cursor.polled_at = timezone.now()
        cursor.pacs_last_seq = pacs_last
        fields = ["polled_at", "pacs_last_seq"]
        if cursor.error_at is not None:
            # Answering again: the failure is over. A restart notice (error without error_at) stays.
            cursor.error = ""
            cursor.error_at = None
            fields += ["error", "error_at"]
        cursor.save(update_fields=fields)
