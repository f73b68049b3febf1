"""The lessons' result tables, in the reader's language, from the numbers the lessons measure (:mod:`course_lib.lessons`).

Headers take their numbers from the parameters the numbers were measured
with (a threshold of 0.01 is written from ``excess=0.01``, not typed in).
"""

from __future__ import annotations

import math
import re
from typing import Mapping, Sequence

import torch

from course_lib.engine._checks import check_int, check_number, check_type, shown
from course_lib.engine.freezing import trainable_ratio
from course_lib.engine.stats import Spread
from course_lib.engine.training import History
from course_lib.i18n import check_language, count, number, plain, significant, text
from course_lib.lessons import finetuning_bert, stored, targeted_freezing_gpt
from course_lib.lessons.gradient_clipping import SETUPS, clipping_stats, layer_clipping, steps_to_target_by_rate, value_ranges
from course_lib.lessons.lr_schedules import accumulated_rate, integral_law_holds_until, schedule_stats
from course_lib.lessons.optimization_options import sharded_memory, tying_summary
from course_lib.models.fast_step import padded as padded_vocab
from course_lib.show.report import Table

__all__ = ["with_spread", "integral_law_table", "compare_schedules", "compare_clipping", "compare_layer_clipping", "finetune_table", "gpt_freezing_table", "measured_table", "staircase_table", "staircase_key_results", "alternatives_table", "shapes_table", "micro_table", "zero_table", "benchmark_table", "ablation_table", "levers_table", "profile_table", "freezing_table", "clipping_by_rate"]


def with_spread(value: Spread, lang: str, digits: int = 2, scale: float = 1.0) -> str:
    """``mean ± sem`` in the reader's decimal convention; the mean alone for a single seed (no spread to show)."""
    check_type("value", value, Spread, "a Spread (course_lib.engine.stats.spread of the values over seeds)")
    check_number("scale", scale, "a finite number > 0 (e.g. 100 for a percentage)", lambda v: 0 < v < math.inf)
    if value.n == 1:
        return number(value.mean * scale, lang, digits)
    return f"{number(value.mean * scale, lang, digits)} ± {number(value.sem * scale, lang, digits)}"


def _whole(value: int, lang: str) -> str:
    """A step number in a table: 1.500 in Vietnamese, 1500 in English (as the English tables always wrote it)."""
    return count(value, lang) if lang == "vi" else str(value)


def integral_law_table(runs: Mapping[str, History], lang: str, tolerance: float = 0.1) -> Table:
    """Per schedule: where the constant-gradient law stops holding, and where the run ends."""
    check_language(lang)
    _check_named_runs(runs)
    rows = []
    for name, history in runs.items():
        until = integral_law_holds_until(history, tolerance)
        w1 = history.metric("w1")
        rows.append((
            name,
            text("never", lang) if until is None else _whole(until, lang),
            "-" if until is None else number(w1[until], lang, 3),
            number(accumulated_rate(history)[-1], lang, 2),
            number(w1[-1], lang, 3),
        ))
    header = (
        text("schedule", lang),
        text("law_holds", lang, tolerance=plain(round(100 * tolerance, 6), lang)),
        text("w1_break", lang),
        text("tau_end", lang),
        text("w1_end", lang),
    )
    return Table(header, tuple(rows))


def compare_schedules(runs: Mapping[str, Sequence[History]], lang: str, excess: float = 0.01) -> Table:
    """Lesson 01's measured table: one row per schedule, mean ± standard error over the seeds."""
    check_language(lang)
    stats_of = schedule_stats(runs, excess)
    seeds = {name: len(group) for name, group in runs.items()}
    if len(set(seeds.values())) > 1:
        raise ValueError(f"runs must hold as many seeds for every schedule (the header states one number), got {seeds}")
    rows = []
    for name, stats in stats_of.items():
        settled = "-" if stats.settled is None else with_spread(stats.settled, lang, 0)
        if stats.never_settled:
            settled += " " + text("never_count", lang, k=stats.never_settled, n=stats.late_excess.n)
        rows.append((
            name,
            with_spread(stats.late_excess, lang, 2, scale=1e3),
            settled,
            with_spread(stats.jitter, lang, 4),
            number(stats.final_lr, lang, 4),
        ))
    header = (
        text("schedule", lang),
        text("late_excess", lang, n=next(iter(seeds.values()))),
        text("settled", lang, excess=plain(excess, lang)),
        text("jitter", lang),
        text("final_lr", lang),
    )
    return Table(header, tuple(rows))


