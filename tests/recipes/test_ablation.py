from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from pydantic import Field

from assay import registry
from assay.context import RunContext
from assay.errors import RecipeError
from assay.recipes import judge_record
from assay.recipes.ablation import run_ablation
from assay.recipes.schema import load_recipe
from assay.step import Step, StepConfig, StepResult

JUDGE_RECORD = ("caution", "agreement", "measured")  # what the judge study says of a judge


class FlipLabels(Step):
    """Flip a share of the train labels to another class (a planted harmful change)."""

    touches_eval = False

    class Config(StepConfig):
        fraction: float = Field(0.3, description="share of train rows to flip")

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        labels = sorted(corpus["label"].drop_nulls().unique().to_list())
        rng = ctx.rng("flip")
        train = (corpus["split"] == "train").to_numpy()
        flip = train & (rng.random(corpus.height) < self.config.fraction)
        new = [
            labels[(labels.index(lab) + 1) % len(labels)] if f else lab
            for lab, f in zip(corpus["label"].to_list(), flip, strict=True)
        ]
        out = corpus.with_columns(label=pl.Series(new, dtype=pl.String))
        return StepResult(out, self._report(n_modified=int(flip.sum())))


class NoOp(Step):
    """Change nothing (a planted harmless change)."""

    touches_eval = False

    class Config(StepConfig):
        note: str = Field("", description="ignored")

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        return StepResult(corpus, self._report())


class Twice(Step):
    """Add paraphrases of every train row: the text with ' indeed' appended k times."""

    touches_eval = False

    class Config(StepConfig):
        copies: int = Field(1, description="paraphrases per row")

    def _run(self, corpus: pl.DataFrame, ctx: RunContext) -> StepResult:
        rows = corpus.filter(pl.col("split") == "train")
        new = pl.concat(
            [
                rows.with_columns(
                    parent_id=pl.col("id"),
                    id=pl.col("id") + f"~tw{k}",
                    text=pl.col("text") + " indeed" * (k + 1),
                    origin=pl.lit("augment.test_twice"),
                )
                for k in range(self.config.copies)
            ]
        )
        return StepResult(pl.concat([corpus, new]), self._report(n_added=new.height))


for _name, _cls in (("test_flip_labels", FlipLabels), ("test_noop", NoOp), ("test_twice", Twice)):
    if _name not in registry.names():
        registry.register(_name)(_cls)


def _write_sst2(shared_data, tmp_path, n_train: int) -> str:
    frames = []
    for split, n in (("train", n_train), ("dev", 200), ("test", None)):
        frame = pl.read_csv(shared_data / "sst2" / f"{split}.csv")
        frame = frame.head(n) if n else frame
        frames.append(frame.with_columns(split=pl.lit(split)))
    path = tmp_path / "sst2.csv"
    pl.concat(frames).write_csv(path)
    return str(path)


def _recipe(source: str, variants: list, **ablation) -> dict:
    return {
        "name": "planted",
        "seed": 3,
        "input": {"source": source, "split_column": "split"},
        "steps": [],
        "ablation": {
            "model": "fast",
            "seeds": 3,
            "bootstrap": 300,
            "variants": variants,
            **ablation,
        },
    }


