"""The RS485 port: opening it (serial device or ``socket://``), reopening it, locking it."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import tempfile
from dataclasses import dataclass

import serial

from .modbus import ModbusError, PortError, RtuMaster

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SerialSettings:
    """Line settings; the site's CHINT meters use 9600 8N2."""

    baudrate: int = 9600
    parity: str = "N"
    stopbits: int = 2
    bytesize: int = 8
    timeout_s: float = 0.3


def open_port(url: str, settings: SerialSettings):
    """Open a serial device or ``socket://host:port`` (RTU frames over TCP)."""
    kwargs = {"baudrate": settings.baudrate, "parity": settings.parity,
              "stopbits": settings.stopbits, "bytesize": settings.bytesize,
              "timeout": settings.timeout_s}
    if not url.startswith("socket://"):
        # A second process writing on the same bus would garble both conversations.
        kwargs["exclusive"] = True
    return serial.serial_for_url(url, **kwargs)


class Bus:
    """A Modbus master that survives its adapter being unplugged and plugged back."""

    def __init__(self, url: str, settings: SerialSettings | None = None):
        self.url = url
        self.settings = settings or SerialSettings()
        self.master: RtuMaster | None = None
        self.last_error: str | None = None
        self._stats = None

    @property
    def port_open(self) -> bool:
        """Whether the port is open right now."""
        return self.master is not None

    @property
    def stats(self):
        """Wire statistics across reopenings."""
        return self.master.stats if self.master else self._stats

    def ensure_open(self) -> bool:
        """Open the port if it is closed; False (and the reason logged once) if it cannot be."""
        if self.master is not None:
            return True
        try:
            port = open_port(self.url, self.settings)
        except (OSError, ValueError) as exc:
            message = f"cannot open {self.url}: {exc}"
            if message != self.last_error:
                log.error("%s (retrying every sweep)", message)
            self.last_error = message
            return False
        self.master = RtuMaster(port, self.settings.timeout_s)
        if self._stats is not None:
            self.master.stats = self._stats
        if self.last_error:
            log.warning("%s is open again", self.url)
        self.last_error = None
        return True

    def apply_settings(self, settings: SerialSettings) -> None:
        """Use new line settings from the next transaction on."""
        if settings != self.settings:
            self.settings = settings
            self.close()

    def close(self) -> None:
        """Close the port (it is reopened on next use)."""
        if self.master is not None:
            self._stats = self.master.stats
            with contextlib.suppress(OSError):
                self.master.port.close()
            self.master = None

    def read_registers(self, unit: int, function_code: int, start: int, count: int) -> list[int]:
        """Read registers; raises ModbusError, or PortError after closing the port."""
        return self._call(lambda m: m.read_registers(unit, function_code, start, count))

    def write_register(self, unit: int, register: int, value: int) -> None:
        """Write one holding register."""
        self._call(lambda m: m.write_register(unit, register, value))

    def _call(self, fn):
        if not self.ensure_open():
            raise PortError(self.last_error or "port closed")
        try:
            try:
                return fn(self.master)
            except ModbusError as exc:
                # An unplugged adapter can look like a silent meter for a moment; its device
                # node going away says otherwise.
                if exc.kind == "timeout" and self._device_gone():
                    raise PortError(f"{self.url} has gone away") from exc
                raise
        except PortError as exc:
            self.last_error = f"{self.url}: {exc}"
            log.error("port failed: %s; it will be reopened", exc)
            self.close()
            raise

    def _device_gone(self) -> bool:
        return not self.url.startswith("socket://") and not os.path.exists(self.url)

    def probe_silently(self, unit: int, function_code: int, start: int, count: int):
        """Read, returning (words, None) or (None, ModbusError) instead of raising it."""
        try:
            return self.read_registers(unit, function_code, start, count), None
        except ModbusError as exc:
            return None, exc


class PortBusy(Exception):
    """Another process (normally the service) holds the port."""


def lock_dir() -> str:
    """Where port lock files live: /run/lock (world-writable on Debian) or an override."""
    env = os.environ.get("MCOMS_EDGE_LOCK_DIR")
    if env:
        return env
    return "/run/lock" if os.access("/run/lock", os.W_OK) else tempfile.gettempdir()


class PortLock:
    """An advisory lock per port, held by the service for its whole life."""

    def __init__(self, url: str, owner: str):
        target = url if url.startswith("socket://") else os.path.realpath(url)
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", target).strip("_")
        self.path = os.path.join(lock_dir(), f"mcoms-edge.{name}.lock")
        self.owner = owner
        self._fd: int | None = None

    def acquire(self) -> PortLock:
        """Take the lock or raise PortBusy naming who holds it."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
            if os.fstat(fd).st_uid == os.getuid():
                os.fchmod(fd, 0o666)  # the service and a person at the console share it
        except PermissionError:
            fd = os.open(self.path, os.O_RDONLY)  # flock works on a read-only descriptor
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
            os.close(fd)
            raise PortBusy(holder) from None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{self.owner} (pid {os.getpid()})\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Let go of the lock."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> PortLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
