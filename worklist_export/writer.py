"""Worklist files on disk: where they go, how they are written and removed (MWL-NOTES sections 3 and 4).

A server that reads a half-written file skips it, which is a silently missing exam. Every file is
therefore written to a temporary name in the same folder (one that does not end in .wl, so no server
reads it), flushed, fsynced and renamed over the old one; the folder is fsynced so the rename survives a
crash. Reconciliation writes files in batches (`worklist_files_write`): all temporary files of a batch,
one flush of the filesystem, the renames, one fsync of the folder; fsync of each file and of the folder
per file cost more than building the file (see docs/BENCHMARKS.md). In the wlmscpfs layout the exclusive fcntl lock on the AE folder's `lockfile` is held while files
are added, replaced or removed; wlmscpfs takes the shared lock on it while it reads.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import hashlib
import os
import re
import secrets
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings

from scheduling.models import Order

from . import problems
from .dataset import ExportError
from .encoding import part10_bytes

EXTENSION = ".wl"
LOCKFILE = "lockfile"
LAYOUT_ORTHANC = "orthanc"
LAYOUT_WLMSCPFS = "wlmscpfs"
# Serialises this system's own writers (tasks, reconciliation) so an older task can never overwrite
# a newer file; it lives in the root, where neither server looks for worklist items.
EXPORT_LOCK = ".ris-export.lock"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]")


def worklist_root() -> Path:
    return Path(settings.WORKLIST_DIR)


def worklist_layout() -> str:
    layout = settings.WORKLIST_LAYOUT
    if layout not in (LAYOUT_ORTHANC, LAYOUT_WLMSCPFS):
        raise ValueError(f"WORKLIST_LAYOUT must be 'orthanc' or 'wlmscpfs', not {layout!r}")
    return layout


def safe_name(value: str) -> str:
    """`value` reduced to [A-Za-z0-9_-]: no path separators, no dots, no '..'."""
    return _UNSAFE.sub("_", value.strip()).strip("_")


class UnsafeFolderError(ExportError, ValueError):
    """A called AE title that cannot be a folder name: an export error for the orders it concerns."""


def safe_ae_folder(ae_title: str) -> str:
    """The folder wlmscpfs looks in for `ae_title`; refuses (UnsafeFolderError) anything that could
    leave WORKLIST_DIR. The rooms' AE titles are validated; this guards WORKLIST_CALLED_AE."""
    folder = ae_title.strip()
    if not folder or "/" in folder or "\\" in folder or folder in (".", "..") or "\0" in folder:
        raise UnsafeFolderError(
            problems.CALLED_AE_UNSAFE, field="Worklist server called AE title", value=ae_title
        )
    return folder


def called_ae_title(order: Order) -> str:
    return order.room.called_ae_title.strip() or settings.WORKLIST_CALLED_AE


def order_file_path(order: Order) -> str:
    """Where `order`'s file goes, relative to WORKLIST_DIR (posix separators)."""
    name = safe_name(order.accession_number) or f"order-{order.pk}"
    filename = f"{name}{EXTENSION}"
    if worklist_layout() == LAYOUT_WLMSCPFS:
        return f"{safe_ae_folder(called_ae_title(order))}/{filename}"
    return filename


def content_sha256(body: bytes) -> str:
    """The hash of an item's dataset bytes (encoding.source_bytes), as recorded on its entry.

    The file meta holds a fresh SOP Instance UID on every write, so only the dataset is compared.
    """
    return hashlib.sha256(body).hexdigest()


