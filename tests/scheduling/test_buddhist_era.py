"""The Buddhist era in the Thai interface: dates read and typed in B.E. (C.E. + 543), stored in C.E.

What a Thai clerk sees or types has the B.E. year; what code reads (?date= links, datetime attributes,
the ISO values behind the forms) stays C.E.; the English interface stays C.E. throughout.
"""

import re
from datetime import date, datetime, timedelta

import pytest
from django.conf import settings
from django.core.exceptions import ValidationError
from django.template import Context, Template
from django.urls import reverse
from django.utils import timezone, translation

from hl7_link.models import AckCode, Message
from ris.dates import BuddhistDateFormat, LocalDateField, date_format, parse_local_date
from scheduling.forms import BookingForm, OrderFilterForm
from scheduling.models import Order, Patient
from scheduling.roles import ADMIN
from tests.factories import OrderFactory, ProcedureFactory, RoomFactory, ThaiPatientFactory, UserFactory
from tests.scheduling.test_i18n import main_pages, visible_text

MOMENT = datetime(2026, 12, 3, 9, 5)


@pytest.fixture(autouse=True)
def back_to_english():
    # A request in Thai leaves Thai active in this thread; later tests expect the default language.
    yield
    translation.deactivate()


def render(template: str, **context) -> str:
    return Template(template).render(Context(context))


# --- shown --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "thai", "english"),
    [
        ("DATE_FORMAT", "3 ธันวาคม 2569", "3 Dec 2026"),
        ("SHORT_DATE_FORMAT", "03/12/2569", "03/12/2026"),
        ("DATETIME_FORMAT", "3 ธันวาคม 2569 09:05", "3 Dec 2026 09:05"),
        ("SHORT_DATETIME_FORMAT", "03/12/2569 09:05", "03/12/2026 09:05"),
        ("YEAR_MONTH_FORMAT", "ธันวาคม 2569", "December 2026"),
    ],
)
def test_the_date_filter_writes_the_year_in_be_in_thai_and_ce_in_english(fmt, thai, english):
    moment = timezone.make_aware(MOMENT)
    template = f'{{{{ moment|date:"{fmt}" }}}}'

    with translation.override("th"):
        assert render(template, moment=moment) == thai
    with translation.override("en"):
        assert render(template, moment=moment) == english


def test_the_date_filter_without_a_format_is_the_date_format():
    with translation.override("th"):
        assert render("{{ day|date }}", day=date(1980, 5, 17)) == "17 พฤษภาคม 2523"


def test_machine_formats_stay_ce_in_thai():
    moment = timezone.make_aware(MOMENT)

    with translation.override("th"):
        assert render("{{ m|date:'Y-m-d' }}", m=moment) == "2026-12-03"
        assert render("{{ m|date:'c' }}", m=moment) == "2026-12-03T09:05:00+07:00"
        assert render("{{ m|date:'U' }}", m=moment) == str(int(moment.timestamp()))
        assert render("{{ m|time:'H:i' }}", m=moment) == "09:05"


def test_two_digit_and_iso_week_years_are_be_too():
    # 1 January 2027 (B.E. 2570) is in ISO week 53 of 2026 (B.E. 2569).
    assert BuddhistDateFormat(date(2027, 1, 1)).format("y o Y") == "70 2569 2570"


def test_python_date_format_follows_the_same_rule():
    with translation.override("th"):
        assert date_format(date(2026, 12, 4), "SHORT_DATE_FORMAT") == "04/12/2569"
        assert date_format(date(2026, 12, 4), "Y-m-d") == "2026-12-04"
    with translation.override("en"):
        assert date_format(date(2026, 12, 4), "SHORT_DATE_FORMAT") == "04/12/2026"


# --- typed --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "day"),
    [
        ("17/05/2523", date(1980, 5, 17)),
        ("17-05-2523", date(1980, 5, 17)),
        ("17.5.2523", date(1980, 5, 17)),
        ("17052523", date(1980, 5, 17)),
        (" ๑๗/๐๕/๒๕๒๓ ", date(1980, 5, 17)),  # Thai digits
        ("1980-05-17", date(1980, 5, 17)),  # ISO is C.E. in every language
        ("04/12/2569", date(2026, 12, 4)),
    ],
)
def test_thai_dates_are_typed_in_be(typed, day):
    with translation.override("th"):
        assert parse_local_date(typed) == day


