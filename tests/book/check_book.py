#!/usr/bin/env python3
"""Browser check of the built book: does every chapter page render correctly with NO network?

Serves the built HTML (default book/_build/html) from a local http.server on 127.0.0.1, opens each
chapter page listed in book/_toc.yml (pages under chapters/) plus the root page in headless
Chromium (Debian's chromium + chromedriver, driven by Selenium; DNS for every other host is
blocked, so anything fetched from a CDN fails and is reported), and checks per page:

  1. math:       MathJax loaded and finished, typeset math exists where the source has math, and no
                 raw TeX ($$, \\(, \\begin{, \\frac, \\sqrt, ...) is left in visible text;
  2. images:     every <img> loaded (complete, naturalWidth > 0);
  3. animations: every matplotlib to_jshtml() animation is there, with its frame image and
                 controls, and stepping a frame changes the image;
  4. widgets:    pages with embedded ipywidgets (widget-view scripts) rendered every view, with no
                 widget error;
  5. exercises:  sphinx-exercise exercise / solution directives in the source rendered (and gated
                 solutions contain their code cells);
  6. links:      every internal a[href] resolves to an existing file (and anchor) on disk;
plus: no JavaScript errors in the console, no request to another host, no external <script src>.
A static pass over every built HTML file also checks internal links, images, scripts and
stylesheets, so it doubles as the link check of the whole site.

A full-page screenshot of each checked page goes to the screenshots folder.
Exits 0 when all is well, 1 with a readable list of failures otherwise, 2 when it cannot run.

usage: python tests/book/check_book.py [--html book/_build/html] [--screenshots DIR] [--all-pages]
Needs /usr/bin/chromium and /usr/bin/chromedriver (tests/book/install_chromium.sh installs them).
"""
from __future__ import annotations

import argparse
import functools
import html.parser
import http.server
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

# Text that must not survive typesetting (outside code, scripts and MathJax's own output).
RAW_TEX_LITERALS = ["$$", "\\(", "\\)", "\\[", "\\]", "\\begin{", "\\frac", "\\sqrt"]
RAW_TEX_REGEX = r"\$[^$\n]{0,200}?\\[A-Za-z]+[^$\n]{0,200}?\$"
# Source markers.
SRC_MATH = re.compile(r"\$\$|\$[^$\n]*\\[A-Za-z]|\\begin\{|\{math\}|\{eq\}`")
SRC_EXERCISE = re.compile(r"^\s*(```+|:::+)\s*\{(exercise|exercise-start)\}", re.M)
SRC_SOLUTION = re.compile(r"^\s*(```+|:::+)\s*\{(solution|solution-start)\}", re.M)
SRC_SOLUTION_START = re.compile(r"^\s*(```+|:::+)\s*\{solution-start\}", re.M)
SRC_SOLUTION_END = re.compile(r"^\s*(```+|:::+)\s*\{solution-end\}", re.M)
WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"
WIDGET_STATE_MIME = "application/vnd.jupyter.widget-state+json"
IGNORED_CONSOLE = [re.compile(r"favicon\.ico")]
CHAPTER_PAGE = re.compile(r"^chapters/(\d\d_[a-z0-9_]+)/\1$")  # a lecture page: chapters/NN_name/NN_name
COLAB_PREFIX = "https://colab.research.google.com/github/"
JS_COLAB_BADGES = """return Array.from(document.querySelectorAll('a.colab-badge')).map((a) => {
  const im = a.querySelector('img');
  return [a.href, !!(im && im.complete && im.naturalWidth > 0)];
});"""


# --------------------------------------------------------------------------------------------
# What the source says the page must show
# --------------------------------------------------------------------------------------------
@dataclass
class Expect:
    source: Path | None = None
    math: bool = False
    exercises: int = 0
    solutions: int = 0
    gated_solution_with_code: int = 0
    animations: int = 0
    widget_views: int = 0
    widget_state: bool = False
    image_outputs: int = 0


def _cell_text(cell) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell) -> set[str]:
    return set(cell.get("metadata", {}).get("tags", []) or [])


