"""The 'query as a modality' page, against the built-in server running in a thread."""

import socket

import pytest
from django.urls import reverse
from django.utils import timezone

from mwl_server.query import query_targets
from scheduling import services
from scheduling.models import CharacterSet
from tests.factories import PatientFactory, ThaiPatientFactory
from tests.mwl_server.dicom import SERVER_AE, free_port, running_server

pytestmark = pytest.mark.django_db(transaction=True)


def targets(port: int, called_ae: str = SERVER_AE) -> dict:
    return {
        "builtin": {"label": "Built-in", "host": "127.0.0.1", "port": port, "called_ae": called_ae},
        "orthanc": {"label": "Orthanc", "host": "127.0.0.1", "port": port, "called_ae": "ORTHANC"},
    }


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
    assert f"{timezone.localdate():%d/%m/%Y}" in response.content.decode()  # the day box, day first


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


def test_all_of_the_rooms_exams_answered_reports_none_missing(port, clerk, room, book, tomorrow_at):
    book()
    page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    assert 'id="query-results"' in page
    assert 'id="query-missing"' not in page


def test_the_rooms_exams_the_server_left_out_are_named(port, clerk, room, book, tomorrow_at, user):
    # A Latin-1 station cannot take a Thai name without its romanised form: the export leaves the
    # order out, and so does the built-in server. The front desk must see which exam that is.
    room.worklist_charset = CharacterSet.LATIN1
    room.save(update_fields=["worklist_charset"])
    answered = book(patient=PatientFactory(family_name="Srisuk"))
    left_out = book(
        patient=ThaiPatientFactory(romanized_family_name="", romanized_given_name=""), start=tomorrow_at(11)
    )
    cancelled = book(
        patient=ThaiPatientFactory(romanized_family_name="", romanized_given_name=""), start=tomorrow_at(13)
    )
    services.order_cancel(order=cancelled, reason="Patient declined", user=user)

    response = ask(clerk, room, tomorrow_at(9).date())

    page = response.content.decode()
    assert [row.accession for row in response.context["result"].rows] == [answered.accession_number]
    assert response.context["result"].missing == [left_out]
    missing = page[page.index('id="query-missing"') : page.index("</div>", page.index('id="query-missing"'))]
    assert "1 active exam of this room on that day is not in the answers" in " ".join(missing.split())
    assert (
        f'href="{reverse("scheduling:order_detail", args=[left_out.pk])}">{left_out.accession_number}</a> 11:00'
        in missing
    )
    assert answered.accession_number not in missing
    assert cancelled.accession_number not in missing


def test_it_calls_wlmscpfs_by_the_rooms_own_called_ae_title(clerk, room, book, settings, tomorrow_at):
    # The export puts this room's files into the ROOMWL folder, which wlmscpfs serves as called AE
    # ROOMWL: the page must ask that, not the site's WORKLIST. The built-in server stands in for it.
    room.called_ae_title = "ROOMWL"
    room.save(update_fields=["called_ae_title"])
    order = book()
    with running_server(ae_title="ROOMWL") as port:
        settings.MWL_QUERY_TARGETS = {
            "wlmscpfs": {
                "label": "wlmscpfs",
                "host": "127.0.0.1",
                "port": port,
                "called_ae": "WORKLIST",
                "room_called_ae": True,
            }
        }
        page = ask(clerk, room, tomorrow_at(9).date(), target="wlmscpfs").content.decode()
    assert 'id="query-error"' not in page
    assert "called AE ROOMWL, calling AE CT01" in page
    assert order.accession_number in page


def test_a_server_that_does_not_tell_rooms_apart_keeps_its_called_ae_title(
    port, clerk, room, book, tomorrow_at
):
    room.called_ae_title = "ROOMWL"
    room.save(update_fields=["called_ae_title"])
    order = book()
    page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    assert f"called AE {SERVER_AE}, calling AE CT01" in page
    assert order.accession_number in page


def test_only_the_wlmscpfs_target_uses_the_rooms_called_ae_title_by_default():
    assert {key: target.room_called_ae for key, target in query_targets().items()} == {
        "builtin": False,
        "orthanc": False,
        "wlmscpfs": True,
    }


def test_a_thai_clerk_reads_why_the_server_did_not_answer_in_thai(clerk, room, settings, tomorrow_at):
    settings.MWL_QUERY_TARGETS = targets(free_port())
    settings.MWL_QUERY_TIMEOUT = 2
    clerk.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    try:
        page = ask(clerk, room, tomorrow_at(9).date()).content.decode()
    finally:
        from django.utils import translation

        translation.deactivate()
    assert 'id="query-error"' in page
    assert "ไม่ตอบภายใน 2 วินาที" in page
    assert "did not answer" not in page
