"""course_lib.lessons.targeted_freezing_gpt: lesson 04's runs on a tiny pretrained GPT, its measures, and the stored GPU results."""

import dataclasses
import json
import math

import pytest
import torch

from course_lib.lessons import pretraining, stored
from course_lib.models.gpt import GPTConfig
from course_lib.lessons import targeted_freezing_gpt as tf
from course_lib.engine.data import checksum
from course_lib.lessons.corpus import pretraining_texts
from course_lib.show.tables import gpt_freezing_table, gpt_key_results, gpt_timing_table

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
    upper = {n for n in names if n.startswith(("transformer.h.2.", "transformer.h.3.", "transformer.ln_f."))}
    assert _trainable(tf.prepare(shared, "bottom")) == upper and "transformer.wte.weight" not in upper


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
    assert len(full["word_rate"]) == len(TINY.sample_seeds) and all(0 <= w <= 1 for w in full["word_rate"])
    assert len(full["lr"]) == TINY.steps and full["weight_sizes"]["transformer.h.0.attn.c_attn.weight"] == 16 * 48
    assert full["trainable"] == 1.0 and 0 < targeted["trainable"] < 0.5


def test_the_lessons_plain_cell_gives_what_run_gives(tiny):
    """The lesson's main cell (plain requires_grad_, AdamW groups written out, train) and run() are the same experiment."""
    from course_lib.engine.schedules import ScheduledLR, cosine_with_warmup
    from course_lib.engine.training import train
    from course_lib.lessons.corpus import TokenWindows
    from course_lib.models.gpt import lm_loss

    shared, runs = tiny
    config, variant, seed = TINY, "bottom", 0
    model = tf.pretrained_copy(shared, config.precision)
    initial = checksum(model)
    for name, p in model.named_parameters():
        p.requires_grad_(tf.trains(name, variant, model.config.n_layer))
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
                                   {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}],
                                  lr=config.lr, betas=(0.9, 0.95))
    scheduler = ScheduledLR(optimizer, cosine_with_warmup(config.warmup, config.steps, min_lr_ratio=0.1))
    batches = TokenWindows(shared.train_ids, config.batch_size, shared.info["block_size"], seed)
    callbacks = tf.probes(model, shared, config)
    torch.manual_seed(seed)
    history = train(model, optimizer, batches, lm_loss, config.steps, scheduler=scheduler, clip=config.clip,
                    precision=config.precision, device="cpu", log_every=config.eval_every, callbacks=callbacks)
    plain = tf.measure(model, history, callbacks, shared, config, variant, seed, initial, "cpu")
    library = runs[variant][0]
    for key in ("loss", "eval_loss", "p", "word_rate", "weight_change", "initial_checksum", "batch_checksum", "flop_saving"):
        assert plain[key] == library[key], key
    assert checksum(model) == checksum(runs[variant][1])


def test_a_run_is_repeatable(tiny):
    _, runs = tiny
    again, model = tf.run(TINY, "targeted", seed=0, device="cpu")
    assert again["loss"] == runs["targeted"][0]["loss"] and again["p"] == runs["targeted"][0]["p"]
    assert checksum(model) == checksum(runs["targeted"][1])


