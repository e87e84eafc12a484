"""The command line, run as a person would: ``python -m edge_agent ...``."""

import json
import subprocess
import sys

from edge_agent.bus import PortLock

from .helpers import ROOT, agent_env, free_port, run_cli, wait_for


def test_read_json_has_the_contract_fields(simbus, tmp_path):
    sim = simbus("10:DDSU666,100:DTSU666")
    env = agent_env(tmp_path)
    out = run_cli("read", "--port", sim.listen, "--address", 100, "--model", "DTSU666",
                  "--json", env=env)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert {"energy_kwh", "voltage_v", "current_a", "power_kw", "power_factor",
            "frequency_hz"} <= set(data)
    assert len(data["voltage_v"]) == 3 and 200 < data["voltage_v"][0] < 260


def test_read_prints_every_value_with_units(simbus, tmp_path):
    sim = simbus("10:DDSU666")
    out = run_cli("read", "--port", sim.listen, "--address", 10, env=agent_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "power_kw" in out.stdout and " kW" in out.stdout and " kWh" in out.stdout
    assert " V" in out.stdout and " Hz" in out.stdout


def test_read_a_silent_address_fails_clearly(simbus, tmp_path):
    sim = simbus("10:DDSU666")
    out = run_cli("read", "--port", sim.listen, "--address", 12, "--timeout", 0.1,
                  env=agent_env(tmp_path))
    assert out.returncode == 1 and "timeout" in out.stderr


def test_scan_shows_progress_then_a_summary(simbus, tmp_path):
    sim = simbus("3:DDSU666,5:DTSU666,6:DDSU666:crc")
    out = run_cli("scan", "--port", sim.listen, "--from", 1, "--to", 8, "--timeout", 0.05,
                  env=agent_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "8/8" in out.stderr  # progress
    assert "3 of 8 addresses answered" in out.stdout
    assert "3  DDSU666" in out.stdout and "5  DTSU666" in out.stdout


def test_probe_identifies_models_and_the_dtsu666_energy_register(simbus, tmp_path):
    env = agent_env(tmp_path)
    standard = simbus("10:DDSU666,100:DTSU666")
    out = run_cli("probe", "--port", standard.listen, "--address", 10, env=env)
    assert "DDSU666" in out.stdout
    out = run_cli("probe", "--port", standard.listen, "--address", 100, "--json", env=env)
    data = json.loads(out.stdout)
    assert data["model"] == "DTSU666" and data["energy_register"] == "0x4000"
    assert 200 < data["voltage_v"] < 260
    variant = simbus("100:DTSU666", variant="0x101E")
    out = run_cli("probe", "--port", variant.listen, "--address", 100, env=env)
    assert out.returncode == 0, out.stderr
    assert "energy register: 0x101E" in out.stdout
    assert "energy at 0x4000: exception" in out.stdout


def test_probe_says_when_no_map_fits(simbus, tmp_path):
    sim = simbus("14:DDSU666:impossible")
    out = run_cli("probe", "--port", sim.listen, "--address", 14, env=agent_env(tmp_path))
    assert out.returncode == 1 and "no known register map fits" in out.stdout


def test_set_address_refusals(simbus, tmp_path):
    sim = simbus("1:DDSU666,12:DDSU666,7:DDSU666:crc")
    env = agent_env(tmp_path)
    taken = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 1,
                    "--to", 12, "--timeout", 0.1, env=env)
    assert taken.returncode == 1 and "12 already answers" in taken.stderr
    two = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 7,
                  "--to", 20, "--timeout", 0.1, env=env)
    assert two.returncode == 1 and "more than one meter" in two.stderr
    nobody = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 2,
                     "--to", 20, "--timeout", 0.1, env=env)
    assert nobody.returncode == 1 and "nothing answers at address 2" in nobody.stderr


def test_set_address_ddsu666_needs_a_power_cycle_then_verify(simbus, tmp_path):
    sim = simbus("1:DDSU666")
    env = agent_env(tmp_path)
    out = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 1,
                  "--to", 12, "--timeout", 0.1, env=env)
    assert out.returncode == 0, out.stderr
    assert "power cycle" in out.stdout and "--verify" in out.stdout
    early = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 1,
                    "--to", 12, "--verify", "--timeout", 0.1, env=env)
    assert early.returncode == 1 and "nothing answers at the new address 12" in early.stderr
    sim.call(sim.bus.power_cycle)
    after = run_cli("set-address", "--port", sim.listen, "--model", "DDSU666", "--from", 1,
                    "--to", 12, "--verify", "--timeout", 0.1, env=env)
    assert after.returncode == 0 and "answers at 12" in after.stdout


def test_set_address_dtsu666_is_verified_at_once(simbus, tmp_path):
    sim = simbus("1:DTSU666")
    out = run_cli("set-address", "--port", sim.listen, "--model", "DTSU666", "--from", 1,
                  "--to", 101, "--timeout", 0.1, env=agent_env(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "the meter answers at 101" in out.stdout


def test_while_the_service_holds_the_port_others_say_so_and_stop(simbus, tmp_path, monkeypatch):
    sim = simbus("10:DDSU666")
    monkeypatch.setenv("MCOMS_EDGE_LOCK_DIR", str(tmp_path))
    with PortLock(sim.listen, "mcoms-edge run"):
        out = run_cli("read", "--port", sim.listen, "--address", 10, env=agent_env(tmp_path))
    assert out.returncode == 3
    assert "mcoms-edge run" in out.stderr and "systemctl stop mcoms-edge" in out.stderr


def test_simulate_serves_a_bus_the_other_commands_can_read(tmp_path):
    port = free_port()
    env = agent_env(tmp_path)
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "simulate", "--listen",
         f"socket://127.0.0.1:{port}", "--meters", "10:DDSU666,11:DDSU666,100:DTSU666",
         "--variant", "0x401E"], cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert "simulating 3 meters" in proc.stdout.readline()

        def energy():
            out = run_cli("read", "--port", f"socket://127.0.0.1:{port}", "--address", 100,
                          "--model", "DTSU666", "--energy-register", "0x401E", "--json",
                          env=env)
            return json.loads(out.stdout)["energy_kwh"] if out.returncode == 0 else None

        first = wait_for(energy, timeout=10)
        assert wait_for(lambda: (e := energy()) and e > first, timeout=10)  # energy rises
    finally:
        proc.terminate()
        proc.wait(10)
    assert proc.returncode == 0
