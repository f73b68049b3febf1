"""The built site as a reader uses it: headless Chromium, every request off the site blocked.

Needs the site in _build/html (`make test` builds it first) and a Chromium:
Debian's /usr/bin/chromium (`make test` installs it when missing), or the
browser named by the environment variable COURSE_CHROMIUM.  Playwright drives
it; no browser is downloaded.  Screenshots land in _build/screenshots.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
import unicodedata
import urllib.parse
from pathlib import Path

import pytest
import yaml
from playwright.sync_api import sync_playwright

from course_lib.i18n import text

ROOT = Path(__file__).resolve().parents[1]
SITE = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
LANGUAGES = ("vi", "en")
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
LESSONS = sorted(p.stem for p in (ROOT / "notebooks" / "en").glob("*.md"))


def chromium() -> str:
    candidates = [os.environ.get("COURSE_CHROMIUM"), "/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"]
    for candidate in candidates:
        if candidate and shutil.which(candidate):
            return candidate
    pytest.fail("no Chromium found: install Debian's chromium (make test does) or set COURSE_CHROMIUM")


def reader_pages() -> list[str]:
    """Every page a reader can reach, relative to _build/html (the redirect stubs left out)."""
    pages = []
    for lang in LANGUAGES:
        for page in sorted((SITE / lang).rglob("*.html")):
            if "_static" in page.parts or 'http-equiv="Refresh"' in page.read_text(encoding="utf-8"):
                continue
            pages.append(page.relative_to(SITE).as_posix())
    return pages


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def origin():
    if not (SITE / "index.html").exists():
        pytest.fail("no built site in _build/html: run `make site` (make test does it first)")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-sync",
                  "--disable-background-networking", "--disable-component-update"],
        )
        yield browser
        browser.close()


class Reader:
    """A browser tab that blocks and counts requests leaving the site and collects console errors."""

    def __init__(self, browser, origin: str, **context_options):
        self.origin, self.outside, self.errors = origin, [], []
        self.context = browser.new_context(**{"viewport": {"width": 1280, "height": 900}, **context_options})
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def _route(self, route):
        url = route.request.url
        if url.startswith(self.origin) or url.startswith("data:") or url.startswith("blob:"):
            route.continue_()
        else:
            self.outside.append(url)
            route.abort()

    def visit(self, path: str):
        response = self.page.goto(f"{self.origin}/{path}")
        assert response is not None and response.ok, f"{path}: HTTP {response and response.status}"
        self.page.wait_for_load_state("load")
        return self.page


@pytest.fixture
def reader(browser, origin):
    reader = Reader(browser, origin)
    yield reader
    reader.context.close()


def local_file(url: str, origin: str) -> Path:
    path = urllib.parse.unquote(urllib.parse.urlsplit(url).path).lstrip("/")
    target = SITE / path
    return target / "index.html" if target.is_dir() else target


@pytest.mark.parametrize("path", reader_pages())
def test_page_language_links_console_and_network(reader, origin, path):
    lang = path.split("/")[0]
    other = "en" if lang == "vi" else "vi"
    page = reader.visit(path)
    assert page.locator("html").get_attribute("lang") == lang

    hrefs = page.eval_on_selector_all("a[href]", "links => links.map(a => a.href)")
    broken = [h for h in hrefs if h.startswith(origin) and not local_file(h, origin).exists()]
    assert not broken, f"broken links on {path}: {broken}"

    switch = page.locator(".course-lang-switch a")
    assert switch.count() == 1, "no link to the other language"
    switch.click()
    page.wait_for_load_state("load")
    assert page.locator("html").get_attribute("lang") == other
    inner = re.sub(rf"(^|/){lang}(/|$)", rf"\g<1>{other}\g<2>", path.split("/", 1)[1], count=1)
    assert page.url == f"{origin}/{other}/{inner}"

    assert not reader.errors, f"console errors on {path}: {reader.errors}"
    assert not reader.outside, f"{path} asked for {reader.outside}"


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_math_is_typeset_offline(reader, lang, lesson):
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
    page.wait_for_function("document.querySelectorAll('mjx-container').length > 0", timeout=20000)
    prose = page.evaluate(
        """() => { const a = document.querySelector('article').cloneNode(true);
                   a.querySelectorAll('pre, code, mjx-container, script').forEach(e => e.remove());
                   return a.innerText; }"""
    )
    assert not re.search(r"\$[^$\n]+\$|\\\(|\\\[", prose), "raw TeX left on the page"
    assert not reader.outside and not reader.errors


def search(reader, lang: str, query: str) -> tuple[set[str], str]:
    """Pages the site's search lists for ``query`` (fragments dropped), and the summary it shows."""
    page = reader.visit(f"{lang}/search.html?q={urllib.parse.quote(query)}")
    summary = page.locator("#search-results p.search-summary")
    summary.wait_for(state="attached", timeout=20000)
    page.wait_for_function(
        "document.querySelector('#search-results p.search-summary').innerText.trim().length > 0", timeout=20000
    )
    links = page.eval_on_selector_all("#search-results li a", "links => links.map(a => a.href)")
    return {urllib.parse.urlsplit(h).path.lstrip("/") for h in links}, summary.inner_text()


def pages_containing(lang: str, phrase: str) -> set[str]:
    """Pages whose own text (the article, not the navigation) holds the phrase, NFC and lower case."""
    found = set()
    for path in reader_pages():
        if not path.startswith(f"{lang}/") or path.endswith(("search.html", "genindex.html")):
            continue
        html = (SITE / path).read_text(encoding="utf-8")
        article = html.split("<article", 1)[-1].split("</article>", 1)[0]
        body = re.sub(r"<[^>]+>", " ", article)
        if phrase in unicodedata.normalize("NFC", body).lower():
            found.add(path)
    return found