def expectations(source_root: Path, docname: str) -> Expect:
    """Reads the page's source (.ipynb preferred, else .md/.rst) and derives what must render."""
    exp = Expect()
    for suffix in (".ipynb", ".md", ".rst"):
        path = source_root / f"{docname}{suffix}"
        if path.exists():
            exp.source = path
            break
    if exp.source is None:
        return exp
    if exp.source.suffix != ".ipynb":
        text = exp.source.read_text(encoding="utf8")
        exp.math = bool(SRC_MATH.search(text))
        exp.exercises = len(SRC_EXERCISE.findall(text))
        exp.solutions = len(SRC_SOLUTION.findall(text))
        return exp

    nb = json.loads(exp.source.read_text(encoding="utf8"))
    exp.widget_state = bool(nb.get("metadata", {}).get("widgets", {}).get(WIDGET_STATE_MIME, {}).get("state"))
    in_gated, gated_has_code = False, False
    for cell in nb.get("cells", []):
        tags = _tags(cell)
        if "remove-cell" in tags:
            continue
        text = _cell_text(cell)
        if cell.get("cell_type") == "markdown":
            exp.math |= bool(SRC_MATH.search(text))
            exp.exercises += len(SRC_EXERCISE.findall(text))
            exp.solutions += len(SRC_SOLUTION.findall(text))
            if SRC_SOLUTION_START.search(text):
                in_gated, gated_has_code = True, False
            if SRC_SOLUTION_END.search(text) and in_gated:
                exp.gated_solution_with_code += int(gated_has_code)
                in_gated = False
        elif cell.get("cell_type") == "code":
            if in_gated:
                gated_has_code = True
            if "remove-output" in tags:
                continue
            for out in cell.get("outputs", []):
                data = out.get("data", {})
                html_out = data.get("text/html", "")
                html_out = "".join(html_out) if isinstance(html_out, list) else html_out
                if 'class="animation"' in html_out and "anim-controls" in html_out:
                    exp.animations += 1
                if WIDGET_VIEW_MIME in data:
                    exp.widget_views += 1
                elif any(k.startswith("image/") for k in data):
                    exp.image_outputs += 1
    return exp


# --------------------------------------------------------------------------------------------
# Table of contents
# --------------------------------------------------------------------------------------------
def toc_docnames(toc_path: Path) -> list[str]:
    import yaml  # PyYAML comes with jupyter-book

    toc = yaml.safe_load(toc_path.read_text(encoding="utf8"))
    names = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                names.append(node["file"])
            for key in ("parts", "chapters", "sections", "entries", "subtrees"):
                for child in node.get(key, []) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    # strip suffixes, keep order, drop duplicates
    out = []
    for n in names:
        n = re.sub(r"\.(ipynb|md|rst)$", "", n)
        if n not in out:
            out.append(n)
    return out


# --------------------------------------------------------------------------------------------
# Static check of every built HTML file (links, images, scripts, stylesheets)
# --------------------------------------------------------------------------------------------
class _RefParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs: list[tuple[str, str, str]] = []  # (tag, attr, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if a.get("id"):
            self.ids.add(a["id"])
        if tag == "a" and a.get("name"):
            self.ids.add(a["name"])
        if tag == "a" and a.get("href") is not None:
            self.refs.append(("a", "href", a["href"]))
        elif tag in ("img", "script") and a.get("src"):
            self.refs.append((tag, "src", a["src"]))
        elif tag == "link" and a.get("href") and a.get("rel") in ("stylesheet", "preload"):
            self.refs.append(("link", "href", a["href"]))


@functools.lru_cache(maxsize=None)
def _parse_html(path: Path) -> _RefParser:
    p = _RefParser()
    p.feed(path.read_text(encoding="utf8", errors="replace"))
    return p


def resolve_local(html_dir: Path, page_rel: str, ref: str) -> tuple[Path, str] | None:
    """Disk path (and fragment) for a reference inside the site; None for external / special ones."""
    parts = urlsplit(ref)
    if parts.scheme or parts.netloc or ref.startswith(("mailto:", "javascript:", "data:", "blob:")):
        return None
    if not parts.path:  # "#anchor" or "?query" only
        return None
    target = urljoin("/" + page_rel, parts.path)
    path = html_dir / unquote(target.lstrip("/"))
    if target.endswith("/"):
        path = path / "index.html"
    return path, unquote(parts.fragment)


