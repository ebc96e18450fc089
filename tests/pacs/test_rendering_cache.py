"""pacs_link.images: instance files fetched once from the PACS, rendered images cached on disk under a cap.

The PACS is a stand-in here that counts the files it hands out (the real Orthanc is in test_follow*.py
and the pages' tests); what matters is how often we ask it and what lands in the cache folder.
"""

from __future__ import annotations

import io
import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.data import get_testdata_file

from pacs_link import images, rendering

CT = "0a1b2c3d-4e5f6a7b-8c9d0e1f-2a3b4c5d-6e7f8a9b"
MR = "11111111-22222222-33333333-44444444-55555555"


class FakePacs:
    def __init__(self) -> None:
        self.files = {
            CT: open(get_testdata_file("CT_small.dcm"), "rb").read(),
            MR: open(get_testdata_file("MR_small.dcm"), "rb").read(),
        }
        self.fetched: list[str] = []

    def __call__(self) -> FakePacs:  # stands in for orthanc.client()
        return self

    def __enter__(self) -> FakePacs:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def instance_file(self, orthanc_id: str) -> bytes:
        self.fetched.append(orthanc_id)
        return self.files[orthanc_id]


@pytest.fixture
def pacs(settings, tmp_path, monkeypatch):
    settings.PACS_RENDER_CACHE_DIR = tmp_path / "cache"
    settings.PACS_RENDER_CACHE_MB = 64
    monkeypatch.setattr(images, "_written_since_scan", None)
    fake = FakePacs()
    monkeypatch.setattr("pacs_link.orthanc.client", fake)
    return fake


def cached_files(settings) -> list[str]:
    root = settings.PACS_RENDER_CACHE_DIR
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_it_renders_the_instance_with_the_window(pacs):
    data = images.rendered(CT, width=400, level=50)

    expected = rendering.render(pydicom.dcmread(get_testdata_file("CT_small.dcm")), width=400, level=50)
    assert (np.asarray(Image.open(io.BytesIO(data))) == expected).all()


def test_changing_the_window_does_not_fetch_the_file_again(pacs):
    first = images.rendered(CT, width=400, level=50)
    second = images.rendered(CT, width=80, level=40)
    images.rendered(CT, width=80, level=40, fmt="jpeg", size=64)
    images.instance_info(CT)
    images.values_int16(CT)

    assert pacs.fetched == [CT]
    assert first != second


def test_a_second_request_is_served_from_the_cache(pacs, settings, monkeypatch):
    first = images.rendered(CT, width=400, level=50)

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(rendering, "render", no_render)
    assert images.rendered(CT, width=400, level=50) == first
    assert images.rendered(CT, width=400.0, level=50.0) == first  # the same window, written differently


def test_each_window_format_size_and_frame_has_its_own_file(pacs, settings):
    images.rendered(CT)
    images.rendered(CT, width=400, level=50)
    images.rendered(CT, width=400, level=50.5)
    images.rendered(CT, width=400, level=50, fmt="jpg", size=32)

    assert cached_files(settings) == [
        f"dicom/{CT}.dcm",
        f"rendered/{CT}/f0_w400.0_l50.0_s32.jpeg",
        f"rendered/{CT}/f0_w400.0_l50.0_sfull.png",
        f"rendered/{CT}/f0_w400.0_l50.5_sfull.png",
        f"rendered/{CT}/f0_wauto_lauto_sfull.png",
    ]


def test_it_leaves_no_temporary_files(pacs, settings):
    images.rendered(CT, width=400, level=50)

    assert not [name for name in cached_files(settings) if name.endswith(images.TMP_SUFFIX)]


def test_it_evicts_the_least_recently_used_files_over_the_cap(pacs, settings):
    settings.PACS_RENDER_CACHE_MB = 1
    root = settings.PACS_RENDER_CACHE_DIR
    old = root / "rendered" / CT / "old.png"
    recent = root / "rendered" / CT / "recent.png"
    for n, path in enumerate([old, recent]):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 600_000)
        os.utime(path, (time.time() - 100 + n, time.time() - 100 + n))

    images.rendered(MR, width=1600, level=600)  # the first write of this process scans

    assert not old.exists()
    assert recent.exists()
    assert (root / "dicom" / f"{MR}.dcm").exists()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 1024 * 1024


