"""course_lib.models.gpt, course_lib.lessons.corpus and course_lib.lessons.pretraining: the model, its text, its cached pretraining."""

import dataclasses
import os

import pytest
import torch

from course_lib.lessons import pretraining
from course_lib.engine.callbacks import DataChecksum
from course_lib.engine.data import checksum
from course_lib.lessons.corpus import (TokenWindows, characteristic_tokens, finetuning_text, held_out_blocks,
                               pretraining_texts, split_held_out, token_share, train_tokenizer)
import torch.nn.functional as F

from course_lib.engine.data import at_least_float32
from course_lib.models.gpt import (GPT, CausalSelfAttention, GPTConfig, flops_per_token, from_hf, generate, lm_loss,
                                   parameter_count, to_hf)
from course_lib.engine.training import train

SMALL = GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=16)


def small_model(seed=0, config=SMALL):
    torch.manual_seed(seed)
    return GPT(config)


@pytest.mark.parametrize("config", [SMALL, GPTConfig(vocab_size=2048, block_size=64, n_layer=4, n_head=4, n_embd=128), GPTConfig()])
def test_parameter_count_matches_the_formula(config):
    with torch.device("meta"):
        model = GPT(config)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config)
    if config == GPTConfig():
        assert parameter_count(config) == 124_439_808  # GPT-2 small, as Hugging Face counts it


def test_output_layer_and_token_embedding_are_one_tensor():
    model = small_model()
    assert model.lm_head.weight is model.transformer.wte.weight
    assert len([n for n, _ in model.named_parameters() if n.endswith("wte.weight") or n == "lm_head.weight"]) == 1


def test_a_token_does_not_see_later_tokens():
    model = small_model().eval()
    x = torch.randint(0, SMALL.vocab_size, (2, 12), generator=torch.Generator().manual_seed(1))
    changed = x.clone()
    changed[:, 7:] = (changed[:, 7:] + 1) % SMALL.vocab_size
    a, b = model(x), model(changed)
    assert torch.equal(a[:, :7], b[:, :7])
    assert not torch.allclose(a[:, 7:], b[:, 7:])


