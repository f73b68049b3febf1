"""Sphinx extension for the course's two one-language builds (vi, en).

* Vietnamese search: Sphinx has no Vietnamese search language, and its
  English fallback stems Vietnamese words and drops "to", "in".  Here both
  the index and the query are folded the same way (NFD, drop combining
  marks, d-stroke -> d, lower case), so "toc do hoc" finds "tốc độ học".
* Compound words in any spelling: "warmup", "warm-up" and "warm up" are
  indexed under the joined word too, and course.js joins them in the query.
* The general index in Vietnamese order: "Đ" right after "D", not after "Z".
* Per-language settings from ``course_languages`` in ``_config.yml``:
  the site title, the search-box placeholder, the figure labels ("Hình 1")
  and theme strings that the theme leaves in English or mistranslates.
* Figures (and tables, code blocks) numbered per page: every lesson starts at
  "Fig. 1", in its captions and in its {numref} links, without section numbers.
* A link on every page to the same page in the other language, which is
  built next to this one (``_build/html/vi/...`` and ``_build/html/en/...``).
* No thebe scripts: the course launches notebooks in Colab, not in the page.
* A second Colab button on every lesson page, "exercises without solutions":
  the same notebook from the student branch (``repository.student_branch``),
  where CI's pages job pushes the student edition (book/tools/student_edition.py).
* References by author and year, the same in the text and in the list:
  the text reads "(Loshchilov & Hutter, 2017)", "(Goyal et al., 2017)" ("&"
  reads the same in both languages), and the list on the references page is
  labelled "[Loshchilov & Hutter, 2017]" instead of pybtex's letter labels.
* ``_static/course.js`` on every page: the language switch keeps the section,
  wide figures stay legible on a phone, search snippets show the matching
  sentence; ``_static/course.css``: the layout fits a phone.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pybtex.plugin
import sphinxcontrib.bibtex.plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle
from sphinx.application import Sphinx
from sphinx.search import SearchLanguage
from sphinx.search.en import SearchEnglish
from sphinxcontrib.bibtex.style.referencing import PersonStyle
from sphinxcontrib.bibtex.style.referencing.author_year import AuthorYearReferenceStyle

_STEMMER_JS = r"""
var Stemmer = function() {
  this.stemWord = function(word) {
    return word.normalize("NFD").replace(/[\u0300-\u036f]/g, "")
      .replace(/\u0111/g, "d").replace(/\u0110/g, "d").toLowerCase();
  };
};
"""


def fold(word: str) -> str:
    """Vietnamese word without diacritics, lower case: "Tốc Độ" -> "toc do"."""
    decomposed = unicodedata.normalize("NFD", word)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.replace("đ", "d").replace("Đ", "d").lower()


# Words the lessons write joined, hyphenated or spaced: each spelling is indexed under the joined
# word too, and course.js turns every spelling of a query into the joined word (the same table),
# so "warmup", "warm-up" and "warm up" find the same pages.
COMPOUND_WORDS = {"warmup": re.compile(r"(?<!\w)warm[-\s]?up(?!\w)", re.IGNORECASE)}   # "_" joins a word, as in the splitter


class CompoundWords:
    """A search language whose split also yields the joined form of every compound's spelling."""

    def split(self, input: str) -> list[str]:
        words = super().split(input)
        for joined, spellings in COMPOUND_WORDS.items():
            words += [joined] * len(spellings.findall(input))
        return words


class SearchVietnamese(CompoundWords, SearchLanguage):
    lang = "vi"
    language_name = "Vietnamese"
    js_stemmer_code = _STEMMER_JS
    stopwords: set[str] = set()

    def stem(self, word: str) -> str:
        return fold(word)


class SearchEnglishCompounds(CompoundWords, SearchEnglish):
    """Sphinx's English search (stemmer, stop words) with the compound words."""


# --- references: author-year in the text and in the list -------------------------------------------

AUTHOR_YEAR = "course_author_year"   # the name of both styles, for bibtex_reference_style and bibtex_default_style


@dataclass
class CourseAuthorYearReferenceStyle(AuthorYearReferenceStyle):
    """sphinxcontrib-bibtex's author_year with "&" between two authors: "(Kingma & Ba, 2015)"."""

    person: PersonStyle = field(default_factory=lambda: PersonStyle(sep2=" & ", last_sep=", & "))


