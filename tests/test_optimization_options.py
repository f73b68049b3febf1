"""course_lib.engine.timing and course_lib.lessons.optimization_options: the timing harness, the FLOP and MFU arithmetic, lesson 05's measures."""

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from course_lib.engine import timing as bench
from course_lib.i18n import number
from course_lib.lessons import optimization_options as oo
from course_lib.lessons import stored
from course_lib.models.gpt import GPT, GPTConfig, flops_per_token, lm_loss
from course_lib.show.tables import (
    alternatives_table,
    measured_table,
    micro_table,
    shapes_table,
    staircase_key_results,
    staircase_table,
    zero_table,
)

TINY = dataclasses.replace(oo.CONFIGS["cpu"], model=GPTConfig(vocab_size=64, block_size=16, n_layer=1, n_embd=16, n_head=2),
                           batch_sizes=(3, 4), vocabularies=(60, 64), batch_size=8, accumulate=4, lengths=(8, 16),
                           heads=2, head_dim=8, attention_batch=2, steps=2, warmup=1, rounds=2)


def test_time_it_warms_up_then_repeats():
    calls = []
    timing = bench.time_it(lambda: calls.append(1), warmup=3, repeats=4, number=2)
    assert len(calls) == 3 + 4 * 2 and len(timing.samples) == 4
    assert timing.low <= timing.median <= timing.high and timing.spread >= 0


@pytest.mark.parametrize("name, precision, peak", [
    ("NVIDIA H100 80GB HBM3", "bf16", 989e12), ("NVIDIA H100 PCIe", "bf16", 756e12), ("NVIDIA H200", "bf16", 989e12),
    ("NVIDIA A100-SXM4-40GB", "tf32", 156e12), ("Tesla T4", "fp16", 65e12), ("Tesla T4", "bf16", None), ("Some GPU", "bf16", None),
])
def test_peaks_are_looked_up_by_name(name, precision, peak):
    assert bench.peak_for_name(name, precision) == pytest.approx(peak) if peak else bench.peak_for_name(name, precision) is None


def test_a_cpu_has_no_peak_and_mfu_is_then_none():
    assert bench.peak_flops("cpu") is None and bench.mfu(1e5, 1e9, None) is None
    assert bench.mfu(460_000, 855e6, 989e12) == pytest.approx(0.3977, abs=1e-4)


def test_gpt2_flops_per_token():
    config = GPTConfig(vocab_size=50304)
    assert flops_per_token(config) == 6 * (12 * 12 * 768**2 + 50304 * 768) + 12 * 12 * 768 * 1024
    assert flops_per_token(dataclasses.replace(config, block_size=2048)) - flops_per_token(config) == 12 * 12 * 768 * 1024


def test_fused_adamw_is_fused_only_on_a_gpu():
    model = torch.nn.Linear(2, 2)
    assert not bench.fused_adamw(model.parameters(), lr=1e-3).defaults["fused"]


def test_train_speed_counts_tokens_and_times_steps():
    torch.manual_seed(0)
    config = TINY.gpt()
    model = GPT(config)
    data = lambda m: torch.randint(0, 64, (4, 17), generator=torch.Generator().manual_seed(m))
    result = bench.train_speed(model, torch.optim.SGD(model.parameters(), lr=0.1), data, lm_loss, steps=2, warmup=1, rounds=2,
                               accumulate=2, flops_per_token=1e6)
    assert result["tokens_per_step"] == 2 * 4 * 16 and result["ms_per_step"] > 0 and result["mfu"] is None
    assert result["ms_low"] <= result["ms_per_step"] <= result["ms_high"]