def test_hugging_face_gpt2_gives_the_same_logits_both_ways():
    pytest.importorskip("transformers")
    ours = small_model(3).eval()
    hf = to_hf(ours)
    x = torch.randint(0, SMALL.vocab_size, (3, SMALL.block_size), generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(hf(x).logits, ours(x), rtol=1e-5, atol=1e-5)
    back = from_hf(hf).eval()
    torch.testing.assert_close(back(x), ours(x), rtol=0, atol=0)
    assert back.lm_head.weight is back.transformer.wte.weight


def test_from_hf_refuses_another_architecture():
    transformers = pytest.importorskip("transformers")
    bert = transformers.BertConfig(vocab_size=50, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32)
    with pytest.raises(TypeError, match="hf_model must be a transformers GPT2LMHeadModel"):
        from_hf(transformers.BertModel(bert))


def _hf_gpt2(**changes):
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    config = transformers.GPT2Config(vocab_size=SMALL.vocab_size, n_positions=SMALL.block_size, n_embd=SMALL.n_embd,
                                     n_layer=SMALL.n_layer, n_head=SMALL.n_head, bos_token_id=None, eos_token_id=None, **changes)
    return transformers.GPT2LMHeadModel(config).eval()


@pytest.mark.parametrize("changes", [{}, {"activation_function": "gelu_pytorch_tanh"}, {"reorder_and_upcast_attn": True},
                                     {"n_inner": 4 * SMALL.n_embd}, {"resid_pdrop": 0.3, "attn_pdrop": 0.3}])
def test_from_hf_converts_the_variants_that_compute_gpt2(changes):
    """reorder_and_upcast_attn only scales the keys first and the scores in float32; dropout is off in eval mode."""
    hf = _hf_gpt2(**changes)
    with torch.no_grad():
        hf.lm_head.weight.mul_(20)  # large logits, where another attention scale or LayerNorm would show
    ours = from_hf(hf).eval()
    x = torch.randint(0, SMALL.vocab_size, (2, SMALL.block_size), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ours(x), hf(x).logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("field, value", [("layer_norm_epsilon", 1e-1), ("scale_attn_weights", False),
                                          ("scale_attn_by_inverse_layer_idx", True), ("tie_word_embeddings", False)])
def test_from_hf_refuses_each_variant_whose_logits_differ(field, value):
    """Each refused field changes what the Hugging Face model computes from the same kind of weights: converting it was wrong."""
    hf = _hf_gpt2(**{field: value})
    plain = _hf_gpt2()
    plain.load_state_dict(hf.state_dict())
    with torch.no_grad():
        for model in (hf, plain):  # large scores and logits, where the differences show
            model.lm_head.weight.mul_(20)
            for block in model.transformer.h:
                block.attn.c_attn.weight.mul_(10)
    x = torch.randint(0, SMALL.vocab_size, (2, SMALL.block_size), generator=torch.Generator().manual_seed(0))
    if field != "tie_word_embeddings":  # untied: the two matrices differ, which from_hf's check compares instead
        assert not torch.allclose(hf(x).logits, plain(x).logits, rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match=f"config.{field} is {value!r}"):
        from_hf(hf)


def test_token_ids_at_the_ends_of_the_vocabulary_and_int32_inputs_are_accepted():
    model = small_model().eval()
    ids = torch.tensor([[0, SMALL.vocab_size - 1, 5]])
    torch.testing.assert_close(model(ids.int()), model(ids), rtol=0, atol=0)
    assert lm_loss(model, ids).isfinite()
    assert generate(model, ids.int(), 2).shape == (1, 5)
    with pytest.raises(TypeError, match="batch must hold int64 token ids"):  # cross-entropy's targets are int64 only
        lm_loss(model, ids.int())


def test_the_id_checks_read_no_value_under_torch_compile():
    """Under torch.compile the range checks are left out (no graph break, no read-back): fullgraph=True would fail on one."""
    model = small_model()
    batch = torch.randint(0, SMALL.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(lm_loss, backend="eager", fullgraph=True, dynamic=False)
    assert torch.equal(compiled(model, batch), lm_loss(model, batch))


def test_the_loss_of_a_fresh_model_is_about_log_vocabulary():
    model = small_model()
    batch = torch.randint(0, SMALL.vocab_size, (8, SMALL.block_size + 1), generator=torch.Generator().manual_seed(0))
    assert abs(lm_loss(model, batch).item() - torch.log(torch.tensor(SMALL.vocab_size)).item()) < 0.2


def test_generation_is_seeded_and_leaves_the_global_random_state_alone():
    model = small_model()
    prompt = torch.zeros(2, 1, dtype=torch.long)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = generate(model, prompt, 20, seed=1, top_k=5)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(a, generate(model, prompt, 20, seed=1, top_k=5))
    assert not torch.equal(a, generate(model, prompt, 20, seed=2, top_k=5))
    assert a.shape == (2, 21) and torch.equal(a[:, :1], prompt)


def test_top_k_one_is_greedy_and_generation_runs_past_the_context():
    model = small_model().eval()
    prompt = torch.tensor([[3, 4]])
    out = generate(model, prompt, SMALL.block_size + 4, top_k=1, seed=0)
    x = out[:, :-1][:, -SMALL.block_size:]
    assert out[0, -1].item() == model(x)[0, -1].argmax().item()


def test_windows_are_a_pure_function_of_seed_and_index():
    ids = torch.arange(500)
    a, b = TokenWindows(ids, 4, 10, seed=3), TokenWindows(ids, 4, 10, seed=3)
    assert torch.equal(a(7), b(7)) and not torch.equal(a(7), a(8))
    assert not torch.equal(a(7), TokenWindows(ids, 4, 10, seed=4)(7))
    batch = a(0)
    assert batch.shape == (4, 11) and torch.equal(batch[:, 1:] - batch[:, :-1], torch.ones(4, 10, dtype=torch.long))


def test_held_out_chunks_are_interleaved_and_disjoint():
    ids = torch.arange(10_000)
    train_ids, held = split_held_out(ids, chunk=100, every=10)
    assert len(held) == 1000 and len(train_ids) == 9000
    assert set(held.tolist()).isdisjoint(train_ids.tolist())
    assert held[0].item() == 900 and held[-1].item() == 9999  # one chunk out of every ten, from start to end
    blocks = held_out_blocks(held, 9, 32)
    assert sum(len(b) for b in blocks) == 100 and blocks[0].shape[1] == 10


def test_characteristic_tokens_and_their_share():
    target = torch.tensor([1] * 5 + [2] * 4 + [3] * 3 + [9])
    reference = torch.tensor([1] * 9 + [3] * 2 + [7])
    assert characteristic_tokens(target, reference, k=3) == {2}
    assert token_share(torch.tensor([[2, 2], [1, 5]]), {2}) == 0.5


def test_checksum_sees_every_bit():
    model = small_model()
    same = small_model()
    assert checksum(model) == checksum(same)
    with torch.no_grad():
        same.transformer.h[1].mlp.c_fc.bias[0] += 1e-7
    assert checksum(model) != checksum(same)
    assert checksum([torch.arange(3)]) != checksum([torch.arange(3).flip(0)])


def test_two_runs_on_the_same_windows_consume_the_same_batches():
    ids = torch.randint(0, SMALL.vocab_size, (400,), generator=torch.Generator().manual_seed(0))
    digests = []
    for seed in (0, 0, 1):
        model = small_model()
        probe = DataChecksum()
        train(model, torch.optim.SGD(model.parameters(), lr=0.1), TokenWindows(ids, 2, SMALL.block_size, seed), lm_loss, 3,
              callbacks=[probe], device="cpu")
        digests.append(probe.hexdigest())
    assert digests[0] == digests[1] != digests[2]


def test_the_shipped_texts():
    texts = pretraining_texts()
    play = finetuning_text("offline")
    assert len(texts) == 13_891 and all(texts)
    assert play.startswith("ACT I") and "To be, or not to be" in play and len(play.split()) > 30_000


def test_the_tokenizer_round_trips_and_is_deterministic():
    texts = pretraining_texts()[:2000]
    a, b = train_tokenizer(texts, 300), train_tokenizer(texts, 300)
    sample = "HAMLET\nTo be, or not to be: that is the question: ñ"
    assert a.decode(a.encode(sample)) == sample
    assert a.to_json() == b.to_json() and a.vocab_size == 300


def test_pretraining_is_cached_by_configuration_and_rebuilds_a_corrupt_file(tmp_path, monkeypatch):
    config = pretraining.PretrainConfig("test", GPTConfig(vocab_size=300, n_layer=1, n_head=2, n_embd=16, block_size=16),
                                        batch_size=4, steps=3, warmup=1)
    monkeypatch.setattr(pretraining, "pretraining_texts", lambda: pretraining_texts()[:500])
    model, tokenizer, info = pretraining.pretrained(config, cache=tmp_path, device="cpu")
    path = pretraining.cache_path(config, tmp_path)
    assert path.exists() and info["tokens"] > 0

    calls = []
    original = pretraining._pretrain
    monkeypatch.setattr(pretraining, "_pretrain", lambda *a: calls.append(1) or original(*a))
    again, _, _ = pretraining.pretrained(config, cache=tmp_path)
    assert not calls and checksum(again) == checksum(model)  # loaded, not trained

    other = dataclasses.replace(config, steps=4)
    assert pretraining.cache_path(other, tmp_path) != path
    pretraining.pretrained(other, cache=tmp_path, device="cpu")
    assert len(calls) == 1  # a new configuration is trained

    path.write_bytes(path.read_bytes()[:100])  # truncated: rebuilt, with a warning, to the same weights
    with pytest.warns(UserWarning, match="did not load"):
        rebuilt, _, _ = pretraining.pretrained(config, cache=tmp_path, device="cpu")
    assert len(calls) == 2 and checksum(rebuilt) == checksum(model)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".part")]


def test_naive_attention_equals_the_fused_kernel():
    fused = small_model(4).eval()
    naive = GPT(dataclasses.replace(SMALL, attention="naive")).eval()
    naive.load_state_dict(fused.state_dict())
    x = torch.randint(0, SMALL.vocab_size, (2, SMALL.block_size), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(naive(x), fused(x), rtol=1e-5, atol=1e-5)


def test_a_model_without_biases_is_counted_and_refused_by_to_hf():
    """nanoGPT's default (bias=False): no bias in the linear layers and LayerNorms; the count formula follows."""
    config = dataclasses.replace(SMALL, bias=False)
    model = small_model(0, config)
    assert not any(name.endswith(".bias") for name, _ in model.named_parameters())
    L, d = SMALL.n_layer, SMALL.n_embd
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config) == parameter_count(SMALL) - L * 11 * d - d
    with pytest.raises(ValueError, match="bias=True"):
        to_hf(model)


def test_untied_output_layer_is_its_own_tensor_and_counted():
    config = dataclasses.replace(SMALL, tie_weights=False)
    model = small_model(0, config)
    assert model.lm_head.weight is not model.transformer.wte.weight
    assert sum(p.numel() for p in model.parameters()) == parameter_count(config) == parameter_count(SMALL) + 97 * 16
    with pytest.raises(ValueError, match="tie_weights=True"):
        to_hf(model)


def test_the_cache_key_follows_the_code_the_pretraining_runs(tmp_path, monkeypatch):
    """code_digest covers pretraining.py and every course_lib module it imports, transitively, and nothing else."""
    import shutil

    copy = tmp_path / "course_lib"
    shutil.copytree(pretraining.PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "results"))
    monkeypatch.setattr(pretraining, "PACKAGE", copy)
    config = pretraining.PRETRAIN["cpu"]
    before, path = pretraining.code_digest(), pretraining.cache_path(config, tmp_path)
    with open(copy / "show" / "widgets.py", "a") as handle:  # not imported by the pretraining: same key
        handle.write("\n# a change elsewhere\n")
    assert pretraining.code_digest() == before
    with open(copy / "engine" / "clipping.py", "a") as handle:  # imported through training.py: a new key
        handle.write("\n# a change in the loop's clipping\n")
    assert pretraining.code_digest() != before and pretraining.cache_path(config, tmp_path) != path
    assert pretraining.cache_path(dataclasses.replace(config, precision="fp32"), tmp_path) != pretraining.cache_path(config, tmp_path)


