"""/healthz: reachable without login, 200 when database, broker and worklist folder work, 503 otherwise."""

import json

import pytest

pytestmark = pytest.mark.django_db


def test_it_reports_ok_without_login(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "eager", "worklist_dir": "ok"},
    }
    assert "no-cache" in response["Cache-Control"]


def test_it_leaves_no_file_in_the_worklist_folder(client, settings, tmp_path):
    settings.WORKLIST_DIR = str(tmp_path)

    client.get("/healthz")

    assert list(tmp_path.iterdir()) == []


def test_it_answers_503_when_the_worklist_folder_is_missing(client, settings, tmp_path):
    settings.WORKLIST_DIR = str(tmp_path / "not-mounted")

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json()["checks"]["worklist_dir"] == "error"
    assert "not-mounted" not in response.content.decode()


def test_it_answers_503_without_revealing_the_broker_address(client, settings):
    # Port 1 on loopback: nothing listens, the connection is refused at once.
    settings.CELERY_BROKER_URL = "redis://:s3cret@127.0.0.1:1/0"

    response = client.get("/healthz")

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "error"
    assert body["checks"]["broker"] == "error"
    assert body["checks"]["database"] == "ok"
    text = json.dumps(body)
    assert "s3cret" not in text and "127.0.0.1" not in text


def test_it_refuses_post(client):
    assert client.post("/healthz").status_code == 405
