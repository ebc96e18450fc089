"""The HL7 link in the admin: senders and receivers saved through the services, the logs read-only."""

import pytest
from django.urls import reverse

from hl7_link.models import (
    OUTBOUND_KINDS,
    AckCode,
    Message,
    OutboundMessage,
    OutboundState,
    Receiver,
    Sender,
)
from hl7_link.services import sender_save
from scheduling.models import OrderEvent
from scheduling.roles import ADMIN
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def it_client(client):
    """Logged in as a member of the Admin group (staff, model permissions), not a superuser."""
    client.force_login(UserFactory(username="it", roles=[ADMIN]))
    return client


SENDER = {
    "application": "HOSXP",
    "description": "Hospital HIS gateway",
    "enabled": "on",
    "default_charset": "TIS-620",
    "issuer": "HOSPITAL",
    "station_field": "",
    "allowed_addresses": "",
}


def test_adding_a_sender_creates_its_account_which_cannot_be_edited(it_client):
    response = it_client.post(reverse("admin:hl7_link_sender_add"), SENDER)

    assert response.status_code == 302, response.content.decode()[:2000]
    sender = Sender.objects.get(application="HOSXP")
    assert sender.default_charset == "TIS-620" and sender.issuer == "HOSPITAL"
    assert sender.user.username == "hl7-hosxp" and not sender.user.has_usable_password()
    page = it_client.get(reverse("admin:hl7_link_sender_change", args=[sender.pk])).content.decode()
    assert "hl7-hosxp" in page and 'name="user"' not in page


def test_changing_a_sender_keeps_its_account(it_client):
    sender = sender_save(sender=Sender(application="HOSXP"))
    account = sender.user_id
    response = it_client.post(
        reverse("admin:hl7_link_sender_change", args=[sender.pk]), {**SENDER, "enabled": ""}
    )
    assert response.status_code == 302
    sender.refresh_from_db()
    assert sender.user_id == account and not sender.enabled and not sender.user.is_active


@pytest.mark.parametrize(
    "fields, error",
    [
        ({"allowed_addresses": "10.1.2.300"}, "is not an address or network"),
        ({"station_field": "room 3"}, "Write a field like PV1-3 or OBR-24"),
    ],
)
def test_a_sender_the_listener_could_not_use_is_refused_at_the_field(it_client, fields, error):
    response = it_client.post(reverse("admin:hl7_link_sender_add"), {**SENDER, **fields})
    assert response.status_code == 200
    assert error in response.content.decode()
    assert not Sender.objects.exists()


def test_a_sender_limited_to_its_gateways_addresses_is_saved(it_client):
    data = {**SENDER, "allowed_addresses": "10.1.2.3\n10.9.0.0/16", "station_field": "pv1-3"}
    assert it_client.post(reverse("admin:hl7_link_sender_add"), data).status_code == 302
    sender = Sender.objects.get()
    assert sender.station_field == "PV1-3" and "10.9.0.0/16" in sender.allowed_addresses


def test_a_sender_cannot_be_deleted(it_client):
    sender = sender_save(sender=Sender(application="HOSXP"))
    response = it_client.post(reverse("admin:hl7_link_sender_delete", args=[sender.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Sender.objects.filter(pk=sender.pk).exists()


RECEIVER = {
    "name": "HOSxP gateway",
    "host": "10.1.1.20",
    "port": "2576",
    "receiving_application": "HOSXP",
    "receiving_facility": "HOSPITAL",
    "charset": "UNICODE UTF-8",
    "version": "2.3.1",
    "appointment_style": "SIU",
    "enabled": "on",
}


def test_a_receiver_chooses_its_events_from_checkboxes_and_starts_at_the_streams_end(it_client, book):
    book()
    last_event = OrderEvent.objects.latest("id").pk
    add = reverse("admin:hl7_link_receiver_add")
    form = it_client.get(add).content.decode()
    for kind in OUTBOUND_KINDS:
        assert f'type="checkbox" name="kinds" value="{kind}"' in form
    assert 'value="details_changed"' not in form

    response = it_client.post(add, {**RECEIVER, "kinds": ["booked", "cancelled"]})

    assert response.status_code == 302, response.content.decode()[:2000]
    receiver = Receiver.objects.get(name="HOSxP gateway")
    assert receiver.kinds == ["booked", "cancelled"]
    assert receiver.last_event_id == last_event


def test_a_receiver_is_refused_an_event_kind_it_cannot_be_sent(it_client):
    response = it_client.post(
        reverse("admin:hl7_link_receiver_add"), {**RECEIVER, "kinds": ["patient_changed"]}
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not Receiver.objects.exists()


def test_the_message_log_is_read_only_and_links_to_the_interface_page(it_client):
    message = Message.objects.create(
        sending_application="HOSXP",
        control_id="M0001",
        message_type="ORM^O01",
        raw=b"MSH|^~\\&|HOSXP|||||ORM^O01|M0001|P|2.3.1\r",
        ack_code=AckCode.AE,
        error="OBR-4: procedure code MRXYZ is not in the catalog",
    )
    listing = it_client.get(reverse("admin:hl7_link_message_changelist"), {"q": "M0001"})
    assert listing.status_code == 200 and "M0001" in listing.content.decode()
    assert it_client.get(reverse("admin:hl7_link_message_add")).status_code == 403

    page = it_client.get(reverse("admin:hl7_link_message_change", args=[message.pk])).content.decode()

    assert reverse("hl7_link:message_detail", args=[message.pk]) in page
    assert "MRXYZ" in page and 'name="error"' not in page
    response = it_client.post(reverse("admin:hl7_link_message_delete", args=[message.pk]), {"post": "yes"})
    assert response.status_code == 403
    assert Message.objects.filter(pk=message.pk).exists()


def test_the_outbox_is_read_only(it_client, book):
    order = book()
    event = OrderEvent.objects.filter(order=order).latest("id")
    receiver = Receiver.objects.create(name="HIS", host="127.0.0.1", port=9, last_event_id=event.pk)
    outbound = OutboundMessage.objects.create(
        receiver=receiver,
        event=event,
        order=order,
        control_id="RIS000001",
        message_type="SIU^S12",
        text="MSH|^~\\&|RIS|RADIOLOGY|HIS||20261203||SIU^S12|RIS000001|P|2.3.1\rSCH|1\r",
        state=OutboundState.REJECTED,
        last_error="AE: unknown patient",
    )
    assert it_client.get(reverse("admin:hl7_link_outboundmessage_changelist")).status_code == 200
    page = it_client.get(
        reverse("admin:hl7_link_outboundmessage_change", args=[outbound.pk])
    ).content.decode()
    assert "RIS000001" in page and "AE: unknown patient" in page and 'name="state"' not in page
    assert "SCH|1" in page
    assert it_client.get(reverse("admin:hl7_link_outboundmessage_add")).status_code == 403
