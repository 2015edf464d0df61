"""Label Studio pieces that need no server: configs, selection, exports, CLI surface."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import polars as pl
import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from assay.corpus import from_records
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import check_config, label_config_xml, parse_label_config
from assay.curate.labelstudio.export import corpus_from_export
from assay.curate.labelstudio.steps import LabelStudioPull, LabelStudioPush
from assay.errors import InputError, RemoteError


def test_generated_config_round_trips_labels_with_markup_characters():
    labels = ["neg", 'say "hi"', "a&b", "<odd>"]
    config = parse_label_config(label_config_xml(labels))
    assert config.labels == tuple(labels)
    assert not config.multilabel
    multi = parse_label_config(label_config_xml(["a", "b"], multilabel=True))
    assert multi.multilabel
    assert multi.result(["a", "b"])[0]["value"] == {"choices": ["a", "b"]}


def test_config_without_choices_over_text_is_refused():
    with pytest.raises(InputError, match="no <Choices>"):
        parse_label_config('<View><Image name="i" value="$img"/></View>')
    with pytest.raises(InputError, match="not valid XML"):
        parse_label_config("<View>")


def test_config_check_names_missing_labels_and_choice_mismatch():
    config = parse_label_config(label_config_xml(["neg", "pos"]))
    check_config(config, ["pos"], multilabel=False)
    with pytest.raises(InputError, match=r"\['neu'\].*choice=\"multiple\""):
        check_config(config, ["neg", "neu"], multilabel=True)


def test_empty_label_set_cannot_make_a_config():
    with pytest.raises(InputError, match="--labels"):
        label_config_xml([])


def test_url_without_scheme_is_refused_with_an_example():
    with pytest.raises(InputError, match="http://"):
        Connection.from_env("localhost:8080")


def test_something_else_at_the_url_is_one_clear_error(monkeypatch, tmp_path):
    import http.server
    import threading

    class NotLabelStudio(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html>a blog</html>")

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), NotLabelStudio)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ASSAY_LS_TOKEN", "t")
        client = Connection(f"http://127.0.0.1:{server.server_port}", max_retries=0).client()
        with pytest.raises(RemoteError, match="did not answer like Label Studio"):
            client.check()
    finally:
        server.shutdown()


def test_token_comes_only_from_the_named_environment_variable(monkeypatch):
    monkeypatch.delenv("MY_LS_TOKEN", raising=False)
    conn = Connection("http://127.0.0.1:1", token_env="MY_LS_TOKEN")
    with pytest.raises(InputError, match="MY_LS_TOKEN"):
        conn.token()
    monkeypatch.setenv("MY_LS_TOKEN", "s3cret")
    assert conn.token() == "s3cret"
    assert "s3cret" not in repr(conn)


def test_recipe_config_refuses_a_token_in_place_of_a_variable_name():
    with pytest.raises(ValidationError, match="NAME of an environment variable"):
        LabelStudioPush(project="p", token_env="a55a7e57a55a7e57a55a7e57a55a7e57a55a7e57")
    with pytest.raises(ValidationError):
        LabelStudioPull(project="p", tokn_env="X")  # unknown key
    with pytest.raises(ValidationError, match="method"):
        LabelStudioPull(project="p", method="vote")


def test_select_rows_unlabeled_flagged_and_sample():
    corpus = from_records(
        ["a", "b", "c", "d", "e"],
        ["x", None, "y", None, "x"],
        ids=["r1", "r2", "r3", "r4", "r5"],
        split=["train", "unlabeled", "train", "unlabeled", "dev"],
    ).with_columns(noise__is_issue=pl.Series([True, False, True, True, False]))
    assert ls_sync.select_rows(corpus, only_unlabeled=True)["id"].to_list() == ["r2", "r4"]
    flagged = ls_sync.select_rows(corpus, flagged="noise__is_issue")
    assert flagged["id"].to_list() == ["r1", "r3", "r4"]
    assert ls_sync.select_rows(corpus, splits=["dev"])["id"].to_list() == ["r5"]
    one = ls_sync.select_rows(corpus, sample=2, rng=np.random.default_rng(3))["id"].to_list()
    two = ls_sync.select_rows(corpus, sample=2, rng=np.random.default_rng(3))["id"].to_list()
    assert one == two and len(one) == 2
    with pytest.raises(InputError, match=r"noise__is_issue"):
        ls_sync.select_rows(corpus, flagged="label_noise__is_issue")


def test_export_becomes_a_corpus_with_majority_labels_and_skips_kept_out():
    def ann(choice, user, cancelled=False):
        result = [] if cancelled else [
            {"from_name": "sentiment", "to_name": "text", "type": "choices",
             "value": {"choices": [choice]}}
        ]  # fmt: skip
        return {"id": user * 100, "completed_by": user, "result": result,
                "was_cancelled": cancelled}  # fmt: skip

    export = [
        {"id": 1, "data": {"text": "great", "assay_id": "e1"},
         "annotations": [ann("pos", 1), ann("pos", 2)]},
        {"id": 2, "data": {"text": "meh", "assay_id": "e2"},
         "annotations": [ann("pos", 1), ann("neg", 2)]},
        {"id": 3, "data": {"text": "awful"}, "annotations": [ann(None, 1, cancelled=True)]},
    ]  # fmt: skip
    corpus = corpus_from_export(export)
    rows = {r["id"]: r for r in corpus.to_dicts()}
    assert set(rows) == {"e1", "e2", "ls-3"}
    assert (rows["e1"]["label"], rows["e1"]["split"]) == ("pos", None)
    assert (rows["e2"]["label"], rows["e2"]["labelstudio__status"]) == (None, "tie")
    assert rows["ls-3"]["label"] is None and rows["ls-3"]["split"] == "unlabeled"
    with pytest.raises(InputError, match="neg"):
        corpus_from_export(export, labels=["pos"])


def test_every_ls_command_has_help():
    from assay.recipes.cli.labelstudio import ls

    runner = CliRunner()
    for name, command in ls.commands.items():
        assert command.help, name
        out = runner.invoke(ls, [name, "--help"])
        assert out.exit_code == 0 and "--token-env" in out.output


def test_steps_do_not_import_the_sdk_until_used():
    code = (
        "import sys, assay.curate.labelstudio.steps, assay.recipes.cli.labelstudio; "
        "print(any(m.startswith('label_studio_sdk') for m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
