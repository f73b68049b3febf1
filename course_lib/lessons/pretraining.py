"""A pretrained GPT for lesson 04: trained here on shipped text (offline), or GPT-2 from the Hub (online).

No GPT-2 weights ship in any package, so the offline path pretrains the
course's own small GPT (:mod:`course_lib.models.gpt`) on the Rotten Tomatoes
snippets with a byte-level BPE tokenizer trained on the same text, through
the course's one training loop.  On the CPU it runs in float64
(``precision="fp64"``), so that every CPU, vector width and thread count
prints the same losses and samples.  The run is deterministic and cached on
disk, keyed by its configuration, the data, the versions of torch and
tokenizers, and a digest of the course_lib source files it runs (:func:`code_digest`):
both language editions of the lesson reuse one checkpoint, a changed
configuration or changed code gets a new one, and a cache file that does not
load, or whose contents no longer match their SHA-256, is rebuilt, not trusted.
The cache folder is checked before the minute of training, and a cache that
cannot be written after it only warns: the trained model is still returned.

The cache folder is ``$COURSE_CACHE``, else ``~/.cache/course_lib``.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import importlib.metadata
import json
import math
import os
import re
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown
from course_lib.engine.data import default_dtype, pick_device
from course_lib.engine.files import check_writable, load_verified, save_verified
from course_lib.engine.freezing import param_groups
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.training import train, weight_dtype
from course_lib.i18n import check_language
from course_lib.lessons.corpus import TextTokenizer, TokenWindows, encode_texts, gpt2_tokenizer, pretraining_texts
from course_lib.lessons.online import HUB, hub
from course_lib.lessons.sources import OFFLINE_DATA, check_source
from course_lib.models.gpt import GPT, GPTConfig, from_hf, lm_loss

__all__ = ["PretrainConfig", "PRETRAIN", "pretrained", "load_pretrained", "cache_path", "code_digest"]

PACKAGE = Path(__file__).resolve().parents[1]  # course_lib/


@dataclass(frozen=True)
class PretrainConfig:
    """The model (its sizes; its ``vocab_size`` is also the tokenizer's) and the pretraining run, all of which the cache key covers."""

    name: str
    model: GPTConfig = GPTConfig(vocab_size=2048, block_size=64, n_layer=4, n_head=4, n_embd=128)
    batch_size: int = 32
    steps: int = 300
    lr: float = 3e-3
    warmup: int = 25
    weight_decay: float = 0.1
    clip: float = 1.0
    seed: int = 0
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_type("name", self.name, str, "a string")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", self.name):
            raise ValueError(f"name must be letters, digits, - and _ only (it goes into the cache file's name), got {shown(self.name)}")
        check_type("model", self.model, GPTConfig, "a course_lib.models.gpt.GPTConfig")
        for field in ("batch_size", "steps", "seed"):
            check_int(field, getattr(self, field), 0 if field == "seed" else 1, unit="units")
        check_int("warmup", self.warmup, 0, self.steps, unit="optimizer steps (a warm-up within the run's steps)")
        weight_dtype(self.precision)  # one of training.PRECISIONS
        check_number("lr", self.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_number("weight_decay", self.weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
        check_number("clip", self.clip, "> 0", lambda v: v > 0)


PRETRAIN = {
    "cpu": PretrainConfig("cpu", precision="fp64"),  # float64: the same digits on every CPU (see training.weight_dtype)
    "gpu": PretrainConfig("gpu", GPTConfig(vocab_size=4096, block_size=128, n_layer=6, n_head=4, n_embd=256), batch_size=32,
                          steps=600, lr=1e-3, warmup=30, precision="bf16"),
}


def _cache_dir() -> Path:
    return Path(os.environ.get("COURSE_CACHE") or Path.home() / ".cache" / "course_lib")


def _source(module: str) -> Path:
    """The file of ``module``, a dotted name inside course_lib (``"engine.training"``)."""
    return PACKAGE.joinpath(*module.split(".")).with_suffix(".py")


def _imports(module: str) -> set[str]:
    """The course_lib modules that ``module`` imports (``from course_lib.x.y import ...``, read from its source, not executed)."""
    tree = ast.parse(_source(module).read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and (node.module or "").startswith("course_lib."):
            name = node.module.removeprefix("course_lib.")
            found.update(n for n in [name, *(f"{name}.{alias.name}" for alias in node.names)] if _source(n).exists())
    return found


def code_digest(module: str = "lessons.pretraining") -> str:
    """SHA-256 (16 hex digits) of the source files of ``module`` and every course_lib module it imports, transitively.

    The pretraining cache's key holds it, so that any change to the code that
    computes the cached model (the loop, the GPT, the tokenizer, the schedule,
    even a docstring) makes a new cache entry instead of serving old weights.
    """
    check_type("module", module, str, "a dotted module name inside course_lib, e.g. 'lessons.pretraining'")
    if not re.fullmatch(r"\w+(\.\w+)*", module) or not _source(module).is_file():
        raise ValueError(f"module must name a module inside course_lib that has a source file, e.g. 'lessons.pretraining' "
                         f"(course_lib/lessons/pretraining.py), got {shown(module)}")
    seen, todo = set(), [module]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(_imports(name) - seen)
    digest = hashlib.sha256()
    for name in sorted(seen):
        digest.update(name.encode() + b"\0" + _source(name).read_bytes())
    return digest.hexdigest()[:16]


def _version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def cache_path(config: PretrainConfig, cache: str | Path | None = None) -> Path:
    """Where ``config``'s checkpoint is cached: the name holds a hash of the configuration, the data, the versions and the code."""
    check_type("config", config, PretrainConfig, "a PretrainConfig (see PRETRAIN)")
    check_type("cache", cache, (str, os.PathLike, type(None)), "None (the default folder) or a folder's path (a str or a Path)")
    key = json.dumps([code_digest(), OFFLINE_DATA, torch.__version__.split("+")[0], _version("tokenizers"),
                      dataclasses.asdict(config)], sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(cache if cache is not None else _cache_dir()) / f"gpt-{config.name}-{digest}.pt"


def _load(path: Path, config: PretrainConfig):
    saved = load_verified(path, "pretraining cache")
    if saved.get("config") != dataclasses.asdict(config):
        raise ValueError("the cached file holds another configuration")
    with default_dtype(weight_dtype(config.precision)):
        model = GPT(config.model)
    model.load_state_dict(saved["model"])
    return model, TextTokenizer.from_json(saved["tokenizer"]), saved["info"]


def _pretrain(config: PretrainConfig, device, callbacks):
    texts = pretraining_texts()
    tokenizer, ids = encode_texts(texts, config.model.vocab_size)
    torch.manual_seed(config.seed)
    with default_dtype(weight_dtype(config.precision)):  # built in float64, not converted: see data.default_dtype
        model = GPT(config.model)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95))
    scheduler = ScheduledLR(optimizer, cosine_with_warmup(config.warmup, config.steps))
    began = time.perf_counter()
    history = train(model, optimizer, TokenWindows(ids, config.batch_size, config.model.block_size, config.seed), lm_loss,
                    config.steps, scheduler=scheduler, clip=config.clip, precision=config.precision, device=device,
                    callbacks=callbacks, log_every=50)
    seconds = time.perf_counter() - began
    last = history.loss[-50:]
    info = {"tokens": len(ids), "texts": len(texts), "first_loss": history.loss[0], "final_loss": sum(last) / len(last),
            "seconds": seconds, "device": str(device), "torch": str(torch.__version__)}
    return model.cpu(), tokenizer, info


def pretrained(config: PretrainConfig, *, device=None, cache: str | Path | None = None, callbacks=()):
    """(model, tokenizer, info) of the offline pretraining ``config``: from the cache, or trained and cached.

    ``info`` holds the number of pretraining tokens, the loss at the first step
    and over the last 50, and the time the pretraining took when it ran.
    ``callbacks`` (e.g. a progress bar) are passed to the loop when it runs.
    """
    path = cache_path(config, cache)
    if path.is_file():
        try:
            return _load(path, config)
        except Exception as error:  # a truncated, damaged or foreign file: rebuild it
            warnings.warn(f"rebuilding the pretraining cache {path}: it did not load ({type(error).__name__}: {error})", stacklevel=2)
    try:
        check_writable(path, "the pretraining cache")
    except ValueError as error:
        raise ValueError(f"{error} (set $COURSE_CACHE to a folder that can be written)") from None
    model, tokenizer, info = _pretrain(config, pick_device(device), callbacks)
    save_verified({"config": dataclasses.asdict(config), "model": model.state_dict(), "tokenizer": tokenizer.to_json(),
                   "info": info}, path, "the pretrained model")
    return model, tokenizer, info


def load_pretrained(source: str = "offline", config: PretrainConfig = PRETRAIN["cpu"], *, device=None, callbacks=(), lang: str = "en"):
    """(model, tokenizer, info): offline, :func:`pretrained` (``config``); online, GPT-2 (124M) from the Hub, as a :class:`GPT`.

    ``lang`` is the language of the message when the Hub cannot be reached.
    """
    check_language(lang)
    if check_source(source) == "offline":
        return pretrained(config, device=device, callbacks=callbacks)
    try:
        from transformers import GPT2LMHeadModel
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the online path needs Hugging Face transformers: run `pip install transformers`") from None
    with hub("gpt2", lang):
        model = from_hf(GPT2LMHeadModel.from_pretrained("gpt2"))
    return model, gpt2_tokenizer(lang), {"model": "gpt2", "source": HUB}