def test_train_speed_times_the_steps_of_one_run_with_time_it(monkeypatch):
    """The run is set up and checked once (not once per round); time_it times the rounds, ``steps`` steps a call."""
    from course_lib.engine import training

    checks, timed = [], []
    original_check, original_time_it = training._check_arguments, bench.time_it
    monkeypatch.setattr(training, "_check_arguments", lambda *a, **k: (checks.append(1), original_check(*a, **k))[1])
    monkeypatch.setattr(bench, "time_it", lambda fn, **k: (timed.append(k), original_time_it(fn, **k))[1])
    torch.manual_seed(0)
    model = GPT(TINY.gpt())
    data = lambda m: torch.randint(0, 64, (4, 17), generator=torch.Generator().manual_seed(m))
    result = bench.train_speed(model, torch.optim.SGD(model.parameters(), lr=0.1), data, lm_loss, steps=2, warmup=1, rounds=3)
    assert checks == [1] and timed == [{"warmup": 0, "repeats": 3, "device": torch.device("cpu")}]
    assert result["peak_memory_mb"] is None


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_peak_memory_counts_from_when_it_is_made(device):
    """None on a CPU; on a GPU the peak since it was made, not an earlier one."""
    if device == "cuda":
        big = torch.empty(256 * 2**20, dtype=torch.uint8, device=device)
        del big
    peak = bench.PeakMemory(device)
    held = torch.empty(64 * 2**20, dtype=torch.uint8, device=device)
    if device == "cpu":
        assert peak.mb is None and bench.PeakMemory(device, above_now=True).mb is None
    else:
        assert 64 <= peak.mb < 256
        above = bench.PeakMemory(device, above_now=True)  # 64 MiB already held: not counted
        more = torch.empty(32 * 2**20, dtype=torch.uint8, device=device)
        assert 32 <= above.mb < 64
        del more
    del held


def test_step_timer_waits_for_the_gpu_with_the_timing_module(monkeypatch):
    """One synchronize for the engine: StepTimer calls timing.synchronize, before and after every step."""
    from course_lib.engine import callbacks
    from course_lib.engine.training import train

    assert callbacks.synchronize is bench.synchronize
    waits = []
    monkeypatch.setattr(callbacks, "synchronize", lambda device: waits.append(device.type))
    model = torch.nn.Linear(2, 1)
    train(model, torch.optim.SGD(model.parameters(), lr=0.1), lambda m: torch.ones(3, 2), lambda model, x: model(x).pow(2).mean(),
          3, callbacks=[callbacks.StepTimer()], device="cpu")
    assert waits == ["cpu"] * 6


def test_memory_per_parameter():
    sizes = oo.memory_per_parameter()
    assert sizes["weight"] == {"fp32": 4, "bf16": 2, "fp16": 2}
    assert sizes["adamw_training"] == {"fp32": 16, "mixed bf16": 16, "pure bf16": 8}


def test_cost_terms_cross_at_six_times_the_width():
    config = GPTConfig(vocab_size=64, n_layer=2, n_embd=32, n_head=2)
    rows = oo.cost_terms(config, lengths=(6 * 32,))
    dense_blocks = 6 * 12 * 2 * 32 * 32
    assert rows[0]["attention"] == dense_blocks  # 12·L·d·T = 72·L·d² at T = 6d
    assert rows[0]["attention_share"] == pytest.approx(dense_blocks / (rows[0]["dense"] + dense_blocks))


def test_cumulative_days():
    assert oo.cumulative_days(0.05, 1e9) == pytest.approx(578.7, abs=0.05)
    with pytest.raises(ValueError, match="seconds_per_iteration must be a finite number >= 0"):
        oo.cumulative_days(-1, 10)
    with pytest.raises(ValueError, match="iterations must be a finite number >= 0"):
        oo.cumulative_days(1, float("inf"))


def test_accumulation_gives_the_same_gradient():
    result = oo.accumulation(TINY, "cpu")
    assert result["max_relative_difference"] < 1e-5 and result["k"] == 4
    with pytest.raises(ValueError, match="multiple of accumulate"):
        oo.accumulation(dataclasses.replace(TINY, batch_size=6), "cpu")


def test_the_live_measurements_run_and_fill_their_tables():
    rows = oo.batch_sizes(TINY, "cpu")
    assert [r["batch"] for r in rows] == [3, 4] and all(r["ms_per_sequence"] > 0 for r in rows)
    assert [r["length"] for r in oo.attention_lengths(TINY, "cpu")] == [8, 16]
    assert oo.contiguity("cpu", 64)["is_contiguous"] == [True, False]
    assert oo.pinned_copies("cpu") is None and oo.compiled(TINY, "cpu") is None
    table = measured_table(rows, [("batch", "col_batch", 0), ("ms_per_step", "col_ms_step", 1), ("mfu", "col_mfu", 1, 100)], "vi")
    assert table.rows[0][0] == "3" and table.rows[0][2] == "-"
    assert measured_table([{"v": 50304}], [("v", "col_vocab", 0)], "vi").rows[0][0] == "50.304"


def test_the_stored_gpu_results():
    results = oo.load_results("gpu")
    assert "H100" in results["provenance"]["device"] or "H200" in results["provenance"]["device"]
    assert [r["batch"] for r in results["batch_sizes"]] == list(oo.CONFIGS["gpu"].batch_sizes)
    assert results["accumulation"]["max_relative_difference"] < 1e-4
    stairs = oo.staircase_summary(oo.load_staircase())
    for lang in ("vi", "en"):
        assert len(micro_table(results, stairs, lang).rows) == 4


