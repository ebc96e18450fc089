"""The built-in server (serve_dicom) against DCMTK's wlmscpfs serving the export's files of the same orders.

serve_dicom runs in a thread of the test process, so it reads the test database; wlmscpfs reads the
folder the export wrote. Both must give the same answers to what modalities ask (findscu -W and
pynetdicom), and MPPS sent to serve_dicom must take the item off every server kind (built-in, wlmscpfs
and Orthanc, which serves the same export's files).
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydicom.dataset import Dataset

from scheduling.models import CharacterSet, OrderStatus
from tests.factories import PatientFactory, RoomFactory, ThaiPatientFactory
from tests.mwl_server.dicom import (
    SERVER_AE,
    echo,
    find,
    findscu,
    mpps_dataset,
    mpps_set_dataset,
    n_create,
    n_set,
    new_uid,
    running_server,
    worklist_query,
)

pytestmark = [pytest.mark.interop, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def builtin(settings):
    """serve_dicom's server on a free loopback port; TESTSCU (the fixtures' calling AE) may call."""
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    with running_server() as port:
        yield port


@pytest.fixture
def orders(wlmscpfs, book, tomorrow_at, tomorrow):
    """A small day: two CT rooms, Latin and Thai names, a Latin-1 room, and an exam the day after."""
    ct2 = RoomFactory(name="CT 2", ae_title="CT02")
    latin1 = RoomFactory(name="CT Latin", ae_title="CTL1", worklist_charset=CharacterSet.LATIN1)
    day_after = tomorrow_at(9) + timedelta(days=1)
    return [
        book(),
        book(patient=ThaiPatientFactory(mrn="HN555555"), start=tomorrow_at(11)),
        book(
            patient=PatientFactory(family_name="Srisuk", given_name="Malee", mrn="HN777777"),
            start=tomorrow_at(14),
        ),
        book(
            patient=PatientFactory(family_name="Jaidee", given_name="Anan"), room=ct2, start=tomorrow_at(10)
        ),
        book(patient=ThaiPatientFactory(mrn="HN666666"), room=latin1, start=tomorrow_at(12, 30)),
        book(patient=PatientFactory(family_name="Wongsa"), start=day_after),
    ]


def summary(answers) -> set[tuple[str, str, str, str]]:
    rows = set()
    for answer in answers:
        sps = answer.ScheduledProcedureStepSequence[0]
        rows.add(
            (
                str(answer.AccessionNumber),
                str(answer.PatientName),
                str(sps.ScheduledProcedureStepStartDate),
                str(sps.ScheduledProcedureStepStartTime),
            )
        )
    return rows


def queries(tomorrow) -> dict[str, Dataset]:
    d1, d2 = f"{tomorrow:%Y%m%d}", f"{tomorrow + timedelta(days=1):%Y%m%d}"
    d0 = f"{tomorrow - timedelta(days=1):%Y%m%d}"
    return {
        "broad": worklist_query(
            {"ScheduledProcedureStepStartDate": d1, "Modality": "CT", "ScheduledStationAETitle": "CT01"}
        ),
        "broad range": worklist_query(
            {
                "ScheduledProcedureStepStartDate": f"{d1}-{d2}",
                "Modality": "CT",
                "ScheduledStationAETitle": "CT01",
            }
        ),
        "all": worklist_query(),
        "station only": worklist_query({"ScheduledStationAETitle": "CT02"}),
        "patient name": worklist_query(PatientName="Jaidee^Somchai*"),
        "patient id": worklist_query(PatientID="HN777777"),
        "wildcard *": worklist_query(PatientName="Jai*"),
        "wildcard ?": worklist_query(PatientName="Sri?uk*"),
        "open date range from": worklist_query({"ScheduledProcedureStepStartDate": f"{d2}-"}),
        "open date range to": worklist_query({"ScheduledProcedureStepStartDate": f"-{d1}"}),
        "closed date range": worklist_query({"ScheduledProcedureStepStartDate": f"{d0}-{d1}"}),
        "time range": worklist_query({"ScheduledProcedureStepStartTime": "0930-1300"}),
        "open time range": worklist_query({"ScheduledProcedureStepStartTime": "1200-"}),
        "date and time": worklist_query(
            {"ScheduledProcedureStepStartDate": d1, "ScheduledProcedureStepStartTime": "-1030"}
        ),
        "thai name": worklist_query(PatientName="ใจ*"),
        "romanised name at a latin-1 station": worklist_query(
            {"ScheduledStationAETitle": "CTL1"}, charset="ISO_IR 100", PatientName="Jaidee*"
        ),
        "no match": worklist_query({"Modality": "MR"}),
    }


def test_pynetdicom_gets_the_same_answers_from_both(builtin, wlmscpfs, orders, tomorrow):
    differences = {}
    for name, ds in queries(tomorrow).items():
        ours, final = find(builtin, ds)
        assert final.Status == 0x0000, f"{name}: serve_dicom ended with 0x{final.Status:04X}"
        theirs = wlmscpfs.find(ds)
        if summary(ours) != summary(theirs):
            differences[name] = {"serve_dicom": summary(ours), "wlmscpfs": summary(theirs)}
    assert differences == {}
    # The queries did select something: not every answer set is empty or everything.
    assert len(summary(find(builtin, queries(tomorrow)["all"])[0])) == len(orders)
    assert len(summary(find(builtin, queries(tomorrow)["broad"])[0])) == 3


def test_findscu_gets_the_same_answers_from_both(builtin, wlmscpfs, orders, tomorrow, tmp_path):
    d1, d2 = f"{tomorrow:%Y%m%d}", f"{tomorrow + timedelta(days=1):%Y%m%d}"
    returned = [
        "PatientName",
        "PatientID",
        "AccessionNumber",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate",
        "ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime",
        "ScheduledProcedureStepSequence[0].Modality",
        "ScheduledProcedureStepSequence[0].ScheduledStationAETitle",
    ]
    cases = {
        "broad": [
            f"ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartDate={d1}-{d2}",
            "ScheduledProcedureStepSequence[0].Modality=CT",
            "ScheduledProcedureStepSequence[0].ScheduledStationAETitle=CT01",
        ],
        "thai": ["PatientName=ใจ*"],
        "wildcard": ["PatientName=*dee^*"],
        "time range": ["ScheduledProcedureStepSequence[0].ScheduledProcedureStepStartTime=1000-1230"],
    }
    for name, keys in cases.items():
        # Matching keys after the return keys: findscu keeps the last value given for a key.
        keys = ["SpecificCharacterSet=ISO_IR 192", *returned, *keys]
        ours = summary(findscu(builtin, SERVER_AE, keys, tmp_path / f"ours-{name}"))
        theirs = summary(findscu(wlmscpfs.port, wlmscpfs.called_ae, keys, tmp_path / f"theirs-{name}"))
        assert ours == theirs, name
        assert ours, f"{name}: nothing matched; the comparison proves nothing"


def test_mpps_takes_the_exam_off_every_kind_of_worklist_server(builtin, server, book, tomorrow):
    """MPPS to serve_dicom; the export's files are served by `server` (wlmscpfs, then Orthanc)."""
    order = book()
    by_accession = worklist_query(AccessionNumber=order.accession_number)
    uid = new_uid()
    assert [a.AccessionNumber for a in server.find(by_accession)] == [order.accession_number]

    assert n_create(builtin, uid, mpps_dataset(order), calling="CT01") == 0x0000
    order.refresh_from_db()
    assert order.status == OrderStatus.IN_PROGRESS
    for answers in (find(builtin, by_accession)[0], server.find(by_accession)):
        [answer] = answers
        assert answer.ScheduledProcedureStepSequence[0].ScheduledProcedureStepStatus == "STARTED"

    assert n_set(builtin, uid, mpps_set_dataset("COMPLETED"), calling="CT01") == 0x0000
    order.refresh_from_db()
    assert order.status == OrderStatus.COMPLETED
    assert find(builtin, by_accession)[0] == []
    assert server.find(by_accession) == []
    assert not list(server.folder.rglob(f"{order.accession_number}.wl"))


