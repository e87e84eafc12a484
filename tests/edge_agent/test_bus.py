"""The RTU master against simulated meters: over a local socket, and over a socat pty pair."""

import os
import shutil
import subprocess

import pytest

from edge_agent.bus import Bus, PortBusy, PortLock, SerialSettings
from edge_agent.commissioning import read_meter
from edge_agent.modbus import ModbusError, PortError
from edge_agent.simulator import SimBus, SimulatorThread, parse_meters

from .helpers import wait_for

SETTINGS = SerialSettings(timeout_s=0.5)  # generous: a loaded CI machine, a pty via socat


def _expected(sim: SimulatorThread, address: int) -> dict[int, float]:
    return sim.bus.meters[address].values(sim.bus.clock())


def frozen():
    return 1234.5


def test_ddsu666_values_decoded_right(simbus):
    sim = simbus("10:DDSU666", clock=frozen)
    out = read_meter(Bus(sim.listen, SETTINGS), 10, "DDSU666")
    raw = _expected(sim, 10)
    values = out["values"]
    assert values["voltage_v"][0] == pytest.approx(raw[0x2000], abs=0.05)
    assert values["current_a"][0] == pytest.approx(raw[0x2002], abs=0.05)
    assert values["power_kw"] == pytest.approx(raw[0x2004], abs=0.01)
    assert values["frequency_hz"] == pytest.approx(raw[0x200E], abs=0.01)
    assert values["energy_kwh"] == pytest.approx(raw[0x4000], abs=0.01)
    assert out["units"]["power_kw"] == "kW"


def test_dtsu666_values_decoded_with_their_scale(simbus):
    sim = simbus("100:DTSU666", clock=frozen)
    values = read_meter(Bus(sim.listen, SETTINGS), 100, "DTSU666")["values"]
    raw = _expected(sim, 100)
    assert values["voltage_v"] == pytest.approx([raw[0x2006 + 2 * k] / 10 for k in range(3)],
                                                abs=0.05)
    assert values["current_a"] == pytest.approx([raw[0x200C + 2 * k] / 1000 for k in range(3)],
                                                abs=0.01)
    assert values["power_kw"] == pytest.approx(raw[0x2012] / 10000, abs=0.01)
    assert values["power_factor"] == pytest.approx(raw[0x202A] / 1000, abs=0.001)
    assert values["frequency_hz"] == pytest.approx(raw[0x2044] / 100, abs=0.01)
    assert 200 < values["voltage_v"][0] < 260  # not the unscaled ~2,300 V


def test_error_kinds_are_told_apart(simbus):
    sim = simbus("11:DDSU666:crc,12:DDSU666:exception")
    bus = Bus(sim.listen, SETTINGS)
    kinds = {}
    for address in (11, 12, 13):
        with pytest.raises(ModbusError) as exc:
            bus.read_registers(address, 3, 0x2000, 16)
        kinds[address] = exc.value.kind
    assert kinds == {11: "crc", 12: "exception", 13: "timeout"}


def test_socket_port_reopens_after_the_converter_goes_away(simbus):
    sim = simbus("10:DDSU666")
    bus = Bus(sim.listen, SETTINGS)
    assert bus.read_registers(10, 3, 0x2000, 2)
    port = int(sim.listen.rsplit(":", 1)[1])
    sim.stop()
    with pytest.raises((PortError, ModbusError)):
        for _ in range(3):
            bus.read_registers(10, 3, 0x2000, 2)
    simbus("10:DDSU666", port=port)
    assert wait_for(lambda: bus.probe_silently(10, 3, 0x2000, 2)[0] if bus.ensure_open()
                    else None, timeout=5)


def test_lock_refuses_a_second_holder(tmp_path, monkeypatch):
    monkeypatch.setenv("MCOMS_EDGE_LOCK_DIR", str(tmp_path))
    with PortLock("socket://127.0.0.1:5020", "mcoms-edge run"), \
            pytest.raises(PortBusy, match="mcoms-edge run"):
        PortLock("socket://127.0.0.1:5020", "mcoms-edge read").acquire()
    PortLock("socket://127.0.0.1:5020", "mcoms-edge read").acquire().release()


socat = pytest.mark.skipif(shutil.which("socat") is None,
                           reason="socat is not installed (apt-get install socat)")


def _pty_pair(tmp_path):
    a, b = tmp_path / "ttyMETERS", tmp_path / "ttyUSB0"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stderr=subprocess.DEVNULL)
    wait_for(lambda: a.exists() and b.exists(), timeout=5)
    return proc, str(a), str(b)


@socat
def test_over_a_pty_pair(tmp_path, simbus):
    proc, meters_end, agent_end = _pty_pair(tmp_path)
    try:
        thread = SimulatorThread(SimBus(parse_meters("10:DDSU666,100:DTSU666")), meters_end)
        thread.start()
        try:
            bus = Bus(agent_end, SETTINGS)
            ddsu = read_meter(bus, 10, "DDSU666")["values"]
            dtsu = read_meter(bus, 100, "DTSU666")["values"]
            assert 220 < ddsu["voltage_v"][0] < 240
            assert all(220 < v < 240 for v in dtsu["voltage_v"])
            with pytest.raises(ModbusError, match="no answer"):
                bus.read_registers(11, 3, 0x2000, 2)
        finally:
            thread.stop()
    finally:
        proc.kill()
        proc.wait()


@socat
def test_serial_port_reopens_after_the_adapter_is_unplugged(tmp_path):
    proc, meters_end, agent_end = _pty_pair(tmp_path)
    thread = SimulatorThread(SimBus(parse_meters("10:DDSU666")), meters_end).start()
    bus = Bus(agent_end, SETTINGS)
    try:
        assert bus.read_registers(10, 3, 0x2000, 2)
        thread.stop()
        proc.kill()  # the adapter is gone: its device node disappears
        proc.wait()
        wait_for(lambda: not os.path.exists(agent_end), timeout=5)
        with pytest.raises((PortError, ModbusError)):
            bus.read_registers(10, 3, 0x2000, 2)
        assert not bus.ensure_open()
        proc, meters_end, agent_end = _pty_pair(tmp_path)  # plugged back in
        thread = SimulatorThread(SimBus(parse_meters("10:DDSU666")), meters_end).start()
        assert wait_for(lambda: bus.probe_silently(10, 3, 0x2000, 2)[0]
                        if bus.ensure_open() else None, timeout=5)
    finally:
        thread.stop()
        proc.kill()
        proc.wait()