@pytest.mark.parametrize("plain,accented", [("hoc may", "học máy"), ("toc do hoc", "tốc độ học"), ("cat gradient", "cắt gradient")])
def test_vietnamese_search_ignores_accents(reader, plain, accented):
    expected = pages_containing("vi", accented)
    assert expected, f"no Vietnamese page contains {accented!r}"
    without, summary = search(reader, "vi", plain)
    with_accents, _ = search(reader, "vi", accented)
    assert summary.startswith("Tìm xong:"), summary
    assert expected <= without, f"{plain!r} misses {expected - without}"
    assert expected <= with_accents, f"{accented!r} misses {expected - with_accents}"
    assert all(p.startswith("vi/") for p in without | with_accents)


def test_english_search_finds_english_pages_only(reader):
    results, summary = search(reader, "en", "learning rate")
    assert summary.startswith("Search finished")
    assert f"en/notebooks/en/{LESSONS[0]}.html" in results
    assert results and all(p.startswith("en/") for p in results)


def snippets(reader, lang: str, query: str) -> list[str]:
    """The text under each search result, once every result has its snippet."""
    search(reader, lang, query)
    reader.page.wait_for_function(
        "[...document.querySelectorAll('#search-results li')].every(li => li.querySelector('p.context'))", timeout=20000
    )
    return reader.page.eval_on_selector_all("#search-results li p.context", "ps => ps.map(p => p.innerText)")


def fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c)).replace("đ", "d").replace("Đ", "d").lower()


@pytest.mark.parametrize("lang,query", [("vi", "hoc"), ("vi", "cat gradient"), ("en", "learning rate"), ("en", "norm")])
def test_search_snippets_show_the_matching_sentence(reader, lang, query):
    """A snippet is the sentence that holds the query's words: not the language switch, no raw TeX,
    no words glued across block elements; in Vietnamese the accent-folded query finds the accented words."""
    found = snippets(reader, lang, query)
    assert found
    for snippet in found:
        assert "Read in English" not in snippet and "Đọc bằng tiếng Việt" not in snippet, snippet
        assert not re.search(r"\\[()\[\]a-zA-Z]|\$", snippet), f"raw TeX in {snippet!r}"
        assert all(re.search(rf"(?<!\w){word}", fold(snippet)) for word in query.split()), f"{query!r} not in {snippet!r}"
    if lang == "vi":
        accented = {"hoc": "học", "cat gradient": "cắt gradient"}[query]
        assert all(accented in snippet.lower() for snippet in found), found
    assert not any("ratetốc" in snippet or "ratet" in snippet for snippet in found), found
    highlighted = reader.page.eval_on_selector_all("#search-results p.context .highlighted", "s => s.map(e => e.innerText)")
    assert highlighted and all(fold(h).startswith(tuple(query.split())) for h in highlighted), highlighted


@pytest.mark.parametrize("lang", LANGUAGES)
def test_language_switch_keeps_the_section(reader, origin, lang):
    """Section ids differ by language: the switch carries the section's position, and the page in the
    other language lands on its own section at that position."""
    other = "en" if lang == "vi" else "vi"
    lesson = LESSONS[-1]
    sections = "article.bd-article section[id]"
    here = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html").eval_on_selector_all(sections, "s => s.map(x => x.id)")
    there = reader.visit(f"{other}/notebooks/{other}/{lesson}.html").eval_on_selector_all(sections, "s => s.map(x => x.id)")
    assert len(here) == len(there) > 3, "the two languages' lessons should have the same sections"
    position = len(here) - 3
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html#{here[position]}")
    page.locator(".course-lang-switch a").click()
    page.wait_for_load_state("load")
    assert page.url == f"{origin}/{other}/notebooks/{other}/{lesson}.html#{there[position]}"
    top = page.evaluate("document.getElementById(location.hash.slice(1)).getBoundingClientRect().top")
    assert 0 <= top < 300, f"section {there[position]} is {top} px from the top of the window"
    # and back: a page opened without a section leads to the other page's top
    page.evaluate("history.replaceState(null, '', location.pathname)")
    page.evaluate("window.dispatchEvent(new HashChangeEvent('hashchange'))")
    assert "#" not in page.locator(".course-lang-switch a").get_attribute("href")
    assert not reader.errors and not reader.outside


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_lesson_shows_stored_outputs_and_opens_in_colab(reader, lang, lesson):
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
    plots = page.locator(".cell_output img")
    assert plots.count() >= 1 and plots.first.evaluate("img => img.naturalWidth") > 100
    assert page.locator(".cell_output table.course-table").count() >= 1
    colab = page.locator("a[href*='colab.research.google.com']:not(.btn-student-edition)")   # the solved lesson's button
    assert colab.count() == 1
    href = colab.get_attribute("href")
    org_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    prefix = f"https://colab.research.google.com/github/{org_repo}/blob/{CONFIG['repository']['branch']}/"
    assert href.startswith(prefix) and href.endswith(".ipynb")
    assert (ROOT / href.removeprefix(prefix)).is_file()
    assert page.locator(".jupyter-widgets, .widget-area").count() == 0, "an empty widget is on the page"


@pytest.mark.parametrize("lang", LANGUAGES)
def test_widget_cell_shows_its_still_figure(reader, lang):
    page = reader.visit(f"{lang}/notebooks/{lang}/01_lr_schedules.html")
    cell = page.locator(".cell", has=page.locator("pre", has_text="ScheduleExplorer(LANG)"))
    image = cell.locator(".cell_output img")
    assert image.count() == 1
    assert image.evaluate("img => img.complete && img.naturalWidth") > 300