def test_a_cache_hit_counts_as_recent_use(pacs, settings):
    images.rendered(CT, width=400, level=50)
    path = settings.PACS_RENDER_CACHE_DIR / "rendered" / CT / "f0_w400.0_l50.0_sfull.png"
    os.utime(path, (1, 1))

    images.rendered(CT, width=400, level=50)

    assert path.stat().st_mtime > 1


def test_an_evicted_instance_file_is_fetched_again(pacs, settings):
    images.rendered(CT, width=400, level=50)
    (settings.PACS_RENDER_CACHE_DIR / "dicom" / f"{CT}.dcm").unlink()

    images.rendered(CT, width=80, level=40)

    assert pacs.fetched == [CT, CT]


@pytest.mark.parametrize("bad", ["../../etc/passwd", "0a1b2c3d-4e5f6a7b", CT.upper(), CT + "/x"])
def test_it_refuses_anything_but_an_orthanc_id(pacs, bad):
    with pytest.raises(ValueError, match="not an Orthanc instance id"):
        images.rendered(bad)
    assert pacs.fetched == []


def test_it_refuses_an_unknown_format(pacs):
    with pytest.raises(ValueError, match="png or jpeg"):
        images.rendered(CT, fmt="gif")


def test_instance_info_of_a_ct(pacs):
    info = images.instance_info(CT)

    assert info == {
        "rows": 128,
        "columns": 128,
        "frames": 1,
        "modality": "CT",
        "photometric": "MONOCHROME2",
        "colour": False,
        "units": "HU",
        "slope": 1.0,
        "intercept": -1024.0,
        "default_window": info["default_window"],
        "windows": [],
        "instance_number": 1,
        "pixel_spacing": [0.661468, 0.661468],
        "values_scale": 1.0,
    }
    values = rendering.modality_values(pydicom.dcmread(get_testdata_file("CT_small.dcm")))
    assert tuple(info["default_window"]) == rendering.value_range_window(values)


def test_instance_info_of_an_mr_has_its_window_and_no_units(pacs):
    info = images.instance_info(MR)

    assert info["default_window"] == [1600.0, 600.0]
    assert info["windows"] == [[1600.0, 600.0]]
    assert info["units"] == ""


def test_values_are_hounsfield_units_as_little_endian_int16(pacs):
    rows, columns, data = images.values_int16(CT)

    assert (rows, columns) == (128, 128)
    values = np.frombuffer(data, "<i2").reshape(128, 128)
    stored = pydicom.dcmread(get_testdata_file("CT_small.dcm")).pixel_array
    assert (values == stored.astype(int) - 1024).all()


def test_fractional_values_come_in_steps_of_the_scale(pacs):
    ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    ds.RescaleSlope, ds.RescaleIntercept = 0.0123, 0  # a PET-like slope: 16 bits signed up to 403
    buffer = io.BytesIO()
    ds.save_as(buffer)
    pacs.files[CT] = buffer.getvalue()

    _rows, _columns, data = images.values_int16(CT)

    scale = images.instance_info(CT)["values_scale"]
    assert scale == 0.1  # the finest power of ten at which 32767 x 0.0123 = 403 fits in int16
    values = np.frombuffer(data, "<i2").reshape(128, 128) * scale
    assert np.abs(values - ds.pixel_array * 0.0123).max() <= scale / 2 + 1e-9


def test_workers_rendering_the_same_window_at_once_agree(pacs, settings):
    # Each writes its own temporary file and renames it over the others': readers never see half a file.
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda n: images.rendered(CT, width=350, level=50), range(16)))

    assert len(set(answers)) == 1
    assert cached_files(settings) == [f"dicom/{CT}.dcm", f"rendered/{CT}/f0_w350.0_l50.0_sfull.png"]
