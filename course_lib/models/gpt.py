"""A small GPT-2-style decoder (lessons 04-05), in nanoGPT's order: config, attention, MLP, block, model.

The parameter names and shapes are Hugging Face's ``GPT2LMHeadModel``'s
(``transformer.h.0.attn.c_attn.weight``, ...), except that the four
projection matrices are stored as ``torch.nn.Linear`` weights (out x in)
where Hugging Face keeps ``Conv1D`` weights (in x out):
:func:`from_hf` and :func:`to_hf` transpose them, so GPT-2's pretrained
weights run in this model and this model's weights run in Hugging Face's.

Also here: :func:`lm_loss` (the loss the training loop calls),
:func:`generate` (temperature, top-k, seeded sampling) and
:func:`flops_per_token` (the arithmetic of a training step, for MFU).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown
from course_lib.engine.checkpoints import unwrap
from course_lib.engine.data import at_least_float32

__all__ = ["GPTConfig", "naive_attention", "CausalSelfAttention", "MLP", "Block", "GPT", "parameter_count",
           "flops_per_token", "lm_loss", "generate", "from_hf", "to_hf", "TRANSPOSED", "LAYER_NORM_EPS"]

LAYER_NORM_EPS = 1e-5  # torch's and GPT-2's LayerNorm epsilon


@dataclass(frozen=True)
class GPTConfig:
    """Sizes of the model; the defaults are GPT-2 small (124M parameters)."""

    vocab_size: int = 50257
    block_size: int = 1024
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    dropout: float = 0.0
    attention: str = "sdpa"  # "sdpa": PyTorch's fused kernel; "naive": the formula written out (lesson 05 compares them)
    tie_weights: bool = True  # the output layer shares the token embedding's matrix (GPT-2 does)
    bias: bool = True  # biases in the linear layers and LayerNorms, as GPT-2; nanoGPT's default is without

    def __post_init__(self) -> None:
        for name, unit in (("vocab_size", "tokens"), ("block_size", "positions"), ("n_layer", "layers"),
                           ("n_head", "heads"), ("n_embd", "dimensions")):
            check_int(name, getattr(self, name), 1, unit=unit)
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        check_number("dropout", self.dropout, "a probability in [0, 1)", lambda p: 0 <= p < 1)
        check_choice("attention", self.attention, ("sdpa", "naive"))
        check_type("tie_weights", self.tie_weights, bool, "True or False")
        check_type("bias", self.bias, bool, "True or False")


class CausalSelfAttention(nn.Module):
    """Multi-head self-attention in which a token sees only itself and earlier tokens.

    ``c_attn`` makes queries, keys and values in one matrix; ``c_proj`` mixes
    the heads.  The attention itself is PyTorch's fused
    ``scaled_dot_product_attention`` (FlashAttention where the GPU has it).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        check_type("config", config, GPTConfig, "a GPTConfig")
        self.n_head, self.n_embd = config.n_head, config.n_embd
        self.dropout = config.dropout
        self.naive = config.attention == "naive"
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 3 or x.shape[-1] != self.n_embd:
            raise ValueError(f"x must be a (batch, time, n_embd={self.n_embd}) tensor, got shape {tuple(x.shape)}")
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))  # (B, heads, T, hs)
        dropout = self.dropout if self.training else 0.0
        y = naive_attention(q, k, v, dropout) if self.naive else F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=True)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


