"""The course's fast GPT-2 training step: every option of lesson 05 at once, in the one training loop.

:class:`Step` names each option as a field, so that an ablation removes one
at a time (:data:`ABLATIONS`); :func:`build` turns a ``Step`` into what
:func:`course_lib.engine.training.train` takes (model, optimizer, schedule, loss,
data).  ``benchmarks/nanogpt_vs_course.py`` times it beside nanoGPT's loop;
:func:`loss_curves` checks that the fast step learns as the plain fp32 step
does, on real text.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Callable

import torch

from course_lib.engine._checks import check_int, check_type
from course_lib.engine.timing import peak_flops
from course_lib.engine.data import pick_device
from course_lib.engine.freezing import param_groups
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup

__all__ = ["Step", "SPEED_OPTIONS", "FAST", "PLAIN", "ABLATIONS", "ATTENTION", "Built", "build", "synthetic_batches", "loss_curves",
           "curve_agreement", "load_results", "headline", "matmul_rate"]

ATTENTION = ("cudnn", "flash", "auto", "naive")


@dataclass(frozen=True)
class Step:
    """One way to run GPT-2's training step.  The defaults are the fast step; :data:`PLAIN` turns every option off.

    ``micro_batch`` sequences of ``block_size`` tokens per forward pass,
    ``accumulate`` of them per optimizer step.  ``compile``: the loss
    function (model and cross-entropy in one graph) through
    ``torch.compile``; ``cuda_graphs``: its ``"reduce-overhead"`` mode,
    which replays the kernels as CUDA graphs.  ``attention``: the backend of
    ``scaled_dot_product_attention`` (cuDNN's or FlashAttention-2's kernel,
    PyTorch's own choice, or the formula written out).
    """

    micro_batch: int = 12
    accumulate: int = 1
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    vocab_size: int = 50304  # GPT-2's 50,257 padded up to a multiple of 64
    bias: bool = False  # as nanoGPT's benchmark
    precision: str = "bf16"
    tf32: bool = True
    compile: bool = True
    cuda_graphs: bool = True
    autotune: bool = False
    fused_optimizer: bool = True
    attention: str = "cudnn"
    pinned: bool = True
    clip: float | None = 1.0
    lr: float = 6e-4
    weight_decay: float = 0.1
    log_every: int = 10

    def __post_init__(self) -> None:
        for name in ("micro_batch", "accumulate", "log_every"):
            check_int(name, getattr(self, name), 1)
        if self.attention not in ATTENTION:
            raise ValueError(f"attention must be one of {ATTENTION}, got {self.attention!r}")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be 'fp32' or 'bf16', got {self.precision!r}")
        if (self.cuda_graphs or self.autotune) and not self.compile:
            raise ValueError("cuda_graphs and autotune need compile=True: they are modes of torch.compile")
        for name in ("tf32", "compile", "cuda_graphs", "autotune", "fused_optimizer", "pinned", "bias"):
            check_type(name, getattr(self, name), bool, "True or False")

    def gpt(self) -> GPTConfig:
        return GPTConfig(vocab_size=self.vocab_size, block_size=self.block_size, n_layer=self.n_layer, n_head=self.n_head,
                         n_embd=self.n_embd, bias=self.bias, attention="naive" if self.attention == "naive" else "sdpa")

    @property
    def compile_mode(self) -> str | None:
        """torch.compile's mode: CUDA graphs ("reduce-overhead"), autotuned kernels ("max-autotune...") or the default."""
        if self.autotune:
            return "max-autotune" if self.cuda_graphs else "max-autotune-no-cudagraphs"
        return "reduce-overhead" if self.cuda_graphs else None

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.accumulate * self.block_size


SPEED_OPTIONS = ("precision", "tf32", "compile", "cuda_graphs", "autotune", "fused_optimizer", "attention", "pinned")
FAST = Step()
PLAIN = Step(precision="fp32", tf32=False, compile=False, cuda_graphs=False, fused_optimizer=False, attention="auto", pinned=False)

# One option removed at a time (the ablation of the benchmark): id -> the change to the fast step.
# Their names in the reader's language are course_lib.i18n's "ablation_<id>".
ABLATIONS: dict[str, dict] = {
    "fast": {},
    "fp32": {"precision": "fp32", "attention": "auto"},  # TF32 matrix multiplies; cuDNN's attention has no fp32 kernel
    "no_compile": {"compile": False, "cuda_graphs": False},
    "no_cuda_graphs": {"cuda_graphs": False},
    "foreach_adamw": {"fused_optimizer": False},
    "vocab_50257": {"vocab_size": 50257},
    "flash_attention": {"attention": "flash"},
    "naive_attention": {"attention": "naive"},
    "pageable": {"pinned": False},
}


@dataclass
class Built:
    """What :func:`course_lib.engine.training.train` takes for a :class:`Step`, and the numbers for MFU."""

    step: Step
    model: GPT
    optimizer: torch.optim.Optimizer
    scheduler: ScheduledLR
    loss_fn: Callable
    data: Callable[[int], torch.Tensor]
    flops_per_token: float
    peak_flops: float | None

    def train_kwargs(self) -> dict:
        return dict(scheduler=self.scheduler, clip=self.step.clip, accumulate=self.step.accumulate,
                    precision=self.step.precision, log_every=self.step.log_every)


def synthetic_batches(vocab_size: int, micro_batch: int, block_size: int, *, pinned: bool, pool: int = 8,
                      seed: int = 0) -> Callable[[int], torch.Tensor]:
    """Micro-batch ``m``: one of ``pool`` random token blocks (batch, T + 1), made once, in pinned memory if asked."""
    generator = torch.Generator().manual_seed(seed)
    blocks = [torch.randint(0, vocab_size, (micro_batch, block_size + 1), generator=generator) for _ in range(pool)]
    if pinned and torch.cuda.is_available():
        blocks = [b.pin_memory() for b in blocks]
    return lambda m: blocks[m % pool]


def _attention_backend(loss_fn: Callable, attention: str) -> Callable:
    """``loss_fn`` with scaled_dot_product_attention limited to one backend (the choice is made when it is compiled)."""
    if attention in ("auto", "naive"):
        return loss_fn
    from torch.nn.attention import SDPBackend, sdpa_kernel

    backend = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION}[attention]

    def loss(model, batch):
        with sdpa_kernel([backend]):
            return loss_fn(model, batch)

    return loss


