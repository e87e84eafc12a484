"""The USSD menu's frame: a number without an account, the choice of account, the main
menu and the PIN that guards its items (which are in :mod:`.menu_items`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Q

from mcoms.core.models import Site
from notifications.selfservice import menu_items, pins
from notifications.selfservice.models import Interest
from notifications.selfservice.screens import (
    MAX_ACCOUNTS,
    MAX_SCREEN,
    Action,
    Done,
    State,
    Walk,
    clean_words,
)

# Unknown numbers ------------------------------------------------------------------------------


@dataclass
class UnknownWelcome(State):
    def screen(self, w):
        return self.con(w.t("unknown_welcome"))

    def answer(self, w, part, at):
        if part == "1":
            return AskName()
        languages = {"2": "en", "3": "sw", "4": "lg"}
        if part in languages:
            w.lang = languages[part]
            return UnknownWelcome()
        return self.again(w.t("hint_choice"))


@dataclass
class AskName(State):
    def screen(self, w):
        return self.con(w.t("ask_name"))

    def answer(self, w, part, at):
        name = clean_words(part, 2, 40)
        return AskPlace(name=name) if name else self.again(w.t("hint_name"))


@dataclass
class AskPlace(State):
    name: str = ""

    def screen(self, w):
        return self.con(w.t("ask_place"))

    def answer(self, w, part, at):
        place = clean_words(part, 2, 40)
        return (
            RegisterInterest(name=self.name, place=place, at=at)
            if place
            else self.again(w.t("hint_name"))
        )


@dataclass
class RegisterInterest(Action):
    name: str = ""
    place: str = ""

    def perform(self, w):
        site = Site.objects.filter(Q(name__iexact=self.place) | Q(code__iexact=self.place)).first()
        Interest.objects.create(
            phone=w.phone,
            name=self.name,
            place=self.place,
            site=site,
            language=w.lang,
            created_at=w.now,
        )
        return w.t("interest_done", name=self.name[:30], phone=w.phone)


# Accounts and the main menu -------------------------------------------------------------------


@dataclass
class ChooseAccount(State):
    def screen(self, w):
        accounts = list(enumerate(w.customers[:MAX_ACCOUNTS], 1))
        body = w.t("choose_account")
        named = "\n".join(f"{n} {c.account_number} {c.first_name[:12]}" for n, c in accounts)
        if len(body) + len(named) > MAX_SCREEN - 5:  # long account numbers: no names
            named = "\n".join(f"{n} {c.account_number}" for n, c in accounts)
        return self.con(body + "\n" + named)

    def answer(self, w, part, at):
        if part.isdigit() and 1 <= int(part) <= min(len(w.customers), MAX_ACCOUNTS):
            w.customer = w.customers[int(part) - 1]
            w.lang = w.customer.language
            return Main()
        return self.again(w.t("hint_choice"))


@dataclass
class Main(State):
    def screen(self, w):
        return self.con(w.t("main_menu", account=w.customer.account_number))

    def answer(self, w, part, at):
        if part == "7":
            return menu_items.LanguageMenu()
        target = MAIN_CHOICES.get(part)
        if target is None:
            return self.again(w.t("hint_choice"))
        return open_item(target) if w.pin_ok else PinGate(target=target, at=at)


# Main menu items behind the PIN, by their number.
MAIN_CHOICES = {
    "1": "balance",
    "2": "bill",
    "3": "usage",
    "4": "pay",
    "5": "fault",
    "6": "package",
    "8": "pin",
}


def open_item(target: str) -> State:
    """The first screen of a main-menu item."""
    return {
        "balance": lambda: menu_items.Show(which="balance"),
        "bill": lambda: menu_items.Show(which="bill"),
        "usage": menu_items.UsageMenu,
        "pay": menu_items.PayAmount,
        "fault": menu_items.FaultMenu,
        "package": menu_items.PackageMenu,
        "pin": NewPin,
    }[target]()


# The PIN --------------------------------------------------------------------------------------


def locked_screen(w: Walk, until: dt.datetime) -> Done:
    return Done(message=w.t("locked", time=pins.local_time(w.customer, until)))


@dataclass
class PinGate(State):
    """Asks for the PIN once per session before the chosen item (``target``)."""

    target: str = ""
    at: int = 0
    resend: bool = False  # the customer asked for another one-time PIN

    def screen(self, w):
        until = pins.locked_until(w.customer, now=w.now)
        if until:
            return locked_screen(w, until).screen(w)
        needed = self.resend or not pins.usable(w.customer, now=w.now)
        if w.last and w.memo(f"otp:{self.at}") is None and needed:
            pins.send_one_time_pin(w.customer, now=w.now, limited=True)
            w.remember(f"otp:{self.at}", True)
        if w.memo(f"otp:{self.at}"):
            return self.con(w.t("otp_prompt", phone=w.phone))
        return self.con(w.t("pin_prompt"))

    def answer(self, w, part, at):
        if part == "0" and w.memo(f"otp:{self.at}"):
            return PinGate(target=self.target, at=at, resend=True)
        if not pins.well_formed(part):
            return self.again(w.t("hint_pin_format"))
        result = w.memo(f"pin:{at}")
        if result is None:
            check = pins.verify(w.customer, part, now=w.now)
            result = {"ok": check.ok, "one_time": check.one_time, "left": check.left}
            if check.locked_until:
                result["locked"] = check.locked_until.isoformat()
            w.remember(f"pin:{at}", result)
        if result.get("locked"):
            return locked_screen(w, dt.datetime.fromisoformat(result["locked"]))
        if not result["ok"]:
            return self.again(w.t("hint_pin_wrong", left=result["left"]))
        w.pin_ok = True
        if result["one_time"]:
            # A one-time PIN opens the account once: the customer chooses their own now.
            return NewPin(target=None if self.target == "pin" else self.target)
        return open_item(self.target)


@dataclass
class NewPin(State):
    """Choosing a PIN: after a one-time PIN (then on to ``target``) or from the menu."""

    target: str | None = None

    def screen(self, w):
        return self.con(w.t("new_pin"))

    def answer(self, w, part, at):
        if not pins.well_formed(part):
            return self.again(w.t("hint_pin_format"))
        if pins.too_easy(part):
            return self.again(w.t("hint_pin_weak"))
        return ConfirmPin(target=self.target, pin=part)


@dataclass
class ConfirmPin(State):
    target: str | None = None
    pin: str = ""

    def screen(self, w):
        return self.con(w.t("confirm_pin"))

    def answer(self, w, part, at):
        if part != self.pin:
            return NewPin(target=self.target).again(w.t("hint_pin_mismatch"))
        if w.memo(f"setpin:{at}") is None:
            pins.set_pin(w.customer, self.pin, now=w.now)
            w.remember(f"setpin:{at}", True)
        if self.target is None:
            return Done(message=w.t("pin_changed"))
        return open_item(self.target)