@pytest.mark.parametrize(
    ("typed", "day"),
    [("17/05/1980", date(1980, 5, 17)), ("17051980", date(1980, 5, 17)), ("1980-05-17", date(1980, 5, 17))],
)
def test_english_dates_are_typed_in_ce(typed, day):
    with translation.override("en"):
        assert parse_local_date(typed) == day


def test_a_ce_year_typed_in_thai_is_refused_with_the_be_year_to_type():
    with translation.override("th"), pytest.raises(ValidationError) as refused:
        parse_local_date("17/05/1980")

    assert refused.value.code == "era"
    assert "2523" in refused.value.messages[0] and "1980" in refused.value.messages[0]


@pytest.mark.parametrize("typed", ["17/05/23", "31/02/2569", "2569-12-04", "tomorrow", "17/05", "1/2/3/2569"])
def test_an_ambiguous_or_impossible_thai_date_is_refused_with_an_example(typed):
    with translation.override("th"), pytest.raises(ValidationError) as refused:
        parse_local_date(typed)

    assert refused.value.code == "invalid"
    assert re.search(r"31/12/25\d\d", refused.value.messages[0])


def test_an_impossible_iso_date_is_told_in_djangos_words_as_the_api_says_it():
    with translation.override("en"), pytest.raises(ValidationError) as refused:
        parse_local_date("1970-02-30")

    assert refused.value.messages == ["Enter a valid date."]


def test_the_field_shows_its_value_in_the_interface_era():
    field = LocalDateField()

    with translation.override("th"):
        html = field.widget.render("day", date(2026, 12, 4))
        assert 'value="04/12/2569"' in html
        assert 'inputmode="numeric"' in html and 'type="text"' in html
        assert "placeholder=" in html
        # A link's ISO ?date= is shown in B.E. too; what the clerk typed comes back as typed.
        assert 'value="04/12/2569"' in field.widget.render("day", "2026-12-04")
        assert 'value="4/12/69"' in field.widget.render("day", "4/12/69")
    with translation.override("en"):
        assert 'value="04/12/2026"' in field.widget.render("day", date(2026, 12, 4))


@pytest.mark.django_db
def test_a_filter_form_in_thai_shows_the_error_next_to_the_field():
    with translation.override("th"):
        form = OrderFilterForm({"date_from": "01/12/2026"})

        assert not form.is_valid()
        assert "2569" in form.errors["date_from"][0]


@pytest.mark.django_db
def test_a_booking_form_reads_a_be_date_in_thai(patient, procedure, room):
    with translation.override("th"):
        form = BookingForm(
            {"patient": patient.pk, "procedure": procedure.pk, "room": room.pk, "date": "04/12/2569"}
        )
        form.is_valid()

    assert form.cleaned_data["date"] == date(2026, 12, 4)


# --- pages --------------------------------------------------------------------------------------


@pytest.fixture
def thai_clerk(client, user):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    return client


@pytest.fixture
def thai_order(user, tomorrow_at):
    procedure = ProcedureFactory(code_value="CTA01", code_meaning="ซีทีช่องท้อง")
    room = RoomFactory(name="ห้องซีที 1", ae_title="CT01", station_name="CT01", location="ตึก 1")
    return OrderFactory(
        accession_number="26010100007",
        patient=ThaiPatientFactory(mrn="HN000777"),
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )


def years(order: Order) -> tuple[set[str], set[str]]:
    """The B.E. years a Thai page about `order` may show, and the C.E. years it must not."""
    ce = {
        timezone.localdate().year,
        timezone.localtime(order.scheduled_start).year,
        order.patient.birth_date.year,
    }
    return {str(year + 543) for year in ce}, {str(year) for year in ce}


