"""DICOM pixel data to an 8-bit picture: the Modality LUT, a VOI window, PNG or JPEG.

The pipeline is the grayscale one of PS3.4 N.2: stored values -> Modality LUT (Rescale Slope/Intercept,
so Hounsfield units for CT, or a Modality LUT Sequence) -> VOI LUT -> 8-bit display values, inverted for
MONOCHROME1 (where the lowest value is white). A window the viewer asks for (a CT preset, a drag on the
image) is always the LINEAR function of PS3.3 C.11.2.1.2.1, as dcmtk's `dcm2pnm +Ww` applies it, so the
tests compare against dcm2pnm pixel for pixel. Without one, the file's own VOI (its first window with its
VOI LUT Function, or its first VOI LUT) is used, else the range of the values.

Colour images (RGB, YBR, palette) have no VOI stage: they are passed through as 8-bit RGB.

Enhanced multi-frame files keep rescale and window per frame in the functional groups; `frame_attr`
reads them there (per-frame first, then shared) so a frame renders with its own values.

Not handled: Pixel Padding Value (padding outside a CT's field of view widens a value-range window;
CTs carry their own window, so it shows only on files without one), overlays, presentation states.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels import apply_color_lut, apply_modality_lut, apply_voi, pixel_array

# PNG's zlib level: on a 512x512 CT slice 1 takes a third to a half of the time of Pillow's default 6
# (2.4-4 ms against 6-9) for a file ~15 % larger (29 kB against 25); the render is on the request path
# (bench/pacs_render.py measures both).
PNG_COMPRESS_LEVEL = 1
JPEG_QUALITY = 90
# render() looks pixels up in a table of the stored values' range when the image has more pixels than
# this and the range has fewer entries than LUT_MAX_ENTRIES (bits stored up to 16 always do).
LUT_MIN_PIXELS = 4096
LUT_MAX_ENTRIES = 1 << 17
COLOUR = {"RGB", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT", "PALETTE COLOR"}


@dataclass(frozen=True)
class FrameAttrs:
    """The Modality LUT and VOI attributes that apply to one frame."""

    slope: float
    intercept: float
    rescaled: bool  # the file gives a Rescale Slope/Intercept for this frame
    rescale_type: str
    windows: list[tuple[float, float]]  # (width, level) pairs from the file, in its order
    voi_function: str  # LINEAR, LINEAR_EXACT or SIGMOID


def frame_count(ds: Dataset) -> int:
    return int(ds.get("NumberOfFrames") or 1)


def is_colour(ds: Dataset) -> bool:
    return str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip() in COLOUR


def _as_list(value: object) -> list[float]:
    if value is None or value == "":
        return []
    if isinstance(value, MultiValue | list):
        return [float(v) for v in value]
    return [float(value)]


def frame_attr(ds: Dataset, frame: int, sequence: str, keyword: str) -> object:
    """An attribute as it applies to `frame`: its per-frame functional group, the shared group, the top level.

    Enhanced multi-frame images (PS3.3 C.7.6.16) keep e.g. Rescale Slope in the Pixel Value
    Transformation Sequence of a functional group; classic images keep it at the top level.
    """
    groups: list[Dataset] = []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if per_frame and frame < len(per_frame):
        groups.append(per_frame[frame])
    shared = ds.get("SharedFunctionalGroupsSequence")
    if shared:
        groups.append(shared[0])
    for group in groups:
        items = group.get(sequence)
        if items and keyword in items[0]:
            return items[0].get(keyword)
    return ds.get(keyword)


def _frame_attrs(ds: Dataset, frame: int) -> FrameAttrs:
    """Rescale and window for `frame` (see `frame_attr`)."""

    def lookup(sequence: str, keyword: str) -> object:
        return frame_attr(ds, frame, sequence, keyword)

    slope = lookup("PixelValueTransformationSequence", "RescaleSlope")
    intercept = lookup("PixelValueTransformationSequence", "RescaleIntercept")
    rescale_type = lookup("PixelValueTransformationSequence", "RescaleType")
    centers = _as_list(lookup("FrameVOILUTSequence", "WindowCenter"))
    widths = _as_list(lookup("FrameVOILUTSequence", "WindowWidth"))
    function = lookup("FrameVOILUTSequence", "VOILUTFunction")
    return FrameAttrs(
        slope=float(slope) if slope not in (None, "") else 1.0,
        rescaled=slope not in (None, "") or intercept not in (None, ""),
        intercept=float(intercept) if intercept not in (None, "") else 0.0,
        rescale_type=str(rescale_type or ""),
        windows=[(w, c) for c, w in zip(centers, widths, strict=False)],
        voi_function=str(function or "LINEAR").strip().upper(),
    )


def file_windows(ds: Dataset, frame: int = 0) -> list[tuple[float, float]]:
    """The file's VOI windows for `frame` as (width, level) pairs, in the file's order."""
    return list(_frame_attrs(ds, frame).windows)


def slope_intercept(ds: Dataset, frame: int = 0) -> tuple[float, float]:
    attrs = _frame_attrs(ds, frame)
    return attrs.slope, attrs.intercept


def has_rescale(ds: Dataset, frame: int = 0) -> bool:
    return _frame_attrs(ds, frame).rescaled


def units(ds: Dataset, frame: int = 0) -> str:
    """What the Modality LUT's values are in: the file's Rescale Type, else "HU" for a rescaled CT."""
    attrs = _frame_attrs(ds, frame)
    if attrs.rescale_type:
        return attrs.rescale_type
    if str(ds.get("Modality", "")) == "CT" and has_rescale(ds, frame):
        return "HU"
    return ""


def integer_values(ds: Dataset, frame: int = 0) -> bool:
    """Whether the Modality LUT's output is whole numbers (integer slope and intercept, or a LUT)."""
    if ds.get("ModalityLUTSequence"):
        return True
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        return False
    attrs = _frame_attrs(ds, frame)
    return attrs.slope.is_integer() and attrs.intercept.is_integer()


