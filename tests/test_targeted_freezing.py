"""course_lib.lessons.targeted_freezing_gpt: lesson 04's runs on a tiny pretrained GPT, its measures, and the stored GPU results."""

import dataclasses
import math

import pytest
import torch

from course_lib.lessons import pretraining
from course_lib.models.gpt import GPTConfig
from course_lib.lessons import targeted_freezing_gpt as tf
from course_lib.engine.data import checksum
from course_lib.lessons.corpus import pretraining_texts
from course_lib.show.tables import gpt_freezing_table

TINY_PRETRAIN = pretraining.PretrainConfig("tiny", GPTConfig(vocab_size=300, n_layer=4, n_head=2, n_embd=16, block_size=16),
                                           batch_size=4, steps=4, warmup=1)
TINY = tf.Config("tiny", pretrain="tiny", steps=6, batch_size=2, warmup=1, eval_every=3, sample_seeds=(0, 1, 2), samples=2,
                 sample_tokens=6, k=20)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    patch = pytest.MonkeyPatch()
    patch.setenv("COURSE_CACHE", str(tmp_path_factory.mktemp("cache")))
    patch.setitem(pretraining.PRETRAIN, "tiny", TINY_PRETRAIN)
    patch.setattr(pretraining, "pretraining_texts", lambda: pretraining_texts()[:300])
    tf._SETUPS.clear()
    shared = tf.setup(TINY, "cpu")
    runs = {variant: tf.run(TINY, variant, seed=0, device="cpu") for variant in tf.VARIANTS}
    yield shared, runs
    tf._SETUPS.clear()
    patch.undo()


