"""The fine-tune loop: a transformers encoder with a classification head, trained on CPU or
CUDA with length-bucketed batches, warmup/decay, early stopping and optional LoRA.

`EncoderModel` has the fast model's interface (`fit`, `predict_proba`, `predict`,
`classes_`), so the ablation runner treats both alike.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from assay.errors import InputError, ResourceError, require
from assay.progress import Progress, SilentProgress
from assay.train import batching
from assay.train.base_encoder import (
    TokenCache,
    base_encoder,
    head_init,
    set_head,
    token_cache,
)
from assay.train.device import DeviceSetup, ThreadTuner, select_device
from assay.train.embedding import sliced_embedding
from assay.train.fast import EstimatorProtocol, class_array, fit_classes, not_fitted
from assay.train.finetune_config import FineTuneConfig, ParamsError, validated_config
from assay.train.finetune_schedule import eval_points, loss_weights, lr_factor
from assay.train.metrics import classification_report, encode
from assay.train.model_adaptation import LoraSettings, apply_lora, extend_vocabulary, freeze

log = logging.getLogger(__name__)

# The names importers have taken from here; each lives in the module named for it.
__all__ = [
    "EncoderModel",
    "FineTuneConfig",
    "LoraSettings",
    "ParamsError",
    "TokenCache",
    "base_encoder",
    "eval_points",
    "head_init",
    "loss_weights",
    "lr_factor",
    "token_cache",
]


class EncoderModel(EstimatorProtocol):
    """Fine-tunes a sequence-classification encoder; `fit` then `predict_proba`/`predict`.

    A scikit-learn estimator: its params are `seed`, `progress` and every FineTuneConfig
    field, so `clone`, `set_params(learning_rate=...)` and `cross_val_predict` work.
    """

    def __init__(
        self,
        seed: int = 0,
        config: FineTuneConfig | None = None,
        progress: Progress | None = None,
        **options: Any,
    ) -> None:
        if config is not None and options:
            raise TypeError("pass either a FineTuneConfig or keyword options, not both")
        self.config = config if config is not None else validated_config(options)
        # The values as given (not as validated), so scikit-learn's clone finds them back.
        self._params = {
            name: options[name] if name in options else getattr(self.config, name)
            for name in FineTuneConfig.model_fields
        }
        self._progress = progress
        self.seed = seed
        self.progress = progress or SilentProgress()
        # classes_ is set by fit only: scikit-learn's check_is_fitted looks for it.
        self.multilabel = False
        self.history: list[dict[str, Any]] = []
        self.steps = 0
        self.train_examples = 0
        self.train_seconds = 0.0
        self.setup: DeviceSetup | None = None
        self.model = None
        self.tokenizer = None
        self.added_terms: list[str] = []
        self.thread_history: list[tuple[int, int]] = []  # (step, CPU threads chosen)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {"seed": self.seed, "progress": self._progress, **self._params}

    def _param_defaults(self) -> dict[str, Any]:
        fields = FineTuneConfig.model_fields
        return {
            "seed": 0,
            "progress": None,
            **{k: f.get_default(call_default_factory=True) for k, f in fields.items()},
        }

    def set_params(self, **params: Any) -> EncoderModel:
        unknown = sorted(set(params) - set(FineTuneConfig.model_fields) - {"seed", "progress"})
        if unknown:
            raise InputError(
                f"EncoderModel got unknown params {unknown}; expected seed, progress or a "
                f"FineTuneConfig field ({sorted(FineTuneConfig.model_fields)})"
            )
        merged = {**self._params, **{k: v for k, v in params.items() if k in self._params}}
        self.config = validated_config(merged)  # first, so a bad value changes nothing
        self._params = merged
        if "progress" in params:
            self._progress = params["progress"]
            self.progress = self._progress or SilentProgress()
        self.seed = params.get("seed", self.seed)
        return self

    @property
    def examples_per_s(self) -> float:
        return self.train_examples / self.train_seconds if self.train_seconds else 0.0

    # -- building ---------------------------------------------------------------------------

    def _build(self, n_classes: int) -> None:
        require("torch", "train", "fine-tuning")
        require("transformers", "train", "fine-tuning")
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from assay.resources import encoder, quiet_model_loading

        cfg = self.config
        self.setup = select_device(cfg.device, cfg.threads)
        torch.manual_seed(self.seed)
        path = encoder(cfg.model)
        labels = {i: str(c) for i, c in enumerate(self.classes_)}
        try:
            with quiet_model_loading():
                self.tokenizer = AutoTokenizer.from_pretrained(path)
                self.model = AutoModelForSequenceClassification.from_pretrained(
                    path,
                    num_labels=n_classes,
                    id2label=labels,
                    label2id={c: i for i, c in labels.items()},
                    problem_type=(
                        "multi_label_classification"
                        if self.multilabel
                        else "single_label_classification"
                    ),
                    # A checkpoint fine-tuned on other labels: keep the encoder, new head.
                    ignore_mismatched_sizes=True,
                    # A checkpoint stored in half precision still trains in fp32.
                    dtype=torch.float32,
                )
        except (OSError, ValueError) as exc:
            raise ResourceError(
                f"cannot load the encoder {cfg.model!r} ({path}): {str(exc).splitlines()[0]}; "
                "give a local model directory, or leave model unset for the packaged MiniLM"
            ) from None
        set_head(self.model, self.seed, path)
        if cfg.domain_terms:
            self.added_terms = extend_vocabulary(self.tokenizer, self.model, cfg.domain_terms)
        if cfg.freeze_embeddings or cfg.freeze_layers:
            freeze(self.model, cfg.freeze_embeddings or cfg.freeze_layers > 0, cfg.freeze_layers)
        if cfg.lora is not None:
            self.model = apply_lora(self.model, cfg.lora)
        self.model.to(self.setup.device)

    # -- training ---------------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[Any],
        weights: Sequence[float] | np.ndarray | None = None,
        dev_texts: Sequence[str] | None = None,
        dev_labels: Sequence[Any] | None = None,
    ) -> EncoderModel:
        import torch

        texts, labels = list(texts), list(labels)
        if len(texts) != len(labels) or not texts:
            raise InputError(
                f"fine-tuning needs as many labels as texts (got {len(texts)} texts, "
                f"{len(labels)} labels) and at least one example"
            )
        multilabel = isinstance(labels[0], (list, tuple))
        if multilabel:
            names = sorted({str(x) for lab in labels for x in lab})
            classes = class_array(names)
        else:
            labels, names, classes = fit_classes(labels)
            if dev_labels is not None:
                dev_labels = [str(x.item() if isinstance(x, np.generic) else x) for x in dev_labels]
        if len(names) < 2 and not multilabel:
            raise InputError(f"fine-tuning needs at least two classes; found {names}")
        # A refit starts afresh, and a model that fails to load leaves no half-fitted model
        # that check_is_fitted would pass.
        self.model = None
        self.multilabel, self.classes_ = multilabel, classes
        self.history, self.steps, self.train_examples, self.train_seconds = [], 0, 0, 0.0
        try:
            self._build(len(names))
        except BaseException:
            del self.classes_
            raise
        cfg = self.config
        rng = np.random.default_rng(self.seed)
        train = batching.Encoded(
            batching.tokenize(self.tokenizer, texts, cfg.max_length),
            encode(labels, names),
            loss_weights(labels, weights, names, cfg, self.multilabel),
        )
        dev = None
        if dev_texts is not None and dev_labels is not None and len(dev_texts):
            dev = (list(dev_texts), list(dev_labels))
        batch = cfg.batch_size
        per_epoch = math.ceil(math.ceil(len(train) / batch) / cfg.grad_accum)
        total = cfg.max_steps or max(1, math.ceil(per_epoch * cfg.epochs))
        sliced = self._slice_embeddings(train)
        optimizer, scheduler = self._optimizer(total)
        evals = eval_points(per_epoch, total, cfg.evals_per_epoch)
        best, best_state, bad = -1.0, None, 0
        decay = best_decay = 1.0  # weight decay the untrained embedding rows accumulate
        pad = self.tokenizer.pad_token_id or 0
        loss_fn = self._loss_function()
        amp = _autocast(self.setup)
        scaler = torch.amp.GradScaler("cuda", enabled=self.setup.amp_dtype == "float16")
        tuner = (
            ThreadTuner(self.setup.threads)
            if self.setup.device == "cpu" and cfg.threads is None and self.setup.threads
            else None
        )
        self.thread_history = tuner.history if tuner is not None else []
        self.model.train()
        step = micro = 0
        started = time.perf_counter()
        eval_seconds = 0.0
        stop = False
        with self.progress.task("fine-tune (examples)", total=total * batch * cfg.grad_accum) as t:
            while not stop:
                for index in batching.batch_order(train.lengths, batch, rng, cfg.bucket_by_length):
                    if tuner is not None:
                        tuner.before_step()
                    ids, mask = batching.collate(train.input_ids, index, pad)
                    ids, mask = _to(ids, self.setup), _to(mask, self.setup)
                    target = torch.as_tensor(train.targets[index]).to(self.setup.device)
                    w = torch.as_tensor(train.weights[index]).to(self.setup.device)
                    with amp():
                        logits = self.model(input_ids=ids, attention_mask=mask).logits
                    loss = loss_fn(logits.float(), target, w) / cfg.grad_accum
                    scaler.scale(loss).backward()
                    micro += 1
                    self.train_examples += len(index)
                    t.advance(len(index))
                    if micro % cfg.grad_accum:
                        if tuner is not None:
                            tuner.after_step(ids.numel())
                        continue
                    if cfg.max_grad_norm:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                    scaler.step(optimizer)
                    scaler.update()
                    decay *= 1.0 - optimizer.param_groups[0]["lr"] * cfg.weight_decay
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    if tuner is not None:
                        tuner.after_step(ids.numel())
                    step += 1
                    if step in evals or step >= total:
                        record = {"step": step, "loss": float(loss.item() * cfg.grad_accum)}
                        if dev is not None:
                            e0 = time.perf_counter()
                            score = self._dev_score(*dev)
                            eval_seconds += time.perf_counter() - e0
                            record["dev_macro_f1"] = score
                            if score > best + 1e-9:
                                best, bad = score, 0
                                best_state, best_decay = _snapshot(self.model), decay
                            else:
                                bad += 1
                            self.model.train()
                        self.history.append(record)
                        log.info("step %d/%d %s", step, total, record)
                        patience = cfg.early_stopping_patience
                        if dev is not None and patience is not None and bad >= patience:
                            log.info("early stop at step %d: best dev macro-F1 %.4f", step, best)
                            stop = True
                    if step >= total:
                        stop = True
                    if stop:
                        break
        self.train_seconds = time.perf_counter() - started - eval_seconds
        self.steps = step
        if best_state is not None:
            self.model.load_state_dict(best_state, strict=False)
            decay = best_decay
        if sliced is not None:
            self.model.set_input_embeddings(sliced.merged(decay))
        self.model.eval()
        return self

    def _slice_embeddings(self, train: batching.Encoded):
        """Swap in an embedding that trains only the rows of tokens seen in training."""
        import torch

        cfg = self.config
        emb = self.model.get_input_embeddings()
        if (
            not cfg.slice_embeddings
            or cfg.lora is not None
            or not isinstance(emb, torch.nn.Embedding)
            or not emb.weight.requires_grad
            or self.model.get_output_embeddings() is not None  # tied to an output layer
        ):
            return None
        used = {i for row in train.input_ids for i in row}
        used.add(self.tokenizer.pad_token_id or 0)
        sliced = sliced_embedding(emb, used).to(self.setup.device)
        self.model.set_input_embeddings(sliced)
        return sliced

    def _loss_function(self):
        import torch.nn.functional as F

        if self.multilabel:

            def multi(logits, target, w):
                per = F.binary_cross_entropy_with_logits(
                    logits, target.float(), reduction="none"
                ).mean(dim=1)
                return (per * w).mean()

            return multi

        def single(logits, target, w):
            return (F.cross_entropy(logits, target, reduction="none") * w).mean()

        return single

    def _optimizer(self, total: int):
        import torch

        cfg = self.config
        decay, no_decay = [], []
        for name, p in self.model.named_parameters():
            if not p.requires_grad:
                continue
            (no_decay if p.ndim < 2 or "norm" in name.lower() else decay).append(p)
        groups = [
            {"params": decay, "weight_decay": cfg.weight_decay},
            {"params": no_decay, "weight_decay": 0.0},
        ]
        try:
            # One fused kernel instead of a dozen passes over 22M parameters: the optimiser
            # step drops from ~45% to ~10% of a MiniLM step on CPU.
            opt = torch.optim.AdamW(groups, lr=cfg.learning_rate, fused=True)
        except (RuntimeError, ValueError):  # a device or dtype without the fused kernel
            opt = torch.optim.AdamW(groups, lr=cfg.learning_rate)
        return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_factor(total, cfg.warmup_ratio))

    # -- inference --------------------------------------------------------------------------

    def _dev_score(self, texts: list[str], labels: list[Any]) -> float:
        pred = self.predict(texts)
        if not self.multilabel:  # dev labels were turned into strings in fit
            pred = [str(p) for p in pred]
        flat = (x for lab in labels for x in lab) if self.multilabel else labels
        classes = sorted(set(map(str, self.classes_)) | {str(x) for x in flat})
        return classification_report(labels, pred, classes)["macro_f1"]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        self._check_fitted()  # before torch loads: an unfitted model needs none
        import torch

        texts = list(texts)
        out = np.zeros((len(texts), len(self.classes_)), dtype=np.float32)
        if not texts:
            return out
        ids_all = batching.tokenize(self.tokenizer, texts, self.config.max_length)
        lengths = np.array([len(x) for x in ids_all])
        pad = self.tokenizer.pad_token_id or 0
        amp = _autocast(self.setup)
        self.model.eval()
        with torch.inference_mode():
            for index in batching.eval_order(lengths, self.config.eval_batch_size):
                ids, mask = batching.collate(ids_all, index, pad)
                with amp():
                    logits = self.model(
                        input_ids=ids.to(self.setup.device),
                        attention_mask=_to(mask, self.setup),
                    ).logits.float()
                p = torch.sigmoid(logits) if self.multilabel else torch.softmax(logits, dim=-1)
                out[index] = p.cpu().numpy()
        return out

    def _check_fitted(self) -> None:
        if self.model is None or not hasattr(self, "classes_"):
            raise not_fitted("EncoderModel")

    def predict(self, texts: Sequence[str]) -> list[Any]:
        proba = self.predict_proba(texts)
        if not self.multilabel:
            return self.classes_[proba.argmax(axis=1)].tolist()  # Python values, as given
        hits = proba >= self.config.threshold
        return [[c for c, h in zip(self.classes_, row, strict=True) if h] for row in hits]

    def save(self, directory: str | Path) -> Path:
        """Write the model (or only the LoRA adapter) and the tokenizer."""
        self._check_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(directory)
        self.tokenizer.save_pretrained(directory)
        return directory


# -- building blocks ----------------------------------------------------------------------


def _snapshot(model) -> dict[str, Any]:
    """A copy of the trainable state, enough to restore the best checkpoint."""
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    state = model.state_dict()
    return {k: v.detach().clone() for k, v in state.items() if k in trainable} or {
        k: v.detach().clone() for k, v in state.items()
    }


def _to(tensor, setup: DeviceSetup):
    return None if tensor is None else tensor.to(setup.device)


def _autocast(setup: DeviceSetup | None):
    import contextlib

    if setup is None or setup.amp_dtype is None:
        return contextlib.nullcontext
    import torch

    dtype = getattr(torch, setup.amp_dtype)
    return lambda: torch.autocast(device_type="cuda", dtype=dtype)
