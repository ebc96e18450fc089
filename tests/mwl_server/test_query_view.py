"""The 'query as a modality' page, against the built-in server running in a thread."""

import socket

import pytest
from django.urls import reverse
from django.utils import timezone

from tests.factories import PatientFactory, ThaiPatientFactory
from tests.mwl_server.dicom import SERVER_AE, free_port, running_server

pytestmark = pytest.mark.django_db(transaction=True)


def targets(port: int, called_ae: str = SERVER_AE) -> dict:
    return {
        "builtin": {"label": "Built-in", "host": "127.0.0.1", "port": port, "called_ae": called_ae},
        "orthanc": {"label": "Orthanc", "host": "127.0.0.1", "port": port, "called_ae": "ORTHANC"},
    }


@pytest.fixture
def clerk(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def port(settings):
    settings.DICOM_SERVER_KNOWN_CALLERS = []
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    with running_server() as port:
        settings.MWL_QUERY_TARGETS = targets(port)
        yield port


def ask(clerk, room, day, target="builtin"):
    return clerk.get(
        reverse("mwl_server:query"), {"room": room.pk, "day": f"{day:%Y-%m-%d}", "target": target}
    )


def test_the_page_shows_the_form_and_a_navbar_link(clerk, room):
    response = clerk.get(reverse("mwl_server:query"))
    assert response.status_code == 200
    assert reverse("mwl_server:query") in response.content.decode()
    assert f"{timezone.localdate():%Y-%m-%d}" in response.content.decode()


def test_the_page_needs_a_login(client):
    response = client.get(reverse("mwl_server:query"))
    assert response.status_code == 302


def test_the_rooms_query_shows_its_worklist_as_received(port, clerk, room, book, tomorrow_at):
    order = book(patient=ThaiPatientFactory())
    other = book(patient=PatientFactory(family_name="Srisuk"), start=tomorrow_at(11))
    response = ask(clerk, room, tomorrow_at(9).date())
    page = response.content.decode()
    assert 'id="query-results"' in page
    assert "ใจดี^สมชาย" in page
    assert "Srisuk^" in page
    assert order.accession_number in page and other.accession_number in page
    assert "090000" in page
    assert "calling AE CT01" in page
    [rows] = [response.context["result"].rows]
    assert [r.accession for r in rows] == [order.accession_number, other.accession_number]


def test_nothing_matched_says_so(port, clerk, room, book, tomorrow_at):
    book()
    page = ask(clerk, room, tomorrow_at(9).date() + timezone.timedelta(days=1)).content.decode()
    assert 'id="query-empty"' in page


def test_a_rejected_association_is_explained(port, clerk, room, settings, tomorrow_at):
    settings.MWL_QUERY_TARGETS = targets(port, called_ae="WRONGAE")
    page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    assert 'id="query-error"' in page
    assert "rejected the association" in page


def test_a_server_that_does_not_answer_is_explained(clerk, room, settings, tomorrow_at):
    settings.MWL_QUERY_TARGETS = targets(free_port())
    settings.MWL_QUERY_TIMEOUT = 2
    page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    assert 'id="query-error"' in page
    assert "did not answer" in page


def test_a_server_that_accepts_but_never_speaks_times_out(clerk, room, settings, tomorrow_at):
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        settings.MWL_QUERY_TARGETS = targets(silent.getsockname()[1])
        settings.MWL_QUERY_TIMEOUT = 1
        page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    assert 'id="query-error"' in page