def _trainable(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_the_variants_freeze_what_they_say(tiny):
    shared, _ = tiny
    names = {name for name, _ in tf.prepare(shared, "full").named_parameters()}
    attention = {n for n in names if ".attn.c_" in n}
    lower = {n for n in attention if n.startswith(("transformer.h.0.", "transformer.h.1."))}
    assert _trainable(tf.prepare(shared, "full")) == names
    assert _trainable(tf.prepare(shared, "targeted")) == lower and len(lower) == 8  # 2 blocks x (c_attn, c_proj) x (weight, bias)
    assert _trainable(tf.prepare(shared, "reversed")) == names - (attention - lower)


def test_every_run_starts_from_the_same_weights_and_sees_the_same_batches(tiny):
    _, runs = tiny
    assert len({r["initial_checksum"] for r, _ in runs.values()}) == 1
    assert len({r["batch_checksum"] for r, _ in runs.values()}) == 1


def test_frozen_weights_do_not_move_and_trained_ones_do(tiny):
    shared, runs = tiny
    start = tf.prepare(shared, "targeted").state_dict()
    after = runs["targeted"][1].state_dict()
    trainable = _trainable(tf.prepare(shared, "targeted"))
    for name, value in after.items():
        moved = not torch.equal(value.cpu(), start[name])
        assert moved == (name in trainable), name


def test_the_records_of_a_run(tiny):
    _, runs = tiny
    full, targeted = runs["full"][0], runs["targeted"][0]
    assert len(full["loss"]) == TINY.steps and full["eval_steps"] == [2, 5]
    assert set(targeted["weight_change"]) == {f"transformer.h.{i}.attn.{m}.weight" for i in (0, 1) for m in ("c_attn", "c_proj")}
    assert len(full["weight_change"]) == 8 and all(len(v) == TINY.steps for v in full["weight_change"].values())
    assert len(full["p"]) == len(TINY.sample_seeds) and all(0 <= p <= 1 for p in full["p"])
    assert 0 <= full["word_rate"] <= 1
    assert full["trainable"] == 1.0 and 0 < targeted["trainable"] < 0.5


def test_a_run_is_repeatable(tiny):
    _, runs = tiny
    again, model = tf.run(TINY, "targeted", seed=0, device="cpu")
    assert again["loss"] == runs["targeted"][0]["loss"] and again["p"] == runs["targeted"][0]["p"]
    assert checksum(model) == checksum(runs["targeted"][1])


def test_flop_saving_counts_the_weight_gradients_of_frozen_matrices(tiny):
    shared, _ = tiny
    assert tf.flop_saving(tf.prepare(shared, "full")) == 0
    model = tf.prepare(shared, "targeted")
    d, L, V = 16, 4, 300
    frozen = V * d + L * 8 * d * d + (L // 2) * 4 * d * d  # embedding/output, every MLP, the upper attention
    assert tf.flop_saving(model) == pytest.approx(frozen / (3 * (V * d + 12 * d * d * L)))
    for p in model.parameters():
        p.requires_grad_(False)
    assert tf.flop_saving(model) == pytest.approx(1 / 3)


def test_noise_variance_ignores_a_trend():
    assert tf.noise_variance([10 - 0.1 * t for t in range(50)]) == pytest.approx(0, abs=1e-20)
    jitter = [(-1) ** t for t in range(51)]  # L_t - L_{t-1} = ±2, so Var(ΔL)/2 = 4 * 51/50 / 2 ...
    assert tf.noise_variance(jitter) == pytest.approx(2 * 50 / 49, rel=1e-9)


def test_p_summary_pairs_the_sampling_seeds():
    a, b = {"p": [0.3, 0.4, 0.5]}, {"p": [0.35, 0.3, 0.4]}
    s = tf.p_summary([0.1, 0.1, 0.2], a, b)
    assert s["b_wins"] == 1 and s["n"] == 3
    assert s["delta_a"].mean == pytest.approx(0.2667, abs=1e-4) and s["difference"].mean == pytest.approx(-0.05)
    with pytest.raises(ValueError, match="one share per sampling seed"):
        tf.p_summary([0.1], a, b)


def test_curve_gap_and_weight_change_ratio():
    a = {"eval_loss": [5.0, 4.0], "weight_change": {"w": [1.0, 3.0], "v": [1.0, 1.0]}}
    c = {"eval_loss": [5.5, 4.1], "weight_change": {"w": [2.0, 2.0]}}
    assert tf.curve_gap(a, c) == pytest.approx({"largest": 0.5, "last": 0.1, "relative": 0.1})
    assert tf.weight_change_ratio(a, c) == {"w": (2.0, 2.0)}


def test_summary_and_table_of_a_live_run(tiny):
    _, runs = tiny
    results = {"runs": [r for r, _ in runs.values()]}
    summary = tf.summarize(results)
    assert summary["full"]["saving"].mean == 0 and summary["full"]["p"].n == len(TINY.sample_seeds)  # one seed: spread over sampling seeds
    for lang in ("vi", "en"):
        table = gpt_freezing_table(results, lang, timing=False)
        assert len(table.rows) == 3 and len(table.header) == 7


def test_the_stored_gpu_results_match_their_configuration():
    stored = tf.load_results("gpu")
    config = tf.CONFIGS["gpu"]
    assert {(r["variant"], r["seed"]) for r in stored["runs"]} == {(v, s) for v in tf.VARIANTS for s in config.seeds}
    assert len({r["initial_checksum"] for r in stored["runs"]}) == 1
    for seed in config.seeds:
        assert len({r["batch_checksum"] for r in stored["runs"] if r["seed"] == seed}) == 1
    assert len({r["batch_checksum"] for r in stored["runs"]}) == len(config.seeds)
    assert all(len(r["p"]) == len(config.sample_seeds) for r in stored["runs"]) and len(stored["p_before"]) == len(config.sample_seeds)
    assert "H100" in stored["provenance"]["device"] or "H200" in stored["provenance"]["device"]
    for lang in ("vi", "en"):
        assert len(gpt_freezing_table(stored, lang).rows) == 3


def test_stored_results_of_another_configuration_are_refused(tmp_path, monkeypatch):
    stored = tf.load_results("gpu")
    monkeypatch.setitem(tf.CONFIGS, "gpu", dataclasses.replace(tf.CONFIGS["gpu"], steps=119))
    with pytest.raises(ValueError, match="another configuration"):
        tf.load_results("gpu")
    assert math.isfinite(stored["eval_before"])


def test_corpus_edges_that_stay_valid():
    from course_lib.lessons.corpus import encode_texts, held_out_blocks, token_share

    tokenizer = encode_texts(["the cat sat on the mat"] * 4, 260)[0]
    assert tokenizer.decode([]) == "" and tokenizer.decode([10**6]) == ""  # past the vocabulary: nothing, as in the backends
    assert tokenizer.decode(torch.tensor(tokenizer.encode("the cat"), dtype=torch.int32)) == "the cat"
    assert [b.tolist() for b in held_out_blocks([1, 2, 3, 4, 5, 6, 7], 2, 2)] == [[[1, 2, 3], [4, 5, 6]]]
    assert token_share([[5, 7], [5, 9]], [5]) == 0.5 and token_share(torch.arange(4), {9}) == 0.0
    with pytest.raises(ValueError, match="token_share needs at least one token"):
        token_share(torch.tensor([]), {1})


def test_the_configurations_stay_valid():
    for config in tf.CONFIGS.values():
        assert dataclasses.replace(config, source="online", precision="fp32").variants == tf.VARIANTS
    assert tf.Config("x", steps=10, warmup=10).warmup == 10
    with pytest.raises(ValueError, match="a and c must be evaluated equally often"):
        tf.curve_gap({"eval_loss": [2.0, 1.0]}, {"eval_loss": [2.0]})  # was: zip() dropped the extra evaluation
    assert tf.noise_variance([1.0, 0.5, 1.0]) == pytest.approx(0.25)  # the fewest losses it takes: 3 (run() needs steps >= 3)
    assert tf.Config("x", steps=3, warmup=1).steps == 3
