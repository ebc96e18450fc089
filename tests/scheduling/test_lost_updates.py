"""Two clerks editing one record: the second never undoes the first one's change without a word.

Each edit form carries the version it was opened at; a save over a change made since is refused, with
the saved value and the clerk's at each field, and goes through once the clerk submits again.
"""

import pytest
from django.urls import reverse

from scheduling import services

pytestmark = pytest.mark.django_db


def opened(client, url: str) -> dict:
    """What the browser posts back from the edit page at `url`: every field with its value."""
    response = client.get(url)
    assert response.status_code == 200
    form = response.context["form"]
    assert f'<input type="hidden" name="version" value="{form.instance.version}"' in response.content.decode()
    return posted_back(response, form)


def posted_back(response, form) -> dict:
    return {field.html_name: field.value() for field in form if field.value() is not None}


def field_errors(response, name: str) -> list[str]:
    return response.context["form"].errors.get(name, [])


# --- patients ---------------------------------------------------------------------------------


def test_the_second_clerk_is_told_about_the_first_clerks_phone_and_nothing_is_lost(clerk, patient):
    url = reverse("scheduling:patient_update", args=[patient.pk])
    clerk_a, clerk_b = opened(clerk, url), opened(clerk, url)

    assert clerk.post(url, {**clerk_a, "phone": "081 111 1111"}).status_code == 302
    response = clerk.post(url, {**clerk_b, "allergies": "Iodine"})

    assert response.status_code == 200
    assert field_errors(response, "phone") == [
        "Changed by someone else while you were editing: now “081 111 1111”, yours “—”."
    ]
    assert "Someone else saved this record while you were editing it." in response.content.decode()
    assert field_errors(response, "allergies") == []  # only clerk B changed it: no conflict there
    patient.refresh_from_db()
    assert (patient.phone, patient.allergies) == ("081 111 1111", "")


def test_submitting_again_after_seeing_the_conflict_saves_the_clerks_values(clerk, patient):
    url = reverse("scheduling:patient_update", args=[patient.pk])
    clerk_a, clerk_b = opened(clerk, url), opened(clerk, url)
    clerk.post(url, {**clerk_a, "phone": "081 111 1111"})
    refused = clerk.post(url, {**clerk_b, "phone": "082 222 2222", "allergies": "Iodine"})

    again = clerk.post(url, posted_back(refused, refused.context["form"]))

    assert again.status_code == 302
    patient.refresh_from_db()
    assert (patient.phone, patient.allergies) == ("082 222 2222", "Iodine")


def test_a_save_from_a_current_form_goes_through_and_counts_a_version(clerk, patient):
    url = reverse("scheduling:patient_update", args=[patient.pk])

    response = clerk.post(url, {**opened(clerk, url), "phone": "081 111 1111"})

    assert response.status_code == 302
    patient.refresh_from_db()
    assert (patient.phone, patient.version) == ("081 111 1111", 2)
    assert opened(clerk, url)["version"] == 2


def test_an_edit_saved_between_the_form_check_and_the_save_is_caught_under_the_lock(
    clerk, patient, monkeypatch
):
    url = reverse("scheduling:patient_update", args=[patient.pk])
    data = {**opened(clerk, url), "allergies": "Iodine"}
    update = services.patient_update

    def another_clerk_first(**kwargs):
        update(patient=patient, phone="081 111 1111")  # lands after the form's check, before this save
        return update(**kwargs)

    monkeypatch.setattr(services, "patient_update", another_clerk_first)
    response = clerk.post(url, data)

    assert response.status_code == 200
    assert field_errors(response, "phone") == [
        "Changed by someone else while you were editing: now “081 111 1111”, yours “—”."
    ]
    assert response.context["form"]["version"].value() == "2"
    patient.refresh_from_db()
    assert (patient.phone, patient.allergies) == ("081 111 1111", "")


def test_the_service_refuses_a_stale_version_naming_the_field_and_both_values(patient):
    services.patient_update(patient=patient, expected_version=1, phone="081 111 1111")

    with pytest.raises(services.EditConflict) as refused:
        services.patient_update(patient=patient, expected_version=1, phone="", sex="F")

    assert set(refused.value.message_dict) == {"__all__", "phone"}
    assert refused.value.version == 2
    patient.refresh_from_db()
    assert (patient.phone, patient.sex) == ("081 111 1111", "M")


