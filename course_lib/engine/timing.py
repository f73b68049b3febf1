"""Measuring speed honestly: warm-up, synchronisation, repetitions, median and spread, tokens/s, memory, MFU.

Everything the optimization-options lesson and the benchmark scripts time goes
through :func:`time_it` (any callable; :func:`train_speed` times steps of the
course's one training loop with it), each timing by :func:`elapsed`: CUDA
events on a GPU, which runs asynchronously.  The GPU is waited for by
:func:`synchronize` and its peak memory read by :class:`PeakMemory`, here and
wherever the course measures.  Peak FLOP/s of the usual GPUs are in one table,
:data:`PEAK_FLOPS`, looked up from the device's name.
"""

from __future__ import annotations

import math
import statistics
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Callable

import torch

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown
from course_lib.engine.data import count_tokens, pick_device, tokens_of
from course_lib.engine.training import PRECISIONS, Callback, History, Run, start

__all__ = ["PEAK_FLOPS", "PEAK_PRECISIONS", "peak_flops", "peak_for_name", "Timing", "time_it", "mfu", "fused_adamw", "enable_tf32",
           "train_speed", "timed_run", "loop_steps", "synchronize", "elapsed", "interleaved", "PeakMemory"]

TERA = 1e12

# Dense peak FLOP/s per precision, from the vendors' data sheets (no sparsity).  tf32 is the rate of fp32
# matrix multiplies with TF32 allowed; fp32 the plain vector rate.
PEAK_FLOPS: dict[str, dict[str, float]] = {
    "H200": {"bf16": 989 * TERA, "fp16": 989 * TERA, "tf32": 494.5 * TERA, "fp32": 67 * TERA},
    "H100 SXM": {"bf16": 989 * TERA, "fp16": 989 * TERA, "tf32": 494.5 * TERA, "fp32": 67 * TERA},
    "H100 PCIe": {"bf16": 756 * TERA, "fp16": 756 * TERA, "tf32": 378 * TERA, "fp32": 51 * TERA},
    "A100": {"bf16": 312 * TERA, "fp16": 312 * TERA, "tf32": 156 * TERA, "fp32": 19.5 * TERA},
    "L4": {"bf16": 121 * TERA, "fp16": 121 * TERA, "tf32": 60 * TERA, "fp32": 30.3 * TERA},
    "A10": {"bf16": 125 * TERA, "fp16": 125 * TERA, "tf32": 62.5 * TERA, "fp32": 31.2 * TERA},
    "V100": {"fp16": 125 * TERA, "fp32": 15.7 * TERA},
    "T4": {"fp16": 65 * TERA, "fp32": 8.1 * TERA},
}
_NAMES = (("H200", "H200"), ("H100 PCIe", "H100 PCIe"), ("H100", "H100 SXM"), ("A100", "A100"), ("L4", "L4"),
          ("A10", "A10"), ("V100", "V100"), ("T4", "T4"))
PEAK_PRECISIONS = ("bf16", "fp16", "tf32", "fp32")  # the columns of PEAK_FLOPS


def peak_flops(device=None, precision: str = "bf16") -> float | None:
    """The device's dense peak FLOP/s for ``precision`` (bf16, fp16, tf32, fp32); None for a CPU or an unknown GPU."""
    check_choice("precision", precision, PEAK_PRECISIONS)
    device = pick_device(device)
    if device.type != "cuda":
        return None
    return peak_for_name(torch.cuda.get_device_name(device), precision)


def peak_for_name(name: str, precision: str) -> float | None:
    """The peak of a GPU by its name as CUDA reports it ("NVIDIA H100 80GB HBM3"); None when not in the table."""
    check_type("name", name, str, 'the GPU\'s name as CUDA reports it (e.g. "NVIDIA H100 80GB HBM3")')
    check_choice("precision", precision, PEAK_PRECISIONS)
    for fragment, key in _NAMES:  # "H100 PCIe" before "H100": the first match wins
        if fragment in name:
            return PEAK_FLOPS[key].get(precision)
    return None