def test_the_stored_benchmark_loads_with_what_the_lesson_reads():
    bench = oo.load_benchmark()
    assert bench["comparison"]["rows"] and oo.headline(bench)["best_ratio"] > 0


def test_stored_results_of_another_configuration_are_refused(monkeypatch):
    monkeypatch.setitem(oo.CONFIGS, "gpu", dataclasses.replace(oo.CONFIGS["gpu"], steps=1))
    with pytest.raises(ValueError, match="another configuration"):
        oo.load_results("gpu")


def test_bad_arguments():
    with pytest.raises(TypeError, match="fn must be a function"):
        bench.time_it(3)
    with pytest.raises(ValueError, match="precision must be one of"):
        bench.peak_flops("cpu", "fp8")
    with pytest.raises(ValueError, match="tokens_per_s must be > 0"):
        bench.mfu(0, 1e9, 1e12)
    with pytest.raises(TypeError, match="peak must be a real number"):
        bench.mfu(1e5, 1e9, "989e12")


def test_attention_plot_is_labelled_in_both_languages():
    import matplotlib.pyplot as plt

    from course_lib.show.plotting import plot_attention_lengths

    rows = oo.load_results("gpu")["attention_lengths"]
    for lang, word in (("vi", "Thời gian"), ("en", "time")):
        fig = plot_attention_lengths(rows, lang)
        assert word in fig.axes[0].get_ylabel() and len(fig.axes[0].lines) == 2
        plt.close(fig)
    with pytest.raises(ValueError, match="rows is empty"):
        plot_attention_lengths([], "en")


def test_the_store_command_writes_rounded_results_that_load_back(tmp_path, monkeypatch):

    @dataclasses.dataclass(frozen=True)
    class Sizes:
        name: str
        steps: int

    configs = {"gpu": Sizes("gpu", 3)}
    run_all = lambda config, device: {"config": dataclasses.asdict(config), "x": 1 / 3, "xs": (2 / 3, 1),
                                      "provenance": stored.provenance(torch.device("cpu"), "cmd")}
    monkeypatch.setattr(stored, "DATA", tmp_path)
    stored.main(["--config", "gpu"], lesson="99", description="test", configs=configs, run_all=run_all)
    results = stored.load("99", "gpu", "test", {"config": configs["gpu"]})
    assert results["x"] == 0.333333 and results["xs"] == [0.666667, 1] and results["provenance"]["command"] == "cmd"
    with pytest.raises(ValueError, match="another configuration"):
        stored.load("99", "gpu", "test", {"config": Sizes("gpu", 4)})
    with pytest.raises(FileNotFoundError, match="run `test` on a GPU"):
        stored.load("99", "cpu", "test", {})


def test_a_field_added_after_the_results_were_stored_must_hold_its_default(tmp_path, monkeypatch):
    """A file made before a configuration gained a field (say ``precision``) stays valid only while the field keeps its default."""

    @dataclasses.dataclass(frozen=True)
    class Sizes:
        name: str
        steps: int
        precision: str = "fp32"

    monkeypatch.setattr(stored, "DATA", tmp_path)
    stored.path("99", "gpu").write_text(json.dumps({"config": {"name": "gpu", "steps": 3}}), encoding="utf-8")
    assert stored.load("99", "gpu", "test", {"config": Sizes("gpu", 3)})["config"]["steps"] == 3
    with pytest.raises(ValueError, match="another configuration"):
        stored.load("99", "gpu", "test", {"config": Sizes("gpu", 3, precision="fp64")})



@pytest.mark.parametrize("lesson", ["finetuning_bert", "targeted_freezing_gpt", "optimization_options"])
def test_a_missing_stored_file_names_a_command_that_exists(tmp_path, monkeypatch, lesson):
    """The message names `python -m <module> --config gpu`, and that module exists and has the command line."""
    import importlib
    import re

    module = importlib.import_module(f"course_lib.lessons.{lesson}")
    monkeypatch.setattr(stored, "DATA", tmp_path)
    with pytest.raises(FileNotFoundError) as missing:
        module.load_results("gpu")
    named = re.search(r"`python -m ([\w.]+) --config gpu`", str(missing.value)).group(1)
    assert callable(importlib.import_module(named).main)


