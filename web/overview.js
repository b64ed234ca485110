// The network overview: fetches GET /api/overview from the master every
// 2 s and redraws the mesh graph, the channels table and a card per node.
// No dependencies, no build step; everything is drawn here (SVG strings).
//
// What a test can rely on (tests/browser/overview.mjs):
//   body[data-generated-at]          generated_at of the data on screen
//   body[data-renders]               how many answers were drawn
//   #status[data-state]              loading | live | error
//   #sum-{master,nodes,links,channels,clients,repairs}[data-value]
//   #graph g.node[data-node=N][data-state=live|stale|nostats|unknown|down]
//                [data-master=true|false]
//   #graph g.link[data-link="A-B"][data-latency=ms|""] (a < b), its text
//   tr[data-channel=C][data-protected][data-holders="A B"][data-total]
//     [data-holder=N], [data-sub-node=N][data-value]
//   article.card[data-node=N][data-state] [data-field=clients|channels|pps|
//     kbps|load1|mem-used|mem-total][data-value], svg[data-chart=pps|kbps]
//     [data-points]
"use strict";

(() => {
  const API = "/api/overview";
  // [web] admin_token_file: the token comes in the URL's fragment (never
  // sent to the server in the URL), kept for this tab, and goes out as a
  // bearer token
  const TOKEN_KEY = "wsrelay-admin-token";
  {
    const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      sessionStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
      history.replaceState(null, "", location.pathname + location.search);
    }
  }
  const adminToken = sessionStorage.getItem(TOKEN_KEY);
  const POLL_MS = 2000;
  const TIMEOUT_MS = 5000;
  const HIGH_LATENCY_MS = 10; // health.max_latency_ms's default
  const HOUR_MS = 3600 * 1000;
  const WINDOW_S = 15; // node-stats "15s" windows: counts over 15 s

  const $ = (id) => document.getElementById(id);
  const ESC = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  const esc = (s) => String(s).replace(/[&<>"']/g, (c) => ESC[c]);
  const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : null);
  const get = (o, ...path) => {
    for (const k of path) {
      if (o === null || typeof o !== "object") return undefined;
      o = o[k];
    }
    return o;
  };

  // ------------------------------------------------------------ formats

  function fmtNum(v) {
    v = num(v);
    if (v === null) return "–";
    const a = Math.abs(v);
    if (a === 0) return "0";
    if (a < 1) return v.toFixed(2);
    if (a < 10) return v.toFixed(1);
    if (a < 1000) return String(Math.round(v));
    if (a < 1e6) return `${(v / 1e3).toFixed(a < 1e4 ? 1 : 0)}k`;
    return `${(v / 1e6).toFixed(1)}M`;
  }

  const fmtCount = (v) => (num(v) === null ? "–" : String(Math.round(v)));

  function fmtLatency(ms) {
    ms = num(ms);
    if (ms === null) return "–";
    if (ms < 1) return ms.toFixed(2);
    if (ms < 100) return ms.toFixed(1);
    return String(Math.round(ms));
  }

  function fmtBytes(b) {
    b = num(b);
    if (b === null) return "–";
    const units = ["B", "KiB", "MiB", "GiB", "TiB"];
    let i = 0;
    while (Math.abs(b) >= 1024 && i < units.length - 1) {
      b /= 1024;
      i++;
    }
    return `${b.toFixed(b >= 100 || i === 0 ? 0 : 1)} ${units[i]}`;
  }

  function fmtSpan(ms) {
    if (ms > 0 && ms < 1000) return `${Math.round(ms)} ms`;
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 60) return `${s} s`;
    const m = Math.round(s / 60);
    if (m < 60) return `${m} min`;
    const h = Math.floor(m / 60);
    return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  }

  const fmtClock = (ms) =>
    new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  // ------------------------------------------------------------- model

  // The answer as the page uses it: nodes by name in drawing order (the
  // master first), their rates, links with both ends known.
  function model(d) {
    const nodes = new Map();
    for (const n of d.nodes || []) {
      if (!n || typeof n.name !== "string" || nodes.has(n.name)) continue;
      nodes.set(n.name, n);
    }
    // a link may name a node the master has no entry for
    for (const l of d.links || []) {
      for (const x of [l.a, l.b]) {
        if (typeof x === "string" && !nodes.has(x))
          nodes.set(x, { name: x, url: "", master: false, stats: null, host: null, history: [], ghost: true });
      }
    }
    const interval = num(d.sample_interval_ms) || 15000;
    const now = num(d.generated_at) || Date.now();
    const list = [...nodes.values()].sort((x, y) =>
      x.name === d.master ? -1 : y.name === d.master ? 1 : x.name < y.name ? -1 : x.name > y.name ? 1 : 0);
    for (const n of list) {
      const hist = Array.isArray(n.history) ? n.history.filter((s) => num(s && s.t) !== null) : [];
      n.hist = hist;
      n.lastT = hist.length ? hist[hist.length - 1].t : null;
      if (n.up === false) n.state = "down";
      else if (n.ghost) n.state = "unknown";
      else if (!n.stats) n.state = "nostats";
      // the master asks every interval; three missed answers: stale
      else if (n.lastT !== null && now - n.lastT > 3 * interval + 5000) n.state = "stale";
      else n.state = "live";
      const net = get(n.stats, "network");
      n.pps = n.stats ? (num(get(net, "packets", "15s")) ?? 0) / WINDOW_S : null;
      n.kbps = n.stats ? num(get(net, "bandwidth", "15s")) ?? 0 : null;
      n.clients = n.stats ? num(get(n.stats, "relay", "clients")) ?? 0 : null;
      const chans = get(n.stats, "relay", "channels");
      n.nchannels = Array.isArray(chans) ? chans.length : null;
    }
    const links = (d.links || [])
      .filter((l) => typeof l.a === "string" && typeof l.b === "string")
      .map((l) => {
        const [a, b] = l.a < l.b ? [l.a, l.b] : [l.b, l.a];
        return { a, b, id: `${a}-${b}`, latency: num(l.latency_ms) };
      });
    const channels = (d.channels || [])
      .filter((c) => c && typeof c.name === "string")
      .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    return { d, nodes, list, links, channels, interval, now };
  }

  // ----------------------------------------------------------- summary

  function setSum(id, value, text) {
    const el = $(id);
    el.dataset.value = value;
    el.textContent = text ?? String(value);
  }

  function drawSummary(m) {
    setSum("sum-master", m.d.master || "", m.d.master || "–");
    setSum("sum-nodes", m.list.length);
    setSum("sum-links", m.links.length);
    setSum("sum-channels", m.channels.length);
    const clients = m.list.reduce((s, n) => s + (n.clients || 0), 0);
    setSum("sum-clients", clients);
    setSum("sum-repairs", num(m.d.repairs) ?? 0);
    const quiet = m.list.filter((n) => n.state !== "live").length;
    $("nodes-note").textContent =
      `packets/s and kb/s (15 s averages) over the last hour, sampled every ${fmtSpan(m.interval)} by the master`;
    $("mesh-note").textContent = quiet ? `${quiet} node${quiet > 1 ? "s" : ""} without fresh stats` : "";
  }

  // ------------------------------------------------------------- graph

  const STAR = (x, y, r) => {
    const pts = [];
    for (let i = 0; i < 10; i++) {
      const a = -Math.PI / 2 + (i * Math.PI) / 5;
      const rr = i % 2 ? r * 0.45 : r;
      pts.push(`${(x + rr * Math.cos(a)).toFixed(1)},${(y + rr * Math.sin(a)).toFixed(1)}`);
    }
    return `<polygon class="star" points="${pts.join(" ")}"/>`;
  };

  function drawGraph(m) {
    const W = 560, H = 300, NR = 27;
    const cx = W / 2, cy = H / 2 + 4;
    const RX = W / 2 - 142, RY = H / 2 - 62;
    const pos = new Map();
    const n = m.list.length;
    m.list.forEach((node, i) => {
      if (n === 1) return pos.set(node.name, { x: cx, y: cy, ux: 0, uy: 1 });
      const a = -Math.PI / 2 + (2 * Math.PI * i) / n + (n === 2 ? Math.PI / 2 : 0);
      pos.set(node.name, { x: cx + RX * Math.cos(a), y: cy + RY * Math.sin(a), ux: Math.cos(a), uy: Math.sin(a) });
    });

    // a label slides along its link off labels placed before it and
    // off the node discs; the middle when nowhere is free
    const placed = [];
    const free = (x, y, w) =>
      placed.every((r) => Math.abs(r.x - x) > (r.w + w) / 2 + 2 || Math.abs(r.y - y) > 19) &&
      [...pos.values()].every((c) => Math.abs(c.x - x) > w / 2 + NR + 2 || Math.abs(c.y - y) > NR + 10);
    let lines = "", labels = "";
    for (const l of m.links) {
      const p = pos.get(l.a), q = pos.get(l.b);
      if (!p || !q) continue;
      const cls = l.latency === null ? "unknown" : l.latency > HIGH_LATENCY_MS ? "high" : "ok";
      const text = l.latency === null ? "? ms" : `${fmtLatency(l.latency)} ms`;
      const w = text.length * 6.4 + 10;
      const t = [0.5, 0.4, 0.6, 0.32, 0.68, 0.26, 0.74].find((k) =>
        free(p.x + (q.x - p.x) * k, p.y + (q.y - p.y) * k, w)) ?? 0.5;
      const mx = p.x + (q.x - p.x) * t, my = p.y + (q.y - p.y) * t;
      placed.push({ x: mx, y: my, w });
      const title = `${l.a} ↔ ${l.b}: ${l.latency === null ? "latency not measured yet" : `${l.latency} ms round trip`}`;
      lines += `<line class="link-line ${cls}" data-link-line="${esc(l.id)}" x1="${p.x.toFixed(1)}" y1="${p.y.toFixed(1)}" x2="${q.x.toFixed(1)}" y2="${q.y.toFixed(1)}"/>`;
      labels += `<g class="link ${cls}" data-link="${esc(l.id)}" data-a="${esc(l.a)}" data-b="${esc(l.b)}" data-latency="${l.latency ?? ""}">` +
        `<title>${esc(title)}</title>` +
        `<rect x="${(mx - w / 2).toFixed(1)}" y="${(my - 9).toFixed(1)}" width="${w.toFixed(1)}" height="18" rx="9"/>` +
        `<text x="${mx.toFixed(1)}" y="${(my + 4).toFixed(1)}">${esc(text)}</text></g>`;
    }

    let nodes = "";
    for (const node of m.list) {
      const p = pos.get(node.name);
      const sub = node.state === "down" ? ["down"] : node.state === "nostats" ? ["no stats"]
        : node.state === "unknown" ? ["not reported"]
        : [`${node.clients} client${node.clients === 1 ? "" : "s"}`, `${fmtNum(node.pps)} pkt/s · ${fmtNum(node.kbps)} kb/s`];
      if (node.state === "stale") sub.push(`stale: ${fmtSpan(m.now - node.lastT)} old`);
      // a name too long for the disc: its start inside, in full outside
      const short = node.name.length <= 4;
      const inside = short ? node.name : node.name.slice(0, 3);
      const size = inside.length <= 2 ? 17 : inside.length === 3 ? 15 : 13;
      const lines = (short ? [] : [{ text: node.name, cls: "caption full" }])
        .concat(sub.map((text, i) => ({ text, cls: i ? "caption minor" : "caption" })));
      // the caption goes outward, away from the links
      const ox = p.x + p.ux * (NR + 12), oy = p.y + p.uy * (NR + 12);
      const anchor = Math.abs(p.ux) < 0.35 ? "middle" : p.ux > 0 ? "start" : "end";
      const k = lines.length - 1;
      const top = p.uy < -0.35 ? oy - k * 13 - 2 : p.uy > 0.35 ? oy + 10 : oy - (k * 13) / 2 + 4;
      const caption = lines.map((l, i) =>
        `<text class="${l.cls}" x="${ox.toFixed(1)}" y="${(top + i * 13).toFixed(1)}" text-anchor="${anchor}">${esc(l.text)}</text>`).join("");
      nodes += `<g class="node ${node.state}${node.master ? " master" : ""}" data-node="${esc(node.name)}" data-state="${node.state}" data-master="${!!node.master}">` +
        `<title>${esc(`${node.name}${node.master ? " (master)" : ""}${node.url ? ` — ${node.url}` : ""}`)}</title>` +
        (node.master ? `<circle class="ring" cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="${NR + 5}"/>` : "") +
        `<circle class="disc" cx="${p.x.toFixed(1)}" cy="${p.y.toFixed(1)}" r="${NR}"/>` +
        `<text class="name" x="${p.x.toFixed(1)}" y="${(p.y + size * 0.36).toFixed(1)}" style="font-size:${size}px">${esc(inside)}</text>` +
        (node.master ? STAR(p.x + NR * 0.78, p.y - NR * 0.78, 9) : "") +
        caption + "</g>";
    }
    if (!m.list.length) nodes = `<text class="empty" x="${cx}" y="${cy}">no nodes</text>`;
    $("graph").innerHTML = `<g class="lines">${lines}</g><g class="labels">${labels}</g><g class="nodes">${nodes}</g>`;
  }

  // ---------------------------------------------------------- channels

  const LOCK = `<svg class="lock" viewBox="0 0 12 14" role="img" aria-label="password-protected"><title>password-protected</title>` +
    `<rect x="1" y="6" width="10" height="7.5" rx="1.5"/><path d="M3.3 6V4.2a2.7 2.7 0 0 1 5.4 0V6" fill="none" stroke-width="1.6"/></svg>`;

  function drawChannels(m) {
    const rows = m.channels.map((c) => {
      const holders = Array.isArray(c.holders) ? c.holders.filter((h) => typeof h === "string").sort() : [];
      const subs = c.subscribers && typeof c.subscribers === "object" ? c.subscribers : {};
      const subNames = Object.keys(subs).sort();
      const total = num(c.total_subscribers) ?? subNames.reduce((s, k) => s + (num(subs[k]) || 0), 0);
      // messages reach each holder once: the busiest holder's count
      let pkts = null;
      for (const n of m.list) {
        const v = num(get(n.stats, "channels", c.name, "packets", "15s"));
        if (v !== null) pkts = Math.max(pkts ?? 0, v);
      }
      const created = num(c.created);
      return `<tr data-channel="${esc(c.name)}" data-protected="${!!c.protected}" data-holders="${esc(holders.join(" "))}" data-total="${total}">` +
        `<th scope="row"><span class="chan">${esc(c.name)}</span>${c.protected ? LOCK : ""}</th>` +
        `<td>${holders.map((h) => `<span class="chip holder" data-holder="${esc(h)}">${esc(h)}</span>`).join("") || '<span class="muted">none</span>'}</td>` +
        `<td>${subNames.map((k) => `<span class="chip sub" data-sub-node="${esc(k)}" data-value="${num(subs[k]) ?? ""}"><b>${esc(k)}</b> ${esc(fmtCount(subs[k]))}</span>`).join("") || '<span class="muted">–</span>'}</td>` +
        `<td class="num total" data-field="total" data-value="${total}">${total}</td>` +
        `<td class="num" data-field="mps" data-value="${pkts === null ? "" : pkts / WINDOW_S}">${pkts === null ? "–" : fmtNum(pkts / WINDOW_S)}</td>` +
        `<td class="num muted" title="${created ? esc(new Date(created).toLocaleString()) : ""}">${created ? fmtSpan(m.now - created) : "–"}</td></tr>`;
    });
    $("channel-rows").innerHTML = rows.join("") ||
      '<tr class="empty"><td colspan="6">no open channels</td></tr>';
  }

  // ------------------------------------------------------------- cards

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = 10 ** Math.floor(Math.log10(v));
    for (const k of [1, 2, 2.5, 5, 10]) if (k * p >= v * 1.0001) return k * p;
    return 10 * p;
  }

  // A line chart of f(sample) over [t0, t1]; a gap longer than three
  // sample intervals (the node did not answer) breaks the line.
  function chart(hist, f, t0, t1, interval, kind, unit) {
    const W = 240, H = 46, TOP = 4;
    const pts = hist.filter((s) => s.t >= t0 - interval).map((s) => [s.t, Math.max(0, num(f(s)) ?? 0)]);
    const max = niceMax(Math.max(0, ...pts.map((p) => p[1])));
    const x = (t) => (Math.max(t, t0) - t0) / Math.max(1, t1 - t0) * W;
    const y = (v) => H - (v / max) * (H - TOP);
    const segs = [];
    let cur = [];
    for (let i = 0; i < pts.length; i++) {
      if (i && pts[i][0] - pts[i - 1][0] > 3 * interval) {
        segs.push(cur);
        cur = [];
      }
      cur.push(pts[i]);
    }
    if (cur.length) segs.push(cur);
    let line = "", area = "";
    for (const s of segs) {
      // a lone sample still shows: a short tick
      const ps = s.length === 1 ? [[s[0][0] - interval / 2, s[0][1]], [s[0][0], s[0][1]]] : s;
      const xy = ps.map(([t, v]) => `${x(t).toFixed(1)},${y(v).toFixed(1)}`);
      line += `M${xy.join("L")}`;
      area += `M${x(ps[0][0]).toFixed(1)},${H}L${xy.join("L")}L${x(ps[ps.length - 1][0]).toFixed(1)},${H}Z`;
    }
    const lastV = pts.length ? pts[pts.length - 1][1] : null;
    return `<figure class="chart ${kind}"><figcaption><span>${unit}</span><span class="muted">max ${fmtNum(max)}</span></figcaption>` +
      `<svg data-chart="${kind}" data-points="${pts.length}" data-last="${lastV ?? ""}" viewBox="0 0 ${W} ${H}" preserveAspectRatio="none" role="img" aria-label="${esc(unit)}">` +
      `<line class="grid" x1="0" x2="${W}" y1="${TOP}" y2="${TOP}"/><line class="grid" x1="0" x2="${W}" y1="${(H + TOP) / 2}" y2="${(H + TOP) / 2}"/>` +
      `<path class="area" d="${area}"/><path class="line" d="${line}"/></svg></figure>`;
  }

  function bar(frac, cls = "") {
    const pct = Math.max(0, Math.min(100, (num(frac) ?? 0) * 100));
    const level = pct > 90 ? " bad" : pct > 75 ? " warn" : "";
    return `<div class="bar ${cls}${level}"><i style="width:${pct.toFixed(1)}%"></i></div>`;
  }

  function kpi(field, value, text, label) {
    return `<div class="kpi"><span class="v" data-field="${field}" data-value="${value ?? ""}">${esc(text)}</span><span class="l">${label}</span></div>`;
  }

  const STATE_TEXT = { live: "live", stale: "stale", nostats: "no stats", unknown: "not reported", down: "down" };

  function card(node, m) {
    const h = node.host;
    const t1 = m.now;
    const first = node.hist.length ? node.hist[0].t : t1;
    const t0 = Math.max(t1 - HOUR_MS, Math.min(first, t1 - m.interval));
    const load = ["1m", "5m", "15m"].map((k) => num(get(h, "cpu", k)));
    const used = num(get(h, "mem", "used")), total = num(get(h, "mem", "total"));
    const disks = Array.isArray(get(h, "disk")) ? h.disk : [];
    const root = disks.find((x) => x && x.mount === "/") || disks[0];
    let body = "";
    if (node.state === "nostats" || node.state === "unknown") {
      body = `<p class="nostats">${node.state === "unknown"
        ? "Named by a peer's links, but the master has no entry for it."
        : "The master has no stats from this node yet: it has not answered node-stats."}</p>`;
    }
    body += `<div class="kpis">` +
      kpi("clients", node.clients, node.clients === null ? "–" : String(node.clients), "clients") +
      kpi("channels", node.nchannels, node.nchannels === null ? "–" : String(node.nchannels), "channels") +
      kpi("pps", node.pps, fmtNum(node.pps), "pkt/s") +
      kpi("kbps", node.kbps, fmtNum(node.kbps), "kb/s") + `</div>`;
    if (node.hist.length) {
      body += `<div class="span muted"><span>${fmtSpan(t1 - t0)} ago</span><span>${node.hist.length} sample${node.hist.length === 1 ? "" : "s"}</span><span>now</span></div>`;
      body += chart(node.hist, (s) => s.packets / WINDOW_S, t0, t1, m.interval, "pps", "packets/s");
      body += chart(node.hist, (s) => s.kbps, t0, t1, m.interval, "kbps", "kb/s");
    } else if (node.state === "live" || node.state === "stale") {
      body += `<p class="muted small">no history yet</p>`;
    }
    if (h) {
      const ltext = load.map((v) => (v === null ? "–" : v.toFixed(2))).join(" · ");
      body += `<div class="host">` +
        `<div class="row" title="load average over 1, 5 and 15 min"><span class="muted">load</span><span data-field="load1" data-value="${load[0] ?? ""}">${ltext}</span></div>` +
        `<div class="row"><span class="muted">memory</span><span><span data-field="mem-used" data-value="${used ?? ""}">${fmtBytes(used)}</span> / <span data-field="mem-total" data-value="${total ?? ""}">${fmtBytes(total)}</span></span></div>` +
        bar(used !== null && total ? used / total : 0, "mem") +
        (root ? `<div class="row"><span class="muted">disk ${esc(root.mount)}</span><span data-field="disk">${fmtBytes(root.used)} / ${fmtBytes(root.total)}</span></div>` +
          bar(num(root.total) ? root.used / root.total : 0, "disk") : "") +
        `</div>`;
    } else if (node.state !== "unknown") {
      body += `<p class="muted small">no host stats</p>`;
    }
    return `<article class="card ${node.state}" data-node="${esc(node.name)}" data-state="${node.state}">` +
      `<header><h3>${esc(node.name)}</h3>` +
      (node.master ? `<span class="badge master">master</span>` : "") +
      healthBadge(node) +
      `<span class="badge state ${node.state}" title="${node.lastT ? `last sample ${esc(fmtClock(node.lastT))}` : ""}">${STATE_TEXT[node.state]}</span></header>` +
      `<div class="url muted" title="${esc(node.url || "")}">${esc(node.url || "no url")}</div>${body}</article>`;
  }

  // the node's own /health verdict (node-stats "health"), shown unless good
  function healthBadge(node) {
    const h = get(node.stats, "health");
    const v = h && typeof h.healthy === "string" ? h.healthy : null;
    if (!v || v === "good" || node.state === "down") return "";
    return `<span class="badge health ${esc(v)}" data-field="health" data-value="${esc(v)}" ` +
      `title="${esc((h.reasons || []).join(", "))}">${esc(v)}: ${esc(h.reason || "")}</span>`;
  }

  function drawCards(m) {
    $("cards").innerHTML = m.list.map((n) => card(n, m)).join("") || '<p class="muted">no nodes</p>';
  }

  // ---------------------------------------------------- highlighting

  // Hovering a channel row lights its holders in the graph.
  function hookHover() {
    const rows = $("channel-rows");
    const light = (names) => {
      for (const g of $("graph").querySelectorAll("g.node"))
        g.classList.toggle("lit", names.includes(g.dataset.node));
      $("graph").classList.toggle("dim", names.length > 0);
    };
    rows.addEventListener("mouseover", (e) => {
      const tr = e.target.closest("tr[data-channel]");
      light(tr ? tr.dataset.holders.split(" ").filter(Boolean) : []);
    });
    rows.addEventListener("mouseleave", () => light([]));
  }

  // ------------------------------------------------------------ status

  const state = { last: null, lastOkAt: 0, fails: 0, error: "", renders: 0 };

  function drawStatus() {
    const st = $("status"), text = $("status-text"), banner = $("error");
    if (state.error) {
      st.dataset.state = "error";
      const since = state.last ? ` · showing data from ${fmtClock(state.last.generated_at)} (${fmtSpan(Date.now() - state.lastOkAt)} ago)` : "";
      text.textContent = "update failed";
      banner.hidden = false;
      banner.textContent = `Cannot fetch ${API}: ${state.error}${since}. Retrying every ${POLL_MS / 1000} s.`;
      $("main").classList.toggle("stale", !!state.last);
    } else if (state.last) {
      st.dataset.state = "live";
      text.textContent = `live · updated ${fmtClock(state.last.generated_at)}`;
      banner.hidden = true;
      $("main").classList.remove("stale");
    }
  }

  function render(d) {
    const m = model(d);
    drawSummary(m);
    drawGraph(m);
    drawChannels(m);
    drawCards(m);
    state.renders++;
    document.body.dataset.generatedAt = String(d.generated_at);
    document.body.dataset.renders = String(state.renders);
  }

  async function poll() {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const headers = { Accept: "application/json" };
      if (adminToken) headers.Authorization = `Bearer ${adminToken}`;
      const r = await fetch(API, { cache: "no-store", signal: ctl.signal, headers });
      if (r.status === 401) {
        throw new Error("HTTP 401: this node wants its admin token ([web] admin_token_file): " +
          "open this page as /overview.html#token=TOKEN");
      }
      let body = null;
      try {
        body = await r.json();
      } catch {
        body = null;
      }
      if (!r.ok) throw new Error(`HTTP ${r.status}${body && body.error ? ` — ${body.error}` : ""}`);
      if (!body || !Array.isArray(body.nodes)) throw new Error("the answer is not an overview");
      render(body);
      state.last = body;
      state.lastOkAt = Date.now();
      state.fails = 0;
      state.error = "";
    } catch (e) {
      state.fails++;
      state.error = e.name === "AbortError" ? `no answer within ${TIMEOUT_MS / 1000} s` : e.message || String(e);
      if (e instanceof TypeError && /fetch/i.test(e.message)) state.error = "the node is unreachable";
    } finally {
      clearTimeout(timer);
      drawStatus();
      setTimeout(poll, POLL_MS);
    }
  }

  hookHover();
  setInterval(() => state.error && drawStatus(), 1000); // keep "n s ago" honest
  poll();
})();
