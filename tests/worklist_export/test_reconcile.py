import os

import pytest
from django.core.management import call_command
from pydicom import dcmread

from scheduling.models import CharacterSet, OrderStatus
from tests.factories import OrderFactory, RoomFactory, ThaiPatientFactory
from worklist_export.reconcile import worklists_reconcile
from worklist_export.services import order_sync_worklist


def wl_files(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*.wl"))


def run(*args):
    """manage.py export_worklists *args -> (exit code, stdout, stderr)."""
    from io import StringIO

    out, err = StringIO(), StringIO()
    try:
        call_command("export_worklists", *args, stdout=out, stderr=err)
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def orders(db):
    return [OrderFactory(accession_number=f"ACC{i}") for i in range(3)]


def test_it_writes_missing_files(worklist_dir, orders):
    report = worklists_reconcile()
    assert report.counts()["missing"] == 3
    assert wl_files(worklist_dir) == ["ACC0.wl", "ACC1.wl", "ACC2.wl"]


def test_an_unchanged_folder_is_not_rewritten(worklist_dir, orders):
    worklists_reconcile()
    mtimes = {p: os.stat(worklist_dir / p).st_mtime_ns for p in wl_files(worklist_dir)}
    report = worklists_reconcile()
    assert report.counts()["unchanged"] == 3 and not report.has_differences
    assert {p: os.stat(worklist_dir / p).st_mtime_ns for p in wl_files(worklist_dir)} == mtimes


def test_files_written_by_the_task_count_as_unchanged(worklist_dir, orders):
    for order in orders:
        order_sync_worklist(order_id=order.pk)
    assert worklists_reconcile().counts()["unchanged"] == 3


def test_it_rewrites_a_changed_order(worklist_dir, orders):
    worklists_reconcile()
    orders[0].patient.given_name = "Changed"
    orders[0].patient.save()  # behind the services' back: no task ran
    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines] == [("changed", "ACC0.wl")]
    assert dcmread(worklist_dir / "ACC0.wl").PatientName == "Jaidee^Changed"


def test_it_rewrites_a_file_edited_by_hand(worklist_dir, orders):
    worklists_reconcile()
    with open(worklist_dir / "ACC1.wl", "ab") as fh:
        fh.write(b"junk")
    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines] == [("changed", "ACC1.wl")]


def test_it_rewrites_a_deleted_file(worklist_dir, orders):
    worklists_reconcile()
    (worklist_dir / "ACC2.wl").unlink()
    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines] == [("missing", "ACC2.wl")]
    assert (worklist_dir / "ACC2.wl").exists()


def test_it_removes_stale_files(worklist_dir, orders):
    worklists_reconcile()
    orders[1].status = OrderStatus.CANCELLED
    orders[1].cancel_reason = "duplicate"
    orders[1].save()
    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines] == [("stale", "ACC1.wl")]
    assert wl_files(worklist_dir) == ["ACC0.wl", "ACC2.wl"]
    orders[1].worklist_entry.refresh_from_db()
    assert orders[1].worklist_entry.path == ""


def test_it_removes_orphan_files_and_leaves_unrelated_ones(worklist_dir, orders):
    (worklist_dir / "ghost.wl").write_bytes(b"not even dicom")
    (worklist_dir / "README.txt").write_text("keep me")
    (worklist_dir / "ghost.WL.bak").write_text("keep me")
    (worklist_dir / "sub").mkdir()
    (worklist_dir / "sub" / "deep.wl").write_bytes(b"keep me")
    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines if line.kind == "orphan"] == [
        ("orphan", "ghost.wl")
    ]
    assert not (worklist_dir / "ghost.wl").exists()
    assert (worklist_dir / "README.txt").read_text() == "keep me"
    assert (worklist_dir / "ghost.WL.bak").exists()
    assert (worklist_dir / "sub" / "deep.wl").exists()


