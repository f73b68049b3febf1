"""Lesson 04's experiments: a pretrained GPT fine-tuned on *Hamlet* with everything trained or most of it frozen.

Every run starts from the same pretrained weights and sees the same batches
in the same order (:func:`course_lib.engine.data.checksum` proves both), through
:func:`course_lib.engine.training.train`.  The variants:

* ``full`` (model A): every parameter trains;
* ``targeted`` (model B): only the attention layers (``c_attn``, ``c_proj``)
  of the lower half of the blocks train, everything else is frozen;
* ``reversed``: everything trains except the attention of the upper half;
* ``bottom``: the embeddings (and so the tied output layer) and the lower half
  of the blocks are frozen, the upper half and the last LayerNorm train: the
  common freeze-the-bottom recipe, whose backward pass stops at the lowest
  trainable block.

The rule is :func:`trains`; :func:`prepare` applies it with plain
``requires_grad_``, and the lesson's main cell builds the same run as
:func:`run` from the same pieces (:func:`pretrained_copy`, :func:`trains`,
:func:`probes`, :func:`measure`).

Measured per run: training and held-out loss, time per step, the Frobenius
norm of each attention matrix's change per step |W_t - W_{t-1}|_F, and the
share p of generated tokens in a set S of *Hamlet*'s characteristic tokens,
over several sampling seeds.  ``python -m course_lib.lessons.targeted_freezing_gpt
--config gpu`` runs the larger configuration and stores it in ``course_lib/lessons/results/``;
``--config timing-gpu`` runs the timing study (:func:`timing_study`): the variants
timed interleaved, in several separate processes, on a GPT-2-small-sized model.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from course_lib.engine._checks import (
    check_choice,
    check_int,
    check_number,
    check_type,
    shown,
)
from course_lib.engine.callbacks import (
    DataChecksum,
    Evaluate,
    StepTimer,
    WeightChange,
    evaluate,
)
from course_lib.engine.data import checksum, default_dtype, pick_device
from course_lib.engine.freezing import param_groups, select, trainable_ratio
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.stats import Spread, noise_variance, spread
from course_lib.engine.timing import PeakMemory, interleaved, synchronize, timed_run
from course_lib.engine.training import train, weight_dtype
from course_lib.lessons import stored
from course_lib.lessons.corpus import (
    TokenWindows,
    characteristic_tokens,
    finetuning_text,
    held_out_blocks,
    pretraining_texts,
    split_held_out,
    token_share,
)
from course_lib.lessons.finetuning_bert import check_result, check_seeds, check_variants
from course_lib.lessons.pretraining import PRETRAIN, load_pretrained
from course_lib.lessons.sources import check_source
from course_lib.models.gpt import GPT, GPTConfig, generate, lm_loss

__all__ = ["Config", "CONFIGS", "VARIANTS", "ATTENTION_WEIGHTS", "Setup", "setup", "trains", "pretrained_copy", "prepare", "probes",
           "measure", "run", "run_all", "sample_measures", "sample_text", "flop_saving", "state_memory", "bits_per_byte",
           "p_summary", "weight_change_ratio", "claims", "steps_b_above_a", "update_consistency", "curve_gap", "summarize", "noise_variance",
           "probe_cost", "load_results", "TimingConfig", "TIMING_CONFIGS", "time_variants", "timing_study", "timing_summary",
           "load_timing", "main"]

ATTENTION_WEIGHTS = r"\.attn\.c_(attn|proj)\."
MODULE = "course_lib.lessons.targeted_freezing_gpt"  # not __name__, which is "__main__" under python -m
VARIANTS = ("full", "targeted", "reversed", "bottom")


@dataclass(frozen=True)
class Config:
    """One configuration: which pretrained model, the fine-tuning run, and the sampling for p."""

    name: str
    pretrain: str = "cpu"
    steps: int = 120
    batch_size: int = 16
    lr: float = 1e-3
    warmup: int = 10
    weight_decay: float = 0.1
    clip: float = 1.0
    eval_every: int = 10
    seeds: tuple[int, ...] = (0,)
    sample_seeds: tuple[int, ...] = tuple(range(10))
    samples: int = 8
    sample_tokens: int = 48
    temperature: float = 1.0
    top_k: int = 50
    k: int = 100
    precision: str = "fp32"
    source: str = "offline"
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self) -> None:
        check_type("name", self.name, str, "a string")
        check_type("pretrain", self.pretrain, str, "the name of a pretraining configuration in pretraining.PRETRAIN")
        check_int("steps", self.steps, 3, unit="optimizer steps (the loss variances need at least 3 losses)")
        check_int("batch_size", self.batch_size, 1, unit="windows")
        check_number("lr", self.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_int("warmup", self.warmup, 0, self.steps)
        check_number("weight_decay", self.weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
        check_number("clip", self.clip, "> 0", lambda v: v > 0)
        check_int("eval_every", self.eval_every, 1)
        check_seeds("seeds", self.seeds)
        check_seeds("sample_seeds", self.sample_seeds)
        check_int("samples", self.samples, 1, unit="sequences")
        check_int("sample_tokens", self.sample_tokens, 1, unit="tokens")
        check_number("temperature", self.temperature, "a finite number > 0", lambda v: 0 < v < math.inf)
        check_int("top_k", self.top_k, 1, unit="tokens")
        check_int("k", self.k, 1, unit="tokens")
        weight_dtype(self.precision)  # one of training.PRECISIONS
        check_source(self.source)
        check_variants("variants", self.variants, VARIANTS)


CONFIGS = {
    "cpu": Config("cpu", precision="fp64"),  # float64: every CPU prints the same digits (training.weight_dtype)
    # GPT-2 (124M) online without a GPU: seconds per step on a CPU, so a short run that shows the code path
    "online-cpu": Config("online-cpu", source="online", steps=10, batch_size=4, warmup=1, eval_every=10, sample_seeds=(0, 1),
                         samples=2, sample_tokens=24),
    "gpu": Config("gpu", pretrain="gpu", steps=120, batch_size=16, lr=3e-4, warmup=10, seeds=(0, 1, 2, 3, 4),
                  sample_seeds=tuple(range(20)), samples=16, sample_tokens=64, precision="bf16"),
}


@dataclass
class Setup:
    """What every run of a configuration shares: the pretrained weights, the tokenizer, the data and S."""

    base: dict
    model_config: object
    tokenizer: object
    train_ids: torch.Tensor
    held_out: list
    pretrain_ids: torch.Tensor
    S: set
    words: set
    info: dict


_SETUPS: dict[tuple, Setup] = {}


def setup(config: Config, device=None, callbacks=(), lang: str = "en") -> Setup:
    """The shared pieces of ``config`` (pretraining is cached on disk; this is cached per process).

    ``lang`` is the language of the message when an online source cannot be reached.
    """
    _check_config(config)
    check_choice("config.pretrain", config.pretrain, tuple(PRETRAIN), "the pretraining configurations of pretraining.PRETRAIN")
    key = (config.source, config.pretrain, config.k)
    if key not in _SETUPS:
        model, tokenizer, info = load_pretrained(config.source, PRETRAIN[config.pretrain], device=device, callbacks=callbacks, lang=lang)
        T = model.config.block_size if config.source == "offline" else PRETRAIN[config.pretrain].model.block_size
        play = finetuning_text(config.source, lang)
        train_ids, held_ids = split_held_out(tokenizer.encode(play))
        reference = torch.tensor(tokenizer.encode("\n".join(pretraining_texts()[:4000])))  # S's reference: 4,000 snippets
        words = set(re.findall(r"[a-z]+", (play + " " + " ".join(pretraining_texts())).lower()))
        _SETUPS.clear()
        _SETUPS[key] = Setup({k: v.clone() for k, v in model.state_dict().items()}, model.config, tokenizer, train_ids,
                             held_out_blocks(held_ids, T, 32), reference, characteristic_tokens(train_ids, reference, config.k),
                             words, {**info, "block_size": T, "train_tokens": len(train_ids), "held_out_tokens": len(held_ids),
                                     "bytes_per_token": len(tokenizer.decode(held_ids).encode("utf-8")) / len(held_ids)})
    return _SETUPS[key]


def trains(name: str, variant: str, n_layer: int) -> bool:
    """Whether the parameter ``name`` of a GPT of ``n_layer`` blocks trains in ``variant`` (the lesson's freezing rule)."""
    check_type("name", name, str, "a parameter's name, e.g. 'transformer.h.0.attn.c_attn.weight'")
    check_choice("variant", variant, VARIANTS)
    check_int("n_layer", n_layer, 1, unit="blocks")
    block = int(name.split(".")[2]) if name.startswith("transformer.h.") else None
    attention = re.search(ATTENTION_WEIGHTS, name) is not None
    if variant == "targeted":
        return attention and block < n_layer // 2
    if variant == "reversed":
        return not (attention and block >= n_layer // 2)
    if variant == "bottom":
        return (block is not None and block >= n_layer // 2) or name.startswith("transformer.ln_f.")
    return True


def pretrained_copy(s: Setup, precision: str = "fp32") -> GPT:
    """A fresh copy of the pretrained model, its weights in ``precision``'s dtype, every parameter trainable."""
    check_type("s", s, Setup, "the Setup that setup(config) returns")
    with default_dtype(weight_dtype(precision)):
        model = GPT(s.model_config)
    model.load_state_dict(s.base)  # the pretrained weights, converted exactly (float32 -> float64) where they differ
    return model


def prepare(s: Setup, variant: str, precision: str = "fp32") -> GPT:
    """:func:`pretrained_copy` with ``variant``'s freezing applied by :func:`trains` (plain ``requires_grad_``)."""
    check_choice("variant", variant, VARIANTS)
    model = pretrained_copy(s, precision)
    for name, p in model.named_parameters():
        p.requires_grad_(trains(name, variant, s.model_config.n_layer))
    return model


def _windows(s: Setup, config: Config, seed: int) -> TokenWindows:
    return TokenWindows(s.train_ids, config.batch_size, s.info["block_size"], seed)


def _samples(model: GPT, s: Setup, config: Config, seed: int, device) -> torch.Tensor:
    prompt = torch.tensor([s.tokenizer.encode("\n")] * config.samples, device=device)
    out = generate(model, prompt, config.sample_tokens, temperature=config.temperature, top_k=config.top_k, seed=seed)
    return out[:, prompt.shape[1]:].cpu()


def sample_measures(model: GPT, s: Setup, config: Config, device=None) -> dict:
    """From one set of samples per sampling seed: ``p`` (the share of tokens in S) and ``word_rate``, one value per seed each.

    ``word_rate`` is the share of the generated words (letters only) that occur
    in the two corpora: a crude measure of well-formed text.
    """
    device = pick_device(device)
    model.to(device)
    p, rates = [], []
    for seed in config.sample_seeds:
        tokens = _samples(model, s, config, seed, device)
        p.append(token_share(tokens, s.S))
        words = [w for row in tokens for w in re.findall(r"[a-z]+", s.tokenizer.decode(row).lower())]
        rates.append(sum(w in s.words for w in words) / max(1, len(words)))
    return {"p": p, "word_rate": rates}


def sample_text(model: GPT, s: Setup, config: Config, tokens: int = 40, seed: int = 0, device=None) -> str:
    """One generated continuation of a line break, ``tokens`` long, as text."""
    check_int("tokens", tokens, 1, unit="tokens")
    check_int("seed", seed, 0, unit="seed units")
    device = pick_device(device)
    model.to(device)
    short = dataclasses.replace(config, samples=1, sample_tokens=tokens)
    return s.tokenizer.decode(_samples(model, s, short, seed, device)[0])


def flop_saving(model: GPT) -> float:
    """The share of a training step's weight-matrix FLOPs that freezing saves, from which weights train and where they sit.

    Per weight and token a matrix costs 2 FLOPs forward, 2 for its weight
    gradient (only if it trains) and 2 for its input gradient, which is
    needed only if some trainable parameter lies *below* it, where the
    gradient must still go.  The layers run in ``named_parameters()`` order
    (embeddings, blocks, final LayerNorm); the token embedding ``wte`` is
    also the output layer, the last matrix multiply, below which everything
    lies.  The position embedding is a look-up, not counted.  So a trainable
    layer below every frozen one bounds the saving at a third; frozen layers
    below the lowest trainable one save 4 of 6; nothing trainable: 2/3, only
    the forward pass remains.
    """
    check_type("model", model, GPT, "a course_lib.models.gpt.GPT (the count knows its layers: wte is also lm_head, wpe a look-up)")
    named = list(model.named_parameters())
    cost, total, below = 0, 0, False
    for name, p in named:
        if p.ndim == 2 and not name.endswith(("wte.weight", "wpe.weight")):
            cost += p.numel() * (2 + 2 * below + 2 * p.requires_grad)
            total += p.numel()
        below = below or p.requires_grad
    wte = model.transformer.wte.weight  # the output layer: every parameter lies below it
    cost += wte.numel() * (2 + 2 * any(p.requires_grad for _, p in named) + 2 * wte.requires_grad)
    total += wte.numel()
    return 1 - cost / (6 * total)


def state_memory(model: torch.nn.Module, optimizer_states: int = 2) -> dict[str, int]:
    """Bytes a training step keeps besides activations: weights (every parameter), gradients and AdamW's moments (trainable ones).

    Per trainable float32 parameter: 4 bytes of weight, 4 of gradient and
    ``optimizer_states`` × 4 of optimizer state (AdamW: two moments), 16 in
    all; a frozen one keeps only its 4 bytes of weight.
    """
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    check_int("optimizer_states", optimizer_states, 0, unit="tensors per parameter (AdamW: 2, SGD with momentum: 1)")
    params = list(model.parameters())
    trainable = sum(p.numel() * p.element_size() for p in params if p.requires_grad)
    return {"weights": sum(p.numel() * p.element_size() for p in params), "gradients": trainable,
            "optimizer": optimizer_states * trainable}


def bits_per_byte(loss: float, bytes_per_token: float) -> float:
    """A next-token loss in nats per token as bits per byte of text: comparable across tokenizers (vocabularies)."""
    check_number("loss", loss, "a finite number >= 0 (nats per token)", lambda v: 0 <= v < math.inf)
    check_number("bytes_per_token", bytes_per_token, "a finite number > 0", lambda v: 0 < v < math.inf)
    return loss / (math.log(2) * bytes_per_token)


def _attention_params(model: GPT):
    names = set(select(model, ATTENTION_WEIGHTS))
    return [(n, p) for n, p in model.named_parameters() if n in names]


def _optimizer(model: GPT, config: Config):
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95))
    return optimizer, ScheduledLR(optimizer, cosine_with_warmup(config.warmup, config.steps, min_lr_ratio=0.1))


def probes(model: GPT, s: Setup, config: Config) -> list:
    """The measuring callbacks of a run: time per step, |ΔW|_F of each attention matrix, held-out loss, batch checksum."""
    check_type("model", model, GPT, "the GPT being trained")
    check_type("s", s, Setup, "the Setup that setup(config) returns")
    _check_config(config)
    return [StepTimer(), WeightChange(_attention_params(model), per_matrix=True), Evaluate(s.held_out, config.eval_every),
            DataChecksum()]


def measure(model: GPT, history, callbacks: list, s: Setup, config: Config, variant: str, seed: int, initial: str,
            device=None, peak_memory_mb: float | None = None) -> dict:
    """The numbers of a finished run: its losses and probes (``callbacks`` from :func:`probes`), p and the real-word share.

    ``peak_memory_mb`` is the GPU's peak during training, when measured (:class:`PeakMemory`; None on a CPU).
    """
    check_choice("variant", variant, VARIANTS)
    data = next((c for c in callbacks if isinstance(c, DataChecksum)), None)
    if data is None:
        raise ValueError("callbacks must hold the DataChecksum of probes(model, s, config): pass the list the run was given")
    times = history.metric("seconds")
    changes = {name[len("weight_change/"):]: history.metric(name) for name in history.metric_names("weight_change/")}
    half = config.steps // 2
    sizes = dict(model.named_parameters())
    return {
        "variant": variant,
        "seed": seed,
        "initial_checksum": initial,
        "batch_checksum": data.hexdigest(),
        "trainable": trainable_ratio(model),
        "flop_saving": flop_saving(model),
        "loss": history.loss,
        "lr": history.lr,
        "eval_steps": history.metric_steps("eval_loss"),
        "eval_loss": history.metric("eval_loss"),
        "seconds_per_step": statistics.median(times[3:] if len(times) > 6 else times),
        "loss_variance": statistics.variance(history.loss),
        "loss_variance_late": statistics.variance(history.loss[half:]),
        "noise_variance": noise_variance(history.loss),
        "weight_change": changes,
        "weight_sizes": {name: sizes[name].numel() for name in changes},
        "peak_memory_mb": peak_memory_mb,
        **sample_measures(model, s, config, device),
    }


def run(config: Config, variant: str, seed: int = 0, device=None, callbacks=()) -> tuple[dict, GPT]:
    """One fine-tuning run of ``variant``; returns (numbers, trained model).  The lesson's main cell spells it out."""
    _check_config(config)
    check_choice("variant", variant, VARIANTS)
    check_int("seed", seed, 0, unit="seed units")
    device = pick_device(device)
    s = setup(config, device)
    model = prepare(s, variant, config.precision)
    initial = checksum(model)
    optimizer, scheduler = _optimizer(model, config)
    torch.manual_seed(seed)
    model.to(device)
    peak = PeakMemory(device)
    measuring = probes(model, s, config)
    history = train(model, optimizer, _windows(s, config, seed), lm_loss, config.steps, scheduler=scheduler, clip=config.clip,
                    precision=config.precision, device=device, log_every=config.eval_every, callbacks=[*measuring, *callbacks])
    return measure(model, history, measuring, s, config, variant, seed, initial, device, peak.mb), model


def probe_cost(config: Config, steps: int = 20, rounds: int = 3, device=None) -> float:
    """Time per step of model A with the weight-change probe over without it (medians, rounds interleaved)."""
    _check_config(config)
    check_int("steps", steps, 4, unit="optimizer steps (the first 3 are warm-up and not timed)")
    check_int("rounds", rounds, 1, unit="rounds")
    device = pick_device(device)
    s = setup(config, device)
    times = {True: [], False: []}
    for _ in range(rounds):
        for probed in (False, True):
            model = prepare(s, "full", config.precision)
            optimizer, scheduler = _optimizer(model, config)
            probes = [WeightChange(_attention_params(model), per_matrix=True)] if probed else []
            history = train(model, optimizer, _windows(s, config, 0), lm_loss, steps, scheduler=scheduler, clip=config.clip,
                            precision=config.precision, device=device, log_every=steps, callbacks=[StepTimer(), *probes])
            times[probed] += history.metric("seconds")[3:]
    return statistics.median(times[True]) / statistics.median(times[False])


def run_all(config: Config, device=None, progress=print) -> dict:
    """Every variant over every seed of ``config``, with p before training and provenance (the stored results)."""
    _check_config(config)
    stored.check_progress(progress)
    device = pick_device(device)
    s = setup(config, device)
    before = prepare(s, "full", config.precision)
    runs = []
    for seed in config.seeds:
        for variant in config.variants:
            progress(f"{config.name}: {variant}, seed {seed}")
            result, model = run(config, variant, seed, device)
            result["sample"] = sample_text(model, s, config, device=device)
            runs.append(result)
    return {
        "config": dataclasses.asdict(config),
        "pretrain": dataclasses.asdict(PRETRAIN[config.pretrain]),
        "pretrain_info": s.info,
        "S_size": len(s.S),
        **{f"{key}_before": value for key, value in sample_measures(before, s, config, device).items()},
        "eval_before": evaluate(before, s.held_out, lm_loss, device=device, precision=config.precision)["eval_loss"],
        "sample_before": sample_text(before, s, config, device=device),
        "probe_cost": probe_cost(config, device=device),
        "provenance": stored.provenance(device, f"python -m {MODULE} --config {config.name}"),
        "runs": runs,
    }


def p_summary(p_before: list[float], a: dict, b: dict) -> dict:
    """Δp of runs ``a`` and ``b`` over the sampling seeds, how often p_B > p_A, and p_B - p_A seed by seed."""
    _check_numbers("p_before", p_before, "the shares p before fine-tuning, one per sampling seed", empty=False)
    for name, run in (("a", a), ("b", b)):
        check_result(name, run, ("p",))
        _check_numbers(f"{name}['p']", run["p"], "shares p, one per sampling seed")
    if not len(p_before) == len(a["p"]) == len(b["p"]):
        raise ValueError("p_before, a['p'] and b['p'] must hold one share per sampling seed, the same seeds")
    return {
        "delta_a": spread([x - y for x, y in zip(a["p"], p_before)]),
        "delta_b": spread([x - y for x, y in zip(b["p"], p_before)]),
        "b_wins": sum(pb > pa for pa, pb in zip(a["p"], b["p"])),
        "n": len(p_before),
        "difference": spread([pb - pa for pa, pb in zip(a["p"], b["p"])]),
    }


def weight_change_ratio(a: dict, b: dict) -> dict[str, tuple[float, float]]:
    """For each matrix that trains in ``b``: (mean |ΔW|_F per step in ``a``, in ``b``)."""
    for name, run in (("a", a), ("b", b)):
        check_result(name, run, ("weight_change",))
    for name in b["weight_change"]:
        if name not in a["weight_change"]:
            raise ValueError(f"a recorded no weight change of {name!r}, which b trains: were both run with the same probe?")
        for run, label in ((a, "a"), (b, "b")):
            _check_numbers(f"{label}['weight_change'][{name!r}]", run["weight_change"][name], "one change per step", empty=False)
    return {name: (statistics.fmean(a["weight_change"][name]), statistics.fmean(changes))
            for name, changes in b["weight_change"].items()}


def steps_b_above_a(a: dict, b: dict) -> dict[str, float]:
    """For each matrix that trains in ``b``: the share of steps at which its |ΔW|_F in ``b`` exceeds that in ``a``."""
    means = weight_change_ratio(a, b)  # the same checks
    out = {}
    for name in means:
        pairs = list(zip(a["weight_change"][name], b["weight_change"][name]))
        out[name] = sum(y > x for x, y in pairs) / len(pairs)
    return out


def update_consistency(changes: list[float], lrs: list[float], n: int) -> float:
    """Mean over steps of |ΔW_t|_F / (η_t · √n): 1 when every one of the n weights moves by a full η_t, as Adam's steps at most do.

    Adam divides each weight's mean gradient by its root-mean-square, so each
    weight moves by at most about η_t (less where the gradient's sign keeps
    changing); the ratio says how consistent the update directions are, not
    how large the gradient was.  Steps with η_t = 0 are left out.
    """
    _check_numbers("changes", changes, "one |ΔW|_F per step", empty=False)
    _check_numbers("lrs", lrs, "one learning rate per step", empty=False)
    check_int("n", n, 1, unit="weights in the matrix")
    if len(changes) != len(lrs):
        raise ValueError(f"changes and lrs must hold one value per step each, got {len(changes)} and {len(lrs)}")
    ratios = [c / (lr * math.sqrt(n)) for c, lr in zip(changes, lrs) if lr > 0]
    if not ratios:
        raise ValueError("lrs holds no step with a learning rate > 0")
    return statistics.fmean(ratios)


def curve_gap(a: dict, c: dict) -> dict[str, float]:
    """How far two held-out loss curves are apart: the largest and the last |L_a - L_c| over the evaluations."""
    for name, run in (("a", a), ("c", c)):
        check_result(name, run, ("eval_loss",))
        _check_numbers(f"{name}['eval_loss']", run["eval_loss"], "one held-out loss per evaluation", empty=False)
    if len(a["eval_loss"]) != len(c["eval_loss"]):
        raise ValueError(f"a and c must be evaluated equally often, got {len(a['eval_loss'])} and {len(c['eval_loss'])} evaluations")
    gaps = [abs(x - y) for x, y in zip(a["eval_loss"], c["eval_loss"])]
    return {"largest": max(gaps), "last": gaps[-1], "relative": max(g / x for g, x in zip(gaps, a["eval_loss"]))}


SUMMARY = ("trainable", "flop_saving", "eval_last", "train_last", "seconds_per_step", "saving", "peak_memory_mb",
           "loss_variance", "noise_variance", "p", "word_rate")


_SHARE, _POSITIVE, _LOSS = stored.Real(0.0, 1.0), stored.Real(0.0), stored.Real(0.0)
_LOSSES = stored.Many(_LOSS)
# What the lesson's tables and summaries read from one run and from the results (run() and run_all() return more).
RUN = {
    "variant": stored.Choice(VARIANTS), "seed": stored.Int(0), "trainable": _SHARE, "flop_saving": _SHARE, "loss": _LOSSES,
    "eval_steps": stored.Many(stored.Int(0)), "eval_loss": _LOSSES, "seconds_per_step": stored.Real(0.0, exclusive=True),
    "peak_memory_mb": stored.Maybe(_POSITIVE), "loss_variance": _POSITIVE, "loss_variance_late": _POSITIVE,
    "noise_variance": _POSITIVE, "weight_change": dict, "p": stored.Many(_SHARE), "word_rate": stored.Many(_SHARE),
}
RESULTS = {"runs": stored.Many(RUN)}


def summarize(results: dict) -> dict[str, dict[str, Spread | None]]:
    """Per variant, mean ± standard error over the training seeds of each number in :data:`SUMMARY`.

    ``saving`` is r = 1 - t / t_full, paired seed by seed; ``p`` and
    ``word_rate`` are each run's mean over its sampling seeds; with one
    training seed, their spread is over the sampling seeds instead.
    """
    check_type("results", results, Mapping, "the dict that run_all() or load_results() returns")
    runs = results.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"results must hold a non-empty list of runs under 'runs', got {shown(runs)}")
    for r in runs:
        check_result("a run of results", r, ("variant", "seed", "eval_loss", "loss", "p", "word_rate",
                                           *(k for k in SUMMARY if k not in ("eval_last", "train_last", "saving", "p", "word_rate"))))
        if not r["p"] or not r["loss"] or not r["eval_loss"]:
            raise ValueError(f"a run of results ({r['variant']!r}, seed {r['seed']}) has an empty 'p', 'loss' or 'eval_loss'")
    stored.validate(results, RESULTS)
    full = {r["seed"]: r["seconds_per_step"] for r in runs if r["variant"] == "full"}
    values: dict[str, dict[str, list]] = {}
    for r in runs:
        row = values.setdefault(r["variant"], {key: [] for key in SUMMARY})
        derived = {"eval_last": r["eval_loss"][-1], "train_last": statistics.fmean(r["loss"][-10:]),
                   "saving": 1 - r["seconds_per_step"] / full[r["seed"]] if r["seed"] in full else None,
                   "p": statistics.fmean(r["p"]), "word_rate": statistics.fmean(r["word_rate"])}
        for key in SUMMARY:
            value = derived[key] if key in derived else r[key]
            if value is not None:
                row[key].append(value)
    out = {}
    for variant, row in values.items():
        out[variant] = {k: spread(xs) if xs else None for k, xs in row.items()}
        if len(row["p"]) == 1:
            for key in ("p", "word_rate"):
                out[variant][key] = spread(next(r[key] for r in runs if r["variant"] == variant))
    return out


