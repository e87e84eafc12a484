"""Sweeps: silent meters backed off, errors counted by kind, energy spread over sweeps."""

from edge_agent.bus import Bus, SerialSettings
from edge_agent.clock import FakeClock
from edge_agent.config import MeterConfig
from edge_agent.poller import Poller

SETTINGS = SerialSettings(timeout_s=0.2)


def meters(spec: str) -> list[MeterConfig]:
    out = []
    for item in spec.split(","):
        address, model = item.split(":")[:2]
        out.append(MeterConfig(int(address), model))
    return out


def poller_for(sim, spec, **kw) -> Poller:
    return Poller(Bus(sim.listen, SETTINGS), meters(spec), FakeClock(), **kw)


def test_a_silent_meter_costs_one_short_timeout_and_is_backed_off(simbus):
    sim = simbus("10:DDSU666,100:DTSU666")
    poller = poller_for(sim, "10:DDSU666,11:DDSU666,100:DTSU666")
    timeouts_per_sweep, bus_times = [], []
    for _ in range(8):
        before = poller.states[11].count(0)["timeout"]
        result = poller.sweep()
        bus_times.append(result.bus_time_s)
        timeouts_per_sweep.append(poller.states[11].count(0)["timeout"] - before)
        assert set(result.values) == {10, 100}  # the others are read every sweep
    # Tried in sweeps 1, 3, 6 (skipping 1, then 2, then 4 sweeps): never more than once a sweep.
    assert timeouts_per_sweep == [1, 0, 1, 0, 0, 1, 0, 0]
    healthy = bus_times[1]
    # The silent meter costs exactly one short timeout of bus time, and only when tried.
    assert [round(t - healthy, 3) for t in bus_times] == [0.2, 0, 0.2, 0, 0, 0.2, 0, 0]
    report = {m["address"]: m for m in poller.meter_report()}
    assert report[11]["ok"] is False and report[11]["last_error"] == "timeout"
    assert report[10]["ok"] is True and report[10]["errors_24h"]["timeout"] == 0


def test_a_meter_coming_back_is_read_again(simbus):
    sim = simbus("10:DDSU666,11:DDSU666:silent")
    poller = poller_for(sim, "10:DDSU666,11:DDSU666")
    poller.sweep()
    sim.call(setattr, sim.bus.meters[11], "fault", None)
    results = [poller.sweep() for _ in range(3)]
    assert any(11 in r.values for r in results)
    assert poller.states[11].ok is True and poller.states[11].skip == 0


def test_garbage_exception_nan_and_impossible_are_counted_and_never_values(simbus):
    sim = simbus("10:DDSU666,11:DDSU666:crc,12:DDSU666:exception,13:DDSU666:nan,"
                 "14:DDSU666:impossible,100:DTSU666:impossible")
    poller = poller_for(sim, "10:DDSU666,11:DDSU666,12:DDSU666,13:DDSU666,14:DDSU666,"
                             "100:DTSU666")
    for _ in range(2):
        result = poller.sweep(energy_due=[10, 11, 12, 13, 14, 100])
    counts = {a: s.count(0) for a, s in poller.states.items()}
    assert counts[11]["crc"] == 2 and counts[12]["exception"] == 2
    assert counts[13]["implausible"] >= 2 and counts[14]["implausible"] >= 2
    assert counts[10] == {"timeout": 0, "crc": 0, "exception": 0, "implausible": 0}
    assert 11 not in result.values and 12 not in result.values
    # NaN everywhere: nothing left to report, and no energy -> no interval reading.
    assert 13 not in result.energy_read
    assert "voltage_v" not in result.values.get(13, {})
    # A DTSU666 phase voltage without its scale is impossible: left out, the rest reported.
    assert "voltage_v" not in result.values[100] and "current_a" in result.values[100]
    assert "voltage_v" not in result.values[14] and "energy_kwh" in result.values[14]
    assert {10, 14, 100} <= result.energy_read


def test_values_outside_the_nominal_band_are_normal_readings(simbus):
    sim = simbus("10:DDSU666")
    sim.call(setattr, sim.bus.meters[10], "energy0", 5.0)
    poller = poller_for(sim, "10:DDSU666")
    original = sim.bus.meters[10].values

    def high_voltage(now):
        regs = original(now)
        regs[0x2000] = 262.0  # a surge: outside 207-253 V, yet physical
        regs[0x200E] = 48.7
        return regs

    sim.bus.meters[10].values = high_voltage
    values = poller.sweep(energy_due=[10]).values[10]
    assert values["voltage_v"] == [262.0] and values["frequency_hz"] == 48.7
    assert poller.states[10].count(0)["implausible"] == 0


def test_energy_reads_are_spread_when_a_sweep_would_overrun(simbus):
    spec = ",".join(f"{a}:DDSU666" for a in range(1, 21))
    sim = simbus(spec)
    # 20 meters x 79.6 ms = 1.6 s of instantaneous reads at 9600 8N2 with 20 ms latency.
    poller = poller_for(sim, spec, budget_s=2.0)
    due = list(range(1, 21))
    sweeps = []
    while due:
        result = poller.sweep(energy_due=due)
        assert result.bus_time_s <= 2.0
        due = [a for a in due if a not in result.energy_read]
        sweeps.append(len(result.energy_read))
    assert len(sweeps) > 1 and sum(sweeps) == 20
