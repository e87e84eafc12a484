"""How many SMS segments a text costs: GSM-7 (160/153 per segment) or UCS-2 (70/67).

A text made only of characters from the GSM 03.38 default alphabet and its
extension table travels as 7-bit septets: 160 in a single SMS, 153 per part of a
concatenated one (the header takes the rest). Each extension character
(``^ { } \\ [ ~ ] | €`` and form feed) costs two septets, an escape and the
character, and the pair is never split across parts. Any other character makes
the whole text UCS-2: 70 UTF-16 code units in one SMS, 67 per part, and a
surrogate pair (an emoji, say) is never split either.

Providers charge per segment, so the count is recorded on each message.
"""

from __future__ import annotations

from dataclasses import dataclass

GSM7 = "gsm7"
UCS2 = "ucs2"

#: The GSM 03.38 default alphabet (without the escape code itself).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
#: The extension table: each costs an escape septet plus its own.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

#: (units in a single message, units per part of a concatenated message)
LIMITS = {GSM7: (160, 153), UCS2: (70, 67)}


@dataclass(frozen=True)
class SegmentInfo:
    """The encoding a text needs, its length in that encoding's units, and its segments."""

    encoding: str
    units: int
    segments: int


def encoding_for(text: str) -> str:
    """``"gsm7"`` when every character is in the GSM-7 tables, else ``"ucs2"``."""
    allowed = GSM7_BASIC | GSM7_EXTENSION
    return GSM7 if all(ch in allowed for ch in text) else UCS2


def _unit_cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1  # a surrogate pair in UTF-16


def split(text: str) -> list[str]:
    """The parts ``text`` is sent as; joined together they give ``text`` back.

    An empty text is still one (empty) message.
    """
    encoding = encoding_for(text)
    single, per_part = LIMITS[encoding]
    costs = [_unit_cost(ch, encoding) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start, used = 0, 0
    for index, cost in enumerate(costs):
        if used + cost > per_part:
            parts.append(text[start:index])
            start, used = index, 0
        used += cost
    parts.append(text[start:])
    return parts


def segment_info(text: str) -> SegmentInfo:
    """The encoding, length in units and number of segments of ``text``."""
    encoding = encoding_for(text)
    units = sum(_unit_cost(ch, encoding) for ch in text)
    return SegmentInfo(encoding=encoding, units=units, segments=len(split(text)))


def count_segments(text: str) -> int:
    """How many SMS segments sending ``text`` takes."""
    return len(split(text))
