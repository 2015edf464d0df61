from __future__ import annotations

import polars as pl
import pytest

from assay import corpus
from assay.errors import SchemaError


def test_from_records_fills_defaults_and_schema_order():
    c = corpus.from_records(["a", "b"], ["x", "y"])
    assert c.columns[:9] == list(corpus.REQUIRED)
    assert c["weight"].to_list() == [1.0, 1.0]
    assert c.schema["weight"] == pl.Float32
    assert c["origin"].to_list() == ["source", "source"]
    assert c["lang"].to_list() == ["en", "en"]
    corpus.validate(c)


def test_validate_names_every_problem_at_once():
    c = corpus.from_records(["ok", "fine"], ["x", "y"], ids=["1", "2"], split=["train", "bogus"])
    c = c.with_columns(weight=pl.Series([1.0, -2.0], dtype=pl.Float32))
    with pytest.raises(SchemaError) as err:
        corpus.validate(c, labels=["x"])
    message = str(err.value)
    assert "bogus" in message and "negative weight" in message and "'y'" in message


def test_validate_reports_duplicate_ids_and_empty_text():
    c = corpus.from_records(["a", " "], ["x", "x"], ids=["1", "1"])
    with pytest.raises(SchemaError, match="not unique"):
        corpus.validate(c)
    c = corpus.from_records(["a", " "], ["x", "x"], ids=["1", "2"])
    with pytest.raises(SchemaError, match="empty text"):
        corpus.validate(c)


def test_validate_missing_columns():
    with pytest.raises(SchemaError, match="missing columns"):
        corpus.validate(pl.DataFrame({"text": ["a"]}))


def test_multilabel_corpus_validates_and_reports_unknown_labels():
    c = corpus.from_records(["a", "b"], [["x", "y"], ["z"]])
    assert corpus.is_multilabel(c)
    assert corpus.label_set(c) == ["x", "y", "z"]
    assert corpus.unknown_labels(c, ["x", "y"]) == ["z"]
