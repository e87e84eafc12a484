"""``{{ amount|money:currency }}``: an amount with thousands separators in its minor unit."""

from django import template

from billing.collections.money import fmt

register = template.Library()


@register.filter
def money(amount, currency: str = "UGX") -> str:
    return fmt(amount, currency)