def static_site_check(html_dir: Path) -> tuple[int, list[str]]:
    failures, checked = [], 0
    for page in sorted(html_dir.rglob("*.html")):
        rel = page.relative_to(html_dir).as_posix()
        if rel.startswith(("vendor/", "_static/")):  # vendored files; the themes' Jinja macro templates
            continue
        parsed = _parse_html(page)
        for tag, attr, value in parsed.refs:
            if tag == "script" and urlsplit(value).scheme in ("http", "https"):
                failures.append(f"{rel}: external <script src={value!r}> (the book must work offline)")
                continue
            res = resolve_local(html_dir, rel, value)
            if res is None:
                continue
            checked += 1
            path, frag = res
            try:
                path.resolve().relative_to(html_dir.resolve())
            except ValueError:
                failures.append(f"{rel}: <{tag} {attr}={value!r}> points outside the site")
                continue
            if not path.is_file():
                failures.append(f"{rel}: broken <{tag} {attr}={value!r}> (no file {path.relative_to(html_dir) if path.is_relative_to(html_dir) else path})")
            elif frag and tag == "a" and path.suffix == ".html" and frag not in _parse_html(path).ids:
                failures.append(f"{rel}: broken anchor <a href={value!r}> (no id {frag!r} in {path.relative_to(html_dir)})")
    return checked, failures


# --------------------------------------------------------------------------------------------
# Local HTTP server
# --------------------------------------------------------------------------------------------
class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".ttf": "font/ttf",
        ".svg": "image/svg+xml",
        ".json": "application/json",
    }

    def log_message(self, *args):  # keep the report readable
        pass


def start_server(html_dir: Path):
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name="book-http", daemon=True)
    thread.start()
    return server


# --------------------------------------------------------------------------------------------
# Browser
# --------------------------------------------------------------------------------------------
def make_driver(user_data_dir: str):
    os.environ["SE_OFFLINE"] = "true"  # never let selenium-manager download anything
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", "--hide-scrollbars", "--window-size=1280,1000",
        f"--user-data-dir={user_data_dir}",
        # No network but this machine: a CDN dependency shows up as a failed request.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    driver.set_page_load_timeout(120)
    driver.set_script_timeout(120)
    return driver


def wait_for(driver, js: str, timeout: float, interval: float = 0.25):
    """Polls a JS expression (body of a function returning a value) until truthy; returns last value."""
    end = time.monotonic() + timeout
    value = driver.execute_script(js)
    while not value and time.monotonic() < end:
        time.sleep(interval)
        value = driver.execute_script(js)
    return value


JS_MATHJAX_DONE = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !window.MathJax.version || !window.MathJax.startup || !window.MathJax.startup.promise) {
  done({loaded: false}); return;
}
MathJax.startup.promise.then(
  () => done({loaded: true, version: MathJax.version}),
  (e) => done({loaded: true, version: MathJax.version, error: String(e)}));
"""

JS_RAW_TEX = """
const literals = arguments[0], rx = new RegExp(arguments[1]);
const skip = 'script,style,noscript,textarea,template,pre,code,kbd,samp,mjx-container,' +
             '.highlight,.cell_input,.output.stream,.anim-controls,.widget-subarea';
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
const found = [];
let node;
while ((node = walker.nextNode())) {
  const el = node.parentElement;
  if (!el || el.closest(skip)) continue;
  const text = node.nodeValue;
  const hit = literals.find((s) => text.includes(s)) || (rx.test(text) ? text.match(rx)[0] : null);
  if (hit) found.push(text.trim().replace(/\\s+/g, ' ').slice(0, 120));
}
return found;
"""

JS_PAGE_FACTS = """
const imgs = Array.from(document.images).map((im) => ({
  src: (im.getAttribute('src') || '').slice(0, 100), complete: im.complete,
  w: im.naturalWidth, visible: !!(im.offsetWidth || im.offsetHeight || im.getClientRects().length)}));