def load_results(name: str = "gpu") -> dict:
    """The stored results (``course_lib/lessons/results/lesson04_<name>.json``), checked against :data:`CONFIGS` and the pretraining."""
    check_choice("name", name, tuple(CONFIGS), "the configurations of CONFIGS")
    config = CONFIGS[name]
    schema = {**RESULTS, "pretrain_info": {"tokens": stored.Int(1), "texts": stored.Int(1), "first_loss": _LOSS, "final_loss": _LOSS,
                                           "bytes_per_token": stored.Real(0.0, exclusive=True)},
              "S_size": stored.Int(1), "p_before": stored.Many(_SHARE), "word_rate_before": stored.Many(_SHARE), "eval_before": _LOSS,
              "sample_before": str,
              "probe_cost": stored.Real(0.0, exclusive=True),
              "provenance": {"date": str, "device": str, "torch": str, "cuda": stored.Maybe(str), "command": str}}
    return stored.load("04", name, f"python -m {MODULE} --config {name}", {"config": config, "pretrain": PRETRAIN[config.pretrain]},
                       schema)


@dataclass(frozen=True)
class TimingConfig:
    """The timing study: a model of random weights (time does not depend on their values), its batches, rounds and processes.

    Each of ``processes`` separate Python processes builds every variant,
    measures its peak memory alone, then times ``rounds`` rounds of
    ``steps`` steps per variant, round-robin (the order rotates each round),
    after ``warmup`` untimed steps each, all on the same batches.
    """

    name: str
    model: GPTConfig = GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12, n_embd=768)  # GPT-2 small's sizes
    batch_size: int = 8
    precision: str = "bf16"
    lr: float = 3e-4
    weight_decay: float = 0.1
    clip: float = 1.0
    warmup: int = 3
    steps: int = 10
    rounds: int = 5
    processes: int = 5
    variants: tuple[str, ...] = VARIANTS

    def __post_init__(self) -> None:
        check_type("name", self.name, str, "a string")
        check_type("model", self.model, GPTConfig, "a course_lib.models.gpt.GPTConfig")
        check_int("batch_size", self.batch_size, 1, unit="windows")
        weight_dtype(self.precision)
        check_number("lr", self.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_number("weight_decay", self.weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
        check_number("clip", self.clip, "> 0", lambda v: v > 0)
        check_int("warmup", self.warmup, 1, unit="untimed steps per variant")
        check_int("steps", self.steps, 1, unit="timed steps per round")
        check_int("rounds", self.rounds, 2, unit="rounds (the spread within a process needs two)")
        check_int("processes", self.processes, 2, unit="separate processes (the spread between them needs two)")
        check_variants("variants", self.variants, VARIANTS)
        if "full" not in self.variants:
            raise ValueError(f"variants must include 'full', against which the savings are measured, got {self.variants!r}")


TIMING_CONFIGS = {
    "timing-cpu": TimingConfig("timing-cpu", GPTConfig(vocab_size=256, block_size=32, n_layer=4, n_head=2, n_embd=32), batch_size=4,
                               precision="fp32", warmup=1, steps=2, rounds=2, processes=2),
    "timing-gpu": TimingConfig("timing-gpu"),
}


def _timing_model(config: TimingConfig, base: dict, variant: str, device):
    model = GPT(config.model)
    model.load_state_dict(base)
    for name, p in model.named_parameters():
        p.requires_grad_(trains(name, variant, config.model.n_layer))
    model.to(device)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95))
    return model, optimizer