def values_scale(ds: Dataset, frame: int = 0) -> float:
    """The step of the int16 values of `int16_values`: 1 for whole numbers, else a power of ten.

    For fractional values (a slope like 0.0123, as PET and some MR have), the finest power of ten
    with which every value the file can hold fits in int16: from the stored range (Bits Stored, Pixel
    Representation) through the rescale, so every frame of the instance has the same step; for float
    pixel data, from the frame's values.
    """
    if integer_values(ds, frame):
        return 1.0
    if "FloatPixelData" in ds or "DoubleFloatPixelData" in ds:
        extreme = float(np.abs(modality_values(ds, frame)).max())
    else:
        bits = int(ds.get("BitsStored") or ds.get("BitsAllocated") or 16)
        signed = int(ds.get("PixelRepresentation") or 0) == 1
        low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
        attrs = _frame_attrs(ds, frame)
        extreme = max(abs(low * attrs.slope + attrs.intercept), abs(high * attrs.slope + attrs.intercept))
    if extreme <= 0:
        return 1.0
    return float(10 ** math.ceil(math.log10(extreme / 32767)))


def int16_values(ds: Dataset, frame: int = 0) -> np.ndarray:
    """The frame's Modality LUT values divided by `values_scale` and rounded, clipped to int16.

    Whole-number values (every CT in HU, nearly every MR) come out exact, clipped to -32768..32767,
    which holds every HU value and all but the top half of unsigned 16-bit data.
    """
    values = modality_values(ds, frame)
    scale = values_scale(ds, frame)
    if scale != 1.0:
        values = values / scale
    return np.clip(np.rint(values), -32768, 32767).astype(np.int16)


def _stored(ds: Dataset, frame: int) -> np.ndarray:
    frames = frame_count(ds)
    if not 0 <= frame < frames:
        raise ValueError(f"Frame {frame} is out of range: the image has {frames} frame(s).")
    # index= decodes only that frame (of a compressed multi-frame file, only its fragments).
    return pixel_array(ds, index=frame if frames > 1 else None)


def modality_values(ds: Dataset, frame: int = 0) -> np.ndarray:
    """The frame's values after the Modality LUT (HU for CT), as float64, shape (rows, columns).

    A Modality LUT Sequence wins over Rescale Slope/Intercept, as PS3.3 C.11.1 makes them exclusive.
    """
    if is_colour(ds):
        raise ValueError("A colour image has no Modality LUT values.")
    return _modality(ds, frame, _stored(ds, frame))


