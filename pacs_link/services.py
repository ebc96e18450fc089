"""What happens to a study the PACS received: matched to an order (which it may complete), or resolved
by the front desk (linked to an order, or marked as not ours).

The follower (pacs_link.follow) calls `study_match`; the Unmatched studies page calls `study_link` and
`study_mark_not_ours`. Orders move only through the scheduling services, so the worklist export, the
event feed and the HL7 outbox see a study's completion as they see any other.
"""

from __future__ import annotations

import logging

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from scheduling import services as scheduling
from scheduling.models import ACTIVE_STATUSES, Completion, Order, OrderStatus

from .models import MatchedBy, Study, StudyState

logger = logging.getLogger(__name__)

PACS_USERNAME = "pacs"

# Order.cancel_reason and Study.unmatched_reason are at most 200 characters.
REASON_MAX = 200


def pacs_user() -> AbstractBaseUser:
    """The system user that study arrivals complete orders as (like mwl_server's "modality")."""
    user, created = get_user_model().objects.get_or_create(username=PACS_USERNAME)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def _completes_on_arrival(order: Order) -> bool:
    return order.room is not None and order.room.completion == Completion.STUDY


def order_complete_on_arrival(*, order: Order, user: AbstractBaseUser) -> Order:
    """Complete `order` because its study arrived, when its room is set to (Completion.STUDY).

    Walks SCHEDULED -> ARRIVED -> IN_PROGRESS -> COMPLETED through the scheduling services, as an MPPS
    does, so every step is in the order's history and events (the steps it walks get no time stamp:
    see order_transition's `stamp`). Leaves alone an order that is already
    completed, a requested one (not booked: no room, no time; the study stays recorded on it) and one
    whose room completes otherwise (MPPS or manual).
    """
    if order.status not in ACTIVE_STATUSES or not _completes_on_arrival(order):
        return order
    # The steps walked here were not seen: no arrival or start time (the reports' turnaround leaves
    # them out); one the technologist or an MPPS recorded keeps its time.
    if order.status == OrderStatus.SCHEDULED:
        order = scheduling.order_arrive(order=order, user=user, stamp=False)
    if order.status == OrderStatus.ARRIVED:
        order = scheduling.order_start(order=order, user=user, stamp=False)
    return scheduling.order_complete(order=order, user=user)


def _match_order(study: Study) -> tuple[Order | None, str, str]:
    """The order `study` belongs to, how it was found, and why not when none: by AccessionNumber, then
    by StudyInstanceUID (our worklist items carry it, so modalities usually copy it into the images)."""
    candidates = []
    if study.accession_number:
        candidates.append((MatchedBy.ACCESSION, {"accession_number": study.accession_number}))
    candidates.append((MatchedBy.STUDY_UID, {"study_instance_uid": study.study_instance_uid}))
    for matched_by, lookup in candidates:
        order = Order.objects.select_related("room").filter(**lookup).first()
        if order is None:
            continue
        if order.status == OrderStatus.CANCELLED:
            reason = _("Order %(accession)s was cancelled: %(reason)s") % {
                "accession": order.accession_number,
                "reason": order.cancel_reason or "-",
            }
            return None, "", reason[:REASON_MAX]
        return order, matched_by, ""
    if study.accession_number:
        return (
            None,
            "",
            _("No order has accession number %(accession)s.") % {"accession": study.accession_number[:64]},
        )
    return None, "", _("The study has no accession number and its study UID is on no order.")


def study_match(*, study: Study, user: AbstractBaseUser, complete: bool = True) -> Study:
    """Match a study the follower just recorded (or updated) to its order, and complete the order when
    its room completes on study arrival. Call inside the follower's transaction, with `study` saved.

    A study the front desk resolved (linked, or marked not ours) keeps their decision. A study that
    stays unmatched gets the reason (no such accession, the order was cancelled); it is tried again
    each time the PACS says it is stable, so an order created later still catches it.
    `complete=False`: match only (a study still arriving, pacs_link.follow.record_arrival).
    """
    if study.state == StudyState.NOT_OURS:
        return study
    if study.state == StudyState.MATCHED:
        order = study.order
    else:
        order, matched_by, reason = _match_order(study)
        if order is None:
            study.state = StudyState.UNMATCHED
            study.unmatched_reason = reason
            study.save(update_fields=["state", "unmatched_reason", "updated_at"])
            return study
        study.order = order
        study.state = StudyState.MATCHED
        study.matched_by = matched_by
        study.unmatched_reason = ""
        study.save(update_fields=["order", "state", "matched_by", "unmatched_reason", "updated_at"])
    # Again for a study matched earlier: idempotent, and it completes an order booked after its
    # study first arrived (a requested order the desk booked meanwhile).
    if complete:
        try:
            study.order = order_complete_on_arrival(order=order, user=user)
        except ValidationError as exc:
            # A rule refused a step (the order changed meanwhile): the study stays recorded on it and
            # the staff complete it by hand. Raising would stop the follower at this change for good.
            logger.warning(
                "study %s: order %s not completed: %s", study, order.accession_number, "; ".join(exc.messages)
            )
    return study


def _locked_study(study: Study) -> Study:
    return Study.objects.select_for_update().get(pk=study.pk)


def study_link(*, study: Study, order: Order, user: AbstractBaseUser) -> Study:
    """The front desk links an unmatched (or not-ours) study to `order`; the order is completed when its
    room completes on study arrival (a requested order only gets the study recorded).

    Raises ValidationError for a cancelled order, and for a study already linked to an order (it is
    not on the Unmatched list: someone else resolved it meanwhile). An order may have more than one
    study (a repeated or split acquisition), so one that already has a study is accepted.
    """
    with transaction.atomic():
        study = _locked_study(study)
        order = Order.objects.select_for_update(of=("self",)).select_related("room").get(pk=order.pk)
        if study.state == StudyState.MATCHED:
            raise ValidationError(
                _("This study is already linked to order %(accession)s.")
                % {"accession": study.order.accession_number},
                code="study_already_linked",
            )
        if order.status == OrderStatus.CANCELLED:
            raise ValidationError(
                _("Order %(accession)s is cancelled; a study cannot be linked to it.")
                % {"accession": order.accession_number},
                code="order_cancelled",
            )
        study.order = order
        study.state = StudyState.MATCHED
        study.matched_by = MatchedBy.CLERK
        study.unmatched_reason = ""
        study.resolved_by = user
        study.resolved_at = timezone.now()
        study.save(
            update_fields=[
                "order",
                "state",
                "matched_by",
                "unmatched_reason",
                "resolved_by",
                "resolved_at",
                "updated_at",
            ]
        )
        study.order = order_complete_on_arrival(order=order, user=user)
    return study


def study_mark_not_ours(*, study: Study, user: AbstractBaseUser, reason: str = "") -> Study:
    """The front desk says an unmatched study is not one of ours (another site's, a test, a phantom):
    it leaves the Unmatched list and the follower leaves it alone from then on.

    Raises ValidationError for a study linked to an order (it is not on the Unmatched list).
    """
    with transaction.atomic():
        study = _locked_study(study)
        if study.state == StudyState.MATCHED:
            raise ValidationError(
                _("This study is linked to order %(accession)s; it cannot be marked as not ours.")
                % {"accession": study.order.accession_number},
                code="study_already_linked",
            )
        study.state = StudyState.NOT_OURS
        study.unmatched_reason = reason.strip()[:REASON_MAX]
        study.resolved_by = user
        study.resolved_at = timezone.now()
        study.save(update_fields=["state", "unmatched_reason", "resolved_by", "resolved_at", "updated_at"])
    return study
