"""Orders in: ORM^O01 (v2.3.1) and OMG^O19 (v2.5.1) with ORC-1 NW, CA, DC and XO."""

from datetime import timedelta

import pytest

from hl7_link.inbound import receive, reprocess
from hl7_link.models import AckCode, Message
from scheduling import services
from scheduling.models import Order, OrderStatus, Patient, Priority
from tests.factories import ProcedureFactory
from tests.hl7.conftest import (
    THAI_FAMILY,
    counts,
    hl7_ts,
    obr,
    omg,
    orc,
    orm,
    parse_ack,
    pid,
    pv1,
    tomorrow,
    tq1,
)


def test_an_order_with_a_time_is_booked_in_the_first_free_room_and_the_ack_carries_the_accession(
    hl7_sender, hl7_catalog
):
    start = hl7_ts(tomorrow(9))
    raw = orm(
        pid(mrn="HN1", family="Jaidee"),
        pv1(referring="D77^Rakdee^Suda^^^Dr"),
        orc(placer="PL1", start=start, priority="S", ordering="D12^Smith^John^^^Dr"),
        obr(placer="PL1", code="CTHEAD", reason="^Headache for two weeks"),
    )
    answer = parse_ack(receive(raw))
    assert answer.code == "AA", answer.text
    order = Order.objects.get()
    assert (order.status, order.room, order.scheduled_start) == (
        OrderStatus.SCHEDULED,
        hl7_catalog["ct1"],
        tomorrow(9),
    )
    assert (order.placer_order_number, order.placer_authority) == ("PL1", "HOSXP")
    assert (order.priority, order.reason) == (Priority.STAT, "Headache for two weeks")
    assert order.requesting_physician == "Dr John Smith"
    assert order.referring_physician == "Dr Suda Rakdee"
    assert order.patient == Patient.objects.get(mrn="HN1")
    assert order.booked_by == hl7_sender.user
    assert answer.field("MSH-9") == "ORR^O02"
    assert [answer.value(f"ORC-{n}") for n in (1, 2, 3, 5)] == ["OK", "PL1", order.accession_number, "SC"]
    message = Message.objects.get()
    assert (message.order, message.patient) == (order, order.patient)