def build(step: Step = FAST, device=None, *, data: Callable[[int], torch.Tensor] | None = None, seed: int = 0,
          schedule_steps: int = 600_000, warmup_steps: int = 2000) -> Built:
    """The model, AdamW (decay on matrices only, as GPT-2 and nanoGPT), cosine schedule, loss and data of ``step``.

    Sets torch's TF32 switches as ``step.tf32`` says (they are global).

    ``data`` defaults to synthetic tokens (speed does not depend on what they
    say).  cuDNN attention and pinned memory need a GPU: on a CPU the step
    falls back to PyTorch's own attention choice and pageable memory.
    """
    check_type("step", step, Step, "a course_lib.models.fast_step.Step")
    device = pick_device(device)
    cuda = device.type == "cuda"
    torch.backends.cuda.matmul.allow_tf32 = step.tf32
    torch.backends.cudnn.allow_tf32 = step.tf32
    torch.manual_seed(seed)
    config = step.gpt()
    model = GPT(config).to(device)
    optimizer = torch.optim.AdamW(param_groups(model, step.weight_decay), lr=step.lr, betas=(0.9, 0.95), fused=step.fused_optimizer or None,
                                  foreach=None if step.fused_optimizer else True)
    scheduler = ScheduledLR(optimizer, cosine_with_warmup(warmup_steps, schedule_steps, min_lr_ratio=0.1))
    loss_fn = lm_loss
    if step.compile:
        loss_fn = torch.compile(lm_loss, mode=step.compile_mode, dynamic=False)
    loss_fn = _attention_backend(loss_fn, step.attention if cuda else "auto")
    if data is None:
        data = synthetic_batches(min(50257, step.vocab_size), step.micro_batch, step.block_size, pinned=step.pinned and cuda,
                                 seed=seed)
    peak = peak_flops(device, "bf16" if step.precision == "bf16" else ("tf32" if step.tf32 else "fp32"))
    return Built(step, model, optimizer, scheduler, loss_fn, data, flops_per_token(config), peak)


