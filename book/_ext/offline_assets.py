"""Small Sphinx extension: makes each page's <script> list work offline, with no console errors.

Three fixes, applied per page in ``html-page-context`` (the last handler to run):

1. Duplicates. Jupyter Book 1 with Sphinx 7.4 registers some inline scripts twice
   (sphinx-thebe's ``const THEBE_JS_URL = ...`` and sphinx-togglebutton's selector). A second
   ``const`` declaration is a SyntaxError in the browser, so identical entries are dropped.
2. Widget fonts. The vendored ``@jupyter-widgets/html-manager`` bundle finds its icon fonts
   relative to the AMD module ids it defines (``@jupyter-widgets/html-manager/dist/...``,
   ``@jupyter-widgets/controls``, ...); with no require.js ``paths`` entry, those resolve against
   the page's own folder (``chapters/NN/@jupyter-widgets/...``) and the fonts 404. A ``require.config``
   inserted right after require.js maps the id to the vendored folder, wherever the site is served.
3. MathJax 2 API. The widgets bundle typesets HTML widget text with MathJax 2's
   ``MathJax.Hub.Queue``; the book uses MathJax 3, which has no ``Hub``. A shim maps ``Hub.Queue``
   to MathJax 3's ``typesetPromise`` (before and after MathJax loads).
"""
from __future__ import annotations

REQUIRE_PATHS = """(function () {
  var s = document.querySelector('script[src*="vendor/requirejs/require.js"]');
  if (!s || !window.require) return;
  var base = s.src.split('?')[0].replace(/requirejs\\/require\\.js$/, 'html-manager/dist');
  require.config({paths: {'@jupyter-widgets/html-manager/dist': base, '@jupyter-widgets': base}});
})();"""

MATHJAX2_SHIM = """(function () {
  var hub = {Queue: function (job) {
    var el = job && job[2];
    if (window.MathJax && MathJax.typesetPromise) MathJax.typesetPromise(el ? [el] : undefined).catch(function () {});
  }};
  window.MathJax = window.MathJax || {};
  window.MathJax.Hub = hub;
  var startup = window.MathJax.startup = window.MathJax.startup || {};
  var ready = startup.ready;
  startup.ready = function () {
    (ready || MathJax.startup.defaultReady)();
    MathJax.Hub = hub;
  };
})();"""


def _key(js) -> tuple:  # an inline script has filename None or "" (both occur)
    return (str(getattr(js, "filename", js) or ""), tuple(sorted((getattr(js, "attributes", {}) or {}).items())))


def fix_scripts(app, pagename, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, unique = set(), []
    for js in scripts:
        if _key(js) not in seen:
            seen.add(_key(js))
            unique.append(js)
    for i, js in enumerate(unique):
        if str(getattr(js, "filename", "")).split("?")[0].endswith("vendor/requirejs/require.js"):
            cls = type(js)
            p = js.priority  # keep the order through Sphinx's (stable) sort by priority
            unique[i:i + 1] = [cls("", priority=p, body=MATHJAX2_SHIM), js, cls("", priority=p, body=REQUIRE_PATHS)]
            break
    scripts[:] = unique


def setup(app):
    app.connect("html-page-context", fix_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
