"""course_lib.lessons.training_mistakes: each experiment against an independent computation or a property it must have."""

import math

import pytest
import torch
import torch.distributed as dist

from course_lib.engine.schedules import cosine_with_warmup
from course_lib.engine.timing import PEAK_FLOPS
from course_lib.lessons import training_mistakes as tm
from course_lib.lessons.optimization_options import load_benchmark
from course_lib.models.gpt import GPT

# (1) the loss of accumulation


def test_mean_of_means_is_biased_and_the_token_sum_is_the_whole_batch():
    result = tm.accumulation_normalisation(((16, 14), (3, 2)))
    assert result["tokens"] == [30, 5]
    assert result["weights"] == pytest.approx([35 / (2 * 30), 35 / (2 * 5)])
    assert result["token_mean"] < 1e-12 and result["loop_pairs"] < 1e-12
    assert result["mean_of_means"] > 0.1, "unequal token counts must move the gradient"
    assert result["loop_means"] == pytest.approx(result["mean_of_means"], rel=1e-9), "the loop with means is the mean of means"
    assert result["loss_mean_of_means"] != pytest.approx(result["loss_token_mean"], rel=1e-6)


def test_equal_token_counts_make_both_forms_agree():
    result = tm.accumulation_normalisation(((8, 8), (10, 6), (16,)))
    assert result["tokens"] == [16, 16, 16] and result["weights"] == pytest.approx([1.0, 1.0, 1.0])
    assert result["mean_of_means"] < 1e-12 and result["loop_means"] < 1e-12
    assert result["loss_mean_of_means"] == pytest.approx(result["loss_token_mean"], rel=1e-12)


def test_mean_of_means_loss_is_the_average_of_per_micro_batch_means():
    """The returned loss recomputed here from the masked token losses of the same micro-batches and weights."""
    lengths = ((5, 16), (2,))
    result = tm.accumulation_normalisation(lengths, seed=3)
    batches = tm._padded_batches(lengths, 3)
    with tm.default_dtype(torch.float64), torch.random.fork_rng(devices=[]):
        torch.manual_seed(3)
        model = GPT(tm.TOKEN_GPT)
    with torch.no_grad():
        sums = [float(tm.masked_token_losses(model, b).sum()) for b in batches]
    counts = [sum(row) for row in lengths]
    assert result["loss_token_mean"] == pytest.approx(sum(sums) / sum(counts), rel=1e-12)
    assert result["loss_mean_of_means"] == pytest.approx(sum(s / n for s, n in zip(sums, counts)) / 2, rel=1e-12)


def test_masked_positions_add_no_loss():
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = GPT(tm.TOKEN_GPT)
    tokens, mask = tm._padded_batches(((4, 9),), 0)[0]
    losses = tm.masked_token_losses(model, (tokens, mask))
    assert losses.shape == mask.shape
    assert bool((losses[mask == 0] == 0).all()) and bool((losses[mask == 1] > 0).all())


# (2) accumulation under DDP


@pytest.mark.skipif(not (dist.is_available() and dist.is_gloo_available()), reason="needs torch.distributed with gloo")
def test_no_sync_all_reduces_once_and_every_way_gives_the_global_gradient(tmp_path):
    result = tm.accumulation_under_ddp(tmp_path, accumulate=3)
    assert result["allreduces"] == {"no_sync": 1, "every_step": 3, "course_loop": 1}
    assert max(result["max_difference"].values()) < 1e-12
    assert result["same_on_ranks"] is True
    # The loop's (sum, count) pairs on ranks of unequal sizes: the mean over all values (0.13 apart before the loop divided
    # by the ranks' mean count); the loss is recorded in float32.
    assert result["unequal_pairs_difference"] < 1e-12 and result["unequal_pairs_loss_difference"] < 1e-6


# (3) counting the schedule's steps


def test_schedule_ways_against_the_schedule_itself():
    steps, k, p = 1000, 4, 2
    result = tm.schedule_step_counting(steps, k, p, warmup_fraction=0.05, min_lr_ratio=0.1)
    right = cosine_with_warmup(50, steps, min_lr_ratio=0.1)
    long = cosine_with_warmup(50 * k * p, steps * k * p, min_lr_ratio=0.1)
    assert result["right"]["factors"] == [right(t) for t in range(steps)]
    assert result["per_micro_batch"]["factors"] == [right(t * k) for t in range(steps)]
    assert result["samples_as_steps"]["factors"] == [long(t) for t in range(steps)]
    assert result["right"]["warmup_end"] == 50 and result["samples_as_steps"]["warmup_end"] == 50 * k * p
    assert result["per_micro_batch"]["warmup_end"] == math.ceil(50 / k)
    assert result["samples_as_steps"]["floor_step"] is None and result["samples_as_steps"]["final"] > 0.9
    assert steps / k * 0.9 < result["per_micro_batch"]["floor_step"] <= steps / k
    assert result["per_micro_batch"]["max_after_floor"] > 0.99, "past its declared end the cosine climbs back"
    assert result["right"]["final"] == pytest.approx(0.1, abs=1e-3)