def synchronize(device: torch.device) -> None:
    """Wait for the GPU's queued work: a GPU runs asynchronously, so a clock read without this measures the launch."""
    if not isinstance(device, torch.device):
        device = pick_device(device)  # "cuda", "cpu" or None (auto), as everywhere else
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class PeakMemory:
    """The most memory the GPU's tensors held from the moment this is made: ``PeakMemory(device).mb``, None on a CPU.

    Made, it resets torch's peak counter of the device; ``mb`` reads it in MiB.
    With ``above_now=True`` it counts only what came on top of the memory
    already held when it was made (what one of several contenders in a
    process needs).  torch keeps one counter per device, so one measurement
    at a time.
    """

    def __init__(self, device=None, *, above_now: bool = False):
        check_type("above_now", above_now, bool, "True or False")
        self.device = pick_device(device)
        self.baseline = 0
        if self.device.type == "cuda":
            torch.cuda.init()  # an indexed device's counters raise "Invalid device argument" before CUDA is initialised
            torch.cuda.reset_peak_memory_stats(self.device)
            self.baseline = torch.cuda.memory_allocated(self.device) if above_now else 0

    @property
    def mb(self) -> float | None:
        if self.device.type != "cuda":
            return None
        return (torch.cuda.max_memory_allocated(self.device) - self.baseline) / 2**20


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median of the repetitions, and their lowest and highest value."""

    median: float
    low: float
    high: float
    samples: tuple[float, ...]

    def __post_init__(self) -> None:
        seconds = "a finite number of seconds >= 0"
        for name in ("median", "low", "high"):
            check_number(name, getattr(self, name), seconds, lambda v: 0 <= v < math.inf)
        if not self.low <= self.median <= self.high:
            raise ValueError(f"low <= median <= high must hold (the lowest, middle and highest time), got low={self.low}, "
                             f"median={self.median}, high={self.high}: Timing.of(samples) computes them")
        check_type("samples", self.samples, tuple, "a tuple of the measured seconds")
        if not self.samples:
            raise ValueError("samples is empty: a Timing needs at least one measured time")
        for i, value in enumerate(self.samples):
            check_number(f"samples[{i}]", value, f"in [low, high] = [{self.low}, {self.high}]",
                         lambda v: self.low <= v <= self.high)

    @classmethod
    def of(cls, samples) -> "Timing":
        """The median, lowest and highest of measured seconds (each a finite number >= 0)."""
        if isinstance(samples, (str, bytes)) or not isinstance(samples, Iterable):
            raise TypeError(f"samples must be a list of measured seconds, got {shown(samples)}")
        samples = list(samples)
        if not samples:
            raise ValueError("Timing.of needs at least one measured time")
        samples = [check_number(f"samples[{i}]", seconds, "a finite number of seconds >= 0", lambda v: 0 <= v < math.inf)
                   for i, seconds in enumerate(samples)]
        return cls(statistics.median(samples), min(samples), max(samples), tuple(samples))

    @property
    def spread(self) -> float:
        """(high - low) / median: the relative range of the repetitions."""
        return (self.high - self.low) / self.median if self.median else math.nan


def time_it(fn: Callable[[], object], *, warmup: int = 2, repeats: int = 7, number: int = 1, device=None) -> Timing:
    """Seconds per call of ``fn``: ``warmup`` calls untimed, then ``repeats`` timings of ``number`` calls each.

    Each timing is :func:`elapsed` (CUDA events on a GPU), so queued work is
    counted; the first calls (allocation, compilation, autotuning) are left out.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    check_int("warmup", warmup, 0, unit="calls")
    check_int("repeats", repeats, 1, unit="timings")
    check_int("number", number, 1, unit="calls per timing")
    device = pick_device(device)
    for _ in range(warmup):
        fn()

    def calls():
        for _ in range(number):
            fn()

    return Timing.of(elapsed(calls, device) / number for _ in range(repeats))


def elapsed(fn: Callable[[], object], device=None) -> float:
    """Seconds ``fn()`` takes, the GPU work it queues included: CUDA events on a GPU, the host's clock on a CPU.

    On a GPU the queue is emptied first, then two events recorded around
    ``fn`` on the current stream are timed by the GPU's own clock (what
    ``torch.cuda.Event(enable_timing=True)`` is for), once the second has run.
    """
    if not callable(fn):
        raise TypeError(f"fn must be a function of no arguments, got {type(fn).__name__}")
    device = pick_device(device)
    if device.type != "cuda":
        began = time.perf_counter()
        fn()
        return time.perf_counter() - began
    synchronize(device)
    with torch.cuda.device(device):  # the events go on this GPU's current stream, whichever GPU is current
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
    end.synchronize()
    return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds


