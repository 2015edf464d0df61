from __future__ import annotations

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from assay import Audit, Augmenter, Filter, Findings, Keep, RunContext, Transform, from_records
from assay.errors import StepError
from assay.step import (
    Changes,
    Edit,
    Rejections,
    StepConfig,
    Sync,
    check_accounting,
    check_eval_protected,
)


class LengthFilter(Filter):
    """Drop texts shorter than a bound."""

    name = "length_filter"

    class Config(StepConfig):
        min_chars: int = 3

    def keep(self, corpus, ctx):
        return Keep(corpus["text"].str.len_chars() >= self.config.min_chars, "too_short")


class UpperTransform(Transform):
    """Upper-case."""

    name = "upper"

    def rewrite(self, corpus, ctx):
        return corpus["text"].str.to_uppercase()


class EchoAugmenter(Augmenter):
    """Emit the text reversed, the text itself and a duplicate."""

    name = "echo"
    op = "echo"

    def generate(self, rows, ctx):
        texts = rows["text"].to_list()
        parents = rows["id"].to_list()
        return pl.DataFrame(
            {
                "parent_id": parents * 3,
                "text": [t[::-1] for t in texts] + texts + [t[::-1] for t in texts],
            }
        )


class TextLengthAudit(Audit):
    """Score length."""

    name = "length_audit"

    def score(self, corpus, ctx):
        cols = corpus.select("id", pl.col("text").str.len_chars().alias("length_audit__chars"))
        return Findings(columns=cols, summary={"max": int(cols["length_audit__chars"].max())})


def make():
    return from_records(
        ["hello there", "no", "fine film", "test row"],
        ["a", "b", "a", "b"],
        ids=["r1", "r2", "r3", "r4"],
        split=["train", "train", "train", "test"],
    )


def test_filter_records_every_drop_with_step_and_reason():
    c = make()
    r = LengthFilter().apply(c)
    check_accounting(c, r)
    assert r.dropped["id"].to_list() == ["r2"]
    assert r.dropped["step"].to_list() == ["length_filter"]
    assert r.dropped["reason"].to_list() == ["too_short"]
    assert r.report.drop_reasons == {"too_short": 1}
    assert (r.report.n_in, r.report.n_out, r.report.n_dropped) == (4, 3, 1)


def test_transform_records_lineage_of_changed_rows():
    c = make()
    r = UpperTransform().apply(c)
    assert r.report.n_modified == 4
    assert r.lineage.filter(pl.col("id") == "r1")["before"].item() == "hello there"
    assert r.corpus.filter(pl.col("id") == "r1")["text"].item() == "HELLO THERE"


def test_augmenter_assigns_ids_parents_origin_and_rejects_copies():
    c = make()
    r = EchoAugmenter().apply(c, RunContext(seed=1).for_step(0, "echo"))
    check_accounting(c, r)
    added = r.corpus.filter(pl.col("origin") == "augment.echo")
    # train rows only (r4 is test); reversed texts accepted once each
    assert sorted(added["id"].to_list()) == ["r1~0.echo0", "r2~0.echo0", "r3~0.echo0"]
    assert added.filter(pl.col("id") == "r1~0.echo0")["parent_id"].item() == "r1"
    assert added.filter(pl.col("id") == "r1~0.echo0")["text"].item() == "ereht olleh"
    assert added["split"].unique().to_list() == ["train"]
    reasons = r.dropped["reason"].value_counts().sort("reason")
    assert dict(reasons.iter_rows()) == {"duplicate_of_generated_row": 3, "identical_to_parent": 3}
    assert r.dropped["generated"].all()
    assert r.report.n_dropped == 0 and r.report.n_rejected == 6


def test_augmenter_budget_and_max_per_row():
    c = make()
    r = EchoAugmenter(max_per_row=1, budget=0.34).apply(c)
    assert r.report.n_added == 1
    check_accounting(c, r)


def test_audit_adds_namespaced_columns_by_id():
    r = TextLengthAudit().apply(make())
    assert r.corpus.filter(pl.col("id") == "r2")["length_audit__chars"].item() == 2
    assert r.report.summary == {"max": 11}


def test_unnamespaced_step_columns_are_rejected():
    class BadAudit(Audit):
        """Bad."""

        name = "bad"

        def score(self, corpus, ctx):
            return Findings(columns=corpus.select("id", pl.lit(1).alias("score")))

    with pytest.raises(StepError, match="bad__"):
        BadAudit().apply(make())


