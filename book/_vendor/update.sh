#!/usr/bin/env bash
# Re-vendors the browser bundles that the built book serves itself (no CDN at reading time).
# Needs npm only when run; the book build needs no node. Run from anywhere:
#     bash book/_vendor/update.sh
# then rebuild the book and run tests/test_render.py. Versions are pinned here on purpose.
set -euo pipefail
HTML_MANAGER=1.0.15   # @jupyter-widgets/html-manager for ipywidgets 8.1.x (controls 2.0.0 models)
MATHJAX=3.2.2         # MathJax 3 (sphinx.ext.mathjax's mathjax3_config format)

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm init -y >/dev/null && \
 npm install --no-audit --no-fund --ignore-scripts --silent \
     "@jupyter-widgets/html-manager@$HTML_MANAGER" "mathjax@$MATHJAX")

# The widget manager: embed.js renders the built-in ipywidgets (base, controls, output) with no
# require.js and no CDN fallback. Its CSS loads Font Awesome from files next to the script.
hm="$tmp/node_modules/@jupyter-widgets/html-manager"
rm -rf "$here/html-manager" && mkdir -p "$here/html-manager"
cp "$hm/dist/embed.js" "$hm/dist/embed.js.LICENSE.txt" "$hm/dist/"*.woff2 "$here/html-manager/"
cp "$hm/package.json" "$here/html-manager/package.json"   # version and BSD-3-Clause licence
cp "$tmp/node_modules/@fortawesome/fontawesome-free/LICENSE.txt" "$here/html-manager/FONTAWESOME-LICENSE.txt"

# MathJax: one component with every TeX extension (so nothing is autoloaded) plus its fonts.
mj="$tmp/node_modules/mathjax"
rm -rf "$here/mathjax" && mkdir -p "$here/mathjax/output/chtml/fonts"
cp "$mj/es5/tex-chtml-full.js" "$here/mathjax/"
cp -r "$mj/es5/output/chtml/fonts/woff-v2" "$here/mathjax/output/chtml/fonts/"
cp "$mj/LICENSE" "$here/mathjax/LICENSE"

{
    echo "Vendored by book/_vendor/update.sh on $(date -u +%Y-%m-%d)"
    echo "@jupyter-widgets/html-manager $HTML_MANAGER (BSD-3-Clause; Font Awesome Free fonts, OFL-1.1)"
    echo "mathjax $MATHJAX (Apache-2.0)"
    echo "plotly.min.js is not vendored here: the book extension copies it from the installed plotly wheel."
    echo
    (cd "$here" && find html-manager mathjax -type f | sort | xargs ls -l | awk '{print $5, $9}')
} > "$here/VENDORED.txt"
