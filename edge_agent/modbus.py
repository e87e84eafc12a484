"""Modbus RTU master over any pyserial port (a serial device or ``socket://``).

The agent frames requests itself rather than going through pymodbus' client: a
shared RS485 bus needs one short timeout per silent meter with no hidden retries,
no disconnect after a run of timeouts (a TCP converter would drop every meter),
and errors told apart by kind (timeout, CRC, exception reply) for the heartbeat.
The CRC is pymodbus' own.
"""

from __future__ import annotations

import struct
import termios
import time
from dataclasses import dataclass

from pymodbus.framer.rtu import FramerRTU

EXCEPTION_NAMES = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "device failure",
    6: "device busy",
    11: "gateway target failed to respond",
}


# pyserial's SerialException is an OSError; an unplugged USB adapter can also surface as
# termios.error (from tcflush) or ValueError (a closed file descriptor).
PORT_ERRORS = (OSError, ValueError, termios.error)


class ModbusError(Exception):
    """A failed transaction; ``kind`` is timeout, crc or exception (the heartbeat's kinds)."""

    def __init__(self, kind: str, message: str, code: int | None = None):
        super().__init__(message)
        self.kind = kind
        self.code = code


class PortError(Exception):
    """The port itself failed (adapter unplugged, converter unreachable)."""


def crc(frame: bytes) -> bytes:
    """The two CRC bytes an RTU frame ends with."""
    return FramerRTU.compute_CRC(frame).to_bytes(2, "big")


def read_request(unit: int, function_code: int, start: int, count: int) -> bytes:
    """An RTU read-registers request frame."""
    body = struct.pack(">BBHH", unit, function_code, start, count)
    return body + crc(body)


def write_request(unit: int, register: int, value: int) -> bytes:
    """An RTU write-single-register (06) request frame."""
    body = struct.pack(">BBHH", unit, 6, register, value)
    return body + crc(body)


@dataclass
class WireStats:
    """What went over the wire, for the benchmark and the heartbeat."""

    requests: int = 0
    tx_bytes: int = 0
    rx_bytes: int = 0


class RtuMaster:
    """Request/response transactions on an open pyserial port."""

    def __init__(self, port, timeout_s: float = 0.3):
        self.port = port
        self.timeout_s = timeout_s
        self.stats = WireStats()

    def read_registers(self, unit: int, function_code: int, start: int, count: int) -> list[int]:
        """Read ``count`` registers; raises ModbusError or PortError."""
        frame = self._transact(read_request(unit, function_code, start, count), unit,
                               function_code, expect=5 + 2 * count)
        if frame[2] != 2 * count:
            raise ModbusError("crc", f"byte count {frame[2]} for {count} registers")
        return list(struct.unpack(f">{count}H", frame[3:-2]))

    def write_register(self, unit: int, register: int, value: int) -> None:
        """Write one holding register (function 06); the meter echoes the request."""
        request = write_request(unit, register, value)
        frame = self._transact(request, unit, 6, expect=8)
        if frame != request:
            raise ModbusError("crc", "write echo differs from the request")

    def _transact(self, request: bytes, unit: int, function_code: int, expect: int) -> bytes:
        try:
            # A late answer to an earlier, timed-out request must not be taken for this one.
            self.port.reset_input_buffer()
            self.port.write(request)
            self.stats.requests += 1
            self.stats.tx_bytes += len(request)
            frame = self._receive(unit, function_code, expect)
        except PORT_ERRORS as exc:
            raise PortError(str(exc) or type(exc).__name__) from exc
        return frame

    def _receive(self, unit: int, function_code: int, expect: int) -> bytes:
        deadline = time.monotonic() + self.timeout_s
        buf = self._read_until(b"", 2, deadline)
        if not buf:
            raise ModbusError("timeout", f"no answer from address {unit}")
        if len(buf) >= 2 and buf[1] == function_code | 0x80:
            expect = 5
        buf = self._read_until(buf, expect, deadline)
        self.stats.rx_bytes += len(buf)
        if len(buf) < expect:
            raise ModbusError("crc", f"short frame from address {unit} ({len(buf)} bytes)")
        frame = buf[:expect]
        if crc(frame[:-2]) != frame[-2:]:
            raise ModbusError("crc", f"CRC error in the answer from address {unit}")
        if frame[0] != unit:
            raise ModbusError("crc", f"answer from address {frame[0]}, expected {unit}")
        if frame[1] == function_code | 0x80:
            code = frame[2]
            name = EXCEPTION_NAMES.get(code, "unknown")
            raise ModbusError("exception", f"exception {code} ({name}) from address {unit}", code)
        if frame[1] != function_code:
            raise ModbusError("crc", f"function {frame[1]} in the answer, expected {function_code}")
        return frame

    def _read_until(self, buf: bytes, size: int, deadline: float) -> bytes:
        while len(buf) < size:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.port.timeout = remaining
            chunk = self.port.read(size - len(buf))
            if not chunk:
                break
            buf += chunk
        return buf


def char_time_s(baudrate: int, bytesize: int = 8, parity: str = "N", stopbits: int = 2) -> float:
    """Seconds one character takes on the line (start bit, data, parity, stop bits)."""
    bits = 1 + bytesize + (0 if parity.upper() == "N" else 1) + stopbits
    return bits / baudrate


def transaction_time_s(request_bytes: int, response_bytes: int, char_s: float,
                       latency_s: float = 0.02) -> float:
    """Bus time of one transaction: request, 3.5-character gap, latency, response, gap."""
    return (request_bytes + response_bytes + 7) * char_s + latency_s
