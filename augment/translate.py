"""Machine translation for augmentation: one protocol, three backends, one content cache.

`Translator.translate(texts, src, tgt) -> texts` translates a batch. Every backend shares
a content cache across runs: a text already translated by the same backend, model and
language pair is read back instead of recomputed. The cache is one SQLite file per
(backend, model, pair) under assay's home (`<home>/translations/`), keyed by the xxh3-128
hash of the text; each batch of new translations is written in one transaction, so an
interrupted run leaves the file either with the batch or without it.

Backends:

- `apertium` (default, offline, rule-based): a batch goes through the pair's pipeline in
  one pass, sentences separated by null characters, with no state carried from one
  sentence to the next (see `ApertiumTranslator`); a batch whose output does not split
  back is an error.
- `hf`: a Hugging Face seq2seq model (MarianMT, NLLB, M2M...) by id or path, batched, on
  the GPU when there is one; loaded once per process.
- `ctranslate2`: a model directory converted by CTranslate2, with the Hugging Face
  tokenizer stored next to it (or given as `tokenizer`).
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any, ClassVar

import xxhash
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assay import resources
from assay.augment.apertium import ApertiumPipeline
from assay.errors import InputError, ResourceError, require

_SPACE = re.compile(r"\s+")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_SQL_CHUNK = 900  # SQLite's bound-parameter limit is 999 on old builds


def text_key(text: str) -> str:
    return xxhash.xxh3_128_hexdigest(text.encode("utf-8"))


def cache_dir() -> Path:
    """Where translations are cached: `<assay home>/translations`."""
    return resources.home() / "translations"


class TranslationCache:
    """Translations of one (backend, model, pair), keyed by the hash of the source text."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY, v TEXT NOT NULL)")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=60)
        db.execute("PRAGMA journal_mode=WAL")
        return db

    def get(self, keys: list[str]) -> dict[str, str]:
        out: dict[str, str] = {}
        with self._connect() as db:
            for start in range(0, len(keys), _SQL_CHUNK):
                part = keys[start : start + _SQL_CHUNK]
                marks = ",".join("?" * len(part))
                out.update(db.execute(f"SELECT k, v FROM t WHERE k IN ({marks})", part))
        return out

    def put(self, items: Iterable[tuple[str, str]]) -> None:
        db = self._connect()
        try:
            with db:  # one transaction: all or nothing
                db.executemany("INSERT OR REPLACE INTO t (k, v) VALUES (?, ?)", list(items))
        finally:
            db.close()

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM t").fetchone()[0])


class Translator:
    """A batched translator with a content cache; subclasses implement `_translate`."""

    backend: ClassVar[str] = "base"

    def __init__(self, model: str, cache: bool = True, cache_root: Path | None = None) -> None:
        self.model = model
        self.cache_enabled = cache
        self.cache_root = cache_root
        self.computed = 0  # texts translated (not read from the cache) by this object
        self._caches: dict[tuple[str, str], TranslationCache] = {}

    def model_key(self) -> str:
        """The model's identity in the cache (a path adds the size and time of its files)."""
        path = Path(self.model)
        if not path.exists():
            return self.model
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        stamp = [(str(p.relative_to(path)) if path.is_dir() else p.name) for p in files]
        stats = [
            (s, p.stat().st_size, p.stat().st_mtime_ns) for s, p in zip(stamp, files, strict=True)
        ]
        return (
            f"{path.name}-{xxhash.xxh3_64_hexdigest(repr((str(path.resolve()), stats)).encode())}"
        )

    def cache(self, src: str, tgt: str) -> TranslationCache:
        if (src, tgt) not in self._caches:
            name = _UNSAFE.sub("_", f"{self.backend}--{self.model_key()}--{src}-{tgt}")
            root = self.cache_root or cache_dir()
            self._caches[src, tgt] = TranslationCache(root / f"{name[:200]}.sqlite")
        return self._caches[src, tgt]

    def tag(self) -> str:
        """Backend and model, for op tags: `apertium`, `hf:Helsinki-NLP/opus-mt-en-es`."""
        return self.backend if self.backend == "apertium" else f"{self.backend}:{self.model}"

    def translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        """Translate `texts` from `src` to `tgt`; cached texts are not recomputed."""
        if not texts:
            return []
        if not self.cache_enabled:
            out = self._translate(list(texts), src, tgt)
            self.computed += len(texts)
            return out
        cache = self.cache(src, tgt)
        keys = [text_key(t) for t in texts]
        found = cache.get(list(dict.fromkeys(keys)))
        todo: dict[str, str] = {}
        for k, t in zip(keys, texts, strict=True):
            if k not in found:
                todo.setdefault(k, t)
        if todo:
            new = self._translate(list(todo.values()), src, tgt)
            if len(new) != len(todo):
                raise ResourceError(
                    f"{self.backend} returned {len(new)} translations for {len(todo)} texts"
                )
            fresh = dict(zip(todo, new, strict=True))
            cache.put(fresh.items())
            found.update(fresh)
            self.computed += len(todo)
        return [found[k] for k in keys]

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        raise NotImplementedError


