"""Adapting the pretrained model before fine-tuning: domain terms as new tokens, frozen layers, LoRA."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from assay.errors import InputError, require

log = logging.getLogger(__name__)


class LoraSettings(BaseModel):
    """Low-rank adapters (peft): only the adapters and the classification head train."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    rank: int = Field(8, ge=1, description="adapter rank r")
    alpha: float = Field(16.0, gt=0, description="adapter scaling alpha")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout on the adapter input")
    target_modules: list[str] | None = Field(
        None, description="module names to adapt (peft's default for the architecture if unset)"
    )


def extend_vocabulary(tokenizer, model, terms: Sequence[str]) -> list[str]:
    """Add whole-word tokens for domain terms; each new embedding is the mean of the
    embeddings of the pieces the term was split into before (a better start than random)."""
    import torch
    from transformers import AddedToken

    vocab = tokenizer.get_vocab()
    new: list[str] = []
    pieces: list[list[int]] = []
    for term in dict.fromkeys(t.strip() for t in terms if t.strip()):
        ids = tokenizer(term, add_special_tokens=False)["input_ids"]
        if len(ids) <= 1 or term in vocab:
            continue  # already one token
        new.append(term)
        pieces.append(ids)
    if not new:
        return []
    tokenizer.add_tokens([AddedToken(t, single_word=True, normalized=True) for t in new])
    model.resize_token_embeddings(len(tokenizer))
    emb = model.get_input_embeddings().weight
    with torch.no_grad():
        for term, ids in zip(new, pieces, strict=True):
            emb[tokenizer.convert_tokens_to_ids(term)] = emb[ids].mean(dim=0)
    log.info("added %d domain terms to the tokenizer", len(new))
    return new


def _layers(model):
    import torch

    best = None
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.ModuleList) and name.split(".")[-1] in ("layer", "layers"):
            best = module
            break
    return best


def freeze(model, embeddings: bool, n_layers: int) -> None:
    """Stop gradients into the embeddings and the first `n_layers` transformer layers."""
    if embeddings:
        for name, module in model.named_modules():
            if name.split(".")[-1] == "embeddings":
                module.requires_grad_(False)
        model.get_input_embeddings().requires_grad_(False)
    if n_layers:
        layers = _layers(model)
        if layers is None:
            raise InputError(
                "freeze_layers is set but no transformer layer list was found in "
                f"{type(model).__name__}; use lora or freeze_embeddings instead"
            )
        if n_layers > len(layers):
            raise InputError(
                f"freeze_layers={n_layers} but the model has only {len(layers)} layers"
            )
        for layer in list(layers)[:n_layers]:
            layer.requires_grad_(False)


def apply_lora(model, settings: LoraSettings):
    require("peft", "train", "LoRA adapters")
    from peft import LoraConfig, TaskType, get_peft_model

    config = LoraConfig(
        task_type=TaskType.SEQ_CLS,
        r=settings.rank,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
    )
    return get_peft_model(model, config)
