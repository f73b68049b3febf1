"""The built site (_build/html, made by `make site`): languages, links, Colab buttons, offline assets."""

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
LANGUAGES = ("vi", "en")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
LESSONS = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.md"))


@pytest.fixture(scope="module", autouse=True)
def built_site():
    if not (SITE / "index.html").exists():
        pytest.fail("no built site in _build/html: run `make site` (make test does it first)")


def pages(lang):
    folder = SITE / lang
    return [p for p in folder.rglob("*.html") if "_static" not in p.parts and "_sources" not in p.parts]


@pytest.mark.parametrize("lang", LANGUAGES)
def test_every_page_declares_its_language_and_links_to_its_counterpart(lang):
    other = "en" if lang == "vi" else "vi"
    found = pages(lang)
    assert len(found) >= 6
    for page in found:
        html = page.read_text(encoding="utf-8")
        if 'http-equiv="Refresh"' in html:  # the redirect Jupyter Book writes as <lang>/index.html
            continue
        assert re.search(rf'<html lang="{lang}"', html), page
        match = re.search(r'<div class="course-lang-switch"><a href="([^"]+)" hreflang="(\w+)"', html)
        assert match, f"{page} has no link to the other language"
        assert match.group(2) == other
        target = (page.parent / match.group(1)).resolve()
        assert target.exists(), f"{page} links to missing {target}"
        assert target.relative_to(SITE).parts[0] == other


def test_root_page_leads_to_both_languages():
    html = (SITE / "index.html").read_text(encoding="utf-8")
    for lang in LANGUAGES:
        assert f'href="{lang}/index.html"' in html
        assert (SITE / lang / "index.html").exists()


def test_no_asset_is_loaded_from_another_site():
    for page in SITE.rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        assert not re.search(r'<script[^>]+src="https?://', html), page
        assert not re.search(r'<link[^>]+href="https?://[^"]+"[^>]*rel="(stylesheet|preload)"', html), page
        assert not re.search(r'<link[^>]+rel="(stylesheet|preload)"[^>]*href="https?://', html), page


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_page_has_outputs_and_a_working_colab_link(lang, lesson):
    html = (SITE / lang / "notebooks" / lang / f"{lesson}.html").read_text(encoding="utf-8")
    org_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["branch"]
    path = f"notebooks/{lang}/{lesson}.ipynb"
    colab = f'{CONFIG["launch_buttons"]["colab_url"]}/github/{org_repo}/blob/{branch}/{path}'
    assert colab in html
    assert (ROOT / path).exists()
    stored = sum("image/png" in output.get("data", {}) for cell in json.loads((ROOT / path).read_text(encoding="utf-8"))["cells"]
                 for output in cell.get("outputs", []))
    assert stored >= 1 and len(re.findall(r'<img[^>]+src="[^"]*_images/', html)) >= stored, "the stored plots are missing"
    assert '<table class="course-table">' in html, "the stored tables are missing"
    assert "widget-view+json" not in html and "jupyter-widgets" not in html, "an empty widget is shown"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_math_is_served_locally(lang):
    html = (SITE / lang / "notebooks" / lang / f"{LESSONS[0]}.html").read_text(encoding="utf-8")
    script = re.search(r'<script[^>]+src="([^"]*mathjax[^"]*)"', html, re.IGNORECASE)
    assert script, "no MathJax script on a page with formulas"
    page = SITE / lang / "notebooks" / lang / f"{LESSONS[0]}.html"
    assert (page.parent / script.group(1).split("?")[0]).resolve().exists()


def search_terms(lang):
    text = (SITE / lang / "searchindex.js").read_text(encoding="utf-8")
    index = json.loads(text[text.index("(") + 1 : text.rindex(")")])
    return index["terms"]


def test_vietnamese_search_index_is_accent_folded():
    terms = search_terms("vi")
    assert {"toc", "hoc", "do", "tich"} <= set(terms)
    assert not any(ch in term for term in terms for ch in "ốộọđ"), "accented terms left in the index"


def test_english_search_index_is_stemmed():
    terms = search_terms("en")
    assert "schedul" in terms and "learn" in terms


def test_vietnamese_pages_have_no_untranslated_theme_strings():
    settings = CONFIG["sphinx"]["config"]["course_languages"]["vi"]
    for page in pages("vi"):
        html = page.read_text(encoding="utf-8")
        left = [english for english in settings["theme_strings"] if english in html]
        assert not left, f"{page}: {left}"
        if "component-author" in html:
            assert f"Bởi {settings['author']}" in html, f"{page}: the footer's author is not in Vietnamese"
    catalogue = (SITE / "vi" / "_static" / "translations.js").read_text(encoding="utf-8")
    for english in settings["search_strings"]:
        assert f"{json.dumps(english)}: \"\"" not in catalogue, f"search string left empty: {english}"


