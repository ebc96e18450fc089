"""Path tricks in anything that becomes a file name: the writer never writes or removes outside WORKLIST_DIR."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scheduling.models import Order
from worklist_export.services import order_sync_worklist
from worklist_export.writer import (
    EXTENSION,
    order_file_path,
    worklist_file_remove,
    worklist_file_write,
    worklist_root,
)

from .helpers import counted, rolled_back, texts

pytestmark = pytest.mark.django_db

PATH_TRICKS = [
    "../x.wl",
    "../../x.wl",
    "/tmp/x.wl",
    "a/../../x.wl",
    "a/b/c.wl",
    "./x.wl",
    ".wl",
    "..wl",
    "x.wl/",
    "x.wl\x00.txt",
    "CON.wl",
    "lockfile",
    "x.WL",
    "x.wl.tmp",
    "",
    ".",
    "..",
    "~/x.wl",
    "\\..\\x.wl",
    "outside/../../sentinel.wl",
]


def files_under(folder: Path) -> set[Path]:
    return {Path(dirpath, name) for dirpath, _dirs, names in os.walk(folder) for name in names}


def relative_paths() -> st.SearchStrategy[str]:
    part = st.one_of(st.sampled_from(["..", ".", "", "a", "CON", ".hidden", "x.wl", "\x00"]), texts(8))
    joined = st.lists(part, min_size=1, max_size=4).map("/".join)
    return st.one_of(st.sampled_from(PATH_TRICKS), joined, joined.map(lambda p: p + EXTENSION))


@pytest.fixture
def sandbox(settings, tmp_path):
    """WORKLIST_DIR inside a folder with a sentinel file beside it, which must never change."""
    settings.WORKLIST_DIR = str(tmp_path / "root" / "worklists")
    worklist_root().mkdir(parents=True)
    sentinel = tmp_path / "root" / "sentinel.wl"
    sentinel.write_text("keep me")
    return tmp_path / "root"


def assert_nothing_outside(sandbox: Path) -> None:
    root = worklist_root().resolve()
    outside = {p for p in files_under(sandbox) if not p.resolve().is_relative_to(root)}
    assert outside == {sandbox / "sentinel.wl"}
    assert (sandbox / "sentinel.wl").read_text() == "keep me"


@given(relative_path=relative_paths(), layout=st.sampled_from(["orthanc", "wlmscpfs"]))
@counted
def test_writing_or_removing_any_path_stays_in_the_folder(settings, sandbox, order, relative_path, layout):
    from worklist_export.dataset import order_body

    settings.WORKLIST_LAYOUT = layout
    for action in (
        lambda: worklist_file_write(relative_path=relative_path, body=order_body(order)),
        lambda: worklist_file_remove(relative_path=relative_path),
    ):
        try:
            action()
        except ValueError:
            pass  # refused: the path leaves the folder, or is not a .wl file
    assert_nothing_outside(sandbox)


def column(width: int, tricks: list[str]) -> st.SearchStrategy[str]:
    """Anything that fits the database column (16 characters: PostgreSQL enforces the width)."""
    return st.one_of(st.sampled_from(tricks), texts(width).filter(lambda v: len(v) <= width))


@given(
    accession=column(16, ["../x", "/", "\x00", "CON", ".hidden", "..", "a/b", "...", ""]),
    called_ae=column(16, ["", "..", ".", "../up", "a/b", "\x00", "WORKLIST", "CON"]),
    layout=st.sampled_from(["orthanc", "wlmscpfs"]),
)
@counted
def test_an_order_file_never_lands_outside_the_folder(settings, sandbox, order, accession, called_ae, layout):
    """Even an accession number or called AE title that no form would accept (a row written by hand)."""
    settings.WORKLIST_LAYOUT = layout
    with rolled_back():
        Order.objects.filter(pk=order.pk).update(accession_number=accession)
        order.room.called_ae_title = called_ae
        order.room.save(update_fields=["called_ae_title"])
        outcome = order_sync_worklist(order_id=order.pk)
        assert outcome in ("written", "unchanged", "failed")
        written = files_under(worklist_root())
        if outcome != "failed":
            path = worklist_root() / order_file_path(Order.objects.get(pk=order.pk))
            assert path in written
            assert path.name.endswith(EXTENSION) and not path.name.startswith(".")
    assert_nothing_outside(sandbox)
