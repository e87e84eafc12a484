"""Payments: money coming in (cash, mobile money, cards) and going back out.

Providers sit behind one interface (:mod:`billing.payments.providers`); every payment is
recorded once per provider transaction id, posted to the ledger, allocated to the
oldest open invoices and receipted. See docs/payments.md.
"""
