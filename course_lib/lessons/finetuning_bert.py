"""Lesson 03's experiments: fine-tuning a pretrained BERT classifier with freezing, clipping and a schedule.

Every run goes through :func:`course_lib.engine.training.train`.  A :class:`Config`
fixes the sizes (the live CPU configuration of the notebook, or the larger
one run on a GPU by ``python -m course_lib.lessons.finetuning_bert --config gpu``); a
variant fixes what is compared:

* ``frozen``: the notes' recipe: embeddings and attention frozen, MLP + pooler +
  classifier trained, clipping at c, 5 % warm-up, linear decay declared for
  1.5x the training steps;
* ``full``: the same with nothing frozen;
* ``frozen_plain``: the recipe without clipping and with a constant rate;
* ``frozen_delayed``: clipping only from step T0 on;
* ``frozen_exact``: the schedule declared for exactly the training steps.

Results are plain numbers (JSON-ready), measured on held-out reviews.
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from course_lib.engine._checks import (
    check_between,
    check_choice,
    check_int,
    check_number,
    check_type,
    shown,
)
from course_lib.engine.callbacks import Evaluate, GradNorms, evaluate
from course_lib.engine.clipping import delayed, norm_lost
from course_lib.engine.data import pick_device
from course_lib.engine.freezing import freeze, param_groups, trainable_ratio
from course_lib.engine.schedules import Constant, ScheduledLR, linear_with_warmup
from course_lib.engine.stats import spread
from course_lib.engine.timing import PeakMemory
from course_lib.engine.training import train, weight_dtype
from course_lib.lessons import stored
from course_lib.lessons.sentiment import (
    ReviewBatches,
    accuracy,
    classification_loss,
    encode,
    load_classifier,
    load_reviews,
    majority_baseline,
)
from course_lib.lessons.sources import check_source

__all__ = ["Config", "CONFIGS", "VARIANTS", "RECIPE", "TRACKED", "run", "run_all", "clipping_effect", "norm_summary", "paired_gap", "load_results", "summarize", "main"]

RECIPE = r"embeddings|attention"  # frozen in the notes' recipe
TRACKED = {"mlp": r"encoder\.layer\.\d+\.(intermediate|output)\.dense", "classifier": r"^classifier\."}
VARIANTS = ("frozen", "full", "frozen_plain", "frozen_delayed", "frozen_exact")


@dataclass(frozen=True)
class Config:
    """Sizes of one configuration; ``declared`` is the schedule's length (the notes: 450 for 300 steps)."""

    name: str
    steps: int
    declared: int
    seeds: tuple[int, ...]
    max_length: int = 48
    batch_size: int = 16
    lr: float = 1e-4
    weight_decay: float = 0.01
    clip: float = 1.0
    warmup_fraction: float = 0.05
    delay: int = 10
    eval_size: int | None = None
    source: str = "offline"
    variants: tuple[str, ...] = VARIANTS
    precision: str = "fp32"

    def __post_init__(self) -> None:
        check_type("name", self.name, str, "a string")
        check_int("steps", self.steps, 1)
        check_int("declared", self.declared, self.steps, unit="optimizer steps (the schedule's length: at least steps, so the "
                  "rate does not reach 0 before training ends)")
        check_seeds("seeds", self.seeds)
        check_int("max_length", self.max_length, 8, unit="tokens")
        check_int("batch_size", self.batch_size, 1, unit="reviews")
        check_number("lr", self.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_number("weight_decay", self.weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
        check_number("clip", self.clip, "> 0", lambda v: v > 0)
        check_between("warmup_fraction", self.warmup_fraction, 0.0, 1.0, "a share of the training steps")
        check_int("delay", self.delay, 0)
        if self.eval_size is not None:
            check_int("eval_size", self.eval_size, 1, unit="reviews")
        check_source(self.source)
        check_variants("variants", self.variants, VARIANTS)
        weight_dtype(self.precision)  # one of training.PRECISIONS
        if "frozen_delayed" in self.variants:
            _check_delay(self)

    @property
    def warmup(self) -> int:
        return max(1, round(self.warmup_fraction * self.steps))


def _check_delay(config: Config) -> None:
    """``delay`` is read by the frozen_delayed variant only: there it must fall within the run, or clipping never acts."""
    if config.delay >= config.steps:
        raise ValueError(f"delay must be less than steps = {config.steps} for the frozen_delayed variant (it clips from step "
                         f"delay on; from step {config.delay} on it would never clip), got {config.delay}")


def check_seeds(name: str, seeds: object) -> None:
    """A non-empty tuple of different int seeds >= 0 (a repeated seed is the same run, not one more independent one)."""
    if not isinstance(seeds, tuple) or not seeds:
        raise TypeError(f"{name} must be a non-empty tuple of int seeds, e.g. (0, 1, 2), got {shown(seeds)}")
    for i, seed in enumerate(seeds):
        check_int(f"{name}[{i}]", seed, 0, unit="seed units")
        if seed in seeds[:i]:
            raise ValueError(f"{name} holds seed {seed} twice, got {seeds!r}: a repeated seed repeats the same run, which the "
                             "mean and its standard error would count as independent")


def check_variants(name: str, variants: object, known: tuple[str, ...]) -> None:
    """A non-empty tuple of names from ``known``."""
    if not isinstance(variants, tuple) or not variants:
        raise TypeError(f"{name} must be a non-empty tuple of variant names from {known}, got {shown(variants)}")
    for i, variant in enumerate(variants):
        check_choice(f"{name}[{i}]", variant, known)


def _check_config(config: object) -> None:
    check_type("config", config, Config, "a finetuning_bert.Config, e.g. CONFIGS['cpu']")


def check_result(name: str, result: object, keys: tuple[str, ...]) -> None:
    """One of a lesson's ``run()`` results (a dict) with ``keys`` (lesson 04 checks its runs with it too)."""
    check_type(name, result, Mapping, "one of run()'s results (a dict)")
    missing = [key for key in keys if key not in result]
    if missing:
        raise ValueError(f"{name} lacks {', '.join(map(repr, missing))}: pass one of run()'s results")


def _check_results(results: object) -> list:
    """The dict that :func:`run_all` (or :func:`load_results`) returns, checked against :data:`RESULTS`; its runs."""
    check_type("results", results, Mapping, "the dict that run_all() or load_results() returns")
    runs = results.get("runs")
    if not isinstance(runs, list) or not runs:
        raise ValueError(f"results must hold a non-empty list of runs under 'runs', got {shown(runs)}")
    stored.validate(results, RESULTS)
    return runs


_SHARE, _POSITIVE = stored.Real(0.0, 1.0), stored.Real(0.0)
_NORMS = stored.Many(stored.Real(0.0, nonfinite="a skipped step's norm is inf or NaN"), empty=True)
# What the lesson's tables and summaries read from one run (run() returns more).
RUN = {
    "variant": stored.Choice(VARIANTS), "seed": stored.Int(0), "trainable": _SHARE, "accuracy_before": _SHARE,
    "accuracy_after": _SHARE, "baseline": _SHARE, "seconds_per_step": stored.Real(0.0, exclusive=True),
    "peak_memory_mb": stored.Maybe(_POSITIVE),
    "loss_variance_late": stored.Real(0.0, nonfinite="NaN for a run too short to measure it"), "clipped_fraction": _SHARE,
    "final_lr": _POSITIVE, "grad_norm": _NORMS, "grad_norm_mlp": _NORMS, "grad_norm_classifier": _NORMS, "norm_lost": _NORMS,
}
RESULTS = {"runs": stored.Many(RUN)}


CONFIGS = {
    "cpu": Config("cpu", steps=40, declared=60, seeds=(0,), max_length=32, lr=3e-4, eval_size=256, delay=5,
                  variants=("frozen", "full"), precision="fp64"),  # float64: every CPU prints the same digits
    "gpu": Config("gpu", steps=300, declared=450, seeds=(0, 1, 2, 3, 4), max_length=64, delay=30),
}


def _setup(config: Config, variant: str, seed: int):
    check_choice("variant", variant, VARIANTS)
    model, tokenizer = load_classifier(config.source, seed=seed, precision=config.precision)
    if variant != "full":
        freeze(model, RECIPE)
    optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    declared = config.steps if variant == "frozen_exact" else config.declared
    schedule = Constant() if variant == "frozen_plain" else linear_with_warmup(config.warmup, declared)
    clip = None if variant == "frozen_plain" else delayed(config.clip, config.delay) if variant == "frozen_delayed" else config.clip
    return model, tokenizer, optimizer, ScheduledLR(optimizer, schedule), clip


_ENCODED: dict[tuple, tuple] = {}


def _data(config: Config, tokenizer, seed: int):
    """Training batches (shuffled with ``seed``), held-out chunks, and what the held-out reviews are: how many, the
    positive share and the majority baseline on them; encoded once per size."""
    key = (config.source, config.max_length, config.eval_size)
    if key not in _ENCODED:
        splits = load_reviews(config.source)
        test = splits["test"][: config.eval_size] if config.eval_size else splits["test"]
        held_out = ReviewBatches(encode(test, tokenizer, config.max_length), min(64, len(test))).chunks()
        facts = {"baseline": majority_baseline(splits["train"], test), "eval_reviews": len(test),
                 "eval_positive": sum(r.label for r in test) / len(test)}
        _ENCODED.clear()
        _ENCODED[key] = (encode(splits["train"], tokenizer, config.max_length), held_out, facts)
    train_set, held_out, facts = _ENCODED[key]
    return ReviewBatches(train_set, config.batch_size, seed=seed), held_out, facts


def run(config: Config, variant: str, seed: int, device=None, callbacks=()) -> dict:
    """One fine-tuning run; returns held-out accuracy before and after, timing, memory, norms, clipping, losses."""
    _check_config(config)
    check_choice("variant", variant, VARIANTS)
    check_int("seed", seed, 0, unit="seed units")
    if variant == "frozen_delayed":
        _check_delay(config)
    device = pick_device(device)
    model, tokenizer, optimizer, scheduler, clip = _setup(config, variant, seed)
    batches, held_out, facts = _data(config, tokenizer, seed)
    torch.manual_seed(seed)  # dropout's masks: the same run gives the same numbers, whatever ran before it
    model.to(device)
    before = evaluate(model, held_out, classification_loss, metrics=accuracy, device=device)["eval_accuracy"]
    peak = PeakMemory(device)
    history = train(model, optimizer, batches, classification_loss, config.steps, scheduler=scheduler, clip=clip,
                    callbacks=[GradNorms(model.named_parameters(), TRACKED), Evaluate(held_out, config.steps, accuracy), *callbacks], device=device,
                    precision=config.precision, log_every=10)
    windows = history.metric("seconds_per_step")  # one per 10 steps; the first holds the warm-up, the last the evaluation
    seconds = statistics.median(windows[1:-1] if len(windows) > 2 else windows)
    half = config.steps // 2
    clipped = [g > c for g, c in zip(history.grad_norm, history.threshold)]
    return {
        "variant": variant,
        "seed": seed,
        "trainable": trainable_ratio(model),
        "accuracy_before": before,
        "accuracy_after": history.metric("eval_accuracy")[-1],
        **facts,  # baseline, eval_reviews, eval_positive
        "seconds_per_step": seconds,
        "peak_memory_mb": peak.mb,
        "loss": history.loss,
        "loss_variance_late": statistics.variance(history.loss[half:]) if config.steps - half > 1 else math.nan,
        "grad_norm": history.grad_norm,
        "grad_norm_mlp": history.metric("grad_norm/mlp"),
        "grad_norm_classifier": history.metric("grad_norm/classifier"),
        "clipped_fraction": sum(clipped) / len(clipped),
        "last_clipped_step": max((t for t, c in enumerate(clipped) if c), default=None),
        "norm_lost": [norm_lost(g, c) for g, c in zip(history.grad_norm, history.threshold) if math.isfinite(g)],
        "final_lr": history.lr[-1],
    }


def paired_gap(results: dict, a: str, b: str, key: str = "accuracy_after"):
    """``key`` of variant ``b`` minus variant ``a``, seed by seed (same seeds): a :class:`~course_lib.engine.stats.Spread`."""
    for run in _check_results(results):
        check_result("a run of results", run, ("variant", "seed", key))
    by_seed = {(r["variant"], r["seed"]): r[key] for r in results["runs"]}
    seeds = sorted(seed for variant, seed in by_seed if variant == a)
    if not seeds or any((b, seed) not in by_seed for seed in seeds):
        raise ValueError(f"variants {a!r} and {b!r} must have runs of the same seeds")
    return spread([by_seed[(b, seed)] - by_seed[(a, seed)] for seed in seeds])


def norm_summary(result: dict, clip: float) -> dict[str, float]:
    """When clipping acted in one run and which part had the large gradient (the lesson's per-seed lines)."""
    check_result("result", result, ("grad_norm", "clipped_fraction", "grad_norm_classifier", "grad_norm_mlp"))
    check_number("clip", clip, "> 0 (the run's clipping threshold)", lambda v: v > 0)
    norms = result["grad_norm"]
    if not norms:
        raise ValueError("result['grad_norm'] is empty: the run recorded no step")
    return {
        "clipped_pct": 100 * result["clipped_fraction"],
        "clipped_first_50": sum(g > clip for g in norms[:50]),
        "mean_first_30": sum(norms[:30]) / len(norms[:30]),
        "mean_last_30": sum(norms[-30:]) / len(norms[-30:]),
        "head_above": sum(g > clip for g in result["grad_norm_classifier"]),
        "mlp_first_above": next((t for t, g in enumerate(result["grad_norm_mlp"]) if g > clip), None),
    }


def clipping_effect(result: dict, clip: float, start: int = 0) -> dict[str, float]:
    """What clipping did to the classifier head's gradient from step ``start`` on, globally and per part.

    Global clipping multiplies every part by min(1, c / |g|); clipping each
    part by its own norm would multiply the head by min(1, c / |g_head|).
    Returns the mean of each factor over the steps.
    """
    check_result("result", result, ("grad_norm", "grad_norm_classifier"))
    check_number("clip", clip, "> 0 (the run's clipping threshold)", lambda v: v > 0)
    check_int("start", start, 0)
    steps = range(start, len(result["grad_norm"]))
    if not steps:
        raise ValueError(f"start={start} is past the run's {len(result['grad_norm'])} steps")
    factor = lambda norm: clip / norm if norm > clip else 1.0  # min(1, c / |g|), also at |g| = 0
    global_factor = [factor(result["grad_norm"][t]) for t in steps]
    own_factor = [factor(result["grad_norm_classifier"][t]) for t in steps]
    return {"global": sum(global_factor) / len(steps), "per_part": sum(own_factor) / len(steps)}


def run_all(config: Config, device=None, progress=print) -> dict:
    """Every variant of ``config`` over its seeds, with provenance."""
    _check_config(config)
    stored.check_progress(progress)
    device = pick_device(device)
    runs = []
    for variant in config.variants:
        for seed in config.seeds:
            progress(f"{config.name}: {variant}, seed {seed}")
            runs.append(run(config, variant, seed, device))
    import transformers

    return {
        "config": dataclasses.asdict(config),
        "provenance": stored.provenance(device, f"python -m course_lib.lessons.finetuning_bert --config {config.name}",
                                        transformers=transformers.__version__),
        "runs": runs,
    }


SUMMARY = ("accuracy_before", "accuracy_after", "seconds_per_step", "peak_memory_mb", "loss_variance_late",
           "clipped_fraction", "final_lr", "trainable")


def summarize(results: dict) -> dict[str, dict]:
    """Per variant: mean ± standard error over the seeds of each number in :data:`SUMMARY` (None where not measured)."""

    out: dict[str, dict] = {}
    for r in _check_results(results):
        check_result("a run of results", r, ("variant", *SUMMARY))
        out.setdefault(r["variant"], {key: [] for key in SUMMARY})
        for key in SUMMARY:
            if r[key] is not None:
                out[r["variant"]][key].append(r[key])
    return {v: {k: spread(xs) if xs else None for k, xs in values.items()} for v, values in out.items()}


def load_results(name: str = "gpu") -> dict:
    """The stored results of a configuration (``course_lib/lessons/results/lesson03_<name>.json``), checked against :data:`CONFIGS`."""
    check_choice("name", name, tuple(CONFIGS), "the configurations of CONFIGS")
    schema = {**RESULTS, "provenance": {key: str for key in ("date", "device", "torch", "transformers", "command")}}
    return stored.load("03", name, f"python -m {__name__} --config {name}", {"config": CONFIGS[name]}, schema)


def main(argv=None) -> None:
    stored.main(argv, lesson="03", description="Run lesson 03's experiments and store the results as JSON.",
                configs=CONFIGS, run_all=run_all)


if __name__ == "__main__":
    main()
