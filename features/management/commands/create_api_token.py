"""`manage.py create_api_token USERNAME [--name NAME]`: print a new API token, once.

Only the token goes to stdout, so a script can capture it: TOKEN=$(manage.py create_api_token me)
"""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand, CommandError

from features.tokens import TokenError, do_create_api_token


class Command(BaseCommand):
    help = "Create an API token for a user and print it (it is shown only this once)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="What the token is for.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"No user {options['username']!r}.")
        try:
            token, secret = do_create_api_token(user, options["name"])
        except TokenError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(secret)
        self.stderr.write(
            f"Token “{token.name}” for {user.get_username()}: copy it now, it is not stored."
        )