class AuthorYearLabelStyle(BaseLabelStyle):
    """List labels that read like the citations in the text: "Kingma & Ba, 2015", "Goyal et al., 2017"."""

    def format_labels(self, sorted_entries):
        labels = [self.format_label(entry) for entry in sorted_entries]
        total, seen = Counter(labels), Counter()
        for label in labels:   # two works by the same authors in one year: 2017a, 2017b
            seen[label] += 1
            yield label + "abcdefghijklmnopqrstuvwxyz"[seen[label] - 1] if total[label] > 1 else label

    @staticmethod
    def format_label(entry) -> str:
        persons = entry.persons.get("author") or entry.persons.get("editor") or []
        names = [Text.from_latex(" ".join(p.prelast_names + p.last_names)).render_as("text") for p in persons]
        if not names:
            who = Text.from_latex(entry.fields.get("title", entry.key)).render_as("text")
        elif len(names) == 1:
            who = names[0]
        elif len(names) == 2:
            who = f"{names[0]} & {names[1]}"
        else:
            who = f"{names[0]} et al."
        return f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(PlainStyle):
    """pybtex's plain style, sorted by author and year, labelled by AuthorYearLabelStyle."""

    default_label_style = AUTHOR_YEAR
    default_sorting_style = "author_year_title"


pybtex.plugin.register_plugin("pybtex.style.labels", AUTHOR_YEAR, AuthorYearLabelStyle)
pybtex.plugin.register_plugin("pybtex.style.formatting", AUTHOR_YEAR, AuthorYearStyle)
sphinxcontrib.bibtex.plugin.register_plugin("sphinxcontrib.bibtex.style.referencing", AUTHOR_YEAR, CourseAuthorYearReferenceStyle)


# --- per-language settings ---------------------------------------------------------------------------

def _language_settings(app: Sphinx) -> dict:
    settings = app.config.course_languages
    if app.config.language not in settings:
        raise ValueError(f"course_languages in _config.yml has no entry for language {app.config.language!r}")
    return settings[app.config.language]


def _configure(app: Sphinx, config) -> None:
    settings = _language_settings(app)
    config.html_title = settings["title"]
    config.html_theme_options = {
        **config.html_theme_options,
        "search_bar_text": settings["search_bar_text"],
        "article_header_end": ["course-lang-switch.html", "article-header-buttons.html"],
    }
    config.templates_path = [*config.templates_path, str(Path(__file__).parent / "templates")]
    # "Fig. %s": Sphinx's Vietnamese catalogue leaves the figure and table labels in English
    config.numfig_format = {**config.numfig_format, **settings.get("numfig_format", {})}


def _number_per_page(app: Sphinx, env) -> list[str]:
    """Restart the figure numbers on every page.  Sphinx numbers figures by section
    number, and the lessons' toctree has none, so it counts across the whole book
    (lesson 03's only figure was "Fig. 8"); runs after Sphinx's own numbering and
    keeps its order within each page."""
    changed = []
    for docname, by_type in env.toc_fignumbers.items():
        renumbered = {
            figtype: {figure_id: (index,) for index, figure_id in enumerate(sorted(numbers, key=numbers.get), start=1)}
            for figtype, numbers in by_type.items()
        }
        if renumbered != by_type:
            env.toc_fignumbers[docname] = renumbered
            changed.append(docname)
    return changed


def _counterpart(pagename: str, lang: str, other: str) -> str:
    return re.sub(rf"(^|/){lang}(/|$)", rf"\g<1>{other}\g<2>", pagename, count=1)


def _drop_thebe(context: dict) -> None:
    """Thebe is off (launch_buttons.thebe: false), yet sphinx-thebe still adds its
    scripts, declaring THEBE_JS_URL twice (a console error on every page)."""
    context["script_files"] = [
        js for js in context.get("script_files", [])
        if "thebe" not in str(getattr(js, "filename", js) or "")
        and "THEBE_JS_URL" not in getattr(js, "attributes", {}).get("body", "")
    ]
    context["css_files"] = [css for css in context.get("css_files", []) if "thebe" not in str(getattr(css, "filename", css))]