# -- Apertium -----------------------------------------------------------------------------


_PAIRS: list[str] = []


def _apertium_pairs() -> list[str]:
    """The installed pairs, asked once per process (`apertium -l` is a process launch)."""
    if not _PAIRS:
        _PAIRS.extend(resources.apertium_pairs())
    return _PAIRS


class ApertiumTranslator(Translator):
    """Apertium (rule-based, offline): the pair's pipeline over a whole batch, sentences
    separated by null characters, each translated as if it were alone.

    Raw Apertium tags a sentence differently after some earlier sentences of its stream:
    8.9% of 2,000 MR sentences came out differently when the batch was reversed
    (`bench/augment_models.py`). The cause is one state of the HMM tagger that null flushes
    do not reset; `assay.augment.apertium` starts a fresh tagger after each sentence that
    changes it, so a sentence's translation depends on nothing but the sentence."""

    backend = "apertium"
    _ESCAPE = re.compile(r"([\\\[\]^$/<>@{}~])")  # the stream format's reserved characters
    _UNESCAPE = re.compile(r"\\(.)")

    def __init__(self, model: str = "apertium", batch_size: int = 20000, **kw: Any) -> None:
        super().__init__(model or "apertium", **kw)
        self.batch_size = batch_size
        self.processes = 0  # pipeline runs over a batch started by this object
        self._pipelines: dict[tuple[str, str], ApertiumPipeline] = {}

    def model_key(self) -> str:
        # "t": each sentence tagged as if alone (translations cached before may differ)
        return "apertium-t"

    def pipeline(self, src: str, tgt: str) -> ApertiumPipeline:
        """The pair's pipeline; an error naming the installed pairs when it is missing."""
        if (src, tgt) not in self._pipelines:
            pairs = _apertium_pairs()  # raises when Apertium is missing
            if f"{src}-{tgt}" not in pairs:
                raise ResourceError(
                    f"Apertium has no {src}-{tgt} pair; installed: {', '.join(pairs)} "
                    f"(apt-get install apertium-{src}-{tgt} or apertium-{tgt}-{src})"
                )
            self._pipelines[src, tgt] = ApertiumPipeline(src, tgt)
        return self._pipelines[src, tgt]

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        pipeline = self.pipeline(src, tgt)
        # The trailing blank: without it the analyser drops a sentence's final full stop.
        lines = [
            self._ESCAPE.sub(r"\\\1", _SPACE.sub(" ", t.replace("\0", " ")).strip()) + " "
            for t in texts
        ]
        out: list[str] = []
        for start in range(0, len(lines), self.batch_size):
            self.processes += 1
            for line in pipeline.translate(lines[start : start + self.batch_size]):
                out.append(_SPACE.sub(" ", self._UNESCAPE.sub(r"\1", line)).strip())
        return out


# -- Hugging Face seq2seq -------------------------------------------------------------------

_LOADED: dict[tuple[str, str], tuple[Any, Any]] = {}


def _lang_codes(tokenizer: Any) -> bool:
    """Whether the tokenizer takes language codes (NLLB, M2M, mBART), unlike Marian."""
    name = type(tokenizer).__name__.lower()
    return any(k in name for k in ("nllb", "m2m", "mbart"))


