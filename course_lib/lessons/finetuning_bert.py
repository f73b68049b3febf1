"""Lesson 03's experiments: fine-tuning a pretrained BERT classifier with freezing, clipping and a schedule.

Every run goes through :func:`course_lib.engine.training.train`, built from the
pieces the lesson shows in one cell: :func:`review_data` (batches and held-out
reviews), :func:`probes` (what is measured during the run), the loop, and
:func:`outcome` (the run's numbers); :func:`setup` builds the model, optimizer,
schedule and clipping of each variant.  A :class:`Config` fixes the sizes (the
live CPU configuration of the notebook, or the GPU ones run by ``python -m
course_lib.lessons.finetuning_bert --config gpu``, ``gpu_sgd``, ``gpu_timing``);
a variant (:data:`SETUPS`) fixes what is compared:

* ``frozen``: the notes' recipe: embeddings and attention frozen, MLP + pooler +
  classifier trained with AdamW, global clipping at c, 5 % warm-up, linear decay
  declared for 1.5x the training steps;
* ``full``: the same with nothing frozen;
* ``frozen_noclip``: the recipe without clipping (schedule kept);
* ``frozen_constant``: the recipe with a constant rate (clipping kept);
* ``frozen_per_part``: each part (an MLP layer, the pooler, the head, ...)
  clipped to c by its own norm instead of the global norm;
* ``frozen_exact``: the schedule declared for exactly the training steps;
* ``sgd``, ``sgd_noclip``, ``sgd_per_part``: the recipe with plain SGD (the
  notes' update rule) instead of AdamW, clipped globally, not, or per part.

Results are plain numbers (JSON-ready), measured on held-out reviews.
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
    check_between,
    check_choice,
    check_int,
    check_number,
    check_type,
    shown,
)
from course_lib.engine.callbacks import Evaluate, GradNorms, WeightChange, evaluate
from course_lib.engine.clipping import clip_grad_norm_per_layer_, norm_lost
from course_lib.engine.data import pick_device
from course_lib.engine.freezing import freeze, param_groups, trainable_ratio
from course_lib.engine.schedules import Constant, ScheduledLR, linear_with_warmup
from course_lib.engine.stats import noise_variance, spread
from course_lib.engine.timing import PeakMemory
from course_lib.engine.training import Callback, train, weight_dtype
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

__all__ = ["Config", "CONFIGS", "Variant", "SETUPS", "VARIANTS", "RECIPE", "part_of", "ClipPerPart", "setup", "review_data",
           "probes", "outcome", "run", "run_all", "part_norm", "clipped_steps", "clipping_effect", "norm_summary", "paired_gap",
           "update_ratio", "timing_saving", "load_results", "load_timings", "summarize", "main"]

RECIPE = r"embeddings|attention"  # frozen in the notes' recipe


@dataclass(frozen=True)
class Variant:
    """What a variant changes in the notes' recipe: freezing, optimizer, clipping, schedule."""

    frozen: bool = True
    optimizer: str = "adamw"  # "adamw" or "sgd" (plain SGD, no momentum: the notes' update rule)
    clipping: str = "global"  # "global" (one factor for all), "per_part" (each part by its own norm), "none"
    schedule: str = "declared"  # warm-up then linear decay over `declared` steps; "exact": over `steps`; "constant"


SETUPS = {
    "frozen": Variant(),
    "full": Variant(frozen=False),
    "frozen_noclip": Variant(clipping="none"),
    "frozen_constant": Variant(schedule="constant"),
    "frozen_per_part": Variant(clipping="per_part"),
    "frozen_exact": Variant(schedule="exact"),
    "sgd": Variant(optimizer="sgd"),
    "sgd_noclip": Variant(optimizer="sgd", clipping="none"),
    "sgd_per_part": Variant(optimizer="sgd", clipping="per_part"),
}
VARIANTS = tuple(SETUPS)

_MLP = re.compile(r"encoder\.layer\.(\d+)\.(?:intermediate|output)\.dense\.")


