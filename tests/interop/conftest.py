"""Real worklist servers for the interop tier: DCMTK wlmscpfs and Orthanc with its worklist plugin.

Both are started once per session on free loopback ports, each serving its own temporary folder, and
stopped at the end. A test points WORKLIST_DIR/WORKLIST_LAYOUT at a server's folder (emptied of .wl
files first), books orders through scheduling.services and queries as a modality would.
A missing server binary fails the tier: a skipped interop test proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import time as clock
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from pydicom.dataset import Dataset

from tests.mwl_server.dicom import echo, find_answers, free_port, require
from worklist_export.writer import LOCKFILE

ORTHANC_PLUGIN = "/usr/share/orthanc/plugins/libModalityWorklists.so"
WLMSCPFS_AE = "WORKLIST"
ORTHANC_AE = "ORTHANC"


@dataclass
class Server:
    name: str
    port: int
    called_ae: str
    folder: Path  # what WORKLIST_DIR points to
    layout: str
    process: subprocess.Popen
    log: Path

    def find(self, query: Dataset) -> list[Dataset]:
        """C-FIND in the Modality Worklist model, as a modality does; the pending answers."""
        return find_answers(self.port, query, called=self.called_ae)


def start(name: str, cmd: list[str], port: int, called_ae: str, workdir: Path) -> subprocess.Popen:
    log = workdir / f"{name}.log"
    process = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, cwd=workdir)
    deadline = clock.monotonic() + 20
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"{name} exited with {process.returncode}:\n{log.read_text(errors='replace')}")
        try:
            if echo(port, called=called_ae, timeout=2) == "ok":
                return process
        except (OSError, RuntimeError):
            pass
        clock.sleep(0.1)
    stop(process)
    pytest.fail(f"{name} did not answer C-ECHO on port {port}:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def wlmscpfs_server(tmp_path_factory):
    binary = require("wlmscpfs")
    workdir = tmp_path_factory.mktemp("wlmscpfs")
    folder = workdir / "worklists"
    (folder / WLMSCPFS_AE).mkdir(parents=True)
    (folder / WLMSCPFS_AE / LOCKFILE).touch()
    port = free_port()
    # -csk: keep SpecificCharacterSet in the answers, or non-ASCII names arrive garbled.
    process = start("wlmscpfs", [binary, "-csk", "-dfp", str(folder), str(port)], port, WLMSCPFS_AE, workdir)
    yield Server("wlmscpfs", port, WLMSCPFS_AE, folder, "wlmscpfs", process, workdir / "wlmscpfs.log")
    stop(process)


def orthanc_config(folder: Path, workdir: Path, dicom_port: int, http_port: int) -> dict:
    """The configuration the README shows, with test-only ports and folders."""
    return {
        "Name": "RIS worklist test",
        "StorageDirectory": str(workdir / "storage"),
        "IndexDirectory": str(workdir / "index"),
        "DicomAet": ORTHANC_AE,
        "DicomPort": dicom_port,
        "HttpPort": http_port,
        "RemoteAccessAllowed": False,
        "Plugins": [ORTHANC_PLUGIN],
        "Worklists": {"Enable": True, "Database": str(folder)},
        "DefaultEncoding": "Utf8",
        "DicomAlwaysAllowFindWorklist": True,
    }


@pytest.fixture(scope="session")
def orthanc_server(tmp_path_factory):
    binary = require("Orthanc", "/usr/sbin/Orthanc")
    if not Path(ORTHANC_PLUGIN).is_file():
        pytest.fail(f"The Orthanc worklist plugin is missing: {ORTHANC_PLUGIN}")
    workdir = tmp_path_factory.mktemp("orthanc")
    folder = workdir / "worklists"
    folder.mkdir()
    port, http_port = free_port(), free_port()
    config = workdir / "orthanc.json"
    config.write_text(json.dumps(orthanc_config(folder, workdir, port, http_port), indent=2))
    process = start("orthanc", [binary, str(config)], port, ORTHANC_AE, workdir)
    yield Server("orthanc", port, ORTHANC_AE, folder, "orthanc", process, workdir / "orthanc.log")
    stop(process)


def use_server(srv: Server, settings) -> Server:
    """Point the export at `srv`'s folder, emptied of the files earlier tests left."""
    for leftover in srv.folder.rglob("*.wl"):
        leftover.unlink()
    settings.WORKLIST_DIR = str(srv.folder)
    settings.WORKLIST_LAYOUT = srv.layout
    settings.WORKLIST_CALLED_AE = WLMSCPFS_AE
    return srv


@pytest.fixture(params=["wlmscpfs", "orthanc"])
def server(request, settings) -> Server:
    """Each test runs against both servers; the export writes into that server's folder."""
    return use_server(request.getfixturevalue(f"{request.param}_server"), settings)


@pytest.fixture
def wlmscpfs(wlmscpfs_server, settings) -> Server:
    return use_server(wlmscpfs_server, settings)


@pytest.fixture
def tomorrow() -> date:
    return timezone.localdate() + timedelta(days=1)