def compare_clipping(runs: Mapping[str, History], lang: str, target: float = 1e-3, blown_up: float = 1e6) -> Table:
    """Lesson 02's measured table: final loss, largest step, steps to the target, divergence, norm removed."""
    check_language(lang)
    _check_named_runs(runs)
    rows = []
    for name, history in runs.items():
        stats = clipping_stats(history, target, blown_up)
        rows.append((
            name,
            significant(stats.final_loss, lang),
            significant(stats.largest_step, lang),
            text("never", lang) if stats.steps_to_target is None else _whole(stats.steps_to_target, lang),
            text("yes", lang) if stats.diverged else text("no", lang),
            significant(stats.norm_lost, lang),  # 3 digits: a float32 sum of 100 norms differs in its 8th digit across CPUs
        ))
    header = (
        text("run", lang),
        text("final_loss", lang),
        text("largest_step", lang),
        text("steps_to_target", lang, target=plain(target, lang)),
        text("diverged", lang, blown_up=plain(blown_up, lang)),
        text("norm_lost", lang),
    )
    return Table(header, tuple(rows))


def compare_layer_clipping(max_norm: float, lang: str, seed: int = 0) -> Table:
    """Global vs per-layer clipping of the same gradients, one row per layer."""
    check_language(lang)
    rows = tuple(
        (
            text(f"part_{name}", lang),
            number(v["raw"], lang, 3),
            number(v["after_global"], lang, 3),
            number(v["factor_global"], lang, 3),
            number(v["after_per_layer"], lang, 3),
            number(v["factor_per_layer"], lang, 3),
        )
        for name, v in layer_clipping(max_norm, seed).items()
    )
    header = tuple(
        text(key, lang)
        for key in ("layer", "layer_raw", "after_global", "factor_global", "after_per_layer", "factor_per_layer")
    )
    return Table(header, rows)


def _clipped_share(results: dict, variant: str, summary: dict) -> float:
    """Mean share of steps clipped: global clipping's from the summary; per-part clipping's from the per-part norms."""
    if finetuning_bert.SETUPS[variant].clipping != "per_part":
        return summary["clipped_fraction"].mean
    config = results.get("config")
    if not isinstance(config, Mapping) or "clip" not in config:
        raise ValueError(f"results has no config['clip']: the share of steps that per-part clipping ({variant!r}) clipped "
                         "needs the threshold; pass the dict that finetuning_bert.load_results() returns")
    shares = [finetuning_bert.clipped_steps(r, config["clip"])["share"] for r in results["runs"] if r["variant"] == variant]
    return sum(shares) / len(shares)


def finetune_table(results: dict, lang: str, variants: Sequence[str] | None = None, timing: bool = True) -> Table:
    """Lesson 03: one row per variant, mean ± standard error over the seeds (accuracy in %, time in ms).

    "Steps clipped" counts, under global clipping, the steps whose global norm
    was above c; under per-part clipping, the steps at which at least one part
    was clipped (:func:`~course_lib.lessons.finetuning_bert.clipped_steps`).

    ``timing=False`` leaves out time and memory, which change from run to run
    (a notebook check compares the printed table).
    """
    check_language(lang)
    check_type("timing", timing, bool, "True or False")
    _check_runs_in(results, "finetuning_bert.load_results()")
    summary = finetuning_bert.summarize(results)
    if variants is not None:
        check_type("variants", variants, (list, tuple), f"None or a list of variant names out of {list(summary)}")
        if not variants:
            raise ValueError(f"variants is empty: name at least one of {list(summary)}, or pass None for all of them")
        for i, variant in enumerate(variants):
            if variant not in summary:
                raise ValueError(f"variants[{i}] must be one of {list(summary)} (the variants in results), got {shown(variant)}")
    rows = []
    for variant in variants or list(summary):
        s = summary[variant]
        rows.append((
            text(f"variant_{variant}", lang),
            with_spread(s["accuracy_before"], lang, 1, scale=100),
            with_spread(s["accuracy_after"], lang, 1, scale=100),
            with_spread(s["seconds_per_step"], lang, 1, scale=1e3),
            "-" if s["peak_memory_mb"] is None else number(s["peak_memory_mb"].mean, lang, 0),
            number(s["trainable"].mean, lang, 3),
            with_spread(s["loss_jitter"], lang, 4),
            number(100 * _clipped_share(results, variant, s), lang, 0),
            significant(s["final_lr"].mean, lang, 2),
        ))
    n = len({r["seed"] for r in results["runs"]})
    keys = ["variant", "acc_before", "acc_after", "ms_per_step", "peak_memory", "ratio_col", "loss_jitter_col", "clipped_pct", "final_lr"]
    keep = [i for i, key in enumerate(keys) if timing or key not in ("ms_per_step", "peak_memory")]
    header = tuple(text(keys[i], lang, n=n) for i in keep)
    return Table(header, tuple(tuple(row[i] for i in keep) for row in rows))