def part_of(name: str) -> str:
    """The part of BERT a parameter belongs to: ``mlp.<i>`` (layer i's two MLP matrices and their biases), ``pooler``,
    ``classifier``, ``embeddings``, ``attention`` or ``layernorm`` (the MLP blocks' output LayerNorms)."""
    check_type("name", name, str, "a parameter name such as 'bert.encoder.layer.0.output.dense.weight'")
    mlp = _MLP.search(name)
    if mlp:
        return f"mlp.{mlp.group(1)}"
    if "pooler." in name:
        return "pooler"
    if name.startswith("classifier."):
        return "classifier"
    if "embeddings." in name:
        return "embeddings"
    if "attention." in name:
        return "attention"
    return "layernorm"


class ClipPerPart(Callback):
    """Clip each part's gradient to norm <= c by its own norm (lesson 02, section 5), before the loop's own clipping.

    Give the loop ``clip=None``: it then only measures the global norm, after
    this callback.  Put it after a :class:`GradNorms` that should see the
    gradients before clipping (callbacks run in their list's order).
    """

    def __init__(self, named_parameters, max_norm: float, group_by=part_of):
        self.named = list(named_parameters)
        check_number("max_norm", max_norm, "> 0 and finite", lambda v: 0 < v < math.inf)
        if not callable(group_by):
            raise TypeError(f"group_by must be a function of the parameter name, such as part_of, got {shown(group_by)}")
        self.max_norm, self.group_by = max_norm, group_by

    def on_after_backward(self, state) -> None:
        parts: dict[str, list] = {}
        for name, p in self.named:
            if p.grad is not None:
                parts.setdefault(self.group_by(name), []).append(p)
        if parts:
            clip_grad_norm_per_layer_(parts, self.max_norm, error_if_nonfinite=False)


@dataclass(frozen=True)
class Config:
    """Sizes of one configuration; ``declared`` is the schedule's length (the notes: 450 for 300 steps).

    ``sgd_lr`` is the SGD variants' rate; ``probes=False`` runs without the
    per-part norms and update sizes (a bare run, for timing);
    ``update_sizes=False`` keeps the norms but not the update sizes, whose copy
    of every trained weight at every step costs more than the step on a CPU.
    """

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
    eval_size: int | None = None
    source: str = "offline"
    variants: tuple[str, ...] = VARIANTS
    precision: str = "fp32"
    sgd_lr: float = 0.3
    probes: bool = True
    update_sizes: bool = True

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
        if self.eval_size is not None:
            check_int("eval_size", self.eval_size, 1, unit="reviews")
        check_source(self.source)
        check_variants("variants", self.variants, VARIANTS)
        weight_dtype(self.precision)  # one of training.PRECISIONS
        check_number("sgd_lr", self.sgd_lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_type("probes", self.probes, bool, "True or False")
        check_type("update_sizes", self.update_sizes, bool, "True or False")

    @property
    def warmup(self) -> int:
        return max(1, round(self.warmup_fraction * self.steps))


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
    "peak_memory_mb": stored.Maybe(_POSITIVE), "loss": stored.Many(stored.Real(0.0, nonfinite="a diverged step")),
    "loss_jitter": stored.Real(0.0, nonfinite="NaN for a run too short to measure it, or one that diverged"), "clipped_fraction": _SHARE,
    "final_lr": _POSITIVE, "grad_norm": _NORMS, "grad_norm_parts": stored.Named(_NORMS), "norm_lost": _NORMS,
    "update_norm": _NORMS, "update_norm_parts": stored.Named(_NORMS),
}
RESULTS = {"runs": stored.Many(RUN)}

_GPU = dict(steps=300, declared=450, seeds=(0, 1, 2, 3, 4), max_length=64)
CONFIGS = {
    "cpu": Config("cpu", steps=40, declared=60, seeds=(0,), max_length=32, lr=3e-4, eval_size=256,
                  variants=("frozen", "full"), precision="fp64", update_sizes=False),  # float64: every CPU prints the same digits
    "gpu": Config("gpu", **_GPU, variants=("frozen", "full", "frozen_noclip", "frozen_constant", "frozen_per_part", "frozen_exact")),
    "gpu_sgd": Config("gpu_sgd", **_GPU, variants=("sgd", "sgd_noclip", "sgd_per_part")),
    # time and memory at a size that keeps the GPU busy, without probes; run as three separate commands
    "gpu_timing": Config("gpu_timing", steps=100, declared=150, seeds=(0, 1, 2), max_length=128, batch_size=256,
                         variants=("frozen", "full"), probes=False),
}
TIMING_REPEATS = 3  # lesson03_gpu_timing_1.json ... _3.json: one file per command