@pytest.mark.parametrize("lesson", ["finetuning_bert", "targeted_freezing_gpt", "optimization_options"])
def test_the_stored_command_a_lesson_prints_still_runs(lesson):
    """The provenance the lesson prints names a module that exists today (a rename keeps what ran as command_as_run)."""
    import importlib
    import re

    module = importlib.import_module(f"course_lib.lessons.{lesson}")
    command = module.load_results("gpu")["provenance"]["command"]
    assert re.fullmatch(rf"python -m {re.escape(module.__name__)} --config gpu", command), command


def test_a_field_added_to_a_nested_configuration_keeps_older_files_valid(tmp_path, monkeypatch):
    """A GPTConfig field added after a file was stored (so absent from its 'model') is fine while it holds its default."""

    @dataclasses.dataclass(frozen=True)
    class Sizes:
        name: str
        model: GPTConfig = GPTConfig(n_layer=2)

    monkeypatch.setattr(stored, "DATA", tmp_path)
    old_model = {k: v for k, v in dataclasses.asdict(GPTConfig(n_layer=2)).items() if k != "bias"}  # written before `bias`
    stored.path("99", "gpu").write_text(json.dumps({"config": {"name": "gpu", "model": old_model}}), encoding="utf-8")
    assert stored.load("99", "gpu", "test", {"config": Sizes("gpu")})["config"]["model"]["n_layer"] == 2
    with pytest.raises(ValueError, match="another configuration"):
        stored.load("99", "gpu", "test", {"config": Sizes("gpu", GPTConfig(n_layer=2, bias=False))})
    with pytest.raises(ValueError, match="another configuration"):
        stored.load("99", "gpu", "test", {"config": Sizes("gpu", GPTConfig(n_layer=3))})


def _recording_run_all(calls, during=None):
    def run_all(config, device):
        calls.append(config.name)
        if during:
            during()
        return {"config": dataclasses.asdict(config), "x": 1 / 3}
    return run_all


@dataclasses.dataclass(frozen=True)
class _Sizes:
    name: str
    steps: int = 3


def test_the_store_command_checks_out_before_the_run(tmp_path):
    """A place that cannot be written is refused before the (hours-long) run, not after it."""
    in_the_way = tmp_path / "results"
    in_the_way.write_text("a file where the folder should be")
    calls = []
    for out in (in_the_way / "lesson99_gpu.json", tmp_path):
        with pytest.raises(ValueError, match="--out"):
            stored.main(["--config", "gpu", "--out", str(out)], lesson="99", description="test", configs={"gpu": _Sizes("gpu")},
                        run_all=_recording_run_all(calls))
    assert calls == []


def test_the_store_command_keeps_the_results_when_the_place_goes_away_during_the_run(tmp_path):
    """The folder replaced by a file while run_all runs: the results are written to a temporary file that the warning names."""
    folder = tmp_path / "results"
    calls = []

    def replace_the_folder():
        folder.rmdir()
        folder.write_text("now a file")

    with pytest.warns(UserWarning, match="could not write the results") as warned:
        stored.main(["--config", "gpu", "--out", str(folder / "lesson99_gpu.json")], lesson="99", description="test",
                    configs={"gpu": _Sizes("gpu")}, run_all=_recording_run_all(calls, replace_the_folder))
    kept = Path(str(warned[0].message).rsplit("they are kept in ", 1)[1])
    try:
        assert calls == ["gpu"] and json.loads(kept.read_text(encoding="utf-8")) == {"config": {"name": "gpu", "steps": 3}, "x": 0.333333}
    finally:
        kept.unlink()


def test_the_store_command_writes_its_file_whole(tmp_path):
    out = tmp_path / "deep" / "er" / "lesson99_gpu.json"
    stored.main(["--config", "gpu", "--out", str(out)], lesson="99", description="test", configs={"gpu": _Sizes("gpu")},
                run_all=_recording_run_all([]))
    assert json.loads(out.read_text(encoding="utf-8"))["x"] == 0.333333 and [p.name for p in out.parent.iterdir()] == [out.name]


def test_each_precision_is_timed_as_it_is_labelled(monkeypatch):
    """fp16 and fp64 are timed in fp16 and fp64, not in fp32 under their names; tf32 is fp32 with TF32 allowed."""
    timed = []
    monkeypatch.setattr(oo, "_speed", lambda config, device, precision: timed.append(
        (precision, torch.backends.cuda.matmul.allow_tf32)) or {"ms_per_step": 1.0})
    config = dataclasses.replace(TINY, precisions=("fp32", "tf32", "bf16", "fp16", "fp64"))
    rows = oo.precisions(config, "cpu")
    assert [r["precision"] for r in rows] == list(config.precisions)
    assert timed == [("fp32", False), ("fp32", True), ("bf16", False), ("fp16", False), ("fp64", False)]
    assert not torch.backends.cuda.matmul.allow_tf32