def time_variants(config: TimingConfig, device=None) -> dict:
    """One process of the timing study: each variant's peak memory (measured alone), then its ms per step, round-robin."""
    check_type("config", config, TimingConfig, "a TimingConfig, e.g. TIMING_CONFIGS['timing-cpu']")
    device = pick_device(device)
    torch.manual_seed(0)
    base = GPT(config.model).state_dict()
    windows = config.batch_size * (config.model.block_size + 1) * 4
    data = TokenWindows(torch.randint(config.model.vocab_size, (windows,), generator=torch.Generator().manual_seed(0)),
                        config.batch_size, config.model.block_size, 0)
    loop = dict(precision=config.precision, clip=config.clip, device=device)
    memory, state, flops, trainable = {}, {}, {}, {}
    for variant in config.variants:
        if device.type == "cuda":
            torch.cuda.empty_cache()
        peak = PeakMemory(device)
        model, optimizer = _timing_model(config, base, variant, device)
        timed_run(model, optimizer, data, lm_loss, **loop).advance(config.warmup)
        synchronize(device)
        memory[variant], state[variant] = peak.mb, state_memory(model)
        flops[variant], trainable[variant] = flop_saving(model), trainable_ratio(model)
        del model, optimizer
    runs = {}
    for variant in config.variants:
        model, optimizer = _timing_model(config, base, variant, device)
        runs[variant] = timed_run(model, optimizer, data, lm_loss, **loop)
        runs[variant].advance(config.warmup)
    seconds = interleaved({variant: (lambda run=run: run.advance(config.steps)) for variant, run in runs.items()}, config.rounds, device)
    ms = {variant: [1e3 * s / config.steps for s in values] for variant, values in seconds.items()}
    for r in runs.values():
        r.finish()
    return {"ms_per_step": ms, "peak_memory_mb": memory, "state_bytes": state, "flop_saving": flops, "trainable": trainable}


