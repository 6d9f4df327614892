// The zgossip node page: polls /api/state every second and draws it.
// Every string from the node (names, endpoints, keys, values) is set as
// textContent or as an attribute value, never parsed as markup: tuples
// are untrusted input.
"use strict";

(function () {
  const SVG = "http://www.w3.org/2000/svg";
  const POLL_MS = 1000;
  const HISTORY = 120; // seconds of delay chart
  const STATES = ["alive", "suspect", "failed", "left"];
  const MODES = ["eager", "lazy", "plain"];
  const COUNTERS = [
    ["zgossip_tuples", "tuples"],
    ["zgossip_connections", "connections"],
    ["zgossip_tuples_applied_total", "writes applied"],
    ["zgossip_overlay_eager_links", "eager"],
    ["zgossip_overlay_lazy_links", "lazy"],
  ];

  let query = "";
  let timer = null;
  let previous = null; // the last histogram seen: {buckets, count}
  const history = []; // per poll: {p50, p90, p99, n} (null: no writes)

  const $ = (id) => document.getElementById(id);

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function svg(tag, attrs, text) {
    const e = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function row(cells, cls) {
    const tr = el("tr", null, cls);
    for (const c of cells) {
      const td = el("td");
      if (c instanceof Node) td.append(c);
      else td.textContent = c === null || c === undefined ? "" : String(c);
      tr.append(td);
    }
    return tr;
  }

  function oneOf(value, allowed, otherwise) {
    return allowed.includes(value) ? value : otherwise;
  }

  function short(s, n) {
    s = String(s);
    return s.length > n ? s.slice(0, n - 1) + "…" : s;
  }

  function bytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    return (n / 1048576).toFixed(1) + " MiB";
  }

  function ms(seconds) {
    if (seconds === null) return "-";
    const m = seconds * 1000;
    return m < 10 ? m.toFixed(1) + " ms" : m < 10000 ? Math.round(m) + " ms" : (m / 1000).toFixed(1) + " s";
  }

  function renderCounters(s) {
    const self = s.members.find((m) => m.self);
    $("node-name").textContent = self ? self.name + " · " + self.id : "";
    const items = [];
    for (const [name, label] of COUNTERS) {
      if (!(name in s.counters)) continue;
      const d = el("div");
      d.append(el("dt", label), el("dd", s.counters[name]));
      items.push(d);
    }
    $("counters").replaceChildren(...items);
  }

  function renderMembers(s) {
    const rows = s.members.map((m) => {
      const state = el("span", m.state, "state " + oneOf(m.state, STATES, "unknown"));
      return row([m.id, m.name, state, m.endpoint || "-"], m.self ? "self" : "");
    });
    $("members-body").replaceChildren(...rows);
    const alive = s.members.filter((m) => m.state === "alive").length;
    let info = s.members_total + " known, " + alive + " alive";
    if (s.members_total > s.members.length) info += " (first " + s.members.length + " shown)";
    $("members-info").textContent = info;
  }

  function peerLabel(l) {
    return l.name || l.peer || "conn " + l.conn;
  }

  function renderLinks(s) {
    const pic = $("links-picture");
    const cx = 220, cy = 150, r = 105;
    const parts = [];
    const nodes = [];
    s.links.forEach((l, i) => {
      const a = (2 * Math.PI * i) / s.links.length - Math.PI / 2;
      const x = cx + r * Math.cos(a), y = cy + r * Math.sin(a);
      const mode = oneOf(l.mode, MODES, "plain");
      const line = svg("line", { x1: cx, y1: cy, x2: x.toFixed(1), y2: y.toFixed(1), class: mode });
      line.append(svg("title", {}, peerLabel(l) + " (" + mode + ")"));
      parts.push(line);
      nodes.push(svg("circle", { cx: x.toFixed(1), cy: y.toFixed(1), r: 9 }));
      const ly = y + (Math.sin(a) < -0.3 ? -14 : 22);
      nodes.push(svg("text", { x: x.toFixed(1), y: ly.toFixed(1) }, short(peerLabel(l), 26)));
    });
    const self = s.members.find((m) => m.self);
    nodes.push(svg("circle", { cx, cy, r: 24, class: "me" }));
    nodes.push(svg("text", { x: cx, y: cy + 4, class: "me" }, short(self ? self.name : "this node", 10)));
    if (s.links.length === 0) {
      nodes.push(svg("text", { x: cx, y: cy + 50 }, "no links"));
    }
    pic.replaceChildren(...parts, ...nodes);
    const rows = s.links.map((l) => row([
      peerLabel(l), l.peer || "-", oneOf(l.mode, MODES, "plain"), l.role,
      l.rtt_ms === null ? "-" : l.rtt_ms.toFixed(1) + " ms",
      bytes(l.bytes_in), bytes(l.bytes_out), bytes(l.backlog),
    ]));
    $("links-body").replaceChildren(...rows);
    const count = (m) => s.links.filter((l) => l.mode === m).length;
    $("links-info").textContent = s.links.length + (s.links.length === 1 ? " link: " : " links: ") + count("eager") + " eager, " +
      count("lazy") + " lazy, " + count("plain") + " plain";
  }

  // The q-quantile of the writes in a non-cumulative list of
  // [upper bound, count] (upper bound null: +Inf), interpolated linearly
  // inside its bucket, as Prometheus' histogram_quantile does.
  function quantile(q, deltas, total) {
    const target = q * total;
    let seen = 0, lower = 0;
    for (const [le, n] of deltas) {
      if (n > 0 && seen + n >= target) {
        if (le === null) return lower;
        return lower + ((le - lower) * (target - seen)) / n;
      }
      seen += n;
      if (le !== null) lower = le;
    }
    return lower;
  }

  function nonCumulative(buckets, base) {
    const out = [];
    let before = 0;
    buckets.forEach(([le, n], i) => {
      const prev = base ? base[i][1] : 0;
      const here = n - prev;
      out.push([le, here - before]);
      before = here;
    });
    return out;
  }

  function renderDelay(s) {
    const d = s.delay;
    if (previous && previous.buckets.length === d.buckets.length && d.count >= previous.count) {
      const n = d.count - previous.count;
      if (n > 0) {
        const deltas = nonCumulative(d.buckets, previous.buckets);
        history.push({ n, p50: quantile(0.5, deltas, n), p90: quantile(0.9, deltas, n), p99: quantile(0.99, deltas, n) });
      } else {
        history.push(null);
      }
      while (history.length > HISTORY) history.shift();
    }
    previous = { buckets: d.buckets, count: d.count };
    drawChart();
    drawBuckets(d);
    const last = history.length ? history[history.length - 1] : null;
    let info = d.count + " writes since start";
    if (d.count > 0) info += ", mean " + ms(d.sum / d.count);
    if (last) info += "; last second: " + last.n + ", p50 " + ms(last.p50) + ", p99 " + ms(last.p99);
    if (d.clamped > 0) info += "; " + d.clamped + " clamped (clock skew)";
    $("delay-info").textContent = info;
  }

  // Log scale from 1 ms to 60 s.
  const LO = Math.log10(0.001), HI = Math.log10(60);
  function yOf(seconds, top, height) {
    const v = Math.min(Math.max(Math.log10(Math.max(seconds, 0.001)), LO), HI);
    return top + height - ((v - LO) / (HI - LO)) * height;
  }

  function drawChart() {
    const chart = $("delay-chart");
    const left = 44, top = 8, width = 388, height = 170;
    const parts = [];
    for (const [label, v] of [["1 ms", 0.001], ["10 ms", 0.01], ["100 ms", 0.1], ["1 s", 1], ["10 s", 10]]) {
      const y = yOf(v, top, height).toFixed(1);
      parts.push(svg("line", { x1: left, x2: left + width, y1: y, y2: y, class: "axis" }));
      parts.push(svg("text", { x: 2, y: Number(y) + 3 }, label));
    }
    parts.push(svg("text", { x: left, y: top + height + 16 }, "−" + HISTORY + " s"));
    parts.push(svg("text", { x: left + width - 20, y: top + height + 16 }, "now"));
    for (const key of ["p50", "p90", "p99"]) {
      let points = [];
      const flush = () => {
        if (points.length) parts.push(svg("polyline", { points: points.join(" "), class: key }));
        points = [];
      };
      history.forEach((h, i) => {
        if (!h) return flush();
        const x = left + ((HISTORY - history.length + i) / (HISTORY - 1)) * width;
        points.push(x.toFixed(1) + "," + yOf(h[key], top, height).toFixed(1));
        if (points.length === 1) points.push((x + 1.5).toFixed(1) + "," + yOf(h[key], top, height).toFixed(1));
      });
      flush();
    }
    if (!history.some((h) => h)) {
      parts.push(svg("text", { x: left + 8, y: top + 16 }, "no write has arrived since the page was opened"));
    }
    chart.replaceChildren(...parts);
  }

  // A bucket's upper bound in four characters at most: 25m, 2.5s, inf.
  function bucketLabel(le) {
    if (le === null) return "inf";
    return le < 1 ? Math.round(le * 1000) + "m" : le + "s";
  }

  function drawBuckets(d) {
    const box = $("delay-buckets");
    const deltas = nonCumulative(d.buckets, null);
    const max = Math.max(1, ...deltas.map(([, n]) => n));
    const left = 4, width = 432, height = 70, w = width / Math.max(deltas.length, 1);
    const parts = [svg("text", { x: left, y: 10 }, "since start, writes per bucket:")];
    deltas.forEach(([le, n], i) => {
      const h = (n / max) * height;
      const x = left + i * w;
      const rect = svg("rect", { x: (x + 1).toFixed(1), y: (84 - h).toFixed(1), width: (w - 2).toFixed(1), height: h.toFixed(1) });
      rect.append(svg("title", {}, "≤ " + (le === null ? "+Inf" : ms(le)) + ": " + n));
      parts.push(rect);
      parts.push(svg("text", { x: (x + 1).toFixed(1), y: 98, class: "le" }, bucketLabel(le)));
    });
    box.replaceChildren(...parts);
  }

  function renderTuples(s) {
    const t = s.tuples;
    const rows = t.items.map((it) => row([it.key, it.cut ? it.value + " …" : it.value]));
    $("tuples-body").replaceChildren(...rows);
    let info = t.total + (t.query ? " matching" : " held");
    if (t.total > t.items.length) info += ", first " + t.items.length + " shown (at most " + t.cap + ")";
    $("tuples-info").textContent = info;
  }

  function render(s) {
    renderCounters(s);
    renderMembers(s);
    renderLinks(s);
    renderDelay(s);
    renderTuples(s);
  }

  async function poll() {
    clearTimeout(timer);
    const status = $("status");
    try {
      const r = await fetch("/api/state?q=" + encodeURIComponent(query), { cache: "no-store" });
      if (!r.ok) throw new Error("HTTP " + r.status);
      render(await r.json());
      status.textContent = "updated " + new Date().toLocaleTimeString();
      status.className = "";
    } catch (e) {
      status.textContent = "cannot reach the node: " + e.message;
      status.className = "down";
    }
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener("DOMContentLoaded", () => {
    let typing = null;
    $("search").addEventListener("input", (e) => {
      clearTimeout(typing);
      typing = setTimeout(() => {
        query = e.target.value;
        poll();
      }, 200);
    });
    poll();
  });
})();