def test_eval_protection_blocks_steps_that_touch_test_rows():
    class TestTouching(Augmenter):
        """Rewrites test rows (forbidden)."""

        name = "touch"

        def generate(self, rows, ctx):
            return pl.DataFrame(
                {"parent_id": [], "text": []}, schema={"parent_id": pl.String, "text": pl.String}
            )

    c = make()
    r = TestTouching().apply(c)
    r.corpus = r.corpus.with_columns(
        text=pl.when(pl.col("split") == "test").then(pl.lit("changed")).otherwise(pl.col("text"))
    )
    with pytest.raises(StepError, match="modified 1 dev/test rows") as err:
        check_eval_protected(c, r, TestTouching(), protect=True)
    assert "protect_eval: false at the top level of the recipe" in str(err.value)
    assert "on the step" not in str(err.value)
    check_eval_protected(c, r, TestTouching(), protect=False)


def test_eval_protection_blocks_steps_that_drop_test_rows():
    class TestDropping(Filter):
        """Drops every test row (forbidden for a step that must not touch dev/test)."""

        name = "drop_test"
        touches_eval = False

        def keep(self, corpus, ctx):
            return Keep((corpus["split"] != "test").to_numpy(), "gone")

    c = make()
    r = TestDropping().apply(c)
    with pytest.raises(StepError, match="dropped 1 dev/test rows"):
        check_eval_protected(c, r, TestDropping(), protect=True)
    check_eval_protected(c, r, TestDropping(), protect=False)


def test_step_config_rejects_unknown_keys():
    with pytest.raises(Exception, match="extra"):
        LengthFilter(min_chrs=3)


@settings(max_examples=40, deadline=None)
@given(
    texts=st.lists(
        st.text(alphabet="abc ", min_size=1, max_size=8).filter(str.strip), min_size=1, max_size=30
    ),
    min_chars=st.integers(0, 6),
    seed=st.integers(0, 10),
)
def test_accounting_balances_for_any_input(texts, min_chars, seed):
    labels = ["a" if i % 2 else "b" for i in range(len(texts))]
    c = from_records(texts, labels, split="train")
    ctx = RunContext(seed=seed)
    for step in (LengthFilter(min_chars=min_chars), EchoAugmenter(n_per_row=2), UpperTransform()):
        r = step.apply(c, ctx)
        check_accounting(c, r)
        assert r.corpus["id"].n_unique() == r.corpus.height
        originals = r.corpus.filter(pl.col("origin") == "source")
        if step.kind == "augmenter":  # originals untouched
            assert originals.select(c.columns).equals(c)
        c = r.corpus


def test_rng_is_deterministic_per_step_and_stream():
    a = RunContext(seed=5).for_step(2, "x")
    b = RunContext(seed=5).for_step(2, "x")
    assert np.array_equal(a.rng("s").random(4), b.rng("s").random(4))
    assert not np.array_equal(a.rng("s").random(4), a.rng("t").random(4))
    assert not np.array_equal(
        a.rng().random(4), RunContext(seed=6).for_step(2, "x").rng().random(4)
    )


class FlagAndFix(Edit):
    """Relabel one row, reweight another, drop a third, oversample a fourth."""

    name = "fix"
    op = "os"
    touches_eval = False

    def edit(self, corpus, ctx):
        columns = pl.DataFrame(
            {
                "id": ["r1", "r3"],
                "label": ["b", "a"],  # r3 keeps its label: no lineage row
                "weight": [1.0, 2.5],
                "fix__flag": [True, False],
            }
        )
        keep = Keep(corpus["id"] != "r2", "noisy")
        added = pl.DataFrame({"parent_id": ["r3"], "text": ["fine film indeed"]})
        return Changes(columns=columns, keep=keep, added=added, summary={"n_flagged": 1})


