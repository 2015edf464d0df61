from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

import torch

from assay.train.finetune import EncoderModel, LoraSettings, loss_weights

POSITIVE = ["good", "great", "fine", "lovely", "superb"]
NEGATIVE = ["bad", "awful", "poor", "dull", "boring"]
FILLER = ["the", "film", "movie", "was", "is", "a", "plot", "very", "and", "it"]


def separable(n: int, seed: int) -> tuple[list[str], list[str]]:
    """Filler words plus one sentiment word that decides the label."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = [
            *rng.choice(FILLER, rng.integers(2, 9)),
            rng.choice(POSITIVE if positive else NEGATIVE),
        ]
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


FAST = {"learning_rate": 3e-3, "warmup_ratio": 0.0, "batch_size": 16, "threads": 1}


def test_loop_learns_separable_task_with_tiny_random_model(tiny_encoder):
    texts, labels = separable(400, 0)
    dev_texts, dev_labels = separable(100, 1)
    test_texts, test_labels = separable(200, 2)
    model = EncoderModel(seed=0, model=str(tiny_encoder), epochs=12, **FAST)
    model.fit(texts, labels, dev_texts=dev_texts, dev_labels=dev_labels)
    accuracy = np.mean(np.array(model.predict(test_texts)) == np.array(test_labels))
    assert accuracy >= 0.95
    assert list(model.classes_) == ["neg", "pos"]
    assert model.steps > 0 and model.history[-1]["dev_macro_f1"] > 0.9
    proba = model.predict_proba(test_texts[:3])
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)


def test_same_seed_same_model(tiny_encoder):
    """Bit-exact on a CPU. CUDA kernels are not bit-reproducible: the GPU tests
    (`test_stacked_gpu.py`) compare to a tolerance instead."""
    texts, labels = separable(64, 3)
    runs = [
        EncoderModel(seed=5, model=str(tiny_encoder), max_steps=6, device="cpu", **FAST)
        .fit(texts, labels)
        .predict_proba(texts[:8])
        for _ in range(2)
    ]
    np.testing.assert_array_equal(runs[0], runs[1])


def test_fixed_step_budget_is_exact(tiny_encoder):
    texts, labels = separable(40, 4)
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=7, grad_accum=2, **FAST)
    model.fit(texts, labels)
    assert model.steps == 7
    # 40 rows in micro-batches of 16, 16, 8: 14 micro-batches span 4 passes and 2 batches.
    assert model.train_examples == 4 * 40 + 32


def test_class_weights_change_the_loss(tiny_encoder):
    texts, labels = separable(32, 5)
    losses = {}
    for name, weights in (("none", None), ("pos-heavy", {"pos": 5.0, "neg": 1.0})):
        model = EncoderModel(
            seed=0, model=str(tiny_encoder), class_weights=weights, max_steps=1, **FAST
        )
        model.fit(texts, labels)
        w = torch.as_tensor(loss_weights(labels, None, model.classes_, model.config))
        target = torch.as_tensor([list(model.classes_).index(x) for x in labels])
        logits = torch.zeros(len(labels), 2)
        logits[:, 0] = 1.0  # confidently "neg": positives cost more under pos-heavy weights
        losses[name] = float(model._loss_function()(logits, target, w))
        if weights:  # a positive weighs five negatives
            by_label = {y: float(x) for y, x in zip(labels, w, strict=True)}
            assert by_label["pos"] == pytest.approx(5 * by_label["neg"])
    assert losses["pos-heavy"] > losses["none"] * 1.2


def test_sample_weights_scale_example_losses(tiny_encoder):
    texts, labels = separable(8, 6)
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=1, **FAST)
    model.fit(texts, labels)
    w = loss_weights(labels, [1, 1, 1, 1, 3, 3, 3, 3], model.classes_, model.config)
    np.testing.assert_allclose(w, [0.5] * 4 + [1.5] * 4)


def test_lora_trains_only_adapter_and_head(tiny_encoder):
    texts, labels = separable(64, 7)
    model = EncoderModel(
        seed=0,
        model=str(tiny_encoder),
        max_steps=5,
        lora=LoraSettings(rank=4, target_modules=["query", "value"]),
        **FAST,
    )
    model.classes_ = ["neg", "pos"]
    model._build(2)  # fit rebuilds from the same seed: identical starting weights
    before = {n: p.detach().clone() for n, p in model.model.named_parameters()}
    trainable = [n for n, p in model.model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n or "classifier" in n for n in trainable)
    model.fit(texts, labels)
    changed = {n for n, p in model.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and all("lora_" in n or "classifier" in n for n in changed)


def test_freezing_layers_keeps_them_fixed(tiny_encoder):
    texts, labels = separable(64, 8)
    model = EncoderModel(seed=0, model=str(tiny_encoder), max_steps=4, freeze_layers=1, **FAST)
    model.fit(texts, labels)
    frozen = [n for n, p in model.model.named_parameters() if not p.requires_grad]
    assert any("layer.0." in n for n in frozen) and any("embeddings" in n for n in frozen)
    assert not any("layer.1." in n for n in frozen)


def test_domain_terms_become_single_tokens_with_mean_embedding(tiny_encoder):
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    original = AutoModelForSequenceClassification.from_pretrained(str(tiny_encoder), num_labels=2)
    tok = AutoTokenizer.from_pretrained(str(tiny_encoder))
    pieces = tok("goodfilm", add_special_tokens=False)["input_ids"]
    assert len(pieces) == 2  # good + ##film
    expected = original.get_input_embeddings().weight[pieces].mean(dim=0)

    model = EncoderModel(seed=0, model=str(tiny_encoder), domain_terms=["goodfilm", "film"], **FAST)
    model.classes_ = ["neg", "pos"]
    model._build(2)
    assert model.added_terms == ["goodfilm"]  # "film" is already one token
    ids = model.tokenizer("a goodfilm", add_special_tokens=False)["input_ids"]
    assert len(ids) == 2
    new_row = model.model.get_input_embeddings().weight[ids[1]]
    torch.testing.assert_close(new_row, expected)


@pytest.mark.slow
def test_multilabel_targets_train_with_sigmoid_outputs(tiny_encoder):
    texts, labels = separable(200, 9)
    multi = [
        [lab, "film"] if "film" in text.split() else [lab]
        for text, lab in zip(texts, labels, strict=True)
    ]
    model = EncoderModel(seed=0, model=str(tiny_encoder), epochs=20, **FAST).fit(texts, multi)
    assert list(model.classes_) == ["film", "neg", "pos"]
    test_texts, test_labels = separable(100, 12)
    proba = model.predict_proba(test_texts)
    assert proba.shape == (100, 3) and not np.allclose(proba.sum(axis=1), 1.0)  # sigmoids
    predicted = model.predict(test_texts)
    assert all(isinstance(p, list) for p in predicted)
    # The sentiment label of each text is among its predicted labels, and only it.
    hits = [(lab in p) and (({"pos", "neg"} - {lab}) & set(p) == set()) for p, lab in
            zip(predicted, test_labels, strict=True)]  # fmt: skip
    assert np.mean(hits) >= 0.95


def test_thread_tuner_keeps_the_faster_thread_count(monkeypatch):
    from assay.train import device

    set_to = []
    monkeypatch.setattr(torch, "set_num_threads", set_to.append)
    monkeypatch.setattr(device, "_load_sample", lambda: None)  # no /proc: try every count
    # Fake step times: 1 thread takes 1.0 s per step, 2 threads 5.0 s (an overloaded core).
    now = [0.0]
    monkeypatch.setattr(device.time, "perf_counter", lambda: now[0])
    tuner = device.ThreadTuner(start=2, cores=2, trial_steps=2, period=10)
    assert tuner.candidates == [1, 2]
    for _ in range(14):
        tuner.before_step()
        now[0] += 1.0 if tuner.threads == 1 else 5.0
        tuner.after_step(tokens=100)
    # Round 1: 2 steps at 1 thread, 1 step at 2 threads (dropped: > 2x slower); the
    # second round starts 10 steps after the first.
    assert tuner.history == [(3, 1), (13, 1)]
    assert tuner.threads == 1
    assert set_to[:2] == [1, 2] and set_to[-1] == 1


def test_thread_tuner_reacts_to_a_slowdown_and_skips_oversubscription(monkeypatch):
    from assay.train import device

    monkeypatch.setattr(torch, "set_num_threads", lambda n: None)
    # Other processes: idle at first, then 1.5 cores busy.
    samples = iter([(0.0, 0.0, 0.0), (10.0, 0.0, 0.0), (20.0, 25.0, 10.0)])
    monkeypatch.setattr(device, "_load_sample", lambda: next(samples))
    now = [0.0]
    monkeypatch.setattr(device.time, "perf_counter", lambda: now[0])
    tuner = device.ThreadTuner(start=2, cores=2, trial_steps=1, period=100)
    step_time = {1: 1.0, 2: 0.6}
    for i in range(6):
        if i == 3:
            step_time[2] = 4.0  # load arrives: two threads now oversubscribe
        tuner.before_step()
        now[0] += step_time[tuner.threads]
        tuner.after_step(tokens=1)
    # Chose 2 threads, saw them slow down, and (others now busy) only 1 was allowed.
    assert [t for _, t in tuner.history] == [2, 1]
    assert tuner.threads == 1


def test_free_cores_subtracts_busy_cores():
    from assay.train.device import free_cores

    assert free_cores(cores=2, busy=0.2) == 2
    assert free_cores(cores=2, busy=1.1) == 1
    assert free_cores(cores=2, busy=3.5) == 1
    assert free_cores(cores=8, busy=2.6) == 5


def test_early_stopping_restores_the_best_dev_checkpoint(tiny_encoder, monkeypatch):
    texts, labels = separable(32, 10)  # 2 optimiser steps per epoch
    scores = iter([0.5, 0.9, 0.6, 0.4, 0.3])
    seen = []

    def fake_dev_score(self, dev_texts, dev_labels):
        seen.append(self.model.classifier.weight.detach().clone())
        return next(scores)

    monkeypatch.setattr(EncoderModel, "_dev_score", fake_dev_score)
    model = EncoderModel(
        seed=0, model=str(tiny_encoder), epochs=10, early_stopping_patience=2, **FAST
    )
    model.fit(texts, labels, dev_texts=texts[:4], dev_labels=labels[:4])
    assert [h["dev_macro_f1"] for h in model.history] == [0.5, 0.9, 0.6, 0.4]
    assert model.steps == 8  # stopped after two evaluations without gain, not 20
    torch.testing.assert_close(model.model.classifier.weight, seen[1])
    assert not torch.equal(model.model.classifier.weight, seen[3])


def test_sliced_embeddings_give_the_same_model(tiny_encoder):
    texts, labels = separable(96, 11)
    runs = {}
    for sliced in (True, False):
        model = EncoderModel(
            seed=3,
            model=str(tiny_encoder),
            epochs=2,
            slice_embeddings=sliced,
            weight_decay=0.1,
            **FAST,
        ).fit(texts, labels)
        assert isinstance(model.model.get_input_embeddings(), torch.nn.Embedding)
        runs[sliced] = (
            model.model.get_input_embeddings().weight.detach(),
            model.predict_proba(texts),
        )
    torch.testing.assert_close(runs[True][0], runs[False][0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(runs[True][1], runs[False][1], rtol=1e-4, atol=1e-5)


def test_missing_encoder_is_one_resource_error(tmp_path, monkeypatch):
    from assay.errors import ResourceError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    with pytest.raises(ResourceError, match="cannot load the encoder"):
        EncoderModel(model=str(empty), threads=1).fit(["a b", "c d"], ["x", "y"])