def interleaved(runs: Mapping[str, Callable[[], object]], rounds: int, device=None) -> dict[str, list[float]]:
    """Seconds of each ``runs[name]()`` (:func:`elapsed`), ``rounds`` times, the order turning by one each round.

    Contenders timed in turns share whatever drifts while they run (a GPU
    warming up, a neighbour's load), so their ratios are fair where back-to-back
    blocks would not be.
    """
    check_type("runs", runs, Mapping, "a dict {name: function of no arguments}")
    check_int("rounds", rounds, 1, unit="rounds")
    names, seconds = list(runs), {name: [] for name in runs}
    for r in range(rounds * bool(names)):
        for name in names[r % len(names):] + names[:r % len(names)]:
            seconds[name].append(elapsed(runs[name], device))
    return seconds


def mfu(tokens_per_s: float, flops_per_token: float, peak: float | None) -> float | None:
    """Model FLOPs utilisation: the FLOP/s the model's arithmetic needs at this speed, over the device's peak."""
    if peak is None:
        return None
    for name, value in (("tokens_per_s", tokens_per_s), ("flops_per_token", flops_per_token), ("peak", peak)):
        check_number(name, value, "> 0 and finite", lambda v: 0 < v < math.inf)
    return tokens_per_s * flops_per_token / peak


def fused_adamw(params, lr: float, **kwargs) -> torch.optim.AdamW:
    """AdamW with one fused kernel for the whole update where the parameters are on a GPU, else the default (foreach)."""
    if isinstance(params, (torch.nn.Module, torch.Tensor)) or not isinstance(params, Iterable):
        raise TypeError(f"params must be model.parameters() or a list of parameter groups, got {shown(params)}")
    check_number("lr", lr, "a finite number >= 0", lambda v: 0 <= v < math.inf)
    params = [dict(item, params=_parameter_list(f"params[{i}]['params']", item.get("params"))) if isinstance(item, dict)
              else item for i, item in enumerate(params)]
    tensors = [p for item in params for p in (item["params"] if isinstance(item, dict) else [item])]
    if not tensors:
        raise ValueError("params is empty (no group holds a parameter): pass model.parameters() of a model that has parameters")
    for item in tensors:
        check_type("params", item, torch.Tensor, "model.parameters() or a list of parameter groups {'params': [...], ...}")
    fused = tensors[0].device.type == "cuda"
    return torch.optim.AdamW(params, lr=lr, fused=fused or None, **kwargs)


def _parameter_list(name: str, params) -> list:
    """A parameter group's ``params`` as a list (torch takes one tensor or an iterable of them)."""
    if isinstance(params, torch.Tensor):
        return [params]
    if isinstance(params, (str, bytes, torch.nn.Module)) or not isinstance(params, Iterable):
        raise TypeError(f"{name} must be a tensor or an iterable of tensors, got {shown(params)}")
    return list(params)


def enable_tf32(enabled: bool = True) -> None:
    """Let fp32 matrix multiplies and convolutions use TF32 tensor cores (Ampere and newer): 10-bit mantissa products."""
    check_type("enabled", enabled, bool, "True or False")
    torch.backends.cuda.matmul.allow_tf32 = enabled
    torch.backends.cudnn.allow_tf32 = enabled


def timed_run(model, optimizer, data, loss_fn, **start_kwargs) -> Run:
    """A run of the course's loop set up once for timing (:func:`~course_lib.engine.training.start`); time its ``advance(n)``.

    Each ``advance`` goes on where the last stopped (weights, GradScaler,
    history, data position); the argument checks, the device move and
    ``on_train_begin`` are done once, here, not in the timings.
    ``start_kwargs`` go to ``start``; ``log_every`` defaults to no read-back
    inside a call, only the one that ends each call.
    """
    start_kwargs.setdefault("log_every", sys.maxsize)
    return start(model, optimizer, data, loss_fn, **start_kwargs)