def _one_timing(config_json: str, device: str | None) -> dict:
    """One process of :func:`timing_study` (see :func:`course_lib.lessons.stored.in_processes`)."""
    c = json.loads(config_json)
    return time_variants(TimingConfig(**{**c, "model": GPTConfig(**c["model"]), "variants": tuple(c["variants"])}), device)


def timing_study(config: TimingConfig, device=None, progress=print) -> dict:
    """``config.processes`` separate processes of :func:`time_variants`, one after the other, with provenance (the stored study)."""
    check_type("config", config, TimingConfig, "a TimingConfig, e.g. TIMING_CONFIGS['timing-gpu']")
    stored.check_progress(progress)
    if device is not None:
        check_type("device", device, (str, torch.device), "None (the GPU when there is one), 'cpu' or 'cuda'")
    processes = stored.in_processes(f"{MODULE}:_one_timing", config, device, config.processes, progress)
    return {"config": dataclasses.asdict(config), "processes": processes,
            "provenance": stored.provenance(pick_device(device), f"python -m {MODULE} --config {config.name}")}


_PER_VARIANT = lambda item: stored.Named(item)
TIMING = {"processes": stored.Many({"ms_per_step": _PER_VARIANT(stored.Many(stored.Real(0.0, exclusive=True))),
                                    "peak_memory_mb": _PER_VARIANT(stored.Maybe(_POSITIVE)),
                                    "state_bytes": _PER_VARIANT({"weights": stored.Int(1), "gradients": stored.Int(0),
                                                                 "optimizer": stored.Int(0)}),
                                    "flop_saving": _PER_VARIANT(_SHARE), "trainable": _PER_VARIANT(_SHARE)})}