def test_without_accumulation_or_processes_the_three_ways_agree():
    result = tm.schedule_step_counting(200, 1, 1)
    assert result["right"]["factors"] == result["per_micro_batch"]["factors"] == result["samples_as_steps"]["factors"]


# (4) fp16


def test_loss_scaling_keeps_what_fp16_flushes():
    result = tm.fp16_underflow((1, 1024))
    small, shrunk = result["rows"]
    assert shrunk["lost_unscaled"] > 0.05 > small["lost_unscaled"], "gradients 1024 times smaller lose far more entries"
    assert shrunk["lost_scaled"] < 1e-3 and shrunk["error_scaled"] < 1e-2
    assert shrunk["error_unscaled"] > 10 * shrunk["error_scaled"]
    assert all(row[f"finite_{w}"] for row in result["rows"] for w in ("scaled", "unscaled"))
    assert result["smallest_reference"] < 2.0**-24, "some reference entries are below fp16's smallest number"


def test_grad_scaler_halves_after_inf_skips_the_step_and_grows_after_good_steps():
    records = tm.grad_scaler_steps(steps=10, init_scale=2.0**24, growth_interval=2)
    assert not records[0]["finite"], "a scale of 2^24 overflows fp16 on the first step"
    assert any(r["finite"] for r in records)
    good_in_a_row = 0
    for now, after in zip(records, records[1:]):
        assert now["moved"] == now["finite"], "a step is skipped exactly when its gradients are not finite"
        good_in_a_row = good_in_a_row + 1 if now["finite"] else 0
        if not now["finite"]:
            assert after["scale"] == now["scale"] / 2
        elif good_in_a_row == 2:
            assert after["scale"] == now["scale"] * 2
            good_in_a_row = 0
        else:
            assert after["scale"] == now["scale"]


@pytest.mark.parametrize("scale", [2.0**16, 2.0**8])
def test_clipping_scaled_gradients_shrinks_the_update_by_the_scale(scale):
    result = tm.clip_before_unscale(scale=scale, max_norm=1.0, lr=0.1)
    g = result["grad_norm"]
    assert result["seen_norm_wrong"] == pytest.approx(scale * g, rel=1e-9)
    assert result["update_right"] == pytest.approx(0.1 * min(g, 1.0), rel=1e-6)
    assert result["update_wrong"] == pytest.approx(0.1 * 1.0 / scale, rel=1e-6)
    assert result["ratio"] == pytest.approx(1 / (scale * min(g, 1.0)), rel=1e-6)


def test_with_scale_one_the_order_does_not_matter():
    result = tm.clip_before_unscale(scale=1.0)
    assert result["ratio"] == pytest.approx(1.0, rel=1e-12)


# (5) MFU against which peak


def test_mfu_against_the_three_peaks():
    results = load_benchmark()
    peaks = tm.mfu_against_peaks(results)
    row = next(r for r in results["comparison"]["rows"] if r["group"] == "course" and r["micro_batch"] == 12)
    dense = PEAK_FLOPS["H100 SXM"]["bf16"]
    assert "H100" in peaks["device"] and peaks["peak_dense"] == dense
    assert peaks["mfu_dense"] == pytest.approx(row["tokens_per_s"] * peaks["flops_per_token"] / dense)
    assert peaks["mfu_dense"] == pytest.approx(row["mfu"], rel=1e-5), "the stored MFU used the dense peak"
    assert peaks["mfu_nanogpt"] / peaks["mfu_dense"] == pytest.approx(989 / 312)
    assert peaks["mfu_sparse"] == pytest.approx(peaks["mfu_dense"] / 2)
    assert peaks["mfu_nanogpt"] > 1, "against the A100 constant an H100 run claims more than 100 %"
    assert tm.NANOGPT_PEAK == PEAK_FLOPS["A100"]["bf16"]