def test_fp64_is_timed_with_float64_weights(monkeypatch):
    timed, train_speed = [], oo.train_speed
    monkeypatch.setattr(oo, "train_speed", lambda model, *args, **kwargs: timed.append(
        (next(model.parameters()).dtype, kwargs["precision"])) or train_speed(model, *args, **kwargs))
    row = oo.precisions(dataclasses.replace(TINY, precisions=("fp64",)), "cpu")[0]
    assert timed == [(torch.float64, "fp64")] and row["precision"] == "fp64" and row["ms_per_step"] > 0 and row["mfu"] is None
    assert torch.get_default_dtype() == torch.float32


def test_the_shipped_configurations_pass_their_checks():
    for name, config in oo.CONFIGS.items():
        assert dataclasses.replace(config) == config and stored.configuration(oo.CONFIGS, name) is config


# ---------------------------------------------------------------------------------------------- the staircase

from course_lib.models import fast_step  # noqa: E402

OPTION_FIELDS = ("precision", "tf32", "compile", "cuda_graphs", "fused_optimizer", "attention_kernel", "pinned", "model")


def _changed(a, b):
    return {f for f in OPTION_FIELDS if getattr(a, f) != getattr(b, f)}


def test_each_rung_adds_one_option_and_the_last_is_the_fast_step():
    steps = fast_step.staircase()
    rungs = list(steps.values())
    assert list(steps) == list(fast_step.RUNGS) and rungs[-1] == fast_step.FIRST_ROUND
    assert fast_step.FAST == dataclasses.replace(fast_step.FIRST_ROUND, clip_in_step=True), "the staircase predates only clip_in_step"
    plain = rungs[0]
    assert (plain.precision, plain.tf32, plain.compile, plain.fused_optimizer, plain.attention_kernel, plain.pinned) == (
        "fp32", False, False, False, "naive", False)
    assert plain.model.vocab_size == 50257 and fast_step.FAST.model.vocab_size == fast_step.padded(50257) == 50304
    for before, after in zip(rungs, rungs[1:]):
        assert len(_changed(before, after)) == 1, (before, after)


def test_each_alternative_changes_its_rung_only_as_declared():
    steps, others = fast_step.staircase(), fast_step.alternatives()
    assert _changed(steps["bf16"], others["fp16"]) == {"precision"} and others["fp16"].precision == "fp16"
    for kernel in ("flash", "efficient", "math"):
        assert _changed(steps["sdpa"], others[f"sdpa_{kernel}"]) == {"attention_kernel"}
    accumulated = others["accumulate"]
    assert accumulated.tokens_per_step == steps["compile"].tokens_per_step and accumulated.accumulate == 4
    assert not accumulated.cuda_graphs


def test_cuda_graphs_refuse_to_accumulate():
    with pytest.raises(ValueError, match="169545"):
        dataclasses.replace(fast_step.FAST, micro_batch=3, accumulate=4)


def test_a_staircase_that_cannot_end_at_its_top_is_refused():
    with pytest.raises(ValueError, match="unpadded_vocab"):
        fast_step.staircase(fast_step.FAST, 50305)
    with pytest.raises(ValueError, match="autotune|RUNGS"):
        fast_step.staircase(dataclasses.replace(fast_step.FAST, autotune=True))


def test_elapsed_times_the_call_on_a_cpu():
    import time

    assert bench.elapsed(lambda: time.sleep(0.02), "cpu") >= 0.02
    with pytest.raises(TypeError, match="fn"):
        bench.elapsed(3, "cpu")


SMALL_STAIRCASE = dataclasses.replace(oo.STAIRCASE_CONFIGS["staircase-cpu"], name="small", steps=1, rounds=2,
                                      shapes=oo.CPU_SHAPES[:4])


def test_one_process_of_the_staircase_times_every_rung_and_shape():
    result = oo.time_staircase(SMALL_STAIRCASE, "cpu")
    assert list(result["rungs"]) == list(SMALL_STAIRCASE.rungs) and not result["errors"]
    assert all(len(ms) == 2 and min(ms) > 0 for ms in result["rungs"].values())
    assert [s["k"] for s in result["shapes"]] == [128, 128, 126, 128] and all(len(s["ms"]) == 2 for s in result["shapes"])


