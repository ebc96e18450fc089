"""A no-show is not on the worklist the DICOM server answers: a modality asking over the network, after
the exam's time, gets the other exams of the day and not it."""

import pytest
import time_machine

from scheduling import services
from tests.factories import PatientFactory
from tests.mwl_server.dicom import find_answers, running_server, worklist_query


@pytest.mark.django_db(transaction=True)
def test_a_modality_is_not_answered_a_no_show(settings, book, user, tomorrow_at):
    settings.DICOM_SERVER_KNOWN_CALLERS = ["TESTSCU"]
    settings.DICOM_SERVER_ALLOW_ANY_CALLER = False
    missed = book()
    later = book(patient=PatientFactory(), start=tomorrow_at(13))

    with time_machine.travel(tomorrow_at(10), tick=False):
        services.order_no_show(order=missed, user=user)
        with running_server() as port:
            answers = find_answers(port, worklist_query())

    assert [a.AccessionNumber for a in answers] == [later.accession_number]