def test_wlmscpfs_layout_keeps_the_lockfile_and_removes_moved_files(wlmscpfs_dir, orders):
    (wlmscpfs_dir / "OLD_AE").mkdir()
    (wlmscpfs_dir / "OLD_AE" / "lockfile").touch()
    (wlmscpfs_dir / "OLD_AE" / "ACC0.wl").write_bytes(b"old")
    report = worklists_reconcile()
    assert wl_files(wlmscpfs_dir) == ["WORKLIST/ACC0.wl", "WORKLIST/ACC1.wl", "WORKLIST/ACC2.wl"]
    assert ("stale", "OLD_AE/ACC0.wl") in [(line.kind, line.path) for line in report.lines]
    assert (wlmscpfs_dir / "OLD_AE" / "lockfile").exists()
    assert (wlmscpfs_dir / "WORKLIST" / "lockfile").exists()


def test_orders_outside_the_window_are_removed(worklist_dir, orders, settings):
    worklists_reconcile()
    settings.WORKLIST_WINDOW_DAYS_AHEAD = 0
    assert worklists_reconcile().counts()["stale"] == 3
    assert wl_files(worklist_dir) == []


def test_check_reports_without_changing_anything(worklist_dir, orders):
    worklists_reconcile()
    (worklist_dir / "ACC0.wl").unlink()
    (worklist_dir / "ghost.wl").write_bytes(b"x")
    code, out, _ = run("--check", "-v", "2")
    assert code == 1
    assert "missing ACC0.wl" in out
    assert "orphan ghost.wl" in out
    assert "1 missing, 0 differs, 0 stale, 1 orphan, 0 failed, 2 unchanged" in out
    assert not (worklist_dir / "ACC0.wl").exists()
    assert (worklist_dir / "ghost.wl").exists()


def test_check_exits_zero_when_in_sync(worklist_dir, orders):
    run()
    code, out, _ = run("--check")
    assert code == 0
    assert "0 failed, 3 unchanged" in out


def test_the_command_prints_what_it_did(worklist_dir, orders):
    (worklist_dir / "ghost.wl").write_bytes(b"x")
    code, out, _ = run("-v", "2")
    assert code == 0
    assert "wrote ACC0.wl (ACC0 " in out
    assert "removed orphan ghost.wl" in out
    assert "3 wrote, 0 rewrote, 0 removed stale, 1 removed orphan, 0 failed, 0 unchanged." in out


def test_export_failures_are_listed_per_order(worklist_dir, db):
    room = RoomFactory(name="DX old", worklist_charset=CharacterSet.LATIN1)
    patient = ThaiPatientFactory(romanized_family_name="", romanized_given_name="")
    OrderFactory(accession_number="BAD1", room=room, patient=patient)
    code, out, err = run()
    assert "failed BAD1: BAD1" in err and "no romanised name" in err
    assert "1 failed" in out
    assert wl_files(worklist_dir) == []
    code, _, _ = run("--check")
    assert code == 1


def test_a_large_export_is_written_in_batches_the_task_agrees_with(worklist_dir, db, monkeypatch):
    from tests.worklist_export.oracle import dataset_sha256
    from worklist_export import reconcile
    from worklist_export.dataset import order_dataset
    from worklist_export.writer import file_content_sha256

    monkeypatch.setattr(reconcile, "BATCH_SIZE", 2)
    orders = [OrderFactory(accession_number=f"ACC{i}", patient=ThaiPatientFactory()) for i in range(5)]

    assert worklists_reconcile().counts()["missing"] == 5
    assert wl_files(worklist_dir) == [f"ACC{i}.wl" for i in range(5)]
    assert not [p for p in worklist_dir.iterdir() if ".tmp-" in p.name]
    for order in orders:
        path = worklist_dir / f"{order.accession_number}.wl"
        ds = dcmread(path)
        assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.5.1.4.31"
        assert ds.PatientName == "ใจดี^สมชาย"
        # Byte for byte what the task writes: the task finds it unchanged.
        assert file_content_sha256(path) == dataset_sha256(order_dataset(order))
        assert order_sync_worklist(order_id=order.pk) == "unchanged"
    assert worklists_reconcile().counts()["unchanged"] == 5


def test_it_removes_the_temporary_file_of_a_killed_writer(worklist_dir, orders):
    leftover = worklist_dir / ".ACC0.wl.tmp-0123456789ab"
    leftover.write_bytes(b"\0" * 128 + b"DICM half a file")
    unrelated = worklist_dir / ".notes.tmp"
    unrelated.write_text("not ours")

    worklists_reconcile()

    assert not leftover.exists() and unrelated.exists()
    assert wl_files(worklist_dir) == ["ACC0.wl", "ACC1.wl", "ACC2.wl"]


