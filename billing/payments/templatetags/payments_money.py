"""``{{ amount|money:currency }}``: money as people read it (``20,000``; ``1,234.50``)."""

from __future__ import annotations

from decimal import Decimal

from django import template

from billing.payments.receipts import format_money

register = template.Library()


@register.filter
def money(amount, currency: str = "UGX") -> str:
    if amount in (None, ""):
        return "—"
    return format_money(Decimal(amount), currency or "UGX")
