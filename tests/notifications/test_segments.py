"""SMS segment counting: GSM-7 (160/153 septets, extension characters cost two) vs UCS-2."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from notifications.segments import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    LIMITS,
    UCS2,
    count_segments,
    segment_info,
    split,
)

basic_text = st.text(alphabet=sorted(GSM7_BASIC), max_size=800)
gsm_text = st.text(alphabet=sorted(GSM7_BASIC | GSM7_EXTENSION), max_size=800)
NON_GSM = "ŋŊçâ😀ɛʼ“”"


def units(part: str, encoding: str) -> int:
    if encoding == GSM7:
        return sum(2 if ch in GSM7_EXTENSION else 1 for ch in part)
    return len(part.encode("utf-16-le")) // 2


def test_the_boundaries_of_one_and_two_segments():
    assert segment_info("a" * 160) == segment_info("a" * 160).__class__(GSM7, 160, 1)
    assert count_segments("a" * 161) == 2
    assert count_segments("a" * 306) == 2 and count_segments("a" * 307) == 3
    assert count_segments("€" * 80) == 1 and count_segments("€" * 81) == 2
    assert segment_info("ŋ" * 70) == segment_info("ŋ").__class__(UCS2, 70, 1)
    assert count_segments("ŋ" * 71) == 2
    assert count_segments("ŋ" * 134) == 2 and count_segments("ŋ" * 135) == 3
    assert count_segments("") == 1


def test_one_luganda_letter_makes_the_whole_message_unicode():
    text = "Webale kusasula! " * 5 + "Ŋŋ"
    assert segment_info(text).encoding == UCS2
    assert segment_info(text).segments == 2  # 87 characters: one GSM-7 SMS, two Unicode ones


def test_an_escape_pair_or_a_surrogate_pair_is_never_split():
    parts = split("a" * 152 + "€" + "a" * 10)
    assert parts == ["a" * 152, "€" + "a" * 10]
    parts = split("a" * 66 + "😀" + "a" * 10)
    assert parts == ["a" * 66, "😀" + "a" * 10]
    assert segment_info("😀" * 35).units == 70 and count_segments("😀" * 35) == 1


@given(basic_text)
def test_basic_gsm_text_takes_160_then_153_per_segment(text):
    info = segment_info(text)
    assert info.encoding == GSM7 and info.units == len(text)
    expected = 1 if len(text) <= 160 else math.ceil(len(text) / 153)
    assert info.segments == expected


@given(st.text(max_size=600))
def test_parts_join_back_to_the_text_and_each_fits_a_segment(text):
    info = segment_info(text)
    parts = split(text)
    assert "".join(parts) == text
    assert len(parts) == info.segments == count_segments(text)
    single, per_part = LIMITS[info.encoding]
    assert info.units == units(text, info.encoding)
    if len(parts) == 1:
        assert info.units <= single
    else:
        assert info.units > single
        assert all(0 < units(part, info.encoding) <= per_part for part in parts)
        # Greedy packing wastes at most one unit per part (a pair that did not fit).
        assert len(parts) <= math.ceil(info.units / (per_part - 1))


@given(gsm_text, st.sampled_from(NON_GSM), gsm_text)
def test_any_character_outside_gsm7_makes_it_ucs2(before, odd, after):
    info = segment_info(before + odd + after)
    assert info.encoding == UCS2
    assert info.units == len((before + odd + after).encode("utf-16-le")) // 2


@given(gsm_text)
def test_extension_characters_cost_two_septets(text):
    info = segment_info(text)
    assert info.encoding == GSM7
    assert info.units == len(text) + sum(ch in GSM7_EXTENSION for ch in text)