def value_range_table(lang: str, depth: int = 16, width: int = 128, seed: int = 0) -> Table:
    """Lesson 02: output RMS and first-layer |g| of a deep ReLU network, per initialization, with and without LayerNorm."""
    rows = tuple(
        (
            text(f"init_{init}", lang),
            text("yes" if norm else "no", lang),
            significant(v["output_rms"], lang),
            significant(v["first_grad_norm"], lang),
        )
        for (init, norm), v in value_ranges(depth, width, seed).items()
    )
    header = (text("init", lang), text("layernorm", lang), text("output_rms", lang, depth=depth), text("first_grad", lang))
    return Table(header, rows)


def gpt_freezing_table(results: dict, lang: str, timing: bool = True) -> Table:
    """Lesson 04: one row per variant (model A, model B, reversed), mean ± standard error over the runs' seeds.

    ``timing=False`` leaves out time, saving and memory, which change from
    run to run (a notebook check compares the printed table).
    """
    check_language(lang)
    check_type("timing", timing, bool, "True or False")
    _check_runs_in(results, "targeted_freezing_gpt.load_results()")
    summary = targeted_freezing_gpt.summarize(results)
    n = len({r["seed"] for r in results["runs"]})
    rows = []
    for variant, s in summary.items():
        rows.append((
            text(f"gpt_{variant}", lang),
            number(s["trainable"].mean, lang, 3),
            with_spread(s["train_last"], lang, 3),
            with_spread(s["eval_last"], lang, 3),
            with_spread(s["noise_variance"], lang, 2, scale=1e3),
            with_spread(s["p"], lang, 3),
            with_spread(s["seconds_per_step"], lang, 1, scale=1e3),
            with_spread(s["saving"], lang, 0, scale=100),
            number(100 * s["flop_saving"].mean, lang, 1),
            "-" if s["peak_memory_mb"] is None else number(s["peak_memory_mb"].mean, lang, 0),
        ))
    keys = ["gpt_variant", "ratio_col", "gpt_train_loss", "gpt_eval_loss", "gpt_noise_var", "gpt_p", "ms_per_step",
            "gpt_saving", "gpt_flop_saving", "peak_memory"]
    keep = [i for i, key in enumerate(keys) if timing or key not in ("ms_per_step", "gpt_saving", "peak_memory")]
    header = tuple(text(keys[i], lang, n=n) for i in keep)
    return Table(header, tuple(tuple(row[i] for i in keep) for row in rows))


