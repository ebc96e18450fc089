"""POST /api/v1/orders/{id}/no-show: the patient did not come, once the exam's time has passed."""

from datetime import timedelta

import pytest
import time_machine
from django.urls import reverse

from scheduling.models import Order, OrderEvent, OrderEventKind, OrderStatus
from tests.factories import OrderFactory

pytestmark = pytest.mark.django_db


def no_show_url(order: Order) -> str:
    return reverse("api:order_no_show", args=[order.pk])


@pytest.fixture
def order(tomorrow_at):
    return OrderFactory(scheduled_start=tomorrow_at(9))


@pytest.fixture
def after_the_exam(order):
    with time_machine.travel(order.scheduled_end + timedelta(minutes=1), tick=False):
        yield


def test_it_marks_a_no_show_once_the_exam_is_over(api, order, after_the_exam):
    response = api.post(no_show_url(order), HTTP_IF_MATCH='"1"')

    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "NO_SHOW"
    assert response["ETag"] == '"2"'
    [event] = OrderEvent.objects.filter(order=order)
    assert (event.kind, event.actor_id) == (OrderEventKind.NO_SHOW, api.record.user_id)
    # The event feed says it in its own words.
    feed = api.get("/api/v1/events", {"after": 0}).json()["events"]
    assert [(e["kind"], e["status"]) for e in feed] == [("no_show", "NO_SHOW")]


def test_it_refuses_before_the_exams_end_in_the_rules_words(api, order):
    with time_machine.travel(order.scheduled_start + timedelta(minutes=10), tick=False):
        response = api.post(no_show_url(order))

    assert response.status_code == 422
    problem = response.json()
    assert problem["codes"] == {"non_field_errors": ["not_yet_due"]}
    assert "once that time has passed" in problem["errors"]["non_field_errors"][0]
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_refuses_from_another_status(api, order, after_the_exam):
    Order.objects.filter(pk=order.pk).update(status=OrderStatus.ARRIVED)

    response = api.post(no_show_url(order))

    assert response.status_code == 422
    assert response.json()["codes"] == {"non_field_errors": ["illegal_transition"]}


def test_it_refuses_a_stale_if_match(api, order, after_the_exam):
    assert api.post(no_show_url(order), HTTP_IF_MATCH='"7"').status_code == 412
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED


def test_it_is_the_booking_scopes_call(make_caller, order, after_the_exam):
    scanner_desk = make_caller(scopes=["read", "workflow"])

    response = scanner_desk.post(no_show_url(order))

    assert response.status_code == 403 and "book" in response.json()["detail"]
    assert make_caller(scopes=["read", "book"]).post(no_show_url(order)).status_code == 200


def test_the_schema_documents_the_operation_and_the_new_values(api):
    document = api.get("/api/schema/?format=json").json()

    operation = document["paths"]["/api/v1/orders/{id}/no-show"]["post"]
    assert operation["operationId"] == "order_no_show"
    assert set(operation["responses"]) >= {"200", "400", "404", "412", "422"}
    assert "NO_SHOW" in document["components"]["schemas"]["OrderStatus"]["enum"]
    kinds = [
        schema["enum"]
        for name, schema in document["components"]["schemas"].items()
        if "enum" in schema and "no_show" in schema["enum"]
    ]
    assert kinds, "the event kinds' enum has no_show"