def curve_agreement(reference: list[float], other: list[float], window: int = 20) -> dict:
    """How far ``other``'s loss curve is from ``reference``'s: relative gaps of their ``window``-step moving averages.

    Returns the largest gap over the run (``max_gap``, after the first window)
    and the gap of the last window's means (``final_gap``).
    """
    check_int("window", window, 1)
    if len(reference) != len(other) or len(reference) < window:
        raise ValueError(f"the curves must have the same length, at least window={window}: got {len(reference)} and {len(other)}")
    ref, oth = torch.tensor(reference, dtype=torch.float64), torch.tensor(other, dtype=torch.float64)
    kernel = torch.ones(1, 1, window, dtype=torch.float64) / window
    smooth = lambda x: torch.nn.functional.conv1d(x.view(1, 1, -1), kernel).view(-1)
    gaps = (smooth(oth) - smooth(ref)).abs() / smooth(ref)
    return {"window": window, "max_gap": float(gaps.max()), "final_gap": float(gaps[-1]),
            "reference_final": float(smooth(ref)[-1]), "other_final": float(smooth(oth)[-1])}


def loss_curves(steps: int = 300, *, fast: Step = FAST, plain: Step = PLAIN, device=None, seed: int = 0,
                vocab: int = 8192, progress=None) -> dict:
    """Train the same GPT-2 from the same weights on the same real text, batch by batch, with ``plain`` and ``fast``.

    Only the speed options (:data:`SPEED_OPTIONS`) come from ``plain``; sizes, batches and rates are ``fast``'s.

    The text is lesson 04's (the Rotten Tomatoes snippets), tokenized by a
    byte-level BPE of ``vocab`` tokens; the model keeps ``fast``'s sizes.
    Returns both loss curves and :func:`curve_agreement`.
    """
    from course_lib.lessons.corpus import TokenWindows, encode_texts, pretraining_texts
    from course_lib.engine.training import train

    check_int("steps", steps, 1)
    device = pick_device(device)
    _, ids = encode_texts(pretraining_texts(), vocab)
    windows = TokenWindows(ids, fast.micro_batch, fast.block_size, seed)
    curves = {}
    for name, step in (("plain", plain), ("fast", fast)):
        step = dataclasses.replace(fast, **{f: getattr(step, f) for f in SPEED_OPTIONS})  # same model, batches, rates
        pinned = step.pinned and device.type == "cuda"
        built = build(step, device, data=(lambda m: windows(m).pin_memory()) if pinned else windows, seed=seed,
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


def load_results() -> dict:
    """The stored benchmark (``course_lib/results/lesson05_nanogpt.json``), refused if it was measured for another fast step."""
    from course_lib.lessons import stored

    file = stored.path("05", "nanogpt")
    if not file.exists():
        raise FileNotFoundError(f"{file} is missing: run `python benchmarks/nanogpt_vs_course.py --nanogpt PATH` on a GPU")
    results = json.loads(file.read_text(encoding="utf-8"))
    expected = json.loads(json.dumps(dataclasses.asdict(FAST)))
    for part, where in results["provenance"].items():
        if where.get("step") != expected or (part == "ablation" and set(results["ablation"]["changes"]) != set(ABLATIONS)):
            raise ValueError(f"{file} ({part}) was measured for another fast step than course_lib.models.fast_step.FAST: re-run "
                             "benchmarks/nanogpt_vs_course.py")
    return results


def headline(results: dict) -> dict:
    """The numbers the lesson states: the ratio at each micro-batch, each side's best micro-batch, the loss-curve gap."""
    rows = results["comparison"]["rows"]
    nano = [r for r in rows if r["group"] == "nanoGPT"]
    ours = [r for r in rows if r["group"] == "course"]
    best_nano, best_ours = max(nano, key=lambda r: r["tokens_per_s"]), max(ours, key=lambda r: r["tokens_per_s"])
    ratios = {r["micro_batch"]: r["vs_nanogpt"] for r in ours}
    return {"ratios": ratios, "best_nanogpt": best_nano, "best_course": best_ours,
            "best_ratio": best_ours["tokens_per_s"] / best_nano["tokens_per_s"], "loss": results["loss"]["agreement"]}


def matmul_rate(results: dict) -> tuple[float, float | None]:
    """The profiled step's matrix multiplies: FLOP/s (6N per token over their kernel time) and the share of the GPU's bf16 peak."""
    from course_lib.engine.timing import peak_for_name

    config = FAST.gpt()
    profile = results["profile"]
    per_token = flops_per_token(config) - 12 * config.n_layer * config.n_embd * config.block_size  # 6N: no attention
    rate = per_token * profile["micro_batch"] * config.block_size / (profile["by_kind"]["matmul"] / 1e3)
    peak = peak_for_name(results["provenance"]["profile"]["device"], "bf16")
    return rate, (rate / peak if peak else None)
