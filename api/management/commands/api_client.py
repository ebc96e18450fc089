"""Create an API client, or issue a new token for one, from the command line (the admin does the same).

    manage.py api_client "Clinic portal" --scopes read,book,workflow [--allow 10.1.0.0/16] [--rate 600/min]
    manage.py api_client "Clinic portal" --new-token

The token is printed once, on stdout, and stored only as its digest.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from api.models import ApiClient
from api.services import api_client_create, api_client_new_token


class Command(BaseCommand):
    help = "Create an API client and print its token, or print a new token for an existing client."

    def add_arguments(self, parser) -> None:
        parser.add_argument("name")
        parser.add_argument("--scopes", default="read", help="comma-separated: read, book, workflow, admin")
        parser.add_argument(
            "--allow", default="", help="addresses or networks it may call from, comma-separated"
        )
        parser.add_argument(
            "--rate", default="", help="its rate limit, like 600/min (default: API_CLIENT_RATE)"
        )
        parser.add_argument(
            "--new-token", action="store_true", help="replace the token of an existing client"
        )

    def handle(
        self, *args, name: str, scopes: str, allow: str, rate: str, new_token: bool, **options
    ) -> None:
        if new_token:
            client = ApiClient.objects.filter(name=name).first()
            if client is None:
                raise CommandError(f"No API client is named {name!r}.")
            self.stdout.write(api_client_new_token(client=client))
            return
        try:
            _client, token = api_client_create(
                name=name,
                scopes=[s.strip() for s in scopes.split(",") if s.strip()],
                allowed_addresses="\n".join(a.strip() for a in allow.split(",") if a.strip()),
                rate_limit=rate,
            )
        except ValidationError as exc:
            problems = "; ".join(f"{field}: {' '.join(msgs)}" for field, msgs in exc.message_dict.items())
            raise CommandError(problems) from exc
        self.stdout.write(token)
