"""The course's fast GPT-2 training step: every option of lesson 05 at once, in the one training loop.

:class:`StepOptions` names each option as a field, so that an ablation removes
one at a time (:data:`ABLATIONS`); :func:`build` turns them into what
:func:`course_lib.engine.training.train` takes (model, optimizer, schedule, loss,
data).  ``benchmarks/nanogpt_vs_course.py`` times it beside nanoGPT's loop;
lesson 05's :func:`~course_lib.lessons.optimization_options.loss_curves`
checks that the fast step learns as the plain fp32 step does, on real text.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import warnings
from dataclasses import dataclass
from typing import Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown
from course_lib.engine.data import pick_device
from course_lib.engine.freezing import param_groups
from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
from course_lib.engine.timing import peak_flops
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss

__all__ = ["StepOptions", "GPT2_SMALL", "SPEED_OPTIONS", "FAST", "FIRST_ROUND", "PLAIN", "ABLATIONS", "ATTENTION_KERNELS", "CROSS_ENTROPY",
           "LEVERS", "unavailable", "Built", "build", "fused_cross_entropy",
           "synthetic_batches", "RUNGS", "ALTERNATIVES", "GPU_ONLY", "staircase", "alternatives", "padded"]

# scaled_dot_product_attention's back-end (one of them, or PyTorch's own choice "auto"), or the formula written out ("naive")
ATTENTION_KERNELS = ("cudnn", "flash", "efficient", "math", "auto", "naive")
_BACKENDS = {"cudnn": SDPBackend.CUDNN_ATTENTION, "flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "math": SDPBackend.MATH}

# The loss: cross-entropy over the logits the output layer writes ("logits"), or a kernel that fuses the output
# layer's multiply with the cross-entropy and never holds the (batch, T, vocab) logits: Liger Kernel's fused
# linear cross-entropy or Apple's cut cross-entropy.  Both are Triton kernels: a CUDA GPU and the extra
# course_lib[fast] (pip install "course_lib[fast]"), never needed by the CPU lessons.
CROSS_ENTROPY = {"logits": None, "liger": "liger_kernel", "cce": "cut_cross_entropy"}

GPT2_SMALL = GPTConfig(vocab_size=50304, bias=False)  # GPT-2's 50,257 tokens padded to a multiple of 64; no biases, as nanoGPT's benchmark


@dataclass(frozen=True)
class StepOptions:
    """One way to run GPT-2's training step.  :data:`FAST` turns every option that pays on; :data:`PLAIN` turns every one off.

    ``model`` holds the GPT's sizes (one :class:`~course_lib.models.gpt.GPTConfig`);
    ``micro_batch`` sequences of ``model.block_size`` tokens per forward
    pass, ``accumulate`` of them per optimizer step.  ``compile``: the loss
    function (model and cross-entropy in one graph) through
    ``torch.compile``; ``cuda_graphs``: its ``"reduce-overhead"`` mode,
    which replays the kernels as CUDA graphs.  ``attention_kernel``: the
    back-end of ``scaled_dot_product_attention`` (cuDNN's, FlashAttention-2's,
    the memory-efficient one, the math one, or PyTorch's own choice
    ``"auto"``) or ``"naive"``, the formula written out (the model's
    ``attention="naive"``).  ``precision="fp16"`` trains with a GradScaler
    (the loop's), for GPUs without bf16.

    The levers of the second round (issue 27), each measured before it was
    made a default: ``cross_entropy`` (:data:`CROSS_ENTROPY`: the logits, or
    a fused output layer and cross-entropy that never writes them);
    ``clip_in_step``: clipping's multiply folded into fused AdamW's kernel
    (:func:`~course_lib.engine.clipping.clip_in_step_`);
    ``coordinate_descent``: Inductor's coordinate-descent tuning of the
    block sizes of the kernels it generates.
    """

    model: GPTConfig = GPT2_SMALL
    micro_batch: int = 12
    accumulate: int = 1
    precision: str = "bf16"
    tf32: bool = True
    compile: bool = True
    cuda_graphs: bool = True
    autotune: bool = False
    fused_optimizer: bool = True
    attention_kernel: str = "cudnn"
    pinned: bool = True
    clip: float | None = 1.0
    cross_entropy: str = "logits"
    clip_in_step: bool = False
    coordinate_descent: bool = False
    lr: float = 6e-4
    weight_decay: float = 0.1
    log_every: int = 10

    def __post_init__(self) -> None:
        check_type("model", self.model, GPTConfig, "a course_lib.models.gpt.GPTConfig")
        if self.model.attention != "sdpa":
            raise ValueError("model.attention must stay 'sdpa': choose the formula written out with attention_kernel='naive'")
        check_int("micro_batch", self.micro_batch, 1, unit="sequences per forward pass")
        check_int("accumulate", self.accumulate, 1, unit="micro-batches per optimizer step")
        check_int("log_every", self.log_every, 1)
        check_choice("attention_kernel", self.attention_kernel, ATTENTION_KERNELS)
        check_choice("precision", self.precision, ("fp32", "bf16", "fp16"))
        check_choice("cross_entropy", self.cross_entropy, tuple(CROSS_ENTROPY))
        for name in ("tf32", "compile", "cuda_graphs", "autotune", "fused_optimizer", "pinned", "clip_in_step", "coordinate_descent"):
            check_type(name, getattr(self, name), bool, "True or False")
        if (self.cuda_graphs or self.autotune) and not self.compile:
            raise ValueError("cuda_graphs and autotune need compile=True: they are modes of torch.compile")
        if self.cuda_graphs and self.accumulate > 1:  # measured on an H100 with torch 2.11 (lesson 05's staircase)
            raise ValueError("cuda_graphs=True cannot accumulate gradients (accumulate > 1): the backward graph's replay "
                             "overwrites the gradients of the micro-batch before (pytorch/pytorch#169545); use "
                             "cuda_graphs=False with accumulate > 1")
        if self.clip_in_step and not self.fused_optimizer:
            raise ValueError("clip_in_step=True folds clipping into fused AdamW's step: it needs fused_optimizer=True")
        if self.coordinate_descent and not self.compile:
            raise ValueError("coordinate_descent tunes the kernels torch.compile generates: it needs compile=True")
        check_number("lr", self.lr, "> 0 and finite", lambda v: 0 < v < math.inf)
        check_number("weight_decay", self.weight_decay, ">= 0 and finite", lambda v: 0 <= v < math.inf)
        if self.clip is not None:
            check_number("clip", self.clip, "> 0 (or None: no clipping)", lambda v: v > 0)

    def gpt(self) -> GPTConfig:
        """The model this step trains: ``model``, with the formula written out when ``attention_kernel="naive"``."""
        return dataclasses.replace(self.model, attention="naive") if self.attention_kernel == "naive" else self.model

    @property
    def compile_mode(self) -> str | None:
        """torch.compile's mode: CUDA graphs ("reduce-overhead"), autotuned kernels ("max-autotune...") or the default."""
        if self.autotune:
            return "max-autotune" if self.cuda_graphs else "max-autotune-no-cudagraphs"
        return "reduce-overhead" if self.cuda_graphs else None

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.accumulate * self.model.block_size


SPEED_OPTIONS = ("precision", "tf32", "compile", "cuda_graphs", "autotune", "fused_optimizer", "attention_kernel", "pinned",
                 "cross_entropy", "clip_in_step", "coordinate_descent")
# The levers of issue 27's round, each a change to the first round's step: timed side by side in lesson05_levers.json.
LEVERS: dict[str, dict] = {
    "clip_in_step": {"clip_in_step": True},
    "liger": {"cross_entropy": "liger"},
    "cce": {"cross_entropy": "cce"},
    "coordinate_descent": {"coordinate_descent": True},
}
FAST = StepOptions(clip_in_step=True)  # the fields added later default to the steps stored before them (stored.as_stored)
# The fast step of the first round, before issue 27's levers (clipping inside the optimizer's step is the one that
# paid): the stored staircase, the stored nanoGPT comparison and the levers' study measured this step.
FIRST_ROUND = dataclasses.replace(FAST, clip_in_step=False)
PLAIN = StepOptions(precision="fp32", tf32=False, compile=False, cuda_graphs=False, fused_optimizer=False, attention_kernel="auto",
                    pinned=False)

# One option removed at a time (the ablation of the benchmark): id -> the change to the fast step.
# Their names in the reader's language are course_lib.i18n's "ablation_<id>".
ABLATIONS: dict[str, dict] = {
    "fast": {},
    "fp32": {"precision": "fp32", "attention_kernel": "auto"},  # TF32 matrix multiplies; cuDNN's attention has no fp32 kernel
    "no_compile": {"compile": False, "cuda_graphs": False},
    "no_cuda_graphs": {"cuda_graphs": False},
    "foreach_adamw": {"fused_optimizer": False, "clip_in_step": False},  # clipping in the step needs the fused kernel
    "vocab_50257": {"model": dataclasses.replace(GPT2_SMALL, vocab_size=50257)},
    "flash_attention": {"attention_kernel": "flash"},
    "naive_attention": {"attention_kernel": "naive"},
    "pageable": {"pinned": False},
    "clip_after_step": {"clip_in_step": False},  # clipping's own pass over the gradients, before the optimizer's
}


@dataclass
class Built:
    """What :func:`course_lib.engine.training.train` takes for a :class:`StepOptions`, and the numbers for MFU."""

    options: StepOptions
    model: GPT
    optimizer: torch.optim.Optimizer
    scheduler: ScheduledLR
    loss_fn: Callable
    data: Callable[[int], torch.Tensor]
    flops_per_token: float
    peak_flops: float | None

    def train_kwargs(self) -> dict:
        return dict(scheduler=self.scheduler, clip=self.options.clip, accumulate=self.options.accumulate,
                    precision=self.options.precision, log_every=self.options.log_every,
                    clip_in_step=self.options.clip_in_step and self.options.clip is not None)


def synthetic_batches(vocab_size: int, micro_batch: int, block_size: int, *, pinned: bool, pool: int = 8,
                      seed: int = 0) -> Callable[[int], torch.Tensor]:
    """Micro-batch ``m``: one of ``pool`` random token blocks (batch, T + 1), made once, in pinned memory if asked."""
    check_int("vocab_size", vocab_size, 1, unit="tokens")
    check_int("micro_batch", micro_batch, 1, unit="sequences")
    check_int("block_size", block_size, 1, unit="tokens")
    check_type("pinned", pinned, bool, "True or False")
    check_int("pool", pool, 1, unit="token blocks")
    check_int("seed", seed, 0, unit="seed units")
    generator = torch.Generator().manual_seed(seed)
    blocks = [torch.randint(0, vocab_size, (micro_batch, block_size + 1), generator=generator) for _ in range(pool)]
    if pinned and torch.cuda.is_available():
        blocks = [b.pin_memory() for b in blocks]

    def batch(m: int) -> torch.Tensor:
        check_int("m", m, 0, unit="micro-batches (m is the index of a micro-batch)")
        return blocks[m % pool]

    return batch


def _attention_kernel(loss_fn: Callable, kernel: str) -> Callable:
    """``loss_fn`` with scaled_dot_product_attention limited to one kernel (the choice is made when it is compiled)."""
    if kernel in ("auto", "naive"):
        return loss_fn
    backend = _BACKENDS[kernel]

    def loss(model, batch):
        with sdpa_kernel([backend]):
            return loss_fn(model, batch)

    return loss


def unavailable(options: StepOptions, device) -> dict[str, str]:
    """The options that cannot run here, each with why: the step falls back to today's path for them."""
    check_type("options", options, StepOptions, "a course_lib.models.fast_step.StepOptions")
    device = pick_device(device)
    why = {}
    package = CROSS_ENTROPY[options.cross_entropy]
    if package is not None:
        if device.type != "cuda":
            why["cross_entropy"] = f"cross_entropy={options.cross_entropy!r} is a Triton kernel for CUDA GPUs"
        elif importlib.util.find_spec(package) is None:
            why["cross_entropy"] = (f"cross_entropy={options.cross_entropy!r} needs {package.replace('_', '-')} "
                                    "(pip install \"course_lib[fast]\")")
    return why


_FALLBACK = {"cross_entropy": "logits"}


def fused_cross_entropy(kernel: str) -> Callable:
    """``loss(model, batch)``, :func:`~course_lib.models.gpt.lm_loss` without the logits: ``kernel`` ("liger" or "cce")
    multiplies the final features by the output layer's weight and takes the cross-entropy block by block.

    Under autocast both go in at autocast's type (what the output layer's
    multiply would use); the weight's gradient flows back to the float32
    weight through that cast.  The kernel runs outside ``torch.compile``
    (its own Triton kernels; a graph break).  Not for a DDP-wrapped model,
    whose forward it bypasses.  Cut cross-entropy keeps its default
    ``filter_eps``: it skips the gradient of vanishingly small probabilities,
    so its gradient is close to, not equal to, the logits' one.
    """
    check_choice("kernel", kernel, ("liger", "cce"))
    if kernel == "liger":
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy as fused
    else:
        from cut_cross_entropy import linear_cross_entropy as fused

    @torch.compiler.disable
    def tail(features, weight, targets):
        return fused(features, weight, targets)

    def loss(model, batch):
        x, y = batch[:, :-1], batch[:, 1:]
        features = model.features(x)
        weight = model.lm_head.weight
        if torch.is_autocast_enabled(features.device.type):
            dtype = torch.get_autocast_dtype(features.device.type)
            features, weight = features.to(dtype), weight.to(dtype)
        return tail(features.flatten(0, 1), weight, y.flatten())

    return loss


def build(options: StepOptions = FAST, device=None, *, data: Callable[[int], torch.Tensor] | None = None, seed: int = 0,
          schedule_steps: int = 600_000, warmup_steps: int = 2000) -> Built:
    """The model, AdamW (decay on matrices only, as GPT-2 and nanoGPT), cosine schedule, loss and data of ``options``.

    Sets torch's TF32 switches as ``options.tf32`` says (they are global).

    ``data`` defaults to synthetic tokens (speed does not depend on what they
    say).  cuDNN attention and pinned memory need a GPU: on a CPU the step
    falls back to PyTorch's own attention choice and pageable memory.
    """
    check_type("options", options, StepOptions, "a course_lib.models.fast_step.StepOptions")
    check_int("seed", seed, 0, unit="seed units")
    if data is not None and not callable(data):
        raise TypeError(f"data must be a function of the micro-batch index (m -> a (batch, T + 1) tensor of token ids) or None, "
                        f"got {shown(data)}")
    check_int("schedule_steps", schedule_steps, 1)
    check_int("warmup_steps", warmup_steps, 0)
    if warmup_steps > schedule_steps:
        raise ValueError(f"warmup_steps ({warmup_steps}) must be <= schedule_steps ({schedule_steps}): the warm-up is part of the schedule")
    schedule = cosine_with_warmup(warmup_steps, schedule_steps, min_lr_ratio=0.1)
    device = pick_device(device)
    cuda = device.type == "cuda"
    missing = unavailable(options, device)
    for name, why in missing.items():
        warnings.warn(f"{why}: this step runs with {name}={_FALLBACK[name]!r} instead", RuntimeWarning, stacklevel=2)
    options = dataclasses.replace(options, **{name: _FALLBACK[name] for name in missing})
    torch.backends.cuda.matmul.allow_tf32 = options.tf32
    torch.backends.cudnn.allow_tf32 = options.tf32
    torch.manual_seed(seed)
    config = options.gpt()
    model = GPT(config).to(device)
    optimizer = torch.optim.AdamW(param_groups(model, options.weight_decay), lr=options.lr, betas=(0.9, 0.95), fused=options.fused_optimizer or None,
                                  foreach=None if options.fused_optimizer else True)
    scheduler = ScheduledLR(optimizer, schedule)
    loss_fn = lm_loss if options.cross_entropy == "logits" else fused_cross_entropy(options.cross_entropy)
    if options.compile:
        if options.coordinate_descent:  # as compile options, so that the backward (compiled later) is tuned too
            from torch._inductor import list_mode_options

            tuned = {**list_mode_options(options.compile_mode or "default"), "coordinate_descent_tuning": True}
            loss_fn = torch.compile(loss_fn, options=tuned, dynamic=False)
        else:
            loss_fn = torch.compile(loss_fn, mode=options.compile_mode, dynamic=False)
    loss_fn = _attention_kernel(loss_fn, options.attention_kernel if cuda else "auto")
    if data is None:
        data = synthetic_batches(min(50257, config.vocab_size), options.micro_batch, config.block_size, pinned=options.pinned and cuda,
                                 seed=seed)
    peak = peak_flops(device, options.precision if options.precision != "fp32" else ("tf32" if options.tf32 else "fp32"))
    return Built(options, model, optimizer, scheduler, loss_fn, data, flops_per_token(config), peak)


# ------------------------------------------------------------------------------------------- the staircase (lesson 05)

# Options that change nothing on a CPU: TF32 is a tensor-core format, cuDNN is NVIDIA's library, CUDA graphs and
# pinned (page-locked) host memory are CUDA's.  (torch.compile does work on a CPU, with a C++ compiler.)
GPU_ONLY = ("tf32", "cudnn", "cuda_graphs", "pinned")


def padded(vocab_size: int, multiple: int = 64) -> int:
    """The vocabulary rounded up to a multiple of ``multiple``: the output layer's width, a dimension of its matrix multiply."""
    check_int("vocab_size", vocab_size, 1, unit="tokens")
    check_int("multiple", multiple, 1)
    return -(-vocab_size // multiple) * multiple


# The staircase: from the plain fp32 step, one option added per rung, in the order a reader would add them; the last
# rung is the fast step.  Each entry: the rung's id -> the change to the rung before it (a function of the top step,
# which holds the sizes).  Their names in the reader's language are course_lib.i18n's "rung_<id>".
RUNGS: dict[str, Callable[[StepOptions], dict]] = {
    "plain": lambda top: {},
    "tf32": lambda top: {"tf32": True},
    "bf16": lambda top: {"precision": "bf16"},
    "sdpa": lambda top: {"attention_kernel": "auto"},
    "cudnn": lambda top: {"attention_kernel": "cudnn"},
    "vocab": lambda top: {"model": top.model},
    "fused_adamw": lambda top: {"fused_optimizer": True},
    "compile": lambda top: {"compile": True},
    "cuda_graphs": lambda top: {"cuda_graphs": True},
    "pinned": lambda top: {"pinned": True},
}

# Alternatives to a rung, timed beside it: id -> (the rung it replaces or extends, the change to that rung).
ALTERNATIVES: dict[str, tuple[str, Callable[[StepOptions], dict]]] = {
    "fp16": ("bf16", lambda top: {"precision": "fp16"}),  # GPUs without bf16 (T4, V100): fp16 with loss scaling
    "sdpa_flash": ("sdpa", lambda top: {"attention_kernel": "flash"}),
    "sdpa_efficient": ("sdpa", lambda top: {"attention_kernel": "efficient"}),
    "sdpa_math": ("sdpa", lambda top: {"attention_kernel": "math"}),
    # CUDA graphs cannot accumulate (see StepOptions): the compiled step without them, a quarter of the batch four times.
    "accumulate": ("compile", lambda top: {"micro_batch": max(1, top.micro_batch // 4), "accumulate": 4}),
}


def _plain(top: StepOptions, unpadded_vocab: int) -> StepOptions:
    """``top`` with every speed option off: fp32 without TF32, the attention formula written out, the vocabulary unpadded."""
    return dataclasses.replace(top, precision="fp32", tf32=False, compile=False, cuda_graphs=False, autotune=False,
                               fused_optimizer=False, attention_kernel="naive", pinned=False, clip_in_step=False,
                               cross_entropy="logits", coordinate_descent=False,
                               model=dataclasses.replace(top.model, vocab_size=unpadded_vocab))


def staircase(top: StepOptions = FIRST_ROUND, unpadded_vocab: int = 50257) -> dict[str, StepOptions]:
    """Each rung of :data:`RUNGS` as a step: the plain step, then one option more per rung; the last rung is ``top``.

    ``unpadded_vocab`` is the vocabulary before padding (GPT-2's 50,257);
    ``top.model.vocab_size`` the padded one.
    """
    check_type("top", top, StepOptions, "a course_lib.models.fast_step.StepOptions, e.g. FIRST_ROUND")
    check_int("unpadded_vocab", unpadded_vocab, 1, unit="tokens")
    if unpadded_vocab > top.model.vocab_size:
        raise ValueError(f"unpadded_vocab ({unpadded_vocab}) must be <= top.model.vocab_size ({top.model.vocab_size}): "
                         "padding only adds tokens")
    steps, options = {}, _plain(top, unpadded_vocab)
    for rung, change in RUNGS.items():
        options = dataclasses.replace(options, **change(top))
        steps[rung] = options
    if options != top:
        raise ValueError(f"the staircase's last rung is not top: top has an option that RUNGS does not add ({shown(top)})")
    return steps


def alternatives(top: StepOptions = FIRST_ROUND, unpadded_vocab: int = 50257) -> dict[str, StepOptions]:
    """Each of :data:`ALTERNATIVES` as a step: its rung of :func:`staircase` with its change."""
    steps = staircase(top, unpadded_vocab)
    return {name: dataclasses.replace(steps[rung], **change(top)) for name, (rung, change) in ALTERNATIVES.items()}