@pytest.mark.django_db
def test_thai_pages_show_be_years_and_no_ce_year(thai_clerk, thai_order):
    be, ce = years(thai_order)
    pages = [
        *main_pages(thai_order),
        reverse("scheduling:to_schedule"),
        reverse("scheduling:to_call_back"),
        reverse("mwl_server:query"),
        reverse("pacs_link:unmatched_list"),
        reverse("scheduling:order_list") + "?date_from=01/01/2500&date_to=31/12/2600",
    ]
    for url in pages:
        response = thai_clerk.get(url)
        assert response.status_code == 200, url
        text = visible_text(response.content.decode())
        assert [year for year in ce if re.search(rf"(?<!\d){year}(?!\d)", text)] == [], (url, text)

    slip = visible_text(
        thai_clerk.get(reverse("scheduling:order_slip", args=[thai_order.pk])).content.decode()
    )
    assert "17 พฤษภาคม 2523" in slip  # the birth date
    assert any(year in slip for year in be)


@pytest.mark.django_db
def test_the_interface_pages_show_be_years_in_thai(client, tomorrow_at):
    client.force_login(UserFactory(username="it", roles=[ADMIN]))
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    message = Message.objects.create(
        sending_application="HOSXP",
        message_type="ORM^O01",
        version="2.3.1",
        raw=b"MSH|^~\\&|HOSXP|HOSPITAL|RIS|RADIOLOGY|20261203||ORM^O01|X|P|2.3.1\r",
        ack_code=AckCode.AA,
    )
    received = timezone.localtime(message.received_at)
    be, ce = str(received.year + 543), str(received.year)

    text = visible_text(client.get(reverse("hl7_link:message_list")).content.decode())
    assert be in text and ce not in text
    detail = client.get(reverse("hl7_link:message_detail", args=[message.pk])).content.decode()
    # The raw message further down is the HIS's own text (20261203); the page's own date is B.E.
    with translation.override("th"):
        shown = date_format(received, "DATETIME_FORMAT")
    assert be in shown and shown in detail


@pytest.mark.django_db
def test_the_board_goes_to_the_iso_address_of_a_typed_be_date(thai_clerk):
    response = thai_clerk.get(reverse("scheduling:schedule"), {"date": "04/12/2569"})

    assert response.status_code == 302
    assert response.url == reverse("scheduling:schedule") + "?date=2026-12-04"


@pytest.mark.django_db
def test_the_board_shows_its_date_box_in_be_and_links_in_iso(thai_clerk):
    html = thai_clerk.get(reverse("scheduling:schedule"), {"date": "2026-12-04"}).content.decode()

    assert 'name="date" value="04/12/2569"' in html
    assert "?date=2026-12-05" in html and "?date=2026-12-03" in html
    assert "4 ธันวาคม 2569" in html


@pytest.mark.django_db
def test_a_be_date_posted_in_thai_books_the_right_ce_day(thai_clerk, patient, procedure, room, tomorrow_at):
    day = timezone.localdate() + timedelta(days=1)
    typed = f"{day:%d/%m}/{day.year + 543}"
    data = {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": typed,
        "slot": "10:30",
        "priority": "ROUTINE",
        "reason": "Headache",
        "confirm_patient_overlap": "False",
    }

    response = thai_clerk.post(reverse("scheduling:order_create"), data)

    order = Order.objects.get()
    assert response.url == order.get_absolute_url()
    assert order.scheduled_start == tomorrow_at(10, 30)


@pytest.mark.django_db
def test_a_ce_date_posted_in_thai_books_nothing_and_says_to_type_be(thai_clerk, patient, procedure, room):
    day = timezone.localdate() + timedelta(days=1)
    data = {
        "patient": patient.pk,
        "procedure": procedure.pk,
        "room": room.pk,
        "date": f"{day:%d/%m/%Y}",
        "slot": "10:30",
        "priority": "ROUTINE",
        "confirm_patient_overlap": "False",
    }

    response = thai_clerk.post(reverse("scheduling:order_create"), data)

    assert response.status_code == 200
    assert not Order.objects.exists()
    assert str(day.year + 543) in response.context["form"].errors["date"][0]


@pytest.mark.django_db
def test_a_thai_patient_registered_with_a_be_birth_date_is_stored_in_ce(thai_clerk):
    response = thai_clerk.post(
        reverse("scheduling:patient_create"),
        {
            "mrn": "HN000999",
            "issuer": "RIS",
            "family_name": "ใจดี",
            "given_name": "สมศรี",
            "birth_date": "17/05/2523",
            "preferred_language": "th",
        },
    )

    assert response.status_code == 302, response.context["form"].errors
    assert Patient.objects.get(mrn="HN000999").birth_date == date(1980, 5, 17)
