from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from assay.ids import content_id, content_ids, derived_id, disambiguate


def test_content_ids_are_deterministic_and_depend_on_label():
    assert content_id("text", "a") == content_id("text", "a")
    assert content_id("text", "a") != content_id("text", "b")
    assert len(content_id("x")) == 16


def test_repeated_content_gets_ordered_suffixes():
    ids = content_ids(["same", "same", "other", "same"], ["a", "a", "a", "a"])
    base = content_id("same", "a")
    assert ids[0] == base and ids[1] == f"{base}.1" and ids[3] == f"{base}.2"


def test_derived_id_format():
    assert derived_id("p1", "syn", 2) == "p1~syn2"
    assert derived_id("p1", "syn", 2, scope=3) == "p1~3.syn2"
    assert derived_id("p1", "syn", 0, scope=3, tag="guard") == "p1~3.syn-guard0"


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=50))
def test_disambiguate_always_gives_unique_ids(raw):
    out = disambiguate(raw)
    assert len(set(out)) == len(out)
    assert [o.split(".")[0] for o in out] == raw
