"""docker-compose.yml, the Dockerfile and .env.example agree with each other and with ris/settings.py.

No Docker here: the files are parsed and cross-checked, which catches the usual drift (a renamed variable,
a service that lost the worklist volume, a setting nobody documented).
"""

import json
import re
from pathlib import Path

import pytest
import yaml

BASE_DIR = Path(__file__).resolve().parents[2]
APP_SERVICES = ("web", "worker", "beat", "dicom")
# Variables compose itself interpolates that are not Django settings: the postgres service's password.
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((BASE_DIR / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def settings_variables() -> set[str]:
    """Every environment variable ris/settings.py reads: env("X"), env.bool("X", ...), ..."""
    source = (BASE_DIR / "ris" / "settings.py").read_text()
    return set(re.findall(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""", source))


def mounts(service: dict) -> dict[str, str]:
    """{target: "source[:mode]"} of a service's short-syntax volumes."""
    result = {}
    for volume in service.get("volumes", []):
        source, target, *mode = volume.split(":")
        result[target] = ":".join([source, *mode])
    return result


def test_settings_reads_the_variables_this_test_relies_on():
    assert {"DJANGO_SECRET_KEY", "DATABASE_URL", "CELERY_BROKER_URL", "WORKLIST_DIR"} <= settings_variables()


def test_it_has_the_services_of_the_stack(services):
    assert {"web", "worker", "beat", "redis", "postgres", "orthanc", "dicom", "wlmscpfs"} <= set(services)
    assert services["wlmscpfs"]["profiles"] == ["wlmscpfs"]
    assert "wlmscpfs -dfp /worklists -csk 11112" in services["wlmscpfs"]["command"]


def test_app_services_run_gunicorn_with_migrations_celery_worker_and_beat(services):
    web = services["web"]["command"]
    assert web.index("manage.py migrate") < web.index("gunicorn ris.wsgi")
    assert services["worker"]["command"].startswith("celery -A ris worker")
    assert services["beat"]["command"].startswith("celery -A ris beat")
    assert "deploy" not in services["beat"] and "replicas" not in str(services["beat"])


def test_the_built_in_dicom_server_runs_serve_dicom_from_the_app_image(services):
    dicom = services["dicom"]

    assert dicom["command"] == "python manage.py serve_dicom"
    assert dicom["image"] == services["web"]["image"]
    assert "profiles" not in dicom
    assert dicom["ports"] == ["11112:11112"]
    # It answers from the database; an MPPS COMPLETED changes the order, whose file the export removes.
    assert dicom["environment"]["DATABASE_URL"] == services["web"]["environment"]["DATABASE_URL"]
    assert mounts(dicom)["/worklists"] == "worklists"


def test_no_two_services_publish_the_same_host_port(services):
    published = [port.rsplit(":", 1)[0] for service in services.values() for port in service.get("ports", [])]

    assert len(published) == len(set(published)), published


def test_the_query_page_reaches_the_worklist_servers_by_service_name(services):
    environment = services["web"]["environment"]
    for target, service in (("BUILTIN", "dicom"), ("ORTHANC", "orthanc"), ("WLMSCPFS", "wlmscpfs")):
        assert environment[f"MWL_QUERY_{target}_HOST"] == service
    # Inside the compose network wlmscpfs listens on its container port, not the host's 11113.
    assert services["wlmscpfs"]["command"].endswith(f" {environment['MWL_QUERY_WLMSCPFS_PORT']}")


def test_the_readme_gives_the_host_ports_compose_publishes(services):
    readme = (BASE_DIR / "README.md").read_text()
    deployment = readme[readme.index("## Deployment") :]
    [wlmscpfs] = services["wlmscpfs"]["ports"]
    [dicom] = services["dicom"]["ports"]

    assert f"`wlmscpfs` on host port {wlmscpfs.split(':')[0]}" in deployment
    assert f"serve_dicom`) on DICOM port {dicom.split(':')[0]}" in deployment
    assert "manage.py serve_dicom" in deployment[deployment.index("### Without Docker") :]


def test_files_the_deployment_files_refer_to_exist():
    for name in ("docker-compose.yml", "Dockerfile"):
        text = (BASE_DIR / name).read_text()
        for path in re.findall(r"[\w./-]+\.(?:md|json|txt)\b", text):
            assert (BASE_DIR / path.removeprefix("./")).exists(), f"{name} refers to {path}"


def test_worklist_volume_is_shared_by_the_writers_and_the_worklist_servers(compose, services):
    assert "worklists" in compose["volumes"]
    for name in ("web", "worker"):
        assert mounts(services[name])["/worklists"] == "worklists"
        assert services[name]["environment"]["WORKLIST_DIR"] == "/worklists"
    assert mounts(services["orthanc"])["/worklists"] == "worklists:ro"
    assert mounts(services["wlmscpfs"])["/worklists"] == "worklists"


def test_web_believes_the_proxy_header_only_where_nothing_but_the_proxy_reaches_it(services):
    # RIS_PROXY_COUNT defaults to 0 (X-Forwarded-For ignored): compose sets it for the proxy it documents,
    # and that is only safe while web's port is published on the loopback interface alone.
    assert services["web"]["environment"]["RIS_PROXY_COUNT"] == "1"
    assert all(port.startswith("127.0.0.1:") for port in services["web"]["ports"])


def test_postgres_keeps_its_data_in_a_named_volume(compose, services):
    assert mounts(services["postgres"])["/var/lib/postgresql/data"] == "postgres-data"
    assert "postgres-data" in compose["volumes"]


def test_app_services_read_only_variables_that_settings_reads(services):
    known = settings_variables()
    for name in APP_SERVICES:
        assert set(services[name]["environment"]) <= known, name


def test_every_interpolated_variable_is_a_setting_or_documented(services):
    text = (BASE_DIR / "docker-compose.yml").read_text()
    interpolated = set(re.findall(r"\$\{([A-Z][A-Z0-9_]*)", text))
    # The web health check reads the allowed hosts from the container environment.
    referenced = interpolated | set(re.findall(r"os\.environ\['([A-Z][A-Z0-9_]*)'\]", text))

    assert referenced - COMPOSE_ONLY <= settings_variables()
    assert "POSTGRES_PASSWORD" in services["postgres"]["environment"]["POSTGRES_PASSWORD"]


def test_env_example_documents_every_variable_settings_reads():
    example = (BASE_DIR / ".env.example").read_text()
    documented = set(re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, re.MULTILINE))

    assert settings_variables() | COMPOSE_ONLY <= documented
    assert documented <= settings_variables() | COMPOSE_ONLY, "documents a variable nothing reads"


def test_env_is_never_committed_or_baked_into_the_image():
    assert ".env" in (BASE_DIR / ".gitignore").read_text().split()
    assert ".env" in (BASE_DIR / ".dockerignore").read_text().split()


def test_dockerfile_builds_a_gunicorn_image_run_by_an_unprivileged_user():
    dockerfile = (BASE_DIR / "Dockerfile").read_text()

    assert dockerfile.startswith("#") and "FROM python:3.11-slim" in dockerfile
    assert "pip install -r requirements.txt" in dockerfile
    assert "requirements-dev" not in dockerfile
    assert "collectstatic --noinput" in dockerfile
    assert re.search(r"^USER ris$", dockerfile, re.MULTILINE)
    cmd = re.search(r"^CMD (.+)$", dockerfile, re.MULTILINE).group(1)
    assert json.loads(cmd)[:2] == ["gunicorn", "ris.wsgi"]


def test_orthanc_serves_the_shared_folder_as_utf8_worklists(services):
    config = json.loads((BASE_DIR / "deploy" / "orthanc" / "orthanc.json").read_text())

    assert config["Worklists"] == {"Enable": True, "Database": "/worklists", "FilterIssuerAet": False}
    assert config["DefaultEncoding"] == "Utf8"
    assert config["DicomAlwaysAllowFindWorklist"] is True
    assert mounts(services["orthanc"])["/etc/orthanc/orthanc.json"] == "./deploy/orthanc/orthanc.json:ro"


def requirement_names(path: Path) -> set[str]:
    lines = path.read_text().splitlines()
    return {
        re.split(r"[=<>~ ]", line)[0].lower() for line in lines if line and not line.startswith(("#", "-"))
    }


def test_the_image_installs_no_test_tools():
    runtime = requirement_names(BASE_DIR / "requirements.txt")
    dev = BASE_DIR / "requirements-dev.txt"

    assert dev.read_text().splitlines().count("-r requirements.txt") == 1
    assert runtime.isdisjoint(requirement_names(dev))
    for tool in (
        "pytest",
        "pytest-django",
        "playwright",
        "hypothesis",
        "factory_boy",
        "ruff",
        "time-machine",
    ):
        assert tool in requirement_names(dev)
        assert tool not in runtime
    assert {"django", "gunicorn", "celery", "pydicom", "pynetdicom", "psycopg"} <= runtime


def test_make_install_reinstalls_when_either_requirements_file_changes():
    makefile = (BASE_DIR / "Makefile").read_text()
    rule = re.search(r"^\$\(BIN\)/activate:(.*)$", makefile, re.MULTILINE).group(1).split()

    assert {"requirements.txt", "requirements-dev.txt"} <= set(rule)
    assert "pip install --quiet -r requirements-dev.txt" in makefile