def _modality(ds: Dataset, frame: int, stored: np.ndarray) -> np.ndarray:
    if ds.get("ModalityLUTSequence"):
        return apply_modality_lut(stored, ds).astype(np.float64)
    attrs = _frame_attrs(ds, frame)
    values = stored.astype(np.float64)
    if attrs.slope != 1.0:
        values *= attrs.slope
    if attrs.intercept != 0.0:
        values += attrs.intercept
    return values


def value_range_window(values: np.ndarray) -> tuple[float, float]:
    """(width, level) that maps the lowest value to black and the highest to white with the LINEAR function.

    Solving c - 0.5 - (w-1)/2 = min and c - 0.5 + (w-1)/2 = max gives w = max - min + 1 and
    c = (min + max + 1) / 2; dcmtk's min-max window (+Wm) is the same.
    """
    low, high = float(values.min()), float(values.max())
    return high - low + 1.0, (low + high + 1.0) / 2.0


def default_window(ds: Dataset, values: np.ndarray, frame: int = 0) -> tuple[float, float]:
    """(width, level): the file's first VOI window (of this frame), else the range of `values`."""
    windows = _frame_attrs(ds, frame).windows
    if windows and windows[0][0] >= 1:
        return windows[0]
    return value_range_window(values)


def linear(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """The LINEAR window of PS3.3 C.11.2.1.2.1 onto 0.0..255.0 (not yet quantized).

    y = 0 where x <= c - 0.5 - (w-1)/2, 255 where x > c - 0.5 + (w-1)/2, and between them
    y = ((x - (c - 0.5)) / (w - 1) + 0.5) * 255. Width must be at least 1; at 1 the window is a
    threshold at c - 0.5 (the middle branch is empty).
    """
    if not width >= 1:  # also refuses NaN
        raise ValueError(f"The window width must be at least 1 (got {width}).")
    low = level - 0.5 - (width - 1) / 2
    high = level - 0.5 + (width - 1) / 2
    if width == 1:
        return np.where(values > high, 255.0, 0.0)
    y = ((values - (level - 0.5)) / (width - 1) + 0.5) * 255.0
    # Clipping at 0..255 is the same as the two outer branches: the middle line meets them at the edges.
    y = np.clip(y, 0.0, 255.0)
    y[values <= low] = 0.0
    y[values > high] = 255.0
    return y


def linear_exact(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """LINEAR_EXACT (PS3.3 C.11.2.1.3.2): y = ((x - c) / w + 0.5) * 255 between c - w/2 and c + w/2."""
    if not width > 0:
        raise ValueError(f"The window width must be above 0 (got {width}).")
    return np.clip(((values - level) / width + 0.5) * 255.0, 0.0, 255.0)


def sigmoid(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """SIGMOID (PS3.3 C.11.2.1.3.1): y = 255 / (1 + exp(-4 (x - c) / w))."""
    if not width > 0:
        raise ValueError(f"The window width must be above 0 (got {width}).")
    with np.errstate(over="ignore"):
        return 255.0 / (1.0 + np.exp(-4.0 * (values - level) / width))


def quantize(y: np.ndarray, *, invert: bool = False) -> np.ndarray:
    """0.0..255.0 to grey levels, truncated as dcmtk does; `invert` (MONOCHROME1) flips before truncating.

    The standard leaves the rounding open. Truncating, and inverting before it, makes our output
    equal dcmtk's dcm2pnm exactly, so a test can tell a half-level slip in the formula (a missing
    - 0.5) from rounding, which a one-level tolerance cannot. Truncation is at most one level darker
    than rounding to the nearest.
    """
    if invert:
        y = 255.0 - y
    return np.floor(y).astype(np.uint8)


def apply_window(values: np.ndarray, width: float, level: float) -> np.ndarray:
    """The LINEAR window (PS3.3 C.11.2.1.2.1) as 8-bit grey levels; see `linear` and `quantize`."""
    return quantize(linear(values, width, level))


def _voi_lut(ds: Dataset, values: np.ndarray) -> np.ndarray:
    """The file's first VOI LUT Sequence item, scaled from its bit depth to 0.0..255.0."""
    bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
    out = apply_voi(np.rint(values).astype(np.int64), ds, index=0).astype(np.float64)
    return np.clip(out * 255.0 / (2**bits - 1), 0.0, 255.0)


def _file_voi(ds: Dataset, values: np.ndarray, frame: int) -> np.ndarray:
    """The file's own VOI: its first window (with its VOI LUT Function), else its first VOI LUT, else the range."""
    attrs = _frame_attrs(ds, frame)
    if attrs.windows and attrs.windows[0][0] > 0:
        width, level = attrs.windows[0]
        if attrs.voi_function == "SIGMOID":
            return sigmoid(values, width, level)
        if attrs.voi_function == "LINEAR_EXACT":
            return linear_exact(values, width, level)
        if width >= 1:
            return linear(values, width, level)
    if ds.get("VOILUTSequence"):
        return _voi_lut(ds, values)
    return linear(values, *value_range_window(values))


def _colour(ds: Dataset, frame: int) -> np.ndarray:
    """8-bit RGB: pydicom converts YBR to RGB; a palette goes through its LUT; deeper samples are scaled."""
    rgb = _stored(ds, frame)
    if str(ds.PhotometricInterpretation).strip() == "PALETTE COLOR":
        rgb = apply_color_lut(rgb, ds)
        depth = int(ds.RedPaletteColorLookupTableDescriptor[2])
    else:
        depth = int(ds.get("BitsStored") or 8)
    if rgb.dtype == np.uint8 and depth == 8:
        return rgb
    return np.rint(rgb.astype(np.float64) * 255.0 / (2**depth - 1)).clip(0, 255).astype(np.uint8)


def render(
    ds: Dataset, *, width: float | None = None, level: float | None = None, frame: int = 0
) -> np.ndarray:
    """The frame as display values: uint8 (rows, columns), or (rows, columns, 3) for a colour image.

    With `width` and `level` (both, in the Modality LUT's units: HU for CT) the LINEAR window applies;
    without, the file's own VOI or the value range. MONOCHROME1 is inverted after the VOI stage.
    """
    if is_colour(ds):
        return _colour(ds, frame)
    if (width is None) != (level is None):
        raise ValueError("Give both the window width and level, or neither.")
    invert = str(ds.get("PhotometricInterpretation", "")).strip() == "MONOCHROME1"

    def display(values: np.ndarray) -> np.ndarray:
        if width is None:
            return quantize(_file_voi(ds, values, frame), invert=invert)
        return quantize(linear(values, float(width), float(level)), invert=invert)

    stored = _stored(ds, frame)
    if stored.dtype.kind in "iu" and stored.size > LUT_MIN_PIXELS and not ds.get("ModalityLUTSequence"):
        # As dcmtk does: run the pipeline once per stored value between the lowest and the highest and
        # look the pixels up, instead of once per pixel (a 512x512 CT has ~4,000 distinct values). The
        # rescale is linear, so the table's lowest and highest values are the image's and a range
        # window comes out the same. (A Modality LUT Sequence need not be monotonic: per pixel.)
        low, high = int(stored.min()), int(stored.max())
        if high - low < LUT_MAX_ENTRIES:
            table = display(_modality(ds, frame, np.arange(low, high + 1, dtype=np.int64)))
            return table[stored.astype(np.intp) - low]
    return display(_modality(ds, frame, stored))


def encode(array: np.ndarray, fmt: str = "png", size: int | None = None) -> bytes:
    """PNG (lossless) or JPEG (quality 90) of a rendered frame; `size` shrinks the longest side to it."""
    image = Image.fromarray(array)
    if size is not None:
        if size < 1:
            raise ValueError(f"The thumbnail size must be at least 1 (got {size}).")
        # thumbnail() keeps the aspect and never enlarges.
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    if fmt == "png":
        image.save(buffer, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
    elif fmt in ("jpeg", "jpg"):
        image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    else:
        raise ValueError(f"Unknown image format {fmt!r}: png or jpeg.")
    return buffer.getvalue()
