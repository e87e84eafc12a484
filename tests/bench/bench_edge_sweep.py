"""Benchmark: one bus of 90 DDSU666 + 10 DTSU666 simulated meters, polled by the agent.

    python tests/bench/bench_edge_sweep.py

Prints, for each sweep from an interval boundary until every meter's interval
reading is taken and then ordinary sweeps:

- requests sent, against the minimum for the values configured (one request per
  readable span of registers each meter's values touch; goal <= 1.1x),
- bytes on the wire (requests + answers, as counted by the RTU master),
- the sweep's bus time computed at 9600 8N2 with 20 ms meter latency from those
  requests and answers (goal: no sweep over 10 s), and the naive one-value-per-
  request poll of the same values for reference.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from edge_agent.bus import Bus, SerialSettings  # noqa: E402
from edge_agent.clock import FakeClock  # noqa: E402
from edge_agent.config import MeterConfig  # noqa: E402
from edge_agent.modbus import char_time_s  # noqa: E402
from edge_agent.poller import Poller  # noqa: E402
from edge_agent.registers import register_map  # noqa: E402
from edge_agent.simulator import SimBus, SimulatorThread, parse_meters  # noqa: E402

LATENCY_S = 0.02
POLL_INTERVAL_S = 10.0
GOAL_RATIO = 1.1
GOAL_SWEEP_S = 10.0


def minimum_requests(meter: MeterConfig, with_energy: bool) -> int:
    """Readable spans the meter's configured values touch: no poll can do with fewer."""
    rmap = register_map(meter.model, meter.variant, meter.energy_register)
    kinds = ("instant", "energy") if with_energy else ("instant",)
    spans = {next(s for s in rmap.spans if s[0] <= r.address < s[1])
             for r in rmap.by_kind(*kinds)}
    return len(spans)


def naive_time_s(meter: MeterConfig, with_energy: bool, char_s: float) -> float:
    """One request per value: what a poll without block reads would cost."""
    rmap = register_map(meter.model, meter.variant, meter.energy_register)
    kinds = ("instant", "energy") if with_energy else ("instant",)
    return len(rmap.by_kind(*kinds)) * ((8 + 9 + 7) * char_s + LATENCY_S)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    spec = ",".join([f"{a}:DDSU666" for a in range(1, 91)]
                    + [f"{a}:DTSU666" for a in range(101, 111)])
    url = f"socket://127.0.0.1:{free_port()}"
    sim = SimulatorThread(SimBus(parse_meters(spec)), url).start()
    meters = [MeterConfig(m.address, m.model) for m in parse_meters(spec)]
    settings = SerialSettings(9600, "N", 2, 8, timeout_s=0.3)
    char_s = char_time_s(9600, 8, "N", 2)
    bus = Bus(url, settings)
    poller = Poller(bus, meters, FakeClock(), budget_s=0.9 * POLL_INTERVAL_S,
                    latency_s=LATENCY_S)
    by_address = {m.address: m for m in meters}

    print(f"{len(meters)} meters (90 DDSU666 + 10 DTSU666), 9600 8N2, "
          f"{LATENCY_S * 1000:.0f} ms meter latency, poll every {POLL_INTERVAL_S:.0f} s")
    print(f"{'sweep':>5} {'energy':>6} {'requests':>8} {'minimum':>7} {'ratio':>5} "
          f"{'bytes':>6} {'bus time':>8} {'naive':>7}")
    due = [m.address for m in meters]  # an interval boundary has just passed
    worst_ratio = worst_time = 0.0
    total_bytes = sweeps = 0
    try:
        ordinary = 0
        while ordinary < 3:
            stats = bus.stats
            before = (stats.requests, stats.tx_bytes, stats.rx_bytes) if stats else (0, 0, 0)
            result = poller.sweep(energy_due=due)
            stats = bus.stats
            requests = stats.requests - before[0]
            wire = stats.tx_bytes - before[1] + stats.rx_bytes - before[2]
            bus_time = (wire + 7 * requests) * char_s + requests * LATENCY_S
            minimum = sum(minimum_requests(by_address[a], a in result.energy_read)
                          for a in result.values)
            naive = sum(naive_time_s(by_address[a], a in result.energy_read, char_s)
                        for a in result.values)
            ratio = requests / minimum
            sweeps += 1
            print(f"{sweeps:>5} {len(result.energy_read):>6} {requests:>8} {minimum:>7} "
                  f"{ratio:>5.2f} {wire:>6} {bus_time:>7.2f}s {naive:>6.1f}s")
            worst_ratio, worst_time = max(worst_ratio, ratio), max(worst_time, bus_time)
            total_bytes += wire
            due = [a for a in due if a not in result.energy_read]
            ordinary += not due and not result.energy_read
            if sweeps > 50:
                print("interval readings did not complete within 50 sweeps")
                return 1
    finally:
        bus.close()
        sim.stop()
    ok = worst_ratio <= GOAL_RATIO and worst_time <= GOAL_SWEEP_S
    print(f"requests per sweep / minimum: worst {worst_ratio:.2f}x (goal <= {GOAL_RATIO}x)")
    print(f"bytes on the wire: {total_bytes} over {sweeps} sweeps "
          f"({total_bytes / sweeps:.0f} per sweep)")
    print(f"bus time per sweep: worst {worst_time:.2f} s (goal <= {GOAL_SWEEP_S:.0f} s)")
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