def measured_table(rows: Sequence[Mapping], columns: Sequence[tuple], lang: str) -> Table:
    """Lesson 05: one row per measurement; ``columns`` are ``(key, label key, digits)`` or ``(key, label key, digits, scale)``.

    A missing or None value (not measured on this device) is written "-".
    """
    check_language(lang)
    check_type("columns", columns, (list, tuple), "a list of (key, label key, digits[, scale]) tuples")
    if not columns:
        raise ValueError("columns is empty: a table needs at least one (key, label key, digits) column")
    for i, column in enumerate(columns):
        if not isinstance(column, (list, tuple)) or len(column) not in (3, 4):
            raise TypeError(f"columns[{i}] must be a tuple (key, label key, digits) or (key, label key, digits, scale), "
                            f"got {shown(column)}")
        check_int(f"columns[{i}] digits", column[2], 0, unit="digits")
        if len(column) == 4:
            check_number(f"columns[{i}] scale", column[3], "a finite number", math.isfinite)
    check_type("rows", rows, (list, tuple), "a list of dicts (one per measurement)")
    for i, row in enumerate(rows):
        check_type(f"rows[{i}]", row, Mapping, "a dict {column key: value}")
    for key, *_ in columns:
        if rows and not any(key in row for row in rows):
            raise ValueError(f"no row has the column key {key!r}: the rows' keys are {sorted({k for row in rows for k in row})}")
    header = tuple(text(column[1], lang) for column in columns)
    body = []
    for i, row in enumerate(rows):
        cells = []
        for key, _, digits, *scale in columns:
            value = row.get(key)
            if isinstance(value, bool):
                raise TypeError(f"rows[{i}][{key!r}] must be a number, a str or None, got {shown(value)}")
            if value is None:
                cells.append("-")
            elif isinstance(value, str):
                cells.append(value)
            elif isinstance(value, int) and not scale and digits == 0:
                cells.append(count(value, lang))
            else:
                cells.append(number(value * (scale[0] if scale else 1), lang, digits))
        body.append(tuple(cells))
    return Table(header, tuple(body))


def _range(low: float, high: float, lang: str, digits: int = 2, prefix: str = "") -> str:
    return f"{prefix}{number(low, lang, digits)}–{number(high, lang, digits)}"


def staircase_table(summary: Mapping, lang: str) -> Table:
    """Lesson 05: each rung of the staircase (:func:`~course_lib.lessons.optimization_options.staircase_summary`), one option more per row.

    ms per step (the range: the lowest and highest process median, or of the
    rounds when one process ran), tokens/s, MFU, peak memory, and the
    speed-up over the rung before (its range over the processes) and over the plain step.
    """
    check_language(lang)
    rungs = stored.require(summary, ["rungs"], _STAIRCASE)
    if not rungs:
        raise ValueError(f"summary['rungs'] is empty: there is nothing to show; pass {_STAIRCASE}")
    rows = []
    for r in rungs:
        low, high = (r["process_low"], r["process_high"]) if r["processes"] > 1 else (r["ms_low"], r["ms_high"])
        rows.append(dict(r, option=text(f"rung_{r['rung']}", lang), ms_range=_range(low, high, lang),
                         tokens_per_s=round(r["tokens_per_s"]),
                         step_gain="-" if r["rung"] == "plain" or r["vs_previous"] is None else f"×{number(r['vs_previous'], lang, 2)}" + (
                             f" ({_range(r['vs_previous_low'], r['vs_previous_high'], lang)})" if r["processes"] > 1 else ""),
                         total_gain="-" if r["vs_plain"] is None else f"×{number(r['vs_plain'], lang, 2)}"))
    return measured_table(rows, [("option", "col_rung", 0), ("ms_per_step", "col_ms_step", 1), ("ms_range", "col_ms_range", 0),
                                 ("tokens_per_s", "col_tokens_s", 0), ("mfu", "col_mfu_bf16", 1, 100),
                                 ("peak_memory_mb", "col_memory_gb", 1, 1 / 1024), ("step_gain", "col_step_gain", 0),
                                 ("total_gain", "col_total_gain", 0)], lang)


def alternatives_table(summary: Mapping, lang: str) -> Table:
    """Lesson 05: each alternative timed beside the rung it replaces: its ms per step, memory and speed against that rung."""
    check_language(lang)
    others = stored.require(summary, ["alternatives"], _STAIRCASE)
    if not others:
        raise ValueError(f"summary['alternatives'] is empty: there is nothing to show; pass {_STAIRCASE}")
    rows = [dict(r, option=text(f"alt_{r['alternative']}", lang), base=text(f"rung_{r['base']}", lang),
                 ms_range=_range(r["process_low"], r["process_high"], lang),
                 gain="-" if r["vs_base"] is None else f"×{number(r['vs_base'], lang, 2)} ({_range(r['vs_base_low'], r['vs_base_high'], lang)})")
            for r in others]
    return measured_table(rows, [("option", "col_alternative", 0), ("base", "col_instead_of", 0), ("ms_per_step", "col_ms_step", 1),
                                 ("ms_range", "col_ms_range", 0), ("peak_memory_mb", "col_memory_gb", 1, 1 / 1024),
                                 ("gain", "col_vs_rung", 0)], lang)