SOLUTION_PROMPTS = {"vi": ("Xem lời giải", "Ẩn lời giải"), "en": ("Show solution", "Hide solution")}


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_exercise_solutions_are_folded_until_opened(reader, lang, lesson):
    """Every exercise's solution is folded under the language's "show solution", its check's verdict shows below it,
    and a click opens the solution; the first lesson's first exercise is kept as a screenshot, opened."""
    show, hide = SOLUTION_PROMPTS[lang]
    exercises = (ROOT / "notebooks" / lang / f"{lesson}.md").read_text(encoding="utf-8").count("\n# ✏️ EXERCISE")
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
    folded = page.locator("details.hide.above-input", has=page.locator("summary", has_text=show))
    assert exercises >= 2 and folded.count() == exercises
    verdicts = page.locator(".cell_output", has_text=re.compile(re.escape(text("ex_correct", lang, name="", n=0).split(":")[0])))
    assert verdicts.count() == exercises and verdicts.first.is_visible()
    first = folded.first
    solution = first.locator("pre", has_text="BEGIN SOLUTION")
    assert first.locator("summary").inner_text().strip() == show and not solution.is_visible()
    first.locator("summary").click()
    assert solution.is_visible() and first.locator("summary").inner_text().strip() == hide
    if lesson == LESSONS[0]:
        SHOTS.mkdir(parents=True, exist_ok=True)
        first.scroll_into_view_if_needed()
        page.wait_for_timeout(500)  # the theme fades an opened block in
        page.screenshot(path=str(SHOTS / f"exercise-{lang}.png"))
    assert not reader.errors and not reader.outside


def visible_width(page) -> tuple[int, int]:
    """(scroll width of the document, width of the viewport), once the page's math is typeset."""
    page.evaluate("async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise) await MathJax.startup.promise; }")
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


PHONE_WIDTHS = (360, 390, 400)


def test_no_page_is_wider_than_a_phone(browser, origin):
    """Every page, both languages and the root page, fits a phone's width: nothing scrolls sideways
    but what scrolls in its own box (code, wide tables and figures); the header's buttons stay on
    screen. Each page is loaded once and measured at every width; at 390 px it is kept as a
    screenshot (_build/screenshots/phone-<lang>-<page>.png, a CI artefact)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    reader = Reader(browser, origin, viewport={"width": PHONE_WIDTHS[0], "height": 800})
    too_wide, off_screen = [], []
    try:
        for path in ["index.html", *reader_pages()]:
            page = reader.visit(path)
            for width in PHONE_WIDTHS:
                page.set_viewport_size({"width": width, "height": 800})
                scroll_width, viewport = visible_width(page)
                if scroll_width > viewport:
                    too_wide.append(f"{path} at {width} px: {scroll_width} px wide")
                if path.startswith(("vi/notebooks/", "en/notebooks/")):
                    for control in (".bd-header-article .search-button", ".bd-header-article .secondary-toggle",
                                    ".bd-header-article .primary-toggle", ".course-lang-switch a"):
                        box = page.locator(control).bounding_box()
                        if not box or box["x"] < 0 or box["x"] + box["width"] > viewport:
                            off_screen.append(f"{control} on {path} at {width} px: {box}")
                if width == 390 and not path.endswith(("genindex.html", "search.html")):
                    name = "root" if path == "index.html" else f"{path.split('/')[0]}-{Path(path).stem}"
                    page.screenshot(path=str(SHOTS / f"phone-{name}.png"))
        assert not too_wide, "pages wider than the phone: " + "; ".join(too_wide)
        assert not off_screen, "controls off-screen: " + "; ".join(off_screen)
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


def test_root_page_follows_dark_mode(browser, origin):
    reader = Reader(browser, origin, color_scheme="dark")
    try:
        page = reader.visit("index.html")
        rgb = page.evaluate("getComputedStyle(document.body).backgroundColor")
        red, green, blue = (int(v) for v in re.findall(r"\d+", rgb)[:3])
        assert 0.2126 * red + 0.7152 * green + 0.0722 * blue < 60, f"root page background {rgb} in dark mode"
        page.screenshot(path=str(SHOTS / "root-dark.png"))
    finally:
        reader.context.close()


def test_screenshots_for_review(reader):
    """Landing pages and one lesson per language, kept as CI artefacts and looked at by people."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    shots = {"root": "index.html"}
    for lang in LANGUAGES:
        shots[f"{lang}-index"] = f"{lang}/book/{lang}/index.html"
        shots[f"{lang}-lesson"] = f"{lang}/notebooks/{lang}/{LESSONS[0]}.html"
    for name, path in shots.items():
        page = reader.visit(path)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / f"{name}.png"))
        assert (SHOTS / f"{name}.png").stat().st_size > 10_000
    assert not reader.outside and not reader.errors


BUNDLED_MONO = '"Course Mono"'  # course.css's name for the bundled Source Code Pro
BUNDLED_MONO_FILE = "_static/fonts/SourceCodePro-Regular.ttf.woff2"