const mathSrc = document.querySelectorAll('.math, span.math, div.math').length;
return {
  imgs,
  mathSrc,
  mjx: document.querySelectorAll('mjx-container').length,
  mjxErrors: document.querySelectorAll('mjx-merror, [data-mjx-error]').length,
  exercises: document.querySelectorAll('div.exercise, section.exercise').length,
  solutions: document.querySelectorAll('div.solution, section.solution, details.solution').length,
  solutionsWithCode: Array.from(document.querySelectorAll('.solution')).filter((s) => s.querySelector('.cell, .cell_input, .highlight')).length,
  viewScripts: document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]').length,
  stateScripts: document.querySelectorAll('script[type="application/vnd.jupyter.widget-state+json"]').length,
  animations: document.querySelectorAll('.animation').length,
  externalScripts: Array.from(document.scripts).map((s) => s.src).filter((u) => u && !u.startsWith(location.origin)),
  links: Array.from(document.querySelectorAll('a[href]')).map((a) => [a.getAttribute('href'), a.href]),
  resources: performance.getEntriesByType('resource').map((e) => e.name)
              .filter((u) => !u.startsWith(location.origin) && !u.startsWith('data:') && !u.startsWith('blob:')),
};
"""

JS_WIDGETS = """
const views = Array.from(document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]'));
const rendered = views.filter((s) => {
  const area = s.previousElementSibling;
  return area && area.classList.contains('widget-subarea') && area.querySelector('.jupyter-widgets, .widget-slider, .lm-Widget');
}).length;
const errors = Array.from(document.querySelectorAll('.jupyter-widgets-error-widget, .widget-subarea'))
  .filter((e) => e.classList.contains('jupyter-widgets-error-widget') || /\\bError\\b/.test(e.innerText))
  .map((e) => e.innerText.trim().slice(0, 200));
return {views: views.length, rendered, errors,
        sliders: document.querySelectorAll('.widget-slider, .jupyter-widgets.widget-slider').length,
        anyWidget: document.querySelectorAll('.jupyter-widgets').length};
"""

JS_ANIMATIONS_READY = """
const anims = Array.from(document.querySelectorAll('.animation'));
return anims.length > 0 && anims.every((a) => { const im = a.querySelector('img'); return im && im.getAttribute('src'); });
"""

JS_ANIMATION_STEP = """
const i = arguments[0];
const a = document.querySelectorAll('.animation')[i];
const img = a.querySelector('img');
const controls = a.querySelectorAll('.anim-controls button, .anim-buttons button, button');
const slider = a.querySelector('input[type=range]');
const next = Array.from(controls).find((b) => /next/i.test(b.title || b.getAttribute('aria-label') || '')) || null;
const before = img ? img.src : null;
if (next) next.click();
const after = img ? img.src : null;
return {hasImg: !!img, buttons: controls.length, hasSlider: !!slider, hasNext: !!next,
        changed: before !== after, loaded: !!img && img.complete && img.naturalWidth > 0};
