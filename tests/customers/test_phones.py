"""Phone numbers are accepted as people type them and stored E.164."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from hypothesis import given
from hypothesis import strategies as st

from customers.phones import normalise_phone


@pytest.mark.parametrize(
    ("typed", "region", "stored"),
    [
        ("0772 123456", "UG", "+256772123456"),
        ("+256 772 123 456", "UG", "+256772123456"),
        ("256772123456", "UG", "+256772123456"),
        ("0712 345678", "KE", "+254712345678"),
        ("+254-712-345-678", "UG", "+254712345678"),
        ("0803 123 4567", "NG", "+2348031234567"),
        ("+234 803 123 4567", "KE", "+2348031234567"),
    ],
)
def test_accepted_formats(typed, region, stored):
    assert normalise_phone(typed, default_region=region) == stored


@pytest.mark.parametrize(
    ("typed", "why"),
    [
        ("", "Enter a phone number"),
        ("hello", "not a phone number"),
        ("+1 202 555 0143", "not a number from UG, KE, NG"),
        ("0772 12", "not a valid UG number"),
    ],
)
def test_refused_with_a_reason(typed, why):
    with pytest.raises(ValidationError) as exc:
        normalise_phone(typed, default_region="UG")
    assert why in " ".join(exc.value.messages)


@given(st.text(max_size=40))
def test_any_text_gives_e164_or_a_clear_error(text):
    try:
        result = normalise_phone(text, default_region="UG")
    except ValidationError as exc:
        assert exc.messages
    else:
        assert result.startswith("+2") and result[1:].isdigit()