def test_lm_loss_keeps_float64_and_upcasts_half_precision():
    torch.manual_seed(0)
    model = small_model().double()
    x = torch.randint(0, SMALL.vocab_size, (2, SMALL.block_size + 1))
    assert lm_loss(model, x).dtype == torch.float64
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert lm_loss(small_model(), x).dtype == torch.float32


_FP64_RUN = """
import torch
from course_lib.engine.data import default_dtype
from course_lib.models.gpt import GPT, GPTConfig, lm_loss
from course_lib.lessons.corpus import TokenWindows
from course_lib.engine.training import train
torch.manual_seed(0)
with default_dtype(torch.{dtype}):
    model = GPT(GPTConfig(vocab_size=97, block_size=16, n_layer=2, n_head=2, n_embd=64))
ids = torch.randint(0, 97, (4000,), generator=torch.Generator().manual_seed(1))
optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
history = train(model, optimizer, TokenWindows(ids, 16, 16, 0), lm_loss, 60, precision="{precision}", device="cpu", clip=1.0)
print(" ".join(f"{{x:.6f}}" for x in history.loss))
"""


def _fp64_losses(**env):
    import subprocess
    import sys

    script = _FP64_RUN.format(dtype="float64", precision="fp64")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONWARNINGS": "ignore", **env})
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_an_fp64_run_prints_the_same_digits_under_another_code_path_and_one_thread():
    """What the lessons rely on, at a small size: the printed losses of an fp64 run do not depend on the CPU's path."""
    native = _fp64_losses()
    assert native == _fp64_losses(ATEN_CPU_CAPABILITY="default", OMP_NUM_THREADS="1")
    assert native == _fp64_losses(ATEN_CPU_CAPABILITY="avx2", OMP_NUM_THREADS="1")