def naive_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, dropout: float = 0.0) -> torch.Tensor:
    """softmax(QKᵀ/√d + causal mask) V, written out: it stores the (T x T) score matrix of every head in memory.

    ``dropout`` is applied as given, like ``scaled_dot_product_attention``'s
    ``dropout_p``: :class:`CausalSelfAttention` passes 0 in eval mode.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        check_type(name, t, torch.Tensor, "a (..., time, head size) tensor")
    if q.ndim < 2 or not q.shape == k.shape == v.shape:
        raise ValueError(f"q, k and v must have one shape (..., T, head_dim), e.g. (B, heads, T, head_dim) (causal "
                         f"self-attention), got q {tuple(q.shape)}, k {tuple(k.shape)} and v {tuple(v.shape)}")
    if not (q.is_floating_point() and q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must hold floating-point numbers of one dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    check_number("dropout", dropout, "a probability in [0, 1)", lambda p: 0 <= p < 1)
    T = q.size(-2)
    scores = (q @ k.transpose(-2, -1)) / math.sqrt(q.size(-1))
    mask = torch.ones(T, T, dtype=torch.bool, device=q.device).tril()
    weights = F.dropout(scores.masked_fill(~mask, float("-inf")).softmax(dim=-1), dropout)
    return weights @ v


class MLP(nn.Module):
    """Two linear layers around a GELU (GPT-2's tanh approximation), 4x wide in the middle."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        check_type("config", config, GPTConfig, "a GPTConfig")
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.gelu = nn.GELU(approximate="tanh")
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        check_type("config", config, GPTConfig, "a GPTConfig")
        self.ln_1 = nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    """Token and position embeddings, ``n_layer`` blocks, a final LayerNorm, and the output layer.

    The output layer ``lm_head`` shares its weight with the token embedding
    ``wte`` (weight tying, as in GPT-2): one tensor, counted once.
    ``forward(idx)`` returns the logits, shape (batch, time, vocab);
    ``forward(idx, last_only=True)`` those of the last position only, shape
    (batch, 1, vocab), as nanoGPT does when sampling: the output layer, the
    largest matrix multiply, then runs on one position instead of T.

    ``idx`` is checked first (a non-empty (batch, time) tensor of int64 or
    int32 ids); that every id is in ``[0, vocab_size)`` only when ``idx`` is
    on the CPU and not under ``torch.compile``, so that a step on a GPU never
    waits for the check (there an id out of range stops with CUDA's
    device-side assert instead).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        check_type("config", config, GPTConfig, "a GPTConfig")
        self.config = config
        self.transformer = nn.ModuleDict(dict(
            wte=nn.Embedding(config.vocab_size, config.n_embd),
            wpe=nn.Embedding(config.block_size, config.n_embd),
            drop=nn.Dropout(config.dropout),
            h=nn.ModuleList([Block(config) for _ in range(config.n_layer)]),
            ln_f=nn.LayerNorm(config.n_embd, eps=LAYER_NORM_EPS, bias=config.bias),
        ))
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_weights:
            self.lm_head.weight = self.transformer.wte.weight
        self.apply(self._init_weights)
        for name, p in self.named_parameters():  # GPT-2: residual projections scaled by 1/sqrt(2 * layers)
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, *, last_only: bool = False) -> torch.Tensor:
        check_type("last_only", last_only, bool, "True or False")
        x = self.features(idx)
        return self.lm_head(x[:, [-1], :] if last_only else x)

    def features(self, idx: torch.Tensor) -> torch.Tensor:
        """What the output layer reads: the final LayerNorm's output, shape (batch, time, n_embd).

        A fused linear + cross-entropy kernel takes these and ``lm_head.weight``
        and never builds the (batch, time, vocab) logits.
        """
        _check_token_ids("idx", idx, self.config.vocab_size)
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"a sequence of {T} tokens is longer than the model's block_size {self.config.block_size}")
        pos = torch.arange(T, device=idx.device)
        x = self.transformer.drop(self.transformer.wte(idx) + self.transformer.wpe(pos))
        for block in self.transformer.h:
            x = block(x)
        return self.transformer.ln_f(x)


def _check_token_ids(name: str, ids: torch.Tensor, vocab_size: int) -> None:
    """A non-empty (batch, time) tensor of int64/int32 token ids; on the CPU also each id in ``[0, vocab_size)``.

    The range needs the ids' values: it is read only from a CPU tensor and
    not while ``torch.compile`` traces, so that no GPU step waits for it.
    """
    if not isinstance(ids, torch.Tensor):
        raise TypeError(f"{name} must be a (batch, time) tensor of token ids, got {shown(ids)}")
    if ids.ndim != 2 or 0 in ids.shape:
        raise ValueError(f"{name} must be a non-empty (batch, time) tensor of integer token ids, got shape {tuple(ids.shape)}")
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must hold integer token ids (torch.int64 or torch.int32), got {ids.dtype}")
    if ids.device.type == "cpu" and not torch.compiler.is_compiling():
        low, high = (int(v) for v in torch.aminmax(ids))
        if low < 0 or high >= vocab_size:
            raise ValueError(f"{name} holds token ids from {low} to {high}, outside the vocabulary: "
                             f"ids must be in [0, vocab_size) = [0, {vocab_size})")


def parameter_count(config: GPTConfig) -> int:
    """Parameters of :class:`GPT` from the sizes alone: V·d + T·d + L·(12d² + 13d) + 2d, plus V·d if the output layer is untied.

    Without biases (``bias=False``) a block has 12d² + 2d (the LayerNorms' scales) and the final LayerNorm d.
    """
    check_type("config", config, GPTConfig, "a GPTConfig")
    V, T, L, d = config.vocab_size, config.block_size, config.n_layer, config.n_embd
    blocks, final = (L * (12 * d * d + 13 * d), 2 * d) if config.bias else (L * (12 * d * d + 2 * d), d)
    return V * d + T * d + blocks + final + (0 if config.tie_weights else V * d)


def flops_per_token(config: GPTConfig, sequence_length: int | None = None) -> float:
    """Training FLOPs per token of :class:`GPT`: 6N + 12·L·d·T (PaLM's appendix B; nanoGPT's estimate).

    N counts the weights of the matrix multiplies (the blocks and the output
    layer; the position embedding is a look-up, not a multiply): 2N FLOPs per
    token forward, 4N backward.  12·L·d·T is the attention's own work (the
    scores QKᵀ and the weighted sum, forward and backward) at context T
    (``sequence_length``, by default ``block_size``): it is linear in T per
    token, so quadratic in T per sequence.
    """
    check_type("config", config, GPTConfig, "a GPTConfig")
    T = config.block_size if sequence_length is None else sequence_length
    check_int("sequence_length", T, 1, unit="tokens")
    if T > config.block_size:
        raise ValueError(f"sequence_length ({T}) must be <= the model's block_size ({config.block_size}): the GPT reads at "
                         "most block_size tokens at once")
    d, L, V = config.n_embd, config.n_layer, config.vocab_size
    N = L * 12 * d * d + V * d
    return 6 * N + 12 * L * d * T


def lm_loss(model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
    """Next-token cross-entropy of a batch of token blocks (batch, T + 1): inputs ``[:, :-1]``, targets ``[:, 1:]``.

    The softmax runs in float32 or wider.  fp32 and fp64 logits are used as
    they are; under autocast, autocast's rule for the softmax upcasts, as
    nanoGPT relies on; only the logits of a model held in bf16 or fp16
    without autocast are upcast here.  On a CPU this saves no memory (the
    peak, measured, is the backward's float32 tensors); on a GPU it is not
    measured yet.

    ``model`` is a :class:`GPT` (bare, or wrapped by DDP or ``torch.compile``).
    ``batch`` must be a (batch, T + 1) tensor of int64 ids with T >= 1.  On
    the CPU the model checks that the inputs are in its vocabulary and this
    function that the targets are (cross-entropy would skip a target of -100
    silently); on a GPU neither is read back (see :meth:`GPT.forward`).
    """
    check_type("model", model, nn.Module, "a torch.nn.Module (the GPT), as lm_loss(model, batch)")
    if not isinstance(unwrap(model), GPT):
        raise TypeError(f"model must be a course_lib GPT (or one wrapped by DDP or torch.compile), which maps token ids "
                        f"(B, T) to logits (B, T, vocab_size), got {type(unwrap(model)).__name__}")
    if not isinstance(batch, torch.Tensor):
        raise TypeError(f"batch must be a (batch, T + 1) tensor of token ids (inputs [:, :-1], targets [:, 1:]), got {shown(batch)}")
    if batch.ndim != 2 or batch.shape[0] == 0 or batch.shape[1] < 2:
        raise ValueError(f"batch must be a (batch, T + 1) tensor of token ids with at least one sequence and T + 1 >= 2 "
                         f"(inputs [:, :-1], targets [:, 1:]), got shape {tuple(batch.shape)}")
    if batch.dtype != torch.int64:
        raise TypeError(f"batch must hold int64 token ids (torch.long: cross-entropy's targets are int64), got {batch.dtype}")
    x, y = batch[:, :-1], batch[:, 1:]
    logits = model(x)
    if y.device.type == "cpu" and not torch.compiler.is_compiling():
        low, high = (int(v) for v in torch.aminmax(y))
        if low < 0 or high >= logits.size(-1):
            raise ValueError(f"targets (batch[:, 1:]) hold token ids from {low} to {high}, outside the model's "
                             f"{logits.size(-1)} logits: ids must be in [0, vocab_size) = [0, {logits.size(-1)})")
    if not torch.is_autocast_enabled(logits.device.type):
        logits = at_least_float32(logits)
    return F.cross_entropy(logits.flatten(0, 1), y.flatten())


@torch.no_grad()
def generate(model: GPT, idx: torch.Tensor, max_new_tokens: int, *, temperature: float = 1.0, top_k: int | None = None,
             seed: int = 0) -> torch.Tensor:
    """Continue ``idx`` (batch, T) by ``max_new_tokens`` sampled tokens; ``seed`` makes the sample repeatable.

    Each new token is drawn from softmax(logits / temperature), restricted to
    the ``top_k`` most likely tokens when given.  The draws come from a
    generator of their own, so generating leaves the global random state alone.
    """
    check_type("model", model, GPT, "a course_lib.models.gpt.GPT")
    _check_token_ids("idx", idx, model.config.vocab_size)
    check_int("max_new_tokens", max_new_tokens, 1, unit="tokens")
    check_number("temperature", temperature, "a finite number > 0", lambda t: 0 < t < math.inf)
    if top_k is not None:
        check_int("top_k", top_k, 1, unit="tokens")
    check_int("seed", seed, 0, unit="seed units")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    was_training = model.training
    model.eval()
    try:
        idx = idx.to(device)
        for _ in range(max_new_tokens):
            logits = at_least_float32(model(idx[:, -model.config.block_size:], last_only=True)[:, -1, :]) / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            nxt = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1, generator=generator)
            idx = torch.cat((idx, nxt), dim=1)
    finally:
        model.train(was_training)
    return idx


TRANSPOSED = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")


# The GPT-2 variants a GPT2Config can describe, and the one GPT implements: (field, is it GPT's?, what GPT implements).
# reorder_and_upcast_attn is not here: it computes the same attention (scaled keys, float32 scores), only more
# robustly in half precision.
_HF_IMPLEMENTED = (
    ("activation_function", lambda c: c.activation_function in ("gelu_new", "gelu_pytorch_tanh"),
     "'gelu_new' or 'gelu_pytorch_tanh' (GELU's tanh approximation)"),
    ("n_inner", lambda c: c.n_inner in (None, 4 * c.n_embd), "None or 4 * n_embd (the MLP 4x wide)"),
    ("layer_norm_epsilon", lambda c: c.layer_norm_epsilon == LAYER_NORM_EPS, f"{LAYER_NORM_EPS} (GPT-2's LayerNorm)"),
    ("scale_attn_weights", lambda c: c.scale_attn_weights is True, "True (scores divided by sqrt(head size))"),
    ("scale_attn_by_inverse_layer_idx", lambda c: c.scale_attn_by_inverse_layer_idx is False,
     "False (no extra 1 / (layer + 1) on the scores)"),
    ("add_cross_attention", lambda c: c.add_cross_attention is False, "False (no cross-attention)"),
    ("tie_word_embeddings", lambda c: c.tie_word_embeddings is True, "True (lm_head shares transformer.wte's matrix)"),
)


def from_hf(hf_model) -> GPT:
    """This course's :class:`GPT` with the weights of a Hugging Face ``GPT2LMHeadModel`` (e.g. GPT-2 from the Hub).

    Only GPT-2's own architecture converts: a config field that describes
    another variant (``layer_norm_epsilon``, ``scale_attn_weights``,
    ``activation_function``, an untied ``lm_head``, ...) is refused up front,
    as the converted model would compute something else.
    """
    from transformers import GPT2LMHeadModel

    check_type("hf_model", hf_model, GPT2LMHeadModel, "a transformers GPT2LMHeadModel, e.g. GPT2LMHeadModel.from_pretrained('gpt2')")
    c = hf_model.config
    for field, implemented, allowed in _HF_IMPLEMENTED:
        if not implemented(c):
            raise ValueError(f"from_hf cannot convert hf_model: its config.{field} is {getattr(c, field)!r}, but GPT "
                             f"implements {allowed} only; the converted model would compute something else")
    source = {k: v for k, v in hf_model.state_dict().items() if not k.endswith((".attn.bias", ".attn.masked_bias"))}
    if "lm_head.weight" in source and not torch.equal(source["lm_head.weight"], source["transformer.wte.weight"]):
        raise ValueError("from_hf cannot convert hf_model: its lm_head.weight differs from transformer.wte.weight (an untied "
                         "output layer), but GPT implements the tied one only (one matrix for both)")
    config = GPTConfig(vocab_size=c.vocab_size, block_size=c.n_positions, n_layer=c.n_layer, n_head=c.n_head,
                       n_embd=c.n_embd)
    model = GPT(config)
    target = model.state_dict()
    if set(source) != set(target):
        raise ValueError(f"parameter names differ: {sorted(set(source) ^ set(target))[:4]}")
    for name, value in source.items():
        expected = target[name].shape[::-1] if name.endswith(TRANSPOSED) else target[name].shape
        if value.shape != expected:
            raise ValueError(f"hf_model's {name} has shape {tuple(value.shape)}, but its config describes {tuple(expected)}")
    with torch.no_grad():
        for name, value in source.items():
            target[name].copy_(value.t() if name.endswith(TRANSPOSED) else value)
    return model


def to_hf(model: GPT):
    """A Hugging Face ``GPT2LMHeadModel`` holding ``model``'s weights (needs ``transformers``)."""
    check_type("model", model, GPT, "a course_lib.models.gpt.GPT")
    from transformers import GPT2Config, GPT2LMHeadModel

    c = model.config
    if not c.tie_weights or not c.bias:
        raise ValueError("to_hf needs tied output weights and biases (tie_weights=True, bias=True), as GPT2LMHeadModel has")
    hf = GPT2LMHeadModel(GPT2Config(vocab_size=c.vocab_size, n_positions=c.block_size, n_embd=c.n_embd, n_layer=c.n_layer,
                                    n_head=c.n_head, activation_function="gelu_new", resid_pdrop=0.0, embd_pdrop=0.0,
                                    attn_pdrop=0.0, bos_token_id=None, eos_token_id=None))
    ours = model.state_dict()
    with torch.no_grad():
        for name, value in hf.state_dict().items():
            if name in ours:
                value.copy_(ours[name].t() if name.endswith(TRANSPOSED) else ours[name])
    return hf.eval()