def test_the_requested_start_is_kept_when_the_order_is_booked(hl7_sender, hl7_catalog):
    receive(orm(pid(), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1")))
    order = Order.objects.get()
    assert (order.status, order.requested_start) == (OrderStatus.SCHEDULED, tomorrow(9))


def test_the_next_free_room_takes_it_when_the_first_is_booked(hl7_sender, hl7_catalog):
    start = hl7_ts(tomorrow(9))
    receive(orm(pid(mrn="HN1"), orc(placer="PL1", start=start), obr(placer="PL1")))
    receive(orm(pid(mrn="HN2"), orc(placer="PL2", start=start), obr(placer="PL2")))
    assert [o.room.name for o in Order.objects.order_by("pk")] == ["CT 1", "CT 2"]


def test_an_order_without_a_time_waits_as_requested(hl7_sender, hl7_catalog):
    answer = parse_ack(receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1"))))
    assert answer.code == "AA"
    order = Order.objects.get()
    assert (order.status, order.room, order.scheduled_start) == (OrderStatus.REQUESTED, None, None)
    assert answer.value("ORC-3") == order.accession_number
    assert answer.value("ORC-5") == ""
    assert "To schedule" in answer.text


def test_an_order_for_a_day_without_a_time_waits_with_that_day_requested(hl7_sender, hl7_catalog):
    day = tomorrow(0)
    receive(orm(pid(), orc(placer="PL1", start=day.strftime("%Y%m%d")), obr(placer="PL1")))
    order = Order.objects.get()
    assert (order.status, order.requested_start) == (OrderStatus.REQUESTED, day)


def test_an_order_when_no_room_is_free_waits_as_requested_and_says_why(hl7_sender, hl7_catalog):
    start = hl7_ts(tomorrow(20))  # the rooms close at 17:00
    answer = parse_ack(receive(orm(pid(), orc(placer="PL1", start=start), obr(placer="PL1"))))
    assert answer.code == "AA"
    assert Order.objects.get().status == OrderStatus.REQUESTED
    assert "Not booked" in answer.text


def test_the_start_may_come_in_obr27(hl7_sender, hl7_catalog):
    start = hl7_ts(tomorrow(11))
    receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1", start=start, priority="A")))
    order = Order.objects.get()
    assert (order.scheduled_start, order.priority) == (tomorrow(11), Priority.HIGH)


def test_the_senders_station_field_chooses_the_room(hl7_sender, hl7_catalog):
    hl7_sender.station_field = "PV1-3"
    hl7_sender.save()
    start = hl7_ts(tomorrow(9))
    receive(orm(pid(), pv1(location="CT02^^^RAD"), orc(placer="PL1", start=start), obr(placer="PL1")))
    assert Order.objects.get().room == hl7_catalog["ct2"]


def test_a_station_the_ris_does_not_know_is_refused_at_that_field(hl7_sender, hl7_catalog):
    hl7_sender.station_field = "OBR-24"
    hl7_sender.save()
    before = counts()
    raw = orm(pid(), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1", section="MRI9"))
    answer = parse_ack(receive(raw))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|OBR^1^24^103&")
    assert counts() == before


def test_an_unknown_procedure_code_is_refused_naming_it_and_nothing_is_saved(hl7_sender, hl7_catalog):
    before = counts()
    raw = orm(pid(mrn="HN9"), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1", code="MRBRAIN"))
    answer = parse_ack(receive(raw))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|OBR^1^4^103&")
    assert "MRBRAIN" in answer.text
    assert (answer.value("ORC-1"), answer.value("ORC-2"), answer.value("ORC-3")) == ("UA", "PL1", "")
    assert counts() == before
    message = Message.objects.get()
    assert message.ack_code == AckCode.AE and "MRBRAIN" in message.error


def test_after_adding_the_procedure_reprocessing_books_the_order(hl7_sender, hl7_catalog):
    raw = orm(pid(mrn="HN9"), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1", code="MRBRAIN"))
    receive(raw)
    message = Message.objects.get()
    ProcedureFactory(code_value="MRBRAIN", code_meaning="MR Brain", modality="CT")
    message = reprocess(message)
    assert message.ack_code == AckCode.AA, message.error
    assert message.attempts == 2
    order = Order.objects.get()
    assert (order.status, order.room) == (OrderStatus.SCHEDULED, hl7_catalog["ct1"])
    assert message.order == order
    # The HIS re-sending the same control ID now gets the new answer, and nothing happens twice.
    again = parse_ack(receive(raw))
    assert again.code == "AA" and again.value("ORC-3") == order.accession_number
    assert Order.objects.count() == 1


def test_a_reprocessed_message_that_was_accepted_is_refused(hl7_sender, hl7_catalog):
    from django.core.exceptions import ValidationError

    receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1")))
    with pytest.raises(ValidationError):
        reprocess(Message.objects.get())
    assert Order.objects.count() == 1


def test_a_new_order_under_a_placer_number_already_used_is_refused(hl7_sender, hl7_catalog):
    receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1")))
    answer = parse_ack(receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|ORC^1^2^205&")
    assert Order.objects.count() == 1


def test_a_buddhist_era_start_is_refused(hl7_sender, hl7_catalog):
    be = tomorrow(9).replace(year=tomorrow(9).year + 543)
    answer = parse_ack(
        receive(orm(pid(), orc(placer="PL1", start=be.strftime("%Y%m%d%H%M")), obr(placer="PL1")))
    )
    assert answer.code == "AE"
    assert "Buddhist" in answer.text
    assert answer.errors[0].startswith("ERR|ORC^1^7^102&")
    assert not Order.objects.exists()


def test_an_order_for_a_new_patient_registers_it_from_pid_and_a_known_one_is_not_changed(
    hl7_sender, hl7_catalog
):
    receive(orm(pid(mrn="HN1", family="First"), orc(placer="PL1"), obr(placer="PL1")))
    receive(orm(pid(mrn="HN1", family="Other"), orc(placer="PL2"), obr(placer="PL2")))
    assert list(Patient.objects.values_list("family_name", flat=True)) == ["First"]
    assert Order.objects.filter(patient__mrn="HN1").count() == 2


def test_omg_o19_takes_tq1_and_answers_org_o20(hl7_sender, hl7_catalog):
    raw = omg(
        pid(family=THAI_FAMILY),
        orc(placer="PL1"),
        tq1(start=hl7_ts(tomorrow(13)), priority="R"),
        obr(placer="PL1"),
        charset="UNICODE UTF-8",
        encoding="utf-8",
    )
    answer = parse_ack(receive(raw), "utf-8")
    assert answer.code == "AA", answer.text
    assert answer.field("MSH-9") == "ORG^O20^ORG_O20"
    order = Order.objects.get()
    assert (order.scheduled_start, order.priority) == (tomorrow(13), Priority.ROUTINE)
    assert order.patient.family_name == THAI_FAMILY


def test_omg_errors_are_v25_style_at_tq1(hl7_sender, hl7_catalog):
    answer = parse_ack(receive(omg(pid(), orc(placer="PL1"), tq1(start="tomorrow"), obr(placer="PL1"))))
    assert answer.code == "AE"
    assert [answer.value("ERR-2"), answer.value("ERR-2.3"), answer.value("ERR-3")] == ["TQ1", "7", "102"]


def test_one_message_may_carry_several_orders(hl7_sender, hl7_catalog):
    raw = orm(pid(), orc(placer="PL1"), obr(placer="PL1"), orc(placer="PL2"), obr(placer="PL2", code="USABD"))
    answer = parse_ack(receive(raw))
    assert answer.code == "AA"
    assert [(str(s[1]), str(s[2])) for s in answer.segments("ORC")] == [("OK", "PL1"), ("OK", "PL2")]
    assert Order.objects.count() == 2


def test_when_one_order_of_a_message_is_refused_none_is_saved(hl7_sender, hl7_catalog):
    before = counts()
    raw = orm(pid(), orc(placer="PL1"), obr(placer="PL1"), orc(placer="PL2"), obr(placer="PL2", code="NOPE"))
    answer = parse_ack(receive(raw))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|OBR^2^4^103&")
    assert [str(s).split("|")[1:4] for s in answer.segments("ORC")] == [["UA", "PL1"], ["UA", "PL2"]]
    assert counts() == before


# --- CA, DC, XO -----------------------------------------------------------------------------------


@pytest.fixture
def placed(hl7_sender, hl7_catalog):
    """PL1 booked tomorrow 09:00 in CT 1, PL2 requested."""
    receive(orm(pid(mrn="HN1"), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1")))
    receive(orm(pid(mrn="HN1"), orc(placer="PL2"), obr(placer="PL2")))
    return Order.objects.get(placer_order_number="PL1"), Order.objects.get(placer_order_number="PL2")


def test_ca_cancels_with_the_reason_the_his_gave(placed):
    scheduled, _requested = placed
    answer = parse_ack(
        receive(
            orm(pid(mrn="HN1"), orc(control="CA", placer="PL1", reason="^Patient refused"), obr(placer="PL1"))
        )
    )
    assert answer.code == "AA", answer.text
    scheduled.refresh_from_db()
    assert (scheduled.status, scheduled.cancel_reason) == (OrderStatus.CANCELLED, "Patient refused")
    assert [answer.value(f"ORC-{n}") for n in (1, 2, 3, 5)] == ["CR", "PL1", scheduled.accession_number, "CA"]


def test_dc_cancels_a_requested_order_saying_who(placed):
    _scheduled, requested = placed
    answer = parse_ack(receive(orm(orc(control="DC", placer="PL2"))))
    assert answer.code == "AA", answer.text
    requested.refresh_from_db()
    assert (requested.status, requested.cancel_reason) == (OrderStatus.CANCELLED, "Discontinued by HOSXP")
    assert answer.value("ORC-1") == "DR"


def test_ca_sent_again_answers_the_same(placed):
    receive(orm(orc(control="CA", placer="PL1")))
    answer = parse_ack(receive(orm(orc(control="CA", placer="PL1"))))
    assert (answer.code, answer.value("ORC-1")) == ("AA", "CR")
    assert Order.objects.get(placer_order_number="PL1").cancel_reason == "Cancelled by HOSXP"


def test_ca_of_an_unknown_placer_number_is_refused_at_orc2(placed):
    answer = parse_ack(receive(orm(orc(control="CA", placer="PL404"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|ORC^1^2^204&")
    assert answer.value("ORC-1") == "UC"


def test_ca_of_an_order_in_progress_is_refused(placed, hl7_sender):
    scheduled, _ = placed
    Order.objects.filter(pk=scheduled.pk).update(status=OrderStatus.IN_PROGRESS)
    answer = parse_ack(receive(orm(orc(control="CA", placer="PL1"))))
    assert answer.code == "AE"
    assert "in progress" in answer.text
    assert Order.objects.get(pk=scheduled.pk).status == OrderStatus.IN_PROGRESS


def test_xo_changes_the_details_and_moves_a_booked_order_in_its_room(placed):
    scheduled, _ = placed
    raw = orm(
        orc(control="XO", placer="PL1", start=hl7_ts(tomorrow(14)), priority="S", ordering="D1^House^Greg"),
        obr(placer="PL1", reason="^Worse"),
    )
    answer = parse_ack(receive(raw))
    assert answer.code == "AA", answer.text
    scheduled.refresh_from_db()
    assert (scheduled.scheduled_start, scheduled.room.name) == (tomorrow(14), "CT 1")
    assert (scheduled.priority, scheduled.reason, scheduled.requesting_physician) == (
        Priority.STAT,
        "Worse",
        "Greg House",
    )
    assert answer.value("ORC-1") == "XR"


def test_xo_with_a_time_books_a_requested_order(placed):
    _, requested = placed
    answer = parse_ack(
        receive(orm(orc(control="XO", placer="PL2", start=hl7_ts(tomorrow(15))), obr(placer="PL2")))
    )
    assert answer.code == "AA", answer.text
    requested.refresh_from_db()
    assert (requested.status, requested.scheduled_start) == (OrderStatus.SCHEDULED, tomorrow(15))
    assert answer.value("ORC-5") == "SC"


def test_xo_to_a_time_the_room_cannot_take_is_refused_and_changes_nothing(placed):
    scheduled, _ = placed
    version = scheduled.version
    raw = orm(orc(control="XO", placer="PL1", start=hl7_ts(tomorrow(22)), priority="S"), obr(placer="PL1"))
    answer = parse_ack(receive(raw))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|ORC^1^7^")
    scheduled.refresh_from_db()
    assert (scheduled.version, scheduled.priority, scheduled.scheduled_start) == (
        version,
        Priority.ROUTINE,
        tomorrow(9),
    )


def test_xo_cannot_change_the_procedure(placed):
    answer = parse_ack(receive(orm(orc(control="XO", placer="PL1"), obr(placer="PL1", code="USABD"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|OBR^1^4^207&")


def test_an_order_control_not_taken_is_refused_at_orc1(placed):
    answer = parse_ack(receive(orm(orc(control="SC", placer="PL1"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|ORC^1^1^103&")


def test_an_order_without_obr_is_refused(hl7_sender, hl7_catalog):
    answer = parse_ack(receive(orm(pid(), orc(placer="PL1"))))
    assert answer.code == "AE"
    assert answer.errors[0].startswith("ERR|OBR^1^^100&")
    assert not Order.objects.exists()


def test_a_long_reason_is_cut_for_the_field_and_kept_whole_in_the_notes(hl7_sender, hl7_catalog):
    reason = "Suspected subarachnoid haemorrhage after a fall at home, on warfarin, GCS 14"
    receive(orm(pid(), orc(placer="PL1"), obr(placer="PL1", reason=f"^{reason}")))
    order = Order.objects.get()
    assert len(order.reason) == 64 and order.reason.endswith("…")
    assert reason in order.notes


def test_an_in_the_past_start_waits_as_requested(hl7_sender, hl7_catalog):
    past = hl7_ts(tomorrow(9) - timedelta(days=3))
    assert parse_ack(receive(orm(pid(), orc(placer="PL1", start=past), obr(placer="PL1")))).code == "AA"
    assert Order.objects.get().status == OrderStatus.REQUESTED


def test_the_order_is_booked_by_services_so_the_booking_rules_apply(hl7_sender, hl7_catalog):
    # The patient already has an exam at 09:00: the HIS cannot confirm a second one, a clerk must.
    receive(orm(pid(mrn="HN1"), orc(placer="PL1", start=hl7_ts(tomorrow(9))), obr(placer="PL1")))
    receive(orm(pid(mrn="HN1"), orc(placer="PL2", start=hl7_ts(tomorrow(9))), obr(placer="PL2")))
    assert Order.objects.get(placer_order_number="PL2").status == OrderStatus.REQUESTED
    assert services.rooms_for(hl7_catalog["ct_head"]).count() == 2


def test_the_placer_number_may_come_in_obr2_only(hl7_sender, hl7_catalog):
    assert parse_ack(receive(orm(pid(), orc(placer=""), obr(placer="OB7")))).code == "AA"
    assert Order.objects.get().placer_order_number == "OB7"


def test_a_thai_order_declared_8859_11_is_read_as_tis620(hl7_sender, hl7_catalog):
    raw = orm(
        pid(family=THAI_FAMILY), orc(placer="PL1"), obr(placer="PL1"), charset="8859/11", encoding="tis_620"
    )
    answer = parse_ack(receive(raw), "tis_620")
    assert (answer.code, answer.value("MSH-18")) == ("AA", "8859/11")
    assert Order.objects.get().patient.family_name == THAI_FAMILY