def loop_steps(model, optimizer, data, loss_fn, **start_kwargs) -> Callable[[int], History]:
    """``run(n)``: ``n`` more optimizer steps of a :func:`timed_run`, what the benchmarks call between two synchronisations."""
    return timed_run(model, optimizer, data, loss_fn, **start_kwargs).advance


class _TokenCount(Callback):
    """Tokens of the micro-batches the loop trains on, counted from their shapes at each step's start (no synchronisation)."""

    def __init__(self, tokens: Callable):
        self.tokens, self.total = tokens, 0

    def on_step_begin(self, state) -> None:
        self.total += sum(tokens_of(self.tokens, batch) for batch in state.batches)


def train_speed(model, optimizer, data, loss_fn, *, steps: int = 10, warmup: int = 3, rounds: int = 3,
                precision: str = "fp32", accumulate: int = 1, device=None, flops_per_token: float | None = None,
                tokens: Callable | None = None) -> dict:
    """Speed of the course's training loop on ``model``: ms per optimizer step, tokens/s, peak memory, MFU.

    One :func:`timed_run` of the loop takes ``warmup`` steps
    (untimed), then :func:`time_it` times ``rounds`` calls of ``steps`` steps,
    each as a whole between two synchronisations (no per-step synchronisation:
    whatever the loop itself reads back is part of what is measured).
    ``data`` is what :func:`~course_lib.engine.training.train` takes: a
    function of the micro-batch index, a DataLoader or an iterable of batches.
    ``tokens(batch)`` counts the tokens a micro-batch trains on (default
    :func:`~course_lib.engine.data.count_tokens`: B·T predictions for
    (B, T + 1) language-model blocks); ``tokens_per_step`` is their mean over
    the timed steps.  The MFU is against the peak of ``precision`` (fp32:
    TF32's when TF32 is allowed; none for fp64).  The run is finished at the
    end (the weights checked, ``on_train_end`` called).
    """
    check_int("steps", steps, 1)
    check_int("warmup", warmup, 0)
    check_int("rounds", rounds, 1, unit="timed rounds")
    check_choice("precision", precision, PRECISIONS)
    if flops_per_token is not None:
        check_number("flops_per_token", flops_per_token, "None or a finite number > 0", lambda v: 0 < v < math.inf)
    if tokens is not None and not callable(tokens):
        raise TypeError(f"tokens must be a function (batch) -> number of tokens, or None, got {shown(tokens)}")
    device = pick_device(device)
    counter = _TokenCount(tokens or count_tokens)
    run = timed_run(model, optimizer, data, loss_fn, precision=precision, accumulate=accumulate, device=device,
                    callbacks=[counter])
    run.advance(warmup)
    peak = PeakMemory(device)
    counter.total = 0
    per_call = time_it(lambda: run.advance(steps), warmup=0, repeats=rounds, device=device)
    timing = Timing.of(seconds / steps for seconds in per_call.samples)
    tokens_per_step = counter.total / (rounds * steps)
    tokens_per_step = int(tokens_per_step) if tokens_per_step.is_integer() else tokens_per_step
    tokens_per_s = tokens_per_step / timing.median
    fp32_kind = "tf32" if torch.backends.cuda.matmul.allow_tf32 else "fp32"  # TF32 multiplies run at the tensor cores' rate
    flops_peak = None if precision == "fp64" else peak_flops(device, fp32_kind if precision == "fp32" else precision)
    memory = peak.mb
    run.finish()
    if flops_per_token and not tokens_per_step:
        raise ValueError("no token was counted in the timed steps' batches, so there is no MFU: pass tokens=function(batch) "
                         "-> number of tokens (the counter gave 0 for every batch)")
    return {
        "ms_per_step": 1e3 * timing.median,
        "ms_low": 1e3 * timing.low,
        "ms_high": 1e3 * timing.high,
        "tokens_per_step": tokens_per_step,
        "tokens_per_s": tokens_per_s,
        "peak_memory_mb": memory,
        "mfu": mfu(tokens_per_s, flops_per_token, flops_peak) if flops_per_token else None,
    }