class HFTranslator(Translator):
    """A Hugging Face seq2seq model (MarianMT, NLLB...) by id or path; greedy by default.

    For NLLB and M2M models `src` and `tgt` are the model's language codes
    (`eng_Latn`, `spa_Latn`); a Marian model is one pair and ignores them."""

    backend = "hf"

    def __init__(
        self,
        model: str,
        device: str = "auto",
        batch_size: int | None = None,
        num_beams: int = 1,
        max_length: int = 256,
        **kw: Any,
    ) -> None:
        super().__init__(model, **kw)
        self.device = device
        self.batch_size = batch_size
        self.num_beams = num_beams
        self.max_length = max_length

    def load(self) -> tuple[Any, Any, Any]:
        from assay.train.device import select_device

        require("transformers", "generate", "Hugging Face translation")
        setup = select_device(self.device)
        key = (self.model, setup.device)
        if key not in _LOADED:
            from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

            try:
                tok = AutoTokenizer.from_pretrained(self.model)
                model = AutoModelForSeq2SeqLM.from_pretrained(self.model)
            except OSError as exc:
                raise ResourceError(
                    f"translation model {self.model!r} could not be loaded ({exc}); give a "
                    "local path or a Hugging Face id that is downloaded"
                ) from None
            model.to(setup.device).eval()
            _LOADED[key] = (tok, model)
        tok, model = _LOADED[key]
        return tok, model, setup

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        import torch

        tok, model, setup = self.load()
        size = self.batch_size or setup.default_batch_size
        extra: dict[str, Any] = {}
        if _lang_codes(tok):
            tok.src_lang = src
            extra["forced_bos_token_id"] = tok.convert_tokens_to_ids(tgt)
        # Sorting by length keeps padding small; the order is restored at the end.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        out: list[str] = [""] * len(texts)
        with torch.inference_mode():
            for start in range(0, len(order), size):
                idx = order[start : start + size]
                enc = tok(
                    [texts[i] for i in idx],
                    return_tensors="pt",
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                ).to(setup.device)
                gen = model.generate(
                    **enc,
                    num_beams=self.num_beams,
                    do_sample=False,
                    max_new_tokens=self.max_length,
                    **extra,
                )
                for i, text in zip(
                    idx, tok.batch_decode(gen, skip_special_tokens=True), strict=True
                ):
                    out[i] = text.strip()
        return out


# -- CTranslate2 ------------------------------------------------------------------------------


