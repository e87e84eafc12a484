"""The page checks themselves catch what they are for."""

from __future__ import annotations

import pytest

from tests.browser.conftest import LOW_CONTRAST_JS, UNLABELLED_FIELDS_JS

pytestmark = pytest.mark.browser


def test_faint_text_and_unlabelled_fields_are_caught(screen):
    page = screen().page
    page.set_content(
        "<body style='background:#fff'>"
        "<p style='color:#bbb'>faint grey</p><p style='color:#333'>dark enough</p>"
        "<div style='background:#1f5f99'><span style='color:#fff'>white on blue</span>"
        "<span style='color:#2a4f7a'>navy on blue</span></div>"
        "<h1 style='color:#888;font-size:30px'>large grey heading</h1>"
        "<label for=a>A</label><input id=a><input id=b name=nolabel>"
        "</body>"
    )
    faint = page.evaluate(LOW_CONTRAST_JS)
    assert len(faint) == 2
    assert faint[0].startswith('p "faint grey" 1.9') and faint[1].startswith('span "navy on blue"')
    unlabelled = page.evaluate(UNLABELLED_FIELDS_JS)
    assert len(unlabelled) == 1 and 'name="nolabel"' in unlabelled[0]
