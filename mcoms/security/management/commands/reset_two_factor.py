"""``manage.py reset_two_factor <username>``: when the only admin has lost their phone."""

from django.core.management.base import BaseCommand, CommandError

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent, User
from mcoms.security import twofactor


class Command(BaseCommand):
    help = "Remove a person's authenticator and recovery codes; they enrol again at sign-in."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}")
        with acting_as(label="manage.py reset_two_factor", channel=AuditEvent.Channel.COMMAND):
            done = twofactor.reset(
                user, note="two-factor authenticator reset from the command line"
            )
        self.stdout.write(f"{username}: {'reset' if done else 'had no authenticator'}")
