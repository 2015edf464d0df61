from __future__ import annotations

import json

import pytest

from assay.curate.io import ReadOptions, read
from assay.curate.labelstudio.export import ANNOTATIONS, corpus_from_export, read_export
from assay.errors import InputError
from assay.recipes.schema import load_recipe


def ann(ann_id, user, choice, when, cancelled=False):
    result = [] if cancelled else [
        {"from_name": "sentiment", "to_name": "text", "type": "choices",
         "value": {"choices": [choice]}}
    ]  # fmt: skip
    return {"id": ann_id, "completed_by": user, "result": result, "was_cancelled": cancelled,
            "created_at": when, "updated_at": when}  # fmt: skip


def task(task_id, *annotations):
    data = {"text": f"text of task {task_id}", "assay_id": f"e{task_id}"}
    return {"id": task_id, "data": data, "annotations": list(annotations)}


# Planted: t1 and t3 are where the newest annotation and the annotators' majority differ.
EXPORT = [
    task(1, ann(11, 1, "pos", "2026-01-01"), ann(12, 2, "pos", "2026-01-02"),
         ann(13, 3, "neg", "2026-01-03")),  # majority pos, latest neg
    task(2, ann(21, 1, "neg", "2026-01-01"), ann(22, 2, "neg", "2026-01-02")),  # agreed
    task(3, ann(31, 1, "pos", "2026-01-01"), ann(32, 2, "neg", "2026-01-02")),  # tie; latest neg
    task(4, ann(41, 1, "pos", "2026-01-01"), ann(42, 2, None, "2026-01-03", cancelled=True)),
    task(5, ann(51, 1, "neg", "2026-01-01"), ann(52, 1, "pos", "2026-01-02")),  # changed mind
    task(6),  # never annotated
]  # fmt: skip

EXPECTED = {
    "latest": {"e1": "neg", "e2": "neg", "e3": "neg", "e4": "pos", "e5": "pos", "e6": None},
    "majority": {"e1": "pos", "e2": "neg", "e3": None, "e4": "pos", "e5": "pos", "e6": None},
    "all": {"e1": "pos", "e2": "neg", "e3": None, "e4": "pos", "e5": "pos", "e6": None},
}


@pytest.fixture
def export_file(tmp_path):
    path = tmp_path / "export.json"
    path.write_text(json.dumps(EXPORT))
    return path


@pytest.mark.parametrize("rule", ["latest", "majority", "all"])
def test_recipe_input_and_reader_give_the_same_labels_for_each_rule(tmp_path, export_file, rule):
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        f"name: ls\ninput:\n  source: {export_file}\n  id_column: assay_id\n"
        f"  annotations: {rule}\nsteps: []\n"
    )
    options = load_recipe(recipe).input
    assert options.annotations == rule
    through_recipe = read(options).corpus
    through_reader = corpus_from_export(export_file, annotations=rule)
    labels = dict(zip(through_reader["id"], through_reader["label"], strict=True))
    assert labels == EXPECTED[rule]
    assert dict(zip(through_recipe["id"], through_recipe["label"], strict=True)) == labels


def test_latest_and_majority_differ_exactly_on_the_planted_tasks(export_file):
    latest = corpus_from_export(export_file, annotations="latest")
    majority = corpus_from_export(export_file, annotations="majority")
    joined = latest.join(majority, on="id", suffix="_majority")
    differ = (
        joined.filter(joined["label"].ne_missing(joined["label_majority"]))["id"].sort().to_list()
    )
    assert differ == ["e1", "e3"]
    statuses = dict(zip(majority["id"], majority["labelstudio__status"], strict=True))
    assert statuses == {"e1": "majority", "e2": "agreed", "e3": "tie", "e4": "single",
                        "e5": "single", "e6": None}  # fmt: skip


def test_all_keeps_every_annotation_with_annotator_and_time(export_file):
    frame = read_export(export_file, annotations="all")
    rows = {r["assay_id"]: r[ANNOTATIONS] for r in frame.to_dicts()}
    assert [a["label"] for a in rows["e1"]] == ["pos", "pos", "neg"]
    assert [a["annotator"] for a in rows["e1"]] == ["1", "2", "3"]
    assert rows["e1"][2]["updated_at"] == "2026-01-03"
    assert [(a["label"], a["skipped"]) for a in rows["e4"]] == [("pos", False), (None, True)]
    assert rows["e6"] is None


def test_default_rule_is_majority_in_reader_and_recipe_input(export_file):
    assert ReadOptions(source=str(export_file)).annotations == "majority"
    frame = read_export(export_file)
    assert dict(zip(frame["assay_id"], frame["label"], strict=True)) == EXPECTED["majority"]


def test_unknown_rule_and_non_task_lists_are_one_line_errors(export_file, tmp_path):
    with pytest.raises(InputError, match=r"annotations must be one of \['latest'"):
        read_export(export_file, annotations="newest")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"tasks": []}))
    with pytest.raises(InputError, match="expected a JSON list of tasks"):
        read(ReadOptions(source=str(bad)))
    with pytest.raises(InputError, match="no data field 'body'"):
        read(ReadOptions(source=str(export_file), text_column="body"))
