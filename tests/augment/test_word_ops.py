from __future__ import annotations

from collections import Counter

from assay.augment.base import Protected, n_edits, split_token
from assay.augment.word_ops import delete, insert, replace, shuffle_words, swap

SENTENCE = (
    "the director films quiet scenes , builds tension slowly and rewards patient viewers "
    "with a haunting finale ."
)


def changed(a: list[str], b: list[str]) -> int:
    return sum(x != y for x, y in zip(a, b, strict=True))


def test_edit_count_follows_wei_and_zou_rule():
    assert n_edits(20, 0.1, 1, None) == 2
    assert n_edits(5, 0.1, 1, None) == 1
    assert n_edits(40, 0.5, 1, 3) == 3
    assert n_edits(9, 0.1, 0, None) == 0
    assert n_edits(21, 0.1, 1, None, "ceil") == 3
    assert n_edits(25, 0.1, 1, None, "stochastic", 0.49) == 2
    assert n_edits(25, 0.1, 1, None, "stochastic", 0.51) == 3


def test_split_token_keeps_punctuation_apart():
    assert split_token('"film,') == ('"', "film", ",")
    assert split_token("n't") == ("", "n't", "")
    assert split_token("--") == ("--", "", "")


def test_replace_edits_exactly_n_words_and_never_stop_words(draw, table):
    tokens = SENTENCE.split()
    entries = table().entries(tokens)
    out = replace(tokens, entries, 3, draw)
    assert changed(tokens, out) == 3
    for before, after in zip(tokens, out, strict=True):
        if before != after:
            assert before not in {"the", "and", "with", "a", ","}
            assert before[:-1] in after  # fake synonyms embed the word (inflected)


def test_replace_respects_part_of_speech(draw, table):
    tokens = SENTENCE.split()
    entries = table().entries(tokens)
    out = replace(tokens, entries, 50, draw)
    # Brill lexicon tags: director NN -> n, builds VBZ -> v, quiet JJ -> a, slowly RB -> r
    got = {b: a[0] for a, b in zip(out, tokens, strict=True) if a != b}
    assert got["director"] == "n"
    assert got["builds"] == "v"
    assert got["quiet"] == "a"
    assert got["slowly"] == "r"


def test_protected_terms_and_negations_are_never_edited(draw, table):
    tokens = [
        "the",
        "special",
        "effects",
        "are",
        "not",
        "tedious",
        "but",
        "the",
        "plot",
        "never",
        "lands",
    ]
    entries = table(protected=Protected(["special effects", "Plot"])).entries(tokens)
    out = replace(tokens, entries, 50, draw)
    kept = {t for t, o in zip(tokens, out, strict=True) if t == o}
    assert {"special", "effects", "plot", "not", "never"} <= kept
    assert out[5].endswith("tedious") and out[5] != "tedious"
    gone = delete(tokens, entries, 50, draw)
    assert {"special", "effects", "plot", "not", "never"} <= set(gone)


def test_insert_adds_exactly_n_synonyms(draw, table):
    tokens = SENTENCE.split()
    out = insert(tokens, table().entries(tokens), 2, draw)
    assert len(out) == len(tokens) + 2
    extra = Counter(out) - Counter(tokens)
    assert sum(extra.values()) == 2
    assert all(w[1] in "12" and w[0] in "nvar" for w in extra)


def test_delete_removes_exactly_n_words_and_keeps_one(draw, table):
    tokens = SENTENCE.split()
    entries = table().entries(tokens)
    out = delete(tokens, entries, 2, draw)
    assert len(out) == len(tokens) - 2
    assert not Counter(out) - Counter(tokens)
    short = ["great"]
    assert delete(short, table().entries(short), 3, draw) is None


def test_swap_and_shuffle_keep_the_words_and_the_punctuation(draw, table):
    tokens = SENTENCE.split()
    entries = table().entries(tokens)
    for out in (swap(tokens, entries, 2, draw), shuffle_words(tokens, entries, 0, draw)):
        assert out != tokens
        assert Counter(out) == Counter(tokens)
        assert out[5] == "," and out[-1] == "."


def test_operations_are_deterministic_for_a_seed(table):
    import numpy as np

    from assay.augment.base import draws

    tokens = SENTENCE.split()
    entries = table().entries(tokens)
    runs = []
    for _ in range(2):
        d = draws(np.random.default_rng(3))
        runs.append([op(tokens, entries, 2, d) for op in (replace, insert, swap, delete)])
    assert runs[0] == runs[1]


def test_attached_punctuation_and_case_survive_replacement(draw, table):
    tokens = ['"Haunting,', "finale!"]
    out = replace(tokens, table().entries(tokens), 2, draw)
    assert out[0].startswith('"') and out[0].endswith(",") and out[0][1].isupper()
    assert out[1].endswith("!")
