"""Faults: the server dies mid-push, duplicates left behind, a wrong URL."""

from __future__ import annotations

import json
import threading

import polars as pl
import pytest

from assay.corpus import from_records
from assay.curate.labelstudio import sync as ls_sync
from assay.curate.labelstudio.client import Connection
from assay.curate.labelstudio.config import init_project
from assay.errors import RemoteError

from .conftest import installed_server_module

LABELS = ["neg", "pos"]


def corpus_of(n: int) -> pl.DataFrame:
    return from_records(
        [f"row {i} of a corpus that is pushed in batches" for i in range(n)],
        ids=[f"r{i:05d}" for i in range(n)],
        split="unlabeled",
    )


def assay_ids(client, project_id: int) -> list[str]:
    return [t["data"]["assay_id"] for t in client.tasks(project_id)]


@pytest.mark.slow
@pytest.mark.integration
def test_server_killed_mid_push_then_rerun_converges_to_one_task_per_example(tmp_path, monkeypatch):
    mod = installed_server_module()
    # Its own server: this test kills it.
    server = mod.LabelStudioServer(tmp_path / "data")
    server.start()
    try:
        monkeypatch.setenv("ASSAY_LS_TOKEN", server.token)
        client = Connection(server.url).client()
        project = init_project(client, "killed mid push", LABELS)
        corpus = corpus_of(6000)
        sdk_import = client.sdk.projects.import_tasks
        calls = {"n": 0}
        killer = threading.Timer(0.05, server.kill)

        def import_then_die(**kwargs):
            calls["n"] += 1
            if calls["n"] == 3:  # two batches landed; the server dies during the third
                killer.start()
            return sdk_import(**kwargs)

        monkeypatch.setattr(client.sdk.projects, "import_tasks", import_then_die)
        state = tmp_path / "sync"
        with pytest.raises(RemoteError) as err:
            ls_sync.push(client, project, corpus, batch_size=1000, state_dir=state)
        assert "Label Studio" in str(err.value)
        assert not (state / "state.json").exists()  # nothing recorded as synced

        killer.join()
        server.start()  # same data and port
        fresh = Connection(server.url).client()
        landed = assay_ids(fresh, project.id)
        assert 2000 <= len(landed) < 6000
        report = ls_sync.push(fresh, project.id, corpus, batch_size=1000, state_dir=state)
        assert report.n_created == 6000 - len(landed)
        ids = assay_ids(fresh, project.id)
        assert len(ids) == 6000 and sorted(ids) == corpus["id"].to_list()
        assert json.loads((state / "state.json").read_text())["last_push"]["n_tasks"] == 6000
    finally:
        server.stop()


@pytest.mark.integration
def test_duplicate_tasks_from_a_lost_response_are_removed_on_the_next_push(ls_env, project_title):
    client = Connection(ls_env.url).client()
    project = init_project(client, project_title, LABELS)
    corpus = corpus_of(5)
    ls_sync.push(client, project, corpus)
    # An import whose response was lost and which a client retried: the same ids again.
    again = [{"data": {"text": t, "assay_id": i}} for i, t in corpus.select("id", "text").rows()]
    client.sdk.projects.import_tasks(id=project.id, request=again[:3])
    assert len(assay_ids(client, project.id)) == 8
    report = ls_sync.push(client, project, corpus)
    assert (report.n_duplicates_removed, report.n_created) == (3, 0)
    ids = assay_ids(client, project.id)
    assert sorted(ids) == corpus["id"].to_list()


def test_wrong_url_is_one_clear_error(monkeypatch, tmp_path):
    mod = pytest.importorskip("socket")
    with mod.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    monkeypatch.setenv("ASSAY_LS_TOKEN", "0" * 40)
    client = Connection(f"http://127.0.0.1:{port}", max_retries=0).client()
    with pytest.raises(RemoteError, match="cannot reach Label Studio") as err:
        ls_sync.push(client, 1, corpus_of(2), state_dir=tmp_path)
    assert "0" * 40 not in str(err.value)
    assert not (tmp_path / "state.json").exists()

    from click.testing import CliRunner

    from assay.recipes.cli.labelstudio import ls

    monkeypatch.setenv("ASSAY_LS_RETRIES", "0")
    out = CliRunner().invoke(ls, ["status", "--url", f"http://127.0.0.1:{port}", "-p", "1"])
    assert out.exit_code == 1
    assert out.output.count("\n") == 1 and "cannot reach Label Studio" in out.output
