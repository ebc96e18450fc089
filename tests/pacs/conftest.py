"""A real Orthanc for the PACS link's tests, and real DICOM images sent to it with dcmtk's storescu.

Each test that asks for `orthanc` gets its own Orthanc (Debian's /usr/sbin/Orthanc) on free ports, with
its storage in the test's tmp folder, StableAge 1 and HTTP basic authentication (a RegisteredUsers
user, as production runs it); the settings point ORTHANC_URL at it. `orthanc.restart()` stops it and
starts it again on the same storage, `orthanc.stop()` leaves it down.

Images are copies of pydicom's test files (CT_small.dcm 128x128 CT, MR_small.dcm 64x64 MR) with the
AccessionNumber, StudyInstanceUID, SeriesInstanceUID and SOPInstanceUID a test gives them
(`dicom_image`). A missing Orthanc or storescu fails the tests (tests/interop's `require`): a skipped
PACS test proves nothing.
"""

from __future__ import annotations

import json
import subprocess
import time as clock
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy
import pydicom
import pytest
import requests
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

from pacs_link.follow import follow_once
from pacs_link.orthanc import Orthanc
from tests.mwl_server.dicom import free_port, require

ORTHANC_AE = "ORTHANC"
ORTHANC_USER = "ris"
ORTHANC_PASSWORD = "test-secret"
STABLE_AGE = 1  # seconds without a new instance before Orthanc calls a study stable
SAMPLES = {"CT": "CT_small.dcm", "MR": "MR_small.dcm"}


