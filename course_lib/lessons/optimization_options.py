"""Lesson 05's measurements: each optimization option of pretraining, timed on the machine that runs it.

Every function returns plain numbers (JSON-ready) measured with
:mod:`course_lib.engine.timing`.  The lesson runs the small CPU configuration live;
``python -m course_lib.lessons.optimization_options --config gpu`` runs the larger
one on a GPU and stores it in ``course_lib/lessons/results/lesson05_gpu.json`` with its
provenance.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course_lib.engine._checks import check_choice, check_int, check_number, check_type
from course_lib.engine.callbacks import evaluate
from course_lib.engine.data import default_dtype, pick_device
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.stats import curve_agreement
from course_lib.engine.timing import PeakMemory, enable_tf32, fused_adamw, peak_for_name, synchronize, time_it, train_speed
from course_lib.engine.training import PRECISIONS, train, weight_dtype
from course_lib.lessons import stored
from course_lib.lessons.corpus import TokenWindows, encode_texts, held_out_blocks, pretraining_texts
from course_lib.models.fast_step import ABLATIONS, FAST, PLAIN, SPEED_OPTIONS, StepOptions, build
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss, naive_attention

__all__ = ["Config", "CONFIGS", "batch_sizes", "vocabulary_sizes", "memory_per_parameter", "precisions", "accumulation",
           "contiguity", "pinned_copies", "attention_lengths", "compiled", "optimizers", "weight_tying", "cost_terms", "cumulative_days",
           "run_all", "load_results", "main", "loss_curves", "load_benchmark", "headline", "matmul_rate"]


# What ``precisions`` may time: the training loop's precisions, and tf32 (its fp32 with TF32 multiplies allowed).
LOOP_PRECISIONS = ("tf32", *PRECISIONS)


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
    results = {}
    for name, fn in (("batch_sizes", batch_sizes), ("vocabulary_sizes", vocabulary_sizes), ("precisions", precisions),
                     ("accumulation", accumulation), ("attention_lengths", attention_lengths), ("optimizers", optimizers),
                     ("compiled", compiled), ("weight_tying", weight_tying)):
        progress(f"{config.name}: {name}")
        results[name] = fn(config, device)
    results["contiguity"] = contiguity(device, 8192 if device.type == "cuda" else 2048)
    results["pinned_copies"] = pinned_copies(device)
    return {
        "config": dataclasses.asdict(config),
        "provenance": stored.provenance(device, f"python -m course_lib.lessons.optimization_options --config {config.name}"),
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
    """The stored results (``course_lib/lessons/results/lesson05_<name>.json``), checked against :data:`CONFIGS` and :data:`RESULTS`."""
    config = stored.configuration(CONFIGS, name)
    return stored.load("05", name, f"python -m {__name__} --config {name}", {"config": config}, RESULTS)


def main(argv=None) -> None:
    stored.main(argv, lesson="05", description="Measure lesson 05's optimization options and store the results as JSON.",
                configs=CONFIGS, run_all=run_all)


if __name__ == "__main__":
    main()


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


def load_benchmark() -> dict:
    """The stored benchmark (``course_lib/lessons/results/lesson05_nanogpt.json``), refused if it was measured for another fast step."""
    command = "python benchmarks/nanogpt_vs_course.py --nanogpt PATH"
    results = stored.load("05", "nanogpt", command, schema=BENCHMARK)
    file = stored.path("05", "nanogpt")
    for part, where in stored.require(results, ["provenance"], f"a file written by `{command}`").items():
        step = where.get("step") if isinstance(where, dict) else None
        if not isinstance(step, dict) or stored.as_stored(FAST, step) != step or (
                part == "ablation" and set(results["ablation"]["changes"]) != set(ABLATIONS)):
            raise ValueError(f"{file} ({part}) was measured for another fast step than course_lib.models.fast_step.FAST: re-run "
                             "benchmarks/nanogpt_vs_course.py")
    return results


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