def test_it_marks_as_synced_a_change_whose_task_was_lost(worklist_dir, orders):
    from worklist_export.models import WorklistEntry

    worklists_reconcile()
    order = orders[0]
    # A change that does not alter the file (notes), whose task never ran.
    order.notes = "Bring old films"
    order.save(update_fields=["notes", "updated_at"])
    assert WorklistEntry.objects.get(order=order).is_pending_for(order)

    worklists_reconcile()

    order.refresh_from_db()
    assert not WorklistEntry.objects.get(order=order).is_pending_for(order)


def overwrite_in_place(path, old: bytes, new: bytes, *, keep_mtime: bool = False) -> None:
    """Change bytes of `path` without changing its size or inode, as an editor writing in place does."""
    before = os.stat(path)
    data = path.read_bytes()
    assert len(old) == len(new) and data.count(old) == 1
    with open(path, "r+b") as fh:
        fh.seek(data.index(old))
        fh.write(new)
    if keep_mtime:  # what cp -p or rsync -t leave behind
        os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(path)
    assert (after.st_ino, after.st_size) == (before.st_ino, before.st_size)


@pytest.mark.parametrize("keep_mtime", [False, True], ids=["edited", "edited-mtime-restored"])
def test_a_file_changed_in_place_is_reported_and_rewritten(worklist_dir, orders, keep_mtime):
    worklists_reconcile()
    path = worklist_dir / "ACC1.wl"
    overwrite_in_place(path, b"Jaidee", b"JAIDEE", keep_mtime=keep_mtime)

    code, out, _ = run("--check", "-v", "2")
    assert code == 1
    assert "differs ACC1.wl" in out and "0 missing, 1 differs" in out

    report = worklists_reconcile()
    assert [(line.kind, line.path) for line in report.lines] == [("changed", "ACC1.wl")]
    assert str(dcmread(path).PatientName).startswith("Jaidee^")
    assert worklists_reconcile().counts()["unchanged"] == 3


def test_the_task_rewrites_a_file_changed_in_place(worklist_dir, orders):
    order_sync_worklist(order_id=orders[0].pk)
    overwrite_in_place(worklist_dir / "ACC0.wl", b"Jaidee", b"JAIDEE")
    assert order_sync_worklist(order_id=orders[0].pk) == "written"
    assert str(dcmread(worklist_dir / "ACC0.wl").PatientName).startswith("Jaidee^")


def test_a_file_only_touched_is_compared_but_not_rewritten(worklist_dir, orders):
    worklists_reconcile()
    path = worklist_dir / "ACC2.wl"
    inode = os.stat(path).st_ino
    os.utime(path, ns=(0, 0))
    report = worklists_reconcile()
    assert not report.has_differences and report.counts()["unchanged"] == 3
    assert os.stat(path).st_ino == inode


def test_an_unchanged_folder_is_checked_without_reading_a_file(worklist_dir, orders, monkeypatch):
    from worklist_export import reconcile, writer

    worklists_reconcile()

    def no_reading(*args, **kwargs):
        raise AssertionError("an unchanged file was read")

    monkeypatch.setattr(reconcile, "file_content_sha256", no_reading)
    monkeypatch.setattr(writer, "file_content_sha256", no_reading)
    assert worklists_reconcile(check=True).counts()["unchanged"] == 3
    assert worklists_reconcile().counts()["unchanged"] == 3


def test_a_missing_lockfile_is_reported_and_recreated(wlmscpfs_dir, orders):
    worklists_reconcile()
    lockfile = wlmscpfs_dir / "WORKLIST" / "lockfile"
    lockfile.unlink()

    code, out, _ = run("--check")
    assert code == 1
    assert "missing WORKLIST/lockfile" in out
    assert not lockfile.exists()

    code, out, _ = run()
    assert code == 0 and "created WORKLIST/lockfile" in out
    assert lockfile.is_file()
    assert wl_files(wlmscpfs_dir) == ["WORKLIST/ACC0.wl", "WORKLIST/ACC1.wl", "WORKLIST/ACC2.wl"]
    assert run("--check")[0] == 0


