"""Lesson 05's measurements: each optimization option of pretraining, timed on the machine that runs it.

Every function returns plain numbers (JSON-ready) measured with
:mod:`course_lib.engine.timing`.  The lesson runs the small CPU configuration live;
``python -m course_lib.lessons.optimization_options --config gpu`` runs the larger
one on a GPU and stores it in ``course_lib/lessons/results/lesson05_gpu.json`` with its
provenance.
"""

from __future__ import annotations

import dataclasses
import json
import math
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_lib.engine._checks import check_choice, check_int, check_number, check_type
from course_lib.engine.callbacks import evaluate
from course_lib.engine.data import default_dtype, pick_device
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.stats import curve_agreement
from course_lib.engine.timing import (
    PeakMemory,
    enable_tf32,
    fused_adamw,
    interleaved,
    mfu,
    peak_for_name,
    synchronize,
    time_it,
    timed_run,
    train_speed,
)
from course_lib.engine.training import PRECISIONS, train, weight_dtype
from course_lib.lessons import stored
from course_lib.lessons.corpus import TokenWindows, encode_texts, held_out_blocks, pretraining_texts
from course_lib.models.fast_step import (
    ABLATIONS,
    ALTERNATIVES,
    FAST,
    FIRST_ROUND,
    PLAIN,
    RUNGS,
    SPEED_OPTIONS,
    StepOptions,
    alternatives,
    build,
    staircase,
)
from course_lib.models.fast_step import (
    LEVERS as FAST_LEVERS,
)
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss, naive_attention

__all__ = ["Config", "CONFIGS", "batch_sizes", "vocabulary_sizes", "memory_per_parameter", "precisions", "accumulation",
           "contiguity", "pinned_copies", "attention_lengths", "compiled", "optimizers", "weight_tying", "cost_terms", "cumulative_days",
           "run_all", "load_results", "main", "loss_curves", "load_benchmark", "headline", "matmul_rate", "StaircaseConfig",
           "STAIRCASE_CONFIGS", "PARTS", "GPU_SHAPES", "CPU_SHAPES", "time_staircase", "staircase_here", "staircase_study", "staircase_config", "logits_memory",
           "load_staircase", "staircase_summary", "tying_summary", "MODULE", "sharded_memory", "pipeline_bubble", "token_storage", "LEVERS_SCHEMA", "load_levers", "MEASURED_STEPS", "RECHECK", "load_recheck", "recheck_summary"]


MODULE = "course_lib.lessons.optimization_options"  # its name also when run as ``python -m``

# What ``precisions`` may time: the training loop's precisions, and tf32 (its fp32 with TF32 multiplies allowed).
LOOP_PRECISIONS = ("tf32", *PRECISIONS)


# The measurements of ``run_all``, in the order it makes them; a configuration may make some only (``Config.parts``).
PARTS = ("batch_sizes", "vocabulary_sizes", "precisions", "accumulation", "attention_lengths", "optimizers", "compiled",
         "weight_tying", "contiguity", "pinned_copies")


@dataclass(frozen=True)
class Config:
    """Sizes of one configuration: the model, the batch sizes and lengths swept, and how long each timing runs."""

    name: str
    model: GPTConfig = GPTConfig(vocab_size=2048, block_size=64, n_layer=2, n_head=4, n_embd=128)
    batch_sizes: tuple[int, ...] = (62, 64, 120, 128)
    vocabularies: tuple[int, ...] = (2000, 2048)
    batch_size: int = 32
    accumulate: int = 4
    lengths: tuple[int, ...] = (64, 128, 256, 512)
    heads: int = 4
    head_dim: int = 32
    attention_batch: int = 4
    steps: int = 3
    warmup: int = 2
    rounds: int = 3
    precisions: tuple[str, ...] = ("fp32", "bf16")
    compile: bool = False
    tying_steps: int = 150
    tying_seeds: tuple[int, ...] = (0,)
    parts: tuple[str, ...] = PARTS

    def __post_init__(self) -> None:
        """Every size checked here, so a bad one fails before a long GPU run, not in the middle of it."""
        check_type("name", self.name, str, "the configuration's name, e.g. 'gpu'")
        check_type("model", self.model, GPTConfig, "a course_lib.models.gpt.GPTConfig")
        for name, unit in (("batch_sizes", "sequences"), ("vocabularies", "tokens"), ("lengths", "tokens"),
                           ("tying_seeds", "seed units")):
            values = getattr(self, name)
            check_type(name, values, (tuple, list), f"a non-empty tuple of ints ({unit})")
            if not values:
                raise ValueError(f"{name} is empty: give at least one value")
            for i, value in enumerate(values):
                check_int(f"{name}[{i}]", value, 0 if name == "tying_seeds" else 1, unit=unit)
        for name, minimum, unit in (("batch_size", 1, "sequences"), ("accumulate", 1, "micro-batches"), ("heads", 1, "heads"),
                                    ("head_dim", 1, "numbers per head"), ("attention_batch", 1, "sequences"),
                                    ("steps", 1, "optimizer steps"), ("warmup", 0, "optimizer steps"),
                                    ("rounds", 1, "timed rounds"), ("tying_steps", 1, "optimizer steps")):
            check_int(name, getattr(self, name), minimum, unit=unit)
        if self.batch_size % self.accumulate:
            raise ValueError(f"batch_size {self.batch_size} must be a multiple of accumulate {self.accumulate}")
        check_type("precisions", self.precisions, (tuple, list), f"a non-empty tuple of precisions out of {LOOP_PRECISIONS}")
        if not self.precisions:
            raise ValueError("precisions is empty: give at least one precision")
        for i, precision in enumerate(self.precisions):
            check_choice(f"precisions[{i}]", precision, LOOP_PRECISIONS, "tf32 is fp32 with TF32 matrix multiplies allowed")
        check_type("compile", self.compile, bool, "True or False")
        check_type("parts", self.parts, (tuple, list), f"a non-empty tuple of measurements out of {PARTS}")
        if not self.parts:
            raise ValueError("parts is empty: give at least one measurement")
        for i, part in enumerate(self.parts):
            check_choice(f"parts[{i}]", part, PARTS)

    def gpt(self, **changes) -> GPTConfig:
        """The model, with ``changes`` (``vocab_size=50257``, ``tie_weights=False``)."""
        return dataclasses.replace(self.model, **changes)


CONFIGS = {
    "cpu": Config("cpu"),
    "gpu": Config("gpu", GPTConfig(vocab_size=50304, block_size=1024, n_layer=12, n_head=12, n_embd=768),
                  batch_sizes=(8, 10, 12, 14, 15, 16), vocabularies=(50257, 50304), batch_size=16, accumulate=4,
                  lengths=(256, 512, 1024, 2048, 4096, 8192), heads=12, head_dim=64, attention_batch=8, steps=10,
                  warmup=5, rounds=3, precisions=("fp32", "tf32", "bf16"), compile=True, tying_steps=600,
                  tying_seeds=(0, 1, 2)),
    # Weight tying with ten seeds: on a CPU, so that any machine gives the same losses; about 10 minutes on two cores.
    "tying-cpu": Config("tying-cpu", tying_steps=600, tying_seeds=tuple(range(10)), parts=("weight_tying",)),
}


