"""MCOMS edge agent: polls CHINT meters over Modbus RTU and forwards readings to MCOMS.

It imports nothing from Django or the platform's apps, so it installs on a
Raspberry Pi with only pymodbus, pyserial, PyYAML and httpx.
"""

__version__ = "1.1.0"
