"""The settings of the fine-tune loop (`FineTuneConfig`), one default per setting, and the
one error that names every bad setting an `EncoderModel` is given."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from assay.errors import InputError, shorten
from assay.train.model_adaptation import LoraSettings


class FineTuneConfig(BaseModel):
    """Settings of the fine-tune loop. One default per setting, defined here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = Field(
        None, description="encoder: HF id or path; unset = the packaged all-MiniLM-L6-v2"
    )
    max_length: int = Field(128, ge=8, description="tokens per example (longer is truncated)")
    batch_size: int = Field(
        16,
        ge=1,
        description="examples per optimiser micro-batch, the same on every device (a step "
        "budget then means the same examples seen on CPU and GPU)",
    )
    eval_batch_size: int = Field(64, ge=1, description="examples per inference batch")
    epochs: float = Field(3.0, gt=0, description="passes over the training set")
    max_steps: int | None = Field(
        None, ge=1, description="fixed number of optimiser steps (overrides epochs)"
    )
    learning_rate: float = Field(5e-5, gt=0, description="peak learning rate (AdamW)")
    weight_decay: float = Field(0.01, ge=0, description="AdamW weight decay (not on biases/norms)")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="share of steps of linear warmup")
    grad_accum: int = Field(1, ge=1, description="micro-batches per optimiser step")
    max_grad_norm: float | None = Field(1.0, gt=0, description="gradient clipping norm")
    class_weights: Literal["balanced"] | dict[str, float] | None = Field(
        None, description="loss weight per class: 'balanced' (inverse frequency) or a mapping"
    )
    sample_weights: bool = Field(True, description="scale each example's loss by its weight")
    early_stopping_patience: int | None = Field(
        2, ge=1, description="evaluations without dev macro-F1 gain before stopping"
    )
    evals_per_epoch: int = Field(1, ge=1, description="dev evaluations per epoch")
    lora: LoraSettings | None = Field(None, description="train LoRA adapters instead")
    freeze_embeddings: bool = Field(False, description="keep the embedding layer fixed")
    freeze_layers: int = Field(0, ge=0, description="keep the first N transformer layers fixed")
    domain_terms: list[str] = Field(
        default_factory=list,
        description="words added to the tokenizer as whole tokens (embedding = mean of pieces)",
    )
    bucket_by_length: bool = Field(True, description="length-bucketed batches (less padding)")
    slice_embeddings: bool = Field(
        True,
        description="train only the embedding rows of tokens in the training set "
        "(same weights, less work per step)",
    )
    threshold: float = Field(0.5, gt=0, lt=1, description="multi-label decision threshold")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    threads: int | None = Field(None, ge=1, description="CPU threads (free cores if unset)")


class ParamsError(InputError, ValueError):
    """A bad EncoderModel param: assay's input error, and the ValueError that scikit-learn's
    tools expect from a constructor or `set_params` that validates."""


def validated_config(params: dict[str, Any]) -> FineTuneConfig:
    """The FineTuneConfig of `params`, or one InputError naming each bad param."""
    from pydantic import ValidationError

    try:
        return FineTuneConfig(**params)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {shorten(e.get('input'))})"
            for e in exc.errors()
        )
        raise ParamsError(f"EncoderModel got bad params: {problems}") from None