def _check_config(config) -> None:
    check_type("config", config, Config, "a Config, e.g. CONFIGS['cpu'] or CONFIGS['gpu']")


def _windows(vocab: int, batch: int, length: int, seed: int = 0):
    """Synthetic token batches: speed does not depend on what the tokens say."""
    def data(m: int) -> torch.Tensor:
        return torch.randint(0, vocab, (batch, length + 1), generator=torch.Generator().manual_seed(seed * 7919 + m))
    return data


def _speed(config: Config, device, *, batch: int | None = None, precision: str = "fp32", accumulate: int = 1,
           gpt: GPTConfig | None = None, compile_model: bool = False, optimizer: str = "adamw") -> dict:
    torch.manual_seed(0)
    gpt = gpt or config.gpt()
    with default_dtype(weight_dtype(precision)):  # float64 weights for fp64, float32 for the others
        model = GPT(gpt).to(device)
    opt = fused_adamw(model.parameters(), lr=1e-4) if optimizer == "fused" else torch.optim.AdamW(
        model.parameters(), lr=1e-4, foreach=optimizer != "loop")
    if compile_model:
        model = torch.compile(model)
    result = train_speed(model, opt, _windows(gpt.vocab_size, batch or config.batch_size, gpt.block_size), lm_loss,
                         steps=config.steps, warmup=config.warmup, rounds=config.rounds, precision=precision,
                         accumulate=accumulate, device=device, flops_per_token=flops_per_token(gpt))
    del model, opt
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return result


def batch_sizes(config: Config, device=None) -> list[dict]:
    """Time per sequence at each batch size (powers of two and their neighbours)."""
    _check_config(config)
    device = pick_device(device)
    out = []
    for b in config.batch_sizes:
        r = _speed(config, device, batch=b, precision="bf16" if device.type == "cuda" else "fp32")
        out.append({"batch": b, **r, "ms_per_sequence": r["ms_per_step"] / b})
    return out


def vocabulary_sizes(config: Config, device=None) -> list[dict]:
    """Time per step at each vocabulary size: the output layer's width, padded to a multiple of 64 or not."""
    _check_config(config)
    device = pick_device(device)
    return [{"vocab": v, **_speed(config, device, gpt=config.gpt(vocab_size=v),
                                  precision="bf16" if device.type == "cuda" else "fp32")} for v in config.vocabularies]


def memory_per_parameter() -> dict[str, dict[str, int]]:
    """Bytes per parameter: the weight alone in each dtype, and training with AdamW (weight, gradient, two moments).

    Mixed precision keeps fp32 weights, gradients and moments (16 bytes) and
    computes in bf16; pure bf16 training stores everything in 2 bytes (8 in
    all) but rounds small updates away.
    """
    size = {name: torch.tensor([], dtype=dtype).element_size()
            for name, dtype in (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16))}
    return {
        "weight": size,
        "adamw_training": {"fp32": 4 * size["fp32"], "mixed bf16": 4 * size["fp32"], "pure bf16": 4 * size["bf16"]},
    }


def precisions(config: Config, device=None) -> list[dict]:
    """Time per step and peak memory in each precision (fp32, tf32 on GPUs that have it, bf16 autocast)."""
    _check_config(config)
    device = pick_device(device)
    out = []
    for p in config.precisions:
        enable_tf32(p == "tf32")
        out.append({"precision": p, **_speed(config, device, precision="fp32" if p == "tf32" else p)})
    enable_tf32(False)
    return out