def file_content_sha256(path: Path) -> str | None:
    """The hash of a Part 10 file's dataset bytes (after the file meta), or None if unreadable."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    # 128-byte preamble, "DICM", then (0002,0000) UL FileMetaInformationGroupLength in explicit VR LE.
    if len(data) < 144 or data[128:132] != b"DICM" or data[132:136] != b"\x02\x00\x00\x00":
        return None
    (group_length,) = struct.unpack("<I", data[140:144])
    return hashlib.sha256(data[144 + group_length :]).hexdigest()


def file_stamp(stat: os.stat_result) -> str:
    """One version of a file on disk: inode, size, mtime and ctime.

    A rename of a new file gives a new inode; a write in place changes mtime and ctime; even a copy that
    restores the old mtime (cp -p, rsync -t) changes ctime, which no user can set. Comparing stamps
    costs one stat per file instead of reading it.
    """
    return f"{stat.st_ino}:{stat.st_size}:{stat.st_mtime_ns}:{stat.st_ctime_ns}"


def worklist_file_stamp(*, relative_path: str) -> str:
    """The file_stamp of WORKLIST_DIR/relative_path, or "" when there is no file."""
    try:
        return file_stamp(os.stat(_resolve(relative_path)))
    except FileNotFoundError:
        return ""


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@contextlib.contextmanager
def _exclusive_lock(lock_path: Path) -> Iterator[None]:
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        # lockf is fcntl(F_SETLKW): the same lock family wlmscpfs's shared read lock belongs to.
        fcntl.lockf(fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


@contextlib.contextmanager
def export_lock() -> Iterator[None]:
    """Held by every writer of this system for the whole load-build-write of one order or a reconcile."""
    root = worklist_root()
    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / EXPORT_LOCK):
        yield


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """The wlmscpfs AE folder lock (creating `lockfile` if missing); nothing in the orthanc layout."""
    folder.mkdir(parents=True, exist_ok=True)
    if worklist_layout() != LAYOUT_WLMSCPFS or folder == worklist_root():
        yield
        return
    with _exclusive_lock(folder / LOCKFILE):
        yield


def _resolve(relative_path: str) -> Path:
    root = worklist_root().resolve()
    path = (root / relative_path).resolve()
    if path.parent != root and path.parent.parent != root:
        raise ValueError(f"worklist path outside WORKLIST_DIR: {relative_path!r}")
    if not path.name.endswith(EXTENSION):
        raise ValueError(f"not a worklist file: {relative_path!r}")
    return path


def _tmp_name(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{secrets.token_hex(6)}"


_TMP = re.compile(r"^\..+\.wl\.tmp-[0-9a-f]{12}$")


def _write_tmp(tmp: Path, data: bytes, *, fsync: bool) -> None:
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = _tmp_name(path)
    try:
        _write_tmp(tmp, data, fsync=True)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(path.parent)


def _load_syncfs():
    try:
        return ctypes.CDLL(None, use_errno=True).syncfs
    except (AttributeError, OSError):  # not Linux
        return None


_syncfs = _load_syncfs()


def _flush_files(folder: Path, tmps: list[Path]) -> None:
    """Make the data of `tmps` durable before they are renamed into place.

    One syncfs(2) of the folder's filesystem costs about as much as two fsyncs, however many files were
    written; without syncfs, each file is fsynced.
    """
    if _syncfs is not None and len(tmps) > 2:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            if _syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for tmp in tmps:
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class WriteResult:
    path: str
    content_sha256: str
    size: int
    written: bool  # False when the file on disk already had identical content


def worklist_file_write(*, relative_path: str, body: bytes, known_sha256: str = "") -> WriteResult:
    """Write the item `body` (encoding.source_bytes) as the Part 10 file WORKLIST_DIR/relative_path,
    unless the file there already holds the same dataset.

    `known_sha256` is the hash recorded at the last export: when it matches, the file is not re-read.
    Raises OSError on I/O failure (the caller retries); never leaves a partial .wl file behind.
    """
    path = _resolve(relative_path)
    sha = content_sha256(body)
    with folder_lock(path.parent):
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = None
        same = size is not None and (known_sha256 == sha or file_content_sha256(path) == sha)
        if not same:
            data = part10_bytes(body)
            _write_atomic(path, data)
            size = len(data)
    return WriteResult(path=relative_path, content_sha256=sha, size=size, written=not same)


def worklist_files_write(files: dict[str, bytes]) -> dict[str, int]:
    """Write many files at once: {relative path: Part 10 bytes (encoding.part10_bytes)} -> {path: size}.

    Per folder, under its lock held once: every file goes to a temporary name, their data is made durable
    with one filesystem flush, each is renamed over its .wl name, and the folder is fsynced once. As with
    worklist_file_write, a server never sees a partial .wl file; on OSError the temporary files are
    removed (files already renamed stay, complete) and the error propagates.
    """
    by_folder: dict[Path, list[tuple[str, Path]]] = {}
    folders: dict[str, Path] = {}  # resolved once per folder: resolving each path was 8% of an export
    for relative_path in files:
        parent, _, name = relative_path.rpartition("/")
        if parent not in folders:
            folders[parent] = _resolve(relative_path).parent
        if not name.endswith(EXTENSION) or "\0" in name:
            raise ValueError(f"not a worklist file: {relative_path!r}")
        path = folders[parent] / name
        by_folder.setdefault(path.parent, []).append((relative_path, path))
    sizes: dict[str, int] = {}
    for folder, members in by_folder.items():
        with folder_lock(folder):
            pending: list[tuple[str, Path, Path]] = []
            try:
                for relative_path, path in members:
                    data = files[relative_path]
                    tmp = _tmp_name(path)
                    pending.append((relative_path, path, tmp))
                    _write_tmp(tmp, data, fsync=False)
                    sizes[relative_path] = len(data)
                _flush_files(folder, [tmp for _, _, tmp in pending])
                while pending:
                    _relative, path, tmp = pending[0]
                    os.replace(tmp, path)
                    pending.pop(0)
            finally:
                for _relative, _path, tmp in pending:
                    with contextlib.suppress(FileNotFoundError):
                        tmp.unlink()
            _fsync_dir(folder)
    return sizes


def worklist_file_remove(*, relative_path: str) -> bool:
    """Remove WORKLIST_DIR/relative_path; True if a file was there."""
    path = _resolve(relative_path)
    if not path.parent.exists():
        return False
    with folder_lock(path.parent):
        try:
            path.unlink()
        except FileNotFoundError:
            return False
        _fsync_dir(path.parent)
    return True


def worklist_tmp_leftovers() -> list[Path]:
    """Temporary files of writers that died before their rename (a killed worker, a power cut).

    Only meaningful under export_lock: every writer of this system holds it while its temporary file
    exists, and the kernel releases it when the process dies, so any temporary file seen then is dead.
    """
    root = worklist_root()
    if not root.is_dir():
        return []
    folders = [root]
    if worklist_layout() == LAYOUT_WLMSCPFS:
        folders += [Path(entry.path) for entry in os.scandir(root) if entry.is_dir()]
    return [
        Path(entry.path)
        for folder in folders
        for entry in os.scandir(folder)
        if _TMP.match(entry.name) and entry.is_file(follow_symlinks=False)
    ]


def worklist_files_on_disk() -> dict[str, os.stat_result]:
    """Every .wl file a server would read in the current layout: {relative path: stat}.

    Orthanc layout: the .wl files directly in WORKLIST_DIR. wlmscpfs layout: <AE folder>/*.wl.
    Anything else (other extensions, the lockfile, deeper folders) is not ours and is left alone.
    """
    root = worklist_root()
    found: dict[str, os.stat_result] = {}
    if not root.is_dir():
        return found
    if worklist_layout() == LAYOUT_ORTHANC:
        folders = [("", root)]
    else:
        folders = [(entry.name + "/", Path(entry.path)) for entry in os.scandir(root) if entry.is_dir()]
    for prefix, folder in folders:
        for entry in os.scandir(folder):
            if entry.name.endswith(EXTENSION) and entry.is_file(follow_symlinks=False):
                found[prefix + entry.name] = entry.stat(follow_symlinks=False)
    return found
