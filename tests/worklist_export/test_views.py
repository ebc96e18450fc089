import pytest
from django.template.loader import render_to_string
from django.urls import reverse
from pydicom import dcmread

from scheduling.models import CharacterSet
from tests.factories import RoomFactory, ThaiPatientFactory
from worklist_export.selectors import order_export_state


@pytest.fixture
def clerk_client(client, user):
    client.force_login(user)
    return client


def test_it_downloads_the_wl_file(worklist_dir, book, clerk_client, tmp_path):
    order = book()
    response = clerk_client.get(reverse("worklist_export:order_file", args=[order.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/dicom"
    assert f'filename="{order.accession_number}.wl"' in response["Content-Disposition"]
    saved = tmp_path / "download.wl"
    saved.write_bytes(b"".join(response.streaming_content))
    assert dcmread(saved).AccessionNumber == order.accession_number


def test_it_404s_with_a_message_when_not_exported(worklist_dir, book, clerk_client, user, after_commit):
    from scheduling import services

    order = book()
    with after_commit():
        services.order_cancel(order=order, reason="No show", user=user)
    response = clerk_client.get(reverse("worklist_export:order_file", args=[order.pk]))
    assert response.status_code == 404
    assert "has no worklist file" in response.content.decode()


def test_it_needs_login(worklist_dir, book, client):
    order = book()
    response = client.get(reverse("worklist_export:order_file", args=[order.pk]))
    assert response.status_code == 302


def test_the_dump_shows_the_tags(worklist_dir, book, clerk_client):
    order = book(patient=ThaiPatientFactory())
    response = clerk_client.get(reverse("worklist_export:order_dump", args=[order.pk]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "(0040,0100)" in html and "ScheduledProcedureStepSequence" in html
    assert "ใจดี^สมชาย" in html
    assert "1.2.840.10008.5.1.4.31" in html


def render_panel(order) -> str:
    """The order page's worklist panel, with the export state the order page's view gives it."""
    context = {"order": order, "export_state": order_export_state(order=order)}
    return render_to_string("worklist_export/_order_export.html", context)


def test_the_order_panel_shows_file_and_links(worklist_dir, book):
    order = book()
    html = render_panel(order)
    assert f"{order.accession_number}.wl" in html
    assert reverse("worklist_export:order_file", args=[order.pk]) in html
    assert reverse("worklist_export:order_dump", args=[order.pk]) in html
    assert "export pending" not in html


def test_the_order_panel_shows_the_error_in_red(worklist_dir, book):
    room = RoomFactory(name="CT old", ae_title="CTOLD", worklist_charset=CharacterSet.LATIN1)
    order = book(patient=ThaiPatientFactory(romanized_family_name="", romanized_given_name=""), room=room)
    html = render_panel(order)
    assert "alert-danger" in html and "no romanised name" in html
    assert "export pending" in html


def test_the_order_panel_says_pending_without_an_entry(
    worklist_dir, user, room, procedure, patient, tomorrow_at
):
    from scheduling import services

    order = services.order_book(
        patient=patient, procedure=procedure, room=room, start=tomorrow_at(9), user=user
    )
    html = render_panel(order)
    assert "export pending" in html