@pytest.mark.slow
def test_ablation_flags_planted_harm_and_not_a_noop(shared_data, tmp_path):
    source = _write_sst2(shared_data, tmp_path, 1500)
    recipe = load_recipe(
        _recipe(
            source,
            [
                {"name": "flip30", "add": [{"test_flip_labels": {"fraction": 0.3}}]},
                {"name": "noop", "add": ["test_noop"]},
            ],
        )
    )
    result = run_ablation(recipe, tmp_path / "out")
    arms = {r["arm"]: r for r in result.report["arms"]}
    assert arms["flip30"]["significant"] and arms["flip30"]["delta_high"] < 0
    assert arms["flip30"]["verdict"] == "worse"
    assert not arms["noop"]["significant"]
    assert arms["noop"]["delta_low"] <= 0 <= arms["noop"]["delta_high"]
    assert arms["baseline"]["train_rows"] == 1500
    assert result.report["eval_rows"] == 1821
    for name in ("ablation.json", "ablation.csv", "ablation.html", "forest.svg"):
        assert (result.out_dir / name).exists()
    assert "<svg" in (result.out_dir / "ablation.html").read_text()
    table = pl.read_csv(result.out_dir / "ablation.csv")
    assert table["arm"].to_list() == ["baseline", "flip30", "noop"]

    # A rerun trains nothing: every (arm, seed) cell is read back.
    again = run_ablation(recipe, tmp_path / "out")
    assert again.report["cells_cached"] == 9
    assert again.report["arms"] == result.report["arms"]


def _toy_csv(tmp_path) -> str:
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    texts, labels, splits = [], [], []
    for i in range(240):
        lab = "pos" if i % 2 else "neg"
        texts.append(f"{rng.choice(words[lab])} movie number {i}")
        labels.append(lab)
        splits.append("train" if i < 160 else "test" if i < 220 else "dev")
    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": texts, "label": labels, "split": splits}).write_csv(path)
    return str(path)


def test_duplicate_control_arm_and_step_budget_in_report(tmp_path):
    recipe = load_recipe(
        _recipe(
            _toy_csv(tmp_path),
            [{"name": "twice", "add": ["test_twice"], "controls": ["duplicate"]}],
            seeds=2,
            train_rows=100,
        )
    )
    report = run_ablation(recipe, tmp_path / "out").report
    arms = {r["arm"]: r for r in report["arms"]}
    assert set(arms) == {"baseline", "twice", "twice [duplicate control]"}
    assert arms["baseline"]["train_rows"] == 100
    assert arms["twice"]["train_rows"] == arms["twice [duplicate control]"]["train_rows"] == 200
    assert "vs_control_delta" in arms["twice"]
    data = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert data["arms"][2]["control_of"] == "twice"


def test_an_interrupted_run_keeps_the_cells_trained_before_it_stopped(tmp_path):
    from assay.train.evaluate import train_and_evaluate_many

    source = _toy_csv(tmp_path)
    recipe = load_recipe(_recipe(source, [{"name": "noop", "add": ["test_noop"]}], seeds=2))

    class Interrupted(Exception):
        pass

    def stop_after_three(jobs, *, on_outcome, **kwargs):
        heard = []

        def hear(i, outcome):
            on_outcome(i, outcome)
            heard.append(i)
            if len(heard) == 3:
                raise Interrupted

        return train_and_evaluate_many(jobs, on_outcome=hear, **kwargs)

    with pytest.raises(Interrupted):
        run_ablation(recipe, tmp_path / "out", train=stop_after_three)
    resumed = run_ablation(recipe, tmp_path / "out")
    assert resumed.report["cells"] == 4
    assert resumed.report["cells_cached"] == 3
    fresh = run_ablation(recipe, tmp_path / "fresh")

    def scores(report):  # everything but the timings
        return [{k: v for k, v in arm.items() if k != "seconds"} for arm in report["arms"]]

    assert scores(resumed.report) == scores(fresh.report)


def test_variant_errors_name_the_variant_and_step(tmp_path):
    path = tmp_path / "toy.csv"
    pl.DataFrame(
        {"text": ["a b", "c d"], "label": ["x", "y"], "split": ["train", "test"]}
    ).write_csv(path)
    recipe = load_recipe(_recipe(str(path), [{"name": "gone", "remove": ["dedup"]}]))
    with pytest.raises(RecipeError, match=r"variants\[gone\]\.remove: step 'dedup' is not in"):
        run_ablation(recipe, tmp_path / "out")
    with pytest.raises(RecipeError, match="changes nothing"):
        load_recipe(_recipe(str(path), [{"name": "empty"}]))
    with pytest.raises(RecipeError, match="did you mean 'threshold'"):
        load_recipe(_recipe(str(path), [{"name": "x", "set": {"dedup": {"treshold": 0.5}}}]))


