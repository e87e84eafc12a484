"""``manage.py unlock_sign_in <username or address>``: lift a staff sign-in lock."""

from django.core.management.base import BaseCommand

from mcoms.core.audit import acting_as
from mcoms.core.models import AuditEvent
from mcoms.security import limits, signin
from mcoms.security.models import Counter


class Command(BaseCommand):
    help = "Lift the sign-in lock of a username or an address."

    def add_arguments(self, parser):
        parser.add_argument("key", help="a username or an IP address")

    def handle(self, *args, key, **options):
        keys = {signin.username_key(key), key}
        rows = Counter.objects.filter(scope__in=["login-username", "login-address"], key__in=keys)
        count = 0
        with acting_as(label="manage.py unlock_sign_in", channel=AuditEvent.Channel.COMMAND):
            for row in rows:
                limits.unlock(row, note="unlocked from the command line")
                count += 1
        self.stdout.write(f"{key}: {count} lock(s) lifted")
