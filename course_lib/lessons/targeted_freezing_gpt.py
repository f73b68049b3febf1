"""Lesson 04's experiments: a pretrained GPT fine-tuned on *Hamlet* with everything trained or most of it frozen.

Every run starts from the same pretrained weights and sees the same batches
in the same order (:func:`course_lib.engine.data.checksum` proves both), through
:func:`course_lib.engine.training.train`.  The variants:

* ``full`` (model A): every parameter trains;
* ``targeted`` (model B): only the attention layers (``c_attn``, ``c_proj``)
  of the lower half of the blocks train, everything else is frozen;
* ``reversed``: everything trains except the attention of the upper half.

Measured per run: training and held-out loss, time per step, the Frobenius
norm of each attention matrix's change per step |W_t - W_{t-1}|_F, and the
share p of generated tokens in a set S of *Hamlet*'s characteristic tokens,
over several sampling seeds.  ``python -m course_lib.lessons.targeted_freezing_gpt
--config gpu`` runs the larger configuration and stores it in ``course_lib/lessons/results/``.
"""

from __future__ import annotations

import dataclasses
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
from course_lib.engine.freezing import (
    freeze,
    param_groups,
    select,
    trainable_ratio,
    unfreeze,
)
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.stats import Spread, noise_variance, spread
from course_lib.engine.timing import PeakMemory
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
from course_lib.models.gpt import GPT, generate, lm_loss

__all__ = ["Config", "CONFIGS", "VARIANTS", "ATTENTION_WEIGHTS", "Setup", "setup", "prepare", "run", "run_all", "sample_measures", "sample_text",
           "flop_saving", "p_summary", "weight_change_ratio", "curve_gap", "summarize", "noise_variance", "probe_cost", "load_results", "main"]

ATTENTION_WEIGHTS = r"\.attn\.c_(attn|proj)\."
VARIANTS = ("full", "targeted", "reversed")


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
                             words, {**info, "block_size": T, "train_tokens": len(train_ids), "held_out_tokens": len(held_ids)})
    return _SETUPS[key]


