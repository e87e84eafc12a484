"""Phone numbers: accept what people type in Uganda, Kenya and Nigeria, store E.164."""

from __future__ import annotations

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError


def normalise_phone(raw: str, *, default_region: str | None = None) -> str:
    """Return ``raw`` as E.164 (``+256772123456``) or raise ValidationError saying why.

    Local forms (``0772 123456``) are read in ``default_region``; numbers from
    outside the accepted countries are refused.
    """
    text = (raw or "").strip()
    if not text:
        raise ValidationError("Enter a phone number.")
    region = default_region or settings.MCOMS_DEFAULT_COUNTRY
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException as exc:
        raise ValidationError(f"{text!r} is not a phone number.") from exc
    accepted = settings.MCOMS_ACCEPTED_PHONE_REGIONS
    number_region = phonenumbers.region_code_for_number(number)
    if number_region not in accepted:
        raise ValidationError(f"{text!r} is not a number from {', '.join(accepted)}.")
    if not phonenumbers.is_valid_number(number):
        raise ValidationError(f"{text!r} is not a valid {number_region} number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def display_phone(e164: str) -> str:
    """A number formatted for people to read (international form)."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
