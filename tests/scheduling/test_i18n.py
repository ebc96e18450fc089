"""The front desk in Thai: every UI string has a Thai translation, and no page shows English to a Thai clerk."""

import os
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import translation

from tests.factories import OrderFactory, ProcedureFactory, RoomFactory, ThaiPatientFactory

PO = Path(settings.BASE_DIR) / "locale" / "th" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")


def po_entries(po: Path = PO) -> list[dict]:
    """Each entry of a .po (the Thai one by default): msgid, msgstr and flags; obsolete ones left out."""
    return [
        # Thai has a single plural form, so a plural entry has just msgstr[0].
        {"msgid": e.msgid, "msgstr": e.msgstr or e.msgstr_plural.get(0, ""), "flags": e.flags}
        for e in polib.pofile(str(po))
        if not e.obsolete
    ]


def test_the_parser_reads_entries_not_separated_by_a_blank_line(tmp_path):
    po = tmp_path / "django.po"
    po.write_text('msgid "Yes"\nmsgstr "ใช่"\n#: x.html\nmsgid "No"\nmsgstr "ไม่"\n', encoding="utf-8")

    assert [(e["msgid"], e["msgstr"]) for e in po_entries(po)] == [("Yes", "ใช่"), ("No", "ไม่")]


def test_the_thai_catalogue_is_complete():
    entries = po_entries()

    assert len(entries) > 200
    assert [e["msgid"] for e in entries if not e["msgstr"]] == []
    assert [e["msgid"] for e in entries if "fuzzy" in e["flags"]] == []


def test_the_thai_catalogue_keeps_every_placeholder():
    for entry in po_entries():
        assert sorted(PLACEHOLDER.findall(entry["msgid"])) == sorted(PLACEHOLDER.findall(entry["msgstr"])), (
            entry
        )


