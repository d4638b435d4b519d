/* sheaflab book: every plotly figure of the page follows the theme's dark mode and a phone's width.
 *
 * Served as _static/sheaflab-figures.js by offline_assets.py, which writes the line before this one:
 * window.sheaflabFigureStyle = {dark, darkTemplate, phone, modebarBand}, from sheaflab/style.py.
 *
 * Dark: while <html data-theme="dark"> (the theme's switch, or its "auto" following the OS), each
 * figure draws with the dark template (backgrounds, text, grid and axis lines, legend, sliders,
 * annotations that keep the template's colours), and its black or near-black colours (traces,
 * shapes, annotations that set them) become light. Phone: while a figure is narrower than
 * phone.width, its legend goes under the plot, its margins shrink and its titles are re-wrapped.
 * Each mode remembers what it changed and puts exactly that back when it ends.
 */
(function () {
  "use strict";
  var S = window.sheaflabFigureStyle;
  if (!S) return;

  // ---- small helpers -------------------------------------------------------------------------

  function get(obj, path) {  // path: "legend.x", "annotations[2].text", "line.color"
    var parts = path.replace(/\[(\d+)\]/g, ".$1").split(".");
    for (var i = 0; i < parts.length; i++) {
      if (obj === null || obj === undefined) return undefined;
      obj = obj[parts[i]];
    }
    return obj;
  }

  function clone(v) { return v === undefined ? null : JSON.parse(JSON.stringify(v)); }

  function rgb(c) {  // [r, g, b] of a CSS colour plotly accepts, or null
    if (typeof c !== "string") return null;
    var m = c.trim().toLowerCase();
    if (m === "black") return [0, 0, 0];
    if (m === "white") return [255, 255, 255];
    var h = /^#([0-9a-f]{3}|[0-9a-f]{6})$/.exec(m);
    if (h) {
      var s = h[1].length === 3 ? h[1].replace(/./g, "$&$&") : h[1];
      return [0, 2, 4].map(function (i) { return parseInt(s.substr(i, 2), 16); });
    }
    var r = /^rgba?\(\s*([\d.]+)\s*,\s*([\d.]+)\s*,\s*([\d.]+)/.exec(m);
    return r ? [+r[1], +r[2], +r[3]] : null;
  }

  // Near-black: too dark to read on the dark background (grey #888 and the palette's colours are not).
  function nearBlack(c) {
    var v = rgb(c);
    return !!v && 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2] < 60;
  }

  // Colour attributes below obj that are near-black strings, as dotted paths.
  function darkColours(obj, prefix, out) {
    if (!obj || typeof obj !== "object" || Array.isArray(obj)) return out;
    Object.keys(obj).forEach(function (k) {
      var v = obj[k], path = prefix + k;
      if (/colou?r$/.test(k) && typeof v === "string" && nearBlack(v)) out.push(path);
      else if (v && typeof v === "object" && !Array.isArray(v) && !/colorscale/.test(k))
        darkColours(v, path + ".", out);
    });
    return out;
  }

  // html with each of its lines re-wrapped (<br> between words) to px at font size `size`; markup
  // such as <sub> not counted, a tag's attributes (no spaces in the book's) kept whole. As
  // sheaflab.style.wrap_title does, for a width in pixels.
  function wrap(html, px, size) {
    var chars = Math.max(12, Math.floor(px / (size * S.phone.char_em)));
    return html.split(/<br\s*\/?>/i).map(function (line) {
      // a line in <sup> or <sub> (a subtitle) is set at about 70% of the size
      var room = /^\s*<su[bp]>/i.test(line) ? Math.floor(chars / 0.7) : chars;
      var lines = [], cur = [], len = 0;
      line.split(" ").forEach(function (w) {
        var n = w.replace(/<[^>]+>/g, "").length;
        if (cur.length && len + 1 + n > room) { lines.push(cur.join(" ")); cur = []; len = 0; }
        len += n + (cur.length ? 1 : 0);
        cur.push(w);
      });
      lines.push(cur.join(" "));
      return lines.join("<br>");
    }).join("<br>");
  }

  // Plotly.relayout, keeping every axis's autorange as it was: a relayout resets a matched axis's
  // "reversed" (make_subplots' shared axes) to true, which would not come back with the rest.
  function layoutUpdate(gd, upd) {
    var before = {};
    Object.keys(gd.layout).forEach(function (k) {
      if (/^[xy]axis\d*$/.test(k) && gd.layout[k] && "autorange" in gd.layout[k]) before[k] = gd.layout[k].autorange;
    });
    return Plotly.relayout(gd, upd).then(function () {
      var fix = {};
      Object.keys(before).forEach(function (k) {
        if (gd.layout[k] && gd.layout[k].autorange !== before[k]) fix[k + ".autorange"] = before[k];
      });
      return Object.keys(fix).length ? Plotly.relayout(gd, fix) : gd;
    });
  }

  // ---- state kept on each figure -------------------------------------------------------------
  // gd._sheaflab = {dark: {template, layout: {path: old}, traces: [[i, path, old]]} | null,
  //                 phone: {layout: {path: old}, texts: {new: old}} | null, busy: bool}

  function state(gd) {
    if (!gd._sheaflab) gd._sheaflab = {dark: null, phone: null, busy: false};
    return gd._sheaflab;
  }

  function isDark() { return document.documentElement.getAttribute("data-theme") === "dark"; }

  function wantsPhone(gd) {
    var w = gd.getBoundingClientRect().width;
    return w > 0 && w < S.phone.width;
  }

  // ---- dark ----------------------------------------------------------------------------------

  function darkOn(gd) {
    var st = state(gd), layout = gd.layout, saved = {template: layout.template, layout: {}, traces: []};
    var upd = {template: S.darkTemplate};
    ["shapes", "annotations"].forEach(function (key) {
      (layout[key] || []).forEach(function (item, i) {
        darkColours(item, key + "[" + i + "].", []).forEach(function (p) {
          saved.layout[p] = clone(get(layout, p));
          upd[p] = S.dark.ink;
        });
      });
    });
    return layoutUpdate(gd, upd).then(function () {
      var jobs = [];
      gd.data.forEach(function (trace, i) {
        var restyle = {};
        darkColours(trace, "", []).forEach(function (p) {
          saved.traces.push([i, p, clone(get(trace, p))]);
          restyle[p] = S.dark.ink;
        });
        if (Object.keys(restyle).length) jobs.push([restyle, i]);
      });
      st.dark = saved;
      return jobs.reduce(function (pr, job) {
        return pr.then(function () { return Plotly.restyle(gd, job[0], [job[1]]); });
      }, Promise.resolve());
    });
  }

  function darkOff(gd) {
    var st = state(gd), saved = st.dark;
    st.dark = null;
    var upd = {template: saved.template};
    Object.keys(saved.layout).forEach(function (p) { upd[p] = saved.layout[p]; });
    return layoutUpdate(gd, upd).then(function () {
      return saved.traces.reduce(function (pr, t) {
        var r = {}; r[t[1]] = t[2];
        return pr.then(function () { return Plotly.restyle(gd, r, [t[0]]); });
      }, Promise.resolve());
    });
  }

  // ---- phone ---------------------------------------------------------------------------------

  // Annotations in the band just above a panel (yanchor bottom at its top): subplot titles (what
  // make_subplots writes, and what sheaflab.style.apply_style makes room for) and the labels of
  // vertical lines. Those above the top panels, in the top margin, are the ones that set it.
  function topBand(full) {
    var out = [];
    (full.annotations || []).forEach(function (a, i) {
      if (!a.text || a.yanchor !== "bottom" || a.y < 0.999) return;
      var yref = String(a.yref);
      var top = yref === "paper" ? 1 : (full[yref.replace(/^y(\d*) domain$/, "yaxis$1")] || {domain: [0, 0]}).domain[1];
      if (top >= 0.999) out.push(i);
    });
    return out;
  }

  function lineCount(text) { return String(text || "").split(/<br\s*\/?>/i).length; }

  // Estimated width (px) of the widest line of a text at font size `size`.
  function textWidth(text, size) {
    return Math.max.apply(null, String(text).split(/<br\s*\/?>/i).map(function (l) {
      return l.replace(/<[^>]+>/g, "").length;
    })) * size * S.phone.char_em;
  }

  // The paper width of the column of panels a subplot title (what make_subplots writes: paper
  // coordinates, centred over its column, on top of its panel) stands over; 0 if `a` is not one.
  function subplotColumn(full, a) {
    if (a.xref !== "paper" || a.yref !== "paper" || a.yanchor !== "bottom" || a.showarrow) return 0;
    var width = 0;
    Object.keys(full).forEach(function (k) {
      var d = /^xaxis\d*$/.test(k) && full[k].domain;
      if (d && Math.abs((d[0] + d[1]) / 2 - a.x) < 0.005) width = d[1] - d[0];
    });
    return width;
  }

  // Every text that would not fit on the phone, re-wrapped to the room it has: the title, the
  // annotations (subplot titles to their column) and the axis titles. The desktop texts are kept
  // in saved.texts (phone text -> desktop text), so that they can be put back.
  function phoneTexts(gd, saved) {
    var layout = gd.layout, full = gd._fullLayout, size = full._size, upd = {};
    function fit(path, room, fontSize, always) {
      var text = get(layout, path);
      if (typeof text !== "string" || !text) return;
      var desktop = text in saved.texts ? saved.texts[text] : text;
      if (!always && textWidth(desktop, fontSize) <= room) return;
      var phone = wrap(desktop, room, fontSize);
      saved.texts[phone] = desktop;
      saved.textPaths[path] = true;
      if (phone !== text) upd[path] = phone;
    }
    if (layout.title) fit("title.text", full.width - 24, S.phone.title_size, true);
    (full.annotations || []).forEach(function (a, i) {
      var column = subplotColumn(full, a);
      fit("annotations[" + i + "].text", column ? column * size.w : full.width - 16, a.font.size, false);
    });
    // the labels of marker lines (the timescale diagram's "fast: ..." and "slow: ...") would run
    // into each other across a narrow plot
    (full.shapes || []).forEach(function (sh, i) {
      if (sh.label && sh.label.text) fit("shapes[" + i + "].label.text", 0.3 * size.w, sh.label.font.size, false);
    });
    Object.keys(full).forEach(function (k) {
      var ax = full[k];
      if (!/^[xy]axis\d*$/.test(k) || !ax.title || !ax.title.text) return;
      var d = ax.domain || [0, 1];
      var room = (d[1] - d[0]) * (k.charAt(0) === "x" ? size.w : size.h);
      fit(k + ".title.text", room, ax.title.font.size, false);
    });
    lowerTitlesRoom(gd, upd, saved);
    return upd;
  }

  // A subplot title above a lower panel sits in the gap between panels, which is sized for one
  // line at make_subplots' font: when wrapping gave it more, its panel's top comes down to make room.
  function lowerTitlesRoom(gd, upd, saved) {
    var full = gd._fullLayout, band = topBand(full), plotHeight = full._size.h;
    var oneLine = 16 * 1.3 + 4;
    (full.annotations || []).forEach(function (a, i) {
      if (band.indexOf(i) >= 0 || !subplotColumn(full, a)) return;
      var text = upd["annotations[" + i + "].text"] || a.text;
      var extra = lineCount(text) * S.phone.subtitle_size * 1.3 + 4 - oneLine;
      if (extra <= 0 || saved.lowered[i]) return;
      saved.lowered[i] = true;
      var top = a.y - extra / plotHeight;
      Object.keys(full).forEach(function (k) {
        var d = /^yaxis\d*$/.test(k) && full[k].domain;
        if (d && Math.abs(d[1] - a.y) < 0.005 && top > d[0]) upd[k + ".domain"] = [d[0], top];
      });
      upd["annotations[" + i + "].y"] = top;
    });
  }

  // Legend entries wider than the figure, wrapped (trace names: restyled, put back by phoneOff).
  function phoneNames(gd, saved) {
    var full = gd._fullLayout, size = (full.legend && full.legend.font.size) || full.font.size;
    var room = full.width - 60;  // the entry's symbol and the legend's padding
    return gd.data.reduce(function (pr, trace, i) {
      var name = trace.name;
      if (typeof name !== "string" || textWidth(name, size) <= room) return pr;
      saved.names.push([i, name]);
      return pr.then(function () { return Plotly.restyle(gd, {name: wrap(name, room, size)}, [i]); });
    }, Promise.resolve());
  }

  function remember(saved, layout, upd) {
    Object.keys(upd).forEach(function (p) {
      if (!/\.text$/.test(p) && !(p in saved.layout)) saved.layout[p] = clone(get(layout, p));
    });
  }

  // Height changes go to the figure's box too (the page's HTML fixes it to the desktop height).
  function setHeight(gd, saved, upd, h) {
    h = Math.round(h);
    upd.height = h;
    // a height set by relayout turns autosize off and pins the width: keep the width responsive
    upd.autosize = true;
    upd.width = null;
    upd["title.y"] = 1 - saved.titleTop / h;  // the title stays under the mode bar's band
    if (gd.parentElement && /px$/.test(gd.parentElement.style.height)) gd.parentElement.style.height = h + "px";
  }

  function titleBox(gd) {  // [top, bottom] of the title, px from the figure's top edge
    var t = gd.querySelector(".g-gtitle text.gtitle");
    if (!t || !t.textContent.trim()) return [S.modebarBand, S.modebarBand];
    var r = t.getBoundingClientRect(), top = gd.getBoundingClientRect().top;
    return [r.top - top, r.bottom - top];
  }

  function relayout(gd, saved, upd) {
    remember(saved, gd.layout, upd);
    return layoutUpdate(gd, upd);
  }

  function phoneOn(gd) {
    var st = state(gd), layout = gd.layout, full = gd._fullLayout, m = S.phone.margin;
    var saved = {layout: {}, texts: {}, textPaths: {}, names: [], lowered: {}, titleTop: S.modebarBand,
                 parentHeight: gd.parentElement ? gd.parentElement.style.height : ""};
    var height = full.height, plotHeight = full._size.h;
    st.phone = saved;
    var upd = {
      "margin.l": Math.min(full.margin.l, m.l), "margin.r": Math.min(full.margin.r, m.r),
      "margin.b": Math.min(full.margin.b, m.b),
      "title.font.size": S.phone.title_size, "title.x": 0, "title.xref": "container",
      "title.xanchor": "left", "title.pad.l": 8, "title.yref": "container", "title.yanchor": "top",
    };
    if (full.showlegend !== false) {
      // under everything, across the figure's width (its rows wrap to it)
      Object.assign(upd, {"legend.orientation": "h", "legend.xref": "container", "legend.x": 0,
                          "legend.xanchor": "left", "legend.yref": "container", "legend.y": 0,
                          "legend.yanchor": "bottom"});
    }
    (layout.sliders || []).forEach(function (sl, k) {
      upd["sliders[" + k + "].x"] = 0;
      upd["sliders[" + k + "].len"] = 1;
    });
    (full.annotations || []).forEach(function (a, i) {
      if (subplotColumn(full, a)) upd["annotations[" + i + "].font.size"] = S.phone.subtitle_size;
    });
    Object.keys(full).forEach(function (k) {
      if (/^[xy]axis\d*$/.test(k) && full[k].title && full[k].title.text && full[k].title.font.size > S.phone.axis_title_size)
        upd[k + ".title.font.size"] = S.phone.axis_title_size;
    });
    return relayout(gd, saved, upd).then(function () {
      // Measured: texts wrapped to the room they now have; the figure grows by what the legend
      // and the wrapped labels took from the plot area.
      var upd2 = phoneTexts(gd, saved);
      remember(saved, gd.layout, upd2);
      return layoutUpdate(gd, upd2).then(function () { return phoneNames(gd, saved); });
    }).then(function () {
      var upd3 = {};
      setHeight(gd, saved, upd3, height + Math.max(0, plotHeight - gd._fullLayout._size.h));
      return relayout(gd, saved, upd3);
    }).then(function () {
      // The top margin: the title, then the annotations above the top panels.
      var full4 = gd._fullLayout, band = 0;
      topBand(full4).forEach(function (i) {
        var a = full4.annotations[i];
        band = Math.max(band, lineCount(a.text) * a.font.size * 1.3 + 4);
      });
      (full4.shapes || []).forEach(function (sh) {  // labels at the top end of lines up to the top
        if (sh.label && sh.label.text && sh.yref === "paper" && Math.max(sh.y0, sh.y1) >= 0.999)
          band = Math.max(band, lineCount(sh.label.text) * sh.label.font.size * 1.3 + 4);
      });
      // plotly anchors a title of several lines higher than its top: move it under the band
      var box = titleBox(gd), down = Math.max(0, S.modebarBand + 2 - box[0]);
      saved.titleTop += down;
      var t = Math.round(box[1] + down + 8 + band);
      var upd4 = {"margin.t": t};
      setHeight(gd, saved, upd4, full4.height + t - full4.margin.t);
      return relayout(gd, saved, upd4);
    });
  }

  function phoneOff(gd) {
    var st = state(gd), saved = st.phone;
    st.phone = null;
    var upd = {};
    Object.keys(saved.layout).forEach(function (p) { upd[p] = saved.layout[p]; });
    Object.keys(saved.textPaths).forEach(function (p) {
      var text = get(gd.layout, p);
      if (text in saved.texts) upd[p] = saved.texts[text];
    });
    if (gd.parentElement) gd.parentElement.style.height = saved.parentHeight;
    return layoutUpdate(gd, upd).then(function () {
      return saved.names.reduce(function (pr, n) {
        return pr.then(function () { return Plotly.restyle(gd, {name: n[1]}, [n[0]]); });
      }, Promise.resolve());
    });
  }

  // A slider or button that sets a title or an annotation (the discord dashboard's bar chart
  // title, the timescale diagram's title) sets its desktop text: wrap it again on the phone.
  function phoneRewrap(gd) {
    var st = state(gd);
    if (!st.phone || st.busy) return;
    run(gd, function () {
      var upd = phoneTexts(gd, st.phone);
      remember(st.phone, gd.layout, upd);
      return Object.keys(upd).length ? layoutUpdate(gd, upd) : null;
    });
  }

  // ---- bringing a figure to the mode it should be in ----------------------------------------

  // Mode changes of one figure run one after another (each relayout waits for the last).
  function run(gd, job) {
    var st = state(gd);
    st.queue = (st.queue || Promise.resolve()).then(function () {
      st.busy = true;
      return job();
    }).catch(function (e) { console.warn("sheaflab figures:", e); }).then(function () {
      st.busy = false;
    });
    return st.queue;
  }

  function sync(gd) {
    if (!gd._fullLayout || !gd.layout) return;
    run(gd, function () {
      var st = state(gd), pr = Promise.resolve();
      var phone = wantsPhone(gd), dark = isDark();
      if (st.phone && !phone) pr = pr.then(function () { return phoneOff(gd); });
      if (!st.phone && phone) pr = pr.then(function () { return phoneOn(gd); });
      if (st.dark && !dark) pr = pr.then(function () { return darkOff(gd); });
      if (!st.dark && dark) pr = pr.then(function () { return darkOn(gd); });
      return pr.then(function () { gd.setAttribute("data-sheaflab-mode", (dark ? "dark" : "light") + (phone ? " phone" : "")); });
    });
  }

  var seen = typeof WeakSet === "function" ? new WeakSet() : null;
  var resizeTimers = new Map();
  var resizer = typeof ResizeObserver === "function" ? new ResizeObserver(function (entries) {
    entries.forEach(function (e) {
      var gd = e.target;
      clearTimeout(resizeTimers.get(gd));
      // after plotly's own responsive resize (debounced too)
      resizeTimers.set(gd, setTimeout(function () { sync(gd); }, 200));
    });
  }) : null;

  function adopt(gd) {
    if (!gd._fullLayout || !gd.on || (seen && seen.has(gd)) || gd._sheaflabAdopted) return;
    if (seen) seen.add(gd); else gd._sheaflabAdopted = true;
    gd.on("plotly_update", function () { phoneRewrap(gd); });
    gd.on("plotly_relayout", function () { phoneRewrap(gd); });
    if (resizer) resizer.observe(gd);
    sync(gd);
  }

  function scan() {
    document.querySelectorAll("div.plotly-graph-div").forEach(function (gd) {
      if (gd.querySelector("svg.main-svg")) adopt(gd);
    });
  }

  // Figures drawn after this script (every figure of a page is, the widget manager's later still).
  new MutationObserver(function (records) {
    for (var i = 0; i < records.length; i++) {
      if (records[i].addedNodes.length) { setTimeout(scan, 0); return; }
    }
  }).observe(document.documentElement, {childList: true, subtree: true});

  // The theme's switch (and its "auto" mode, following the OS) sets data-theme on <html>.
  new MutationObserver(function () {
    document.querySelectorAll("div.plotly-graph-div").forEach(function (gd) {
      if (gd._sheaflab || (seen && seen.has(gd))) sync(gd);
    });
  }).observe(document.documentElement, {attributes: true, attributeFilter: ["data-theme"]});

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", scan);
  else scan();
  window.addEventListener("load", scan);
  window.sheaflabFigures = {sync: sync, scan: scan};  // for the book's tests
})();