def setup(config: Config, variant: str, seed: int):
    """(model, tokenizer, optimizer, scheduler, clip, callbacks) of one variant: what the lesson's main cell builds by hand."""
    _check_config(config)
    check_choice("variant", variant, VARIANTS)
    v = SETUPS[variant]
    model, tokenizer = load_classifier(config.source, seed=seed, precision=config.precision)
    if v.frozen:
        freeze(model, RECIPE)
    if v.optimizer == "sgd":
        optimizer = torch.optim.SGD(param_groups(model, 0.0), lr=config.sgd_lr)
    else:
        optimizer = torch.optim.AdamW(param_groups(model, config.weight_decay), lr=config.lr)
    schedule = (Constant() if v.schedule == "constant" else
                linear_with_warmup(config.warmup, config.steps if v.schedule == "exact" else config.declared))
    clip = config.clip if v.clipping == "global" else None
    callbacks = [ClipPerPart(model.named_parameters(), config.clip)] if v.clipping == "per_part" else []
    return model, tokenizer, optimizer, ScheduledLR(optimizer, schedule), clip, callbacks


_ENCODED: dict[tuple, tuple] = {}


def review_data(config: Config, tokenizer, seed: int):
    """(batches, held_out, facts): training batches shuffled with ``seed``, held-out chunks, and what the held-out
    reviews are (how many, the positive share, the majority baseline); encoded once per size."""
    _check_config(config)
    check_int("seed", seed, 0, unit="seed units")
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


def probes(model, held_out, config: Config) -> list:
    """The callbacks that measure a run: per-part gradient norms (before clipping), update sizes |ΔW| per matrix
    (unless ``config.update_sizes`` is False), held-out accuracy at the end.  With ``config.probes=False`` only the
    accuracy (a bare run, for timing)."""
    _check_config(config)
    measure = [GradNorms(model.named_parameters(), part_of)]
    if config.update_sizes:
        measure.append(WeightChange(model.named_parameters(), per_matrix=True))
    return [*(measure if config.probes else []), Evaluate(held_out, config.steps, accuracy)]


def _combined(series: list[list[float]]) -> list[float]:
    """sqrt(sum of squares) step by step: the norm of several parts together."""
    return [math.sqrt(sum(v * v for v in values)) for values in zip(*series)]


