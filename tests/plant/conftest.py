"""Fixtures of the plant tests: the metering tests' gateway and bus (kla-block-a on Block A)."""

from tests.metering.edge_fixtures import bus  # noqa: F401
from tests.plant.readings import grid  # noqa: F401
