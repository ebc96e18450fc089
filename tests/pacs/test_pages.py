"""The PACS pages: the Unmatched studies list and its resolution, the order page's Images section, and the
image page with the images it loads.

Studies for the list and the order page are rows written directly, as the follower would have left
them. The images come from a real Orthanc (tests/pacs/conftest.py) that received CT images by storescu,
recorded by the real follower; with the PACS down the pages must say so and still load.
"""

from __future__ import annotations

import io
from datetime import timedelta
from importlib import import_module

import pytest
import requests
from django.apps import apps
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from PIL import Image

from access_audit.models import AccessAction, AccessEvent
from pacs_link.context_processors import unmatched_studies
from pacs_link.models import MatchedBy, Series, Study, StudyState, WindowPreset
from scheduling.models import OrderStatus
from scheduling.roles import ADMIN, FRONT_DESK, TECHNOLOGIST
from tests.factories import OrderFactory, PatientFactory, UserFactory
from tests.mwl_server.dicom import free_port
from tests.pacs.conftest import ORTHANC_PASSWORD, ORTHANC_USER, recorded_series

pytestmark = pytest.mark.django_db

UNMATCHED = reverse("pacs_link:unmatched_list")


@pytest.fixture(autouse=True)
def fresh_caches(settings, tmp_path):
    """Each test its own render cache folder, and no instance list cached by an earlier test."""
    settings.PACS_RENDER_CACHE_DIR = tmp_path / "render-cache"
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def pacs_down(settings):
    """ORTHANC_URL at a port nobody listens on: every request to the PACS is refused at once."""
    settings.ORTHANC_URL = f"http://127.0.0.1:{free_port()}"
    settings.ORTHANC_USERNAME = "ris"
    settings.ORTHANC_PASSWORD = "x"
    settings.ORTHANC_TIMEOUT = 2


@pytest.fixture
def desk(client, db):
    client.force_login(UserFactory(username="desk", roles=[FRONT_DESK]))
    return client


@pytest.fixture
def technologist(client, db):
    client.force_login(UserFactory(username="tech", roles=[TECHNOLOGIST]))
    return client


_uids = iter(range(1, 1_000_000))


def make_study(*, state: str = StudyState.UNMATCHED, received=None, series: int = 0, **fields) -> Study:
    n = next(_uids)
    received = received or timezone.now()
    values = {
        "orthanc_id": f"study-{n}",
        "study_instance_uid": f"1.2.826.0.1.3680043.99.{n}",
        "accession_number": f"X{n:05d}",
        "patient_id": "HN999999",
        "patient_name": "Nobody^Known",
        "modalities": "CT",
        "series_count": series,
        "instance_count": 10 * series,
        "first_received": received - timedelta(minutes=5),
        "last_received": received,
        "state": state,
        "unmatched_reason": "No order has accession number X." if state == StudyState.UNMATCHED else "",
    }
    values.update(fields)
    study = Study.objects.create(**values)
    for number in range(1, series + 1):
        Series.objects.create(
            study=study,
            orthanc_id=f"series-{n}-{number}",
            series_instance_uid=f"{study.study_instance_uid}.{number}",
            number=number,
            modality="CT",
            description=f"Axial {number}",
            instance_count=10,
        )
    return study


def listed(response) -> list[str]:
    return [study.accession_number for study in response.context["page"].studies]


# --- the list -----------------------------------------------------------------------------------


def test_the_list_shows_only_unmatched_studies_the_last_received_first(desk):
    now = timezone.now()
    make_study(accession_number="OLD", received=now - timedelta(hours=2))
    make_study(accession_number="NEW", received=now)
    make_study(accession_number="MID", received=now - timedelta(hours=1))
    make_study(accession_number="GONE", state=StudyState.NOT_OURS, received=now)
    make_study(accession_number="OURS", state=StudyState.MATCHED, order=OrderFactory(), received=now)

    response = desk.get(UNMATCHED)

    assert response.status_code == 200
    assert listed(response) == ["NEW", "MID", "OLD"]
    html = response.content.decode()
    assert "Nobody^Known" in html and "HN999999" in html and "No order has accession number X." in html
    assert reverse("pacs_link:study_resolve", args=[Study.objects.get(accession_number="NEW").pk]) in html


