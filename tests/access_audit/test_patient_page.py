"""The reads on the patient page: for Admin (and superusers) only, decided on the server."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone, translation

from access_audit.models import AccessAction, AccessEvent
from access_audit.selectors import PATIENT_PAGE_READS
from tests.scheduling.test_i18n import english_leftovers, visible_text

pytestmark = pytest.mark.django_db


def patient_page(browser, patient) -> str:
    response = browser.get(reverse("scheduling:patient_detail", args=[patient.pk]))
    assert response.status_code == 200
    return response.content.decode()


def test_the_admin_sees_who_opened_the_patient(admin_browser, admin_member, clerk, user, order):
    clerk.get(reverse("scheduling:order_slip", args=[order.pk]))
    admin_browser.force_login(admin_member)

    page = patient_page(admin_browser, order.patient)

    assert 'id="access-log"' in page
    section = page[page.index('id="access-log"') :]
    # Newest first: the admin's own visit of this page, then the clerk's slip.
    assert section.index(admin_member.username) < section.index(user.username)
    assert "Printed appointment slip" in section and "Viewed patient" in section
    assert order.get_absolute_url() in section
    changelist = reverse("admin:access_audit_accessevent_changelist")
    assert f"{changelist}?patient__id__exact={order.patient_id}" in section


def test_a_front_desk_clerk_does_not_get_the_reads_at_all(clerk, user, admin_member, client, order):
    AccessEvent.objects.create(action=AccessAction.PATIENT_VIEWED, user=admin_member, patient=order.patient)

    page = patient_page(clerk, order.patient)

    assert 'id="access-log"' not in page
    assert admin_member.username not in page
    assert reverse("admin:access_audit_accessevent_changelist") not in page


def test_a_superuser_sees_the_reads(client, admin_user, patient):
    client.force_login(admin_user)

    assert 'id="access-log"' in patient_page(client, patient)


def test_the_page_lists_the_newest_reads_and_counts_them_all(admin_browser, admin_member, patient):
    old = timezone.now() - timedelta(days=3)
    AccessEvent.objects.bulk_create(
        AccessEvent(action=AccessAction.ORDER_VIEWED, user=admin_member, patient=patient, at=old)
        for _ in range(PATIENT_PAGE_READS + 5)
    )

    response = admin_browser.get(reverse("scheduling:patient_detail", args=[patient.pk]))

    log = response.context["access_log"]
    assert len(log.events) == PATIENT_PAGE_READS
    assert log.events[0].action == AccessAction.PATIENT_VIEWED  # this very visit, newest
    assert log.total == PATIENT_PAGE_READS + 6
    assert f"All {PATIENT_PAGE_READS + 6} reads in the access log" in response.content.decode()


def test_other_patients_reads_are_not_listed(admin_browser, admin_member, patient):
    from tests.factories import PatientFactory

    other = PatientFactory()
    AccessEvent.objects.create(action=AccessAction.SLIP_PRINTED, user=admin_member, patient=other)

    response = admin_browser.get(reverse("scheduling:patient_detail", args=[patient.pk]))

    assert [e.patient_id for e in response.context["access_log"].events] == [patient.pk]


def test_a_station_read_shows_its_ae_title_and_address(admin_browser, order):
    AccessEvent.objects.create(
        action=AccessAction.STATION_FIND,
        calling_ae="CT01",
        address="10.1.2.3",
        patient=order.patient,
        order=order,
        item_count=3,
    )

    page = patient_page(admin_browser, order.patient)

    assert "CT01 (10.1.2.3)" in page
    assert "3 items returned" in page


def test_the_reads_are_in_thai_for_a_thai_admin(admin_browser, order):
    AccessEvent.objects.create(
        action=AccessAction.STATION_FIND, calling_ae="CT01", patient=order.patient, order=order, item_count=1
    )
    admin_browser.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    try:
        page = patient_page(admin_browser, order.patient)
    finally:
        translation.deactivate()

    # The section only: the rest of the page is other tests' business.
    section = page[page.index('<section class="mt-4" id="access-log">') :]
    section = section[: section.index("</section>")]
    assert "สถานีสอบถามด้วย DICOM C-FIND" in section
    assert english_leftovers(visible_text(section)) == []
