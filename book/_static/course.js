/* The course's page behaviour, on every page of both language builds (loaded with `defer`).
 *
 * 1. The language switch keeps the section: section ids differ by language, so the link
 *    carries the section's position (#course-section-N, N-th <section> of the article) and
 *    the page in the other language turns that back into its own N-th section's id.
 * 2. Wide figures (two panels, the explorer) are marked so that on a phone they keep a
 *    readable size and scroll sideways in their own box (course.css).
 * 3. Search results: Sphinx's snippet is the first 240 characters of the page's main block,
 *    which starts with the language switch, shows raw TeX and glues block elements together
 *    ("learning ratetốc độ học"), and cannot find Vietnamese words in accent-folded queries.
 *    Here the snippet is the sentence of the article that holds the query words.
 * 4. A number and its "± error" stay on one line in tables and printed results.
 * 5. The article header's ☰ and contents buttons work (the theme binds only the hidden ones).
 * 6. Search: "warmup", "warm-up" and "warm up" find the same pages.
 * 7. The lesson list opens at its top, under the site's title, whenever the current page's link fits there.
 */
(() => {
  "use strict";

  /* ---------- 1. language switch keeps the section ---------- */
  const POSITION = /^#course-section-(\d+)$/;
  const sections = () => Array.from(document.querySelectorAll("article.bd-article section[id]"));

  function sectionPosition(hash) {
    if (!hash || hash.length < 2 || POSITION.test(hash)) return -1;
    const target = document.getElementById(decodeURIComponent(hash.slice(1)));
    const section = target && target.closest("section[id]");
    return section ? sections().indexOf(section) : -1;
  }

  function updateSwitch() {
    const link = document.querySelector(".course-lang-switch a");
    if (!link) return;
    const base = link.getAttribute("href").split("#")[0];
    const position = sectionPosition(window.location.hash);
    link.setAttribute("href", position > 0 ? `${base}#course-section-${position}` : base);
  }

  function arriveAtSection() {
    const match = POSITION.exec(window.location.hash);
    if (!match) return;
    const section = sections()[Number(match[1])];
    if (!section) {
      history.replaceState(null, "", window.location.pathname + window.location.search);
      return;
    }
    window.location.replace(`#${section.id}`);
    // images above the section change the layout while they load: land on it again once loaded
    window.addEventListener("load", () => {
      if (window.location.hash === `#${section.id}`) section.scrollIntoView();
    }, { once: true });
  }

  /* ---------- 2. wide figures ---------- */
  // An image at least 700 px and more than twice as wide as high: its parent becomes the box that
  // scrolls, the figure's link (figure > a > img) so that the caption keeps the page's width, or
  // the output itself for an image without a caption.
  function markWideFigures() {
    for (const img of document.querySelectorAll("article.bd-article img")) {
      const mark = () => {
        if (img.naturalWidth >= 700 && img.naturalWidth > 2 * img.naturalHeight) {
          img.parentElement.classList.add("course-wide-output");
        }
      };
      if (img.complete) mark(); else img.addEventListener("load", mark, { once: true });
    }
  }

  /* ---------- 3. search snippets ---------- */
  const fold = (s) => s.normalize("NFD").replace(/[\u0300-\u036f]/g, "").replace(/[\u0111\u0110]/g, "d").toLowerCase();
  // folded character by character, so that positions in the folded text are positions in the text
  const foldInPlace = (s) => Array.prototype.map.call(s, (ch) => { const f = fold(ch); return f.length === 1 ? f : (f[0] || " "); }).join("");

  const SYMBOLS = {
    alpha: "α", beta: "β", gamma: "γ", delta: "δ", epsilon: "ε", varepsilon: "ε", eta: "η", theta: "θ",
    lambda: "λ", mu: "μ", pi: "π", rho: "ρ", sigma: "σ", tau: "τ", phi: "φ", omega: "ω", Delta: "Δ",
    Sigma: "Σ", nabla: "∇", partial: "∂", infty: "∞", cdot: "·", times: "×", le: "≤", leq: "≤", ge: "≥",
    geq: "≥", approx: "≈", ne: "≠", neq: "≠", leftarrow: "←", rightarrow: "→", to: "→", gets: "←",
    lVert: "‖", rVert: "‖", Vert: "‖", "|": "‖", lvert: "|", rvert: "|", sum: "Σ", int: "∫", sqrt: "√",
    pm: "±", ldots: "…", dots: "…", cdots: "⋯", in: "∈", propto: "∝", sim: "∼",
  };
  const DROPPED = new Set(["left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "displaystyle", "quad", "qquad", "mathrm", "mathbf", "mathit", "text", "operatorname"]);

  /** TeX as a reader would say it: "\(\eta_{\min}\)" -> "η_min". */
  function texToText(tex) {
    return tex
      .replace(/\\[()[\]]/g, " ").replace(/\$/g, " ")
      .replace(/\\(begin|end)\{[^}]*\}/g, " ").replace(/\\\\/g, "; ").replace(/&/g, " ")
      .replace(/\\frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}/g, "($1)/($2)")
      .replace(/\\([A-Za-z]+|\|)/g, (m, name) => SYMBOLS[name] ?? (DROPPED.has(name) ? "" : name))
      .replace(/\\./g, " ")
      .replace(/([_^])\{([^{}]*[-+=,][^{}]*)\}/g, "$1($2)").replace(/[{}]/g, "")
      .replace(/\s+/g, " ").trim();
  }

  const CHROME = [".headerlink", "script", "style", "noscript", ".course-lang-switch", ".bd-header-article",
    "#jb-print-docs-body", ".prev-next-area", ".bd-sidebar-secondary", "nav", "button", "footer", "mjx-assistive-mml"];
  const BLOCK_END = "\uE000";
  const BLOCKS = "p, div, li, dd, h1, h2, h3, h4, h5, h6, pre, td, th, tr, table, section, figure, figcaption, caption, blockquote, br, ul, ol, dl";

  /** The article's text: chrome left out, math spoken, a line break after every block. */
  function articleText(html, anchor) {
    const doc = new DOMParser().parseFromString(html, "text/html");
    doc.querySelectorAll(CHROME.join(",")).forEach((e) => e.remove());
    doc.querySelectorAll(".math").forEach((e) => e.replaceWith(doc.createTextNode(` ${texToText(e.textContent)} `)));
    doc.querySelectorAll(BLOCKS).forEach((e) => e.append(doc.createTextNode(BLOCK_END)));
    doc.querySelectorAll("dt").forEach((e) => e.append(doc.createTextNode(" — ")));   // a term runs on into its definition
    const article = doc.querySelector("article.bd-article") || doc.querySelector('[role="main"]') || doc.body;
    let root = article;
    if (anchor && anchor.length > 1) {
      const target = doc.getElementById(decodeURIComponent(anchor.slice(1)));
      if (target && article.contains(target)) root = target;
      // a glossary term: the term and its definition
      if (target && target.tagName === "DT" && target.nextElementSibling && target.nextElementSibling.tagName === "DD") {
        root = doc.createElement("dl");
        root.append(target, target.nextElementSibling);
      }
    }
    // the prose: no code, no outputs, no headings (the result's title already shows them)
    const prose = root.cloneNode(true);
    prose.querySelectorAll(".cell_input, .cell_output, pre, h1, h2, h3, h4, h5, h6").forEach((e) => e.remove());
    // line breaks in the source are spaces; the end of a block is a line break
    const tidy = (node) => node.textContent.replace(/\s+/g, " ").replace(/ ?\uE000[\s\uE000]*/g, "\n").replace(/ ([,.;:)])/g, "$1").trim();
    return [tidy(prose), tidy(root)];
  }

  const escapeRe = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

  /** The sentence holding the most query words, as [start, end, hits], hits = [[start, end], ...]. */
  function bestSentence(text, keywords) {
    const folded = foldInPlace(text);
    const patterns = keywords.map((k) => new RegExp(`(?<![\\p{L}\\p{N}_])${wordPattern(k)}[\\p{L}\\p{N}_]*`, "gu"));  // "_" joins a word: max_grad_norm is not "norm"
    let best = null;
    const boundary = /\n|[.!?;](?=\s)/g;
    let start = 0;
    for (let m = boundary.exec(text); ; m = boundary.exec(text)) {
      const end = m ? m.index + m[0].length : text.length;
      const piece = folded.slice(start, end);
      const hits = [];
      let score = 0;
      for (const pattern of patterns) {
        pattern.lastIndex = 0;
        let found = false;
        for (const hit of piece.matchAll(pattern)) { hits.push([start + hit.index, start + hit.index + hit[0].length]); found = true; }
        if (found) score++;
      }
      if (score > 0 && (!best || score > best.score)) best = { start, end, hits, score };
      if (!m) break;
      start = end;
    }
    // a short sentence (a term, a list item) runs on into the next ones
    if (best) {
      const more = /\n|[.!?;](?=\s)/g;
      more.lastIndex = best.end;
      while (best.end - best.start < 100 && best.end < text.length) {
        const m = more.exec(text);
        best.end = m ? m.index + m[0].length : text.length;
      }
    }
    return best;
  }

  function summaryNode(text, best) {
    const LIMIT = 240;
    let { start, end } = best;
    while (start < end && /\s/.test(text[start])) start++;
    if (end - start > LIMIT) {
      const first = best.hits.reduce((a, h) => Math.min(a, h[0]), end);
      start = Math.max(start, Math.min(first - 60, end - LIMIT));
      end = Math.min(end, start + LIMIT);
      // cut between words
      if (start > best.start) { const space = text.indexOf(" ", start); if (space > -1 && space < first) start = space + 1; }
      if (end < best.end) { const space = text.lastIndexOf(" ", end); if (space > start) end = space; }
    }
    const summary = document.createElement("p");
    summary.classList.add("context");
    if (start > best.start + 1) summary.append("…");
    let at = start;
    for (const [a, b] of [...best.hits].sort((x, y) => x[0] - y[0])) {
      if (a < at || b > end) continue;
      summary.append(text.slice(at, a).replace(/\n/g, " "));
      const mark = document.createElement("span");
      mark.className = "highlighted";
      mark.textContent = text.slice(a, b);
      summary.append(mark);
      at = b;
    }
    summary.append(text.slice(at, end).replace(/\n/g, " ").trimEnd());
    if (end < best.end - 1) summary.append("…");
    return summary;
  }

  function installSearchSummary() {
    if (typeof Search === "undefined" || typeof Search.makeSearchSummary !== "function") return;
    Search.makeSearchSummary = (htmlText, keywords, anchor) => {
      const typed = joinCompounds(new URLSearchParams(window.location.search).get("q") || "").split(/\s+/).filter(Boolean).map(fold);
      const words = [...new Set([...keywords].map(fold).concat(typed))].filter((w) => w.length > 0);
      const [prose, everything] = articleText(htmlText, anchor);
      for (const text of [prose, everything]) {
        const best = text && bestSentence(text, words);
        if (best) return summaryNode(text, best);
      }
      // the words are only in the title: the page's first lines stand in
      const summary = document.createElement("p");
      summary.classList.add("context");
      summary.textContent = prose.replace(/\n/g, " ").slice(0, 240);
      return summary;
    };
  }

  /* ---------- 4. results: a number keeps its ± on one line ---------- */
  // "0.49 ± 0.14" in a table cell or a printed result wraps as one piece, and so does "3.5e-05"
  // (the browser breaks after its hyphen); the text (and what a reader copies) is unchanged,
  // only wrapped in a span that does not break.
  const WITH_ERROR = /\S+ ± \S+|\d[\d.,]*e[-+]\d+/g;
  function keepErrorsTogether() {
    const roots = document.querySelectorAll("article.bd-article td, article.bd-article th, .cell_output .output.stream pre");
    for (const root of roots) {
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      const nodes = [];
      for (let node = walker.nextNode(); node; node = walker.nextNode()) if (node.data.match(WITH_ERROR)) nodes.push(node);
      for (const node of nodes) {
        const pieces = document.createDocumentFragment();
        let at = 0;
        for (const m of node.data.matchAll(WITH_ERROR)) {
          pieces.append(node.data.slice(at, m.index));
          const span = document.createElement("span");
          span.className = "course-nowrap";
          span.textContent = m[0];
          pieces.append(span);
          at = m.index + m[0].length;
        }
        pieces.append(node.data.slice(at));
        node.replaceWith(pieces);
      }
    }
  }

  /* ---------- 5. sidebar buttons ---------- */
  // The theme binds only the first .primary-toggle / .secondary-toggle of the page, which sits in
  // the top header where sphinx-book-theme hides it (pydata-sphinx-theme#2451, since 0.17): the
  // article header's buttons did nothing. Their clicks go to the bound button, which opens the
  // drawer on a narrow screen and collapses the lesson list on a wide one (sphinx-book-theme).
  function forwardSidebarButtons() {
    for (const kind of [".primary-toggle", ".secondary-toggle"]) {
      const bound = document.querySelector(kind);
      for (const button of document.querySelectorAll(kind)) {
        if (button === bound) continue;
        button.addEventListener("click", (event) => {
          event.preventDefault();
          event.stopPropagation();
          bound.click();
          // no drawer took the focus (a wide screen): let go of it, or the tooltip stays up
          if (document.activeElement === button) button.blur();
        });
      }
    }
  }

  /* ---------- 7. the lesson list starts at the top ---------- */
  // The theme scrolls the list on load, to the position of the last page (sessionStorage) or to put the
  // current link a quarter down, which on a 720-800 px high window cut the site's title off on most pages.
  // Here the list goes back to its top when the current link is seen there; otherwise it scrolls just
  // enough to show that link at the bottom.
  function sidebarAtTop() {
    const sidebar = document.querySelector("div.bd-sidebar");
    const current = Array.from(document.querySelectorAll(".bd-docs-nav .current > a, .bd-docs-nav a.current")).pop();
    if (!sidebar || sidebar.scrollHeight <= sidebar.clientHeight) return;
    sidebar.scrollTop = 0;
    if (!current) return;
    const below = current.getBoundingClientRect().bottom - sidebar.getBoundingClientRect().bottom;
    if (below > 0) sidebar.scrollTop = below + 16;
  }

  installSearchSummary();
  document.addEventListener("DOMContentLoaded", () => {
    sidebarAtTop();
    arriveAtSection();
    updateSwitch();
    markWideFigures();
    keepErrorsTogether();
    forwardSidebarButtons();
  });
  window.addEventListener("hashchange", updateSwitch);

  /* ---------- 6. search: a compound word in any spelling ----------
   * "warmup", "warm-up" and "warm up" should find the same pages. The index lists every spelling
   * under the joined word too (COMPOUND_WORDS in course_i18n.py, the same table); here the query's
   * spellings become the joined word before Sphinx parses it, and a snippet marks every spelling.
   */
  const COMPOUNDS = [["warmup", "warm[-\\s]?up"]];
  const compoundRe = (source) => new RegExp(`(?<![\\p{L}\\p{N}_])${source}(?![\\p{L}\\p{N}_])`, "giu");
  /** "warm-up", "warm up" -> "warmup" */
  const joinCompounds = (query) => COMPOUNDS.reduce((q, [joined, source]) => q.replace(compoundRe(source), joined), query);
  /** A query word as a pattern for the snippet: a compound matches each of its spellings. */
  const wordPattern = (word) => (COMPOUNDS.find(([joined]) => joined === word) || [word, escapeRe(word)])[1];

  if (typeof Search !== "undefined" && typeof Search._parseQuery === "function") {
    const parse = Search._parseQuery;
    Search._parseQuery = (query) => parse(joinCompounds(query));
  }
})();