def timing_summary(results: dict) -> dict[str, dict]:
    """Per variant: ms per step and saving 1 - t/t_full (medians of each process's rounds; mean ± SE over the processes), memory.

    ``saving_range`` is the lowest and highest saving of a process: the
    spread between separate commands, which is what a reader repeating the
    measurement would see.  ``activations_mb`` is the peak memory less the
    weights, gradients and optimizer state (:func:`state_memory`).
    """
    check_type("results", results, Mapping, "the dict that timing_study() or load_timing() returns")
    stored.validate(results, TIMING)
    processes = results["processes"]
    variants = list(processes[0]["ms_per_step"])
    if "full" not in variants or any(list(p["ms_per_step"]) != variants for p in processes):
        raise ValueError("every process of results must time the same variants, 'full' among them")
    out = {}
    for v in variants:
        ms = [statistics.median(p["ms_per_step"][v]) for p in processes]
        savings = [1 - statistics.median(p["ms_per_step"][v]) / statistics.median(p["ms_per_step"]["full"]) for p in processes]
        within = [spread(p["ms_per_step"][v]).sem / statistics.fmean(p["ms_per_step"][v]) for p in processes]
        peak = processes[0]["peak_memory_mb"][v]
        state = {k: n / 2**20 for k, n in processes[0]["state_bytes"][v].items()}
        out[v] = {"ms": spread(ms), "saving": spread(savings), "saving_range": (min(savings), max(savings)),
                  "round_se": statistics.fmean(within), "peak_memory_mb": peak, "state_mb": state,
                  "activations_mb": None if peak is None else peak - sum(state.values()),
                  "flop_saving": processes[0]["flop_saving"][v], "trainable": processes[0]["trainable"][v]}
    return out