def test_msgfmt_accepts_the_catalogue():
    msgfmt = shutil.which("msgfmt")
    assert msgfmt, "msgfmt is missing: apt-get install gettext"
    result = subprocess.run(
        [msgfmt, "--check", "--statistics", "-o", "/dev/null", str(PO)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "untranslated" not in result.stderr and "fuzzy" not in result.stderr, result.stderr


class VisibleText(HTMLParser):
    """The text a person sees (or hears from a screen reader): text nodes and labelling attributes."""

    ATTRIBUTES = ("placeholder", "title", "aria-label", "alt")

    def __init__(self):
        super().__init__()
        self.parts: list[str] = []
        self.hidden = 0

    def handle_starttag(self, tag, attrs):
        if tag in ("script", "style"):
            self.hidden += 1
        self.parts += [value for name, value in attrs if name in self.ATTRIBUTES and value]

    def handle_endtag(self, tag):
        if tag in ("script", "style"):
            self.hidden -= 1

    def handle_data(self, data):
        if not self.hidden:
            self.parts.append(data)


def visible_text(html: str) -> str:
    parser = VisibleText()
    parser.feed(html)
    return " ".join(" ".join(parser.parts).split())


def english_leftovers(text: str) -> list[str]:
    """The English UI strings of the catalogue that appear in `text` as whole words."""
    found = []
    for entry in po_entries():
        msgid, msgstr = entry["msgid"], entry["msgstr"]
        if msgid in msgstr:  # "CT" -> "ซีที (CT)": the English is part of the Thai on purpose
            continue
        for fragment in PLACEHOLDER.split(msgid):
            fragment = fragment.strip(" .:;,")
            if len(fragment) < 2 or not re.search(r"[A-Za-z]", fragment):
                continue
            if re.search(rf"(?<![A-Za-z]){re.escape(fragment)}(?![A-Za-z])", text):
                found.append(msgid)
    return found


@pytest.fixture(autouse=True)
def back_to_english():
    # A request in Thai leaves Thai active in this thread; later tests expect the default language.
    yield
    translation.deactivate()


@pytest.fixture
def thai_clerk(client, user):
    client.force_login(user)
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"
    return client


@pytest.fixture
def order(user, tomorrow_at):
    # Patient data in Thai and neutral codes, so nothing the test inserted looks like a UI string.
    procedure = ProcedureFactory(
        code_value="CTA01", code_meaning="ซีทีช่องท้อง", instructions_th="งดอาหาร 4 ชั่วโมง"
    )
    room = RoomFactory(name="ห้องซีที 1", ae_title="CT01", station_name="CT01", location="ตึก 1")
    return OrderFactory(
        accession_number="26010100007",
        patient=ThaiPatientFactory(mrn="HN000777", allergies="ไอโอดีน"),
        procedure=procedure,
        room=room,
        scheduled_start=tomorrow_at(9),
        booked_by=user,
    )


def main_pages(order):
    patient = order.patient
    return [
        reverse("scheduling:schedule") + f"?date={order.scheduled_start:%Y-%m-%d}",
        reverse("scheduling:patient_list"),
        reverse("scheduling:patient_list") + "?q=ใจดี",
        reverse("scheduling:patient_create"),
        reverse("scheduling:patient_detail", args=[patient.pk]),
        reverse("scheduling:patient_update", args=[patient.pk]),
        reverse("scheduling:order_list"),
        reverse("scheduling:order_create"),
        reverse("scheduling:order_create") + f"?patient={patient.pk}",
        reverse("scheduling:order_detail", args=[order.pk]),
        reverse("scheduling:order_reschedule", args=[order.pk]),
        reverse("scheduling:order_update", args=[order.pk]),
        reverse("scheduling:order_slip", args=[order.pk]),
        reverse("worklist_export:problems"),
    ]


@pytest.mark.django_db
def test_no_page_shows_english_ui_text_to_a_thai_clerk(thai_clerk, order):
    for url in main_pages(order):
        response = thai_clerk.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert '<html lang="th">' in html, url
        assert english_leftovers(visible_text(html)) == [], url


@pytest.mark.django_db
def test_the_login_page_is_in_thai_too(client):
    client.cookies[settings.LANGUAGE_COOKIE_NAME] = "th"

    html = client.get(reverse("login")).content.decode()

    assert "เข้าสู่ระบบ" in html
    assert english_leftovers(visible_text(html)) == []


@pytest.mark.django_db
def test_dates_follow_the_thai_locale(thai_clerk, order):
    html = thai_clerk.get(reverse("scheduling:order_slip", args=[order.pk])).content.decode()

    thai_months = [
        "มกราคม",
        "กุมภาพันธ์",
        "มีนาคม",
        "เมษายน",
        "พฤษภาคม",
        "มิถุนายน",
        "กรกฎาคม",
        "สิงหาคม",
        "กันยายน",
        "ตุลาคม",
        "พฤศจิกายน",
        "ธันวาคม",
    ]
    assert "17 พฤษภาคม 2523" in html  # the birth date, in Django's Thai DATE_FORMAT, B.E. (1980 + 543)
    assert any(month in html for month in thai_months)


@pytest.mark.django_db
def test_the_checker_catches_english(thai_clerk, order):
    # The check above would pass trivially if it could not see English: make sure it can.
    assert "Book exam" in english_leftovers("ตารางนัด Book exam")
    assert english_leftovers("ตารางนัด จองตรวจ") == []


@pytest.mark.django_db
def test_english_dates_are_day_first_with_a_24_hour_clock(client, user, order):
    client.force_login(user)
    # The slip speaks the patient's language, not the clerk's: this one reads English.
    order.patient.preferred_language = "en"
    order.patient.save(update_fields=["preferred_language"])

    html = client.get(reverse("scheduling:order_slip", args=[order.pk])).content.decode()

    assert "17 May 1980" in html  # not Django's American "May 17, 1980"
    assert "09:00" in html and "a.m." not in html


# Not UI: tooling, tests and build output (mutants/ is mutmut's mutated copy of the sources). Everything
# else under the project is scanned, so a new app or template directory is covered without touching this list.
NOT_UI = (
    ".git",
    ".venv",
    "var",
    "tests",
    "test-artifacts",
    "mutants",
    "locale",
    "node_modules",
    "staticfiles",
    "*.pyc",
)


def extracted_msgids(tmp_path: Path) -> set[str]:
    """The msgids `makemessages -l th` finds in the code and templates, run on a throw-away copy of the
    project so the real catalogue is never rewritten (other people edit it concurrently)."""
    project = tmp_path / "project"
    shutil.copytree(settings.BASE_DIR, project, ignore=shutil.ignore_patterns(*NOT_UI), symlinks=True)
    (project / "locale").mkdir()  # empty: a fresh extraction, no merge with the real catalogue
    result = subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "th", "--no-obsolete", "--no-location"],
        cwd=project,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "ris.settings_test"},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    return {entry["msgid"] for entry in po_entries(project / "locale" / "th" / "LC_MESSAGES" / "django.po")}


def test_every_string_in_the_code_and_templates_has_a_thai_translation(tmp_path):
    # The catalogue checks above only see entries that are in the .po: a string added to a template
    # without a .po entry would still show in English. Compare with what makemessages extracts.
    extracted = extracted_msgids(tmp_path)
    translated = {e["msgid"] for e in po_entries() if e["msgstr"] and "fuzzy" not in e["flags"]}

    assert len(extracted) > 200
    assert sorted(extracted - translated) == []