def prepare(s: Setup, variant: str, precision: str = "fp32") -> GPT:
    """A fresh copy of the pretrained model, its weights in ``precision``'s dtype, with ``variant``'s freezing applied."""
    check_type("s", s, Setup, "the Setup that setup(config) returns")
    check_choice("variant", variant, VARIANTS)
    with default_dtype(weight_dtype(precision)):
        model = GPT(s.model_config)
    model.load_state_dict(s.base)  # the pretrained weights, converted exactly (float32 -> float64) where they differ
    L = s.model_config.n_layer
    if variant == "targeted":
        freeze(model, r".")
        unfreeze(model, ATTENTION_WEIGHTS, layers=range(L // 2))
    elif variant == "reversed":
        freeze(model, ATTENTION_WEIGHTS, layers=range(L // 2, L))
    return model


def _windows(s: Setup, config: Config, seed: int) -> TokenWindows:
    return TokenWindows(s.train_ids, config.batch_size, s.info["block_size"], seed)


def _samples(model: GPT, s: Setup, config: Config, seed: int, device) -> torch.Tensor:
    prompt = torch.tensor([s.tokenizer.encode("\n")] * config.samples, device=device)
    out = generate(model, prompt, config.sample_tokens, temperature=config.temperature, top_k=config.top_k, seed=seed)
    return out[:, prompt.shape[1]:].cpu()


def sample_measures(model: GPT, s: Setup, config: Config, device=None) -> dict:
    """From one set of samples per sampling seed: ``p`` (one share of tokens in S per seed) and ``word_rate``.

    ``word_rate`` is the share of the generated words (letters only) that occur
    in the two corpora: a crude measure of well-formed text.
    """
    device = pick_device(device)
    model.to(device)
    p, words = [], []
    for seed in config.sample_seeds:
        tokens = _samples(model, s, config, seed, device)
        p.append(token_share(tokens, s.S))
        for row in tokens:
            words += re.findall(r"[a-z]+", s.tokenizer.decode(row).lower())
    return {"p": p, "word_rate": sum(w in s.words for w in words) / max(1, len(words))}


def sample_text(model: GPT, s: Setup, config: Config, tokens: int = 40, seed: int = 0, device=None) -> str:
    """One generated continuation of a line break, ``tokens`` long, as text."""
    check_int("tokens", tokens, 1, unit="tokens")
    check_int("seed", seed, 0, unit="seed units")
    device = pick_device(device)
    model.to(device)
    short = dataclasses.replace(config, samples=1, sample_tokens=tokens)
    return s.tokenizer.decode(_samples(model, s, short, seed, device)[0])


def flop_saving(model: GPT) -> float:
    """The share of a step's matrix-multiply FLOPs that frozen weights save: frozen / (3 x all).

    Forward (2 FLOPs per weight and token) and the backward pass's input
    gradients (2 more) run through every layer the gradient has to cross;
    only the weight gradients (2 more) of frozen matrices are skipped.
    """
    check_type("model", model, GPT, "a course_lib.models.gpt.GPT (the count knows its layers: wte is also lm_head, wpe a look-up)")
    matrices = [p for name, p in model.named_parameters() if p.ndim == 2 and not name.endswith("wpe.weight")]
    total = sum(p.numel() for p in matrices)  # wte counted once: it is also lm_head, the output matmul
    frozen = sum(p.numel() for p in matrices if not p.requires_grad)
    return frozen / (3 * total)


def _attention_params(model: GPT):
    names = set(select(model, ATTENTION_WEIGHTS))
    return [(n, p) for n, p in model.named_parameters() if n in names]


def _optimizer(model: GPT, config: Config):
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr, betas=(0.9, 0.95))
    return optimizer, ScheduledLR(optimizer, cosine_with_warmup(config.warmup, config.steps, min_lr_ratio=0.1))


def run(config: Config, variant: str, seed: int = 0, device=None, callbacks=()) -> tuple[dict, GPT]:
    """One fine-tuning run of ``variant``; returns (numbers, trained model)."""
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
    data = DataChecksum()
    history = train(model, optimizer, _windows(s, config, seed), lm_loss, config.steps, scheduler=scheduler, clip=config.clip,
                    precision=config.precision, device=device, log_every=config.eval_every,
                    callbacks=[StepTimer(), WeightChange(_attention_params(model), per_matrix=True),
                               Evaluate(s.held_out, config.eval_every), data, *callbacks])
    times = history.metric("seconds")
    changes = {name[len("weight_change/"):]: history.metric(name) for name in history.metric_names("weight_change/")}
    half = config.steps // 2
    measures = sample_measures(model, s, config, device)
    return {
        "variant": variant,
        "seed": seed,
        "initial_checksum": initial,
        "batch_checksum": data.hexdigest(),
        "trainable": trainable_ratio(model),
        "flop_saving": flop_saving(model),
        "loss": history.loss,
        "eval_steps": history.metric_steps("eval_loss"),
        "eval_loss": history.metric("eval_loss"),
        "seconds_per_step": statistics.median(times[3:] if len(times) > 6 else times),
        "peak_memory_mb": peak.mb,
        "loss_variance": statistics.variance(history.loss),
        "loss_variance_late": statistics.variance(history.loss[half:]),
        "noise_variance": noise_variance(history.loss),
        "weight_change": changes,
        **measures,
    }, model


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
        "p_before": sample_measures(before, s, config, device)["p"],
        "eval_before": evaluate(before, s.held_out, lm_loss, device=device, precision=config.precision)["eval_loss"],
        "sample_before": sample_text(before, s, config, device=device),
        "probe_cost": probe_cost(config, device=device),
        "provenance": stored.provenance(device, f"python -m course_lib.lessons.targeted_freezing_gpt --config {config.name}"),
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
           "loss_variance", "noise_variance", "p")


_SHARE, _POSITIVE, _LOSS = stored.Real(0.0, 1.0), stored.Real(0.0), stored.Real(0.0)
_LOSSES = stored.Many(_LOSS)
# What the lesson's tables and summaries read from one run and from the results (run() and run_all() return more).
RUN = {
    "variant": stored.Choice(VARIANTS), "seed": stored.Int(0), "trainable": _SHARE, "flop_saving": _SHARE, "loss": _LOSSES,
    "eval_steps": stored.Many(stored.Int(0)), "eval_loss": _LOSSES, "seconds_per_step": stored.Real(0.0, exclusive=True),
    "peak_memory_mb": stored.Maybe(_POSITIVE), "loss_variance": _POSITIVE, "loss_variance_late": _POSITIVE,
    "noise_variance": _POSITIVE, "weight_change": dict, "p": stored.Many(_SHARE),
}
RESULTS = {"runs": stored.Many(RUN)}


def summarize(results: dict) -> dict[str, dict[str, Spread | None]]:
    """Per variant, mean ± standard error over the training seeds of each number in :data:`SUMMARY`.

    ``saving`` is r = 1 - t / t_full, paired seed by seed; ``p`` is each run's
    mean share over its sampling seeds; with one training seed, p's spread is
    over the sampling seeds instead.
    """
    check_type("results", results, Mapping, "the dict that run_all() or load_results() returns")
    runs = results.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"results must hold a non-empty list of runs under 'runs', got {shown(runs)}")
    for r in runs:
        check_result("a run of results", r, ("variant", "seed", "eval_loss", "loss", "p",
                                           *(k for k in SUMMARY if k not in ("eval_last", "train_last", "saving", "p"))))
        if not r["p"] or not r["loss"] or not r["eval_loss"]:
            raise ValueError(f"a run of results ({r['variant']!r}, seed {r['seed']}) has an empty 'p', 'loss' or 'eval_loss'")
    stored.validate(results, RESULTS)
    full = {r["seed"]: r["seconds_per_step"] for r in runs if r["variant"] == "full"}
    values: dict[str, dict[str, list]] = {}
    for r in runs:
        row = values.setdefault(r["variant"], {key: [] for key in SUMMARY})
        derived = {"eval_last": r["eval_loss"][-1], "train_last": statistics.fmean(r["loss"][-10:]),
                   "saving": 1 - r["seconds_per_step"] / full[r["seed"]] if r["seed"] in full else None,
                   "p": statistics.fmean(r["p"])}
        for key in SUMMARY:
            value = derived[key] if key in derived else r[key]
            if value is not None:
                row[key].append(value)
    out = {}
    for variant, row in values.items():
        out[variant] = {k: spread(xs) if xs else None for k, xs in row.items()}
        if len(row["p"]) == 1:
            out[variant]["p"] = spread(next(r["p"] for r in runs if r["variant"] == variant))
    return out


def load_results(name: str = "gpu") -> dict:
    """The stored results (``course_lib/lessons/results/lesson04_<name>.json``), checked against :data:`CONFIGS` and the pretraining."""
    check_choice("name", name, tuple(CONFIGS), "the configurations of CONFIGS")
    config = CONFIGS[name]
    schema = {**RESULTS, "pretrain_info": {"tokens": stored.Int(1), "texts": stored.Int(1), "first_loss": _LOSS, "final_loss": _LOSS},
              "S_size": stored.Int(1), "p_before": stored.Many(_SHARE), "eval_before": _LOSS, "sample_before": str,
              "probe_cost": stored.Real(0.0, exclusive=True),
              "provenance": {"date": str, "device": str, "torch": str, "cuda": stored.Maybe(str), "command": str}}
    return stored.load("04", name, f"python -m {__name__} --config {name}", {"config": config, "pretrain": PRETRAIN[config.pretrain]},
                       schema)


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


def main(argv=None) -> None:
    stored.main(argv, lesson="04", description="Run lesson 04's experiments and store the results as JSON.",
                configs=CONFIGS, run_all=run_all)


if __name__ == "__main__":
    main()
