"""The agent's YAML file, the server's answer on top of it, the cache and the overrides."""

import logging
import textwrap

import pytest

from edge_agent.config import (
    ConfigError,
    apply_server_config,
    load_config,
    parse_config,
    save_cached,
)

LEGACY = textwrap.dedent("""
    server:
      url: https://mcoms.example.org
      token_file: /etc/mcoms-edge/token
    bus:
      port: /dev/serial/by-id/usb-FTDI_FT232R-if00-port0
      baudrate: 9600
      parity: N
      stopbits: 2
      timeout_s: 0.3
    poll_interval_s: 10
    log_interval_s: 900
    heartbeat_interval_s: 300
    state_dir: {state}
    csv_log: true
    meters:
      - {{id: 10, name: floor1_reception, type: 1phase, enabled: true}}
      - {{id: 100, name: main_supply, type: 3phase, enabled: true}}
""")

SERVER = {
    "gateway": "kla-block-a", "version": 17, "poll_interval_s": 10, "log_interval_s": 900,
    "serial": {"baudrate": 9600, "parity": "N", "stopbits": 2, "bytesize": 8},
    "meters": [
        {"address": 10, "name": "floor1_reception", "model": "DDSU666",
         "serial": "200322016690", "enabled": True},
        {"address": 100, "name": "main_supply", "model": "DTSU666", "variant": "standard",
         "energy_register": "0x401E", "ct_ratio": 1, "serial": "200415023456", "enabled": True},
    ],
}


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(LEGACY.format(state=tmp_path / "state"))
    (tmp_path / "state").mkdir()
    return path


def test_the_contract_example_with_legacy_meters_loads(config_file):
    cfg = load_config(str(config_file), env={})
    assert cfg.port.startswith("/dev/serial/by-id/")
    assert [(m.address, m.model, m.name) for m in cfg.meters] == [
        (10, "DDSU666", "floor1_reception"), (100, "DTSU666", "main_supply")]
    assert (cfg.serial.baudrate, cfg.serial.parity, cfg.serial.stopbits) == (9600, "N", 2)
    assert cfg.csv_log is True and cfg.log_interval_s == 900


def test_environment_overrides_the_file(config_file):
    cfg = load_config(str(config_file), env={"MCOMS_EDGE_SERVER_URL": "https://other.example",
                                             "MCOMS_EDGE_TOKEN": "t0k"})
    assert cfg.server_url == "https://other.example" and cfg.read_token() == "t0k"


@pytest.mark.parametrize("change, key", [
    ({"bus": {"port": "/dev/ttyUSB0", "baudrate": "fast"}}, "bus.baudrate"),
    ({"bus": {"port": "/dev/ttyUSB0", "parity": "X"}}, "bus.parity"),
    ({"poll_interval_s": -1}, "poll_interval_s"),
    ({"csv_log": "yes please"}, "csv_log"),
    ({"meters": [{"id": 10, "type": "2phase"}]}, "meters[0].type"),
    ({"meters": [{"id": 300, "type": "1phase"}]}, "meters[0].id"),
    ({"meters": [{"address": 5, "model": "DTSU666", "energy_register": "0x9999"}]}, "meters[0]"),
    ({"meters": [{"id": 5}, {"address": 5}]}, "address 5 appears twice"),
    ({"site_timezone": "Mars/Olympus"}, "site_timezone"),
    ({"bus": {}}, "bus.port"),
    ({"upload_spread_s": -5}, "upload_spread_s"),
])
def test_a_bad_value_names_its_key(change, key):
    data = {"bus": {"port": "/dev/ttyUSB0"}, **change}
    with pytest.raises(ConfigError, match=key.replace("[", r"\[").replace("]", r"\]")):
        parse_config(data, env={})


def test_an_unknown_key_is_a_warning(config_file, caplog):
    config_file.write_text(config_file.read_text() + "new_feature: 3\nbus2: {}\n")
    caplog.set_level(logging.WARNING)
    load_config(str(config_file), env={})
    assert "unknown key new_feature" in caplog.text


def test_upload_spread_defaults_to_a_minute_and_stays_local(config_file):
    cfg = load_config(str(config_file), env={})
    assert cfg.upload_spread_s == 60.0
    off, _warnings = parse_config({"bus": {"port": "/dev/ttyUSB0"}, "upload_spread_s": 0}, env={})
    assert off.upload_spread_s == 0.0
    assert apply_server_config(cfg, {**SERVER, "log_interval_s": 60}).upload_spread_s == 60.0


def test_server_answer_wins_for_meters_intervals_and_line_but_not_the_port(config_file):
    cfg = load_config(str(config_file), env={})
    answer = {**SERVER, "poll_interval_s": 5, "serial": {"baudrate": 19200}}
    merged = apply_server_config(cfg, answer)
    assert merged.port == cfg.port  # the device path is local only
    assert merged.poll_interval_s == 5 and merged.serial.baudrate == 19200
    assert merged.config_version == 17 and merged.gateway == "kla-block-a"
    dtsu = merged.meters[1]
    assert dtsu.energy_register == 0x401E and dtsu.register_map().energy_register == 0x401E


def test_the_cached_server_config_is_used_at_start(config_file, tmp_path):
    save_cached(str(tmp_path / "state"), SERVER)
    cfg = load_config(str(config_file), env={})
    assert cfg.config_version == 17 and cfg.meters[0].serial == "200322016690"


def test_a_bad_server_answer_is_refused(config_file):
    cfg = load_config(str(config_file), env={})
    with pytest.raises(ConfigError, match="version"):
        apply_server_config(cfg, {**SERVER, "version": "x"})
    with pytest.raises(ConfigError, match="serial"):
        apply_server_config(cfg, {**SERVER, "serial": {"baudrate": "fast"}})


def test_a_meter_the_agent_cannot_poll_is_skipped_not_the_whole_answer(config_file, caplog):
    cfg = load_config(str(config_file), env={})
    answer = {**SERVER, "meters": [*SERVER["meters"], {"address": 7, "model": "CALIN"},
                                   {"address": 10, "model": "DDSU666"},
                                   {"address": 8, "model": "DTSU666", "variant": "H",
                                    "future_field": 1}]}
    merged = apply_server_config(cfg, answer)
    assert [m.address for m in merged.meters] == [10, 100, 8]
    assert "meters[2].model" in caplog.text and "address 10 appears twice" in caplog.text
    assert "variant 'H' is unknown" in caplog.text