def test_flop_saving_follows_where_the_trainable_weights_sit(tiny):
    shared, _ = tiny
    assert tf.flop_saving(tf.prepare(shared, "full")) == 0
    d, L, V = 16, 4, 300
    total = V * d + 12 * d * d * L
    # B: frozen matrices skip their weight gradient (2 of 6); block 0's c_attn, below which nothing trains, its input gradient too
    frozen = V * d + L * 8 * d * d + (L // 2) * 4 * d * d
    assert tf.flop_saving(tf.prepare(shared, "targeted")) == pytest.approx((2 * frozen + 2 * 3 * d * d) / (6 * total))
    # bottom: the lower blocks skip weight and input gradients (4 of 6); the output layer (wte) only its weight gradient
    assert tf.flop_saving(tf.prepare(shared, "bottom")) == pytest.approx((4 * (L // 2) * 12 * d * d + 2 * V * d) / (6 * total))
    model = tf.prepare(shared, "targeted")
    for p in model.parameters():
        p.requires_grad_(False)
    assert tf.flop_saving(model) == pytest.approx(2 / 3)  # no backward pass at all: the forward's 2 of 6 remain
    model.transformer.ln_f.weight.requires_grad_(True)  # the top LayerNorm: the gradient crosses only the output layer
    assert tf.flop_saving(model) == pytest.approx((4 * 12 * d * d * L + 2 * V * d) / (6 * total))


def test_state_memory_counts_16_bytes_per_trainable_float32_parameter(tiny):
    shared, _ = tiny
    model = tf.prepare(shared, "targeted", "fp32")
    n, trainable = sum(p.numel() for p in model.parameters()), sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert tf.state_memory(model) == {"weights": 4 * n, "gradients": 4 * trainable, "optimizer": 8 * trainable}
    assert tf.state_memory(model, optimizer_states=0)["optimizer"] == 0


def test_bits_per_byte_and_update_consistency():
    assert tf.bits_per_byte(math.log(2) * 3, 1.5) == pytest.approx(2.0)
    with pytest.raises(ValueError, match="bytes_per_token"):
        tf.bits_per_byte(1.0, 0)
    assert tf.update_consistency([0.0, 2.0, 1.0], [0.0, 0.5, 0.25], 16) == pytest.approx(1.0)  # the zero-rate step left out
    with pytest.raises(ValueError, match="one value per step"):
        tf.update_consistency([1.0], [0.1, 0.1], 4)
    a = {"weight_change": {"w": [1.0, 3.0, 2.0]}}
    b = {"weight_change": {"w": [2.0, 2.0, 2.5]}}
    assert tf.steps_b_above_a(a, b) == {"w": pytest.approx(2 / 3)}


@pytest.fixture(scope="module")
def timing():
    config = dataclasses.replace(tf.TIMING_CONFIGS["timing-cpu"], rounds=2, processes=2)
    return json.loads(json.dumps(stored.rounded(tf.timing_study(config, "cpu", progress=lambda line: None))))


def test_the_timing_study_runs_in_separate_processes(timing):
    assert len(timing["processes"]) == 2 and timing["provenance"]["command"].endswith("--config timing-cpu")
    one = timing["processes"][0]
    assert list(one["ms_per_step"]) == list(tf.VARIANTS) and all(len(v) == 2 for v in one["ms_per_step"].values())
    summary = tf.timing_summary(timing)
    assert summary["full"]["saving"].mean == 0 and summary["full"]["saving"].n == 2
    assert summary["bottom"]["flop_saving"] > summary["targeted"]["flop_saving"] > 0 and summary["bottom"]["peak_memory_mb"] is None
    assert summary["bottom"]["state_mb"]["gradients"] < summary["full"]["state_mb"]["gradients"]
    with pytest.raises(ValueError, match="'full'"):
        dataclasses.replace(tf.TIMING_CONFIGS["timing-cpu"], variants=("bottom",))
    for lang in ("vi", "en"):
        assert len(gpt_timing_table(timing, lang).rows) == 4


def test_the_key_results_read_both_studies(tiny, timing):
    results = json.loads(json.dumps(stored.rounded(tf.run_all(dataclasses.replace(TINY, seeds=(0, 1)), "cpu", progress=lambda l: None))))
    c = tf.claims(results, timing)
    assert c["seeds"] == 2 and c["pairs"] == 2 * len(TINY.sample_seeds) and 0 <= c["above_low"] <= c["above_high"] <= 1
    assert c["ratio_low"] <= c["ratio_high"] and c["reversed_gap"] >= 0
    for lang in ("vi", "en"):
        lines = gpt_key_results(results, timing, lang).splitlines()
        assert len(lines) == 6 and all(line.startswith("✓") or line.startswith("✗") for line in lines)


def test_the_stored_timing_study_matches_its_configuration():
    stored = tf.load_timing("timing-gpu")
    config = tf.TIMING_CONFIGS["timing-gpu"]
    assert len(stored["processes"]) == config.processes
    assert all(len(p["ms_per_step"][v]) == config.rounds for p in stored["processes"] for v in config.variants)
    assert "H100" in stored["provenance"]["device"] or "H200" in stored["provenance"]["device"]
    summary = tf.timing_summary(stored)
    assert set(summary) == set(config.variants) and all(s["peak_memory_mb"] > 0 for s in summary.values())


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
        assert len(table.rows) == 4 and len(table.header) == 7


def test_the_stored_gpu_results_match_their_configuration():
    stored = tf.load_results("gpu")
    config = tf.CONFIGS["gpu"]
    assert {(r["variant"], r["seed"]) for r in stored["runs"]} == {(v, s) for v in tf.VARIANTS for s in config.seeds}
    assert len({r["initial_checksum"] for r in stored["runs"]}) == 1
    for seed in config.seeds:
        assert len({r["batch_checksum"] for r in stored["runs"] if r["seed"] == seed}) == 1
    assert len({r["batch_checksum"] for r in stored["runs"]}) == len(config.seeds)
    assert all(len(r["p"]) == len(r["word_rate"]) == len(config.sample_seeds) for r in stored["runs"])
    assert len(stored["p_before"]) == len(stored["word_rate_before"]) == len(config.sample_seeds)
    assert "H100" in stored["provenance"]["device"] or "H200" in stored["provenance"]["device"]
    for lang in ("vi", "en"):
        assert len(gpt_freezing_table(stored, lang).rows) == 4


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