def shapes_table(summary: Mapping, lang: str, *, tera: bool = True) -> Table:
    """Lesson 05: matrix multiplies whose one dimension is round (a multiple of 64) or not: time, rate, the round shape's gain."""
    check_language(lang)
    check_type("tera", tera, bool, "True (TFLOP/s, a GPU) or False (GFLOP/s, a CPU)")
    shapes = stored.require(summary, ["shapes"], _STAIRCASE)
    processes = stored.require(summary, ["processes"], _STAIRCASE)
    if not shapes:
        raise ValueError(f"summary['shapes'] is empty: there is nothing to show; pass {_STAIRCASE}")
    rows = [dict(r, what=text(f"varies_{r['varies']}", lang), shape=f"{count(r['m'], lang)} × {count(r['k'], lang)} × {count(r['n'], lang)}",
                 gain="-" if "round_gain" not in r else f"×{number(r['round_gain'], lang, 2)}" + (
                     f" ({_range(r['round_gain_low'], r['round_gain_high'], lang)})" if processes > 1 else ""))
            for r in shapes]
    rate = ("tflops", "col_tflops", 0) if tera else ("tflops", "col_gflops", 1, 1e3)
    return measured_table(rows, [("what", "col_varies", 0), ("shape", "col_mkn", 0), ("ms", "col_ms_matmul", 3), rate,
                                 ("gain", "col_round_gain", 0)], lang)


def micro_table(results: Mapping, summary: Mapping, lang: str) -> Table:
    """Lesson 05: the micro-benchmarks (one part of a step, timed alone), kept apart from the whole step's gains.

    ``results`` is the stored GPU results (``load_results('gpu')``),
    ``summary`` the stored staircase's summary.
    """
    check_language(lang)
    pin = stored.require(results, ["pinned_copies"], _GPU_RESULTS)
    att = next((r for r in stored.require(results, ["attention_lengths"], _GPU_RESULTS) if r.get("length") == 1024), None)
    if pin is None or att is None:
        raise ValueError(f"results lacks the pinned copies or the attention layer at T = 1,024: pass {_GPU_RESULTS}")
    contiguity = stored.require(results, ["contiguity"], _GPU_RESULTS)
    vocab = next((r for r in stored.require(summary, ["shapes"], _STAIRCASE) if r.get("varies") == "vocab" and "round_gain" in r), None)
    if vocab is None:
        raise ValueError(f"summary['shapes'] has no unaligned vocabulary: pass {_STAIRCASE}")
    rows = [
        (text("micro_pinned", lang, mb=count(pin["megabytes"], lang)), f"×{number(pin['pageable_ms'] / pin['pinned_ms'], lang, 2)}"),
        (text("micro_attention", lang), f"×{number(att['naive_ms'] / att['fused_ms'], lang, 2)}"),
        (text("micro_vocab", lang, a=count(vocab["n"], lang), b=count(padded_vocab(vocab["n"]), lang)),
         f"×{number(vocab['round_gain'], lang, 2)} ({_range(vocab['round_gain_low'], vocab['round_gain_high'], lang)})"),
        (text("micro_contiguity", lang, n=count(contiguity["n"], lang)),
         f"×{number(contiguity['transposed_ms'] / contiguity['contiguous_ms'], lang, 2)}"),
    ]
    return Table((text("col_timed_alone", lang), text("col_speedup", lang)), tuple(rows))


def zero_table(models: Mapping[str, int], gpus: int, lang: str) -> Table:
    """Lesson 05: GB per GPU of weights, gradients and AdamW moments for each model, replicated (DDP) and sharded (ZeRO 1-3, FSDP)."""
    check_language(lang)
    check_type("models", models, Mapping, "a dict {model name: number of parameters}")
    if not models:
        raise ValueError("models is empty: give at least one {name: parameters}")
    rows = []
    for name, parameters in models.items():
        memory = sharded_memory(parameters, gpus)
        rows.append((name, count(parameters, lang), *(number(memory[k] / 1e9, lang, 1) for k in ("ddp", "zero1", "zero2", "zero3"))))
    header = tuple(text(k, lang) for k in ("col_model", "col_parameters", "col_ddp", "col_zero1", "col_zero2", "col_zero3"))
    return Table(header, tuple(rows))


