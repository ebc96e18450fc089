"""Images of PACS instances for the pages: rendered PNG/JPEG, what the viewer needs to know, raw values.

Everything starts from the instance's DICOM file, fetched once from Orthanc and kept on disk under
PACS_RENDER_CACHE_DIR/dicom/, so dragging the window re-renders from the local copy without asking the
PACS again. Rendered images are kept beside it under rendered/, one file per (instance, frame, width,
level, format, size). Files are written to a temporary name and renamed, so a reader never sees half a
file, and several workers can share the folder. The folder is held under PACS_RENDER_CACHE_MB by
deleting the least recently used files (a hit touches its file's mtime).

Callers check access first: an id reaching these functions must belong to a recorded Series of a Study
the user may see. The id is still validated here so it can never name a path outside the cache.
Errors talking to the PACS surface as orthanc.PacsUnavailable / PacsNotFound; a bad frame, window or
format as ValueError.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
from pathlib import Path

import pydicom
from django.conf import settings
from pydicom.dataset import Dataset

from pacs_link import orthanc, rendering

# Orthanc's ids are SHA-1 hashes written as five dash-separated groups of eight hex digits.
ORTHANC_ID = re.compile(r"^[0-9a-f]{8}(?:-[0-9a-f]{8}){4}$")
CONTENT_TYPES = {"png": "image/png", "jpeg": "image/jpeg"}
TMP_SUFFIX = ".tmp"
# A temporary file older than this was left by a worker that died mid-write.
STALE_TMP_SECONDS = 3600
# Evict down to this share of the cap, so one eviction buys room for many writes.
EVICT_TO = 0.9
# A process scans the folder after it has written this share of the cap since its last scan (and on its
# first write): the cap may be overshot by workers x 2 %, never by more.
SCAN_EVERY = 0.02

_scan_lock = threading.Lock()
_written_since_scan: int | None = None  # None: this process has not scanned yet


def _root() -> Path:
    return Path(settings.PACS_RENDER_CACHE_DIR)


def _cap_bytes() -> int:
    return int(settings.PACS_RENDER_CACHE_MB) * 1024 * 1024


def _checked_id(orthanc_id: str) -> str:
    if not ORTHANC_ID.match(orthanc_id):
        raise ValueError(f"{orthanc_id!r} is not an Orthanc instance id.")
    return orthanc_id


def _number(value: float | None) -> str:
    """A window value for a file name: repr keeps every digit, so two windows never share a file."""
    return "auto" if value is None else repr(float(value))


def _format(fmt: str) -> str:
    fmt = fmt.lower()
    fmt = "jpeg" if fmt == "jpg" else fmt
    if fmt not in CONTENT_TYPES:
        raise ValueError(f"Unknown image format {fmt!r}: png or jpeg.")
    return fmt


# --- the disk cache ---------------------------------------------------------------------------------


def _read(path: Path) -> bytes | None:
    """The cached file's bytes (marking it recently used), or None when it is not (or no longer) there."""
    try:
        data = path.read_bytes()
        os.utime(path)
    except FileNotFoundError:  # never written, or evicted by another worker since
        return None
    return data


def _write(path: Path, data: bytes) -> None:
    """Write `data` to `path` atomically (a temporary file in the same folder, then a rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=TMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _note_written(len(data))


def _note_written(size: int) -> None:
    global _written_since_scan
    cap = _cap_bytes()
    with _scan_lock:
        due = _written_since_scan is None or _written_since_scan + size >= cap * SCAN_EVERY
        _written_since_scan = 0 if due else (_written_since_scan or 0) + size
    if due:
        evict(cap)


def evict(cap: int | None = None) -> int:
    """Delete the least recently used files until the cache is under EVICT_TO x cap; the bytes freed.

    Only when the cache is over the cap. Files another worker deletes meanwhile are skipped.
    """
    cap = _cap_bytes() if cap is None else cap
    now = time.time()
    files: list[tuple[float, int, Path]] = []
    total = 0
    for folder, _dirs, names in os.walk(_root()):
        for name in names:
            path = Path(folder, name)
            try:
                stat = path.stat()
            except FileNotFoundError:
                continue
            if name.endswith(TMP_SUFFIX):
                if now - stat.st_mtime > STALE_TMP_SECONDS:
                    path.unlink(missing_ok=True)
                continue
            files.append((stat.st_mtime, stat.st_size, path))
            total += stat.st_size
    if total <= cap:
        return 0
    freed = 0
    target = total - cap * EVICT_TO
    for _mtime, size, path in sorted(files):
        if freed >= target:
            break
        path.unlink(missing_ok=True)
        freed += size
    return freed


# --- instances ----------------------------------------------------------------------------------------


def _dicom_path(orthanc_id: str) -> Path:
    """The local copy of the instance's DICOM file, fetched from the PACS if it is not cached."""
    path = _root() / "dicom" / f"{_checked_id(orthanc_id)}.dcm"
    if _read_touch(path):
        return path
    with orthanc.client() as pacs:
        data = pacs.instance_file(orthanc_id)
    _write(path, data)
    return path


