"""The base encoder, loaded once per process: its tokenizer, configuration and weights, the
token ids of each text, and the classification head a seed starts from."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from assay.errors import ResourceError, require
from assay.train import batching

_ENCODERS: dict[str, tuple[Any, Any, dict[str, Any]]] = {}
_TOKENS: dict[tuple[int, int], TokenCache] = {}


def base_encoder(model: str | None):
    """(tokenizer, config, fp32 state dict of the base encoder) for `model`, loaded once
    per process. A pooler the checkpoint lacks is left out of the state (`head_init`
    draws it from the seed)."""
    require("torch", "train", "fine-tuning")
    require("transformers", "train", "fine-tuning")
    from assay.resources import encoder

    path = str(encoder(model))
    if path not in _ENCODERS:
        import torch
        from transformers import AutoModel, AutoTokenizer

        from assay.resources import quiet_model_loading

        try:
            with quiet_model_loading():
                tokenizer = AutoTokenizer.from_pretrained(path)
                base, info = AutoModel.from_pretrained(
                    path, dtype=torch.float32, output_loading_info=True
                )
        except (OSError, ValueError) as exc:
            raise ResourceError(
                f"cannot load the encoder {model!r} ({path}): {str(exc).splitlines()[0]}; "
                "give a local model directory, or leave model unset for the packaged MiniLM"
            ) from None
        missing = set(info.get("missing_keys", []))
        state = {k: v.detach() for k, v in base.state_dict().items() if k not in missing}
        _ENCODERS[path] = (tokenizer, base.config, state)
    return _ENCODERS[path]


class TokenCache:
    """Token ids of each distinct text, computed once per process and tokenizer."""

    def __init__(self, tokenizer, max_length: int) -> None:
        self.tokenizer, self.max_length = tokenizer, max_length
        self.ids: dict[str, list[int]] = {}

    def add(self, texts: Sequence[str]) -> None:
        new = list(dict.fromkeys(t for t in texts if t not in self.ids))
        if new:
            self.ids.update(zip(new, batching.tokenize(self.tokenizer, new, self.max_length),
                                strict=True))  # fmt: skip

    def __call__(self, text: str) -> list[int]:
        if text not in self.ids:
            self.add([text])
        return self.ids[text]


def token_cache(tokenizer, max_length: int) -> TokenCache:
    key = (id(tokenizer), max_length)
    if key not in _TOKENS:
        _TOKENS[key] = TokenCache(tokenizer, max_length)
    return _TOKENS[key]


def head_init(seed: int, config, n_classes: int, state: dict[str, Any]):
    """(pooler weight, pooler bias, classifier weight, classifier bias) of a BERT-family
    classifier for `seed`, in the (out, in) layout of `nn.Linear`: the checkpoint's pooler
    where it has one, else drawn like the classifier (normal, std `initializer_range`, zero
    bias) from the seed's own generator. The stacked trainer and `EncoderModel` both start
    from it, so a cell starts from the same weights in either."""
    import torch

    g = torch.Generator().manual_seed(int(seed))
    hidden, std = config.hidden_size, config.initializer_range
    if "pooler.dense.weight" in state:
        pool_w = state["pooler.dense.weight"].float().clone()
        pool_b = state["pooler.dense.bias"].float().clone()
    else:
        pool_w = torch.randn((hidden, hidden), generator=g) * std
        pool_b = torch.zeros(hidden)
    cls_w = torch.randn((n_classes, hidden), generator=g) * std
    return pool_w, pool_b, cls_w, torch.zeros(n_classes)


def set_head(model, seed: int, path) -> None:
    """Give a BERT classifier the head `head_init` draws for this seed."""
    import torch

    if getattr(model.config, "model_type", None) != "bert" or not hasattr(model, "bert"):
        return
    pooler = model.bert.pooler
    state = {}
    if pooler is not None:
        _, _, base_state = base_encoder(str(path))
        state = base_state
    pw, pb, cw, cb = head_init(seed, model.config, model.classifier.out_features, state)
    with torch.no_grad():
        if pooler is not None:
            pooler.dense.weight.copy_(pw)
            pooler.dense.bias.copy_(pb)
        model.classifier.weight.copy_(cw)
        model.classifier.bias.copy_(cb)
