from __future__ import annotations

import polars as pl

from assay import from_records
from assay.curate.clean import CleanTransform
from assay.curate.html_text import html_to_text, strip_html

REVIEW = """<!DOCTYPE html>
<html><head><title>Review</title>
<style>.stars { color: gold; }</style>
<script type="text/javascript">window.dataLayer = [{"page": "review"}];</script>
</head>
<body><!-- ad slot -->
<div class="review"><h2>A slow burn that pays off</h2>
<p>The first hour drags&hellip; but the last act is <em>superb</em>.</p>
<p>Rating: 4/5 &mdash; &quot;worth it&quot; &amp; then some.<br/>Spoilers: none.</p>
</div></body></html>"""


def clean(texts: list[str]) -> list[str]:
    corpus = from_records(texts, ["x"] * len(texts))
    return CleanTransform().apply(corpus).corpus["text"].to_list()


def test_script_and_style_bodies_are_dropped_not_kept_as_text():
    # The tag regex kept the script's code: "var x = 1; Great movie".
    assert clean(["<script>var x = 1;</script>Great movie"]) == ["Great movie"]
    assert clean(["<STYLE>p {margin: 0}</STYLE>Loved it"]) == ["Loved it"]


def test_comparisons_in_plain_text_are_left_alone():
    # The tag regex read "<y and y>" as a tag: "if x z the plot fails".
    texts = ["if x<y and y>z the plot fails", "3 < 4 and 5 > 2, a<b", "AT&T <3 this film"]
    assert clean(texts) == texts


def test_unknown_tags_in_html_rows_stay_text():
    assert html_to_text("<p>if x<y &amp; y>z</p>") == " if x<y & y>z "


def test_a_scraped_review_becomes_its_readable_text():
    assert clean([REVIEW]) == [
        "Review A slow burn that pays off The first hour drags\u2026 but the last act is "
        'superb. Rating: 4/5 \u2014 "worth it" & then some. Spoilers: none.'
    ]


def test_plain_rows_skip_the_parser():
    plain = pl.Series("text", ["a plain review", "x<y and y>z", None])
    assert strip_html(plain) is plain  # no row looked like HTML: the series comes back as is
    mixed = strip_html(pl.Series("text", ["Tom &amp; Jerry", "x<y", None]))
    assert mixed.to_list() == ["Tom & Jerry", "x<y", None]