def test_edit_sets_fields_by_id_drops_adds_and_keeps_every_book():
    c = make()
    r = FlagAndFix().apply(c, RunContext(seed=1).for_step(3, "fix"))
    check_accounting(c, r)
    rows = {row["id"]: row for row in r.corpus.to_dicts()}
    assert rows["r1"]["label"] == "b" and rows["r1"]["fix__flag"] is True
    assert rows["r3"]["weight"] == 2.5 and rows["r4"]["fix__flag"] is None
    assert "r2" not in rows and r.dropped["reason"].to_list() == ["noisy"]
    assert rows["r3~3.os0"]["parent_id"] == "r3" and rows["r3~3.os0"]["weight"] == 2.5
    lineage = {(x["id"], x["field"]): (x["before"], x["after"]) for x in r.lineage.to_dicts()}
    assert lineage == {("r1", "label"): ("a", "b"), ("r3", "weight"): ("1.0", "2.5")}
    assert r.lineage["step"].unique().to_list() == ["fix"]
    rep = r.report
    assert (rep.kind, rep.n_modified, rep.n_dropped, rep.n_added) == ("edit", 2, 1, 1)
    assert rep.summary["n_flagged"] == 1


def test_lineage_writes_list_labels_as_json_arrays():
    class AddTag(Edit):
        """Add a label."""

        name = "tag"

        def edit(self, corpus, ctx):
            labels = [[*lab, "z"] for lab in corpus["label"].to_list()]
            return Changes(columns=pl.DataFrame({"id": corpus["id"], "label": labels}))

    c = from_records(["one text", "two text"], [["a"], ["a", "b"]], ids=["m1", "m2"])
    r = AddTag().apply(c)
    assert r.lineage.filter(pl.col("id") == "m2").row(0, named=True) == {
        "id": "m2",
        "step": "tag",
        "field": "label",
        "before": '["a", "b"]',
        "after": '["a", "b", "z"]',
    }


def test_edit_rejects_unknown_ids_and_unnamespaced_columns():
    class Bad(Edit):
        """Bad."""

        name = "bad"

        def __init__(self, columns):
            super().__init__()
            self.columns = columns

        def edit(self, corpus, ctx):
            return Changes(columns=self.columns)

    with pytest.raises(StepError, match="not in the corpus"):
        Bad(pl.DataFrame({"id": ["nope"], "label": ["a"]})).apply(make())
    with pytest.raises(StepError, match="bad__"):
        Bad(pl.DataFrame({"id": ["r1"], "origin": ["x"]})).apply(make())


def test_sync_steps_add_only_namespaced_columns():
    class Send(Sync):
        """Pretend to send rows."""

        name = "send"

        def send(self, corpus, ctx):
            return Findings(columns=corpus.select("id", pl.lit(True).alias("label")))

    with pytest.raises(StepError, match="send__"):
        Send().apply(make())
    assert Send.kind == "sync" and not Send.cacheable


def test_a_rejection_rule_runs_inside_the_one_adoption_path():
    class Picky(Augmenter):
        """Emit two variants per row; refuse the shouting one."""

        name = "picky"
        op = "pk"

        def generate(self, rows, ctx):
            parents = rows["id"].to_list()
            texts = rows["text"].to_list()
            return pl.DataFrame(
                {
                    "parent_id": parents * 2,
                    "text": [t.upper() + "!" for t in texts] + [t + " indeed" for t in texts],
                }
            )

        def reject(self, candidates, parents, corpus, ctx):
            loud = candidates["text"].str.ends_with("!")
            return Rejections(
                reason=[("too_loud" if x else None) for x in loud.to_list()],
                columns=pl.DataFrame({"picky__loud": loud}),
                tag="picky",
                summary={"refused": int(loud.sum())},
            )

    c = make()
    r = Picky(max_per_row=1).apply(c, RunContext(seed=1).for_step(2, "picky"))
    check_accounting(c, r)
    added = r.corpus.filter(pl.col("origin") == "augment.picky")
    # the refused rows do not use up max_per_row: every parent keeps its quiet variant
    assert sorted(added["id"].to_list()) == ["r1~2.pk0", "r2~2.pk0", "r3~2.pk0"]
    assert added["text"].str.ends_with(" indeed").all() and not added["picky__loud"].any()
    refused = r.dropped.filter(pl.col("reason") == "too_loud")
    assert sorted(refused["id"].to_list()) == ["r1~2.pk-picky0", "r2~2.pk-picky0", "r3~2.pk-picky0"]
    assert refused["picky__loud"].all() and refused["generated"].all()
    assert r.report.summary["refused"] == 3 and r.report.summary["rejected"] == {}
