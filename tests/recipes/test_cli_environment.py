"""docs/cli.md's table of environment variables names every `ASSAY_*` and `LABEL_STUDIO_*`
variable the library reads, and the completion lines it documents are click's."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LIBRARY = ("assay", "curate", "augment", "train", "audits", "recipes")
NAME = re.compile(r"(ASSAY|LABEL_STUDIO)_[A-Z0-9_]+")


def _names_in_code() -> dict[str, str]:
    """Every string constant that is a whole variable name (what os.environ.get, click's
    envvar= and the *_ENV constants hold; names inside longer messages are not reads)."""
    found = {}
    for folder in LIBRARY:
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                text = node.value if isinstance(node, ast.Constant) else None
                if isinstance(text, str) and NAME.fullmatch(text):
                    found.setdefault(text, str(path.relative_to(ROOT)))
    return found


def _documented() -> dict[str, list[str]]:
    text = (ROOT / "docs" / "cli.md").read_text()
    section = text.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`"):
            rows[cells[0].strip("`")] = cells[1:]
    return rows


@pytest.mark.slow
def test_every_variable_the_library_reads_is_in_the_table():
    read = _names_in_code()
    # The scan finds the names it must (it would pass vacuously if it found none).
    assert {"ASSAY_HOME", "ASSAY_CACHE_DIR", "ASSAY_LS_TOKEN", "ASSAY_LS_URL"} <= set(read)
    assert {"LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY", "ASSAY_LS_RETRIES"} <= set(read)
    documented = _documented()
    missing = {name: where for name, where in read.items() if name not in documented}
    assert not missing, f"undocumented in docs/cli.md: {missing}"


def test_each_row_says_what_the_variable_does_and_its_default():
    documented = _documented()
    assert {"HF_HUB_OFFLINE", "MLFLOW_ALLOW_FILE_STORE", "RAY_ADDRESS"} <= set(documented)
    for name, (what, default) in documented.items():
        assert len(what) > 20 and default, name
    assert documented["ASSAY_LS_TIMEOUT"][1] == "`300`"
    assert documented["ASSAY_LS_RETRIES"][1] == "`2`"
    assert "LABEL_STUDIO_URL" in documented["ASSAY_LS_URL"][1]
    assert "LABEL_STUDIO_API_KEY" in documented["ASSAY_LS_TOKEN"][1]


def test_the_documented_defaults_are_the_codes():
    from assay.curate.labelstudio import client

    assert client.DEFAULT_TIMEOUT == 300.0
    assert (client.URL_ENV, client.SDK_URL_ENV) == ("ASSAY_LS_URL", "LABEL_STUDIO_URL")
    assert (client.TOKEN_ENV, client.SDK_TOKEN_ENV) == ("ASSAY_LS_TOKEN", "LABEL_STUDIO_API_KEY")


def test_the_label_studio_fallbacks_are_read(monkeypatch):
    from assay.curate.labelstudio.client import Connection

    for name in ("ASSAY_LS_URL", "ASSAY_LS_TOKEN", "ASSAY_LS_RETRIES", "ASSAY_LS_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://sdk-host:8080/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "sdk-token")
    connection = Connection.from_env()
    assert connection.url == "http://sdk-host:8080" and connection.token() == "sdk-token"
    assert (connection.timeout, connection.max_retries) == (300.0, 2)
    monkeypatch.setenv("ASSAY_LS_URL", "http://assay-host:8080")
    monkeypatch.setenv("ASSAY_LS_TOKEN", "assay-token")
    connection = Connection.from_env()
    assert connection.url == "http://assay-host:8080" and connection.token() == "assay-token"


def test_the_documented_completion_lines_are_clicks():
    text = (ROOT / "docs" / "cli.md").read_text()
    for shell in ("bash", "zsh"):
        assert f'eval "$(_ASSAY_COMPLETE={shell}_source assay)"' in text
    assert "_ASSAY_COMPLETE=fish_source assay | source" in text
