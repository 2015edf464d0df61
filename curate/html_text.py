"""HTML to text: what a browser would show of a scraped review, and nothing else.

Only rows that hold an HTML element tag, a comment, a doctype or an entity go through the
parser (a vectorised check picks them), so plain text, including comparisons such as
`x<y and y>z`, is never touched. In those rows the stdlib parser drops tags, comments and
the bodies of `script` and `style`, decodes entities, and gives back any `<...>` whose name
is not an HTML element as the text it was.
"""

from __future__ import annotations

import html
from html.parser import HTMLParser

import numpy as np
import polars as pl

# The elements of HTML (and a few old ones scraped pages still carry): a `<name ...>` with
# another name is text, not markup.
_ELEMENT_NAMES = """a abbr acronym address area article aside audio b base basefont bdi bdo big
    blink blockquote body br button canvas caption center cite code col colgroup data datalist
    dd del details dfn dialog dir div dl dt em embed fieldset figcaption figure font footer
    form frame frameset h1 h2 h3 h4 h5 h6 head header hgroup hr html i iframe img input ins
    kbd label legend li link main map mark marquee menu meta meter nav nobr noframes noscript
    object ol optgroup option output p param picture pre progress q rp rt ruby s samp script
    search section select small source span strike strong style sub summary sup svg table
    tbody td template textarea tfoot th thead time title tr track tt u ul var video wbr"""
ELEMENTS = frozenset(_ELEMENT_NAMES.split())
# Inline elements run on with the words around them ("<b>great</b>ly"); every other tag
# separates words, as a browser lays out </p><p> or <br>.
_INLINE_NAMES = """a abbr acronym b bdi bdo big blink cite code data del dfn em font i ins kbd
    mark nobr q rp rt ruby s samp small span strike strong sub sup time tt u var wbr"""
INLINE = frozenset(_INLINE_NAMES.split())
# Their contents are code or markup for the browser, not text for a reader.
HIDDEN = frozenset({"script", "style", "template"})

_NAMES = "|".join(sorted(ELEMENTS, key=len, reverse=True))
HTML_HINT = (
    rf"(?i)</?(?:{_NAMES})(?:\s[^<>]*)?/?>"  # an element tag
    r"|<!--|<!doctype"
    r"|&(?:[a-z][a-z0-9]{1,31}|#[0-9]{1,7}|#x[0-9a-f]{1,6});"  # an entity
)


class _TextExtractor(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside script, style or template

    def handle_starttag(self, tag: str, attrs) -> None:
        if tag not in ELEMENTS:
            self._unknown()
        elif tag in HIDDEN:
            self.hidden += 1
        elif tag not in INLINE:
            self.parts.append(" ")

    def handle_startendtag(self, tag: str, attrs) -> None:
        if tag not in ELEMENTS:
            self._unknown()
        elif tag not in INLINE:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag not in ELEMENTS:
            self._text(f"</{tag}>")
        elif tag in HIDDEN:
            self.hidden = max(0, self.hidden - 1)
        elif tag not in INLINE:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self._text(data)

    def _unknown(self) -> None:
        # The parser hands over an unknown tag raw; its entities are decoded as the text's.
        self._text(html.unescape(self.get_starttag_text() or ""))

    def _text(self, text: str) -> None:
        if not self.hidden:
            self.parts.append(text)


def html_to_text(text: str) -> str:
    """The text of one HTML fragment: tags, comments and script/style bodies removed,
    entities decoded, unknown `<...>` kept as written."""
    parser = _TextExtractor()
    parser.feed(text)
    parser.close()
    return "".join(parser.parts)


def strip_html(text: pl.Series) -> pl.Series:
    """`html_to_text` on the rows that look like HTML; the others come back unchanged."""
    flagged = text.str.contains(HTML_HINT).fill_null(False).to_numpy()
    if not flagged.any():
        return text
    values = text.to_list()
    for i in np.flatnonzero(flagged):
        values[i] = html_to_text(values[i])
    return pl.Series(text.name, values, dtype=pl.String)