def test_the_summary_chains_the_rungs_and_compares_shapes():
    processes = [{"rungs": {"plain": [10.0, 10.0], "bf16": [5.0, 5.0], "sdpa": [4.0, 4.0], "vocab": [2.0, 2.0], "fused_adamw": [1.0, 1.0]},
                  "peak_memory_mb": {}, "errors": {}, "alternatives": {}, "alternatives_memory_mb": {},
                  "shapes": [{"varies": v, "m": m, "k": k, "n": n, "ms": [t, t]}
                             for (v, m, k, n), t in zip(oo.CPU_SHAPES[:4], (2.0, 1.0, 1.0, 1.0))]}]
    results = {"config": dataclasses.asdict(SMALL_STAIRCASE), "processes": processes,
               "logits": {"dtype": "bfloat16", "logits_mb": 1.0, "fp32_logits_mb": 2.0, "peak_loss_only_mb": None, "peak_kept_mb": None},
               "provenance": {"date": "d", "device": "CPU", "driver": None, "torch": "t", "cuda": None, "command": "c"}}
    summary = oo.staircase_summary(results)
    assert [r["vs_previous"] for r in summary["rungs"]] == [1.0, 2.0, 1.25, 2.0, 2.0]
    assert [r["vs_plain"] for r in summary["rungs"]] == [1.0, 2.0, 2.5, 5.0, 10.0]
    vocab_2000, vocab_2048 = summary["shapes"][:2]
    assert vocab_2000["round_gain"] == pytest.approx(2.0 * 2048 / 2000) and "round_gain" not in vocab_2048


def test_the_staircase_command_runs_on_a_cpu_at_a_small_size(tmp_path, monkeypatch):
    """The GPU study's one command, as the lesson names it, at the CPU configuration's size: separate processes, stored, loaded back."""
    monkeypatch.setitem(oo.STAIRCASE_CONFIGS, "staircase-cpu", dataclasses.replace(SMALL_STAIRCASE, name="staircase-cpu", processes=2))
    out = tmp_path / "staircase.json"
    oo.main(["--config", "staircase-cpu", "--device", "cpu", "--out", str(out)])
    results = json.loads(out.read_text())
    assert len(results["processes"]) == 2 and results["logits"]["dtype"] == "bfloat16"
    summary = oo.staircase_summary(results)
    assert [r["rung"] for r in summary["rungs"]] == list(SMALL_STAIRCASE.rungs) and summary["processes"] == 2


def test_the_stored_staircase_is_complete_and_ends_at_the_fast_step():
    results = oo.load_staircase()
    summary = oo.staircase_summary(results)
    assert "H100" in results["provenance"]["device"] and not summary["errors"]
    assert [r["rung"] for r in summary["rungs"]] == list(fast_step.RUNGS) and summary["processes"] == 3
    assert [r["alternative"] for r in summary["alternatives"]] == list(fast_step.ALTERNATIVES)
    assert oo.staircase_config(results["config"]).steps_of()["pinned"] == fast_step.FIRST_ROUND
    logits = results["logits"]
    assert logits["dtype"] == "bfloat16" and logits["logits_mb"] == pytest.approx(12 * 1024 * 50304 * 2 / 2**20)


def test_the_logits_under_bf16_autocast_are_bf16_on_a_cpu_too():
    logits = oo.logits_memory(SMALL_STAIRCASE, "cpu")
    model = SMALL_STAIRCASE.top.model
    assert logits["dtype"] == "bfloat16"
    assert logits["logits_mb"] == pytest.approx(2 * model.block_size * model.vocab_size * 2 / 2**20) == logits["fp32_logits_mb"] / 2


def test_ten_tying_seeds_are_stored_from_a_cpu():
    results = oo.load_results("tying-cpu")
    assert set(results) == {"config", "provenance", "weight_tying"} and results["provenance"]["device"] == "CPU"
    assert all(len(results["weight_tying"][k]["eval_loss"]) == 10 for k in ("tied", "untied"))


@pytest.mark.parametrize("change, message", [
    (dict(rungs=("bf16", "sdpa")), "start with 'plain'"), (dict(rungs=("plain", "warp")), "rungs\\[1\\]"),
    (dict(alternatives=("fp16",)), "replaces the rung 'bf16'"), (dict(rounds=1), "rounds"),
    (dict(shapes=(("vocab", 0, 1, 1),)), "shapes\\[0\\]"), (dict(shape_dtype="fp8"), "shape_dtype"),
])
def test_bad_staircase_configurations_are_refused(change, message):
    config = oo.STAIRCASE_CONFIGS["staircase-cpu"]
    with pytest.raises((ValueError, TypeError), match=message):
        dataclasses.replace(config, **{"rungs": ("plain", "tf32"), **change} if "rungs" not in change and "alternatives" in change else change)