def test_each_called_ae_folder_gets_its_lockfile(wlmscpfs_dir, db):
    OrderFactory(accession_number="ACC0", room=RoomFactory(called_ae_title="CT_ROOM"))
    worklists_reconcile()
    (wlmscpfs_dir / "CT_ROOM" / "lockfile").unlink()
    (wlmscpfs_dir / "WORKLIST" / "lockfile").unlink()

    report = worklists_reconcile()

    assert [(line.kind, line.path) for line in report.lines] == [
        ("lockfile", "CT_ROOM/lockfile"),
        ("lockfile", "WORKLIST/lockfile"),
    ]
    assert (wlmscpfs_dir / "CT_ROOM" / "lockfile").is_file()
    # The default called AE answers an empty worklist instead of failing.
    assert (wlmscpfs_dir / "WORKLIST" / "lockfile").is_file()


def test_the_orthanc_layout_has_no_lockfile(worklist_dir, orders):
    worklists_reconcile()
    assert not report_kinds(worklists_reconcile(check=True))
    assert not list(worklist_dir.rglob("lockfile"))


def report_kinds(report):
    return [line.kind for line in report.lines]


class FakeClock:
    """Stands in for the time module of the command: each round's wait passes at once; Ctrl-C after two."""

    def __init__(self, on_sleep=lambda round_number: None):
        self.now, self.rounds, self.on_sleep = 0.0, 0, on_sleep

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += 3600  # past any round's deadline: one sleep per round
        self.rounds += 1
        if self.rounds >= 2:
            raise KeyboardInterrupt
        self.on_sleep(self.rounds)


def test_every_reconciles_until_interrupted(worklist_dir, orders, monkeypatch):
    from worklist_export.management.commands import export_worklists

    clock = FakeClock(on_sleep=lambda n: (worklist_dir / "ACC1.wl").unlink() if n == 1 else None)
    monkeypatch.setattr(export_worklists, "time", clock)
    code, out, _ = run("--every", "1")
    assert code == 0
    assert out.count("unchanged.") == 2  # both rounds changed something, so both printed
    assert "3 wrote" in out and "1 wrote, 0 rewrote" in out
    assert wl_files(worklist_dir) == ["ACC0.wl", "ACC1.wl", "ACC2.wl"]


def test_every_keeps_going_when_the_folder_cannot_be_written(worklist_dir, orders, monkeypatch):
    from worklist_export.management.commands import export_worklists

    calls = []
    real = export_worklists.worklists_reconcile

    def flaky(**kwargs):
        calls.append(kwargs)
        if len(calls) == 1:
            raise OSError(28, "No space left on device")
        return real(**kwargs)

    monkeypatch.setattr(export_worklists, "worklists_reconcile", flaky)
    monkeypatch.setattr(export_worklists, "time", FakeClock())
    code, out, err = run("--every", "5")
    assert "No space left on device" in err and "retrying in 5 s" in err
    assert wl_files(worklist_dir) == ["ACC0.wl", "ACC1.wl", "ACC2.wl"]


def test_every_refuses_check_and_nonsense(worklist_dir, db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="--check"):
        run("--every", "5", "--check")
    with pytest.raises(CommandError, match="at least 1"):
        run("--every", "0")


def test_reconcile_reads_the_database_in_the_same_number_of_queries_for_any_number_of_orders(
    worklist_dir, db, django_assert_max_num_queries
):
    # Orders are read with some fields deferred and rooms and procedures prefetched: an item that
    # came to need a deferred field would cost a query per order, which this catches.
    def queries_for(n: int) -> tuple[int, int]:
        for _ in range(n):
            OrderFactory(patient=ThaiPatientFactory(weight_kg=70, allergies="Iodine"))
        worklists_reconcile()  # write them all, then count an unchanged run and a full rewrite
        with django_assert_max_num_queries(40) as unchanged:
            worklists_reconcile()
        for path in worklist_dir.glob("*.wl"):
            path.unlink()
        with django_assert_max_num_queries(60) as rewrite:
            worklists_reconcile()
        return len(unchanged), len(rewrite)

    assert queries_for(2) == queries_for(20)
