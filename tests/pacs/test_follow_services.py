"""The front desk's services on a recorded study (pacs_link.services), the follower's lock and command,
without a PACS: studies are created as the follower would leave them."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import CommandError, call_command

from pacs_link import services, tasks
from pacs_link.models import MatchedBy, Study, StudyState
from scheduling import services as scheduling
from scheduling.models import Completion, OrderStatus

pytestmark = pytest.mark.django_db


def unmatched(**fields) -> Study:
    values = {
        "orthanc_id": "aaaa-bbbb",
        "study_instance_uid": "1.2.3.4",
        "accession_number": "X1",
        "state": StudyState.UNMATCHED,
        "unmatched_reason": "No order has accession number X1.",
        **fields,
    }
    return Study.objects.create(**values)


@pytest.fixture
def study_room(room):
    room.completion = Completion.STUDY
    room.save(update_fields=["completion"])
    return room


def test_linking_a_study_completes_the_order_of_a_study_room_and_records_who(
    book, study_room, user, after_commit, worklist_dir
):
    order = book()
    with after_commit():
        study = services.study_link(study=unmatched(), order=order, user=user)
    study.refresh_from_db()
    assert (study.state, study.matched_by, study.order) == (StudyState.MATCHED, MatchedBy.CLERK, order)
    assert study.resolved_by == user and study.resolved_at is not None
    assert study.unmatched_reason == ""
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert not (worklist_dir / f"{order.accession_number}.wl").exists()


def test_the_arrival_the_technologist_recorded_keeps_its_time_the_walked_start_gets_none(
    book, study_room, user
):
    order = scheduling.order_arrive(order=book(), user=user)
    arrived = order.arrived_at

    services.study_link(study=unmatched(), order=order, user=user)

    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert (order.arrived_at, order.started_at) == (arrived, None) and order.completed_at > arrived


def test_linking_in_an_mpps_room_records_the_study_only(book, room, user):
    order = book()
    services.study_link(study=unmatched(), order=order, user=user)
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_linking_to_a_cancelled_order_is_refused_with_a_clear_message(book, study_room, user):
    order = scheduling.order_cancel(order=book(), reason="Duplicate", user=user)
    study = unmatched()
    with pytest.raises(ValidationError) as exc:
        services.study_link(study=study, order=order, user=user)
    assert exc.value.code == "order_cancelled"
    assert f"Order {order.accession_number} is cancelled" in exc.value.messages[0]
    study.refresh_from_db()
    assert study.state == StudyState.UNMATCHED and study.order is None


def test_a_study_already_linked_cannot_be_linked_again_or_marked_not_ours(book, user, tomorrow_at):
    first, second = book(), book(start=tomorrow_at(11))
    study = services.study_link(study=unmatched(), order=first, user=user)
    with pytest.raises(ValidationError, match="already linked"):
        services.study_link(study=study, order=second, user=user)
    with pytest.raises(ValidationError, match="cannot be marked as not ours"):
        services.study_mark_not_ours(study=study, user=user)


def test_marking_not_ours_takes_the_study_off_the_unmatched_list_with_the_reason(user):
    study = services.study_mark_not_ours(study=unmatched(), user=user, reason="  Phantom from service  ")
    study.refresh_from_db()
    assert study.state == StudyState.NOT_OURS
    assert study.unmatched_reason == "Phantom from service"
    assert study.resolved_by == user and study.resolved_at is not None
    assert not Study.objects.filter(state=StudyState.UNMATCHED).exists()


def test_a_not_ours_study_stays_not_ours_when_the_pacs_says_it_is_stable_again(book, study_room, user):
    order = book()
    study = services.study_mark_not_ours(study=unmatched(accession_number=order.accession_number), user=user)
    services.study_match(study=study, user=services.pacs_user())
    study.refresh_from_db()
    assert study.state == StudyState.NOT_OURS
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_not_ours_study_can_still_be_linked(book, user):
    order = book()
    study = services.study_mark_not_ours(study=unmatched(), user=user)
    study = services.study_link(study=study, order=order, user=user)
    assert study.state == StudyState.MATCHED


def test_the_pacs_user_cannot_log_in():
    user = services.pacs_user()
    assert user.username == "pacs" and not user.has_usable_password()
    assert services.pacs_user() == user


def test_only_one_follower_holds_the_lock_at_a_time():
    with tasks.follower_lock() as first:
        with tasks.follower_lock() as second:
            assert (first, second) == (True, False)
    with tasks.follower_lock() as again:
        assert again


def test_a_follower_in_another_process_holds_the_lock_out(settings):
    from django.db import connection

    if connection.vendor != "postgresql":
        # The cache lock: what another process's cache.add would have written.
        from django.core.cache import cache

        cache.add(f"pacs_link:follow:{tasks.CURSOR_NAME}", 1)
        try:
            with tasks.follower_lock() as held:
                assert not held
        finally:
            cache.delete(f"pacs_link:follow:{tasks.CURSOR_NAME}")
        return
    import psycopg

    params = connection.get_connection_params()
    other = psycopg.connect(
        host=params.get("host"), port=params.get("port"), user=params.get("user"), dbname=params["dbname"]
    )
    try:
        other.execute("SELECT pg_advisory_lock(%s)", [tasks._FOLLOW_LOCK])
        with tasks.follower_lock() as held:
            assert not held
    finally:
        other.close()
    with tasks.follower_lock() as held:
        assert held


def test_the_task_skips_a_round_while_another_follower_runs(monkeypatch):
    calls = []
    monkeypatch.setattr(tasks, "follow_once", lambda: calls.append(1) or 3)
    with tasks.follower_lock():
        assert tasks.follow() == 0
    assert tasks.follow() == 3
    assert calls == [1]


def test_the_command_says_when_no_pacs_is_configured(settings):
    settings.ORTHANC_URL = ""
    with pytest.raises(CommandError, match="ORTHANC_URL"):
        call_command("follow_pacs")


def test_the_command_refuses_a_non_positive_interval():
    with pytest.raises(CommandError, match="positive"):
        call_command("follow_pacs", "--every", "0")


def test_the_task_is_registered_under_the_name_beat_uses(settings):
    from ris.celery import app

    assert "pacs_link.tasks.follow" in app.tasks


def test_the_room_admin_edits_what_completes_the_rooms_exams(admin_client, room):
    from django.urls import reverse

    url = reverse("admin:scheduling_room_change", args=[room.pk])
    assert 'name="completion"' in admin_client.get(url).content.decode()
    listing = admin_client.get(reverse("admin:scheduling_room_changelist"), {"completion__exact": "mpps"})
    assert listing.status_code == 200 and room.name in listing.content.decode()


def test_an_order_a_rule_refuses_to_complete_keeps_its_study_and_the_follower_goes_on(
    book, study_room, monkeypatch
):
    order = book()

    def refused(**kwargs):
        raise ValidationError("The order changed meanwhile.")

    monkeypatch.setattr(services.scheduling, "order_arrive", refused)
    study = services.study_match(
        study=unmatched(accession_number=order.accession_number), user=services.pacs_user()
    )
    study.refresh_from_db()
    assert (study.state, study.order) == (StudyState.MATCHED, order)
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_a_study_stable_again_is_never_recorded_stable_earlier():
    # Orthanc dates its changes in whole seconds; the first record may have taken this clock's time,
    # to the microsecond, a fraction of a second after the second the PACS gives the next time.
    from datetime import UTC, datetime

    from pacs_link.follow import StudyRead, record_study

    read = StudyRead(
        orthanc_id="0f1e2d3c-aaaaaaaa-bbbbbbbb-cccccccc-dddddddd",
        uid="1.2.826.0.1.3680043.99.4000",
        accession_number="26120400001",
        patient_id="HN0001",
        patient_name="",
        study_date=None,
        description="",
        first_received=None,
        last_received=None,
    )
    first = record_study(read, stable_at=datetime(2026, 12, 4, 7, 41, 1, 700000, tzinfo=UTC))
    again = record_study(read, stable_at=datetime(2026, 12, 4, 7, 41, 1, tzinfo=UTC))

    assert again.pk == first.pk
    assert again.stable_at == datetime(2026, 12, 4, 7, 41, 1, 700000, tzinfo=UTC)
    later = record_study(read, stable_at=datetime(2026, 12, 4, 7, 45, tzinfo=UTC))
    assert later.stable_at == datetime(2026, 12, 4, 7, 45, tzinfo=UTC)
