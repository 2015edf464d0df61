from __future__ import annotations

import pytest

from assay.augment.tagger import LexiconTagger, contextual

SENTENCES = [
    "The quick brown fox jumps over the lazy dog .",
    "it bores me to tears , but the ending works .",
    "Kubrick's 2001 remains a dazzling , difficult film .",
    "she wants to run the race again in 3.5 hours",
]


def test_lexicon_tags_match_textblob_pattern_tagger():
    pytest.importorskip("textblob")
    from textblob.en import parser

    tagger = LexiconTagger()
    for sentence in SENTENCES:
        tokens = sentence.split()
        expected = [tag for _, tag in parser.find_tags(tokens)]
        assert tagger.tag(tokens) == expected


def test_context_rules_fix_the_lexicon_tag():
    tagger = LexiconTagger()
    tokens = ["it", "bores", "me", "."]
    tags = tagger.tag(tokens)
    assert tags[1] == "NNS"  # the lexicon's most frequent tag for "bores"
    assert contextual(tokens, tags, 1) == "VBZ"
    tokens = ["she", "wants", "to", "run"]
    assert contextual(tokens, tagger.tag(tokens), 3).startswith("VB")
