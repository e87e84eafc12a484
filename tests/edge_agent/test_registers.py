"""Register maps are data; block planning reads each contiguous block in one request."""

import math

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.registers import (
    DTSU666_ENERGY_CANDIDATES,
    MAX_REGISTERS_PER_READ,
    all_maps,
    decode_block,
    decode_float,
    encode_float,
    impossible,
    plan_blocks,
    register_map,
    to_reading_fields,
)


def test_ddsu666_instant_values_are_one_block_and_energy_another():
    rmap = register_map("DDSU666")
    instant = plan_blocks(rmap, rmap.by_kind("instant"))
    energy = plan_blocks(rmap, rmap.by_kind("energy"))
    assert [(b.function_code, b.start, b.count) for b in instant] == [(3, 0x2000, 16)]
    assert [(b.start, b.count) for b in energy] == [(0x4000, 12)]


def test_dtsu666_reads_one_request_per_contiguous_block():
    rmap = register_map("DTSU666")
    blocks = plan_blocks(rmap, rmap.by_kind("instant"))
    assert [(b.function_code, b.start, b.count) for b in blocks] == [
        (4, 0x2006, 14), (4, 0x202A, 2), (4, 0x2044, 2)]


def test_dtsu666_scaling_gives_contract_units():
    rmap = register_map("DTSU666")
    block = plan_blocks(rmap, rmap.by_kind("instant"))[0]
    words = []
    for raw in (2310.0, 2298.0, 2331.0, 12100.0, 9800.0, 11000.0, 79000.0):
        words += encode_float(raw)
    fields = to_reading_fields(decode_block(block, words), rmap)
    assert fields["voltage_v"] == [231.0, 229.8, 233.1]
    assert fields["current_a"] == [12.1, 9.8, 11.0]
    assert fields["power_kw"] == 7.9


def test_dtsu666_energy_register_variants():
    for reg, export in DTSU666_ENERGY_CANDIDATES.items():
        rmap = register_map("DTSU666", energy_register=f"0x{reg:04X}")
        energy = {r.field: r.address for r in rmap.by_kind("energy")}
        assert energy == {"energy_kwh": reg, **({"export_kwh": export} if export else {})}
    assert register_map("DTSU666", variant="energy@0x101E").energy_register == 0x101E


def test_ct_ratio_scales_current_power_and_energy_only():
    rmap = register_map("DDSU666")
    fields = to_reading_fields({"voltage_v.0": 230.0, "current_a.0": 1.0, "power_kw": 0.2,
                                "energy_kwh": 10.0}, rmap, ct_ratio=40)
    assert fields == {"voltage_v": [230.0], "current_a": [40.0], "power_kw": 8.0,
                      "energy_kwh": 400.0}


def test_impossible_versus_merely_outside_nominal():
    assert impossible("voltage_v.0", 2310.0)  # a DTSU666 read without its scale
    assert impossible("voltage_ll_v.0", 600.0)
    assert impossible("frequency_hz", 35.0)
    assert impossible("power_factor", 1.2)
    assert impossible("energy_kwh", -1.0)
    assert impossible("energy_kwh", float("nan"))
    assert impossible("power_kw", float("inf"))
    # Outside the nominal band is a power-quality event, still a valid reading.
    assert not impossible("voltage_v.0", 262.0)
    assert not impossible("frequency_hz", 48.9)
    assert not impossible("current_a.0", 0.0)


@given(st.floats(width=32, allow_nan=False))
def test_float_word_order_round_trips(value):
    assert decode_float(encode_float(value), 0) == value


@given(st.data())
def test_planning_covers_every_register_within_spans(data):
    rmap = data.draw(st.sampled_from(all_maps()))
    regs = data.draw(st.lists(st.sampled_from(rmap.registers), min_size=1, unique=True))
    blocks = plan_blocks(rmap, regs)
    planned = [r for b in blocks for r in b.registers]
    assert sorted(planned, key=lambda r: r.address) == sorted(regs, key=lambda r: r.address)
    for block in blocks:
        assert block.count <= MAX_REGISTERS_PER_READ
        assert any(s <= block.start and block.start + block.count <= e for s, e in rmap.spans)
    # The minimum: one request per span touched.
    spans = {next(s for s in rmap.spans if s[0] <= r.address < s[1]) for r in regs}
    assert len(blocks) == len(spans)


def test_nan_decodes_as_nan():
    assert math.isnan(decode_float(encode_float(float("nan")), 0))
