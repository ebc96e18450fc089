"""The national ID and passport items (OtherPatientIDsSequence) as the real worklist servers serve them.

Neither server drops an item for holding the sequence. Orthanc returns it when asked for; DCMTK's
wlmscpfs (3.6.7) does not support it as a return key: it answers "unsupported optional keys" (FF01)
and leaves it out, so a modality behind wlmscpfs sees the MRN only.
"""

import pytest
from pydicom.dataset import Dataset

from tests.factories import ThaiPatientFactory
from tests.mwl_server.dicom import worklist_query

pytestmark = pytest.mark.interop


def other_ids_query() -> Dataset:
    item = Dataset()
    item.PatientID = ""
    item.IssuerOfPatientID = ""
    item.TypeOfPatientID = ""
    return worklist_query(PatientID="HN555777", OtherPatientIDsSequence=[item])


def test_an_item_with_other_ids_is_served(server, book):
    order = book(
        patient=ThaiPatientFactory(
            mrn="HN555777", national_id="1101700203450", passport_country="MMR", passport_number="MA123456"
        )
    )

    [answer] = server.find(other_ids_query())

    assert answer.AccessionNumber == order.accession_number
    if server.name == "orthanc":
        ids = [(i.PatientID, i.IssuerOfPatientID, i.TypeOfPatientID) for i in answer.OtherPatientIDsSequence]
        assert ids == [("1101700203450", "THA", "TEXT"), ("MA123456", "MMR", "TEXT")]
    else:
        assert "OtherPatientIDsSequence" not in answer or not answer.OtherPatientIDsSequence
