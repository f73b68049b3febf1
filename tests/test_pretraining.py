"""Lesson 04's pretraining cache: a damaged file is rebuilt, a bad place is refused before the training, a late failure keeps the model."""

import pytest
import torch

from course_lib.engine.data import checksum
from course_lib.engine.files import load_verified
from course_lib.lessons import pretraining
from course_lib.lessons.corpus import pretraining_texts
from course_lib.models.gpt import GPTConfig

TINY = pretraining.PretrainConfig("tiny", GPTConfig(vocab_size=300, n_layer=1, n_head=2, n_embd=8, block_size=8),
                                  batch_size=2, steps=2, warmup=1)


@pytest.fixture(autouse=True)
def few_texts(monkeypatch):
    texts = pretraining_texts()[:100]
    monkeypatch.setattr(pretraining, "pretraining_texts", lambda: texts)


@pytest.fixture
def trainings(monkeypatch):
    """Counts the pretraining runs (the minute of work a bad cache place must not waste)."""
    calls = []
    real = pretraining._pretrain

    def counted(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(pretraining, "_pretrain", counted)
    return calls


def test_the_cache_is_reused_and_a_damaged_one_is_rebuilt(tmp_path, trainings):
    model, _, _ = pretraining.pretrained(TINY, device="cpu", cache=tmp_path)
    path = pretraining.cache_path(TINY, tmp_path)
    again, _, _ = pretraining.pretrained(TINY, device="cpu", cache=tmp_path)
    assert len(trainings) == 1 and checksum(again) == checksum(model)

    weight = load_verified(path)["model"]["transformer.wte.weight"].numpy().tobytes()
    data = bytearray(path.read_bytes())
    data[data.find(weight) + 100] ^= 0x01  # one bit of one weight
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="rebuilding the pretraining cache .* is damaged"):
        rebuilt, _, _ = pretraining.pretrained(TINY, device="cpu", cache=tmp_path)
    assert len(trainings) == 2 and checksum(rebuilt) == checksum(model)
    assert load_verified(path)["config"]["name"] == "tiny"


@pytest.mark.parametrize("place", ["a-file-in-the-way", "a-folder-where-the-file-goes"])
def test_a_cache_that_cannot_be_written_is_refused_before_the_training(tmp_path, trainings, place):
    if place == "a-file-in-the-way":
        cache = tmp_path / "cache"
        cache.write_text("not a folder")
    else:
        cache = tmp_path
        pretraining.cache_path(TINY, cache).mkdir()
    with pytest.raises(ValueError, match=r"the pretraining cache .*\(set \$COURSE_CACHE"):
        pretraining.pretrained(TINY, device="cpu", cache=cache)
    assert trainings == []


def test_a_cache_lost_during_the_training_keeps_the_model(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    real = pretraining._pretrain

    def folder_removed_meanwhile(*args):
        out = real(*args)
        cache.rmdir()
        cache.write_text("a file now stands where the cache folder was")
        return out

    monkeypatch.setattr(pretraining, "_pretrain", folder_removed_meanwhile)
    with pytest.warns(UserWarning, match="could not write the pretrained model to .* they are kept in (.*)") as caught:
        model, tokenizer, info = pretraining.pretrained(TINY, device="cpu", cache=cache)
    kept = str(caught[0].message).rsplit("kept in ", 1)[1]
    assert checksum(load_verified(kept)["model"]) == checksum(model) and info["tokens"] > 0
    torch.load(kept, weights_only=True)  # a plain torch file, as the cache is