def test_ablate_command_prints_table(shared_data, tmp_path):
    from assay.recipes.cli import main

    source = _write_sst2(shared_data, tmp_path, 400)
    import yaml

    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        yaml.safe_dump(_recipe(source, [{"name": "noop", "add": ["test_noop"]}], seeds=2))
    )
    res = CliRunner().invoke(main, ["ablate", str(recipe), "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "ablation.json" in res.output


@pytest.fixture
def toy_csv(tmp_path):
    rng = np.random.default_rng(0)
    words = {"pos": ["good", "great", "fine"], "neg": ["bad", "awful", "poor"]}
    texts, labels, splits = [], [], []
    for i in range(120):
        lab = "pos" if i % 2 else "neg"
        texts.append(f"the {rng.choice(words[lab])} film")
        labels.append(lab)
        splits.append("train" if i < 64 else "test" if i < 100 else "dev")
    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": texts, "label": labels, "split": splits}).write_csv(path)
    return str(path)


@pytest.fixture
def tiny_bert(tmp_path):
    pytest.importorskip("torch")
    from assay.testing import tiny_bert

    words = ["the", "film", "indeed", "good", "great", "fine", "bad", "awful", "poor"]
    return str(tiny_bert(tmp_path / "tiny-bert", words, hidden=16, layers=1, positions=32))


def test_encoder_arms_warn_when_step_counts_differ(toy_csv, tiny_bert, tmp_path):
    variants = [{"name": "x4", "add": [{"test_twice": {"copies": 3}}]}]
    by_epochs = load_recipe(
        _recipe(toy_csv, variants, seeds=1, model=tiny_bert, budget={"epochs": 1},
                model_options={"threads": 1})
    )  # fmt: skip
    report = run_ablation(by_epochs, tmp_path / "epochs").report
    steps = {r["arm"]: r["optimizer_steps"] for r in report["arms"]}
    assert steps == {"baseline": 4, "x4": 16}
    assert any("different numbers of optimiser steps" in w for w in report["warnings"])

    by_steps = load_recipe(
        _recipe(toy_csv, variants, seeds=1, model=tiny_bert, budget={"steps": 6},
                model_options={"threads": 1})
    )  # fmt: skip
    report = run_ablation(by_steps, tmp_path / "steps").report
    assert {r["optimizer_steps"] for r in report["arms"]} == {6}
    assert not any("different numbers of optimiser steps" in w for w in report["warnings"])
    # 6 steps of a tiny model learn nothing yet: the report says the arms collapsed.
    assert any("collapsed to one class" in w for w in report["warnings"])


def test_terms_chosen_by_a_step_are_handed_to_the_encoder():
    from assay.recipes.ablation_cells import domain_terms
    from assay.step import StepReport

    reports = [
        StepReport(step="clean", kind="transform"),
        StepReport(
            step="domain_vocab", kind="augmenter", summary={"domain_vocab__terms": ["lidar", "ekf"]}
        ),
        StepReport(step="other", kind="audit", summary={"other__terms": ["ekf", "slam"]}),
    ]
    assert domain_terms(reports) == ["lidar", "ekf", "slam"]


def test_variants_add_remove_and_reconfigure_steps(tmp_path):
    from assay.recipes.ablation_arms import plan_arms

    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": ["a b"], "label": ["x"]}).write_csv(path)
    recipe = load_recipe(
        {
            "input": {"source": str(path)},
            "steps": [{"clean": {"min_chars": 3}}, "split"],
            "ablation": {
                "baseline": [{"dedup": {"method": "exact"}}],
                "variants": [
                    {"name": "no-dedup", "remove": ["dedup"]},
                    {"name": "near", "set": {"dedup": {"method": "minhash"}}},
                    {"name": "noop-after-clean", "add": ["test_noop"], "after": "clean"},
                    {"name": "twice", "add": ["test_twice"], "controls": ["duplicate"]},
                ],
            },
        }
    )
    arms = {a.name: a for a in plan_arms(recipe, recipe.ablation)}
    names = {n: ([s.name for s in a.prefix], [s.name for s in a.suffix]) for n, a in arms.items()}
    assert names == {
        "baseline": (["clean", "split"], ["dedup"]),
        "no-dedup": (["clean", "split"], []),
        "near": (["clean", "split"], ["dedup"]),
        "noop-after-clean": (["clean", "test_noop", "split"], ["dedup"]),
        "twice": (["clean", "split"], ["dedup", "test_twice"]),
        "twice [duplicate control]": (["clean", "split"], ["dedup", "test_twice"]),
    }
    assert arms["near"].suffix[0].config.method == "minhash"
    assert arms["baseline"].suffix[0].config.method == "exact"
    assert arms["twice [duplicate control]"].control_of == "twice"


def test_baseline_until_leaves_the_pipelines_later_steps_to_the_variants(tmp_path):
    from assay.recipes.ablation_arms import plan_arms

    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": ["a b"], "label": ["x"]}).write_csv(path)
    steps = [{"clean": {"min_chars": 3}}, "split", {"synonyms": {"n_per_row": 2}}]
    ablation = {
        "baseline_until": "split",
        "variants": [{"name": "+synonyms", "add": [{"synonyms": {"n_per_row": 2}}]}],
    }
    recipe = load_recipe({"input": {"source": str(path)}, "steps": steps, "ablation": ablation})
    arms = {a.name: a for a in plan_arms(recipe, recipe.ablation)}
    assert [s.name for s in arms["baseline"].prefix] == ["clean", "split"]
    assert [s.name for s in arms["+synonyms"].prefix] == ["clean", "split"]
    assert [s.name for s in arms["+synonyms"].suffix] == ["synonyms"]

    wrong = load_recipe(
        {"input": {"source": str(path)}, "steps": steps,
         "ablation": {**ablation, "baseline_until": "dedup"}}
    )  # fmt: skip
    with pytest.raises(RecipeError, match="baseline_until: step 'dedup' is not in the pipeline"):
        plan_arms(wrong, wrong.ablation)


def _toy(tmp_path, n_train: int = 200) -> str:
    rng = np.random.default_rng(1)
    words = {"pos": ["good", "great", "fine", "nice"], "neg": ["bad", "awful", "poor", "dull"]}
    texts, labels, splits = [], [], []
    for i in range(n_train + 120):
        lab = "pos" if i % 2 else "neg"
        # Noisy on purpose: one word in three is from the other class.
        other = "neg" if lab == "pos" else "pos"
        picks = [rng.choice(words[other] if rng.random() < 0.35 else words[lab]) for _ in range(3)]
        texts.append(f"{' '.join(picks)} movie {i}")
        labels.append(lab)
        splits.append("train" if i < n_train else "test" if i < n_train + 100 else "dev")
    path = tmp_path / "toy.csv"
    pl.DataFrame({"text": texts, "label": labels, "split": splits}).write_csv(path)
    return str(path)


def test_each_seed_draws_its_own_train_rows_shared_by_every_arm(tmp_path):
    source = _toy(tmp_path)
    variants = [{"name": "noop", "add": ["test_noop"]}]
    per_seed = run_ablation(
        load_recipe(_recipe(source, variants, seeds=3, train_rows=40)), tmp_path / "a"
    ).report
    arms = {r["arm"]: r for r in per_seed["arms"]}
    # Different rows per seed: the deterministic fast model scores differently per seed.
    assert len(set(arms["baseline"]["per_seed"])) > 1
    # The same rows for every arm of a seed: a no-op variant matches the baseline exactly.
    assert arms["noop"]["per_seed"] == arms["baseline"]["per_seed"]
    assert arms["noop"]["delta"] == 0 and arms["noop"]["p_value"] == 1.0
    assert per_seed["statistics"]["train_draw"] == "per_seed"
    assert "its own train rows" in per_seed["statistics"]["note"]

    once = run_ablation(
        load_recipe(_recipe(source, variants, seeds=3, train_rows=40, resample_train="once")),
        tmp_path / "b",
    ).report
    baseline = next(r for r in once["arms"] if r["arm"] == "baseline")
    assert len(set(baseline["per_seed"])) == 1


def test_seeds_draw_different_rows_and_arms_of_a_seed_the_same(tmp_path):
    from assay.recipes.ablation_cells import train_draw_seed
    from assay.train.ablation_data import subsample_train

    corpus = pl.read_csv(_toy(tmp_path)).with_columns(id=pl.format("r{}", pl.int_range(pl.len())))
    kept = {
        seed: set(
            subsample_train(corpus, 30, train_draw_seed(3, seed, "per_seed"))
            .filter(pl.col("split") == "train")["id"]
            .to_list()
        )
        for seed in range(3)
    }
    assert kept[0] != kept[1] != kept[2]
    assert train_draw_seed(3, 0, "once") == train_draw_seed(3, 2, "once") == 3


def test_learning_curve_runs_every_arm_at_each_size(tmp_path):
    source = _toy(tmp_path)
    recipe = load_recipe(
        _recipe(source, [{"name": "flip", "add": [{"test_flip_labels": {"fraction": 0.4}}]}],
                seeds=2, train_rows=[120, 30])
    )  # fmt: skip
    result = run_ablation(recipe, tmp_path / "curve")
    curve = result.report["learning_curve"]
    assert [(r["train_rows_cap"], r["arm"]) for r in curve] == [
        (30, "baseline"), (30, "flip"), (120, "baseline"), (120, "flip"),
    ]  # fmt: skip
    assert [r["train_rows"] for r in curve if r["arm"] == "baseline"] == [30, 120]
    # The headline table is the largest size.
    assert result.report["train_rows_cap"] == 120
    assert result.report["arms"][0]["train_rows"] == 120
    table = pl.read_csv(result.out_dir / "learning_curve.csv")
    assert table.height == 4 and table["train_rows_cap"].to_list() == [30, 30, 120, 120]
    assert "<polyline" in (result.out_dir / "learning_curve.svg").read_text()
    assert "Learning curve" in (result.out_dir / "ablation.html").read_text()
    assert result.report["cells"] == 2 * 2 * 2


def test_scaled_c_makes_duplicated_rows_a_no_op_for_the_fast_model(tmp_path):
    source = _toy(tmp_path)
    variants = [{"name": "twice", "add": ["test_twice"], "controls": ["duplicate"]}]
    fixed = run_ablation(
        load_recipe(_recipe(source, variants, seeds=2, train_rows=60)), tmp_path / "fixed"
    ).report
    scaled = run_ablation(
        load_recipe(_recipe(source, variants, seeds=2, train_rows=60,
                            fast_regularisation="scale_c")),
        tmp_path / "scaled",
    ).report  # fmt: skip
    control = "twice [duplicate control]"
    c = {r["arm"]: r["fast_c"] for r in scaled["arms"]}
    assert c["baseline"] == 4.0
    assert c[control] == c["twice"] == pytest.approx(2.0)  # twice the rows, half the C
    assert {r["fast_c"] for r in fixed["arms"]} == {4.0}
    # Every row twice with C halved is the baseline's objective (only the smoothed IDF moves).
    per_seed = {r["arm"]: r["per_seed"] for r in scaled["arms"]}
    assert per_seed[control] == pytest.approx(per_seed["baseline"], abs=0.03)
    assert scaled["statistics"]["fast_regularisation"] == "scale_c"
    assert "C scaled" in scaled["statistics"]["note"]
    twice = next(r for r in scaled["arms"] if r["arm"] == "twice")
    assert "duplicating rows" in twice["verdict"] or twice["verdict"] == "no detectable change"


def test_train_rows_rejects_bad_sizes(tmp_path):
    source = _toy(tmp_path)
    for bad in ([], [10, 10], [1]):
        with pytest.raises(RecipeError, match="train_rows"):
            load_recipe(_recipe(source, [{"name": "n", "add": ["test_noop"]}], train_rows=bad))


def test_marked_leaks_get_clean_subset_scores_beside_the_full_ones(tmp_path):
    rng = np.random.default_rng(7)
    n_train, n_clean, n_leaked = 120, 40, 40
    texts = [f"w{i}a w{i}b w{i}c" for i in range(n_train + n_clean)]
    labels = [str(x) for x in rng.choice(["pos", "neg"], n_train + n_clean)]
    # Test: 40 verbatim train rows (memorised by the model) and 40 unseen rows.
    rows = (
        [(t, lab, "train") for t, lab in zip(texts[:n_train], labels[:n_train], strict=True)]
        + [(t, lab, "test") for t, lab in zip(texts[:n_leaked], labels[:n_leaked], strict=True)]
        + [(t, lab, "test") for t, lab in zip(texts[n_train:], labels[n_train:], strict=True)]
    )
    path = tmp_path / "leaky.csv"
    pl.DataFrame(rows, schema=["text", "label", "split"], orient="row").write_csv(path)
    spec = _recipe(str(path), [{"name": "noop", "add": ["test_noop"]}], seeds=2)
    spec["steps"] = [{"leakage": {"methods": ["exact"], "action": "mark_eval"}}]
    result = run_ablation(load_recipe(spec), tmp_path / "out")
    report = result.report
    assert report["eval_rows_leaked"] == n_leaked
    arms = {r["arm"]: r for r in report["arms"]}
    base = arms["baseline"]
    assert base["clean_n"] == n_clean
    assert base["score"] > base["clean_score"] + 0.1
    assert arms["noop"]["clean_delta"] == 0
    page = (result.out_dir / "ablation.html").read_text()
    assert "marked as leaked" in page and "clean delta" in page


def test_encoder_cells_train_as_stacks_and_the_report_names_the_judge(toy_csv, tiny_bert, tmp_path):
    variants = [{"name": "x2", "add": [{"test_twice": {"copies": 1}}]}]
    recipe = load_recipe(
        _recipe(toy_csv, variants, seeds=2, model=tiny_bert, budget={"steps": 4},
                model_options={"threads": 1})
    )  # fmt: skip
    report = run_ablation(recipe, tmp_path / "stacked").report
    assert report["judge"] == {"model": tiny_bert, "seeds": 2, "trainer": "stacked",
                               "device": "cpu", "dtype": "float32", "batch_size": 16,
                               "caution": None, "agreement": None, "measured": None}  # fmt: skip
    cells = [json.loads(p.read_text()) for p in (tmp_path / "stacked" / "cells").glob("*.json")]
    assert len(cells) == 4 and all(c["trainer"]["trainer"] == "stacked" for c in cells)
    html = (tmp_path / "stacked" / "ablation.html").read_text()
    assert f"{tiny_bert} (stacked, cpu float32, batch 16)" in html


NOOP = [{"name": "noop", "add": ["test_noop"]}]


def test_cell_keys_name_the_device_dtype_and_batch(toy_csv, tiny_bert, tmp_path):
    """A cell trained on one device, dtype or batch size is never reused for another."""
    from assay.train.cells_io import CellsElsewhere, CellsExported

    def keys(**extra) -> set[str]:
        recipe = load_recipe(
            _recipe(toy_csv, NOOP, seeds=1, model=tiny_bert, budget={"steps": 2},
                    model_options={"threads": 1, **extra.pop("options", {})})
        )  # fmt: skip
        folder = tmp_path / json.dumps(extra, sort_keys=True).replace('"', "")
        with pytest.raises(CellsExported):
            run_ablation(recipe, folder / "run", train=CellsElsewhere(folder / "cells"), **extra)
        meta = json.loads((folder / "cells" / "cells.json").read_text())
        return {c["key"] for c in meta["cells"]}

    cpu, cuda = keys(device="cpu"), keys(device="cuda")
    batch32 = keys(device="cpu", options={"batch_size": 32})
    assert len(cpu) == len(cuda) == len(batch32) == 2
    assert not (cpu & cuda) and not (cpu & batch32) and not (cuda & batch32)


def test_cells_trained_elsewhere_give_the_local_table(toy_csv, tiny_bert, tmp_path):
    from assay.train.cells_io import CellsElsewhere, CellsExported, train_cells

    variants = [{"name": "x2", "add": [{"test_twice": {"copies": 1}}]}]
    recipe = load_recipe(
        _recipe(toy_csv, variants, seeds=2, model=tiny_bert, budget={"steps": 5},
                model_options={"threads": 1})
    )  # fmt: skip
    local = run_ablation(recipe, tmp_path / "local").report
    elsewhere = CellsElsewhere(tmp_path / "cells")
    with pytest.raises(CellsExported, match="4 of 4 cells are still to train"):
        run_ablation(recipe, tmp_path / "remote", train=elsewhere)
    summary = train_cells(tmp_path / "cells")  # what the other machine runs
    assert len(summary["cells"]) == 4
    remote = run_ablation(recipe, tmp_path / "remote", train=elsewhere).report
    for a, b in zip(local["arms"], remote["arms"], strict=True):
        assert a["arm"] == b["arm"] and a["score"] == pytest.approx(b["score"], abs=1e-9)
        assert a["per_seed"] == pytest.approx(b["per_seed"], abs=1e-9)
    # The cells are stored: a third run trains nothing and asks for nothing.
    again = run_ablation(recipe, tmp_path / "remote", train=elsewhere).report
    assert again["cells_cached"] == 4


def test_auto_model_is_the_fast_model_without_a_gpu(toy_csv, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    from assay.recipes.ablation_judge import resolve_auto
    from assay.recipes.ablation_spec import AblationSpec

    spec = AblationSpec.model_validate({"model": "auto", "seeds": 3, "variants": NOOP})
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_auto(spec) == ("fast", spec)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    model, gpu_spec = resolve_auto(spec)
    assert model == "minilm" and gpu_spec.seed_list == list(range(10))
    assert resolve_auto(spec, seeds_given=True)[1].seed_list == [0, 1, 2]
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(judge_record, "_records", lambda: [])  # as if nothing was measured
    recipe = load_recipe(_recipe(toy_csv, NOOP, seeds=2, model="auto"))
    report = run_ablation(recipe, tmp_path / "auto").report
    assert report["model"] == "fast"
    assert report["judge"]["agreement"] is None
    assert {k: v for k, v in report["judge"].items() if k not in JUDGE_RECORD} == {
        "model": "fast", "seeds": 2, "trainer": "fast"}  # fmt: skip
    # No measured agreement for this judge: its verdicts carry a caution and the remedy.
    assert "assay ablate RECIPE --confirm" in report["judge"]["caution"]
    html = (tmp_path / "auto" / "ablation.html").read_text()
    assert "Caution" in html and "--confirm" in html


def test_confirm_trains_the_encoder_only_on_the_arms_the_screen_separated(
    toy_csv, tiny_bert, tmp_path
):
    from assay.recipes.cli import main

    variants = [
        {"name": "flip", "add": [{"test_flip_labels": {"fraction": 0.8}}]},
        {"name": "noop", "add": ["test_noop"]},
    ]
    recipe = tmp_path / "screen.yaml"
    spec = _recipe(toy_csv, variants, seeds=3, budget={"steps": 3})
    recipe.write_text(json.dumps(spec))  # JSON is YAML
    result = CliRunner().invoke(
        main,
        ["ablate", str(recipe), "--out", str(tmp_path / "x"), "--confirm", tiny_bert,
         "--confirm-seeds", "2"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "x" / "confirm.json").read_text())
    assert summary["screen_judge"]["trainer"] == "fast"
    assert summary["screened_in"] == ["flip"]
    confirm = json.loads((tmp_path / "x" / "confirm" / "ablation.json").read_text())
    assert [r["arm"] for r in confirm["arms"]] == ["baseline", "flip"]
    assert confirm["judge"]["model"] == tiny_bert and confirm["seeds"] == [0, 1]
    flip = next(a for a in summary["arms"] if a["arm"] == "flip")
    assert "confirm" in flip and flip["agreement"]
    noop = next(a for a in summary["arms"] if a["arm"] == "noop")
    assert "confirm" not in noop


def test_probe_judge_takes_no_budget_and_scales_its_own_c(tmp_path):
    pytest.importorskip("sentence_transformers")
    from assay.testing import tiny_bert

    words = ["good", "great", "fine", "nice", "bad", "awful", "poor", "dull", "movie", "indeed"]
    encoder = str(tiny_bert(tmp_path / "encoder", words, classifier=False))
    variants = [{"name": "twice", "add": ["test_twice"], "controls": ["duplicate"]}]
    report = run_ablation(
        load_recipe(_recipe(_toy(tmp_path), variants, seeds=2, train_rows=60, model="probe",
                            model_options={"encoder": encoder}, budget={"steps": 300},
                            fast_regularisation="scale_c")),
        tmp_path / "out",
    ).report  # fmt: skip
    assert {k: v for k, v in report["judge"].items() if k not in JUDGE_RECORD} == {
        "model": "probe",
        "seeds": 2,
        "trainer": "probe",
    }
    control = "twice [duplicate control]"
    c = {r["arm"]: r["fast_c"] for r in report["arms"]}
    assert c["baseline"] == 3.0 and c[control] == pytest.approx(1.5)
    # Frozen embeddings: every row twice with C halved is exactly the baseline's objective.
    per_seed = {r["arm"]: r["per_seed"] for r in report["arms"]}
    assert per_seed[control] == pytest.approx(per_seed["baseline"], abs=1e-3)


@pytest.mark.slow
def test_an_arm_whose_label_noise_gate_refused_says_so_in_the_table(shared_data, tmp_path):
    # 200 SST-2 rows: the out-of-fold TF-IDF model is too weak for its flags to be acted on.
    source = _write_sst2(shared_data, tmp_path, 200)
    arm = {"name": "drop doubted", "add": [{"label_noise": {"action": "drop"}}]}
    recipe = load_recipe(_recipe(source, [arm], seeds=2))
    result = run_ablation(recipe, tmp_path / "out")
    arm = next(r for r in result.report["arms"] if r["arm"] == "drop doubted")
    assert arm["gate"] == (
        "label_noise's gate refused to drop in 2 of 2 cells (a weak out-of-fold model, or no "
        "gain on held-out rows); the rows were kept"
    )
    assert arm["verdict"].endswith(" (gate refused in 2 of 2 cells; rows kept)")
    assert any(w.startswith("drop doubted: label_noise's gate refused") for w in result.warnings)
    assert arm["train_rows"] == 200  # nothing was dropped
    saved = json.loads((tmp_path / "out" / "ablation.json").read_text())
    assert next(r for r in saved["arms"] if r["arm"] == "drop doubted")["gate"] == arm["gate"]
    assert arm["gate"] in (tmp_path / "out" / "ablation.csv").read_text()
