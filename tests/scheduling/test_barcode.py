"""The slip's barcode decodes to the accession number: rasterise the SVG's bars, read them with zxing-cpp."""

import re

import numpy as np
import pytest
import zxingcpp

from scheduling.barcode import code128_svg

RECT = re.compile(
    r'<rect x="([\d.]+)mm" y="[\d.]+mm" width="([\d.]+)mm" height="[\d.]+mm" style="fill:black;"/>'
)


def decode_svg(svg: str, px_per_mm: int = 20) -> str:
    width_mm = float(re.search(r'<svg[^>]* width="([\d.]+)mm"', svg).group(1))
    image = np.full((60, round(width_mm * px_per_mm)), 255, dtype=np.uint8)
    bars = RECT.findall(svg)
    assert bars, "no bars in the SVG"
    for x, w in bars:
        start = round(float(x) * px_per_mm)
        image[:, start : start + round(float(w) * px_per_mm)] = 0
    results = zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.Code128)
    assert len(results) == 1
    return results[0].text


@pytest.mark.parametrize("accession", ["26112500001", "ABC26112500042", "7"])
def test_barcode_decodes_to_the_accession_number(accession):
    assert decode_svg(code128_svg(accession)) == accession


def test_svg_is_inline_and_sized_for_print():
    svg = code128_svg("26112500001")
    assert svg.startswith("<svg") and "<?xml" not in svg
    assert 'width="' in svg and "mm" in svg


def test_a_damaged_barcode_does_not_decode_to_the_value():
    svg = code128_svg("26112500001")
    damaged = svg.replace('width="0.330mm"', 'width="0.990mm"', 3)
    with pytest.raises(AssertionError):
        assert decode_svg(damaged) == "26112500001"