"""


@dataclass
class PageResult:
    docname: str
    url: str = ""
    notes: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    seconds: float = 0.0
    screenshot: str = ""


def take_screenshot(driver, path: Path) -> None:
    """A full-page PNG: the viewport is made as tall as the page (capturing "beyond the viewport"
    instead re-lays out some pages with the content shifted sideways)."""
    import base64

    metrics = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
    size = metrics.get("cssContentSize") or metrics["contentSize"]
    viewport = metrics.get("cssLayoutViewport") or metrics["layoutViewport"]
    width, height = int(viewport["clientWidth"]), min(int(size["height"]), 16000)
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False})
    try:
        driver.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.5)  # let the taller viewport lay out and paint
        shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    path.write_bytes(base64.b64decode(shot["data"]))


def check_page(driver, base_url: str, html_dir: Path, source_root: Path, docname: str,
               shots_dir: Path | None, timeout: float) -> PageResult:
    t0 = time.monotonic()
    res = PageResult(docname)
    rel = f"{docname}.html"
    res.url = f"{base_url}/{rel}"
    if not (html_dir / rel).is_file():
        res.failures.append(f"page not built: {rel} missing in {html_dir}")
        return res
    exp = expectations(source_root, docname)
    driver.get_log("browser")  # drop what earlier pages left
    driver.get(res.url)
    wait_for(driver, "return document.readyState === 'complete'", timeout)

    # --- 1. math
    facts = driver.execute_script(JS_PAGE_FACTS)
    if facts["mathSrc"] or exp.math:
        ready = wait_for(driver, "return !!(window.MathJax && MathJax.version && MathJax.startup && MathJax.startup.promise)", timeout)
        if not ready:
            res.failures.append("math: MathJax did not load (is the vendored MathJax served? see the console errors)")
        else:
            mj = driver.execute_async_script(JS_MATHJAX_DONE)
            if mj.get("error"):
                res.failures.append(f"math: MathJax failed: {mj['error']}")
    # settle: fonts, late images, widgets
    wait_for(driver, "return !document.fonts || document.fonts.status === 'loaded'", 10)
    facts = driver.execute_script(JS_PAGE_FACTS)
    if (facts["mathSrc"] or exp.math) and facts["mjx"] == 0:
        res.failures.append(f"math: the {'source' if exp.math else 'page'} has math but no typeset math (mjx-container) is on the page")
    if facts["mjxErrors"]:
        res.failures.append(f"math: {facts['mjxErrors']} MathJax error(s) (mjx-merror) on the page")
    raw = driver.execute_script(JS_RAW_TEX, RAW_TEX_LITERALS, RAW_TEX_REGEX)
    for text in raw[:10]:
        res.failures.append(f"math: raw TeX left in the page: {text!r}")
    res.notes.append(f"math {facts['mjx']} typeset" if facts["mjx"] or facts["mathSrc"] or exp.math else "no math")

    # --- 4. widgets (before images: widget Image views add <img> elements)
    if facts["viewScripts"] or exp.widget_views:
        if exp.widget_views and not facts["viewScripts"]:
            res.failures.append(f"widgets: the source has {exp.widget_views} widget output(s) but the page embeds no widget view "
                                "(was the notebook saved with widget state? nbclient store_widget_state=True)")
        if facts["viewScripts"] and not facts["stateScripts"]:
            res.failures.append("widgets: widget views but no widget state script on the page")
        ok = wait_for(driver, """
            const v = document.querySelectorAll('script[type="application/vnd.jupyter.widget-view+json"]');
            return v.length > 0 && Array.from(v).every((s) => { const a = s.previousElementSibling;
              return a && a.classList.contains('widget-subarea') && a.querySelector('.jupyter-widgets, .lm-Widget'); });""",
                      timeout)
        w = driver.execute_script(JS_WIDGETS)
        if not ok or w["rendered"] < w["views"]:
            res.failures.append(f"widgets: only {w['rendered']} of {w['views']} embedded widget view(s) rendered "
                                "(require.js / embed-amd.js not loaded?)")
        for err in w["errors"][:5]:
            res.failures.append(f"widgets: error shown: {err!r}")
        res.notes.append(f"widgets {w['rendered']}/{w['views']} views rendered ({w['sliders']} slider)")

    # --- 3. animations
    if facts["animations"] or exp.animations:
        if facts["animations"] < exp.animations:
            res.failures.append(f"animation: the source has {exp.animations} jshtml animation(s), the page shows {facts['animations']}")
        if facts["animations"]:
            wait_for(driver, JS_ANIMATIONS_READY, timeout)
            n_ok = 0
            for i in range(facts["animations"]):
                st = driver.execute_script(JS_ANIMATION_STEP, i)
                problems = []
                if not st["hasImg"]:
                    problems.append("no frame <img>")
                if not st["buttons"] or not st["hasSlider"]:
                    problems.append("no controls (buttons / slider)")
                if st["hasNext"] and not st["changed"]:
                    problems.append("'next frame' did not change the frame (animation JS not running?)")
                if problems:
                    res.failures.append(f"animation #{i + 1}: " + "; ".join(problems))
                else:
                    n_ok += 1
            res.notes.append(f"animations {n_ok}/{facts['animations']} play")

    # --- 2. images (scroll through the page first, for any lazily loaded image)
    driver.execute_script("""
        const h = document.documentElement.scrollHeight;
        for (let y = 0; y < h; y += 800) window.scrollTo(0, y);
        window.scrollTo(0, 0);""")
    wait_for(driver, "return Array.from(document.images).every((im) => im.complete)", timeout)
    facts = driver.execute_script(JS_PAGE_FACTS)
    bad = [im for im in facts["imgs"] if not (im["complete"] and im["w"] > 0)]
    for im in bad[:10]:
        res.failures.append(f"image not loaded: src={im['src']!r}")
    if len(facts["imgs"]) < exp.image_outputs:
        res.failures.append(f"images: the source has {exp.image_outputs} image output(s), the page shows {len(facts['imgs'])} <img>")
    res.notes.append(f"images {len(facts['imgs']) - len(bad)}/{len(facts['imgs'])} loaded")

    # --- 5. exercises and solutions
    if exp.exercises or exp.solutions or facts["exercises"] or facts["solutions"]:
        if facts["exercises"] < exp.exercises:
            res.failures.append(f"exercises: the source has {exp.exercises} exercise directive(s), the page renders {facts['exercises']}")
        if facts["solutions"] < exp.solutions:
            res.failures.append(f"solutions: the source has {exp.solutions} solution directive(s), the page renders {facts['solutions']}")
        if facts["solutionsWithCode"] < exp.gated_solution_with_code:
            res.failures.append(f"solutions: {exp.gated_solution_with_code} gated solution(s) span code cells, "
                                f"but only {facts['solutionsWithCode']} rendered solution(s) contain code")
        res.notes.append(f"exercises {facts['exercises']}, solutions {facts['solutions']}")

    # --- 7. "Open in Colab" badges (book/_ext/colab_badges.py) for the lecture and the student notebook
    if CHAPTER_PAGE.match(docname):
        badges = driver.execute_script(JS_COLAB_BADGES)
        for notebook in (f"{docname}.ipynb", f"{docname}_student.ipynb"):
            if not any(href.startswith(COLAB_PREFIX) and href.endswith("/" + notebook) and loaded
                       for href, loaded in badges):
                res.failures.append(f"colab: no loaded 'Open in Colab' badge linking {notebook}")
        res.notes.append(f"colab badges {sum(loaded for _, loaded in badges)}")

    # --- 6. links, from the rendered DOM (so links added by JavaScript count too)
    n_links = 0
    origin = base_url
    for raw_href, abs_href in facts["links"]:
        if not raw_href or raw_href.startswith("#") or not abs_href.startswith(origin + "/"):
            continue
        n_links += 1
        local = resolve_local(html_dir, "", abs_href[len(origin):].lstrip("/"))
        if local is None:
            continue
        path, frag = local
        if not path.is_file():
            res.failures.append(f"broken link: href={raw_href!r} (no file {path.relative_to(html_dir) if path.is_relative_to(html_dir) else path})")
        elif frag and path.suffix == ".html" and frag not in _parse_html(path).ids:
            res.failures.append(f"broken link: href={raw_href!r} (no id {frag!r} in {path.relative_to(html_dir)})")
    res.notes.append(f"links {n_links} internal ok" if not any(f.startswith("broken link") for f in res.failures) else f"links {n_links} internal")

    # --- offline: no external scripts / requests, no console errors
    for src in facts["externalScripts"]:
        res.failures.append(f"offline: page loads an external script {src}")
    for url in sorted(set(facts["resources"]) - set(facts["externalScripts"]))[:10]:
        res.failures.append(f"offline: page requested an external resource {url}")
    for entry in driver.get_log("browser"):
        msg = entry.get("message", "")
        if entry.get("level") == "SEVERE" and not any(rx.search(msg) for rx in IGNORED_CONSOLE):
            res.failures.append(f"console error: {msg[:300]}")

    if shots_dir is not None:
        shot = shots_dir / (docname.replace("/", "__") + ".png")
        try:
            take_screenshot(driver, shot)
            res.screenshot = str(shot)
        except Exception as exc:  # a screenshot problem should not hide the real results
            res.notes.append(f"screenshot failed: {exc}")
    res.seconds = time.monotonic() - t0
    return res


def run(html_dir: Path, toc: Path, source_root: Path, shots_dir: Path | None, all_pages: bool = False,
        timeout: float = 60.0, out=sys.stdout) -> list[PageResult]:
    """Runs every check; returns the per-page results (the static site check is the last entry)."""
    html_dir = html_dir.resolve()
    docs = toc_docnames(toc)
    pages = docs if all_pages else [docs[0]] + [d for d in docs[1:] if d.startswith("chapters/")]
    results = []

    if shots_dir is not None:
        shots_dir.mkdir(parents=True, exist_ok=True)
    server = start_server(html_dir)
    base_url = f"http://127.0.0.1:{server.server_address[1]}"
    profile = tempfile.mkdtemp(prefix="check-book-chromium-")
    driver = None
    try:
        driver = make_driver(profile)
        for doc in pages:
            r = check_page(driver, base_url, html_dir, source_root, doc, shots_dir, timeout)
            results.append(r)
            status = "FAIL" if r.failures else "ok  "
            print(f"{status} {doc} ({r.seconds:.1f}s): {', '.join(r.notes)}", file=out, flush=True)
    finally:
        if driver is not None:
            driver.quit()
        server.shutdown()
        server.server_close()
        shutil.rmtree(profile, ignore_errors=True)

    site = PageResult("(static check of every built HTML file)")
    n, site.failures = static_site_check(html_dir)
    site.notes.append(f"{n} internal references checked")
    print(f"{'FAIL' if site.failures else 'ok  '} {site.docname}: {', '.join(site.notes)}", file=out, flush=True)
    results.append(site)
    return results


def format_failures(results: list[PageResult]) -> str:
    lines = []
    for r in results:
        if r.failures:
            lines.append(f"{r.docname}:")
            lines.extend(f"  - {f}" for f in r.failures)
    return "\n".join(lines)


def preflight(html_dir: Path, toc: Path) -> str | None:
    """A readable reason why the check cannot run, or None."""
    if not (html_dir / "index.html").is_file():
        return (f"the book is not built: {html_dir}/index.html is missing. Build it first with `bash book/build.sh`.")
    if not toc.is_file():
        return f"no table of contents at {toc}"
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not os.access(p, os.X_OK)]
    if missing:
        return (f"{' and '.join(missing)} not found: install them with `bash tests/book/install_chromium.sh` "
                "(Debian packages chromium and chromium-driver).")
    return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--html", type=Path, default=ROOT / "book/_build/html", help="built HTML folder")
    ap.add_argument("--toc", type=Path, default=ROOT / "book/_toc.yml", help="the book's _toc.yml")
    ap.add_argument("--source", type=Path, default=ROOT, help="the book's source root (repository root)")
    ap.add_argument("--screenshots", type=Path, default=ROOT / "book/_build/screenshots",
                    help="folder for one full-page PNG per checked page")
    ap.add_argument("--no-screenshots", action="store_true")
    ap.add_argument("--all-pages", action="store_true", help="check every page in the toc, not only root + chapters/")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for MathJax / widgets per page")
    args = ap.parse_args(argv)

    reason = preflight(args.html, args.toc)
    if reason:
        print(f"check_book: cannot run: {reason}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    results = run(args.html, args.toc, args.source, None if args.no_screenshots else args.screenshots,
                  all_pages=args.all_pages, timeout=args.timeout)
    elapsed = time.monotonic() - t0
    failures = format_failures(results)
    if not args.no_screenshots:
        print(f"screenshots: {args.screenshots}")
    if failures:
        print(f"\ncheck_book: FAILED after {elapsed:.1f}s:\n{failures}")
        return 1
    print(f"check_book: all {len(results) - 1} page(s) and the site passed in {elapsed:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