def drawn_with(page, cdp, text: str) -> list[dict]:
    """The fonts Chromium draws ``text`` with, and how many glyphs each, in a <pre> placed among the outputs."""
    page.evaluate(
        """t => { const pre = document.createElement('pre'); pre.id = 'course-font-probe'; pre.textContent = t;
                  document.querySelector('.cell_output .output').append(pre); }""", text)
    page.evaluate("document.fonts.ready.then(() => true)")
    root = cdp.send("DOM.getDocument", {"depth": 0})["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", {"nodeId": root, "selector": "#course-font-probe"})["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})["fonts"]
    page.evaluate("document.getElementById('course-font-probe').remove()")
    return fonts


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_code_and_outputs_use_the_bundled_font(reader, lang, lesson):
    """Code and outputs are set in the bundled font, which the page loads from the site itself; every letter
    that the outputs print is in it as one precomposed glyph (DejaVu Sans Mono, the Linux fallback, has no
    stacked accents and drew "số" as "sô´"); what the font lacks (⁻, ✓, ✗) is drawn one glyph per character."""
    responses = []
    reader.page.on("response", lambda r: responses.append((r.url, r.status)))
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
    page.evaluate("document.fonts.ready.then(() => true)")
    families = page.eval_on_selector_all(
        ".cell_output pre, .cell_input pre, code.literal", "es => [...new Set(es.map(e => getComputedStyle(e).fontFamily))]")
    assert families and all(f.startswith(BUNDLED_MONO) for f in families), families
    loaded = page.evaluate("[...document.fonts].filter(f => f.family === 'Course Mono').map(f => f.status)")
    assert loaded == ["loaded"], loaded
    assert any(url.endswith(BUNDLED_MONO_FILE) and status == 200 for url, status in responses), "the font file was not loaded"

    printed = unicodedata.normalize("NFC", "".join(page.eval_on_selector_all(".cell_output pre", "es => es.map(e => e.innerText)")))
    letters = "".join(sorted({c for c in printed if ord(c) > 127 and unicodedata.category(c).startswith("L")}))
    symbols = "".join(sorted({c for c in printed if ord(c) > 127 and not c.isspace()} - set(letters)))
    if lang == "vi":
        assert {"ố", "ấ", "ư", "ờ", "Đ"} & set(letters), letters
    cdp = reader.context.new_cdp_session(page)
    cdp.send("DOM.enable")
    cdp.send("CSS.enable")
    if letters:
        fonts = drawn_with(page, cdp, letters)
        assert [(f["familyName"], f["glyphCount"]) for f in fonts] == [("Source Code Pro", len(letters))], (letters, fonts)
    if symbols:
        fonts = drawn_with(page, cdp, symbols)
        assert sum(f["glyphCount"] for f in fonts) == len(symbols), (symbols, fonts)
    assert not reader.errors and not reader.outside


def luminance(rgb: str) -> float:
    red, green, blue = (float(v) for v in re.findall(r"[\d.]+", rgb)[:3])
    return 0.2126 * red + 0.7152 * green + 0.0722 * blue


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_tables_and_figures_follow_dark_mode(browser, origin, lang, lesson):
    """In dark mode (1280 px) the course's tables sit on a dark background with light text, and the figures
    are dark: the theme's light grey box around outputs made them bright blocks. Lesson 01 is kept as a
    screenshot (_build/screenshots/dark-<lang>.png)."""
    import io

    from PIL import Image, ImageStat

    reader = Reader(browser, origin, color_scheme="dark")
    try:
        page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
        assert page.evaluate("document.documentElement.dataset.theme") == "dark"
        tables = page.eval_on_selector_all(
            "table.course-table",
            """ts => ts.map(t => { const cell = t.querySelector('td');
                 let e = cell, bg = 'rgba(0, 0, 0, 0)';
                 for (; e && /rgba\\(.*, 0\\)$/.test(bg = getComputedStyle(e).backgroundColor); e = e.parentElement);
                 return [bg, getComputedStyle(cell).color]; })""")
        assert tables, "no course table"
        for background, color in tables:
            assert luminance(background) < 60 and luminance(color) > 150, f"table: {color} on {background}"
        figures = page.locator(".cell_output img")
        assert figures.count() >= 1
        SHOTS.mkdir(parents=True, exist_ok=True)
        for i in range(figures.count()):
            figure = figures.nth(i)
            figure.scroll_into_view_if_needed()
            brightness = luminance(str(ImageStat.Stat(Image.open(io.BytesIO(figure.screenshot())).convert("RGB")).mean))
            assert brightness < 90, f"figure {i + 1} has a mean luminance of {brightness:.0f} in dark mode"
        if lesson == LESSONS[0]:
            page.locator("table.course-table").first.scroll_into_view_if_needed()
            page.screenshot(path=str(SHOTS / f"dark-{lang}.png"))
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


# --- issue 28, smaller items: button labels, the index, compound words in search, phone headings ---

ENGLISH_LABELS = ("Toggle hidden content", "Copy", "Copy to clipboard", "Copied!")
LABELS = """() => [...document.querySelectorAll('[aria-label], [title], [data-tooltip]')].flatMap(e =>
    ['aria-label', 'title', 'data-tooltip'].map(a => e.getAttribute(a)).filter(Boolean))"""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_buttons_added_by_scripts_speak_the_page_language(reader, lang):
    """The solution's toggle button and the code cells' copy button are written by scripts at run time
    (sphinx-togglebutton, sphinx-copybutton), out of reach of the pages' string replacements."""
    page = reader.visit(f"{lang}/notebooks/{lang}/{LESSONS[0]}.html")
    page.wait_for_selector("button.toggle-button")
    page.wait_for_selector("button.copybtn", state="attached")
    labels = page.evaluate(LABELS)
    toggle = page.locator("button.toggle-button").first.get_attribute("aria-label")
    copy = page.locator("button.copybtn").first.get_attribute("data-tooltip")
    if lang == "vi":
        assert not set(ENGLISH_LABELS) & set(labels), set(ENGLISH_LABELS) & set(labels)
        assert (toggle, copy) == ("Hiện/ẩn nội dung", "Sao chép")
    else:
        assert (toggle, copy) == ("Toggle hidden content", "Copy")
    assert not reader.errors and not reader.outside


VIETNAMESE_ALPHABET = "AĂÂBCDĐEÊFGHIJKLMNOÔƠPQRSTUƯVWXYZ"   # with the Latin letters Vietnamese words lack (F, J, W, Z)


@pytest.mark.parametrize("lang", LANGUAGES)
def test_general_index_is_titled_and_ordered_in_the_page_language(reader, lang):
    """The index's tab reads "Chỉ mục" in Vietnamese, and its letters follow the language's alphabet
    (Vietnamese: Đ right after D, not after the last Latin letter)."""
    page = reader.visit(f"{lang}/genindex.html")
    assert page.title().startswith({"vi": "Chỉ mục —", "en": "Index —"}[lang]), page.title()
    letters = page.eval_on_selector_all("article h2", "hs => hs.map(h => h.innerText.trim())")
    jump = page.eval_on_selector_all(".genindex-jumpbox a", "as => as.map(a => a.innerText.trim())")
    assert len(letters) > 10 and jump == letters
    if lang == "vi":
        assert "Đ" in letters and letters.index("Đ") == letters.index("D") + 1, letters
        assert letters == sorted(letters, key=lambda letter: VIETNAMESE_ALPHABET.find(letter[0])), letters
    else:
        assert letters == sorted(letters), letters
    if lang == "vi":
        page.locator("h2#Đ").scroll_into_view_if_needed()
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "genindex-vi.png"))
    assert not reader.errors and not reader.outside