def bibliography(lang):
    """{citation id: label} of the references page's list."""
    html = (SITE / lang / "book" / lang / "references.html").read_text(encoding="utf-8")
    entries = re.findall(r'<div class="citation" id="([^"]+)"[^>]*>\s*<span class="label">(.*?)</span>\s*</span>', html, re.S)
    return {cid: re.sub(r"<[^>]+>", "", label).replace("&amp;", "&").strip("[]") for cid, label in entries}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_references_are_labelled_by_author_and_year_and_all_cited(lang):
    """The list's labels read like the citations in the text ("Kingma & Ba, 2015"), not pybtex's letters,
    TeX accents are rendered, and every entry of references.bib is cited by a lesson or the further reading."""
    entries = bibliography(lang)
    keys = re.findall(r"^@\w+\{([^,]+),", (ROOT / "book" / "references.bib").read_text(encoding="utf-8"), re.M)
    assert len(entries) == len(keys)
    for label in entries.values():
        assert re.fullmatch(r"[^\W\d][\w\-' .&]*, \d{4}[a-z]?", label), f"not an author-year label: {label!r}"
    references = (SITE / lang / "book" / lang / "references.html").read_text(encoding="utf-8")
    assert "Dollár" in references and "{" not in re.sub(r"<script.*?</script>", "", references, flags=re.S).split("<article", 1)[1].split("</article>")[0]
    cited = set()
    for page in pages(lang):
        html = page.read_text(encoding="utf-8")
        cited |= set(re.findall(r'href="[^"]*references\.html#(id\d+)"', html))
        if page.name == "references.html":
            cited |= set(re.findall(r'href="#(id\d+)"', html))
        for cid, text in re.findall(r'href="[^"]*references\.html#(id\d+)"[^>]*>([^<]+)<', html):
            if re.search(r"\d{4}", text):   # a parenthetical citation carries the whole label
                assert text.replace("&amp;", "&") == entries[cid], (page, text, entries[cid])
    assert not set(entries) - cited, f"never cited: {[entries[c] for c in set(entries) - cited]}"


def glossary(lang):
    """[(terms, definition text)] of the built glossary page, in order."""
    html = (SITE / lang / "book" / lang / "glossary.html").read_text(encoding="utf-8")
    html = re.sub(r'<a class="headerlink".*?</a>', "", html)
    entries = []
    for terms, definition in re.findall(r"((?:<dt[^>]*>.*?</dt>\s*)+)<dd>(.*?)</dd>", html, re.S):
        names = [re.sub(r"<[^>]+>", "", t).strip() for t in re.findall(r"<dt[^>]*>(.*?)</dt>", terms, re.S)]
        entries.append((names, re.sub(r"<[^>]+>", "", definition).strip()))
    return entries


# The words the lessons use, English -> Vietnamese; lessons link them with {term}`...`.
GLOSSARY = {
    "norm": "chuẩn", "threshold": "ngưỡng", "optimizer": "bộ tối ưu", "exploding gradient": "bùng nổ gradient",
    "layer": "tầng", "per-layer": "theo từng tầng", "SGD": "SGD", "excess loss": "mất mát dư", "epoch": "epoch",
    "warm-up": "khởi động", "schedule": "lịch", "gradient clipping": "cắt gradient", "step": "bước",
    "batch": "lô", "mini-batch": "lô nhỏ", "checkpoint": "điểm lưu", "mixed precision": "độ chính xác hỗn hợp",
    "gradient accumulation": "tích lũy gradient", "freezing": "đóng băng", "fine-tuning": "tinh chỉnh",
    "pretraining": "tiền huấn luyện", "parameter": "tham số", "loss": "mất mát", "seed": "hạt giống ngẫu nhiên",
    "learning rate": "tốc độ học", "class label": "nhãn lớp",
}
# Terms of speed and of reading results (lessons 01-05), which the student handout promises are in the glossary.
MEASUREMENT_TERMS = {
    "FLOP": "FLOP", "MFU": "MFU", "micro-batch": "lô vi mô", "data parallelism": "song song dữ liệu", "DDP": "DDP",
    "bf16": "bf16", "TF32": "TF32", "CUDA graph": "đồ thị CUDA", "standard error": "sai số chuẩn",
    "ablation": "thí nghiệm lược bỏ",
}
GLOSSARY.update(MEASUREMENT_TERMS)


def test_glossaries_define_the_course_terms_in_both_languages():
    english, vietnamese = glossary("en"), glossary("vi")
    assert len(english) == len(vietnamese), "the two glossaries should have the same entries"
    english_terms = {t for names, _ in english for t in names}
    vietnamese_terms = {t for names, _ in vietnamese for t in names}
    assert set(GLOSSARY) <= english_terms, set(GLOSSARY) - english_terms
    assert set(GLOSSARY.values()) <= vietnamese_terms, set(GLOSSARY.values()) - vietnamese_terms
    for names, definition in vietnamese:
        assert re.match(r"\([^)]+\)\.", definition), f"{names}: the English term in parentheses comes first"
    for names, definition in english:
        assert definition, names
    assert not any("column" in definition for _, definition in english)
    assert "Vietnamese column" not in (SITE / "en" / "book" / "en" / "glossary.html").read_text(encoding="utf-8")


def test_glossary_terms_are_the_words_the_lessons_use():
    """The measurement terms' glossary entries name them as the lessons of each language write them."""
    lessons = {lang: " ".join(p.read_text(encoding="utf-8") for p in (ROOT / "notebooks" / lang).glob("*.md")).lower()
               for lang in ("en", "vi")}
    assert not [t for t in MEASUREMENT_TERMS if t.lower() not in lessons["en"]]
    assert not [t for t in MEASUREMENT_TERMS.values() if t.lower() not in lessons["vi"]]
