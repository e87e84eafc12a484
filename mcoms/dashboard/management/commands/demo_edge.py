"""``manage.py demo_edge --port PORT``: prepare the simulated edge agent of the demo.

Gives the demo gateway a fresh token (rotating the previous one), writes the
agent's configuration under ``var/edge/`` pointing at this platform and at the
simulated bus, and prints the simulator's ``--meters`` list on its last line.
``scripts/run.py`` calls it on every ``make run``.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from mcoms import demo
from mcoms.core.audit import acting_as
from metering import edge, partitions, tokens
from metering.models import Gateway


class Command(BaseCommand):
    help = "Write the demo edge agent's config and token; print the simulated meters."

    def add_arguments(self, parser):
        parser.add_argument("--port", type=int, default=8000, help="the platform's port")
        parser.add_argument(
            "--bus", default="socket://127.0.0.1:5020", help="where the simulated bus listens"
        )

    def handle(self, *args, port: int, bus: str, **options):
        gateway = Gateway.objects.filter(name=demo.DEMO_GATEWAY).first()
        if gateway is None:
            raise CommandError("No demo gateway: run `manage.py seed_demo` first.")
        folder = Path(settings.VAR_DIR) / "edge"
        (folder / "state").mkdir(parents=True, exist_ok=True)
        with acting_as(label="make run", channel="command"):
            partitions.ensure_ahead()
            if gateway.tokens.filter(revoked_at__isnull=True).exists():
                token = tokens.token_rotate(gateway=gateway)
            else:
                token = tokens.token_issue(gateway=gateway)
        token_file = folder / "token"
        token_file.write_text(token + "\n")
        token_file.chmod(0o600)
        document = edge.config_document(gateway)
        config = {
            "server": {"url": f"http://127.0.0.1:{port}", "token_file": str(token_file)},
            "bus": {"port": bus, "timeout_s": 0.2},
            "poll_interval_s": document["poll_interval_s"],
            "log_interval_s": document["log_interval_s"],
            "heartbeat_interval_s": 30,
            # One gateway: no fleet to spread, and the demo shows each reading at once.
            "upload_spread_s": 0,
            "state_dir": str(folder / "state"),
            "csv_log": False,
            "site_timezone": gateway.site.timezone,
            # The demo runs on a machine whose clock is trusted.
            "clock_sync": "always",
            "meters": [
                {"address": m["address"], "model": m["model"], "name": m["name"]}
                for m in document["meters"]
            ],
        }
        (folder / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
        spec = ",".join(f"{m['address']}:{m['model']}" for m in document["meters"])
        self.stdout.write(f"Demo gateway {gateway.name}: {len(document['meters'])} meters.")
        self.stdout.write(spec)