def _full_logits_sample(model, idx, max_new_tokens, *, temperature=1.0, top_k=None, seed=0):
    """generate written the plain way: the logits of every position, then the last one's."""
    generator = torch.Generator().manual_seed(seed)
    model.eval()
    with torch.no_grad():
        for _ in range(max_new_tokens):
            logits = at_least_float32(model(idx[:, -model.config.block_size:])[:, -1, :]) / temperature
            if top_k is not None:
                kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
                logits = logits.masked_fill(logits < kth, float("-inf"))
            idx = torch.cat((idx, torch.multinomial(F.softmax(logits, dim=-1), 1, generator=generator)), dim=1)
    return idx


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_generate_runs_the_output_layer_on_the_last_position_only_and_samples_as_before(dtype):
    model = small_model().to(dtype)
    shapes = []
    model.lm_head.register_forward_hook(lambda module, args, out: shapes.append(tuple(args[0].shape)))
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    for kwargs in ({"seed": 1}, {"seed": 2, "top_k": 5, "temperature": 0.7}):
        shapes.clear()
        out = generate(model, prompt, SMALL.block_size + 5, **kwargs)  # past the context: the window slides
        assert shapes and set(shapes) == {(2, 1, SMALL.n_embd)}
        assert torch.equal(out, _full_logits_sample(model, prompt, SMALL.block_size + 5, **kwargs))
    x = torch.randint(0, SMALL.vocab_size, (3, 10), generator=torch.Generator().manual_seed(0))
    last = model(x, last_only=True)
    assert last.shape == (3, 1, SMALL.vocab_size)
    torch.testing.assert_close(last, model(x)[:, -1:])


