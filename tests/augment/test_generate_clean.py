from __future__ import annotations

import pytest

from assay.augment.generate_clean import clean, unquote

SOURCE = "the film is a total bore ."
WANT = "The movie is utterly boring."


@pytest.mark.parametrize(
    "output",
    [
        WANT,
        f"Sure! Here is a paraphrase: {WANT}",
        f"Sure! Here's a paraphrase of the sentence:\n\n{WANT}",
        f"Paraphrase: {WANT}",
        f"Paraphrased sentence: {WANT}",
        f"Here's a rewritten version:\n{WANT}",
        f"A paraphrase would be: {WANT}",
        f'"{WANT}"',
        f"“{WANT}”",
        f'Paraphrase: "{WANT}"',
        f"1. {WANT}\n2. The film bores you to tears.",
        f"1. {WANT} 2. The film bores you to tears.",
        f"- {WANT}",
        f"{WANT}\n\nThis paraphrase keeps the meaning while changing the words.",
        f"{WANT} (Note: I replaced 'bore' with 'boring'.)",
        f"Original sentence: {SOURCE}\nParaphrase: {WANT}",
        f"The original sentence was: The film is a total bore.\n\nA paraphrase would be: {WANT}",
        f"{SOURCE}\n{WANT}",
        f"Certainly!\n\n{WANT}",
        f'To make the sentence more idiomatic, I\'ll rephrase it: "{WANT}"',
        f'The sentence is rephrased to "{WANT}"',
        f"A more accurate alternative would be: {WANT}",
        f'A more modern way to express this idea is: "{WANT}"',
        f"To clarify, I would suggest rephrasing the sentence to:\n\n{WANT}",
        f"The original sentence is dull, so I reworded it.\n{WANT}",
        f"{WANT}****",
        f'Paraphrase: {WANT}"',
    ],
)
def test_planted_wrappers_come_off(output):
    assert clean(output, source=SOURCE) == WANT


def test_the_prompt_echoed_back_is_skipped():
    prompt = "Paraphrase the sentence below.\nSentence: the film is a total bore ."
    output = f"Paraphrase the sentence below.\n{WANT}"
    assert clean(output, source=SOURCE, prompt=prompt) == WANT


@pytest.mark.parametrize(
    "output",
    [
        "",
        "   \n\n ",
        "Sure! Here is a paraphrase:",
        '""',
        "1.",
        SOURCE,
        "The film is a total bore!",  # only the source, case and punctuation aside
        "Original sentence: the film is a total bore .",
        'The sentence is rephrased to "the film is a total bore."',
        "In a way, the original sentence is more concise and engaging.",
        "This paraphrase keeps the meaning of the sentence.",
    ],
)
def test_nothing_usable_gives_none(output):
    assert clean(output, source=SOURCE) is None


def test_inner_quotes_and_colons_of_a_real_answer_stay():
    text = 'The critic said "dull" twice: once for the plot, once for the cast.'
    assert clean(text, source=SOURCE) == text


def test_unquote_takes_off_only_wrapping_quotes():
    assert unquote('"a film"') == "a film"
    assert unquote('"dull" and "flat"') == '"dull" and "flat"'
    assert unquote("\"it's fine") == "it's fine"  # the closing quote was cut off
    assert unquote("'tis fine") == "'tis fine"
    assert unquote("plain") == "plain"
