"""/healthz against the real services: PostgreSQL and Redis both answer."""

import pytest

pytestmark = [pytest.mark.realstack, pytest.mark.django_db(transaction=True)]


def test_it_reports_the_real_database_and_broker(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json()["checks"] == {"database": "ok", "broker": "ok", "worklist_dir": "ok"}
