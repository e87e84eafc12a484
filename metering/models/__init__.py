"""Metering's tables: the inventory (meters, gateways, lifecycle), the edge link
(tokens, batches, heartbeats, commands, discoveries) and the meter data
(readings, quarantine, rollups)."""

from metering.models.alerts import Alert, Incident, SiteWatchSettings
from metering.models.edge import (
    BusSlot,
    Discovery,
    EdgeBatch,
    EdgeCommand,
    GatewayToken,
    MeterComms,
)
from metering.models.inventory import Gateway, Meter, MeterAssignment, MeterEvent
from metering.models.manual import ManualReading
from metering.models.readings import (
    DailyUsage,
    HourlyUsage,
    QuarantinedReading,
    Reading,
    ReadingPartition,
    SiteDailyUsage,
    SiteHourlyUsage,
)

__all__ = [
    "Alert",
    "BusSlot",
    "DailyUsage",
    "Discovery",
    "EdgeBatch",
    "EdgeCommand",
    "Gateway",
    "GatewayToken",
    "HourlyUsage",
    "Incident",
    "ManualReading",
    "Meter",
    "MeterAssignment",
    "MeterComms",
    "MeterEvent",
    "QuarantinedReading",
    "Reading",
    "ReadingPartition",
    "SiteDailyUsage",
    "SiteHourlyUsage",
    "SiteWatchSettings",
]