def staircase_key_results(stairs: Mapping, study: Mapping, tying: Mapping, lang: str) -> str:
    """Lesson 05's key results, one line each: the staircase end to end, its largest and its smallest rungs, weight tying.

    ``stairs`` is :func:`~course_lib.lessons.optimization_options.staircase_summary` of ``study``
    (the stored staircase), ``tying`` the stored tying seeds (``load_results('tying-cpu')``).
    """
    check_language(lang)
    rungs = stored.require(stairs, ["rungs"], _STAIRCASE)
    if not rungs or rungs[0]["rung"] != "plain":
        raise ValueError(f"summary['rungs'] must start with the plain step: pass {_STAIRCASE}")
    plain, top = rungs[0], rungs[-1]
    climbs = sorted(rungs[1:], key=lambda r: -r["vs_previous"])
    gain = lambda r: f"{text('rung_' + r['rung'], lang).lstrip('+ ')} ×{number(r['vs_previous'], lang, 2)}"
    spread = tying_summary(tying)
    mean_sd = lambda k: f"{number(spread[k]['mean'], lang, 2)} ± {number(spread[k]['sd'], lang, 2)}"
    return "\n".join([
        text("key_staircase", lang, device=stored.require(study, ["provenance", "device"], "the stored staircase, load_staircase()"),
             batch=stairs["micro_batch"], T=count(stairs["block_size"], lang), plain=number(plain["ms_per_step"], lang, 0),
             fast=number(top["ms_per_step"], lang, 1), total=number(top["vs_plain"], lang, 1), processes=stairs["processes"],
             rounds=stairs["rounds"]),
        text("key_rungs", lang, large="; ".join(gain(r) for r in climbs[:4]),
             small="; ".join(gain(r) for r in climbs if r["vs_previous"] < 1.02)),
        text("key_tying", lang, n=spread["tied"]["n"], tied=mean_sd("tied"), untied=mean_sd("untied")),
    ])


_STAIRCASE = "the summary of a staircase study, optimization_options.staircase_summary(load_staircase())"
_GPU_RESULTS = "the GPU configuration's results, optimization_options.load_results('gpu')"
_BENCHMARK = "the results of optimization_options.load_benchmark()"


def _check_named_runs(runs) -> None:
    """A non-empty dict {name: History}."""
    check_type("runs", runs, Mapping, "a dict {run name: History}")
    if not runs:
        raise ValueError("runs is empty: give at least one run")
    for name, history in runs.items():
        check_type(f"runs[{name!r}]", history, History, "a History (what train returns)")


def _check_runs_in(results, source: str) -> None:
    """Stored results whose 'runs' is a non-empty list."""
    runs = stored.require(results, ["runs"], f"the results of {source}")
    check_type("results['runs']", runs, list, f"a list of runs (the results of {source})")
    if not runs:
        raise ValueError(f"results['runs'] is empty: there is nothing to summarize; pass the results of {source}")


def _speed_columns(ratio: str) -> list[tuple]:
    return [("ms_per_step", "col_ms_step", 2), ("ms_range", "col_ms_range", 0), ("tokens_per_s", "col_tokens_s", 0),
            ("mfu", "col_mfu", 1, 100), ("peak_memory_mb", "col_memory_gb", 1, 1 / 1024), (ratio, ratio.replace("vs_", "col_vs_"), 3)]


def _nonempty_rows(results: Mapping, part: str) -> list:
    rows = stored.require(results, [part, "rows"], _BENCHMARK)
    if not rows:
        raise ValueError(f"results[{part!r}]['rows'] is empty: there is nothing to show; pass {_BENCHMARK}")
    return rows


def _with_range(row: Mapping, lang: str) -> dict:
    return dict(row, ms_range=f"{number(row['ms_low'], lang, 2)}–{number(row['ms_high'], lang, 2)}",
                tokens_per_s=round(row["tokens_per_s"]))