def test_the_list_pages_by_cursor_without_counting(desk, django_assert_max_num_queries):
    start = timezone.now() - timedelta(hours=1)
    for n in range(120):
        # Pairs received at the same moment: the id breaks the tie, so none is lost between pages.
        make_study(accession_number=f"S{n:03d}", received=start + timedelta(seconds=n // 2))
    newest_first = [f"S{n:03d}" for n in range(119, -1, -1)]

    with django_assert_max_num_queries(8) as queries:
        first = desk.get(UNMATCHED)
    # The list is never counted; the navigation's badge is one COUNT over the partial index.
    counts = [q["sql"] for q in queries.captured_queries if "COUNT(" in q["sql"].upper()]
    assert sum("pacs_link_study" in sql for sql in counts) <= 1, counts
    assert listed(first) == newest_first[:50]
    assert first.context["page"].newer is None

    second = desk.get(UNMATCHED, {"before": first.context["page"].older})
    assert listed(second) == newest_first[50:100]
    third = desk.get(UNMATCHED, {"before": second.context["page"].older})
    assert listed(third) == newest_first[100:]
    assert third.context["page"].older is None
    back = desk.get(UNMATCHED, {"after": third.context["page"].newer})
    assert listed(back) == newest_first[50:100]
    assert listed(desk.get(UNMATCHED, {"after": back.context["page"].newer})) == newest_first[:50]


def test_a_study_never_received_is_listed_first_and_paged_like_the_others(desk):
    make_study(accession_number="DATED")
    make_study(accession_number="UNDATED", last_received=None, first_received=None)
    assert listed(desk.get(UNMATCHED)) == ["UNDATED", "DATED"]
    from pacs_link.selectors import unmatched_page

    first = unmatched_page(size=1)
    assert [s.accession_number for s in first.studies] == ["UNDATED"]
    second = unmatched_page(before=first.older, size=1)
    assert [s.accession_number for s in second.studies] == ["DATED"]
    assert [s.accession_number for s in unmatched_page(after=second.newer, size=1).studies] == ["UNDATED"]


def test_the_navigation_counts_the_unmatched_studies_for_the_front_desk(desk, settings):
    make_study()
    make_study()
    make_study(state=StudyState.NOT_OURS)
    processors = settings.TEMPLATES[0]["OPTIONS"]["context_processors"]
    if "pacs_link.context_processors.unmatched_studies" not in processors:
        settings.TEMPLATES = [
            {
                **settings.TEMPLATES[0],
                "OPTIONS": {
                    **settings.TEMPLATES[0]["OPTIONS"],
                    "context_processors": [*processors, "pacs_link.context_processors.unmatched_studies"],
                },
            }
        ]
    html = desk.get(reverse("scheduling:to_schedule")).content.decode()
    assert f'href="{UNMATCHED}"' in html
    assert 'id="unmatched-count">2<' in html


def test_the_count_is_a_callable_only_for_those_who_resolve(rf, db):
    request = rf.get("/")
    request.user = UserFactory(username="t", roles=[TECHNOLOGIST])
    assert unmatched_studies(request) == {}
    request.user = UserFactory(username="d", roles=[FRONT_DESK])
    count = unmatched_studies(request)["unmatched_studies_count"]
    make_study()
    assert count() == 1


# --- who may -------------------------------------------------------------------------------------


def test_anonymous_visitors_are_sent_to_the_login_page(client, db):
    study = make_study(series=1)
    series = study.series.get()
    for address in [
        UNMATCHED,
        reverse("pacs_link:study_resolve", args=[study.pk]),
        reverse("pacs_link:series_viewer", args=[series.pk]),
        reverse("pacs_link:series_thumbnail", args=[series.pk]),
    ]:
        response = client.get(address)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), address


def test_a_technologist_cannot_resolve_a_study(technologist):
    study = make_study()
    assert technologist.get(UNMATCHED).status_code == 403
    assert technologist.get(reverse("pacs_link:study_resolve", args=[study.pk])).status_code == 403
    link = technologist.post(
        reverse("pacs_link:study_link", args=[study.pk]),
        {"accession_number": OrderFactory().accession_number},
    )
    assert link.status_code == 403
    assert technologist.post(reverse("pacs_link:study_not_ours", args=[study.pk]), {}).status_code == 403
    study.refresh_from_db()
    assert study.state == StudyState.UNMATCHED


def test_a_user_without_a_role_sees_no_images(client, db):
    client.force_login(UserFactory(username="nobody"))
    series = make_study(series=1, state=StudyState.MATCHED, order=OrderFactory()).series.get()
    assert client.get(reverse("pacs_link:series_viewer", args=[series.pk])).status_code == 403
    assert client.get(reverse("pacs_link:series_thumbnail", args=[series.pk])).status_code == 403


# --- resolving -------------------------------------------------------------------------------------


def test_the_study_page_offers_the_open_orders_of_the_patient_the_study_names(desk):
    patient = PatientFactory(mrn="HN424242")
    open_order = OrderFactory(patient=patient, accession_number="A0001")
    OrderFactory(patient=patient, accession_number="A0002", status=OrderStatus.CANCELLED, cancel_reason="x")
    OrderFactory(accession_number="A0003")  # another patient's
    study = make_study(patient_id="hn424242")  # typed in lower case at the modality

    response = desk.get(reverse("pacs_link:study_resolve", args=[study.pk]))

    assert response.status_code == 200
    assert response.context["candidates"] == [open_order]
    html = response.content.decode()
    assert f'value="{open_order.pk}"' in html and "A0001" in html
    assert "A0002" not in html and "A0003" not in html


def test_the_front_desk_finds_another_patients_orders_by_mrn(desk):
    other = OrderFactory(patient=PatientFactory(mrn="HN777777"), accession_number="B0001")
    study = make_study(patient_id="WRONG")
    response = desk.get(reverse("pacs_link:study_resolve", args=[study.pk]), {"mrn": "HN777777"})
    assert response.context["candidates"] == [other]
    # The link form posts back with the search, so the chosen order is among those it accepts.
    link = desk.post(reverse("pacs_link:study_link", args=[study.pk]) + "?mrn=HN777777", {"order": other.pk})
    assert link.status_code == 302
    study.refresh_from_db()
    assert study.order == other


def test_linking_to_an_offered_order(desk):
    order = OrderFactory(patient=PatientFactory(mrn="HN424242"))
    study = make_study(patient_id="HN424242")

    response = desk.post(reverse("pacs_link:study_link", args=[study.pk]), {"order": order.pk})

    assert response.status_code == 302 and response["Location"] == UNMATCHED
    study.refresh_from_db()
    assert (study.state, study.order, study.matched_by) == (StudyState.MATCHED, order, MatchedBy.CLERK)
    assert study.resolved_by.username == "desk"
    assert listed(desk.get(UNMATCHED)) == []


def test_linking_by_accession_number(desk):
    order = OrderFactory(accession_number="26120300042")
    study = make_study()
    response = desk.post(
        reverse("pacs_link:study_link", args=[study.pk]), {"accession_number": " 26120300042 "}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.order == order


def test_a_cancelled_order_is_refused_next_to_the_field(desk):
    order = OrderFactory(
        accession_number="26120300043", status=OrderStatus.CANCELLED, cancel_reason="Duplicate"
    )
    study = make_study()

    response = desk.post(
        reverse("pacs_link:study_link", args=[study.pk]), {"accession_number": "26120300043"}
    )

    assert response.status_code == 400
    errors = response.context["link_form"].errors
    assert "accession_number" in errors and "cancelled" in errors["accession_number"][0]
    assert "26120300043" in errors["accession_number"][0]
    assert "invalid-feedback" in response.content.decode()
    study.refresh_from_db()
    assert study.state == StudyState.UNMATCHED and study.order is None
    order.refresh_from_db()
    assert order.status == OrderStatus.CANCELLED


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"accession_number": "NOSUCH"}, "accession_number", "No order has the accession number NOSUCH."),
        ({}, "accession_number", "Choose an order or type its accession number."),
    ],
)
def test_a_link_without_an_order_says_why(desk, data, field, text):
    study = make_study()
    response = desk.post(reverse("pacs_link:study_link", args=[study.pk]), data)
    assert response.status_code == 400
    assert response.context["link_form"].errors[field] == [text]


