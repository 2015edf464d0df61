from __future__ import annotations

import importlib.util
import sys
import uuid
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[3] / "scripts" / "labelstudio_server.py"


def server_module():
    """scripts/labelstudio_server.py, imported by path (scripts/ is not a package)."""
    name = "assay_labelstudio_server"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, SCRIPT)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


def installed_server_module():
    """The server module, with label-studio installed; skips (saying why) when it cannot be."""
    mod = server_module()
    try:
        mod.install()
    except mod.ServerError as exc:
        pytest.skip(f"Label Studio server cannot be installed here: {exc}")
    return mod


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory):
    """A real Label Studio server on 127.0.0.1 for the whole session (admin + annotator2)."""
    mod = installed_server_module()
    server = mod.LabelStudioServer(tmp_path_factory.mktemp("label-studio") / "data")
    server.start()
    yield server
    server.stop()


@pytest.fixture
def ls_env(ls_server, monkeypatch):
    """The admin token in ASSAY_LS_TOKEN and the URL in ASSAY_LS_URL, for this test only."""
    monkeypatch.setenv("ASSAY_LS_TOKEN", ls_server.token)
    monkeypatch.setenv("ASSAY_LS_URL", ls_server.url)
    return ls_server


@pytest.fixture
def project_title(request) -> str:
    """A project title unique to the test, so tests never share a project."""
    return f"{request.node.name[:40]}-{uuid.uuid4().hex[:6]}"
