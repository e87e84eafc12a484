"""``manage.py edge_gateway create|rotate|revoke``: gateways and their tokens, no web needed.

``create`` and ``rotate`` print the new token on their last line, once.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from mcoms.core.audit import acting_as
from mcoms.core.models import Site
from metering import services, tokens
from metering.models import Gateway


class Command(BaseCommand):
    help = "Register a gateway (one Pi on one bus) and manage its token."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="action", required=True)
        create = sub.add_parser("create", help="register a gateway and print its token")
        create.add_argument("--site", required=True, help="site code or name")
        create.add_argument("--name", required=True, help="gateway name, e.g. kla-block-a")
        create.add_argument("--description", default="")
        rotate = sub.add_parser("rotate", help="new token; the old one works for a grace period")
        rotate.add_argument("--name", required=True)
        revoke = sub.add_parser("revoke", help="end every token of a gateway at once")
        revoke.add_argument("--name", required=True)

    def handle(self, *args, action, **options):
        with acting_as(label="edge_gateway command", channel="command"):
            if action == "create":
                token = self._create(options)
            else:
                gateway = Gateway.objects.filter(name=options["name"]).first()
                if gateway is None:
                    raise CommandError(f"No gateway named {options['name']!r}.")
                if action == "revoke":
                    count = tokens.token_revoke(gateway=gateway)
                    self.stdout.write(f"Revoked {count} token(s) of {gateway.name}.")
                    return
                token = tokens.token_rotate(gateway=gateway)
                self.stdout.write(f"Rotated: old tokens of {gateway.name} work for 7 more days.")
        self.stdout.write("The token (shown once; put it in /etc/mcoms-edge/token on the Pi):")
        self.stdout.write(token)

    def _create(self, options) -> str:
        site = (
            Site.objects.filter(code=options["site"]).first()
            or Site.objects.filter(name=options["site"]).first()
        )
        if site is None:
            raise CommandError(f"No site with code or name {options['site']!r}.")
        try:
            gateway = services.gateway_create(
                site=site, name=options["name"], description=options["description"]
            )
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from exc
        self.stdout.write(f"Registered gateway {gateway.name} on {site.name}.")
        return tokens.token_issue(gateway=gateway)
