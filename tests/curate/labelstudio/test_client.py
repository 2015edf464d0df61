from __future__ import annotations

import http.server
import json
import threading

import pytest
from click.testing import CliRunner

from assay.curate.labelstudio import client as client_mod
from assay.curate.labelstudio.client import Connection, redact
from assay.errors import InputError, RemoteError


def test_timeout_defaults_to_300_and_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv("ASSAY_LS_TIMEOUT", raising=False)
    assert Connection.from_env("http://h:1").timeout == 300.0
    monkeypatch.setenv("ASSAY_LS_TIMEOUT", "12.5")
    assert Connection.from_env("http://h:1").timeout == 12.5
    assert Connection("http://h:1").timeout == 12.5
    assert Connection.from_env("http://h:1", timeout=3).timeout == 3.0
    monkeypatch.setenv("ASSAY_LS_TIMEOUT", "soon")
    with pytest.raises(InputError, match="ASSAY_LS_TIMEOUT must be a number"):
        Connection.from_env("http://h:1")


def test_ls_commands_take_a_timeout(monkeypatch, tmp_path):
    from assay.recipes.cli import main

    seen = {}

    def fake_from_env(url, token_env=None, timeout=None):
        seen["timeout"] = timeout
        raise InputError("stop here")

    monkeypatch.setattr(Connection, "from_env", staticmethod(fake_from_env))
    corpus = tmp_path / "c.csv"
    corpus.write_text("text,label\na b,x\n")
    for command in (["status"], ["pull", "--out", str(tmp_path / "o.parquet")]):
        result = CliRunner().invoke(
            main, ["ls", *command, "--url", "http://h:1", "-p", "1", "--timeout", "7"]
        )
        assert "stop here" in result.output, result.output
        assert seen.pop("timeout") == 7.0
    result = CliRunner().invoke(
        main, ["ls", "status", "--url", "http://h:1", "-p", "1", "--timeout", "0"]
    )
    assert result.exit_code == 2


def test_sdk_variables_are_read_when_assays_are_unset(monkeypatch):
    for name in ("ASSAY_LS_URL", "ASSAY_LS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://ls.example:8080/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", "sdk-token-1234")
    conn = Connection.from_env()
    assert conn.url == "http://ls.example:8080" and conn.token() == "sdk-token-1234"
    monkeypatch.setenv("ASSAY_LS_TOKEN", "assay-token-9876")
    assert conn.token() == "assay-token-9876"
    # a variable named on purpose is the only one read
    with pytest.raises(InputError, match="OTHER_VAR"):
        Connection.from_env(token_env="OTHER_VAR").token()


def test_redact_removes_url_credentials_and_secrets():
    text = "failed at https://ann:hunter22@ls.example/api with token abcd1234efgh"
    out = redact(text, ("abcd1234efgh",))
    assert "hunter22" not in out and "ann" not in out and "abcd1234efgh" not in out
    assert "https://***@ls.example/api" in out


def test_remote_errors_never_carry_the_token_or_url_credentials(monkeypatch):
    pytest.importorskip("label_studio_sdk")
    token = "s3cr3t-t0ken-value"

    class EchoesToken(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps({"detail": f"bad things with {self.headers.get('Authorization')}"})
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), EchoesToken)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("ASSAY_LS_TOKEN", token)
        url = f"http://admin:pa55word@127.0.0.1:{server.server_port}"
        client = Connection(url, max_retries=0).client()
        for call in (client.check, client.server_time):
            with pytest.raises(RemoteError) as info:
                call()
            message = str(info.value)
            assert "500" in message
            assert token not in message and "pa55word" not in message, message
    finally:
        server.shutdown()


def test_task_listing_needs_the_tested_sdk(monkeypatch):
    from assay.errors import ResourceError

    client = client_mod.Client(object(), "http://h:1")
    with pytest.raises(ResourceError, match=r"label-studio-sdk>=2\.1,<2\.2"):
        client.server_time()
