"""In production settings a PIN is stored as a memory-hard scrypt hash, never as digits."""

from __future__ import annotations

from mcoms import settings as project
from notifications.selfservice import pins
from notifications.selfservice.models import CustomerPin
from tests import factories


def test_pins_are_hashed_with_the_interactive_scrypt_hasher(org, settings):
    settings.PASSWORD_HASHERS = project.PASSWORD_HASHERS  # not the tests' fast MD5
    settings.USSD_PIN_HASHER = project.USSD_PIN_HASHER
    customer = factories.customer(org.block_a)

    pins.set_pin(customer, "2580")

    stored = CustomerPin.objects.get(customer=customer).pin_hash
    assert stored.startswith("scrypt_pin$16384$") and "2580" not in stored
    assert pins.verify(customer, "2580").ok
    assert not pins.verify(customer, "2581").ok
