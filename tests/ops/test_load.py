"""The load test in a short bounded run: 1,000 simulated gateways for 25 s while two staff
sessions use the dashboards and four customers the USSD menu; no errors, and every
gateway's readings stored.

The full run, with the latency goals, is ``tests/bench/bench_load.py`` (``make bench``);
see docs/operations.md, "Load test".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.ops.conftest import ROOT, drop, psql, server_url

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

GATEWAYS = 1000


def test_a_thousand_gateways_and_staff_at_once_without_errors(tmp_path):
    name = "mcoms_test_load"
    figures = tmp_path / "load.json"
    command = [
        sys.executable,
        str(ROOT / "tests" / "bench" / "bench_load.py"),
        *("--gateways", str(GATEWAYS), "--staff", "2", "--customers", "50"),
        # The first interval's batches within 18 s, heartbeats at the real pace: every
        # gateway sends its batch within the run. A harder burst than the agents make
        # (they spread theirs over 11 + 60 s: upload_spread_s); the latency goals are the
        # full run's.
        *("--duration", "25", "--spread", "18", "--upload-spread", "0", "--speedup", "1"),
        *("--backlog", "5", "--ussd", "4", "--ussd-think", "0.5", "1.5"),
        *("--drain", "40", "--timeout", "240", "--references", "2"),
        *("--database-url", server_url(name), "--keep", "--no-latency-goals"),
        *("--json", str(figures)),
    ]
    try:
        run = subprocess.run(
            command,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
        found = json.loads(figures.read_text())
        assert found["errors"] == 0
        assert found["gateways"] == GATEWAYS
        assert found["served"] == GATEWAYS and found["left_unsent"] == 0
        assert found["rejected"] == 0 and found["flagged"] == 0
        kinds = ("readings", "heartbeat", "config", "site", "site table (htmx)")
        for kind in (*kinds, "USSD menu step", "USSD PIN check"):
            assert found["kinds"][kind]["requests"] > 0, kind

        # What the database holds: a batch and readings from every gateway, each reading once.
        gateways = int(psql("SELECT count(*) FROM metering_gateway", name))
        assert gateways == GATEWAYS
        with_readings = psql(
            "SELECT count(DISTINCT m.gateway_id) FROM metering_reading r "
            "JOIN metering_meter m ON m.id = r.meter_id",
            name,
        )
        assert int(with_readings) == GATEWAYS
        batches = psql(
            "SELECT count(DISTINCT gateway_id), sum(readings) FROM metering_edgebatch", name
        )
        assert batches.split("|")[0] == str(GATEWAYS)
        stored = int(psql("SELECT count(*) FROM metering_reading", name))
        assert stored == int(batches.split("|")[1])
    finally:
        drop(name)
