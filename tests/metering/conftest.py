"""Fixtures of the metering tests (the edge API's gateway and bus)."""

from tests.metering.edge_fixtures import bus  # noqa: F401
