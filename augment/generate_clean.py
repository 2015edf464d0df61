"""Cleaning what a language model returns into one candidate text, or None.

Small instruction models wrap their answer: a preamble ("Sure! Here is a paraphrase:"),
a label ("Paraphrase:"), quotes, list numbering, the source sentence or the prompt echoed
back, several candidates, an explanation after a blank line. `clean` reads the output line
by line and returns the first line that is a candidate once those are taken off; None when
no line is (the step rejects such rows as `unusable_output`).
"""

from __future__ import annotations

import re

# "1. ", "2) ", "(3) ", "- ", "* ", "• " at the start of a line.
_LIST_MARK = re.compile(r"^\s*(?:\(?\d{1,2}[.):]|[-*•·>]|#+)\s+")
# A second numbered item inside one line: "1. first one 2. second one".
_INLINE_ITEM = re.compile(r"\s+\(?\d{1,2}[.)]\s+(?=\S)")
# Interjections that open an answer.
_OPENER = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|absolutely|great|alright|yes|here you go)\b[!.,:]*\s*",
    re.IGNORECASE,
)
# A line that announces the answer instead of being it: "Here's a paraphrase of ...:",
# "A paraphrase would be:", "Paraphrased sentence:", "Output:".
_ANNOUNCE = re.compile(
    r"^(?:(?:here(?:'s| is| are)|this is|the following is|i (?:would|could|'d) (?:say|write)"
    r"|a (?:possible |good )?(?:paraphrase|rewrite|rewording|version))"
    r"[^:\n]{0,80}:|[^:\n]{0,80}\b(?:paraphrased?|paraphrasing|rewrit(?:e|ten|ing)|reworded"
    r"|rephrased?|rephrasing|new|example|output|answer|result|response|review|text|sentence"
    r"|version|alternative|would be|express|as follows)(?:\s+[\w']+){0,3}(?:\s*\d+)?\s*:)\s*",
    re.IGNORECASE,
)
# Lines that quote the input back: "Original sentence: ...", "Input: ...", "Label: ...".
_ECHO_LABEL = re.compile(
    r"^(?:the )?(?:original(?: sentence| text)?|input|source|sentence to paraphrase|label"
    r"|sentiment|class|category)(?: was| is)?\s*:",
    re.IGNORECASE,
)
# Commentary about the task rather than an answer: "The original sentence is ...",
# "This sentence focuses on ...", "I rephrased it to keep ...".
_META = re.compile(
    r"\b(?:the|this|that|your|given|original)\s+(?:original\s+)?sentence\b|\bparaphras"
    r"|\brephras|\breword",
    re.IGNORECASE,
)
# Commentary that gives the answer in quotes: 'I'll rephrase it as "...".'
_QUOTED_ANSWER = re.compile(
    r"^[^\"“]{0,120}\b(?:paraphras\w*|rephras\w*|reword\w*|rewrit\w*|would be|as|to|is)\b"
    r"\s*:?\s*[\"“](?P<answer>[^\"”]{3,})[\"”]?\s*[.!]?\s*$",
    re.IGNORECASE,
)
_QUOTES = "\"'`“”‘’«»"
_TRAILING_MARKS = re.compile(r"(?:\s*[*#_~]+)+\s*$")
_TRAILING_NOTE = re.compile(
    r"\s*\((?:note|this|i |the original|paraphrase|explanation)[^)]*\)?\s*$", re.IGNORECASE
)
_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
_SPACE = re.compile(r"\s+")
_FOLD = re.compile(r"[\W_]+", re.UNICODE)


def fold(text: str) -> str:
    """Lowercase, punctuation and spaces folded: the form echoes are compared in."""
    return _FOLD.sub(" ", text.lower()).strip()


def unquote(text: str) -> str:
    """Take off quotes wrapped round the whole text (and only then)."""
    text = text.strip()
    while len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        inner = text[1:-1].strip()
        if not inner:
            return ""
        if text[0] == '"' and '"' in inner:
            break  # '"dull" and "flat"': quoted words, not a wrapped text
        text = inner
    if text and text[0] in '"“«' and text[0] not in text[1:]:
        text = text[1:].strip()  # an opening quote whose closing one was cut off
    return text


def _strip_line(line: str) -> str:
    line = _LIST_MARK.sub("", line.strip())
    for _ in range(3):  # "Sure! Here is a paraphrase: "Paraphrase: ..."" nests
        before = line
        line = _OPENER.sub("", line)
        line = _ANNOUNCE.sub("", line)
        line = unquote(_LIST_MARK.sub("", line))
        if line == before:
            break
    line = _INLINE_ITEM.split(line, maxsplit=1)[0]
    line = _TRAILING_MARKS.sub("", _TRAILING_NOTE.sub("", line))
    line = unquote(line)
    if line.endswith('"') and line.count('"') == 1:
        line = line[:-1]  # a closing quote whose opening one was taken off with a preamble
    return _SPACE.sub(" ", line).strip()


def clean(output: str, source: str | None = None, prompt: str | None = None) -> str | None:
    """The first candidate line of a model's `output`, or None when there is none.

    Lines that only announce an answer, quote the input (`Original: ...`), comment on the
    task ("The original sentence is ..."), repeat `source` or a line of `prompt` are
    skipped, except that an answer quoted inside a comment ('I'll rephrase it as "..."')
    is taken; the first other line, stripped of preambles, labels, numbering and quotes,
    is the candidate (what follows it, such as an explanation after a blank line or
    further candidates, is ignored)."""
    if not output or not output.strip():
        return None
    echoes = set()
    if source:
        echoes.add(fold(source))
    if prompt:
        echoes.update(fold(line) for line in prompt.splitlines() if _LETTER.search(line))
    for raw in output.replace("\r\n", "\n").split("\n"):
        if not raw.strip() or _ECHO_LABEL.match(_LIST_MARK.sub("", raw.strip())):
            continue
        quoted = _QUOTED_ANSWER.match(raw.strip())
        if quoted and _META.search(raw[: quoted.start("answer")]):
            line = _strip_line(quoted["answer"])
        else:
            line = _strip_line(raw)
            if _META.search(line):
                continue
        if not _LETTER.search(line) or line.endswith(":"):
            continue
        if fold(line) in echoes:
            continue
        return line
    return None
