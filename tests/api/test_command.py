"""manage.py api_client: create a client and print its token once; refuse bad input on stderr."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from api.models import ApiClient

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command("api_client", *args, stdout=out)
    return out.getvalue().strip()


def test_it_creates_a_client_and_prints_a_working_token(client):
    token = run(
        "Clinic portal", "--scopes", "read,book", "--allow", "127.0.0.1,10.0.0.0/8", "--rate", "60/min"
    )
    record = ApiClient.objects.get(name="Clinic portal")
    assert record.token_matches(token)
    assert record.scopes == ["read", "book"]
    assert record.address_allowed("10.2.3.4") and not record.address_allowed("192.168.1.1")
    answer = client.get("/api/v1/procedures", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert answer.status_code == 200


def test_a_new_token_replaces_the_old_one():
    old = run("HIS gateway")
    new = run("HIS gateway", "--new-token")
    record = ApiClient.objects.get(name="HIS gateway")
    assert record.token_matches(new) and not record.token_matches(old)


@pytest.mark.parametrize(
    "args, message",
    [
        (["X", "--scopes", "read,everything"], "Unknown scope everything"),
        (["X", "--allow", "not-a-network"], "is not an address or network"),
        (["X", "--rate", "lots"], "Write a rate like 600/min"),
        (["Nobody", "--new-token"], "No API client is named"),
    ],
)
def test_bad_input_is_refused_with_a_message(args, message):
    with pytest.raises(CommandError, match=message):
        run(*args)
    assert not ApiClient.objects.filter(name="X").exists()


def test_a_taken_name_is_refused():
    run("Clinic portal")
    with pytest.raises(CommandError, match="name"):
        run("Clinic portal")