def test_the_service_lets_through_a_stale_version_that_undoes_nothing(patient):
    services.patient_update(patient=patient, expected_version=1, phone="081 111 1111")

    # The clerk's form had the old phone, but they typed the new one too: nothing of the other is lost.
    services.patient_update(patient=patient, expected_version=1, phone="081 111 1111", allergies="Iodine")

    patient.refresh_from_db()
    assert (patient.phone, patient.allergies, patient.version) == ("081 111 1111", "Iodine", 3)


def test_callers_that_own_the_record_check_no_version(patient):
    services.patient_update(patient=patient, phone="081 111 1111")
    services.patient_update(patient=patient, phone="082 222 2222")  # HL7: the sender's data wins

    patient.refresh_from_db()
    assert (patient.phone, patient.version) == ("082 222 2222", 3)


def test_the_admin_patient_page_refuses_a_stale_save(admin_client, patient):
    url = reverse("admin:scheduling_patient_change", args=[patient.pk])
    page = admin_client.get(url).content.decode()
    assert 'name="version" value="1"' in page
    data = {"mrn": patient.mrn, "issuer": "RIS", "family_name": "Jaidee", "birth_date": "1980-05-17"}
    services.patient_update(patient=patient, phone="081 111 1111")

    response = admin_client.post(url, {**data, "given_name": patient.given_name, "version": "1"})

    assert response.status_code == 200
    assert "now “081 111 1111”, yours “—”" in response.content.decode()
    patient.refresh_from_db()
    assert patient.phone == "081 111 1111"


# --- orders -----------------------------------------------------------------------------------


def test_the_second_clerk_does_not_wipe_the_first_clerks_notes(clerk, order):
    url = reverse("scheduling:order_update", args=[order.pk])
    clerk_a, clerk_b = opened(clerk, url), opened(clerk, url)

    assert clerk.post(url, {**clerk_a, "notes": "Wheelchair"}).status_code == 302
    response = clerk.post(url, {**clerk_b, "priority": "STAT"})

    assert response.status_code == 200
    assert field_errors(response, "notes") == [
        "Changed by someone else while you were editing: now “Wheelchair”, yours “—”."
    ]
    order.refresh_from_db()
    assert (order.notes, order.priority) == ("Wheelchair", "ROUTINE")

    again = clerk.post(url, {**posted_back(response, response.context["form"]), "notes": "Wheelchair"})

    assert again.status_code == 302
    order.refresh_from_db()
    assert (order.notes, order.priority, order.version) == ("Wheelchair", "STAT", 3)


def test_a_conflicting_choice_is_shown_by_its_label(order, user):
    services.order_update_details(order=order, user=user, expected_version=1, priority="STAT")

    with pytest.raises(services.EditConflict) as refused:
        services.order_update_details(order=order, user=user, expected_version=1, priority="LOW")

    assert refused.value.message_dict["priority"] == [
        "Changed by someone else while you were editing: now “STAT”, yours “Low”."
    ]


def test_a_reschedule_in_between_is_no_conflict_for_the_details(order, user, tomorrow_at):
    services.order_reschedule(order=order, start=tomorrow_at(11), user=user)

    services.order_update_details(order=order, user=user, expected_version=1, notes="Wheelchair")

    order.refresh_from_db()
    assert (order.notes, order.scheduled_start) == ("Wheelchair", tomorrow_at(11))


def test_the_admin_order_page_refuses_a_stale_save_of_the_details(admin_client, order, user):
    url = reverse("admin:scheduling_order_change", args=[order.pk])
    assert 'name="version" value="1"' in admin_client.get(url).content.decode()
    services.order_update_details(order=order, user=user, notes="Wheelchair")
    start = order.scheduled_start.astimezone()

    response = admin_client.post(
        url,
        {
            "room": order.room.pk,
            "scheduled_start_0": f"{start:%Y-%m-%d}",
            "scheduled_start_1": f"{start:%H:%M}",
            "duration_minutes": order.duration_minutes,
            "priority": "STAT",
            "notes": "",
            "status": order.status,
            "version": "1",
        },
    )

    assert response.status_code == 200
    assert "now “Wheelchair”, yours “—”" in response.content.decode()
    order.refresh_from_db()
    assert (order.notes, order.priority) == ("Wheelchair", "ROUTINE")


def test_registering_a_new_patient_needs_no_version(clerk):
    response = clerk.post(
        reverse("scheduling:patient_create"),
        {"mrn": "HN900", "issuer": "RIS", "family_name": "Srisuk", "birth_date": "1990-01-01"},
    )

    assert response.status_code == 302
