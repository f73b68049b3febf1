"""The lessons' result tables, in the reader's language, from the numbers the lessons measure (:mod:`course_lib.lessons`).

Headers take their numbers from the parameters the numbers were measured
with (a threshold of 0.01 is written from ``excess=0.01``, not typed in).
"""

from __future__ import annotations

import dataclasses
import re
from typing import Mapping, Sequence

import torch

from course_lib.engine.freezing import trainable_ratio
from course_lib.engine.stats import Spread
from course_lib.engine.training import History
from course_lib.i18n import check_language, count, number, plain, significant, text
from course_lib.lessons import finetuning_bert, targeted_freezing_gpt
from course_lib.lessons.gradient_clipping import clipping_stats, layer_clipping, value_ranges
from course_lib.lessons.lr_schedules import accumulated_rate, integral_law_holds_until, schedule_stats
from course_lib.models.gpt import GPTConfig, parameter_count
from course_lib.show.report import Table

__all__ = ["with_spread", "integral_law_table", "compare_schedules", "compare_clipping", "compare_layer_clipping", "finetune_table", "gpt_freezing_table", "measured_table", "options_table", "benchmark_table", "ablation_table", "profile_table", "freezing_table"]


def with_spread(value: Spread, lang: str, digits: int = 2, scale: float = 1.0) -> str:
    """``mean ± sem`` in the reader's decimal convention; the mean alone for a single seed (no spread to show)."""
    if value.n == 1:
        return number(value.mean * scale, lang, digits)
    return f"{number(value.mean * scale, lang, digits)} ± {number(value.sem * scale, lang, digits)}"


