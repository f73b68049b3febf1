"""Reader-facing strings of course_lib (plot titles, axis labels, table headers).

Every lesson exists in Vietnamese (``"vi"``) and English (``"en"``); the
notebook passes its language to course_lib, which looks the words up here.
"""

from __future__ import annotations

import difflib
import string

from ._checks import check_int, check_number, check_type

LANGUAGES = ("vi", "en")

_STRINGS: dict[str, dict[str, str]] = {
    "step": {"vi": "Bước tối ưu (optimizer step)", "en": "Optimizer step"},
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
        "vi": "Toy có nhiễu: mất mát dư theo bước",
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
    "late_excess": {"vi": "Mất mát dư cuối (×10⁻³)", "en": "Late excess loss (×10⁻³)"},
    "settled": {"vi": "Bước ổn định dưới 0,01", "en": "Step settled below 0.01"},
    "jitter": {"vi": "Độ rung cuối |Δ(w₁−w₂)|", "en": "Late jitter |Δ(w₁−w₂)|"},
    "final_lr": {"vi": "η cuối", "en": "Final η"},
    "law_holds": {"vi": "Luật tích phân đúng (sai số < 10%) đến bước", "en": "Integral law within 10% until step"},
    "never": {"vi": "không bao giờ", "en": "never"},
    "yes": {"vi": "có", "en": "yes"},
    "no": {"vi": "không", "en": "no"},
    "run": {"vi": "Lần chạy", "en": "Run"},
    "final_loss": {"vi": "Mất mát cuối", "en": "Final loss"},
    "largest_step": {"vi": "Bước lớn nhất |Δw|", "en": "Largest step |Δw|"},
    "steps_to_target": {"vi": "Số bước đến L < 10⁻³", "en": "Steps to L < 10⁻³"},
    "diverged": {"vi": "Bùng nổ (L > 10⁶)?", "en": "Blew up (L > 10⁶)?"},
    "norm_lost": {"vi": "Tổng chuẩn bị cắt Σ(|g| − c)⁺", "en": "Norm removed Σ(|g| − c)⁺"},
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
    "layer": {"vi": "Lớp", "en": "Layer"},
    "layer_raw": {"vi": "|g| của lớp", "en": "Layer |g|"},
    "after_global": {"vi": "sau khi cắt toàn cục", "en": "after global clipping"},
    "after_per_layer": {"vi": "sau khi cắt từng lớp", "en": "after per-layer clipping"},
    "factor_global": {"vi": "hệ số (toàn cục)", "en": "factor (global)"},
    "factor_per_layer": {"vi": "hệ số (từng lớp)", "en": "factor (per layer)"},
    "loss_title": {"vi": "Mất mát theo bước", "en": "Loss per step"},
    "loss": {"vi": "Mất mát L (thang log)", "en": "Loss L (log scale)"},
}


def check_language(lang: str) -> str:
    """Return ``lang`` if the course is written in it, else raise TypeError/ValueError."""
    check_type("lang", lang, str, f"one of {LANGUAGES}")
    if lang not in LANGUAGES:
        raise ValueError(f"lang must be one of {LANGUAGES}, got {lang!r}")
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
    try:
        return template.format(**fields)
    except KeyError as error:
        needed = [field for _, field, _, _ in string.Formatter().parse(template) if field]
        raise KeyError(
            f"text({key!r}) needs the field {error.args[0]!r}: pass text({key!r}, lang, "
            + ", ".join(f"{field}=..." for field in needed)
            + ")"
        ) from None


def _formatted(value: float, lang: str, digits: int, minimum: int, code: str, unit: str) -> str:
    check_language(lang)
    value = check_number("value", value, "any real number (NaN and inf are written nan and inf)", lambda v: True)
    check_int("digits", digits, minimum, unit=unit)
    out = f"{value:.{digits}{code}}"
    return out.replace(".", ",") if lang == "vi" else out


def significant(value: float, lang: str, digits: int = 3) -> str:
    """A number to ``digits`` significant digits (``1.5e+06``, ``0.325``), with the reader's decimal mark."""
    return _formatted(value, lang, digits, 1, "g", "significant digits")


def number(value: float, lang: str, digits: int = 3) -> str:
    """A number written the reader's way: Vietnamese uses a decimal comma."""
    return _formatted(value, lang, digits, 0, "f", "digits after the decimal mark")