class CTranslate2Translator(Translator):
    """A CTranslate2 model directory (`ct2-transformers-converter` output) with the Hugging
    Face tokenizer of the original model (in the directory, or at `tokenizer`)."""

    backend = "ctranslate2"

    def __init__(
        self,
        model: str,
        tokenizer: str | None = None,
        device: str = "auto",
        batch_size: int = 32,
        beam_size: int = 1,
        max_length: int = 256,
        threads: int | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(model, **kw)
        self.threads = threads
        self.tokenizer_path = tokenizer or model
        self.device = device
        self.batch_size = batch_size
        self.beam_size = beam_size
        self.max_length = max_length
        self._loaded: tuple[Any, Any] | None = None

    def load(self) -> tuple[Any, Any]:
        if self._loaded is None:
            ct2 = require("ctranslate2", "translate", "CTranslate2 translation")
            require("transformers", "generate", "the CTranslate2 model's tokenizer")
            from transformers import AutoTokenizer

            from assay.train.device import free_cores

            if not (Path(self.model) / "model.bin").exists():
                raise ResourceError(
                    f"{self.model!r} is not a CTranslate2 model directory (no model.bin); "
                    "convert one with ct2-transformers-converter --model <hf model> "
                    "--output_dir <dir> --copy_files <tokenizer files>"
                )
            device = self.device
            if device == "auto":
                device = "cuda" if ct2.get_cuda_device_count() > 0 else "cpu"
            # As many threads as there are idle cores: CTranslate2's threads spin while they
            # wait, and on busy cores two threads can be many times slower than one.
            threads = self.threads or free_cores()
            translator = ct2.Translator(self.model, device=device, intra_threads=threads)
            self._loaded = (AutoTokenizer.from_pretrained(self.tokenizer_path), translator)
        return self._loaded

    def _translate(self, texts: list[str], src: str, tgt: str) -> list[str]:
        tok, translator = self.load()
        codes = _lang_codes(tok)
        if codes:
            tok.src_lang = src
        tokens = [
            tok.convert_ids_to_tokens(tok.encode(t, truncation=True, max_length=self.max_length))
            for t in texts
        ]
        results = translator.translate_batch(
            tokens,
            target_prefix=[[tgt]] * len(texts) if codes else None,
            max_batch_size=self.batch_size,
            beam_size=self.beam_size,
            max_decoding_length=self.max_length,
        )
        out = []
        for r in results:
            hyp = r.hypotheses[0]
            if codes and hyp[:1] == [tgt]:
                hyp = hyp[1:]
            out.append(tok.decode(tok.convert_tokens_to_ids(hyp), skip_special_tokens=True).strip())
        return out


BACKENDS: dict[str, type[Translator]] = {
    "apertium": ApertiumTranslator,
    "hf": HFTranslator,
    "ctranslate2": CTranslate2Translator,
}


def translator(backend: str = "apertium", model: str | None = None, **kw: Any) -> Translator:
    """A translator by backend name (`apertium`, `hf`, `ctranslate2`) and model."""
    if backend not in BACKENDS:
        raise InputError(
            f"unknown translation backend {backend!r}; expected one of {sorted(BACKENDS)}"
        )
    if backend != "apertium" and not model:
        raise InputError(f"the {backend} backend needs a model (a Hugging Face id or a path)")
    return BACKENDS[backend](model or "apertium", **kw)


class TranslatorSettings(BaseModel):
    """The translation settings of a step (`back_translation`, `translate_train`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str = Field(
        "eng", min_length=1, description="language of the texts (the backend's code)"
    )
    backend: str = Field(
        "apertium", description="translator: apertium (offline), hf or ctranslate2"
    )
    model: str | None = Field(
        None,
        description="hf/ctranslate2: one multilingual model (NLLB, M2M) for every language pair",
    )
    models: dict[str, str] = Field(
        default_factory=dict,
        description="hf/ctranslate2: a model per language pair, 'eng-spa' -> id or path (Marian)",
    )
    batch_size: int | None = Field(
        None, ge=1, description="texts per model batch (hf/ctranslate2; device default)"
    )
    cache: bool = Field(True, description="reuse translations cached across runs")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        if value not in BACKENDS:
            raise ValueError(f"unknown backend {value!r}; expected one of {sorted(BACKENDS)}")
        return value

    def check_models(self, needed: set[str], what: str) -> None:
        """A ValueError unless Apertium, `model` or `models` covers every `src-tgt` in
        `needed` (`what` names them: hops, pairs)."""
        if self.backend == "apertium" or self.model:
            return
        missing = sorted(needed - set(self.models))
        if missing:
            raise ValueError(
                f"backend {self.backend!r} needs a model: set 'model' (multilingual) or "
                f"'models' for the {what} {missing}"
            )

    def translators(self) -> Translators:
        return Translators(
            self.backend, self.model, self.models, batch_size=self.batch_size, cache=self.cache
        )


class Translators:
    """The translators a step's settings name, one per model (a single one for Apertium or
    a multilingual model), and which of them serves each language pair (`models` by
    `src-tgt`, else `model`)."""

    def __init__(
        self,
        backend: str,
        model: str | None,
        models: dict[str, str],
        *,
        batch_size: int | None = None,
        cache: bool = True,
    ) -> None:
        kw: dict[str, Any] = {"cache": cache}
        if batch_size is not None and backend != "apertium":
            kw["batch_size"] = batch_size
        self.model, self.models = model, models
        names = {model or "", *models.values()} - {""} or {"apertium"}
        self.made = {n: translator(backend, None if n == "apertium" else n, **kw) for n in names}

    def for_pair(self, src: str, tgt: str) -> Translator:
        return self.made[self.models.get(f"{src}-{tgt}") or self.model or "apertium"]

    @property
    def computed(self) -> int:
        """Translations computed (not read from the cache) so far."""
        return sum(t.computed for t in self.made.values())
