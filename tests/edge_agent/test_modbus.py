"""RTU framing: garbage on the line is an error of a kind, never a value."""

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.modbus import (
    ModbusError,
    RtuMaster,
    char_time_s,
    crc,
    read_request,
    transaction_time_s,
)


class LinePort:
    """An in-memory stand-in for a pyserial port that answers with given bytes."""

    def __init__(self, answer: bytes):
        self.answer = answer
        self.sent = b""
        self.timeout = 0.1

    def reset_input_buffer(self):
        pass

    def write(self, data: bytes):
        self.sent += data

    def read(self, size: int) -> bytes:
        chunk, self.answer = self.answer[:size], self.answer[size:]
        return chunk


def answer_frame(unit: int, words: list[int]) -> bytes:
    body = struct.pack(f">BBB{len(words)}H", unit, 3, 2 * len(words), *words)
    return body + crc(body)


def test_a_good_answer_decodes():
    port = LinePort(answer_frame(10, [0x4366, 0x8000]))
    assert RtuMaster(port).read_registers(10, 3, 0x2000, 2) == [0x4366, 0x8000]
    assert port.sent == read_request(10, 3, 0x2000, 2)


@given(st.lists(st.integers(0, 0xFFFF), min_size=1, max_size=16), st.data())
def test_any_corrupted_byte_is_caught(words, data):
    frame = bytearray(answer_frame(10, words))
    index = data.draw(st.integers(0, len(frame) - 1))
    frame[index] ^= data.draw(st.integers(1, 255))
    with pytest.raises(ModbusError) as exc:
        RtuMaster(LinePort(bytes(frame)), timeout_s=0.05).read_registers(10, 3, 0x2000,
                                                                          len(words))
    assert exc.value.kind in ("crc", "timeout", "exception")


def test_exception_reply_and_silence():
    body = bytes([10, 0x83, 2])
    with pytest.raises(ModbusError, match="illegal data address") as exc:
        RtuMaster(LinePort(body + crc(body))).read_registers(10, 3, 0x2000, 2)
    assert exc.value.kind == "exception" and exc.value.code == 2
    with pytest.raises(ModbusError) as exc:
        RtuMaster(LinePort(b""), timeout_s=0.05).read_registers(10, 3, 0x2000, 2)
    assert exc.value.kind == "timeout"


def test_bus_timing_matches_the_reference_table():
    char = char_time_s(9600, 8, "N", 2)
    assert char * 1000 == pytest.approx(1.146, abs=0.001)
    assert transaction_time_s(8, 5 + 2 * 2, char, 0.0) * 1000 == pytest.approx(27.5, abs=0.1)
    assert transaction_time_s(8, 5 + 2 * 16, char, 0.02) * 1000 == pytest.approx(79.6, abs=0.1)