@dataclass
class OrthancServer:
    binary: str
    workdir: Path
    http_port: int
    dicom_port: int
    process: subprocess.Popen | None = None
    stable_age: int = STABLE_AGE
    starts: int = field(default=0)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def log(self) -> Path:
        return self.workdir / "orthanc.log"

    def config(self) -> dict:
        return {
            "Name": "RIS PACS test",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "index"),
            "DicomAet": ORTHANC_AE,
            "DicomPort": self.dicom_port,
            "HttpPort": self.http_port,
            "StableAge": self.stable_age,
            # The RIS reaches it over HTTP with a user, as in production (not Orthanc's localhost
            # exemption): RemoteAccessAllowed with AuthenticationEnabled.
            "RemoteAccessAllowed": True,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {ORTHANC_USER: ORTHANC_PASSWORD},
            "DicomAlwaysAllowStore": True,
            "DicomCheckCalledAet": False,
            "HttpTimeout": 10,
        }

    def client(self) -> Orthanc:
        return Orthanc(self.url, username=ORTHANC_USER, password=ORTHANC_PASSWORD, timeout=5)

    def start(self) -> None:
        config = self.workdir / "orthanc.json"
        config.write_text(json.dumps(self.config(), indent=2))
        self.starts += 1
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, str(config)], stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir
            )
        deadline = clock.monotonic() + 30
        while clock.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(
                    f"Orthanc exited with {self.process.returncode}:\n{self.log.read_text(errors='replace')}"
                )
            try:
                answer = requests.get(f"{self.url}/system", auth=(ORTHANC_USER, ORTHANC_PASSWORD), timeout=2)
                if answer.status_code == 200:
                    return
            except requests.RequestException:
                pass
            clock.sleep(0.1)
        self.stop()
        pytest.fail(f"Orthanc did not answer on {self.url}:\n{self.log.read_text(errors='replace')}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def discard(self) -> None:
        """Kill it at the end of the test: nothing reads its storage afterwards, and a graceful stop
        (what `stop` and `restart` do, as a test's own restart must) takes Orthanc about 3.5 s."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart(self) -> None:
        """Stop and start again on the same storage (same database, same change feed)."""
        self.stop()
        self.start()

    def store(self, *files: Path) -> None:
        """Send `files` by C-STORE with dcmtk's storescu, as a modality does; returns once stored."""
        storescu = require("storescu")
        result = subprocess.run(
            [
                storescu,
                "-aec",
                ORTHANC_AE,
                "-aet",
                "CT01",
                "127.0.0.1",
                str(self.dicom_port),
                *map(str, files),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
        if result.returncode != 0:
            pytest.fail(f"storescu failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")


@pytest.fixture
def orthanc(tmp_path, settings) -> OrthancServer:
    """A running Orthanc of this test; ORTHANC_URL and credentials point at it."""
    binary = require("Orthanc", "/usr/sbin/Orthanc")
    require("storescu")
    workdir = tmp_path / "orthanc"
    workdir.mkdir()
    server = OrthancServer(binary=binary, workdir=workdir, http_port=free_port(), dicom_port=free_port())
    server.start()
    settings.ORTHANC_URL = server.url
    settings.ORTHANC_USERNAME = ORTHANC_USER
    settings.ORTHANC_PASSWORD = ORTHANC_PASSWORD
    settings.ORTHANC_TIMEOUT = 5
    yield server
    server.discard()


@pytest.fixture
def dicom_image(tmp_path) -> Callable[..., Path]:
    """dicom_image(kind="CT", accession=..., study_uid=..., series_uid=..., sop_uid=..., number=1) -> a
    copy of pydicom's CT_small.dcm or MR_small.dcm with those identifiers (new UIDs when not given);
    frames=N makes it a multi-frame image whose frame k is the picture rolled k * shift rows down."""
    folder = tmp_path / "images"
    folder.mkdir()

    def make(
        kind: str = "CT",
        *,
        accession: str = "",
        study_uid: str | None = None,
        series_uid: str | None = None,
        sop_uid: str | None = None,
        number: int = 1,
        patient_id: str = "HN0001",
        frames: int = 1,
        shift: int = 0,
    ) -> Path:
        ds = pydicom.dcmread(get_testdata_file(SAMPLES[kind]))
        if frames > 1:
            pixels = ds.pixel_array
            ds.NumberOfFrames = frames
            rolled = [numpy.roll(pixels, shift * k, axis=0) for k in range(frames)]
            ds.PixelData = numpy.stack(rolled).astype(pixels.dtype).tobytes()
        ds.AccessionNumber = accession
        ds.StudyInstanceUID = study_uid or generate_uid()
        ds.SeriesInstanceUID = series_uid or generate_uid()
        ds.SOPInstanceUID = sop_uid or generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.InstanceNumber = number
        ds.PatientID = patient_id
        path = folder / f"{ds.SOPInstanceUID}.dcm"
        ds.save_as(path)
        return path

    return make


def recorded_series(orthanc: Orthanc, series_uid: str):
    """The Series the follower records for `series_uid` once its study is stable, with `by_number`:
    the Orthanc id of each of its instances by InstanceNumber."""
    from pacs_link.models import Series

    with orthanc.client() as pacs:
        # Until it is stable and recorded with its series (an arriving study is recorded without them).
        follow_until(lambda: Series.objects.filter(series_instance_uid=series_uid).exists(), orthanc=pacs)
    series = Series.objects.get(series_instance_uid=series_uid)
    with orthanc.client() as pacs:
        series.by_number = {
            int(item["MainDicomTags"]["InstanceNumber"]): item["ID"]
            for item in pacs.series_instances(series.orthanc_id)
        }
    return series


def follow_until(done: Callable[[], bool], *, orthanc: Orthanc | None = None, timeout: float = 20) -> int:
    """Run the follower until `done()` holds (a study became stable and was applied); the studies applied.

    Polls every 0.2 s rather than sleeping for StableAge: the test goes on as soon as Orthanc has
    reported the study stable and the follower applied it.
    """
    deadline = clock.monotonic() + timeout
    applied = 0
    while True:
        applied += follow_once(orthanc)
        if done():
            return applied
        if clock.monotonic() > deadline:
            pytest.fail(f"not done within {timeout} s of following the PACS ({applied} studies applied)")
        clock.sleep(0.2)


def wait_until(done: Callable[[], bool], *, timeout: float = 20) -> None:
    """Poll `done()` every 0.1 s until it holds (the PACS reached a state), failing after `timeout`."""
    deadline = clock.monotonic() + timeout
    while not done():
        if clock.monotonic() > deadline:
            pytest.fail(f"not done within {timeout} s")
        clock.sleep(0.1)
