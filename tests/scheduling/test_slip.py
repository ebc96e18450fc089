"""The printable appointment slip handed to the patient."""

import pytest
from django.urls import reverse

from tests.factories import OrderFactory, ProcedureFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def order(room, user, tomorrow_at):
    procedure = ProcedureFactory(
        code_meaning="CT Abdomen with contrast", instructions_en="Nothing to eat for 4 hours before the exam."
    )
    return OrderFactory(
        accession_number="26010100099",
        patient=ThaiPatientFactory(mrn="HN555001"),
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )


def test_it_shows_what_the_patient_needs(client, user, order):
    client.force_login(user)

    response = client.get(reverse("scheduling:order_slip", args=[order.pk]))

    content = response.content.decode()
    assert response.status_code == 200
    assert "สมชาย ใจดี" in content
    assert "Somchai Jaidee" in content
    assert "HN555001" in content
    assert "CT Abdomen with contrast" in content
    assert "Nothing to eat for 4 hours before the exam." in content
    assert "09:00–09:30" in content
    assert "CT 1" in content and "Building A" in content
    assert "26010100099" in content


def test_it_carries_the_accession_number_as_a_barcode(client, user, order):
    client.force_login(user)

    content = client.get(reverse("scheduling:order_slip", args=[order.pk])).content.decode()

    slip = content.split('class="slip-barcode-svg">', 1)[1]
    assert slip.startswith("<svg")
    assert "<rect" in slip
    assert "&lt;svg" not in content
    assert "scheduling/slip.css" in content


def test_the_order_page_links_to_the_slip(client, user, order):
    client.force_login(user)

    response = client.get(order.get_absolute_url())

    assert reverse("scheduling:order_slip", args=[order.pk]).encode() in response.content


def test_the_slip_needs_a_login(client, order):
    response = client.get(reverse("scheduling:order_slip", args=[order.pk]))

    assert response.status_code == 302