def benchmark_table(results: dict, lang: str) -> Table:
    """Lesson 05: nanoGPT's loops and the course's step, each micro-batch (stored benchmark)."""
    check_language(lang)
    rows = [dict(_with_range(r, lang), contender=text(f"bench_{r['name']}", lang))
            for r in _nonempty_rows(results, "comparison")]
    columns = [("contender", "col_contender", 0), ("micro_batch", "col_micro_batch", 0), *_speed_columns("vs_nanogpt")]
    return measured_table(rows, columns, lang)


def _one_change_table(results: dict, lang: str, names: str, column: str) -> Table:
    """Rows of the fast step with one change each (``results["ablation"]``), named by i18n's ``<names>_<row>``."""
    check_language(lang)
    rows = [dict(_with_range(r, lang), change=text(f"{names}_{r['name']}", lang)) for r in _nonempty_rows(results, "ablation")]
    return measured_table(rows, [("change", column, 0), *_speed_columns("vs_fast")], lang)


def ablation_table(results: dict, lang: str) -> Table:
    """Lesson 05: the fast step with one option removed at a time (stored benchmark)."""
    return _one_change_table(results, lang, "ablation", "col_removed")


def levers_table(results: dict, lang: str) -> Table:
    """Lesson 05: issue 27's levers, each added to the first round's fast step (stored levers' study)."""
    return _one_change_table(results, lang, "lever", "col_lever")


def profile_table(results: dict, lang: str) -> Table:
    """Lesson 05: where the fast step's GPU time goes, by kind of kernel, and the GPU's idle time."""
    check_language(lang)
    profile = stored.require(results, ["profile"], _BENCHMARK)
    wall = check_number("results['profile']['wall_ms_per_step']", stored.require(profile, ["wall_ms_per_step"], _BENCHMARK),
                        "a finite time > 0 ms (the shares are of it)", lambda v: 0 < v < math.inf)
    stored.require(profile, ["gpu_ms_per_step"], _BENCHMARK)
    kinds = sorted(stored.require(profile, ["by_kind"], _BENCHMARK).items(), key=lambda kv: -kv[1])
    rows = [{"kind": text(f"kernels_{k}", lang), "ms": ms, "share": ms / wall} for k, ms in kinds]
    idle = wall - profile["gpu_ms_per_step"]
    rows.append({"kind": text("kernels_idle", lang), "ms": idle, "share": idle / wall})
    return measured_table(rows, [("kind", "col_kernels", 0), ("ms", "col_ms_step", 2), ("share", "col_time_share", 1, 100)], lang)


def _part(name: str) -> str:
    """'bert.encoder.layer.3.attention.self.query.weight' -> 'bert.encoder.layer.*.attention'."""
    parts = re.sub(r"\.\d+\.", ".*.", name).split(".")
    if "*" in parts:
        return ".".join(parts[: parts.index("*") + 2])
    return ".".join(parts[:-1]) if len(parts) > 2 else parts[0]


def freezing_table(model: torch.nn.Module, lang: str) -> Table:
    """One row per part of the model (layers with the same role together): parameters, trainable or frozen; then R."""
    check_language(lang)
    check_type("model", model, torch.nn.Module, "a torch.nn.Module")
    rows: dict[str, list[int]] = {}
    for name, p in model.named_parameters():
        counts = rows.setdefault(_part(name), [0, 0])
        counts[0] += p.numel()
        counts[1] += p.numel() if p.requires_grad else 0
    body = []
    for group, (total, trainable) in rows.items():
        status = "trainable" if trainable == total else "frozen" if trainable == 0 else "partly_trainable"
        body.append((group, count(total, lang), text(status, lang)))
    ratio = trainable_ratio(model)
    total = sum(p.numel() for p in model.parameters())
    body.append((text("total", lang), count(total, lang), text("ratio_r", lang, r=number(ratio, lang, 3))))
    return Table((text("part", lang), text("parameters", lang), text("status", lang)), tuple(body))