def test_an_order_not_offered_cannot_be_posted(desk):
    """The radio only accepts the orders the page offered (the study's patient's)."""
    stranger = OrderFactory()
    study = make_study(patient_id="HN000000")
    response = desk.post(reverse("pacs_link:study_link", args=[study.pk]), {"order": stranger.pk})
    assert response.status_code == 400
    study.refresh_from_db()
    assert study.state == StudyState.UNMATCHED


def test_marking_a_study_not_ours(desk):
    study = make_study()
    response = desk.post(
        reverse("pacs_link:study_not_ours", args=[study.pk]), {"reason": "Test images of the vendor"}
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.state == StudyState.NOT_OURS and study.unmatched_reason == "Test images of the vendor"
    assert listed(desk.get(UNMATCHED)) == []
    # Resolved: its page is gone (404).
    assert desk.get(reverse("pacs_link:study_resolve", args=[study.pk])).status_code == 404


def test_a_study_linked_meanwhile_is_not_resolved_again(desk):
    """Two clerks on the same study: the second one's form says who won, and changes nothing."""
    first, second = OrderFactory(accession_number="26120300050"), OrderFactory(accession_number="26120300051")
    study = make_study()
    desk.post(reverse("pacs_link:study_link", args=[study.pk]), {"accession_number": "26120300050"})

    late_link = desk.post(
        reverse("pacs_link:study_link", args=[study.pk]), {"accession_number": "26120300051"}
    )
    late_not_ours = desk.post(reverse("pacs_link:study_not_ours", args=[study.pk]), {"reason": "x"})

    assert late_link.status_code == 400
    assert (
        "already linked to order 26120300050" in late_link.context["link_form"].errors["accession_number"][0]
    )
    assert late_not_ours.status_code == 400
    assert "26120300050" in late_not_ours.context["not_ours_form"].errors["reason"][0]
    study.refresh_from_db()
    assert (study.state, study.order) == (StudyState.MATCHED, first)
    assert second.studies.count() == 0


def test_a_too_long_reason_is_refused_at_the_field(desk):
    study = make_study()
    response = desk.post(reverse("pacs_link:study_not_ours", args=[study.pk]), {"reason": "x" * 201})
    assert response.status_code == 400
    assert "reason" in response.context["not_ours_form"].errors


# --- the order page ------------------------------------------------------------------------------


def test_the_order_page_lists_its_studies_and_series_with_thumbnails(desk, pacs_down):
    order = OrderFactory()
    study = make_study(state=StudyState.MATCHED, order=order, series=2, matched_by=MatchedBy.ACCESSION)

    with_pacs_down = desk.get(order.get_absolute_url())

    assert with_pacs_down.status_code == 200
    html = with_pacs_down.content.decode()
    assert 'id="images"' in html
    for series in study.series.all():
        assert reverse("pacs_link:series_thumbnail", args=[series.pk]) in html
        assert reverse("pacs_link:series_viewer", args=[series.pk]) in html
        assert f"Axial {series.number}" in html
    assert "2 series" in html and "20 images" in html
    # The thumbnail is its own request: with the PACS down it says so, and the page above did not wait.
    thumbnail = desk.get(reverse("pacs_link:series_thumbnail", args=[study.series.first().pk]))
    assert thumbnail.status_code == 503
    assert thumbnail["Content-Type"].startswith("text/plain")
    assert thumbnail.content.decode().startswith("The PACS did not answer")


def test_an_order_without_studies_has_no_images_section(desk):
    order = OrderFactory()
    assert 'id="images"' not in desk.get(order.get_absolute_url()).content.decode()


def test_without_a_pacs_the_order_page_says_none_is_configured(desk, settings):
    settings.ORTHANC_URL = ""
    order = OrderFactory()
    make_study(state=StudyState.MATCHED, order=order, series=1)
    html = desk.get(order.get_absolute_url()).content.decode()
    assert "No PACS is configured" in html and "pacs-thumb" not in html


def test_the_image_page_says_the_pacs_did_not_answer_and_records_nothing(desk, pacs_down):
    series = make_study(state=StudyState.MATCHED, order=OrderFactory(), series=1).series.get()
    response = desk.get(reverse("pacs_link:series_viewer", args=[series.pk]))
    assert response.status_code == 503
    assert "The PACS did not answer" in response.content.decode()
    assert not AccessEvent.objects.filter(action=AccessAction.IMAGES_VIEWED).exists()
    image = desk.get(reverse("pacs_link:instance_png", args=[series.pk, "whatever"]))
    assert image.status_code == 503 and image.content.decode().startswith("The PACS did not answer")


def test_a_series_not_recorded_is_404(desk):
    assert desk.get(reverse("pacs_link:series_viewer", args=[999999])).status_code == 404
    assert desk.get(reverse("pacs_link:instance_png", args=[999999, "abc"])).status_code == 404


# --- the images, from a real Orthanc --------------------------------------------------------------


@pytest.fixture
def ct_series(orthanc, dicom_image):
    """A CT series of three images (numbers 3, 1, 2 sent in that order) on an order, followed into the RIS."""
    # The CT presets migration 0002 seeds, in case a transactional test flushed them.
    import_module("pacs_link.migrations.0002_window_presets").add_presets(apps, None)
    order = OrderFactory(accession_number="26120300100")
    study_uid, series_uid = "1.2.826.0.1.3680043.99.1000", "1.2.826.0.1.3680043.99.1000.1"
    orthanc.store(
        *(
            dicom_image(
                "CT", accession=order.accession_number, study_uid=study_uid, series_uid=series_uid, number=n
            )
            for n in (3, 1, 2)
        )
    )
    series = recorded_series(orthanc, series_uid)
    numbered = series.by_number
    series.instance_ids = [numbered[1], numbered[2], numbered[3]]
    return series


def test_the_image_page_shows_the_series_by_instance_number_and_records_one_read(desk, ct_series):
    response = desk.get(reverse("pacs_link:series_viewer", args=[ct_series.pk]), {"i": "1"})

    assert response.status_code == 200
    assert response.context["instance_ids"] == ct_series.instance_ids
    assert response.context["instance_id"] == ct_series.instance_ids[1]
    html = response.content.decode()
    assert reverse("pacs_link:instance_png", args=[ct_series.pk, ct_series.instance_ids[1]]) in html
    assert "Brain 80/40" in html and "Lung 1500/-600" in html
    events = AccessEvent.objects.filter(action=AccessAction.IMAGES_VIEWED)
    assert [(e.order, e.user.username) for e in events] == [(ct_series.study.order, "desk")]
    # The images it then loads are the same read: no more events.
    desk.get(reverse("pacs_link:instance_png", args=[ct_series.pk, ct_series.instance_ids[0]]))
    assert events.count() == 1


def test_a_technologist_views_images(technologist, ct_series):
    assert technologist.get(reverse("pacs_link:series_viewer", args=[ct_series.pk])).status_code == 200


def test_the_presets_are_the_active_ones_and_thai_in_the_thai_interface(desk, ct_series):
    WindowPreset.objects.filter(name="Stroke").update(active=False)
    desk.post(reverse("set_language"), {"language": "th"})
    html = desk.get(reverse("pacs_link:series_viewer", args=[ct_series.pk])).content.decode()
    assert "สมอง 80/40" in html and "ปอด 1500/-600" in html
    assert "หลอดเลือดสมองตีบ" not in html


def test_images_render_as_png_and_jpeg_with_the_window_asked_for(desk, ct_series):
    instance = ct_series.instance_ids[0]
    png = desk.get(reverse("pacs_link:instance_png", args=[ct_series.pk, instance]), {"w": "80", "l": "40"})
    assert png.status_code == 200 and png["Content-Type"] == "image/png"
    brain = Image.open(io.BytesIO(png.content))
    assert brain.size == (128, 128) and brain.mode == "L"
    bone = desk.get(
        reverse("pacs_link:instance_png", args=[ct_series.pk, instance]), {"w": "2000", "l": "500"}
    )
    assert Image.open(io.BytesIO(bone.content)).tobytes() != brain.tobytes()

    jpeg = desk.get(
        reverse("pacs_link:instance_jpg", args=[ct_series.pk, instance]),
        {"w": "80", "l": "40", "download": "1"},
    )
    assert jpeg.status_code == 200 and jpeg["Content-Type"] == "image/jpeg"
    assert jpeg["Content-Disposition"] == 'attachment; filename="26120300100-s1-1-w80-l40.jpg"'
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"


@pytest.mark.parametrize(
    "window", [{"w": "0", "l": "40"}, {"w": "80"}, {"w": "abc", "l": "1"}, {"w": "nan", "l": "1"}]
)
def test_a_window_that_is_not_one_is_refused(desk, ct_series, window):
    response = desk.get(
        reverse("pacs_link:instance_png", args=[ct_series.pk, ct_series.instance_ids[0]]), window
    )
    assert response.status_code == 400


def test_an_instance_not_of_a_recorded_series_is_404(desk, ct_series, orthanc, dicom_image):
    # An image the PACS holds, of a series the RIS never recorded (no StableStudy followed yet).
    orthanc.store(dicom_image("CT", accession="ELSEWHERE"))
    with orthanc.client() as pacs:
        strangers = [i for i in pacs.get_json("/instances") if i not in ct_series.instance_ids]
    assert strangers
    # Nor another kind of resource of the PACS (the study's own id) or a path out of the instances.
    for other in (strangers[0], ct_series.study.orthanc_id, ct_series.orthanc_id):
        for view in ("instance_png", "instance_jpg", "instance_info", "instance_values"):
            assert desk.get(reverse(f"pacs_link:{view}", args=[ct_series.pk, other])).status_code == 404
    base = reverse("pacs_link:series_viewer", args=[ct_series.pk])
    assert desk.get(f"{base}instances/..%2F..%2Fsystem/image.png").status_code == 404
    # A series deleted from the PACS since it was recorded: no images, not "the PACS did not answer".
    requests.delete(
        f"{orthanc.url}/series/{ct_series.orthanc_id}", auth=(ORTHANC_USER, ORTHANC_PASSWORD), timeout=5
    )
    cache.clear()
    assert desk.get(base).status_code == 404


def test_the_thumbnail_is_a_small_jpeg_of_the_middle_image(desk, ct_series):
    response = desk.get(reverse("pacs_link:series_thumbnail", args=[ct_series.pk]))
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    assert max(Image.open(io.BytesIO(response.content)).size) <= 128


def test_info_and_values_for_the_readout(desk, ct_series):
    instance = ct_series.instance_ids[0]
    info = desk.get(reverse("pacs_link:instance_info", args=[ct_series.pk, instance])).json()
    assert info["units"] == "HU" and info["rows"] == 128
    values = desk.get(reverse("pacs_link:instance_values", args=[ct_series.pk, instance]))
    assert values.status_code == 200 and values["X-Rows"] == "128" and values["X-Columns"] == "128"
    assert len(values.content) == 128 * 128 * 2


def test_the_image_views_answer_503_when_the_pacs_stops(desk, ct_series, orthanc):
    orthanc.stop()
    cache.clear()
    response = desk.get(reverse("pacs_link:instance_png", args=[ct_series.pk, ct_series.instance_ids[0]]))
    assert response.status_code == 503
    assert response.content.decode().startswith("The PACS did not answer")
    assert desk.get(ct_series.study.order.get_absolute_url()).status_code == 200


# --- the admin -----------------------------------------------------------------------------------


def test_the_admin_pages_open(admin_client):
    study = make_study(series=2)
    from pacs_link.models import FeedCursor

    FeedCursor.objects.create(name="orthanc", error="The PACS did not answer")
    for address in [
        reverse("admin:pacs_link_windowpreset_changelist"),
        reverse("admin:pacs_link_study_changelist") + "?state__exact=unmatched",
        reverse("admin:pacs_link_study_change", args=[study.pk]),
        reverse("admin:pacs_link_feedcursor_changelist"),
    ]:
        assert admin_client.get(address).status_code == 200, address
    assert (
        "The PACS did not answer"
        in admin_client.get(reverse("admin:pacs_link_feedcursor_changelist")).content.decode()
    )


def test_an_admin_role_user_resolves_too(client, db):
    client.force_login(UserFactory(username="it", roles=[ADMIN]))
    assert client.get(UNMATCHED).status_code == 200


# --- multi-frame images ---------------------------------------------------------------------------


@pytest.fixture
def multiframe_series(orthanc, dicom_image):
    """A series of a three-frame CT image (number 1; frame k is CT_small's pixels shifted 20k rows down)
    and a single-frame one (number 2), followed into the RIS."""
    order = OrderFactory(accession_number="26120300200")
    study_uid, series_uid = "1.2.826.0.1.3680043.99.2000", "1.2.826.0.1.3680043.99.2000.1"
    same = {"accession": order.accession_number, "study_uid": study_uid, "series_uid": series_uid}
    orthanc.store(dicom_image("CT", **same, frames=3, shift=20), dicom_image("CT", **same, number=2))
    series = recorded_series(orthanc, series_uid)
    numbered = series.by_number
    series.multi, series.single = numbered[1], numbered[2]
    return series


def test_the_image_page_scrolls_each_frame_of_a_multiframe_image(desk, multiframe_series):
    series = multiframe_series
    response = desk.get(reverse("pacs_link:series_viewer", args=[series.pk]), {"i": "2"})

    assert response.status_code == 200
    # Four images: the three frames of image 1, then image 2.
    assert response.context["images"] == [
        (series.multi, 0),
        (series.multi, 1),
        (series.multi, 2),
        (series.single, 0),
    ]
    html = response.content.decode()
    assert reverse("pacs_link:instance_png", args=[series.pk, series.multi]) + "?f=2" in html
    assert 'max="4"' in html


def test_each_frame_renders_and_reads_its_own_pixels(desk, multiframe_series):
    series = multiframe_series
    png = reverse("pacs_link:instance_png", args=[series.pk, series.multi])
    frames = [
        Image.open(io.BytesIO(desk.get(png, {"f": str(f), "w": "400", "l": "50"}).content)) for f in range(3)
    ]
    assert frames[0].tobytes() != frames[1].tobytes() != frames[2].tobytes()
    assert (
        desk.get(png, {"w": "400", "l": "50"}).content
        == desk.get(png, {"f": "0", "w": "400", "l": "50"}).content
    )
    # Frame 1 is frame 0 twenty rows down.
    top = frames[0].crop((0, 0, 128, 100)).tobytes()
    assert frames[1].crop((0, 20, 128, 120)).tobytes() == top

    values = reverse("pacs_link:instance_values", args=[series.pk, series.multi])
    grids = [desk.get(values, {"f": str(f)}).content for f in (0, 1)]
    assert len(grids[0]) == len(grids[1]) == 128 * 128 * 2 and grids[0] != grids[1]

    info = reverse("pacs_link:instance_info", args=[series.pk, series.multi])
    assert desk.get(info, {"f": "2"}).json()["rows"] == 128 and desk.get(info).json()["frames"] == 3

    download = desk.get(png, {"f": "2", "download": "1"})
    assert download["Content-Disposition"] == 'attachment; filename="26120300200-s1-1f3.png"'


@pytest.mark.parametrize("frame", ["3", "-1", "x", "1.0"])
def test_a_frame_the_image_does_not_have_is_404(desk, multiframe_series, frame):
    series = multiframe_series
    for view in ("instance_png", "instance_values", "instance_info"):
        assert (
            desk.get(reverse(f"pacs_link:{view}", args=[series.pk, series.multi]), {"f": frame}).status_code
            == 404
        )
    # A single-frame image has frame 0 only.
    assert (
        desk.get(reverse("pacs_link:instance_png", args=[series.pk, series.single]), {"f": "1"}).status_code
        == 404
    )
