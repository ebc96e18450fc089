import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread
from pydicom.uid import ExplicitVRLittleEndian

from tests.factories import OrderFactory, RoomFactory
from worklist_export import writer
from worklist_export.dataset import order_body
from worklist_export.writer import (
    order_file_path,
    safe_ae_folder,
    safe_name,
    worklist_file_remove,
    worklist_file_write,
)

TRY_LOCK = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
try:
    fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
except OSError:
    sys.exit(3)
sys.exit(0)
"""


def lock_is_free(lockfile: Path) -> bool:
    """Whether another process could take the lock wlmscpfs readers and our writers contend for."""
    result = subprocess.run([sys.executable, "-c", TRY_LOCK, str(lockfile)], check=False)
    assert result.returncode in (0, 3)
    return result.returncode == 0


@pytest.fixture
def order(db):
    return OrderFactory(accession_number="2511250007")


def test_it_writes_a_part10_worklist_file(worklist_dir, order):
    path = order_file_path(order)
    result = worklist_file_write(relative_path=path, body=order_body(order))
    assert path == "2511250007.wl"
    assert result.written
    ds = dcmread(worklist_dir / path)
    assert ds.preamble == b"\0" * 128
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.31"
    assert ds.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert ds.file_meta.MediaStorageSOPInstanceUID
    assert ds.AccessionNumber == "2511250007"


def test_it_leaves_no_temporary_file(worklist_dir, order):
    worklist_file_write(relative_path=order_file_path(order), body=order_body(order))
    assert [p.name for p in worklist_dir.iterdir()] == ["2511250007.wl"]


def test_an_interrupted_write_leaves_the_old_file_and_no_partial_one(worklist_dir, order, monkeypatch):
    path = order_file_path(order)
    worklist_file_write(relative_path=path, body=order_body(order))
    before = (worklist_dir / path).read_bytes()

    def half_then_fail(tmp, data, *, fsync):
        tmp.write_bytes(data[:132])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(writer, "_write_tmp", half_then_fail)
    order.room.location = "Building B"
    with pytest.raises(OSError):
        worklist_file_write(relative_path=path, body=order_body(order))
    assert [p.name for p in worklist_dir.iterdir()] == ["2511250007.wl"]
    assert (worklist_dir / path).read_bytes() == before


def test_an_interrupted_first_write_leaves_no_wl_file(worklist_dir, order, monkeypatch):
    def half_then_fail(tmp, data, *, fsync):
        tmp.write_bytes(data[:64])
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(writer, "_write_tmp", half_then_fail)
    with pytest.raises(OSError):
        worklist_file_write(relative_path=order_file_path(order), body=order_body(order))
    assert list(worklist_dir.iterdir()) == []


def test_identical_content_is_not_rewritten(worklist_dir, order):
    path = order_file_path(order)
    first = worklist_file_write(relative_path=path, body=order_body(order))
    mtime = (worklist_dir / path).stat().st_mtime_ns
    again = worklist_file_write(relative_path=path, body=order_body(order))
    # Without the recorded hash the file itself is compared.
    fresh = worklist_file_write(relative_path=path, body=order_body(order), known_sha256="")
    assert not again.written and not fresh.written
    assert again.content_sha256 == first.content_sha256
    assert (worklist_dir / path).stat().st_mtime_ns == mtime


def test_changed_content_is_rewritten(worklist_dir, order):
    path = order_file_path(order)
    first = worklist_file_write(relative_path=path, body=order_body(order))
    order.patient.given_name = "Somsak"
    second = worklist_file_write(
        relative_path=path, body=order_body(order), known_sha256=first.content_sha256
    )
    assert second.written
    assert dcmread(worklist_dir / path).PatientName == "Jaidee^Somsak"


def test_wlmscpfs_layout_uses_the_called_ae_folder_and_a_lockfile(wlmscpfs_dir, order):
    path = order_file_path(order)
    worklist_file_write(relative_path=path, body=order_body(order))
    assert path == "WORKLIST/2511250007.wl"
    assert (wlmscpfs_dir / "WORKLIST" / "lockfile").is_file()
    assert (wlmscpfs_dir / path).is_file()


def test_a_room_can_override_the_called_ae(wlmscpfs_dir, db):
    order = OrderFactory(accession_number="A1", room=RoomFactory(called_ae_title="MRI_WL"))
    assert order_file_path(order) == "MRI_WL/A1.wl"


def test_the_lockfile_is_exclusively_locked_while_writing(wlmscpfs_dir, order, monkeypatch):
    path = order_file_path(order)
    lockfile = wlmscpfs_dir / "WORKLIST" / "lockfile"
    seen = []
    real_write = writer._write_atomic

    def checking_write(target, ds):
        seen.append(lock_is_free(lockfile))
        real_write(target, ds)

    monkeypatch.setattr(writer, "_write_atomic", checking_write)
    worklist_file_write(relative_path=path, body=order_body(order))
    assert seen == [False]
    assert lock_is_free(lockfile)


def test_the_lockfile_is_exclusively_locked_while_removing(wlmscpfs_dir, order, monkeypatch):
    path = order_file_path(order)
    worklist_file_write(relative_path=path, body=order_body(order))
    lockfile = wlmscpfs_dir / "WORKLIST" / "lockfile"
    seen = []
    real_fsync_dir = writer._fsync_dir

    def checking_fsync_dir(folder):
        seen.append(lock_is_free(lockfile))
        real_fsync_dir(folder)

    monkeypatch.setattr(writer, "_fsync_dir", checking_fsync_dir)
    assert worklist_file_remove(relative_path=path)
    assert seen == [False]
    assert not (wlmscpfs_dir / path).exists()
    assert lockfile.exists()


@pytest.mark.parametrize(
    ("accession", "expected"),
    [
        ("../../etc/passwd", "etc_passwd"),
        ("A/B\\C", "A_B_C"),
        ("..", ""),
        ("ACC 1.2", "ACC_1_2"),
        ("2511250001", "2511250001"),
    ],
)
def test_safe_name_strips_path_tricks(accession, expected):
    assert safe_name(accession) == expected


def test_a_tricky_accession_stays_inside_the_folder(worklist_dir, db):
    order = OrderFactory(accession_number="../x/..")
    path = order_file_path(order)
    assert "/" not in path and ".." not in path
    worklist_file_write(relative_path=path, body=order_body(order))
    assert (worklist_dir / path).parent == worklist_dir


def test_an_accession_with_nothing_safe_falls_back_to_the_order_id(worklist_dir, db):
    order = OrderFactory(accession_number="..")
    assert order_file_path(order) == f"order-{order.pk}.wl"


@pytest.mark.parametrize("ae", ["..", "A/B", ".", ""])
def test_an_unsafe_called_ae_folder_is_refused(ae):
    with pytest.raises(ValueError):
        safe_ae_folder(ae)


def test_paths_outside_the_folder_are_refused(worklist_dir):
    with pytest.raises(ValueError):
        worklist_file_remove(relative_path="../outside.wl")
    with pytest.raises(ValueError):
        worklist_file_remove(relative_path="notes.txt")