def _page_context(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    _drop_thebe(context)
    _add_language_link(app, pagename, context)
    if pagename == "genindex" and context.get("genindexentries"):
        context["genindexentries"] = _sorted_index(context["genindexentries"])


def _collation_key(text: str) -> str:
    """Sphinx's index order (lower case, NFD: accents after the bare letter) with the
    Vietnamese alphabet's đ right after d: NFD leaves "đ" whole, so Sphinx puts it after z."""
    return unicodedata.normalize("NFD", text.lower()).replace("đ", "d~")   # "~" sorts after every ASCII letter


def _sorted_index(groups: list) -> list:
    """The general index's letter groups and their entries in Vietnamese order ("Đ" between
    "D" and "E"); the symbols group, whose heading is not one letter, stays first."""
    def group_key(group):
        letter = group[0]
        return (1, _collation_key(letter)) if len(letter) == 1 and letter.isalpha() else (0, "")
    return [(letter, sorted(entries, key=lambda entry: (_collation_key(entry[0]), entry[0])))
            for letter, entries in sorted(groups, key=group_key)]


def _add_language_link(app: Sphinx, pagename: str, context: dict) -> None:
    lang = app.config.language
    for other, settings in app.config.course_languages.items():
        if other == lang:
            continue
        href = "../" * (pagename.count("/") + 1) + f"{other}/{_counterpart(pagename, lang, other)}.html"
        context["course_lang_switch"] = {"href": href, "lang": other, "label": settings["switch_label"]}
        context["metatags"] = context.get("metatags", "") + f'\n<link rel="alternate" hreflang="{other}" href="{href}" />'


def _add_student_button(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """After the theme's launch menu is made: a second Colab entry that opens the page's notebook from the
    student branch, the theme's Colab URL with its branch swapped, so it follows _config.yml the same way."""
    theme = app.config.html_theme_options
    solved = f"/blob/{theme.get('repository_branch') or 'main'}/"
    for group in context.get("header_buttons", []):
        if group.get("label") != "launch-buttons":
            continue
        colab = next((b for b in group["buttons"] if "colab.research.google.com/github/" in b.get("url", "") and solved in b["url"]), None)
        if colab is None:
            continue
        strings = _language_settings(app)["student_button"]
        group["buttons"].append({**colab, "text": strings["text"], "tooltip": strings["tooltip"], "label": "student-edition",
                                 "url": colab["url"].replace(solved, f"/blob/{app.config.course_student_branch}/", 1)})


SCRIPTS_WITH_STRINGS = ("togglebutton.js", "copybutton.js")


def _fix_theme_strings(app: Sphinx, exception) -> None:
    """Replace theme strings left in English, and fill search strings the language's catalogue leaves empty."""
    if exception is not None or app.builder.format != "html":
        return
    settings = _language_settings(app)
    replacements = settings.get("theme_strings", {})
    # the extensions' scripts that write strings into the page at run time (the solution's
    # toggle button, the code cells' copy button) get the same replacements as the pages
    scripts = [Path(app.outdir) / "_static" / name for name in SCRIPTS_WITH_STRINGS]
    for page in [*Path(app.outdir).rglob("*.html"), *(s for s in scripts if s.exists())]:
        html = page.read_text(encoding="utf-8")
        fixed = html
        for wrong, right in replacements.items():
            fixed = fixed.replace(wrong, right)
        if fixed != html:
            page.write_text(fixed, encoding="utf-8")
    catalogue = Path(app.outdir) / "_static" / "translations.js"
    if settings.get("search_strings") and catalogue.exists():
        js = catalogue.read_text(encoding="utf-8")
        for english, translated in settings["search_strings"].items():
            js = js.replace(f"{json.dumps(english)}: \"\"", f"{json.dumps(english)}: {json.dumps(translated)}")
        catalogue.write_text(js, encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.add_config_value("course_languages", {}, "html")
    app.add_config_value("course_student_branch", "student", "html")
    app.add_search_language(SearchVietnamese)
    app.add_search_language(SearchEnglishCompounds)
    app.connect("config-inited", _configure)
    app.connect("env-get-updated", _number_per_page, priority=900)   # after Sphinx's numbering (priority 500)
    app.connect("html-page-context", _page_context)
    app.connect("html-page-context", _add_student_button, priority=600)   # after the theme's launch buttons (501)
    app.connect("build-finished", _fix_theme_strings)
    app.add_css_file("course.css")
    app.add_js_file("course.js", loading_method="defer")
    return {"version": "0.1", "parallel_read_safe": True, "parallel_write_safe": True}