COMPOUND_SPELLINGS = ("warmup", "warm-up", "warm up", "Warm-up")


@pytest.mark.parametrize("lang", LANGUAGES)
def test_search_finds_a_compound_word_in_any_spelling(reader, lang):
    """"warmup" found 3 pages and "warm-up" 8 to 10 (every page with "warm" anywhere): each spelling
    now finds exactly the pages that hold one of the spellings, and the snippet marks the spelling used."""
    # the pages holding a spelling as a word of its own (in linear_with_warmup, "_" joins it to a longer word)
    def article(path: str) -> str:
        html = (SITE / path).read_text(encoding="utf-8")
        return re.sub(r"<[^>]+>", "", html.split("<article", 1)[-1].split("</article>", 1)[0])
    expected = {path for path in pages_containing(lang, "warm") if re.search(r"(?<!\w)warm[- ]?up(?!\w)", article(path), re.I)}
    assert len(expected) >= 7
    for query in COMPOUND_SPELLINGS:
        found, summary = search(reader, lang, query)
        assert found == expected, f"{query!r}: missing {expected - found}, extra {found - expected}"
    reader.page.wait_for_function(
        "[...document.querySelectorAll('#search-results li')].every(li => li.querySelector('p.context'))", timeout=20000
    )
    highlighted = reader.page.eval_on_selector_all("#search-results p.context .highlighted", "s => s.map(e => e.innerText)")
    assert highlighted and all(re.fullmatch(r"warm[- ]?up\w*", h, re.I) for h in highlighted), highlighted
    assert not reader.errors and not reader.outside


PHONE = {"width": 390, "height": 844}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_phone_title_and_neighbour_links_fit(browser, origin, lang):
    """On a 390 px phone the lesson's title takes at most a fifth of the first screen (the theme's 42 px
    heading took up to 46 %), and the previous/next links run across the page instead of
    breaking their titles one word per line (119 px columns, 5 to 9 lines each)."""
    reader = Reader(browser, origin, viewport=PHONE)
    SHOTS.mkdir(parents=True, exist_ok=True)
    try:
        for lesson in LESSONS:
            page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
            title = page.locator("article.bd-article h1").first.bounding_box()
            assert title["height"] <= PHONE["height"] / 5, f"{lesson}: the title is {title['height']} px high"
            area = page.locator(".prev-next-area").bounding_box()
            for link in page.locator(".prev-next-area a").all():
                title = link.locator(".prev-next-title")
                box, words = title.bounding_box(), title.inner_text()
                line = float(title.evaluate("t => parseFloat(getComputedStyle(t).lineHeight)"))
                assert link.bounding_box()["width"] >= 0.8 * area["width"], f"{lesson}: the link to {words!r} is a narrow column"
                assert round(box["height"] / line) <= 3, f"{lesson}: {words!r} takes {box['height']} px"
            subtitles = page.eval_on_selector_all(".prev-next-subtitle", "ps => ps.map(p => p.innerText.trim())")
            if lang == "vi":
                assert set(subtitles) <= {"Trang trước", "Trang sau"}, subtitles
            if lesson == "04_targeted_freezing_gpt":
                page.screenshot(path=str(SHOTS / f"phone-title-{lang}.png"))
                page.locator(".prev-next-area").scroll_into_view_if_needed()
                page.wait_for_timeout(200)
                page.screenshot(path=str(SHOTS / f"phone-prev-next-{lang}.png"))
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


def lesson_paths(lang: str) -> list[str]:
    return [f"{lang}/notebooks/{lang}/{lesson}.html" for lesson in LESSONS]


DRAWER_LINKS = {"primary": ".bd-links a.reference", "secondary": ".bd-toc-nav a, .page-toc a"}


@pytest.mark.parametrize("width", (390, 900))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_phone_and_tablet_drawers_open(browser, origin, lang, width):
    """On a phone and a tablet the article header's ☰ (lesson list) and contents buttons open their drawers:
    the theme binds only the first such button, in the hidden top header, so course.js forwards the clicks.
    Each opened drawer is kept as a screenshot (drawer-<lang>-<width>-<side>.png)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    reader = Reader(browser, origin, viewport={"width": width, "height": 800})
    try:
        page = reader.visit(lesson_paths(lang)[-1])
        for side in ("primary", "secondary"):
            dialog = page.locator(f"#pst-{side}-sidebar-modal")
            link = dialog.locator(DRAWER_LINKS[side]).first
            page.locator(f".bd-header-article .{side}-toggle").click()
            page.wait_for_timeout(400)  # the drawer slides in
            assert dialog.evaluate("d => d.open"), f"{side} drawer closed after a click at {width} px"
            link.wait_for(state="visible", timeout=5000)
            box = link.bounding_box()
            assert box and 0 <= box["x"] and box["x"] + box["width"] <= width, f"{side} drawer's link off-screen: {box}"
            page.screenshot(path=str(SHOTS / f"drawer-{lang}-{width}-{side}.png"))
            page.keyboard.press("Escape")
            page.wait_for_timeout(300)
            assert not dialog.evaluate("d => d.open")
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


@pytest.mark.parametrize("lang", LANGUAGES)
def test_wide_screen_menu_button_collapses_the_sidebar(reader, lang):
    """At 1280 px the article header's ☰ hides the lesson list and a second click brings it back."""
    page = reader.visit(lesson_paths(lang)[-1])
    sidebar, toggle = page.locator("#pst-primary-sidebar"), page.locator(".bd-header-article .primary-toggle")
    shown = "s => getComputedStyle(s).visibility === 'visible' && s.getBoundingClientRect().right > 0"
    assert sidebar.evaluate(shown)
    toggle.click()
    page.wait_for_function(f"!({shown})(document.getElementById('pst-primary-sidebar'))", timeout=5000)
    assert not page.locator("#pst-primary-sidebar-modal").evaluate("d => d.open"), "a drawer opened on a wide screen"
    page.screenshot(path=str(SHOTS / f"sidebar-collapsed-{lang}.png"))
    toggle.click()
    page.wait_for_function(f"({shown})(document.getElementById('pst-primary-sidebar'))", timeout=5000)
    assert not reader.errors and not reader.outside


