"""The main menu's items: balance, bill, usage, paying, faults, packages, language.

"0" goes back to the main menu (:class:`notifications.selfservice.menu.Main`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from billing import ledger
from billing.models import ServicePackage
from customers import services as customer_services
from customers.models import Customer, ServiceRequest
from notifications.selfservice import account, payments
from notifications.selfservice.screens import CHANNEL, Action, Done, Reply, State, clean_words
from notifications.selfservice.texts import FAULT_CHOICES, OTHER_COMPLAINT

MAX_PACKAGES = 4
MAX_AMOUNT = Decimal(5_000_000)
AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?")


def back() -> State:
    """The main menu (imported here: the main menu imports these items)."""
    from notifications.selfservice.menu import Main

    return Main()


# Balance, bill, usage -------------------------------------------------------------------------


@dataclass
class Show(State):
    which: str = "balance"

    def screen(self, w):
        if self.which == "balance":
            return Reply(True, account.balance_text(w.customer, w.lang))
        if self.which == "bill":
            return Reply(True, account.last_bill_text(w.customer, w.lang))
        return Reply(True, account.usage_text(w.customer, w.lang, self.which, w.now))

    def answer(self, w, part, at):
        return self


@dataclass
class UsageMenu(State):
    def screen(self, w):
        return self.con(w.t("usage_menu"))

    def answer(self, w, part, at):
        choices = {"1": "today", "2": "month", "3": "months"}
        if part == "0":
            return back()
        if part in choices:
            return Show(which=choices[part])
        return self.again(w.t("hint_choice"))


# Paying ---------------------------------------------------------------------------------------


@dataclass
class PayAmount(State):
    def screen(self, w):
        owed = account.balance(w.customer).owed
        if owed > 0:
            return self.con(
                w.t("pay_amount_owed", cur=w.currency, owed=account.money(owed, w.currency))
            )
        return self.con(w.t("pay_amount", cur=w.currency))

    def answer(self, w, part, at):
        cur = w.currency
        amount = parse_amount(part)
        if amount is None or amount != ledger.round_money(amount, cur):
            return self.again(w.t("hint_amount", cur=cur))
        low = ledger.minor_unit(cur) if cur != "UGX" else Decimal(500)
        if not low <= amount <= MAX_AMOUNT:
            high = account.money(MAX_AMOUNT, cur)
            return self.again(
                w.t("hint_amount_range", cur=cur, low=account.money(low, cur), high=high)
            )
        return PayConfirm(amount=str(ledger.round_money(amount, cur)))


def parse_amount(part: str) -> Decimal | None:
    """``5000``, ``5,000`` or ``12.50`` as a Decimal; None for anything else."""
    match = AMOUNT.fullmatch(part.replace(",", ""))
    return Decimal(match.group(0)) if match else None


@dataclass
class PayConfirm(State):
    amount: str = "0"

    def screen(self, w):
        cur = w.currency
        return self.con(
            w.t(
                "pay_confirm",
                cur=cur,
                amount=account.money(Decimal(self.amount), cur),
                phone=w.phone,
            )
        )

    def answer(self, w, part, at):
        if part == "1":
            return StartPayment(amount=self.amount, at=at)
        if part == "2":
            return Done(message=w.t("cancelled"))
        return self.again(w.t("hint_choice"))


@dataclass
class StartPayment(Action):
    amount: str = "0"

    def perform(self, w):
        payments.queue(w.customer, Decimal(self.amount), w.phone)
        return w.t("pay_started")


# Faults, complaints and packages --------------------------------------------------------------


@dataclass
class FaultMenu(State):
    def screen(self, w):
        return self.con(w.t("fault_menu"))

    def answer(self, w, part, at):
        if part == "0":
            return back()
        if part in FAULT_CHOICES:
            kind, what = FAULT_CHOICES[part]
            return OpenRequest(kind=kind, description=f"Reported by USSD: {what}", at=at)
        if part == OTHER_COMPLAINT:
            return Describe()
        return self.again(w.t("hint_choice"))


@dataclass
class Describe(State):
    def screen(self, w):
        return self.con(w.t("describe"))

    def answer(self, w, part, at):
        words = clean_words(part, 3, 120)
        if not words:
            return self.again(w.t("hint_text"))
        return OpenRequest(kind="complaint", description=f"Reported by USSD: {words}", at=at)


@dataclass
class OpenRequest(Action):
    kind: str = "fault"
    description: str = ""

    def perform(self, w):
        request = customer_services.service_request_create(
            customer=w.customer, kind=self.kind, description=self.description, channel=CHANNEL
        )
        return w.t("request_done", number=request.pk)


def other_packages(customer: Customer) -> list[ServicePackage]:
    return list(
        ServicePackage.objects.filter(active=True)
        .exclude(pk=customer.package_id)
        .order_by("load_limit_w", "name")[:MAX_PACKAGES]
    )


def package_label(package: ServicePackage) -> str:
    return package.name[:22]


@dataclass
class PackageMenu(State):
    def screen(self, w):
        packages = other_packages(w.customer)
        if not packages:
            return Reply(True, w.t("no_packages"))
        lines = "\n".join(f"{n} {package_label(p)}" for n, p in enumerate(packages, 1))
        return self.con(w.t("package_menu", lines=lines))

    def answer(self, w, part, at):
        if part == "0":
            return back()
        packages = other_packages(w.customer)
        if part.isdigit() and 1 <= int(part) <= len(packages):
            return PackageConfirm(package_id=packages[int(part) - 1].pk)
        if not packages:
            return Done(message=w.t("no_packages"))
        return self.again(w.t("hint_choice"))


@dataclass
class PackageConfirm(State):
    package_id: int = 0

    def screen(self, w):
        package = ServicePackage.objects.get(pk=self.package_id)
        return self.con(w.t("package_confirm", name=package_label(package)))

    def answer(self, w, part, at):
        if part == "1":
            return RequestPackage(package_id=self.package_id, at=at)
        if part == "2":
            return Done(message=w.t("cancelled"))
        return self.again(w.t("hint_choice"))


@dataclass
class RequestPackage(Action):
    package_id: int = 0

    def perform(self, w):
        package = ServicePackage.objects.get(pk=self.package_id)
        request = customer_services.service_request_create(
            customer=w.customer,
            kind=ServiceRequest.Kind.PACKAGE_CHANGE,
            requested_package=package,
            description=f"Asked by USSD: change to {package.name}",
            channel=CHANNEL,
        )
        return w.t("package_done", number=request.pk, name=package_label(package))


# Language -------------------------------------------------------------------------------------


@dataclass
class LanguageMenu(State):
    def screen(self, w):
        return self.con(w.t("language_menu"))

    def answer(self, w, part, at):
        languages = {"1": "en", "2": "sw", "3": "lg"}
        if part == "0":
            return back()
        if part in languages:
            return SetLanguage(language=languages[part], at=at)
        return self.again(w.t("hint_choice"))


@dataclass
class SetLanguage(Action):
    language: str = "en"

    def perform(self, w):
        customer_services.customer_update(customer=w.customer, language=self.language)
        w.lang = self.language
        return w.t("language_done")