def outcome(history, model, facts: dict, before: float, peak_mb, variant: str, seed: int) -> dict:
    """One run's numbers from its History: accuracy, timing, memory, losses and their jitter, norms, updates, clipping."""
    check_choice("variant", variant, VARIANTS)
    windows = history.metric("seconds_per_step")  # one per 10 steps; the first holds the warm-up, the last the evaluation
    seconds = statistics.median(windows[1:-1] if len(windows) > 2 else windows)
    steps = len(history.loss)
    late = history.loss[steps // 2:]
    clipped = [g > c for g, c in zip(history.grad_norm, history.threshold)]
    grads = {name.removeprefix("grad_norm/"): history.metric(name) for name in history.metric_names("grad_norm/")}
    changes: dict[str, list[list[float]]] = {}
    for name in history.metric_names("weight_change/"):
        part = part_of(name.removeprefix("weight_change/"))
        changes.setdefault("mlp" if part.startswith("mlp.") else part, []).append(history.metric(name))
    return {
        "variant": variant,
        "seed": seed,
        "trainable": trainable_ratio(model),
        "accuracy_before": before,
        "accuracy_after": history.metric("eval_accuracy")[-1],
        **facts,  # baseline, eval_reviews, eval_positive
        "seconds_per_step": seconds,
        "peak_memory_mb": peak_mb,
        "loss": history.loss,
        "loss_jitter": noise_variance(late) if len(late) >= 3 and all(map(math.isfinite, late)) else math.nan,
        "grad_norm": history.grad_norm,
        "grad_norm_parts": grads,
        "clipped_fraction": sum(clipped) / len(clipped),
        "last_clipped_step": max((t for t, c in enumerate(clipped) if c), default=None),
        "norm_lost": [norm_lost(g, c) for g, c in zip(history.grad_norm, history.threshold) if math.isfinite(g)],
        "update_norm": history.metric("update_norm") if "update_norm" in history.metric_names() else [],
        "update_norm_parts": {part: _combined(series) for part, series in changes.items() if part in ("mlp", "pooler", "classifier")},
        "final_lr": history.lr[-1],
    }


def run(config: Config, variant: str, seed: int, device=None, callbacks=()) -> dict:
    """One fine-tuning run: :func:`setup`, :func:`review_data`, :func:`probes`, ``train``, :func:`outcome`."""
    _check_config(config)
    check_choice("variant", variant, VARIANTS)
    check_int("seed", seed, 0, unit="seed units")
    device = pick_device(device)
    model, tokenizer, optimizer, scheduler, clip, extra = setup(config, variant, seed)
    batches, held_out, facts = review_data(config, tokenizer, seed)
    torch.manual_seed(seed)  # dropout's masks: the same run gives the same numbers, whatever ran before it
    model.to(device)
    before = evaluate(model, held_out, classification_loss, metrics=accuracy, device=device)["eval_accuracy"]
    peak = PeakMemory(device)
    history = train(model, optimizer, batches, classification_loss, config.steps, scheduler=scheduler, clip=clip,
                    callbacks=[*probes(model, held_out, config), *extra, *callbacks], device=device,
                    precision=config.precision, log_every=10,
                    on_nonfinite="skip" if SETUPS[variant].optimizer == "sgd" else "error")  # SGD may diverge: record it
    return outcome(history, model, facts, before, peak.mb, variant, seed)


def part_norm(result: dict, part: str) -> list[float]:
    """A run's per-step gradient norm of one part (before clipping); ``"mlp"``: all MLP layers together."""
    check_result("result", result, ("grad_norm_parts",))
    parts = result["grad_norm_parts"]
    if part == "mlp":
        layers = [series for name, series in parts.items() if name.startswith("mlp.")]
        if layers:
            return _combined(layers)
    elif part in parts:
        return parts[part]
    raise ValueError(f"part must be 'mlp' or one of the run's parts {sorted(parts)}, got {shown(part)}")


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
    check_result("result", result, ("grad_norm", "clipped_fraction", "grad_norm_parts"))
    check_number("clip", clip, "> 0 (the run's clipping threshold)", lambda v: v > 0)
    norms = result["grad_norm"]
    if not norms:
        raise ValueError("result['grad_norm'] is empty: the run recorded no step")
    layers = [series for name, series in result["grad_norm_parts"].items() if name.startswith("mlp.")]
    largest_layer = [max(values) for values in zip(*layers)] if layers else []
    return {
        "clipped_pct": 100 * result["clipped_fraction"],
        "clipped_first_50": sum(g > clip for g in norms[:50]),
        "mean_first_30": sum(norms[:30]) / len(norms[:30]),
        "mean_last_30": sum(norms[-30:]) / len(norms[-30:]),
        "head_above": sum(g > clip for g in part_norm(result, "classifier")),
        "pooler_above": sum(g > clip for g in part_norm(result, "pooler")),
        "mlp_first_above": next((t for t, g in enumerate(part_norm(result, "mlp")) if g > clip), None),
        "layer_first_above": next((t for t, g in enumerate(largest_layer) if g > clip), None),
    }


def clipped_steps(result: dict, clip: float) -> dict:
    """Which steps one run clipped: ``share`` of the steps, and ``parts`` (per part, the steps its norm was above ``clip``).

    Global clipping (and none) keeps the run's own ``clipped_fraction``, the
    steps whose global norm was above c.  Per-part clipping (``ClipPerPart``)
    runs with the loop's clipping off, so that fraction is 0 for it; its share
    is the steps at which at least one part's norm, recorded before clipping,
    was above c, read from ``grad_norm_parts``.
    """
    check_result("result", result, ("variant", "clipped_fraction", "grad_norm_parts"))
    check_choice("result['variant']", result["variant"], VARIANTS)
    check_number("clip", clip, "> 0 (the run's clipping threshold)", lambda v: v > 0)
    parts = {name: sum(g > clip for g in series) for name, series in result["grad_norm_parts"].items()}
    if SETUPS[result["variant"]].clipping != "per_part":
        return {"share": result["clipped_fraction"], "parts": parts}
    if not result["grad_norm_parts"]:
        raise ValueError("result['grad_norm_parts'] is empty: per-part clipping's share needs the per-part norms (probes)")
    steps = list(zip(*result["grad_norm_parts"].values()))
    return {"share": sum(any(g > clip for g in step) for step in steps) / len(steps), "parts": parts}


def clipping_effect(result: dict, clip: float, start: int = 0, part: str = "classifier") -> dict[str, float]:
    """The factor clipping applied to one part's gradient from step ``start`` on, globally and per part (a counterfactual).

    Global clipping multiplies every part by min(1, c / |g|); clipping each
    part by its own norm would multiply it by min(1, c / |g_part|).  Returns
    the mean of each factor over the steps.  A factor is not an effect: under
    AdamW see :func:`update_ratio`.
    """
    check_result("result", result, ("grad_norm", "grad_norm_parts"))
    check_number("clip", clip, "> 0 (the run's clipping threshold)", lambda v: v > 0)
    check_int("start", start, 0)
    own = part_norm(result, part)
    steps = range(start, len(result["grad_norm"]))
    if not steps:
        raise ValueError(f"start={start} is past the run's {len(result['grad_norm'])} steps")
    factor = lambda norm: clip / norm if norm > clip else 1.0  # min(1, c / |g|), also at |g| = 0
    global_factor = [factor(result["grad_norm"][t]) for t in steps]
    own_factor = [factor(own[t]) for t in steps]
    return {"global": sum(global_factor) / len(steps), "per_part": sum(own_factor) / len(steps)}


def update_ratio(results: dict, a: str, b: str, part: str | None = None, start: int = 0):
    """Seed by seed, the mean update size |ΔW| of variant ``b`` over that of ``a`` from step ``start`` on: a Spread.

    ``part`` None: the whole trained model; else ``"mlp"``, ``"pooler"`` or
    ``"classifier"``.  What clipping does to the *update* (where its factor
    acts on the gradient): with SGD the update is η·g', so the ratio follows the
    factor; AdamW divides by the gradient's running RMS, which undoes most of it.
    """
    check_int("start", start, 0)
    key = "update_norm" if part is None else "update_norm_parts"
    by_seed = {}
    for r in _check_results(results):
        check_result("a run of results", r, ("variant", "seed", key))
        series = r[key] if part is None else r[key].get(part)
        if series is None:
            raise ValueError(f"part must be None or one of {sorted(r[key])}, got {shown(part)}")
        if r["variant"] in (a, b):
            if len(series) <= start:
                raise ValueError(f"start={start} is past the run's {len(series)} recorded updates")
            by_seed[(r["variant"], r["seed"])] = statistics.fmean(series[start:])
    seeds = sorted(seed for variant, seed in by_seed if variant == a)
    if not seeds or any((b, seed) not in by_seed for seed in seeds):
        raise ValueError(f"variants {a!r} and {b!r} must have runs of the same seeds, with update sizes recorded")
    return spread([by_seed[(b, s)] / by_seed[(a, s)] for s in seeds])


def run_all(config: Config, device=None, progress=print) -> dict:
    """Every variant of ``config`` over its seeds, with provenance; the variants take turns seed by seed (round-robin),
    so a drift of the machine's speed during the command touches all of them alike."""
    _check_config(config)
    stored.check_progress(progress)
    device = pick_device(device)
    runs = []
    for seed in config.seeds:
        for variant in config.variants:
            progress(f"{config.name}: {variant}, seed {seed}")
            runs.append(run(config, variant, seed, device))
    import transformers

    return {
        "config": dataclasses.asdict(config),
        "provenance": stored.provenance(device, f"python -m course_lib.lessons.finetuning_bert --config {config.name}",
                                        transformers=transformers.__version__),
        "runs": runs,
    }


SUMMARY = ("accuracy_before", "accuracy_after", "seconds_per_step", "peak_memory_mb", "loss_jitter",
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


def timing_saving(repeats: list[dict]) -> dict:
    """Time and memory the recipe saves against full fine-tuning, from the timing commands' results.

    Within a command, the saving ``1 - t_frozen / t_full`` is computed seed by
    seed (paired: each seed ran both, in turns) and its **median** over the
    seeds is kept, as are the medians of the step times: one slow run then
    cannot carry a command's figure.  The returned Spreads are over the
    commands, so their standard error is the spread between commands.
    ``time_by_mean`` is the same saving with means instead of medians, and
    ``full_runs_ms`` each command's full fine-tuning step times, seed by seed,
    to show what the medians leave out.
    """
    check_type("repeats", repeats, list, "the list that load_timings() returns")
    if not repeats:
        raise ValueError("repeats is empty: pass the list that load_timings() returns")
    time_saved, time_by_mean, memory_saved, frozen_ms, full_ms, full_runs = [], [], [], [], [], []
    for i, results in enumerate(repeats):
        by = {(r["variant"], r["seed"]): r for r in _check_results(results)}
        seeds = sorted(seed for variant, seed in by if variant == "frozen")
        if not seeds or any(("full", seed) not in by for seed in seeds):
            raise ValueError(f"repeats[{i}] must hold runs of 'frozen' and 'full' for the same seeds")
        pairs = [(by[("frozen", s)], by[("full", s)]) for s in seeds]
        saved = [1 - f["seconds_per_step"] / g["seconds_per_step"] for f, g in pairs]
        time_saved.append(statistics.median(saved))
        time_by_mean.append(statistics.fmean(saved))
        frozen_ms.append(1e3 * statistics.median(f["seconds_per_step"] for f, _ in pairs))
        full_ms.append(1e3 * statistics.median(g["seconds_per_step"] for _, g in pairs))
        full_runs.append([1e3 * g["seconds_per_step"] for _, g in pairs])
        if all(f["peak_memory_mb"] and g["peak_memory_mb"] for f, g in pairs):
            memory_saved.append(statistics.median(1 - f["peak_memory_mb"] / g["peak_memory_mb"] for f, g in pairs))
    return {"time": spread(time_saved), "time_by_mean": spread(time_by_mean),
            "memory": spread(memory_saved) if memory_saved else None,
            "frozen_ms": spread(frozen_ms), "full_ms": spread(full_ms), "full_runs_ms": full_runs, "commands": len(repeats)}


_SCHEMA = {**RESULTS, "provenance": {key: str for key in ("date", "device", "torch", "transformers", "command")}}


def load_results(name: str = "gpu") -> dict:
    """The stored results of a configuration (``course_lib/lessons/results/lesson03_<name>.json``), checked against :data:`CONFIGS`."""
    check_choice("name", name, ("cpu", "gpu", "gpu_sgd"), "the stored configurations of CONFIGS (gpu_timing: load_timings())")
    return stored.load("03", name, f"python -m {__name__} --config {name}", {"config": CONFIGS[name]}, _SCHEMA)


def load_timings() -> list[dict]:
    """The timing commands' stored results, ``lesson03_gpu_timing_1.json`` ... ``_3.json``: one per separate command."""
    command = f"python -m {__name__} --config gpu_timing --out course_lib/lessons/results/lesson03_gpu_timing_<i>.json"
    return [stored.load("03", f"gpu_timing_{i}", command, {"config": CONFIGS["gpu_timing"]}, _SCHEMA)
            for i in range(1, TIMING_REPEATS + 1)]


def main(argv=None) -> None:
    stored.main(argv, lesson="03", description="Run lesson 03's experiments and store the results as JSON.",
                configs=CONFIGS, run_all=run_all)


if __name__ == "__main__":
    main()