WIDE_FIGURES = """() => [...document.querySelectorAll('article.bd-article img')]
  .filter(img => img.naturalWidth >= 700 && img.naturalWidth > 2 * img.naturalHeight)
  .map(img => {
    let box = img.parentElement;
    while (box && !['auto', 'scroll'].includes(getComputedStyle(box).overflowX)) box = box.parentElement;
    const before = box ? box.scrollLeft : 0;
    if (box) box.scrollLeft = before + 50;
    const scrolls = box ? box.scrollLeft > before : false;
    if (box) box.scrollLeft = before;
    return {src: img.getAttribute('src').split('/').pop().slice(0, 12), width: img.getBoundingClientRect().width,
            box: box ? box.clientWidth : null, scrolls, caption: !!img.closest('figure')};
  })"""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_wide_figures_keep_their_size_on_a_phone(browser, origin, lang):
    """Two-panel figures (at least 700 px and more than twice as wide as high) stay at least 560 CSS px wide
    on a 390 px phone and scroll sideways in their own box, not the page; lesson 01's first one is kept as
    a screenshot (wide-figure-<lang>.png)."""
    reader = Reader(browser, origin, viewport={"width": 390, "height": 800})
    found, problems = 0, []
    try:
        for path in lesson_paths(lang):
            page = reader.visit(path)
            page.wait_for_function("[...document.images].every(i => i.complete)", timeout=20000)
            for figure in page.evaluate(WIDE_FIGURES):
                found += 1
                if figure["width"] < 560 or not figure["box"] or figure["box"] > 390 or not figure["scrolls"]:
                    problems.append(f"{path} {figure}")
            scroll_width, viewport = visible_width(page)
            if scroll_width > viewport:
                problems.append(f"{path}: the page is {scroll_width} px wide")
            if path == lesson_paths(lang)[0]:
                page.locator("article figure img").first.scroll_into_view_if_needed()
                page.screenshot(path=str(SHOTS / f"wide-figure-{lang}.png"))
        assert found >= 8, f"only {found} wide figures found"
        assert not problems, "wide figures: " + "; ".join(problems)
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


RESULT_LINES = """() => {
  const cut = [...document.querySelectorAll('.cell_output .output.stream pre, .cell_output .output.text_plain pre')]
    .filter(pre => pre.scrollWidth > pre.clientWidth + 1)
    .map(pre => `${pre.scrollWidth} > ${pre.clientWidth}: ${pre.textContent.slice(0, 60)}`);
  // a number and its ± stay on one line, in tables and in printed results
  const split = [];
  const roots = document.querySelectorAll('article.bd-article td, article.bd-article th, .cell_output .output.stream pre');
  for (const root of roots) {
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    for (let node = walker.nextNode(); node; node = walker.nextNode()) {
      for (const m of node.data.matchAll(/\\S+ ± \\S+|\\d[\\d.,]*e[-+]\\d+/g)) {
        const range = document.createRange();
        range.setStart(node, m.index);
        range.setEnd(node, m.index + m[0].length);
        const tops = [...range.getClientRects()].map(r => r.top);
        if (tops.length && Math.max(...tops) - Math.min(...tops) > 8) split.push(m[0]);
      }
    }
  }
  // a table's row label is not squeezed to a word a line by its numbers: it fits one line or has 120 px
  const squeezed = [...document.querySelectorAll('article.bd-article table.course-table tbody td:first-child')].filter(td => {
    const range = document.createRange();
    range.selectNodeContents(td);
    const lines = new Set([...range.getClientRects()].map(r => Math.round(r.top))).size;
    return lines > 1 && td.getBoundingClientRect().width < 120;
  }).map(td => `${td.textContent.trim()} (${Math.round(td.getBoundingClientRect().width)} px)`);
  return {cut, split, squeezed, outputs: document.querySelectorAll('.cell_output .output.stream pre').length};
}"""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_result_lines_fit_their_box(browser, origin, lang):
    """Printed results (text outputs) wrap inside their box instead of hiding behind a sideways scroll, at
    1280 px and on a 390 px phone; no "a ± b" (or "3.5e-05") is split over two lines in a table or a result,
    and a table's row label keeps a few words a line; lesson 05's headline result is kept as a screenshot
    (results-<lang>-<width>.png)."""
    reader = Reader(browser, origin)
    cut, split, squeezed, outputs = [], [], [], 0
    try:
        for path in lesson_paths(lang):
            page = reader.visit(path)
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                found = page.evaluate(RESULT_LINES)
                outputs += found["outputs"]
                cut += [f"{path} at {width} px: {line}" for line in found["cut"]]
                split += [f"{path} at {width} px: {pair}" for pair in found["split"]]
                squeezed += [f"{path} at {width} px: {label}" for label in found["squeezed"]]
                if path == lesson_paths(lang)[-1]:
                    page.locator(".cell_output .output.stream pre").nth(1).scroll_into_view_if_needed()
                    page.screenshot(path=str(SHOTS / f"results-{lang}-{width}.png"))
        assert outputs > 50
        assert not cut, f"{len(cut)} result blocks wider than their box: " + "; ".join(cut[:10])
        assert not split, f"{len(split)} numbers split from their ± (or exponent): " + "; ".join(split[:10])
        assert not squeezed, f"{len(squeezed)} table row labels squeezed: " + "; ".join(squeezed[:10])
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