def integral_law_table(runs: Mapping[str, History], lang: str, tolerance: float = 0.1) -> Table:
    """Per schedule: where the constant-gradient law stops holding, and where the run ends."""
    rows = []
    for name, history in runs.items():
        until = integral_law_holds_until(history, tolerance)
        w1 = history.metric("w1")
        rows.append((
            name,
            text("never", lang) if until is None else str(until),
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
    rows = []
    for name, stats in schedule_stats(runs, excess).items():
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
    n = next(iter(runs.values())) if runs else []
    header = (
        text("schedule", lang),
        text("late_excess", lang, n=len(n)),
        text("settled", lang, excess=plain(excess, lang)),
        text("jitter", lang),
        text("final_lr", lang),
    )
    return Table(header, tuple(rows))


def compare_clipping(runs: Mapping[str, History], lang: str, target: float = 1e-3, blown_up: float = 1e6) -> Table:
    """Lesson 02's measured table: final loss, largest step, steps to the target, divergence, norm removed."""
    rows = []
    for name, history in runs.items():
        stats = clipping_stats(history, target, blown_up)
        rows.append((
            name,
            significant(stats.final_loss, lang),
            significant(stats.largest_step, lang),
            text("never", lang) if stats.steps_to_target is None else str(stats.steps_to_target),
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


def finetune_table(results: dict, lang: str, variants: Sequence[str] | None = None, timing: bool = True) -> Table:
    """Lesson 03: one row per variant, mean ± standard error over the seeds (accuracy in %, time in ms).

    ``timing=False`` leaves out time and memory, which change from run to run
    (a notebook check compares the printed table).
    """
    summary = finetuning_bert.summarize(results)
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
            with_spread(s["loss_variance_late"], lang, 4),
            number(100 * s["clipped_fraction"].mean, lang, 0),
            significant(s["final_lr"].mean, lang, 2),
        ))
    n = len({r["seed"] for r in results["runs"]})
    keys = ["variant", "acc_before", "acc_after", "ms_per_step", "peak_memory", "ratio_col", "loss_var", "clipped_pct", "final_lr"]
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
    header = tuple(text(column[1], lang) for column in columns)
    body = []
    for row in rows:
        cells = []
        for key, _, digits, *scale in columns:
            value = row.get(key)
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


def options_table(results: dict, lang: str) -> Table:
    """Lesson 05: the notes' qualitative table, measured: each option against its baseline, time and memory."""
    def by(rows, key, value):
        return next(r for r in rows if r[key] == value)

    def times(a, b):
        return f"×{number(a / b, lang, 2)}"

    def memory(a, b):
        return "-" if a is None or b is None else f"{number(a / 1024, lang, 1)} → {number(b / 1024, lang, 1)} GB"

    r = results
    v = {row["vocab"]: row for row in r["vocabulary_sizes"]}
    small, large = sorted(v)
    p = {row["precision"]: row for row in r["precisions"]}
    acc = r["accumulation"]
    att = by(r["attention_lengths"], "length", r["config"]["model"]["block_size"])
    opt = {row["optimizer"]: row for row in r["optimizers"]}
    comp = r["compiled"]
    pin = r["pinned_copies"]
    batches = r["batch_sizes"]
    pow2 = by(batches, "batch", 16)
    before = by(batches, "batch", 15)
    model = GPTConfig(**r["config"]["model"])
    saved = 1 - parameter_count(model) / parameter_count(dataclasses.replace(model, tie_weights=False))
    rows = [
        ("opt_batch", text("cmp_batch", lang), times(before["ms_per_sequence"], pow2["ms_per_sequence"]), "-"),
        ("opt_vocab", text("cmp_vocab", lang, a=count(large, lang), b=count(small, lang)), times(v[small]["ms_per_step"], v[large]["ms_per_step"]), "-"),
        ("opt_bf16", text("cmp_bf16", lang), times(p["fp32"]["ms_per_step"], p["bf16"]["ms_per_step"]),
         memory(p["fp32"]["peak_memory_mb"], p["bf16"]["peak_memory_mb"])),
        ("opt_tf32", text("cmp_tf32", lang), times(p["fp32"]["ms_per_step"], p["tf32"]["ms_per_step"]), "-"),
        ("opt_accumulate", text("cmp_accumulate", lang, k=acc["k"]), times(acc["one_batch"]["ms_per_step"], acc["accumulated"]["ms_per_step"]),
         memory(acc["one_batch"]["peak_memory_mb"], acc["accumulated"]["peak_memory_mb"])),
        ("opt_attention", text("cmp_attention", lang, T=count(att["length"], lang)), times(att["naive_ms"], att["fused_ms"]),
         memory(att["naive_memory_mb"], att["fused_memory_mb"])),
        ("opt_fused_adamw", text("cmp_fused_adamw", lang), times(opt["loop"]["ms_per_step"], opt["fused"]["ms_per_step"]), "-"),
        ("opt_compile", text("cmp_compile", lang), times(comp["eager"]["ms_per_step"], comp["compiled"]["ms_per_step"]), "-"),
        ("opt_pinned", text("cmp_pinned", lang), times(pin["pageable_ms"], pin["pinned_ms"]), "-"),
        ("opt_tying", text("cmp_tying", lang, pct=number(100 * saved, lang, 0)), "-", "-"),
        ("opt_ddp", text("cmp_ddp", lang), "-", "-"),
    ]
    header = tuple(text(k, lang) for k in ("option", "compared", "speedup", "memory_col"))
    return Table(header, tuple((text(key, lang), *rest) for key, *rest in rows))


def _speed_columns(ratio: str) -> list[tuple]:
    return [("ms_per_step", "col_ms_step", 2), ("ms_range", "col_ms_range", 0), ("tokens_per_s", "col_tokens_s", 0),
            ("mfu", "col_mfu", 1, 100), ("peak_memory_mb", "col_memory_gb", 1, 1 / 1024), (ratio, ratio.replace("vs_", "col_vs_"), 3)]


def _with_range(row: Mapping, lang: str) -> dict:
    return dict(row, ms_range=f"{number(row['ms_low'], lang, 2)}–{number(row['ms_high'], lang, 2)}",
                tokens_per_s=round(row["tokens_per_s"]))


def benchmark_table(results: dict, lang: str) -> Table:
    """Lesson 05: nanoGPT's loops and the course's step, each micro-batch (stored benchmark)."""
    rows = [dict(_with_range(r, lang), contender=text(f"bench_{r['name']}", lang)) for r in results["comparison"]["rows"]]
    columns = [("contender", "col_contender", 0), ("micro_batch", "col_micro_batch", 0), *_speed_columns("vs_nanogpt")]
    return measured_table(rows, columns, lang)


def ablation_table(results: dict, lang: str) -> Table:
    """Lesson 05: the fast step with one option removed at a time (stored benchmark)."""
    rows = [dict(_with_range(r, lang), removed=text(f"ablation_{r['name']}", lang)) for r in results["ablation"]["rows"]]
    return measured_table(rows, [("removed", "col_removed", 0), *_speed_columns("vs_fast")], lang)


def profile_table(results: dict, lang: str) -> Table:
    """Lesson 05: where the fast step's GPU time goes, by kind of kernel, and the GPU's idle time."""
    profile = results["profile"]
    wall = profile["wall_ms_per_step"]
    kinds = sorted(profile["by_kind"].items(), key=lambda kv: -kv[1])
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
