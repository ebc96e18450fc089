"""A technologist looks at a CT study in the browser: from the order page's thumbnails to the image page,
a brain window, a drag that widens it, the HU under the pointer, and the next slice.

The images are real: CT slices sent to a real Orthanc by storescu (tests/pacs/conftest.py), recorded by
the follower, rendered by the RIS. Everything runs under the Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import re
from importlib import import_module

import pytest
from django.apps import apps
from django.core.cache import cache
from django.urls import reverse
from playwright.sync_api import expect

from pacs_link.models import Series
from scheduling.roles import TECHNOLOGIST
from tests.e2e.test_csp_and_idle import console, log_in, policy_complaints  # noqa: F401
from tests.factories import OrderFactory, UserFactory
from tests.pacs.conftest import dicom_image, follow_until, orthanc, recorded_series  # noqa: F401

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

SERIES_UID = "1.2.826.0.1.3680043.99.2000.1"


def wait_until(page, expression: str, timeout: float = 10.0) -> None:
    """Poll `expression` in the page until it is true. Not page.wait_for_function: its polling compiles
    the predicate with eval in the page, which the Content-Security-Policy (no 'unsafe-eval') refuses."""
    for _ in range(int(timeout / 0.05)):
        if page.evaluate(expression):
            return
        page.wait_for_timeout(50)
    raise AssertionError(f"still false after {timeout} s: {expression}")


@pytest.fixture
def ct_order(orthanc, dicom_image, settings, tmp_path):  # noqa: F811
    settings.PACS_RENDER_CACHE_DIR = tmp_path / "render-cache"
    # An earlier transactional test flushed the tables, the presets migration 0002 seeded among them.
    import_module("pacs_link.migrations.0002_window_presets").add_presets(apps, None)
    order = OrderFactory(accession_number="26120300200")
    study_uid = "1.2.826.0.1.3680043.99.2000"
    orthanc.store(
        *(
            dicom_image(
                "CT", accession=order.accession_number, study_uid=study_uid, series_uid=SERIES_UID, number=n
            )
            for n in (1, 2, 3)
        )
    )
    with orthanc.client() as pacs:
        follow_until(lambda: Series.objects.filter(series_instance_uid=SERIES_UID).exists(), orthanc=pacs)
    return order


def numbers(page) -> tuple[float, float]:
    return float(page.get_by_label(re.compile("^Width")).input_value()), float(
        page.get_by_label(re.compile("^Level")).input_value()
    )


def test_a_technologist_windows_and_scrolls_a_ct_series(page, console, shoot, ct_order, orthanc):  # noqa: F811
    UserFactory(username="tech", roles=[TECHNOLOGIST])
    log_in(page, "tech")

    page.goto(ct_order.get_absolute_url())
    images = page.locator("#images")
    expect(images.get_by_role("heading", name="Images")).to_be_visible()
    thumbnail = images.locator("img.pacs-thumb").first
    expect(thumbnail).to_be_visible()
    wait_until(page, "document.querySelector('img.pacs-thumb').naturalWidth > 0")
    shoot("order-thumbnails")

    thumbnail.click()
    image = page.locator("#pacs-image")
    expect(image).to_be_visible()
    wait_until(page, "document.getElementById('pacs-image').naturalWidth > 0")
    # The image's own window shows in the inputs once its info arrived.
    expect(page.get_by_label(re.compile("^Width"))).not_to_have_value("")

    page.get_by_role("button", name="Brain 80/40").click()
    expect(page.get_by_role("button", name="Brain 80/40")).to_have_attribute("aria-pressed", "true")
    assert numbers(page) == (80, 40)
    expect(image).to_have_attribute("src", re.compile(r"w=80&l=40"))
    wait_until(page, "document.getElementById('pacs-image').complete")
    shoot("brain-window")

    # Drag right and down: a wider window, a higher level.
    box = image.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    page.mouse.move(x + 60, y + 30, steps=6)
    page.mouse.up()
    width, level = numbers(page)
    assert width > 80 and level > 40, (width, level)
    expect(image).to_have_attribute("src", re.compile(rf"w={width:g}&l={level:g}"))
    expect(page.get_by_role("button", name="Brain 80/40")).to_have_attribute("aria-pressed", "false")

    # Typing a window.
    page.get_by_label(re.compile("^Width")).fill("400")
    page.get_by_label(re.compile("^Level")).fill("50")
    expect(image).to_have_attribute("src", re.compile(r"w=400&l=50"))

    # The value under the pointer, over the image, in HU.
    page.mouse.move(x + 5, y + 5)
    readout = page.locator("#pacs-readout")
    expect(readout).to_have_text(re.compile(r"^-?\d+(\.\d+)? HU"))
    assert readout.is_visible()

    # The next slice by the keyboard, the window kept; the download links follow.
    page.locator("#pacs-viewer").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#pacs-position")).to_have_text("2 / 3")
    expect(image).to_have_attribute("alt", "Image 2 of 3")
    expect(page.get_by_label("Image", exact=True)).to_have_value("2")
    assert "i=1" in page.url
    expect(image).to_have_attribute("src", re.compile(r"w=400&l=50"))
    expect(page.get_by_role("link", name="PNG")).to_have_attribute(
        "href", re.compile(r"image\.png\?w=400&l=50&download=1")
    )
    page.mouse.move(x, y)
    page.mouse.wheel(0, 120)
    expect(page.locator("#pacs-position")).to_have_text("3 / 3")
    with page.expect_download() as download:
        page.get_by_role("link", name="JPEG").click()
    assert download.value.suggested_filename.endswith("-3-w400-l50.jpg")
    shoot("third-slice")

    # The PACS goes down: the order page still opens, and its Images section says the PACS did not answer.
    orthanc.stop()
    cache.clear()  # the instance lists the image page cached
    page.goto(ct_order.get_absolute_url())
    expect(page.get_by_text("The PACS did not answer")).to_be_visible()
    expect(page.locator("img.pacs-thumb")).to_be_hidden()
    shoot("pacs-down")

    assert policy_complaints(console) == []


@pytest.fixture
def multiframe_series(orthanc, dicom_image, settings, tmp_path):  # noqa: F811
    """A series of one CT image of four frames (frame k: the slice 25 rows further down), followed."""
    settings.PACS_RENDER_CACHE_DIR = tmp_path / "render-cache"
    order = OrderFactory(accession_number="26120300300")
    series_uid = "1.2.826.0.1.3680043.99.3000.1"
    orthanc.store(
        dicom_image(
            "CT",
            accession=order.accession_number,
            study_uid="1.2.826.0.1.3680043.99.3000",
            series_uid=series_uid,
            frames=4,
            shift=25,
        )
    )
    series = recorded_series(orthanc, series_uid)
    return series


def test_the_image_page_scrolls_through_each_frame(page, console, shoot, multiframe_series):  # noqa: F811
    series = multiframe_series
    UserFactory(username="tech", roles=[TECHNOLOGIST])
    log_in(page, "tech")

    page.goto(reverse("pacs_link:series_viewer", args=[series.pk]))
    image = page.locator("#pacs-image")
    wait_until(page, "document.getElementById('pacs-image').naturalWidth > 0")
    expect(page.locator("#pacs-position")).to_have_text("1 / 4")
    first = image.get_attribute("src")
    assert "f=" not in first

    # One image, four frames: the keyboard goes through the frames, each its own picture.
    page.locator("#pacs-viewer").focus()
    page.keyboard.press("ArrowDown")
    expect(page.locator("#pacs-position")).to_have_text("2 / 4")
    expect(image).to_have_attribute("src", re.compile(r"image\.png\?f=1$"))
    page.keyboard.press("End")
    expect(image).to_have_attribute("src", re.compile(r"f=3"))
    expect(image).to_have_attribute("alt", "Image 4 of 4")
    wait_until(
        page,
        "document.getElementById('pacs-image').complete && document.getElementById('pacs-image').naturalWidth > 0",
    )
    # The value under the pointer is read from the frame shown.
    box = image.bounding_box()
    with page.expect_response(re.compile(r"/values\?f=3$")):
        page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.locator("#pacs-readout")).to_have_text(re.compile(r"^-?\d+(\.\d+)? HU"))
    expect(page.get_by_role("link", name="PNG")).to_have_attribute("href", re.compile(r"f=3&download=1"))
    shoot("fourth-frame")
    assert policy_complaints(console) == []


def test_the_front_desk_links_an_unmatched_study_after_a_refusal(page, console, shoot):  # noqa: F811
    """The list, the study's page with the patient's orders, a cancelled order refused at the field,
    then the right order taken from the offered ones."""
    from django.utils import timezone

    from pacs_link.models import Study, StudyState
    from scheduling.models import OrderStatus
    from scheduling.roles import FRONT_DESK
    from tests.factories import PatientFactory

    UserFactory(username="desk", roles=[FRONT_DESK])
    patient = PatientFactory(mrn="HN555001", family_name="Jaidee", given_name="Malee")
    order = OrderFactory(patient=patient, accession_number="26120300301")
    OrderFactory(accession_number="26120300302", status=OrderStatus.CANCELLED, cancel_reason="Duplicate")
    now = timezone.now()
    study = Study.objects.create(
        orthanc_id="s-1",
        study_instance_uid="1.2.826.0.1.3680043.99.3000",
        accession_number="WRONG1",
        patient_id="HN555001",
        patient_name="JAIDEE^MALEE",
        modalities="CT",
        series_count=2,
        instance_count=120,
        first_received=now,
        last_received=now,
        state=StudyState.UNMATCHED,
        unmatched_reason="No order has accession number WRONG1.",
    )

    log_in(page, "desk")
    page.locator("nav").get_by_role("link", name=re.compile("^Unmatched studies")).click()
    row = page.locator("#unmatched tbody tr")
    expect(row).to_have_count(1)
    expect(row).to_contain_text("JAIDEE^MALEE")
    expect(row).to_contain_text("No order has accession number WRONG1.")
    shoot("unmatched-list")
    row.get_by_role("link", name="Resolve").click()

    page.get_by_label("or the order's accession number").fill("26120300302")
    page.get_by_role("button", name="Link to this order").click()
    expect(page.locator("#link .invalid-feedback")).to_contain_text("cancelled")
    shoot("cancelled-refused")

    page.get_by_label("or the order's accession number").fill("")
    page.get_by_role("radio", name=re.compile("26120300301")).check()
    page.get_by_role("button", name="Link to this order").click()
    expect(page.get_by_text("linked to order 26120300301")).to_be_visible()
    expect(page.locator("#unmatched tbody tr")).to_have_text(re.compile("No study waits"))
    study.refresh_from_db()
    assert study.order == order
    assert policy_complaints(console) == []
