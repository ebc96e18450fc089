"""The appointment slip speaks the patient's language, whatever the clerk's interface language: its
labels, its dates and the procedure's preparation text. The page around it stays in the clerk's."""

import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import OrderFactory, PatientFactory, ProcedureFactory, ThaiPatientFactory

pytestmark = pytest.mark.django_db

THAI_PREP = "งดอาหาร 4 ชั่วโมงก่อนตรวจ"
ENGLISH_PREP = "Nothing to eat for 4 hours before the exam."


@pytest.fixture
def procedure(db):
    return ProcedureFactory(
        code_meaning="CT Abdomen with contrast", instructions_th=THAI_PREP, instructions_en=ENGLISH_PREP
    )


def slip(client, user, order, *, clerk_language: str) -> str:
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = clerk_language
    response = client.get(reverse("scheduling:order_slip", args=[order.pk]))
    assert response.status_code == 200
    return response.content.decode()


def article(page: str) -> str:
    """The slip itself, without the page's menu and buttons."""
    return page.split('<article class="slip"', 1)[1].split("</article>", 1)[0]


def test_a_thai_patients_slip_is_in_thai_when_the_clerk_reads_english(
    client, user, room, procedure, tomorrow_at
):
    order = OrderFactory(
        patient=ThaiPatientFactory(preferred_language="th"),
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )

    page = slip(client, user, order, clerk_language="en")
    text = article(page)

    assert '<html lang="en">' in page  # the clerk's page
    assert text.startswith(' lang="th"')
    assert "ใบนัด" in text  # "Appointment slip"
    assert "Appointment slip" not in text and "How to prepare" not in text and "Birth date" not in text
    assert THAI_PREP in text and ENGLISH_PREP not in text
    assert "พฤษภาคม" in text and "May" not in text  # the birth date, 17 May 1980, in Thai
    # The tools around the slip stay in the clerk's language.
    assert "Back to the order" in page.split('<article class="slip"', 1)[0]


def test_an_english_patients_slip_is_in_english_when_the_clerk_reads_thai(
    client, user, room, procedure, tomorrow_at
):
    order = OrderFactory(
        patient=PatientFactory(family_name="Smith", given_name="John", preferred_language="en"),
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )

    page = slip(client, user, order, clerk_language="th")
    text = article(page)

    assert '<html lang="th">' in page
    assert text.startswith(' lang="en"')
    assert "Appointment slip" in text and "How to prepare" in text and "17 May 1980" in text
    assert ENGLISH_PREP in text and THAI_PREP not in text
    assert "ใบนัด" not in text


def test_a_procedure_with_one_language_only_prints_that_one_rather_than_nothing(
    client, user, room, tomorrow_at
):
    order = OrderFactory(
        patient=PatientFactory(preferred_language="en"),
        procedure=ProcedureFactory(instructions_th=THAI_PREP),
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )

    assert THAI_PREP in article(slip(client, user, order, clerk_language="en"))


def test_a_procedure_without_instructions_prints_no_preparation_section(client, user, room, tomorrow_at):
    order = OrderFactory(
        patient=ThaiPatientFactory(),
        procedure=ProcedureFactory(),
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )

    assert "slip-preparation" not in slip(client, user, order, clerk_language="en")
