"""serve_hl7 is started where the other servers are: `make run` and docker compose."""

from pathlib import Path

import yaml

BASE_DIR = Path(__file__).resolve().parents[2]


def test_compose_runs_serve_hl7_from_the_app_image_on_port_2575():
    services = yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())["services"]
    hl7 = services["hl7"]
    assert hl7["command"] == "python manage.py serve_hl7"
    assert hl7["image"] == services["web"]["image"]
    assert hl7["ports"] == ["2575:2575"]
    assert hl7["environment"]["DATABASE_URL"] == services["web"]["environment"]["DATABASE_URL"]
    assert "/worklists" in " ".join(hl7["volumes"])


def test_make_run_starts_the_listener_and_the_outbox_beside_runserver():
    makefile = (BASE_DIR / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") : makefile.index("\ntest-peers:")]
    assert "manage.py serve_hl7 --stop-with-parent --bind $(HOST) &" in run
    assert "manage.py hl7_outbox --every 10 --stop-with-parent &" in run
    assert "HL7 listener (MLLP)" in run