def clipping_by_rate(etas, lang: str, num_steps: int = 100, max_norm: float = 1.0, target: float = 1e-3) -> Table:
    """Lesson 02: steps to ``loss < target`` of the quadratic's four setups, one row per peak rate (``never`` if not reached)."""
    check_language(lang)
    found = steps_to_target_by_rate(etas, num_steps, max_norm, target)
    rows = tuple(
        (plain(eta, lang), *(text("never", lang) if steps[name] is None else _whole(steps[name], lang) for name in SETUPS))
        for eta, steps in found.items()
    )
    header = (text("rate_vs_steps", lang, target=plain(target, lang)), *(text(name, lang) for name in SETUPS))
    return Table(header, rows)
def gpt_timing_table(timing: dict, lang: str) -> Table:
    """Lesson 04's timing study: per variant R, FLOP saving, ms per step and time saving (mean ± SE over the processes,
    and the lowest and highest process), peak memory and the part of it that weights, gradients and AdamW state take."""
    check_language(lang)
    summary = targeted_freezing_gpt.timing_summary(timing)
    rows = []
    for variant, s in summary.items():
        low, high = s["saving_range"]
        state = sum(s["state_mb"].values())
        rows.append((
            text(f"gpt_{variant}", lang),
            number(s["trainable"], lang, 3),
            number(100 * s["flop_saving"], lang, 1),
            with_spread(s["ms"], lang, 1),
            with_spread(s["saving"], lang, 1, scale=100),
            f"{number(100 * low, lang, 1)} … {number(100 * high, lang, 1)}",
            "-" if s["peak_memory_mb"] is None else number(s["peak_memory_mb"], lang, 0),
            number(state, lang, 0),
            "-" if s["activations_mb"] is None else number(s["activations_mb"], lang, 0),
        ))
    n = len(timing["processes"])
    keys = ("gpt_variant_processes", "ratio_col", "gpt_flop_saving", "gpt_ms_processes", "gpt_time_saving", "gpt_saving_range",
            "peak_memory", "gpt_state_memory", "gpt_other_memory")
    return Table(tuple(text(key, lang, n=n) for key in keys), tuple(rows))


def gpt_key_results(results: dict, timing: dict, lang: str) -> str:
    """Lesson 04's key results: the notes' claims, one line each, held or not, from the stored study and the timing study."""
    check_language(lang)
    c = targeted_freezing_gpt.claims(results, timing)
    s = targeted_freezing_gpt.summarize(results)
    t = c["timing"]
    mark = lambda held: text("claim_held" if held else "claim_not_held", lang)
    memory_b = 1 - t["targeted"]["peak_memory_mb"] / t["full"]["peak_memory_mb"] if t["full"]["peak_memory_mb"] else None
    lines = [
        text("claim_slower", lang, mark=mark(c["slower"]), a=with_spread(s["full"]["eval_last"], lang, 3),
             b=with_spread(s["targeted"]["eval_last"], lang, 3), n=c["seeds"]),
        text("claim_moves", lang, mark=mark(c["moves_more"]), low=number(c["ratio_low"], lang, 2),
             high=number(c["ratio_high"], lang, 2), above_low=number(100 * c["above_low"], lang, 0),
             above_high=number(100 * c["above_high"], lang, 0)),
        text("claim_time", lang, mark=mark(t["targeted"]["saving_range"][0] > 0),
             b=with_spread(t["targeted"]["saving"], lang, 0, scale=100), flop_b=number(100 * t["targeted"]["flop_saving"], lang, 0),
             bottom=with_spread(t["bottom"]["saving"], lang, 0, scale=100),
             flop_bottom=number(100 * t["bottom"]["flop_saving"], lang, 0), n=len(timing["processes"])),
        text("claim_memory", lang, mark=mark(memory_b is not None and memory_b > t["targeted"]["saving"].mean),
             memory="-" if memory_b is None else number(100 * memory_b, lang, 0),
             time=number(100 * t["targeted"]["saving"].mean, lang, 0)),
        text("claim_wins", lang, mark=mark(c["b_wins"] > 0), wins=c["b_wins"], pairs=c["pairs"]),
        text("claim_reversed", lang, mark=mark(c["reversed_gap"] < 0.01 * s["full"]["eval_last"].mean),
             gap=number(c["reversed_gap"], lang, 3)),
    ]
    return "\n".join(lines)