def test_a_configuration_measures_only_its_parts():
    with pytest.raises(ValueError, match="parts\\[0\\]"):
        dataclasses.replace(oo.CONFIGS["cpu"], parts=("speed",))
    with pytest.raises(ValueError, match="parts is empty"):
        dataclasses.replace(oo.CONFIGS["cpu"], parts=())


def test_the_stored_staircase_supports_what_lesson_05_says():
    """Each claim the lesson's prose makes about the staircase, checked on the stored study (a re-run must still support it)."""
    stairs = oo.staircase_summary(oo.load_staircase())
    rungs = {r["rung"]: r for r in stairs["rungs"]}
    climbs = sorted((r for r in stairs["rungs"] if r["rung"] != "plain"), key=lambda r: -r["vs_previous"])
    assert {r["rung"] for r in climbs[:2]} == {"tf32", "sdpa"} and all(r["vs_previous"] > 1.9 for r in climbs[:2])  # "each about ×2"
    assert [r["rung"] for r in climbs[2:4]] == ["vocab", "compile"]
    assert rungs["bf16"]["vs_previous"] < 1.2  # "bf16 after TF32 gains little"
    assert all(abs(rungs[r]["vs_previous"] - 1) <= 0.02 for r in ("cudnn", "cuda_graphs", "pinned"))  # "2 % or less"
    assert rungs["pinned"]["vs_previous_high"] < 1  # "about 1 % slower in all three processes"
    assert rungs["sdpa"]["peak_memory_mb"] / rungs["bf16"]["peak_memory_mb"] < 0.55  # "falls by half when SDPA replaces..."
    assert rungs["compile"]["peak_memory_mb"] < 0.7 * rungs["sdpa"]["peak_memory_mb"]  # "and again once compiled"
    assert 10 < rungs["pinned"]["vs_plain"] < 12  # "about elevenfold"
    others = {r["alternative"]: r for r in stairs["alternatives"]}
    assert others["fp16"]["vs_base_low"] > 1  # "fp16 ... slightly faster than bf16 at that rung"
    assert others["sdpa_math"]["vs_base"] < 0.6 and abs(others["sdpa_flash"]["vs_base"] - 1) < 0.05  # "within a few per cent"
    assert abs(rungs["cudnn"]["vs_previous"] - 1) < 0.05
    accumulated = others["accumulate"]
    assert 0.4 < accumulated["vs_base"] < 0.6  # "about twice the time"
    assert 0.4 < accumulated["peak_memory_mb"] / rungs["compile"]["peak_memory_mb"] < 0.6  # "and half the memory"
    shapes = [r for r in stairs["shapes"] if "round_gain" in r]
    gain = {(r["varies"], r["k"]): r["round_gain_low"] for r in shapes}
    assert gain[("vocab", 768)] > 3 and gain[("width", 762)] > 2 and gain[("inner", 62)] > 1.5  # "several times", "almost twice"
    assert [r["round_gain_high"] for r in shapes if r["varies"] == "tokens"][0] < 1  # "not faster, in all three processes"
    precision = {r["precision"]: r for r in oo.load_results("gpu")["precisions"]}
    assert precision["tf32"]["ms_per_step"] / precision["bf16"]["ms_per_step"] > 1.5  # "far more on a step whose attention is fused"
    assert 1 < gain[("inner", 120)] < 1.1  # "a few per cent"
    logits = oo.load_staircase()["logits"]
    assert 0.9 < (logits["peak_kept_mb"] - logits["peak_loss_only_mb"]) / logits["logits_mb"] < 1.1  # "about its size"


def test_the_stored_tying_seeds_support_what_lesson_05_says():
    import statistics

    losses = {k: oo.load_results("tying-cpu")["weight_tying"][k]["eval_loss"] for k in ("tied", "untied")}
    assert statistics.mean(losses["tied"]) > statistics.mean(losses["untied"])  # "did not improve learning"
    assert sum(x < 5.3 for x in losses["untied"]) > sum(x < 5.3 for x in losses["tied"])  # "more untied runs left it"