def _read_touch(path: Path) -> bool:
    try:
        os.utime(path)
    except FileNotFoundError:
        return False
    return True


def dataset(orthanc_id: str) -> Dataset:
    """The instance as a pydicom Dataset (from the local copy)."""
    path = _dicom_path(orthanc_id)
    try:
        return pydicom.dcmread(path)
    except FileNotFoundError:  # evicted between the check and the read: fetch it again
        return pydicom.dcmread(_dicom_path(orthanc_id))


def rendered(
    orthanc_id: str,
    *,
    width: float | None = None,
    level: float | None = None,
    fmt: str = "png",
    size: int | None = None,
    frame: int = 0,
) -> bytes:
    """The frame rendered with the window (width, level in the Modality LUT's units, HU for CT) as PNG/JPEG.

    Without a window, the file's own VOI (or the value range); `size` makes a thumbnail whose longest
    side is `size` pixels. Content type: CONTENT_TYPES[fmt].
    """
    fmt = _format(fmt)
    key = f"f{int(frame)}_w{_number(width)}_l{_number(level)}_s{size or 'full'}.{fmt}"
    path = _root() / "rendered" / _checked_id(orthanc_id) / key
    data = _read(path)
    if data is not None:
        return data
    ds = dataset(orthanc_id)
    data = rendering.encode(rendering.render(ds, width=width, level=level, frame=frame), fmt, size)
    _write(path, data)
    return data


def instance_info(orthanc_id: str, frame: int = 0) -> dict:
    """What the image page needs about one frame of an instance (an enhanced image's rescale, window and
    spacing may differ per frame; `frame` from 0).

    Keys: rows, columns, frames, modality, photometric, colour (no window applies), units ("HU" for a
    rescaled CT, else the file's Rescale Type or ""), slope, intercept, default_window ([width, level]:
    the file's first window, else the value range; None for colour), windows (all of the file's, as
    [width, level]), instance_number, pixel_spacing ([row, column] in mm, or None), values_scale (what
    one step of `values_int16` is worth: 1 for whole-number values such as HU; None for colour).
    """
    ds = dataset(orthanc_id)
    colour = rendering.is_colour(ds)
    slope, intercept = rendering.slope_intercept(ds, frame)
    default = None
    if not colour:
        default = list(rendering.default_window(ds, rendering.modality_values(ds, frame), frame))
    spacing = rendering.frame_attr(ds, frame, "PixelMeasuresSequence", "PixelSpacing") or ds.get(
        "ImagerPixelSpacing"
    )
    number = ds.get("InstanceNumber")
    return {
        "rows": int(ds.Rows),
        "columns": int(ds.Columns),
        "frames": rendering.frame_count(ds),
        "modality": str(ds.get("Modality", "")),
        "photometric": str(ds.get("PhotometricInterpretation", "")).strip(),
        "colour": colour,
        "units": "" if colour else rendering.units(ds, frame),
        "slope": slope,
        "intercept": intercept,
        "default_window": default,
        "windows": [[w, c] for w, c in rendering.file_windows(ds, frame)],
        "instance_number": int(number) if number not in (None, "") else None,
        "pixel_spacing": [float(v) for v in spacing] if spacing else None,
        "values_scale": None if colour else rendering.values_scale(ds, frame),
    }


def values_int16(orthanc_id: str, frame: int = 0) -> tuple[int, int, bytes]:
    """(rows, columns, data): the frame's Modality LUT values (HU for CT) for the value under the pointer.

    `data` is little-endian int16, row by row. Whole-number values (every CT, nearly every MR) are
    exact; fractional ones (PET, some MR) are in steps of instance_info()["values_scale"] (a power of
    ten): value = int16 x scale. A colour image has none (ValueError).
    """
    ds = dataset(orthanc_id)
    values = rendering.int16_values(ds, frame)
    return int(ds.Rows), int(ds.Columns), values.astype("<i2").tobytes()