FIGURES_AND_REFERENCES = """() => {
  const figures = [...document.querySelectorAll('article.bd-article figure')].map(f => ({
    id: f.id, number: (f.querySelector('.caption-number') || {textContent: ''}).textContent.trim()}));
  const links = [...document.querySelectorAll('article.bd-article a.reference span.std-numref')].map(span => {
    const href = span.closest('a').getAttribute('href');
    const target = href.startsWith('#') ? document.getElementById(decodeURIComponent(href.slice(1))) : null;
    const number = target && target.matches('figure') ? target.querySelector('.caption-number') : null;
    return {href, text: span.textContent.trim(), target: number ? number.textContent.trim() : null};
  });
  return {figures, links, text: document.querySelector('article.bd-article').innerText};
}"""
# references by position that a reader cannot follow once the figure is screens away (the lessons link them instead)
POSITIONAL = {"en": r"\b(the (first|second|last|previous) figure|the figure (above|below))|\((top|middle|bottom) panel\)",
              "vi": r"(?<!mô )hình (đầu tiên|trên|dưới|thứ hai)|\((đồ thị|khung) (trên|giữa|dưới)( cùng)?\)"}


@pytest.mark.parametrize("lang", LANGUAGES)
def test_figures_are_numbered_per_lesson_and_references_link_them(reader, lang):
    """Every lesson numbers its captioned figures from 1 ("Hình 1", "Fig. 1"), each has a label, every {numref} link
    goes to a figure on the same page and reads that figure's number, and no prose points at a figure by position;
    lessons 03 and 04's figures are kept as screenshots at 1280 and 390 px (figure-<lesson>-<lang>-<width>.png)."""
    label = {"vi": "Hình", "en": "Fig."}[lang]
    problems, links = [], 0
    for path in lesson_paths(lang):
        page = reader.visit(path)
        found = page.evaluate(FIGURES_AND_REFERENCES)
        numbers = [figure["number"] for figure in found["figures"]]
        if numbers != [f"{label} {i}" for i in range(1, len(numbers) + 1)]:
            problems.append(f"{path}: figures numbered {numbers}")
        problems += [f"{path}: a figure without a label ({figure['number']})" for figure in found["figures"] if not figure["id"].startswith("fig-")]
        problems += [f"{path}: {link}" for link in found["links"] if link["target"] is None or link["target"] != link["text"]]
        links += len(found["links"])
        problems += [f"{path}: '{m.group(0)}'" for m in re.finditer(POSITIONAL[lang], found["text"], re.IGNORECASE)]
        lesson = path.rsplit("/", 1)[1][:2]
        if lesson in ("03", "04"):
            for width in (1280, 390):
                page.set_viewport_size({"width": width, "height": 900})
                page.wait_for_function("[...document.images].every(i => i.complete)", timeout=20000)
                page.locator("article figure").last.scroll_into_view_if_needed()
                page.wait_for_timeout(400)   # the sidebars' slide after the resize
                page.screenshot(path=str(SHOTS / f"figure-{lesson}-{lang}-{width}.png"))
            page.set_viewport_size({"width": 1280, "height": 900})
    assert links >= 10, f"only {links} figure references found"
    assert not problems, "; ".join(problems)
    assert not reader.errors and not reader.outside


# --- issue 28-B: the student edition one click away, one search box, the lesson list at its top ------------

STUDENT = ROOT / "_build" / "student"
STUDENT_BUTTON = {lang: CONFIG["sphinx"]["config"]["course_languages"][lang]["student_button"]["text"] for lang in LANGUAGES}


@pytest.fixture(scope="module")
def student_edition() -> Path:
    """The student edition in _build/student, written afresh from the committed notebooks (make student's command)."""
    import subprocess
    import sys
    made = subprocess.run([sys.executable, str(ROOT / "book" / "tools" / "student_edition.py"), "--out", str(STUDENT)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert made.returncode == 0, made.stderr[-3000:]
    return STUDENT


def solution_regions(notebook: dict) -> list[list[str]]:
    """The non-blank lines of each BEGIN/END SOLUTION region of a notebook's code cells."""
    regions = []
    for cell in notebook["cells"]:
        inside = None
        for line in "".join(cell["source"]).splitlines():
            if line.strip() == "# BEGIN SOLUTION":
                inside = []
            elif line.strip() == "# END SOLUTION":
                regions.append(inside)
                inside = None
            elif inside is not None and line.strip():
                inside.append(line.strip())
    return regions


@pytest.mark.parametrize("lang", LANGUAGES)
@pytest.mark.parametrize("lesson", LESSONS)
def test_student_edition_button_opens_the_lesson_without_solutions(reader, student_edition, lang, lesson):
    """The launch menu's second Colab entry opens the same lesson and language from the student branch, and that
    notebook (as `make student` writes it, what CI pushes there) exists and holds none of the lesson's solutions."""
    import json
    page = reader.visit(f"{lang}/notebooks/{lang}/{lesson}.html")
    button = page.locator(".dropdown-launch-buttons a.btn-student-edition")
    assert button.count() == 1, "no student-edition button in the launch menu"
    org_repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    branch = CONFIG["repository"]["student_branch"]
    path = f"notebooks/{lang}/{lesson}.ipynb"
    assert button.get_attribute("href") == f"https://colab.research.google.com/github/{org_repo}/blob/{branch}/{path}"
    page.locator(".dropdown-launch-buttons button.dropdown-toggle").click()
    button.wait_for(state="visible", timeout=5000)
    assert button.inner_text().strip() == STUDENT_BUTTON[lang]
    if lesson == LESSONS[0]:
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"student-button-{lang}-1280.png"))

    solved = json.loads((ROOT / path).read_text(encoding="utf-8"))
    edition = json.loads((student_edition / path).read_text(encoding="utf-8"))
    lines = lambda notebook: "\n".join(line.strip() for cell in notebook["cells"]
                                       for line in "".join(cell["source"]).splitlines() if line.strip())
    regions = ["\n".join(region) for region in solution_regions(solved)]
    assert len(regions) >= 2 and all(region in lines(solved) for region in regions)
    everything = lines(edition)
    assert "BEGIN SOLUTION" not in everything and everything.count("raise NotImplementedError") == len(regions)
    assert not [c for c in edition["cells"] if "solution" in c.get("metadata", {}).get("tags", [])]
    leaked = [region for region in regions if region in everything]
    assert not leaked, f"solutions in the student edition: {leaked[:2]}"
    assert not reader.errors and not reader.outside