def load_timing(name: str = "timing-gpu") -> dict:
    """The stored timing study (``course_lib/lessons/results/lesson04_<name>.json``), checked against :data:`TIMING_CONFIGS`."""
    check_choice("name", name, tuple(TIMING_CONFIGS), "the configurations of TIMING_CONFIGS")
    schema = {**TIMING, "provenance": {"date": str, "device": str, "torch": str, "cuda": stored.Maybe(str), "command": str}}
    return stored.load("04", name, f"python -m {MODULE} --config {name}", {"config": TIMING_CONFIGS[name]}, schema)


def claims(results: dict, timing: dict) -> dict:
    """The notes' claims measured over the stored study's seeds (``results``) and the timing study (``timing``).

    ``slower``: B's final held-out loss is above A's in every seed;
    ``moves_more``: every trainable matrix of B moved more per step than in A,
    on average over the run, in every seed, with the lowest and highest
    share of single steps at which it did; ``b_wins``/``pairs``: sampling
    seeds at which p_B > p_A; ``reversed_gap``: the largest final |L_A -
    L_reversed|; ``timing``: :func:`timing_summary`.
    """
    check_type("results", results, Mapping, "the dict that load_results() returns")
    check_type("timing", timing, Mapping, "the dict that load_timing() returns")
    summarize(results)  # the checks
    by = {(r["variant"], r["seed"]): r for r in results["runs"]}
    seeds = sorted({r["seed"] for r in results["runs"]})
    pairs = [(by[("full", k)], by[("targeted", k)]) for k in seeds]
    ratios = [b / a for full, target in pairs for a, b in weight_change_ratio(full, target).values()]
    above = [x for full, target in pairs for x in steps_b_above_a(full, target).values()]
    wins = [p_summary(results["p_before"], full, target) for full, target in pairs]
    return {
        "seeds": len(seeds),
        "slower": all(target["eval_loss"][-1] > full["eval_loss"][-1] for full, target in pairs),
        "moves_more": min(ratios) > 1, "ratio_low": min(ratios), "ratio_high": max(ratios),
        "above_low": min(above), "above_high": max(above),
        "b_wins": sum(w["b_wins"] for w in wins), "pairs": sum(w["n"] for w in wins),
        "reversed_gap": max(curve_gap(by[("full", k)], by[("reversed", k)])["last"] for k in seeds),
        "timing": timing_summary(timing),
    }


def _check_config(config: object) -> None:
    check_type("config", config, Config, "a targeted_freezing_gpt.Config, e.g. CONFIGS['cpu']")


def _check_numbers(name: str, values: object, what: str, empty: bool = True) -> None:
    """A list (or tuple) of finite real numbers; ``empty``: whether none at all is allowed."""
    if not isinstance(values, (list, tuple)) or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise TypeError(f"{name} must be {what}: a list of numbers, got {shown(values)}")
    for i, value in enumerate(values):
        if not math.isfinite(value):
            raise ValueError(f"{name}[{i}] must be a finite number ({what}), got {value!r}")
    if not empty and not values:
        raise ValueError(f"{name} is empty: it must be {what}")


def _run_any(config, device=None) -> dict:
    """``run_all`` for a :class:`Config`, ``timing_study`` for a :class:`TimingConfig`."""
    return timing_study(config, device) if isinstance(config, TimingConfig) else run_all(config, device)


def main(argv=None) -> None:
    stored.main(argv, lesson="04", description="Run lesson 04's experiments (--config gpu) or its timing study (--config "
                "timing-gpu) and store the results as JSON.", configs={**CONFIGS, **TIMING_CONFIGS}, run_all=_run_any)


if __name__ == "__main__":
    main()