def test_a_discontinued_exam_comes_back_on_every_kind_of_worklist_server(builtin, server, book):
    order = book()
    uid = new_uid()
    assert n_create(builtin, uid, mpps_dataset(order), calling="CT01") == 0x0000
    assert n_set(builtin, uid, mpps_set_dataset("DISCONTINUED", "Patient refused"), calling="CT01") == 0x0000
    order.refresh_from_db()
    assert (order.status, order.discontinue_reason) == (OrderStatus.ARRIVED, "Patient refused")
    by_accession = worklist_query(AccessionNumber=order.accession_number)
    assert len(find(builtin, by_accession)[0]) == len(server.find(by_accession)) == 1


@pytest.mark.parametrize(
    "keys",
    [
        {"SpecificCharacterSet": "ISO_IR 999"},
        {"PatientBirthDate": "1980-05-17"},
        {"PatientBirthDate": "19800517-19800516-1"},
    ],
)
def test_malformed_queries_get_failure_statuses(builtin, book, keys):
    book()
    ds = worklist_query()
    for keyword, value in keys.items():
        setattr(ds, keyword, value)
    answers, final = find(builtin, ds)
    assert answers == []
    assert final.Status == 0xA900


def test_malformed_mpps_gets_failure_statuses(builtin, book):
    order = book()
    assert n_set(builtin, new_uid(), mpps_set_dataset("COMPLETED")) == 0x0112
    assert n_create(builtin, new_uid(), mpps_dataset(order, status="DISCONTINUED")) == 0x0106
    assert n_create(builtin, new_uid(), mpps_dataset(None, StudyInstanceUID="2.25.1")) == 0x0110
    order.refresh_from_db()
    assert order.status == OrderStatus.SCHEDULED
    assert echo(builtin) == "ok"


def test_an_unknown_modality_is_refused_like_a_wrong_called_ae(builtin):
    assert echo(builtin, calling="STRANGER") == "rejected"
    assert echo(builtin, called="WORKLIST") == "rejected"
