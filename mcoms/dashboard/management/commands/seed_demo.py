"""``manage.py seed_demo``: load the demo data once; print the demo logins."""

from django.core.management.base import BaseCommand

from mcoms import demo


class Command(BaseCommand):
    help = "Load demo data (two sites, staff of every role, ~50 customers) unless present."

    def handle(self, *args, **options):
        if demo.load():
            self.stdout.write(self.style.SUCCESS("Demo data loaded."))
        else:
            self.stdout.write("Demo data already present; nothing changed.")
        self.stdout.write(f"Demo logins (password for all: {demo.DEMO_PASSWORD}):")
        for login in demo.LOGINS:
            self.stdout.write(f"  {login.username:<12} {login.role:<17} {login.scope}")
