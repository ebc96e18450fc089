"""The access log in the admin: Admin can read it, filtered by patient; nobody can add, change or delete."""

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from access_audit.models import AccessAction, AccessEvent
from scheduling.roles import ADMIN, roles_ensure
from tests.factories import PatientFactory

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:access_audit_accessevent_changelist"


@pytest.fixture
def two_patients_read(admin_member):
    first, second = PatientFactory(mrn="HN111111"), PatientFactory(mrn="HN222222")
    for patient in (first, second):
        AccessEvent.objects.create(action=AccessAction.PATIENT_VIEWED, user=admin_member, patient=patient)
    return first, second


def test_the_admin_group_may_view_the_log_and_nothing_more():
    roles_ensure()  # idempotent: the migration already did it
    codenames = set(
        Group.objects.get(name=ADMIN)
        .permissions.filter(content_type__app_label="access_audit")
        .values_list("codename", flat=True)
    )
    assert codenames == {"view_accessevent"}


def test_the_admin_lists_one_patients_reads_from_the_patient_page_link(admin_browser, two_patients_read):
    first, second = two_patients_read

    response = admin_browser.get(reverse(CHANGELIST), {"patient__id__exact": first.pk})

    assert response.status_code == 200
    assert [e.patient_id for e in response.context["cl"].result_list] == [first.pk]


def test_the_log_is_read_only_even_for_a_superuser(admin_client, two_patients_read):
    event = AccessEvent.objects.first()

    changelist = admin_client.get(reverse(CHANGELIST)).content.decode()
    assert reverse("admin:access_audit_accessevent_add") not in changelist
    assert 'value="delete_selected"' not in changelist
    assert admin_client.get(reverse("admin:access_audit_accessevent_add")).status_code == 403
    change = reverse("admin:access_audit_accessevent_change", args=[event.pk])
    assert admin_client.post(change, {"action": AccessAction.SLIP_PRINTED}).status_code == 403
    delete = reverse("admin:access_audit_accessevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert AccessEvent.objects.filter(pk=event.pk, action=AccessAction.PATIENT_VIEWED).exists()
    # The detail page still shows the record, read-only.
    assert admin_client.get(change).status_code == 200


def test_the_front_desk_cannot_open_the_log(clerk, two_patients_read):
    response = clerk.get(reverse(CHANGELIST))

    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_patient_with_reads_cannot_be_deleted_and_lose_them(two_patients_read):
    from django.db.models import ProtectedError

    first, _ = two_patients_read
    with pytest.raises(ProtectedError):
        first.delete()
