"""The pieces of the USSD menu: a reply, one request's walk, and the kinds of screen.

See :mod:`notifications.selfservice.ussd` for how a session is replayed from the
answers Africa's Talking sends, and :mod:`~notifications.selfservice.menu` and
:mod:`~notifications.selfservice.menu_items` for the screens themselves.
"""

from __future__ import annotations

import abc
import datetime as dt
from dataclasses import dataclass, field

from customers.models import Customer
from mcoms.core import audit
from notifications.selfservice.models import UssdSession
from notifications.selfservice.texts import text

MAX_SCREEN = 160  # the whole reply, "CON "/"END " included
MAX_ACCOUNTS = 5
CHANNEL = "ussd"


@dataclass(frozen=True)
class Reply:
    """A screen: ``END`` closes the session, ``CON`` waits for an answer."""

    end: bool
    text: str

    def body(self) -> str:
        return ("END " if self.end else "CON ") + self.text


@dataclass
class Walk:
    """One request's view of the session: who is calling, and what the replay learned."""

    session: UssdSession
    phone: str
    customers: list[Customer]
    now: dt.datetime
    customer: Customer | None = None
    lang: str = "en"
    pin_ok: bool = False
    last: bool = False  # the state being rendered is the session's current screen

    def memo(self, key: str):
        return self.session.memo.get(key)

    def remember(self, key: str, value) -> None:
        self.session.memo[key] = value

    def t(self, key: str, **values) -> str:
        return text(key, self.lang, **values)

    @property
    def currency(self) -> str:
        return self.customer.site.currency


def fit(hint: str, screen: str) -> str:
    """``screen`` under ``hint``, cutting the hint down to the words that fit if need be."""
    room = MAX_SCREEN - len("CON ") - len(screen) - 1
    words, kept = hint.rstrip(".").split(), ""
    for word in words:
        if len(kept) + len(word) + 2 > room:
            break
        kept = f"{kept} {word}".strip()
    if not kept:
        return screen
    return (hint if len(hint) <= room else kept + ".") + "\n" + screen


# --- states -----------------------------------------------------------------------------------


@dataclass
class State(abc.ABC):
    """A screen of the menu: what it shows, and which screen each answer leads to."""

    hint: str = field(default="", kw_only=True)

    @abc.abstractmethod
    def screen(self, w: Walk) -> Reply:
        """The screen shown on arriving here."""

    @abc.abstractmethod
    def answer(self, w: Walk, part: str, at: int) -> State:
        """The state an answer leads to."""

    def again(self, hint: str) -> State:
        self.hint = hint
        return self

    def con(self, body: str) -> Reply:
        return Reply(False, fit(self.hint, body))


@dataclass
class Done(State):
    """A closing screen: further input changes nothing."""

    message: str = ""

    def screen(self, w: Walk) -> Reply:
        return Reply(True, self.message)

    def answer(self, w: Walk, part: str, at: int) -> State:
        return self


@dataclass
class Action(State):
    """A closing step that writes something, once, when its screen is first shown."""

    at: int = 0

    def screen(self, w: Walk) -> Reply:
        key = f"{type(self).__name__}:{self.at}"
        result = w.memo(key)
        if result is None:
            with audit.acting_as(label=f"{CHANNEL} {w.phone}", channel=CHANNEL):
                result = self.perform(w)
            w.remember(key, result)
        return Reply(True, result)

    @abc.abstractmethod
    def perform(self, w: Walk) -> str:
        """Do the step's one write; returns the closing text."""

    def answer(self, w: Walk, part: str, at: int) -> State:
        return self


def clean_words(part: str, low: int, high: int) -> str | None:
    words = " ".join(part.split())
    return words if low <= len(words) <= high and any(c.isalpha() for c in words) else None