def accumulation(config: Config, device=None) -> dict:
    """One batch of B sequences against k micro-batches of B/k: the same gradient, less memory, more time.

    Returns the largest gradient difference (relative to the gradient's
    largest entry) and the speed of both ways.
    """
    _check_config(config)  # its batch_size is a multiple of accumulate
    device = pick_device(device)
    k, B = config.accumulate, config.batch_size
    torch.manual_seed(0)
    model = GPT(config.gpt()).to(device)
    batch = _windows(config.model.vocab_size, B, config.model.block_size)(0).to(device)
    lm_loss(model, batch).backward()
    whole = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    for part in batch.split(B // k):
        (lm_loss(model, part) / k).backward()
    diff = max((a - p.grad).abs().max().item() for a, p in zip(whole, model.parameters()))
    scale = max(a.abs().max().item() for a in whole)
    one = _speed(config, device, batch=B)
    split = _speed(config, device, batch=B // k, accumulate=k)
    return {"k": k, "batch": B, "max_relative_difference": diff / scale, "one_batch": one, "accumulated": split}


def contiguity(device=None, n: int = 2048) -> dict:
    """Summing the rows of an n x n matrix stored row by row (contiguous) or column by column (its transpose)."""
    check_int("n", n, 1, unit="rows")
    device = pick_device(device)
    x = torch.randn(n, n, device=device)
    t = x.t()  # a view: same memory, strides swapped, not contiguous
    return {
        "n": n,
        "contiguous_ms": 1e3 * time_it(lambda: x.sum(dim=1), device=device).median,
        "transposed_ms": 1e3 * time_it(lambda: t.sum(dim=1), device=device).median,
        "copy_ms": 1e3 * time_it(lambda: t.contiguous(), device=device).median,
        "is_contiguous": [x.is_contiguous(), t.is_contiguous()],
    }


def pinned_copies(device=None, megabytes: int = 256) -> dict | None:
    """Host-to-GPU copy time from ordinary (pageable) and from pinned memory, and a non-blocking copy's launch time."""
    check_int("megabytes", megabytes, 1, unit="MiB")
    device = pick_device(device)
    if device.type != "cuda":
        return None
    n = megabytes * 2**20 // 4
    pageable, pinned = torch.randn(n), torch.randn(n).pin_memory()
    out = {"megabytes": megabytes}
    for name, source in (("pageable", pageable), ("pinned", pinned)):
        t = time_it(lambda: source.to(device), device=device).median
        out[f"{name}_ms"], out[f"{name}_gb_per_s"] = 1e3 * t, megabytes / 1024 / t
    began = time.perf_counter()
    pinned.to(device, non_blocking=True)
    out["non_blocking_return_ms"] = 1e3 * (time.perf_counter() - began)  # control returns before the copy ends
    synchronize(device)
    return out


def attention_lengths(config: Config, device=None) -> list[dict]:
    """Forward + backward time (and GPU memory) of causal attention, fused kernel against the formula, per length T."""
    _check_config(config)
    device = pick_device(device)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    out = []
    for T in config.lengths:
        row = {"length": T}
        for name, fn in (("fused", lambda q, k, v: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
                         ("naive", naive_attention)):
            shape = (config.attention_batch, config.heads, T, config.head_dim)
            q, k, v = (torch.randn(shape, device=device, dtype=dtype, requires_grad=True) for _ in range(3))

            def step():
                fn(q, k, v).sum().backward()

            try:
                peak = PeakMemory(device)
                row[f"{name}_ms"] = 1e3 * time_it(step, warmup=1, repeats=5, device=device).median
                row[f"{name}_memory_mb"] = peak.mb
            except torch.OutOfMemoryError:
                row[f"{name}_ms"], row[f"{name}_memory_mb"] = None, None
                torch.cuda.empty_cache()
        out.append(row)
    return out


def compiled(config: Config, device=None) -> dict | None:
    """Eager against ``torch.compile``d model, same step (bf16 on a GPU); None where the configuration skips it."""
    _check_config(config)
    if not config.compile:
        return None
    device = pick_device(device)
    precision = "bf16" if device.type == "cuda" else "fp32"
    return {"eager": _speed(config, device, precision=precision, optimizer="fused"),
            "compiled": _speed(config, device, precision=precision, optimizer="fused", compile_model=True)}


def optimizers(config: Config, device=None) -> list[dict]:
    """AdamW's update as a loop over tensors, as multi-tensor (foreach) kernels, and as one fused kernel (GPU)."""
    _check_config(config)
    device = pick_device(device)
    kinds = ("loop", "adamw", "fused") if device.type == "cuda" else ("loop", "adamw")
    precision = "bf16" if device.type == "cuda" else "fp32"
    return [{"optimizer": {"adamw": "foreach"}.get(k, k), **_speed(config, device, precision=precision, optimizer=k)}
            for k in kinds]


def weight_tying(config: Config, device=None) -> dict:
    """Parameters and held-out loss of the same small GPT with the output layer tied to the embedding or not.

    Trained from scratch on the review snippets of lesson 04 (a byte-level BPE
    of 2,048 tokens; the last tenth of the text held out), same batches for
    both, ``tying_steps`` steps per seed.  The model is the CPU configuration's
    at any ``config``, so the live and stored numbers are comparable.
    """
    _check_config(config)
    device = pick_device(device)
    tokenizer, ids = encode_texts(pretraining_texts(), 2048)
    cut = int(0.9 * len(ids))
    small = CONFIGS["cpu"]
    held_out = held_out_blocks(ids[cut:], small.model.block_size, 64)[:8]
    out = {}
    for tied in (True, False):
        gpt = small.gpt(vocab_size=tokenizer.vocab_size, tie_weights=tied)
        losses = []
        for seed in config.tying_seeds:
            torch.manual_seed(seed)
            model = GPT(gpt)
            optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
            scheduler = ScheduledLR(optimizer, cosine_with_warmup(10, config.tying_steps))
            train(model, optimizer, TokenWindows(ids[:cut], 16, small.model.block_size, seed), lm_loss, config.tying_steps,
                  scheduler=scheduler, clip=1.0, device=device, log_every=config.tying_steps)
            losses.append(evaluate(model, held_out, lm_loss, device=device)["eval_loss"])
        out["tied" if tied else "untied"] = {"parameters": sum(p.numel() for p in model.parameters()), "eval_loss": losses}
    return out


def cost_terms(config: GPTConfig, lengths=(128, 1024, 4096, 8192)) -> list[dict]:
    """Per token: the dense part 6N and the attention part 12·L·d·T of the training FLOPs, and which dominates."""
    check_type("config", config, GPTConfig, "a course_lib.models.gpt.GPTConfig")
    check_type("lengths", lengths, (tuple, list, range), "a non-empty list of sequence lengths (ints, tokens)")
    if not lengths:
        raise ValueError("lengths is empty: give at least one sequence length")
    for i, T in enumerate(lengths):
        check_int(f"lengths[{i}]", T, 1, unit="tokens")
    d, L, V = config.n_embd, config.n_layer, config.vocab_size
    dense = 6 * (12 * L * d * d + V * d)
    return [{"length": T, "dense": dense, "attention": 12 * L * d * T, "attention_share": 12 * L * d * T / (dense + 12 * L * d * T)}
            for T in lengths]


def cumulative_days(seconds_per_iteration: float, iterations: float) -> float:
    """Days taken by ``iterations`` iterations of ``seconds_per_iteration`` seconds (the notes' calculator)."""
    for name, value in (("seconds_per_iteration", seconds_per_iteration), ("iterations", iterations)):
        check_number(name, value, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    return seconds_per_iteration * iterations / 86400


def run_all(config: Config, device=None, progress=print) -> dict:
    """Every measurement of ``config``, with provenance (the stored results)."""
    _check_config(config)
    stored.check_progress(progress)
    device = pick_device(device)
    measure = {"batch_sizes": batch_sizes, "vocabulary_sizes": vocabulary_sizes, "precisions": precisions, "accumulation": accumulation,
               "attention_lengths": attention_lengths, "optimizers": optimizers, "compiled": compiled, "weight_tying": weight_tying,
               "contiguity": lambda config, device: contiguity(device, 8192 if device.type == "cuda" else 2048),
               "pinned_copies": lambda config, device: pinned_copies(device)}
    results = {}
    for name in config.parts:
        progress(f"{config.name}: {name}")
        results[name] = measure[name](config, device)
    return {
        "config": dataclasses.asdict(config),
        "provenance": stored.provenance(device, f"python -m {MODULE} --config {config.name}"),
        **results,
    }


_TIME, _SIZE = stored.Real(0.0, exclusive=True), stored.Maybe(stored.Real(0.0))
_SPEED = {"ms_per_step": _TIME, "ms_low": _TIME, "ms_high": _TIME, "tokens_per_step": stored.Int(1), "tokens_per_s": _TIME,
          "peak_memory_mb": _SIZE, "mfu": _SIZE}
_PROVENANCE = {"date": str, "device": str, "torch": str, "cuda": stored.Maybe(str), "command": str}
# What the lesson's tables read from the stored results (see stored.validate).
RESULTS = {
    "provenance": {**_PROVENANCE, "driver": stored.Maybe(str)},
    "batch_sizes": stored.Many({"batch": stored.Int(1), **_SPEED, "ms_per_sequence": _TIME}),
    "vocabulary_sizes": stored.Many({"vocab": stored.Int(1), **_SPEED}),
    "precisions": stored.Many({"precision": stored.Choice(LOOP_PRECISIONS), **_SPEED}),
    "accumulation": {"k": stored.Int(1), "batch": stored.Int(1), "max_relative_difference": stored.Real(0.0), "one_batch": _SPEED,
                     "accumulated": _SPEED},
    "attention_lengths": stored.Many({"length": stored.Int(1), "fused_ms": stored.Maybe(_TIME), "fused_memory_mb": _SIZE,
                                      "naive_ms": stored.Maybe(_TIME), "naive_memory_mb": _SIZE}),
    "optimizers": stored.Many({"optimizer": stored.Choice(("loop", "foreach", "fused")), **_SPEED}),
    "compiled": stored.Maybe({"eager": _SPEED, "compiled": _SPEED}),
    "weight_tying": {kind: {"parameters": stored.Int(1), "eval_loss": stored.Many(stored.Real(0.0))} for kind in ("tied", "untied")},
    "contiguity": {"n": stored.Int(1), "contiguous_ms": _TIME, "transposed_ms": _TIME, "copy_ms": _TIME},
    "pinned_copies": stored.Maybe({"megabytes": stored.Int(1), "pageable_ms": _TIME, "pageable_gb_per_s": _TIME, "pinned_ms": _TIME,
                                   "pinned_gb_per_s": _TIME, "non_blocking_return_ms": stored.Real(0.0)}),
}


def load_results(name: str = "gpu") -> dict:
    """The stored results (``course_lib/lessons/results/lesson05_<name>.json``), checked against :data:`CONFIGS` and :data:`RESULTS`.

    Only the measurements of the configuration's ``parts`` are in the file.
    """
    config = stored.configuration(CONFIGS, name)
    schema = {key: part for key, part in RESULTS.items() if key == "provenance" or key in config.parts}
    return stored.load("05", name, f"python -m {MODULE} --config {name}", {"config": config}, schema)




# ---------------------------------------------------------------------------------------------- the fast step (benchmarks/nanogpt_vs_course.py)


def loss_curves(steps: int = 300, *, fast: StepOptions = FAST, plain: StepOptions = PLAIN, device=None, seed: int = 0,
                vocab: int = 8192, progress=None) -> dict:
    """Train the same GPT-2 from the same weights on the same real text, batch by batch, with ``plain`` and ``fast``.

    Only the speed options (:data:`SPEED_OPTIONS`) come from ``plain``; sizes, batches and rates are ``fast``'s.

    The text is lesson 04's (the Rotten Tomatoes snippets), tokenized by a
    byte-level BPE of ``vocab`` tokens; the model keeps ``fast``'s sizes.
    Returns both loss curves and :func:`curve_agreement`.
    """
    check_int("steps", steps, 1)
    check_type("fast", fast, StepOptions, "a course_lib.models.fast_step.StepOptions, e.g. FAST")
    check_type("plain", plain, StepOptions, "a course_lib.models.fast_step.StepOptions, e.g. PLAIN")
    check_int("seed", seed, 0, unit="seed units")
    device = pick_device(device)
    _, ids = encode_texts(pretraining_texts(), vocab)
    windows = TokenWindows(ids, fast.micro_batch, fast.model.block_size, seed)
    curves = {}
    for name, speed in (("plain", plain), ("fast", fast)):
        options = dataclasses.replace(fast, **{f: getattr(speed, f) for f in SPEED_OPTIONS})  # same model, batches, rates
        pinned = options.pinned and device.type == "cuda"
        built = build(options, device, data=(lambda m: windows(m).pin_memory()) if pinned else windows, seed=seed,
                      schedule_steps=steps, warmup_steps=max(1, steps // 10))
        history = train(built.model, built.optimizer, built.data, built.loss_fn, steps, device=device, **built.train_kwargs())
        curves[name] = history.loss
        if progress:
            progress(f"{name}: loss {history.loss[0]:.3f} -> {history.loss[-1]:.3f}")
        del built
        if device.type == "cuda":
            torch.cuda.empty_cache()
    return {"steps": steps, "tokens": len(ids), "vocab": vocab, "plain": curves["plain"], "fast": curves["fast"],
            "agreement": curve_agreement(curves["plain"], curves["fast"])}


_BENCHMARK = "the results of load_benchmark() (course_lib/lessons/results/lesson05_nanogpt.json)"


_ROW = {"name": str, "micro_batch": stored.Int(1), **_SPEED, "tokens_per_s": _TIME}
# What the lesson's tables read from the stored benchmark (see stored.validate).
BENCHMARK = {
    "comparison": {"rows": stored.Many({**_ROW, "group": str, "vs_nanogpt": _TIME})},
    "ablation": {"rows": stored.Many({**_ROW, "vs_fast": _TIME}), "changes": dict},
    "profile": {"micro_batch": stored.Int(1), "gpu_ms_per_step": _TIME, "wall_ms_per_step": _TIME,
                "by_kind": stored.Named(stored.Real(0.0))},
    "loss": {"steps": stored.Int(1), "plain": stored.Many(stored.Real(0.0)), "fast": stored.Many(stored.Real(0.0)),
             "agreement": {"window": stored.Int(1), "max_gap": stored.Real(0.0), "final_gap": stored.Real(0.0),
                           "reference_final": stored.Real(0.0), "other_final": stored.Real(0.0)}},
    "provenance": {part: {**_PROVENANCE, "step": dict, **({"nanogpt_commit": str} if part == "comparison" else {})}
                   for part in ("comparison", "profile", "loss", "ablation")},
}


# The steps a stored benchmark may have measured: the fast step, or the first round's (before issue 27's levers).
MEASURED_STEPS = {"fast": FAST, "first_round": FIRST_ROUND}


def _measured(reference: StepOptions, step: object) -> bool:
    """Whether a stored provenance's ``step`` is ``reference`` (fields added since it was stored count at their defaults)."""
    return isinstance(step, dict) and stored.as_stored(reference, step) == step


def load_benchmark() -> dict:
    """The stored benchmark (``course_lib/lessons/results/lesson05_nanogpt.json``), refused unless every part of it
    measured one step of :data:`MEASURED_STEPS`, named in the result's ``"measured_step"``, with that step's ablation rows."""
    command = "python benchmarks/nanogpt_vs_course.py --nanogpt PATH"
    results = stored.load("05", "nanogpt", command, schema=BENCHMARK)
    steps = [where.get("step") if isinstance(where, dict) else None
             for where in stored.require(results, ["provenance"], f"a file written by `{command}`").values()]
    for name, reference in MEASURED_STEPS.items():
        removable = {n for n, change in ABLATIONS.items() if not change or dataclasses.replace(reference, **change) != reference}
        if all(_measured(reference, step) for step in steps) and (
                removable <= set(results["ablation"]["changes"])):
            return {**results, "measured_step": name}
    raise ValueError(f"{stored.path('05', 'nanogpt')} was measured for another step than fast_step.FAST or FIRST_ROUND (or its "
                     "parts for different steps): re-run benchmarks/nanogpt_vs_course.py")


LEVERS_COMMAND = ("python benchmarks/nanogpt_vs_course.py --base first-round --parts ablation,profile --only-extra --probe-cost "
                  "--extra '<fast_step.LEVERS as JSON>' --out course_lib/lessons/results/lesson05_levers.json")
# What the lesson reads from the levers' study: issue 27's levers, each added to the step the staircase ends at.
LEVERS_SCHEMA = {
    "ablation": {"rows": stored.Many({**_ROW, "vs_fast": _TIME}), "changes": dict},
    "profile": BENCHMARK["profile"],
    "provenance": {part: {**_PROVENANCE, "step": dict} for part in ("ablation", "profile")},
}


def load_levers() -> dict:
    """The stored levers' study (``lesson05_levers.json``): each of :data:`~course_lib.models.fast_step.LEVERS` added to
    :data:`~course_lib.models.fast_step.FIRST_ROUND` (the fast step before them), timed side by side, and that step's profile."""
    results = stored.load("05", "levers", LEVERS_COMMAND, schema=LEVERS_SCHEMA)
    file = stored.path("05", "levers")
    for part, where in results["provenance"].items():
        if not _measured(FIRST_ROUND, where["step"]):
            raise ValueError(f"{file} ({part}) was measured from another step than fast_step.FIRST_ROUND: re-run `{LEVERS_COMMAND}`")
    names = {row["name"] for row in results["ablation"]["rows"]}
    if missing := (set(FAST_LEVERS) | {"fast", "no_probe"}) - names:
        raise ValueError(f"{file} lacks the lever(s) {sorted(missing)}: re-run `{LEVERS_COMMAND}`")
    return results


RECHECK_COMMAND = ("python benchmarks/nanogpt_vs_course.py --nanogpt PATH --parts comparison --micro-batches 12 "
                   "--out course_lib/lessons/results/lesson05_recheck.json")
RECHECK = {"comparison": BENCHMARK["comparison"], "provenance": {"comparison": BENCHMARK["provenance"]["comparison"]}}


def load_recheck() -> dict:
    """The fast step (:data:`~course_lib.models.fast_step.FAST`, with issue 27's lever) against nanoGPT again, side by side
    at nanoGPT's micro-batch (``lesson05_recheck.json``): what the goal of 1.1 times is judged on."""
    results = stored.load("05", "recheck", RECHECK_COMMAND, schema=RECHECK)
    if not _measured(FAST, results["provenance"]["comparison"]["step"]):
        raise ValueError(f"{stored.path('05', 'recheck')} was measured for another step than fast_step.FAST: re-run `{RECHECK_COMMAND}`")
    return results


def recheck_summary(recheck: Mapping, bench: Mapping, levers: Mapping) -> dict:
    """What lesson 05 says of the re-check: the course's step and nanoGPT's faster loop at the re-checked micro-batch, now
    and in the stored comparison, and the estimate the older measurements gave (their ratio times clipping-in-step's gain)."""
    rows = stored.require(recheck, ["comparison", "rows"], "the results of load_recheck()")
    ours = next(r for r in rows if r["group"] == "course")
    nano = max((r for r in rows if r["group"] == "nanoGPT"), key=lambda r: r["tokens_per_s"])
    before = [r for r in stored.require(bench, ["comparison", "rows"], _BENCHMARK) if r["micro_batch"] == ours["micro_batch"]]
    clip = next(r["vs_fast"] for r in levers["ablation"]["rows"] if r["name"] == "clip_in_step")
    return {"micro_batch": ours["micro_batch"], "ours": ours["tokens_per_s"], "nano": nano["tokens_per_s"], "ratio": ours["vs_nanogpt"],
            "ours_before": next(r["tokens_per_s"] for r in before if r["group"] == "course"),
            "nano_before": max(r["tokens_per_s"] for r in before if r["group"] == "nanoGPT"),
            "estimate": headline(bench)["ratios"][ours["micro_batch"]] * clip}


def headline(results: dict) -> dict:
    """The numbers the lesson states: the ratio at each micro-batch, each side's best micro-batch, the loss-curve gap."""
    rows = stored.require(results, ["comparison", "rows"], _BENCHMARK)
    stored.require(results, ["loss", "agreement"], _BENCHMARK)
    nano = [r for r in rows if r.get("group") == "nanoGPT"]
    ours = [r for r in rows if r.get("group") == "course"]
    if not nano or not ours:
        raise ValueError(f"results['comparison']['rows'] holds {len(nano)} nanoGPT row(s) and {len(ours)} course row(s); "
                         f"both are needed: pass {_BENCHMARK}")
    best_nano, best_ours = max(nano, key=lambda r: r["tokens_per_s"]), max(ours, key=lambda r: r["tokens_per_s"])
    ratios = {r["micro_batch"]: r["vs_nanogpt"] for r in ours}
    return {"ratios": ratios, "best_nanogpt": best_nano, "best_course": best_ours,
            "best_ratio": best_ours["tokens_per_s"] / best_nano["tokens_per_s"], "loss": results["loss"]["agreement"]}


def matmul_rate(results: dict) -> tuple[float, float | None]:
    """The profiled step's matrix multiplies: FLOP/s (6N per token over their kernel time) and the share of the GPU's bf16 peak."""
    config = FAST.gpt()
    profile = stored.require(results, ["profile"], _BENCHMARK)
    stored.require(results, ["provenance", "profile", "device"], _BENCHMARK)
    check_number("results['profile']['by_kind']['matmul']", stored.require(results, ["profile", "by_kind", "matmul"], _BENCHMARK),
                 "a time > 0 ms", lambda v: v > 0)
    per_token = flops_per_token(config) - 12 * config.n_layer * config.n_embd * config.block_size  # 6N: no attention
    rate = per_token * profile["micro_batch"] * config.block_size / (profile["by_kind"]["matmul"] / 1e3)
    peak = peak_for_name(results["provenance"]["profile"]["device"], "bf16")
    return rate, (rate / peak if peak else None)


# ---------------------------------------------------------------------------------------------- the staircase (one option per rung)

# Matrix multiplies (M, K) @ (K, N) whose one dimension is round or not: what alignment can change.  Each entry:
# (what varies, M, K, N); an aligned and an unaligned shape of the same kind follow each other.
GPU_SHAPES = (("vocab", 12288, 768, 50257), ("vocab", 12288, 768, 50304),
              ("width", 12288, 762, 3072), ("width", 12288, 768, 3072),
              ("tokens", 12276, 768, 3072), ("tokens", 12288, 768, 3072),
              ("inner", 16384, 62, 16384), ("inner", 16384, 64, 16384),
              ("inner", 16384, 120, 16384), ("inner", 16384, 128, 16384))
CPU_SHAPES = (("vocab", 256, 128, 2000), ("vocab", 256, 128, 2048),
              ("width", 256, 126, 512), ("width", 256, 128, 512),
              ("tokens", 254, 128, 512), ("tokens", 256, 128, 512),
              ("inner", 512, 62, 512), ("inner", 512, 64, 512),
              ("inner", 512, 120, 512), ("inner", 512, 128, 512))


@dataclass(frozen=True)
class StaircaseConfig:
    """The staircase study: each rung of :func:`~course_lib.models.fast_step.staircase` timed, interleaved, in separate processes.

    Each of ``processes`` Python processes builds every rung of ``rungs``
    (each measures its peak memory while it warms up), then times ``rounds``
    rounds of ``steps`` optimizer steps per rung, the order turning each
    round; then the same for ``alternatives`` beside the rungs they replace;
    then the matrix multiplies of ``shapes``, interleaved the same way.
    The logits' memory (``logits_batch`` sequences) is measured once, in the parent.
    """

    name: str
    top: StepOptions = FIRST_ROUND
    unpadded_vocab: int = 50257
    rungs: tuple[str, ...] = tuple(RUNGS)
    alternatives: tuple[str, ...] = tuple(ALTERNATIVES)
    warmup: int = 3
    steps: int = 10
    rounds: int = 5
    processes: int = 3
    shapes: tuple[tuple[str, int, int, int], ...] = GPU_SHAPES
    shape_dtype: str = "bf16"
    shape_calls: int = 10
    logits_batch: int = 12

    def __post_init__(self) -> None:
        check_type("name", self.name, str, "the configuration's name, e.g. 'staircase-gpu'")
        check_type("top", self.top, StepOptions, "a course_lib.models.fast_step.StepOptions, e.g. FAST")
        staircase(self.top, self.unpadded_vocab)  # its checks: the rungs must end at top
        for name, known in (("rungs", tuple(RUNGS)), ("alternatives", tuple(ALTERNATIVES))):
            values = getattr(self, name)
            check_type(name, values, (tuple, list), f"a tuple of names out of {known}")
            for i, value in enumerate(values):
                check_choice(f"{name}[{i}]", value, known)
        if not self.rungs or self.rungs[0] != "plain":
            raise ValueError(f"rungs must start with 'plain', against which every rung is compared, got {self.rungs!r}")
        for i, alternative in enumerate(self.alternatives):
            if ALTERNATIVES[alternative][0] not in self.rungs:
                raise ValueError(f"alternatives[{i}] ({alternative!r}) replaces the rung {ALTERNATIVES[alternative][0]!r}, "
                                 "which rungs does not hold")
        for name, minimum, unit in (("warmup", 1, "untimed steps per rung"), ("steps", 1, "timed steps per round"),
                                    ("rounds", 2, "rounds (the spread within a process needs two)"),
                                    ("processes", 1, "separate processes"), ("shape_calls", 1, "calls per timing"),
                                    ("logits_batch", 1, "sequences")):
            check_int(name, getattr(self, name), minimum, unit=unit)
        check_type("shapes", self.shapes, (tuple, list), "a tuple of (what varies, M, K, N)")
        for i, shape in enumerate(self.shapes):
            if not (isinstance(shape, (tuple, list)) and len(shape) == 4 and isinstance(shape[0], str)
                    and all(isinstance(n, int) and not isinstance(n, bool) and n >= 1 for n in shape[1:])):
                raise ValueError(f"shapes[{i}] must be (what varies, M, K, N) with M, K, N ints >= 1, got {shape!r}")
        check_choice("shape_dtype", self.shape_dtype, ("fp32", "bf16"))

    def steps_of(self) -> dict[str, StepOptions]:
        """The rungs and alternatives this configuration times, by id."""
        rungs, others = staircase(self.top, self.unpadded_vocab), alternatives(self.top, self.unpadded_vocab)
        return {**{r: rungs[r] for r in self.rungs}, **{a: others[a] for a in self.alternatives}}


_SMALL_TOP = dataclasses.replace(FIRST_ROUND, micro_batch=8, model=dataclasses.replace(CONFIGS["cpu"].model, bias=False))
_CPU_RUNGS = ("plain", "bf16", "sdpa", "vocab", "fused_adamw")  # the rungs that do something on a CPU, compilation aside
STAIRCASE_CONFIGS = {
    "staircase-gpu": StaircaseConfig("staircase-gpu"),
    # The lesson's live run: the small GPT of the CPU configuration, the rungs a CPU has.
    "staircase-cpu": StaircaseConfig("staircase-cpu", _SMALL_TOP, unpadded_vocab=2000, rungs=_CPU_RUNGS, alternatives=(), warmup=1,
                                     steps=3, rounds=3, processes=1, shapes=CPU_SHAPES, shape_dtype="fp32", shape_calls=3,
                                     logits_batch=2),
}


def _check_staircase(config) -> None:
    check_type("config", config, StaircaseConfig, "a StaircaseConfig, e.g. STAIRCASE_CONFIGS['staircase-cpu']")


def _time_steps(steps: dict[str, StepOptions], config: StaircaseConfig, device) -> tuple[dict, dict, dict]:
    """Build and warm up each step (its peak memory), then ms per optimizer step of each, interleaved; errors by id."""
    advance, memory, errors = {}, {}, {}
    for name, options in steps.items():
        if device.type == "cuda":
            torch.cuda.empty_cache()
        peak = PeakMemory(device, above_now=True)
        try:
            built = build(options, device)
            run = timed_run(built.model, built.optimizer, built.data, built.loss_fn, device=device, **built.train_kwargs())

            def step(n, run=run, tf32=options.tf32):
                enable_tf32(tf32)  # a global switch: each rung runs with its own
                run.advance(n)

            step(config.warmup)
            synchronize(device)
        except Exception as error:  # a back-end this GPU lacks: reported in the results, not fatal
            errors[name] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}" if str(error) else type(error).__name__
            continue
        memory[name], advance[name] = peak.mb, (lambda step=step: step(config.steps))
    seconds = interleaved(advance, config.rounds, device)
    enable_tf32(False)
    return {name: [1e3 * s / config.steps for s in values] for name, values in seconds.items()}, memory, errors


def _shape_times(config: StaircaseConfig, device) -> list[dict]:
    """ms per matrix multiply of each of ``config.shapes``, interleaved."""
    dtype = torch.bfloat16 if config.shape_dtype == "bf16" else torch.float32
    generator = torch.Generator().manual_seed(0)
    operands = [(torch.randn(m, k, generator=generator).to(device, dtype), torch.randn(k, n, generator=generator).to(device, dtype))
                for _, m, k, n in config.shapes]

    def calls(a, b):
        def run():
            for _ in range(config.shape_calls):
                torch.mm(a, b)
        return run

    for a, b in operands:
        calls(a, b)()  # warm-up: the kernel chosen, the memory allocated
    seconds = interleaved({i: calls(a, b) for i, (a, b) in enumerate(operands)}, config.rounds, device)
    return [{"varies": what, "m": m, "k": k, "n": n, "ms": [1e3 * s / config.shape_calls for s in seconds[i]]}
            for i, (what, m, k, n) in enumerate(config.shapes)]


def time_staircase(config: StaircaseConfig, device=None) -> dict:
    """One process of the staircase study: the rungs, then the alternatives beside their rungs, then the matrix multiplies."""
    _check_staircase(config)
    device = pick_device(device)
    torch._dynamo.config.cache_size_limit = 64  # every compiled rung is its own graph of the same loss function
    steps = config.steps_of()
    rungs = {r: steps[r] for r in config.rungs}
    ms, memory, errors = _time_steps(rungs, config, device)
    beside = {}
    for a in config.alternatives:
        base = ALTERNATIVES[a][0]
        beside.setdefault(base, steps[base])
        beside[a] = steps[a]
    alt_ms, alt_memory, alt_errors = _time_steps(beside, config, device) if beside else ({}, {}, {})
    return {"rungs": ms, "peak_memory_mb": memory, "errors": {**errors, **alt_errors},
            "alternatives": alt_ms, "alternatives_memory_mb": alt_memory, "shapes": _shape_times(config, device)}


def staircase_config(c: Mapping) -> StaircaseConfig:
    """A :class:`StaircaseConfig` from its JSON form (``dataclasses.asdict``), as stored with the results."""
    check_type("c", c, Mapping, "a StaircaseConfig as a dict (the 'config' of the stored results)")
    top = c["top"]
    return StaircaseConfig(**{**c, "top": StepOptions(**{**top, "model": GPTConfig(**top["model"])}), "rungs": tuple(c["rungs"]),
                              "alternatives": tuple(c["alternatives"]), "shapes": tuple(tuple(s) for s in c["shapes"])})


def _one_staircase(config_json: str, device: str | None) -> dict:
    """One process of :func:`staircase_study` (see :func:`course_lib.lessons.stored.in_processes`)."""
    return time_staircase(staircase_config(json.loads(config_json)), device)


def logits_memory(config: StaircaseConfig, device=None) -> dict:
    """The logits under bf16 autocast: their dtype and size, and the peak memory of a step that keeps them or not.

    nanoGPT's model returns the logits with the loss and its loop holds them
    until the next step; the course's loss function returns the loss only.
    Eager GPT of ``config.top``'s sizes, ``logits_batch`` sequences.
    """
    _check_staircase(config)
    device = pick_device(device)
    gpt = config.top.model
    torch.manual_seed(0)
    model = GPT(gpt).to(device)
    batch = _windows(gpt.vocab_size, config.logits_batch, gpt.block_size)(0).to(device)
    out = {}
    for keep in (False, True):
        model.zero_grad(set_to_none=True)
        peak = PeakMemory(device, above_now=True)
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(batch[:, :-1])
            loss = F.cross_entropy(logits.flatten(0, 1), batch[:, 1:].flatten())
        out.update(dtype=str(logits.dtype).removeprefix("torch."), logits_mb=logits.numel() * logits.element_size() / 2**20,
                   fp32_logits_mb=logits.numel() * 4 / 2**20)
        held = logits if keep else None  # nanoGPT's way keeps them; the course's loss function returns the loss only
        del logits
        loss.backward()
        synchronize(device)
        out["peak_kept_mb" if keep else "peak_loss_only_mb"] = peak.mb
        del loss, held
    return out


def _study(config: StaircaseConfig, processes: list, device, command: str) -> dict:
    """The form :func:`staircase_summary` reads: the configuration, each process's timings, the logits' memory, provenance."""
    device = pick_device(device)
    return {"config": dataclasses.asdict(config), "processes": processes, "logits": logits_memory(config, device),
            "provenance": stored.provenance(device, command)}


def staircase_here(config: StaircaseConfig, device=None) -> dict:
    """The staircase in this process (one process of :func:`time_staircase`), in the form :func:`staircase_summary` reads: a live run."""
    _check_staircase(config)
    return _study(config, [time_staircase(config, device)], device, "staircase_here")


def staircase_study(config: StaircaseConfig, device=None, progress=print) -> dict:
    """``config.processes`` processes of :func:`time_staircase`, then the logits' memory, with provenance."""
    _check_staircase(config)
    stored.check_progress(progress)
    processes = stored.in_processes(f"{MODULE}:_one_staircase", config, device, config.processes, progress)
    return _study(config, processes, device, f"python -m {MODULE} --config {config.name}")


_MS = stored.Many(stored.Real(0.0, exclusive=True))
STAIRCASE = {
    "processes": stored.Many({"rungs": stored.Named(_MS), "peak_memory_mb": stored.Named(stored.Maybe(stored.Real(0.0))),
                              "errors": stored.Named(str), "alternatives": stored.Named(_MS),
                              "alternatives_memory_mb": stored.Named(stored.Maybe(stored.Real(0.0))),
                              "shapes": stored.Many({"varies": str, "m": stored.Int(1), "k": stored.Int(1), "n": stored.Int(1),
                                                     "ms": _MS})}),
    "logits": {"dtype": str, "logits_mb": stored.Real(0.0), "fp32_logits_mb": stored.Real(0.0),
               "peak_loss_only_mb": stored.Maybe(stored.Real(0.0)), "peak_kept_mb": stored.Maybe(stored.Real(0.0))},
    "provenance": {**_PROVENANCE, "driver": stored.Maybe(str)},
}


def load_staircase(name: str = "staircase-gpu") -> dict:
    """The stored staircase study (``course_lib/lessons/results/lesson05_<name>.json``), checked against :data:`STAIRCASE_CONFIGS`."""
    check_choice("name", name, tuple(STAIRCASE_CONFIGS), "the configurations of STAIRCASE_CONFIGS")
    return stored.load("05", name, f"python -m {MODULE} --config {name}", {"config": STAIRCASE_CONFIGS[name]}, STAIRCASE)


def _median_range(values: list[float]) -> tuple:
    """(median, lowest, highest) of ``values``; (None, None, None) when there is none (a step that failed to build)."""
    return (statistics.median(values), min(values), max(values)) if values else (None,) * 3


def _ratios(processes: list, part: str, numerator: str, denominator: str) -> list[float]:
    """Per process: median ms of ``numerator`` over median ms of ``denominator`` (a speed-up when the numerator is the slower)."""
    return [statistics.median(p[part][numerator]) / statistics.median(p[part][denominator]) for p in processes
            if numerator in p[part] and denominator in p[part]]


def _timing_row(processes: list, part: str, name: str, options: StepOptions, peak: float | None) -> dict:
    """ms per step of one step over the processes: the median of their medians, the lowest and highest of them and of all rounds."""
    medians = [statistics.median(p[part][name]) for p in processes if name in p[part]]
    rounds = [ms for p in processes for ms in p[part].get(name, [])]
    ms = statistics.median(medians)
    tokens_per_s = options.tokens_per_step / (ms / 1e3)
    memory = [p["peak_memory_mb" if part == "rungs" else "alternatives_memory_mb"].get(name) for p in processes]
    memory = [m for m in memory if m is not None]
    return {"ms_per_step": ms, "process_low": min(medians), "process_high": max(medians), "ms_low": min(rounds), "ms_high": max(rounds),
            "processes": len(medians), "tokens_per_s": tokens_per_s,
            "mfu": mfu(tokens_per_s, flops_per_token(options.gpt()), peak) if peak else None,
            "peak_memory_mb": statistics.median(memory) if memory else None}


def staircase_summary(results: Mapping) -> dict:
    """The staircase's tables from a study (:func:`staircase_study` or :func:`load_staircase`).

    ``rungs``: per rung, ms per step (median over the processes of each
    process's median round; the lowest and highest process median and
    round), tokens/s, MFU against the device's bf16 peak (one yardstick for
    every rung), peak memory, and the speed-up over the rung before and over
    the plain step (per process, then the median and range).
    ``alternatives``: each against the rung it replaces, timed beside it.
    ``shapes``: per matrix multiply, ms and TFLOP/s, and per shape whose
    dimension is not a multiple of 64, the rate of the round shape after it
    over its rate.  ``errors``: what failed to build, by id (a rung that
    failed is left out, and a ratio to it is None).
    """
    check_type("results", results, Mapping, "the dict that staircase_study() or load_staircase() returns")
    stored.validate(dict(results), STAIRCASE)
    config = staircase_config(stored.require(results, ["config"], "a staircase study"))
    steps, processes = config.steps_of(), results["processes"]
    peak = peak_for_name(results["provenance"]["device"], "bf16")
    rungs, previous = [], None
    for name in config.rungs:
        if not any(name in p["rungs"] for p in processes):
            continue
        row = {"rung": name, **_timing_row(processes, "rungs", name, steps[name], peak)}
        for key, other in (("vs_previous", previous), ("vs_plain", "plain")):
            row[key], row[key + "_low"], row[key + "_high"] = _median_range(_ratios(processes, "rungs", other, name) if other else [1.0])
        rungs.append(row)
        previous = name
    others = []
    for name in config.alternatives:
        base = ALTERNATIVES[name][0]
        if not any(name in p["alternatives"] for p in processes):
            continue
        others.append({"alternative": name, "base": base, **_timing_row(processes, "alternatives", name, steps[name], peak),
                       **dict(zip(("vs_base", "vs_base_low", "vs_base_high"), _median_range(_ratios(processes, "alternatives", base, name))))})
    shapes = []
    for i, shape in enumerate(config.shapes):
        times = [statistics.median(p["shapes"][i]["ms"]) for p in processes]
        ms = statistics.median(times)
        row = {"varies": shape[0], "m": shape[1], "k": shape[2], "n": shape[3], "ms": ms, "ms_low": min(times), "ms_high": max(times),
               "tflops": 2 * shape[1] * shape[2] * shape[3] / (ms / 1e3) / 1e12}
        shapes.append(row)
    round_ = lambda row: not any(n % 64 for n in (row["m"], row["k"], row["n"]))
    for i, (row, after) in enumerate(zip(shapes, shapes[1:])):
        if not round_(row) and round_(after) and after["varies"] == row["varies"]:
            work = (after["m"] * after["k"] * after["n"]) / (row["m"] * row["k"] * row["n"])
            gains = [work * statistics.median(p["shapes"][i]["ms"]) / statistics.median(p["shapes"][i + 1]["ms"]) for p in processes]
            row["round_gain"] = after["tflops"] / row["tflops"]
            row["round_gain_low"], row["round_gain_high"] = min(gains), max(gains)
    errors = {name: error for p in processes for name, error in p["errors"].items()}
    return {"rungs": rungs, "alternatives": others, "shapes": shapes, "errors": errors, "processes": len(processes),
            "rounds": config.rounds, "steps": config.steps, "micro_batch": config.top.micro_batch,
            "block_size": config.top.model.block_size}


def tying_summary(results: Mapping, below: float = 5.3) -> dict[str, dict]:
    """Per kind (tied, untied): parameters, and the held-out losses' mean, standard deviation, range, count and how many are under ``below``.

    ``results`` holds a ``weight_tying`` part (``load_results('tying-cpu')``);
    ``below`` splits the bimodal losses (runs that left the plateau near 5.4).
    """
    tying = stored.require(results, ["weight_tying"], "results with a 'weight_tying' part, e.g. load_results('tying-cpu')")
    check_number("below", below, "a finite loss", math.isfinite)
    out = {}
    for kind in ("tied", "untied"):
        losses = stored.require(tying, [kind, "eval_loss"], "results with a 'weight_tying' part")
        if len(losses) < 2:
            raise ValueError(f"results['weight_tying'][{kind!r}] holds {len(losses)} seed(s): a spread needs at least two")
        out[kind] = {"parameters": tying[kind]["parameters"], "mean": statistics.mean(losses), "sd": statistics.stdev(losses),
                     "low": min(losses), "high": max(losses), "n": len(losses), "below": sum(x < below for x in losses)}
    return out


def sharded_memory(parameters: int, gpus: int) -> dict[str, float]:
    """Bytes per GPU of the weights, gradients and AdamW moments (fp32, 16 per parameter) under data parallelism and its shardings.

    ``ddp``: every GPU holds all of it.  ZeRO's stages (and FSDP's
    strategies) split it over the ``gpus``: ``zero1`` the two moments
    (FSDP has no such mode), ``zero2`` the gradients too (FSDP's
    SHARD_GRAD_OP), ``zero3`` the weights too (FSDP's FULL_SHARD), gathered
    layer by layer when used.  Activations come on top of every one.
    """
    check_int("parameters", parameters, 1, unit="parameters")
    check_int("gpus", gpus, 1, unit="GPUs")
    weights = gradients = 4 * parameters
    moments = 8 * parameters
    return {"ddp": weights + gradients + moments, "zero1": weights + gradients + moments / gpus,
            "zero2": weights + (gradients + moments) / gpus, "zero3": (weights + gradients + moments) / gpus}


def pipeline_bubble(stages: int, micro_batches: int) -> float:
    """The share of time each GPU of a GPipe pipeline waits: (p - 1) / (m + p - 1) for p stages and m micro-batches per step."""
    check_int("stages", stages, 1, unit="pipeline stages (GPUs)")
    check_int("micro_batches", micro_batches, 1, unit="micro-batches per optimizer step")
    return (stages - 1) / (micro_batches + stages - 1)


def token_storage(tokens: float, vocab_size: int = 50257) -> dict[str, float]:
    """Bytes of a tokenized corpus of ``tokens`` ids as uint16 (ids below 65,536, as nanoGPT stores them), int32 and int64."""
    check_number("tokens", tokens, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    check_int("vocab_size", vocab_size, 1, unit="tokens")
    sizes = {"uint16": 2, "int32": 4, "int64": 8}
    if vocab_size > 2**16:
        del sizes["uint16"]  # its ids would not fit
    return {dtype: tokens * size for dtype, size in sizes.items()}


def _run_any(config, device=None):
    return staircase_study(config, device) if isinstance(config, StaircaseConfig) else run_all(config, device)


def main(argv=None) -> None:
    stored.main(argv, lesson="05", description="Measure lesson 05's optimization options (--config gpu) or its staircase (--config "
                "staircase-gpu) and store the results as JSON.", configs={**CONFIGS, **STAIRCASE_CONFIGS}, run_all=_run_any)


if __name__ == "__main__":
    main()
