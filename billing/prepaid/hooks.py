"""What the payments module calls after it records a payment.

``payment_received(payment)`` is called once the payment's ledger posting exists (so
the customer's receivable balance already includes it), inside the transaction that
records the payment: the token purchase and its ledger posting then stand or fall with
the payment. It never raises for a business reason (a tariff that cannot price the
money, a package without a tariff): the purchase is kept *held* and the money stays on
the account as credit for staff to resolve. Calling it again for the same payment does
nothing new.

The payment is duck-typed: ``.customer``, ``.amount``, ``.currency``, ``.pk`` and
``.received_at`` are all that is read, so this module never imports billing.payments.
"""

from __future__ import annotations

from billing.models import ServicePackage

Mode = ServicePackage.PaymentMode


def payment_received(payment) -> None:
    """Act on a recorded payment according to the customer's payment mode.

    - prepaid tokens: convert the money into kWh (:func:`billing.prepaid.tokens.sell`);
    - prepaid credit: ask for reconnection when the credit is now above zero and a
      disconnect is open or was carried out (:func:`billing.prepaid.credit.topped_up`);
    - postpaid (or no package): nothing.
    """
    package = payment.customer.package
    mode = package.payment_mode if package is not None else Mode.POSTPAID
    if mode == Mode.PREPAID_TOKEN:
        from billing.prepaid import tasks, tokens
        from mcoms.core import outbox

        purchase = tokens.sell(payment)
        if purchase.status == purchase.Status.AWAITING_VEND:
            pk = purchase.pk
            outbox.publish(tasks.vend_token, (pk,))  # vend_waiting retries a lost one
    elif mode == Mode.PREPAID_CREDIT:
        from billing.prepaid import credit

        credit.topped_up(payment.customer, reference=f"payment {payment.pk}")


def payment_reversed(payment, *, reason: str = "", by=None) -> None:
    """Act on a payment the payments module has just reversed (its posting reversed).

    - prepaid tokens: cancel the purchase and reverse the sale, unless the token was
      already issued (:func:`billing.prepaid.tokens.cancel`);
    - prepaid credit: look at the credit again (a low-balance message or a disconnect
      request if the reversal took it below the line or to zero);
    - postpaid: nothing.
    """
    package = payment.customer.package
    mode = package.payment_mode if package is not None else Mode.POSTPAID
    if mode == Mode.PREPAID_TOKEN:
        from billing.prepaid import tokens

        tokens.cancel(payment, reason=reason, by=by)
    elif mode == Mode.PREPAID_CREDIT:
        from billing.prepaid import credit
        from billing.prepaid.models import CreditAccount

        if CreditAccount.objects.filter(customer=payment.customer).exists():
            credit.check_balance(payment.customer)
