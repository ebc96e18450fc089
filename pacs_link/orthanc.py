"""Orthanc's REST API, as the PACS link reads it: the /changes feed, studies, series and instance files.

One requests.Session per client (keep-alive, basic auth from ORTHANC_USERNAME/ORTHANC_PASSWORD), with
ORTHANC_TIMEOUT on every call. Any failure to talk to Orthanc (refused, timed out, an HTTP error, a body
that is not JSON) is raised as PacsUnavailable with a sentence a person can act on; callers keep their
cursor and try again later.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from django.conf import settings
from django.utils.translation import gettext as _


class PacsUnavailable(Exception):
    """Orthanc did not answer as expected; the message says what happened, for the log and the page."""


class PacsNotFound(PacsUnavailable):
    """Orthanc answered 404: the resource was deleted from the PACS (or never was there)."""


@dataclass(frozen=True)
class Change:
    """One entry of Orthanc's /changes feed."""

    seq: int
    kind: str  # ChangeType: "StableStudy", "NewInstance", ...
    resource_type: str  # "Study", "Series", "Instance", "Patient"
    orthanc_id: str  # the resource's Orthanc ID ("ID" in the feed)
    date: str = ""  # when the change happened, "YYYYMMDDTHHMMSS" in UTC (Orthanc writes UTC)


@dataclass(frozen=True)
class ChangePage:
    changes: list[Change]
    last: int  # the feed's "Last": the seq to ask `since` next
    done: bool  # no more changes after `last` for now


class Orthanc:
    def __init__(self, url: str, *, username: str = "", password: str = "", timeout: float = 10) -> None:
        if not url:
            raise PacsUnavailable(_("No PACS is configured (ORTHANC_URL is empty)."))
        self.url = url.rstrip("/")
        self.timeout = timeout
        self.session = requests.Session()
        if username:
            self.session.auth = (username, password)

    @classmethod
    def from_settings(cls) -> Orthanc:
        return cls(
            settings.ORTHANC_URL,
            username=settings.ORTHANC_USERNAME,
            password=settings.ORTHANC_PASSWORD,
            timeout=settings.ORTHANC_TIMEOUT,
        )

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> Orthanc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- transport ------------------------------------------------------------------------------------

    def _get(self, path: str, **params: Any) -> requests.Response:
        address = f"{self.url}{path}"
        try:
            response = self.session.get(address, params=params or None, timeout=self.timeout)
        except requests.RequestException as exc:
            raise PacsUnavailable(
                _("The PACS at %(url)s did not answer: %(error)s") % {"url": self.url, "error": exc}
            ) from exc
        if response.status_code == 404:
            raise PacsNotFound(_("The PACS has no %(path)s.") % {"path": path})
        if response.status_code in (401, 403):
            raise PacsUnavailable(
                _(
                    "The PACS at %(url)s refused our credentials (HTTP %(status)d): check ORTHANC_USERNAME and ORTHANC_PASSWORD."
                )
                % {"url": self.url, "status": response.status_code}
            )
        if response.status_code >= 400:
            raise PacsUnavailable(
                _("The PACS answered %(path)s with HTTP %(status)d.")
                % {"path": path, "status": response.status_code}
            )
        return response

    def get_json(self, path: str, **params: Any) -> Any:
        response = self._get(path, **params)
        try:
            return response.json()
        except ValueError as exc:
            raise PacsUnavailable(
                _("The PACS answered %(path)s with something that is not JSON.") % {"path": path}
            ) from exc

    # --- what the PACS link reads -----------------------------------------------------------------------

    def changes(self, since: int, limit: int = 100) -> ChangePage:
        """The changes after `since` (at most `limit`), oldest first."""
        body = self.get_json("/changes", since=since, limit=limit)
        changes = [
            Change(
                seq=int(item["Seq"]),
                kind=str(item["ChangeType"]),
                resource_type=str(item.get("ResourceType", "")),
                orthanc_id=str(item.get("ID", "")),
                date=str(item.get("Date", "")),
            )
            for item in body.get("Changes", [])
        ]
        return ChangePage(
            changes=changes, last=int(body.get("Last", since)), done=bool(body.get("Done", True))
        )

    def last_change(self) -> int:
        """The seq of the newest change the PACS has (its feed's Last)."""
        return int(self.get_json("/changes", last="").get("Last", 0))

    def study(self, orthanc_id: str) -> dict:
        """/studies/{id}: MainDicomTags, PatientMainDicomTags, Series (their ids), LastUpdate, IsStable."""
        return self.get_json(f"/studies/{orthanc_id}")

    def study_series(self, orthanc_id: str) -> list[dict]:
        """/studies/{id}/series: each series with its MainDicomTags and Instances (their ids)."""
        return self.get_json(f"/studies/{orthanc_id}/series")

    def series_instances(self, orthanc_id: str) -> list[dict]:
        """/series/{id}/instances: each instance with its MainDicomTags (InstanceNumber...)."""
        return self.get_json(f"/series/{orthanc_id}/instances")

    def instance_file(self, orthanc_id: str) -> bytes:
        """The instance's DICOM Part 10 file, as stored."""
        return self._get(f"/instances/{orthanc_id}/file").content

    def instance_metadata(self, orthanc_id: str, name: str) -> str:
        """One metadata item of an instance (e.g. "ReceptionDate", "RemoteAET")."""
        return self._get(f"/instances/{orthanc_id}/metadata/{name}").text

    def find_studies(self, **tags: str) -> list[str]:
        """Orthanc ids of the studies whose main tags match `tags` exactly (POST /tools/find)."""
        address = f"{self.url}/tools/find"
        try:
            response = self.session.post(
                address, json={"Level": "Study", "Query": tags}, timeout=self.timeout
            )
            response.raise_for_status()
            return list(response.json())
        except (requests.RequestException, ValueError) as exc:
            raise PacsUnavailable(
                _("The PACS at %(url)s did not answer a study search: %(error)s")
                % {"url": self.url, "error": exc}
            ) from exc


def client() -> Orthanc:
    """A client for the configured PACS (raises PacsUnavailable when none is configured)."""
    return Orthanc.from_settings()
