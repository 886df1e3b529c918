#!/usr/bin/env bash
# Vendors the JavaScript the built book needs, so that the HTML works with no network:
#   MathJax 3 (math), require.js and @jupyter-widgets/html-manager 1.x (embedded ipywidgets).
# Fetches the npm tarballs with `npm pack` into a temporary folder and extracts only the
# files the book uses into book/_vendor/vendor/ (git-ignored). book/_config.yml serves
# book/_vendor through Sphinx's html_extra_path, so they land in <html>/vendor/.
# Deliberately NOT a `_static` folder: Jupyter Book 1 injects every .js found in _static/.
# Does nothing when every needed file is already there for the pinned versions.
# Needs `npm` and the npm registry (or an npm cache that has these tarballs) only when fetching.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DEST="$ROOT/book/_vendor/vendor"

# Pinned versions (override from the environment to try others).
MATHJAX_VERSION="${MATHJAX_VERSION:-3.2.2}"
HTML_MANAGER_VERSION="${HTML_MANAGER_VERSION:-1.0.15}"   # 1.x goes with ipywidgets 8
REQUIREJS_VERSION="${REQUIREJS_VERSION:-2.3.8}"
STAMP="$DEST/VERSIONS"
want_stamp="mathjax@$MATHJAX_VERSION @jupyter-widgets/html-manager@$HTML_MANAGER_VERSION requirejs@$REQUIREJS_VERSION"

# The files book/_config.yml points at, plus one MathJax font and one autoloaded TeX extension
# as a sign that the component folders came along.
needed=(
  "mathjax/tex-mml-chtml.js"
  "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff"
  "mathjax/input/tex/extensions/boldsymbol.js"
  "requirejs/require.js"
  "html-manager/dist/embed-amd.js"
)
missing=0
for f in "${needed[@]}"; do
  [ -s "$DEST/$f" ] || { missing=1; break; }
done
if [ "$missing" = 0 ] && [ "$(cat "$STAMP" 2>/dev/null || true)" = "$want_stamp" ]; then
  echo "vendor_js: book/_vendor is complete ($want_stamp)"
  exit 0
fi

if ! command -v npm >/dev/null 2>&1; then
  echo "vendor_js: ERROR: book/_vendor/vendor is incomplete and npm is not installed." >&2
  echo "  Install Node.js/npm (e.g. apt-get install npm) and re-run, or copy book/_vendor from a machine that has it." >&2
  exit 1
fi

echo "vendor_js: fetching $want_stamp with npm pack ..."
start=$(date +%s)
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
(
  cd "$TMP"
  npm pack --silent --prefer-offline \
    "mathjax@$MATHJAX_VERSION" \
    "@jupyter-widgets/html-manager@$HTML_MANAGER_VERSION" \
    "requirejs@$REQUIREJS_VERSION" >/dev/null
) || {
  echo "vendor_js: ERROR: npm pack failed (no access to the npm registry, and not in the npm cache?)." >&2
  exit 1
}
for pkg in mathjax html-manager requirejs; do
  mkdir -p "$TMP/$pkg"
done
tar xzf "$TMP"/mathjax-"$MATHJAX_VERSION".tgz -C "$TMP/mathjax"
tar xzf "$TMP"/jupyter-widgets-html-manager-"$HTML_MANAGER_VERSION".tgz -C "$TMP/html-manager"
tar xzf "$TMP"/requirejs-"$REQUIREJS_VERSION".tgz -C "$TMP/requirejs"

rm -rf "$DEST"
mkdir -p "$DEST/mathjax" "$DEST/requirejs" "$DEST/html-manager/dist"

# MathJax: the combined TeX+MathML -> CommonHTML component, plus the folders it loads from at run
# time, relative to its own URL: CHTML fonts, autoloaded TeX extensions (\boldsymbol, \color,
# \require{...}, ...), and the accessibility / menu components the right-click menu can load.
mj="$TMP/mathjax/package/es5"
cp "$mj/tex-mml-chtml.js" "$DEST/mathjax/"
mkdir -p "$DEST/mathjax/output/chtml" "$DEST/mathjax/input/tex"
cp -r "$mj/output/chtml/fonts" "$DEST/mathjax/output/chtml/"
cp -r "$mj/input/tex/extensions" "$DEST/mathjax/input/tex/"
cp -r "$mj/a11y" "$mj/sre" "$mj/ui" "$DEST/mathjax/"
cp "$TMP/mathjax/package/LICENSE" "$DEST/mathjax/LICENSE"

# require.js (AMD loader used by the widgets' embed script).
cp "$TMP/requirejs/package/require.js" "$DEST/requirejs/require.js"
[ -f "$TMP/requirejs/package/LICENSE" ] && cp "$TMP/requirejs/package/LICENSE" "$DEST/requirejs/LICENSE"

# html-manager: embed-amd.js bundles @jupyter-widgets/base, controls and output; the font files
# next to it (Font Awesome, for widget icons) are found relative to the script's URL.
hm="$TMP/html-manager/package"
cp "$hm/dist/embed-amd.js" "$DEST/html-manager/dist/"
find "$hm/dist" -maxdepth 1 -type f \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
  -exec cp {} "$DEST/html-manager/dist/" \;
cp "$hm/dist/embed.js.LICENSE.txt" "$DEST/html-manager/dist/" 2>/dev/null || true
[ -f "$hm/LICENSE" ] && cp "$hm/LICENSE" "$DEST/html-manager/LICENSE"

for f in "${needed[@]}"; do
  [ -s "$DEST/$f" ] || { echo "vendor_js: ERROR: $f missing after extraction (package layout changed?)" >&2; exit 1; }
done
echo "$want_stamp" > "$STAMP"
echo "vendor_js: done in $(( $(date +%s) - start ))s; $(du -sh "$DEST" | cut -f1) in book/_vendor/vendor"