@pytest.mark.parametrize("lang", LANGUAGES)
def test_student_edition_button_fits_a_phone(browser, origin, lang):
    """At 390 px the opened launch menu shows the student entry whole, on screen (kept as a screenshot)."""
    reader = Reader(browser, origin, viewport={"width": 390, "height": 800})
    try:
        page = reader.visit(lesson_paths(lang)[0])
        page.locator(".dropdown-launch-buttons button.dropdown-toggle").click()
        button = page.locator(".dropdown-launch-buttons a.btn-student-edition")
        button.wait_for(state="visible", timeout=5000)
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, box
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"student-button-{lang}-390.png"))
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


VISIBLE_SEARCH = """() => [...document.querySelectorAll('.search-button, .search-button-field, form.bd-search input')]
  .filter(e => { const r = e.getBoundingClientRect(), s = getComputedStyle(e);
                 return r.width > 0 && r.height > 0 && s.visibility !== 'hidden' && r.bottom > 0 && r.top < innerHeight; })
  .map(e => e.className)"""


@pytest.mark.parametrize("width", (1280, 390))
@pytest.mark.parametrize("lang", LANGUAGES)
def test_one_search_box_and_no_top_bar(browser, origin, lang, width):
    """No bar above the article holding only a second search box (it took 64 px at 1280): the article header is
    the page's top, one search control is on screen, and it searches (an accent-free query on Vietnamese pages)."""
    reader = Reader(browser, origin, viewport={"width": width, "height": 800})
    try:
        page = reader.visit(lesson_paths(lang)[0])
        header = page.locator("header.bd-header")
        assert header.count() == 0 or (header.bounding_box() or {"height": 0})["height"] == 0, "the top bar is back"
        assert page.locator(".bd-header-article").bounding_box()["y"] == 0
        shown = page.evaluate(VISIBLE_SEARCH)
        assert len(shown) == 1, f"{len(shown)} search controls on screen at {width} px: {shown}"
        page.locator(".search-button, .search-button-field").filter(visible=True).first.click()
        field = page.locator("#pst-search-dialog input[type=search]")
        field.wait_for(state="visible", timeout=5000)
        field.fill("toc do hoc" if lang == "vi" else "learning rate")
        field.press("Enter")
        page.wait_for_url(re.compile(r"/search\.html\?q="), timeout=10000)
        page.locator("#search-results li").first.wait_for(timeout=20000)
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()


LIST_POSITION = """() => { const list = document.querySelector('div.bd-sidebar'), box = list.getBoundingClientRect();
  const current = [...document.querySelectorAll('.bd-docs-nav .current > a, .bd-docs-nav a.current')].pop();
  const title = document.querySelector('.bd-sidebar-primary .navbar-brand');
  const seen = (e) => { const r = e.getBoundingClientRect(); return r.top >= box.top - 1 && r.bottom <= box.bottom + 1; };
  const r = current && current.getBoundingClientRect();
  return {top: list.scrollTop, title: seen(title), current: current ? seen(current) : null,
          fitsAtTop: current ? r.bottom + list.scrollTop <= box.bottom : true, below: r ? box.bottom - r.bottom : null}; }"""


@pytest.mark.parametrize("lang", LANGUAGES)
def test_lesson_list_loads_at_its_top(browser, origin, lang):
    """At 1280 x 720 (a laptop) the lesson list shows the site's title on every page whose link fits under it, and
    else scrolls only as far as shows that link; the theme scrolled to where the last page was, or put the
    current link a quarter down, so that the title was cut on 20 of the 28 pages. Pages are opened one after
    another, after the list was scrolled by hand, as a reader does."""
    reader = Reader(browser, origin, viewport={"width": 1280, "height": 720})
    try:
        page = reader.visit(f"{lang}/book/{lang}/index.html")
        page.evaluate("() => { document.querySelector('div.bd-sidebar').scrollTop = 10000; }")
        wrong = []
        for path in [p for p in reader_pages() if p.startswith(f"{lang}/")]:
            page = reader.visit(path)
            if page.locator(".bd-docs-nav").count() == 0:
                continue
            where = page.evaluate(LIST_POSITION)
            if where["fitsAtTop"]:
                ok = where["top"] == 0 and where["title"] and where["current"] is not False
            else:
                ok = where["current"] and where["below"] <= 40
            if not ok:
                wrong.append((path, where))
        assert not wrong, f"the lesson list loads scrolled away from its title: {wrong}"
        page = reader.visit(lesson_paths(lang)[-1])
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"lesson-list-{lang}-1280x720.png"))
        assert not reader.errors and not reader.outside
    finally:
        reader.context.close()