def _old_lm_loss(model, batch):
    logits = model(batch[:, :-1])
    return F.cross_entropy(at_least_float32(logits.reshape(-1, logits.size(-1))), batch[:, 1:].reshape(-1))


@pytest.mark.parametrize("dtype, autocast", [(torch.float32, False), (torch.float64, False), (torch.float32, True)])
def test_lm_loss_and_its_gradients_are_bitwise_those_of_the_former_formula(dtype, autocast):
    """The lessons' printed losses do not move: fp32, fp64 and CPU bf16 autocast give the same bits as the explicit upcast."""
    batch = torch.randint(0, SMALL.vocab_size, (4, SMALL.block_size + 1), generator=torch.Generator().manual_seed(0))
    results = []
    for loss_fn in (lm_loss, _old_lm_loss):
        model = small_model(1).to(dtype)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            loss = loss_fn(model, batch)
        loss.backward()
        results.append([loss.detach()] + [p.grad for p in model.parameters()])
    assert results[0][0].dtype == (torch.float32 if autocast else dtype)
    assert all(torch.equal(a, b) for a, b in zip(*results, strict=True))


def test_lm_loss_upcasts_the_logits_of_a_model_held_in_half_precision():
    model = small_model().to(torch.bfloat16)
    batch = torch.randint(0, SMALL.vocab_size, (2, SMALL.block_size + 1), generator=torch.Generator().manual_seed(0))
    loss = lm_loss(model, batch)
    assert loss.dtype == torch.float32 and torch.equal(loss, _old_lm_loss(model, batch))


@pytest.mark.parametrize("attention", ["naive", "sdpa"])
def test_attention_dropout_follows_the_training_flag(attention):
    config = dataclasses.replace(SMALL, attention=attention, dropout=0.5)
    torch.manual_seed(0)
    layer, plain = CausalSelfAttention(config), CausalSelfAttention(dataclasses.replace(config, dropout=0.0))
    plain.load_state_dict(layer.state_dict())
    x = torch.randn(2, 8, SMALL.n_embd, generator=torch.Generator().manual_seed(1))
    layer.eval()
    assert torch.equal(layer(x), layer(x)) and torch.equal(layer(x), plain(x))
    layer.train()
    assert not torch.equal(layer(x), layer(x))


def test_generate_restores_the_training_mode_when_it_fails():
    model = small_model().train()

    def broken(idx, **kwargs):
        raise RuntimeError("out of memory, say")

    model.forward = broken
    with pytest.raises(RuntimeError, match="out of memory"):
        generate(model, torch.zeros(1, 1, dtype=torch.long), 3)
    assert all(m.training for m in model.modules())


def test_flops_per_token_counts_the_weights_the_model_multiplies():
    """N in 6N is the model's linear layers' weights (the tied output layer once); look-ups, LayerNorms and biases are not in it."""
    for config in (SMALL, GPTConfig(vocab_size=50304, bias=False), dataclasses.replace(SMALL, tie_weights=False)):
        with torch.device("meta"):
            model = GPT(config)
        N = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        L, d, T = config.n_layer, config.n_embd, config.block_size
        assert flops_per_token(config) == 6 * N + 12 * L * d * T
        assert flops_per_token(config, 1) == 6 * N + 12 * L * d


def test_lm_loss_takes_a_wrapped_gpt_and_refuses_other_models():
    """The model is a GPT, bare or under torch.compile; another module (a Linear) gets a clear TypeError before its forward."""
    model = small_model()
    batch = torch.randint(0, SMALL.vocab_size, (2, 9), generator=torch.Generator().manual_seed(0))
    compiled = torch.compile(model, backend="eager")
    assert torch.equal(lm_loss(compiled, batch), lm_loss(model, batch))
    with pytest.raises(TypeError, match="model must be a course_lib GPT"):
        lm_loss(torch.nn.Linear(2, 2), batch)


def test_attention_and_flops_refuse_mismatched_sizes_and_keep_valid_ones():
    from course_lib.models.gpt import naive_attention

    q = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(0))
    expected = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    assert torch.allclose(naive_attention(q, q, q), expected, atol=1e-6)  # (..., T, head_dim): a 3-D tensor stays valid
    with pytest.raises(ValueError, match=r"q, k and v must have one shape"):
        naive_attention(q, q[:, :3], q[:, :3])
    assert flops_per_token(SMALL, SMALL.block_size) == flops_per_token(SMALL)
    with pytest.raises(ValueError, match=r"sequence_length \(17\) must be <= the model's block_size \(16\)"):
        flops_per_token(SMALL, 17)