def test_the_staircase_tables_show_every_row_in_both_languages():
    stairs = oo.staircase_summary(oo.load_staircase())
    for lang in ("vi", "en"):
        assert len(staircase_table(stairs, lang).rows) == len(fast_step.RUNGS)
        assert len(alternatives_table(stairs, lang).rows) == len(fast_step.ALTERNATIVES)
        assert len(shapes_table(stairs, lang).rows) == len(oo.GPU_SHAPES)
        assert [row[0] for row in zero_table({"a": 10**9}, 8, lang).rows] == ["a"]
    assert staircase_table(stairs, "vi").rows[5][5] == "11,2"  # Vietnamese numbers: a decimal comma


def test_sharded_memory_follows_zero_and_the_bubble_gpipe():
    memory = oo.sharded_memory(10**9, 8)
    assert memory == {"ddp": 16e9, "zero1": 9e9, "zero2": 5.5e9, "zero3": 2e9}
    assert oo.pipeline_bubble(1, 8) == 0 and oo.pipeline_bubble(4, 8) == pytest.approx(3 / 11)
    assert oo.token_storage(10) == {"uint16": 20, "int32": 40, "int64": 80} and "uint16" not in oo.token_storage(10, 100_000)


def test_a_rung_that_failed_everywhere_leaves_its_ratios_out():
    """A back-end a GPU lacks (say cuDNN's on an old card) fails to build: the summary and tables go on without it."""
    processes = [{"rungs": {"bf16": [5.0, 5.0], "sdpa": [4.0, 4.0]}, "peak_memory_mb": {}, "errors": {"plain": "RuntimeError: x"},
                  "alternatives": {}, "alternatives_memory_mb": {}, "shapes": [{"varies": "vocab", "m": 1, "k": 1, "n": 1, "ms": [1.0, 1.0]}]}]
    config = dataclasses.replace(SMALL_STAIRCASE, shapes=(("vocab", 1, 1, 1),))
    results = {"config": dataclasses.asdict(config), "processes": processes,
               "logits": {"dtype": "bfloat16", "logits_mb": 1.0, "fp32_logits_mb": 2.0, "peak_loss_only_mb": None, "peak_kept_mb": None},
               "provenance": {"date": "d", "device": "CPU", "driver": None, "torch": "t", "cuda": None, "command": "c"}}
    summary = oo.staircase_summary(results)
    assert [r["rung"] for r in summary["rungs"]] == ["bf16", "sdpa"] and summary["errors"] == {"plain": "RuntimeError: x"}
    assert summary["rungs"][0]["vs_plain"] is None and summary["rungs"][1]["vs_previous"] == 1.25
    assert [row[-1] for row in staircase_table(summary, "en").rows] == ["-", "-"]


def test_the_loss_curve_figure_shows_the_gap_beside_the_curves_in_both_languages():
    from course_lib.i18n import text
    from course_lib.show.plotting import plot_loss_curves

    loss = oo.load_benchmark()["loss"]
    for lang in ("vi", "en"):
        curves, gap = plot_loss_curves(loss["plain"], loss["fast"], lang).axes
        assert [line.get_linestyle() for line in curves.get_lines() if line.get_label() == text("bench_fast", lang)] == ["--"]
        assert gap.get_ylabel() == text("bench_gap_axis", lang)
        drawn = gap.get_lines()[0].get_ydata()
        assert max(abs(v) for v in drawn) == pytest.approx(100 * loss["agreement"]["max_gap"], rel=1e-3)  # the stored curves are rounded


def test_interleaved_turns_the_order_each_round():
    order = []
    seconds = bench.interleaved({name: (lambda name=name: order.append(name)) for name in "abc"}, 4, "cpu")
    assert order == list("abc" "bca" "cab" "abc") and all(len(s) == 4 and min(s) >= 0 for s in seconds.values())
    assert bench.interleaved({}, 3, "cpu") == {}


def test_tying_summary_and_the_key_results_read_the_stored_seeds():
    import statistics

    results = oo.load_results("tying-cpu")
    summary = oo.tying_summary(results)
    for kind in ("tied", "untied"):
        losses = results["weight_tying"][kind]["eval_loss"]
        assert summary[kind]["mean"] == statistics.mean(losses) and summary[kind]["sd"] == statistics.stdev(losses)
        assert summary[kind]["below"] == sum(x < 5.3 for x in losses) and summary[kind]["n"] == 10
    stairs = oo.staircase_summary(oo.load_staircase())
    for lang in ("vi", "en"):
        lines = staircase_key_results(stairs, oo.load_staircase(), results, lang).splitlines()
        assert len(lines) == 3 and "H100" in lines[0] and number(summary["untied"]["mean"], lang, 2) in lines[2]
