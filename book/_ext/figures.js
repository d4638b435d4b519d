/* sheaflab book: every plotly figure of the page follows the theme's dark mode and a phone's width.
 *
 * The figures are designed for both in Python: sheaflab.style.store_variants puts, in each
 * figure's layout.meta.sheaflab, four plain plotly updates, each {layout: relayout update,
 * traces: [[trace index, restyle update], ...]}:
 *   phone   - the layout for a figure narrower than `below` px (legend under the plot, smaller
 *             and wrapped titles, a taller figure), and desktop, which puts that back;
 *   dark    - the dark template and light ink for near-black colours, and light, which puts
 *             those back.
 * This script only decides which of them a figure needs and applies it with Plotly.relayout and
 * Plotly.restyle: phone while the figure is narrower than `below`, dark while
 * <html data-theme="dark"> (the theme's switch, or its "auto" following the OS). It marks each
 * figure it has brought to the page's mode with data-sheaflab-mode="light|dark[ phone]".
 * A figure without stored variants is left as it is drawn (and not marked).
 */
(function () {
  "use strict";

  var figures = new WeakMap();  // figure div -> {phone, dark: what it shows, queue: Promise}

  function variants(gd) {
    var meta = gd.layout && gd.layout.meta;
    return meta && meta.sheaflab;
  }

  function isDark() { return document.documentElement.getAttribute("data-theme") === "dark"; }

  function isNarrow(gd, v) {
    var width = gd.getBoundingClientRect().width;
    return width > 0 && width < v.below;
  }

  // One stored update: the layout first, then each trace's restyle. The page's HTML gives the
  // figure's parent box the figure's height in px: a new height goes to the box too.
  function apply(gd, update) {
    var box = gd.parentElement, height = update.layout.height;
    if (height && box && /px$/.test(box.style.height)) box.style.height = height + "px";
    return Plotly.relayout(gd, update.layout).then(function () {
      return update.traces.reduce(function (done, t) {
        return done.then(function () { return Plotly.restyle(gd, t[1], [t[0]]); });
      }, Promise.resolve());
    });
  }

  // Brings one figure to the page's mode. Changes run one after another per figure (each
  // relayout waits for the one before), and only what differs from what the figure shows.
  function sync(gd) {
    var v = variants(gd), st = figures.get(gd);
    if (!v || !st) return Promise.resolve();
    st.queue = st.queue.then(function () {
      var phone = isNarrow(gd, v), dark = isDark(), todo = [];
      if (phone !== st.phone) todo.push(phone ? v.phone : v.desktop);
      if (dark !== st.dark) todo.push(dark ? v.dark : v.light);
      st.phone = phone;
      st.dark = dark;
      return todo.reduce(function (done, update) {
        return done.then(function () { return apply(gd, update); });
      }, Promise.resolve()).then(function () {
        gd.setAttribute("data-sheaflab-mode", (dark ? "dark" : "light") + (phone ? " phone" : ""));
      });
    }).catch(function (e) { console.warn("sheaflab figures:", e); });
    return st.queue;
  }

  // Width changes: after plotly's own responsive resize (debounced too).
  var timers = new WeakMap();
  var resizer = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
    entries.forEach(function (e) {
      clearTimeout(timers.get(e.target));
      timers.set(e.target, setTimeout(function () { sync(e.target); }, 200));
    });
  }) : null;

  // A drawn figure (plotly has made its svg) is taken in once, as drawn: light, desktop.
  function adopt(gd) {
    if (figures.has(gd) || !gd.querySelector("svg.main-svg") || !variants(gd)) return;
    figures.set(gd, {phone: false, dark: false, queue: Promise.resolve()});
    if (resizer) resizer.observe(gd);
    sync(gd);
  }

  function scan() { document.querySelectorAll("div.plotly-graph-div").forEach(adopt); }

  // Figures drawn after this script (every figure of a page is, the widget manager's later still).
  new MutationObserver(function (records) {
    for (var i = 0; i < records.length; i++) {
      if (records[i].addedNodes.length) { setTimeout(scan, 0); return; }
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  // The theme's switch (and its "auto" mode, following the OS) sets data-theme on <html>.
  new MutationObserver(function () {
    document.querySelectorAll("div.plotly-graph-div").forEach(sync);
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
  window.addEventListener("load", scan);
  window.sheaflabFigures = {sync: sync, scan: scan};  // for the book's tests
})();
