/* Quorum coordinator dashboard: one EventSource feeds every panel; controls call the gateway. */
"use strict";

(function () {
  const { LineChart, fmt, escapeHtml: esc } = window.QCharts;
  const $ = (sel, root) => (root || document).querySelector(sel);
  const $$ = (sel, root) => Array.from((root || document).querySelectorAll(sel));

  const state = {
    snap: null,
    history: [],          // chart points, oldest first
    events: [],           // newest first
    controls: {},         // name -> {enabled, reason}
    tokenRequired: false,
    lastWriteTs: 0,       // for session consistency
    flow: null,           // the last write's flow, updated live
    localLat: [],         // latencies (ms) of this page's writes since the last point
    usingLocalLat: false,
    lastMessageAt: 0,
  };
  const HISTORY_S = 300;

  // ---------------------------------------------------------------- formatting
  const num = (v, digits) => (v == null || !isFinite(v) ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: digits == null ? 1 : digits }));
  const ms = (v) => (v == null ? "–" : (v < 10 ? num(v, 2) : num(v, 1)) + " ms");
  const clock = (t) => new Date(t * 1000).toLocaleTimeString("en-GB", { hour12: false });
  const short = (id) => String(id).replace(/^mysql-/, "");
  function replicaName(id) {
    const r = state.snap && (state.snap.replicas || []).find((x) => x.replica_id === id);
    return r ? r.name : id;
  }

  // ------------------------------------------------------------------- stream
  let es = null, watchdog = null;
  function connect() {
    if (es) es.close();
    es = new EventSource("/dashboard/stream");
    es.addEventListener("open", () => setConnected(true));
    es.addEventListener("hello", (m) => onHello(JSON.parse(m.data)));
    es.addEventListener("snapshot", (m) => onSnapshot(JSON.parse(m.data)));
    es.addEventListener("event", (m) => onEvent(JSON.parse(m.data), true));
    es.addEventListener("error", () => {
      setConnected(false);
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 2000);  // a non-stream answer: retry ourselves
    });
    state.lastMessageAt = Date.now();
  }
  function touch() { state.lastMessageAt = Date.now(); }
  function startWatchdog() {
    clearInterval(watchdog);
    watchdog = setInterval(() => {
      // snapshots come every 0.5 s: silence for long means a dead connection the browser has not noticed
      if (Date.now() - state.lastMessageAt > 6000) { setConnected(false); connect(); }
    }, 2000);
  }
  function setConnected(ok) {
    const c = $("#conn");
    c.className = "conn " + (ok ? "conn-live" : "conn-down");
    $(".conn-text", c).textContent = ok ? "live" : "disconnected";
    $("#banner").hidden = ok;
    if (!ok) $("#banner-text").textContent = "Disconnected from the coordinator — retrying…";
  }

  function onHello(h) {
    touch();
    setConnected(true);
    state.history = (h.history || []).slice();
    state.events = [];
    $("#events").innerHTML = "";
    state.controls = h.controls || {};
    backendKey = "";
    state.tokenRequired = !!h.token_required;
    $("#token-row").hidden = !state.tokenRequired;
    $("#backend-note").textContent = h.backend ? `control backend: ${h.backend}` : "";
    applyControlAvailability();
  }

  function onSnapshot(s) {
    touch();
    state.snap = s;
    if (s.chart) {
      const p = s.chart;
      if (p.latency_ms_p50 == null && state.localLat.length) {
        // the core does not report write latencies (yet): chart this page's own writes
        const xs = state.localLat.splice(0).sort((a, b) => a - b);
        p.latency_ms_p50 = pct(xs, 0.5); p.latency_ms_p99 = pct(xs, 0.99); p.local = true;
        state.usingLocalLat = true;
      } else if (p.latency_ms_p50 != null) {
        state.usingLocalLat = false;
      }
      const last = state.history[state.history.length - 1];
      if (!last || p.t > last.t) state.history.push(p);
      const cut = p.t - HISTORY_S - 5;
      while (state.history.length && state.history[0].t < cut) state.history.shift();
    }
    if (s.control) backendAvailability(s.control);
    renderHeader(s);
    renderQuorum(s);
    renderReplicas(s);
    renderCharts();
    renderSeer(s.seer);
    renderTargets(s);
    renderFlowFollowers();
  }

  function pct(sorted, q) {
    const k = Math.max(0, Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1));
    return sorted[k];
  }

  // ------------------------------------------------------------------- header
  function renderHeader(s) {
    const st = s.status || {};
    $("#st-leader").innerHTML = st.current_master ? `<span aria-hidden="true">★</span> ${esc(st.current_master)}` : "none";
    $("#st-epoch").textContent = st.epoch ?? "–";
    $("#st-commit").textContent = st.commit_timestamp ?? "–";
    const q = s.quorum || {};
    $("#st-mode").textContent = (st.mode || q.mode || "–") + (q.failure_threshold ? ` · t=${q.failure_threshold}` : "");
    $("#st-tput").textContent = s.chart ? num(s.chart.writes_per_s, 0) : "–";
    let text;
    if (st.fenced) text = "⛔ fenced (another coordinator took over)";
    else if (st.ready === false) text = "… recovering";
    else text = "✓ accepting writes";
    if (st.inflight) text += ` · ${st.inflight} in flight`;
    $("#st-state").textContent = text;
    $("#st-mode").title = "quorum mode";
    document.title = `${st.current_master ? short(st.current_master) + " leads · " : ""}Quorum coordinator`;
    $$(".seg button").forEach((b) => b.setAttribute("aria-checked", String(b.dataset.mode === (st.mode || q.mode))));
  }

  // ------------------------------------------------------------------- quorum
  function renderQuorum(s) {
    const q = s.quorum || {};
    const weights = q.weights || {};
    const order = (q.ranking && q.ranking.length ? q.ranking : Object.keys(weights));
    const total = order.reduce((a, id) => a + (weights[id] || 0), 0);
    const bar = $("#quorum-bar");
    if (!total) { bar.innerHTML = ""; $("#quorum-caption").textContent = ""; return; }
    const members = new Set(q.quorum || []);
    const health = {};
    for (const r of s.replicas || []) health[r.replica_id] = r.is_healthy;
    const segs = order.map((id) => {
      const w = weights[id] || 0;
      const cls = ["qseg", members.has(id) ? "member" : "", health[id] === false ? "out" : ""].join(" ");
      const n = String(id).match(/(\d+)$/);
      const label = `${members.has(id) ? "<span>◆</span>" : ""}<span class="ql-long">${esc(short(id))} </span><span class="ql-short">${esc(n ? "#" + n[1] : short(id))} </span><span>${num(w, 2)}</span>`;
      return `<div class="${cls}" style="flex:${w} 1 0" title="${esc(id)}: weight ${num(w, 3)}${members.has(id) ? " (cabinet)" : ""}${health[id] === false ? " — unavailable" : ""}">${label}</div>`;
    });
    const thr = q.threshold || total / 2;
    const pos = Math.min(100, (thr / total) * 100);
    bar.innerHTML = segs.join("") + `<div class="qline" style="left:${pos}%"><span>commit needs &gt; ${num(thr, 2)}</span></div>`;
    const mode = q.mode || "cabinet";
    $("#quorum-caption").textContent = mode === "cabinet"
      ? `◆ cabinet: ${[...members].map(short).join(", ")} · total weight ${num(total, 2)}`
      : `${mode} quorum: ${q.quorum_size || members.size} of ${q.total_replicas || order.length} replicas`;
  }

  // ----------------------------------------------------------------- replicas
  function replicaState(r) {
    const st = String(r.state || "").toLowerCase();
    const f = r.faults || {};
    const proc = String(f.process || f.state || "").toLowerCase();
    if (r.diverged || st === "diverged") return { key: "diverged", icon: "⚠", text: "diverged", cls: "bad" };
    if (st === "rebuilding" || st === "rebuild") return { key: "rebuilding", icon: "⟳", text: "rebuilding", cls: "warn" };
    if (st === "needs_rebuild") return { key: "needs-rebuild", icon: "⟳", text: "needs rebuild", cls: "bad" };
    if (st === "paused" || st === "hung" || proc === "paused") return { key: "paused", icon: "‖", text: "paused", cls: "warn" };
    if (st === "partitioned" || f.partitioned) return { key: "partitioned", icon: "⊘", text: "partitioned", cls: "info" };
    if (st === "stopped" || proc === "stopped") return { key: "stopped", icon: "■", text: "stopped", cls: "bad" };
    if (st === "killed" || proc === "dead" || proc === "killed") return { key: "killed", icon: "✕", text: "killed", cls: "bad" };
    if (st === "catching_up" || st === "catching up") return { key: "catching", icon: "↻", text: "catching up", cls: "warn" };
    if (st === "connecting") return { key: "connecting", icon: "…", text: "connecting", cls: "warn" };
    if (st && !["healthy", "up", "ok", "running", "following", "leading", "leader", "follower"].includes(st)) {
      return { key: st.replace(/[^a-z0-9]+/g, "-"), icon: r.is_healthy ? "•" : "✕", text: st.replace(/_/g, " "), cls: r.is_healthy ? "warn" : "bad" };
    }
    if (!r.is_healthy) return { key: "down", icon: "✕", text: "down", cls: "bad" };
    return { key: "healthy", icon: "✓", text: "healthy", cls: "ok" };
  }

  function progressOf(p) {
    if (p == null) return null;
    if (typeof p === "object") {
      if (p.percent != null) return p.percent / 100;
      if (p.fraction != null) return p.fraction;
      if (p.done != null && p.total) return p.done / p.total;
      return null;
    }
    const v = Number(p);
    return isFinite(v) ? (v > 1 ? v / 100 : v) : null;
  }

  function renderReplicas(s) {
    const members = new Set((s.status && s.status.cabinet) || (s.quorum && s.quorum.quorum) || []);
    const total = Object.values((s.quorum && s.quorum.weights) || {}).reduce((a, b) => a + b, 0);
    const reps = (s.replicas || []).slice().sort((a, b) => (b.is_master - a.is_master) || String(a.replica_id).localeCompare(String(b.replica_id), "en", { numeric: true }));
    $("#replicas").innerHTML = reps.map((r) => {
      const st = replicaState(r);
      const leader = !!r.is_master;
      const tags = [
        leader ? `<span class="tag role-leader"><span aria-hidden="true">★</span> leader</span>` : `<span class="tag">follower</span>`,
        members.has(r.replica_id) ? `<span class="tag cab" title="cabinet member: among the t+1 heaviest, can commit"><span aria-hidden="true">◆</span> cabinet</span>` : "",
        (r.faults && r.faults.delay_ms) || r.delay_ms ? `<span class="tag" title="network delay injected">Δ +${esc((r.faults && r.faults.delay_ms) || r.delay_ms)} ms</span>` : "",
      ].join("");
      const prog = progressOf(r.rebuild_progress);
      const progHtml = prog != null ? `<div class="progress" role="progressbar" aria-valuenow="${Math.round(prog * 100)}" aria-valuemin="0" aria-valuemax="100"><i style="width:${Math.round(prog * 100)}%"></i></div>` : "";
      const stateText = st.text + (prog != null ? ` ${Math.round(prog * 100)}%` : "");
      const share = total ? ` <span class="hint">(${Math.round((r.weight / total) * 100)}%)</span>` : "";
      const err = !r.is_healthy && r.last_error ? `<p class="r-err" title="${esc(r.last_error)}">${esc(r.last_error)}</p>` : "";
      return `<article class="replica s-${st.key}${leader ? " leader" : ""}" data-id="${esc(r.replica_id)}" data-state="${st.key}" data-role="${leader ? "leader" : "follower"}">
        <div class="r-top">${tags}</div>
        <div class="r-name">${esc(r.name || r.replica_id)}</div>
        <div class="r-id">${esc(r.replica_id)}</div>
        <div class="state ${st.cls}"><span aria-hidden="true">${st.icon}</span> ${esc(stateText)}</div>
        ${progHtml}
        <dl class="r-metrics">
          <dt>applied ts</dt><dd>${num(r.applied_timestamp, 0)}</dd>
          <dt>lag</dt><dd>${num(r.replication_lag, 0)} entries</dd>
          <dt>lag time</dt><dd>${ms(r.lag_ms)}</dd>
          <dt>ack</dt><dd>${ms(r.ack_latency_ms)}</dd>
          <dt>poll</dt><dd>${ms(r.latency_ms)}${r.stale ? ' <span class="hint">(stale)</span>' : ""}</dd>
          <dt>weight</dt><dd>${num(r.weight, 2)}${share}</dd>
          ${r.crash_count ? `<dt>crashes</dt><dd>${num(r.crash_count, 0)}</dd>` : ""}
        </dl>
        ${err}
      </article>`;
    }).join("");
  }

  // ------------------------------------------------------------------- charts
  const charts = {};
  function setupCharts() {
    charts.tput = new LineChart($("#chart-tput"), { windowS: HISTORY_S, unit: "/s" });
    charts.lat = new LineChart($("#chart-lat"), { windowS: HISTORY_S, unit: "ms" });
    charts.lag = new LineChart($("#chart-lag"), { windowS: HISTORY_S });
  }
  function renderCharts() {
    const h = state.history;
    if (!h.length) return;
    const now = h[h.length - 1].t;
    // show what we have: at least a minute, at most five
    const span = Math.min(HISTORY_S, Math.max(60, Math.ceil((now - h[0].t) / 30) * 30));
    for (const c of Object.values(charts)) { c.now = now; c.opts.windowS = span; }
    charts.tput.setSeries([{ key: "tput", label: "committed", points: h.map((p) => [p.t, p.writes_per_s]) }]);
    charts.lat.setSeries([
      { key: "p50", label: "p50", points: h.map((p) => [p.t, p.latency_ms_p50]) },
      { key: "p99", label: "p99", points: h.map((p) => [p.t, p.latency_ms_p99]) },
    ]);
    const lastSrc = h[h.length - 1].latency_source;
    const anyServer = h.some((p) => p.latency_ms_p50 != null && !p.local);
    const note = $("#lat-note");
    note.textContent = lastSrc === "histogram" ? "· estimated" : lastSrc === "exact" || anyServer ? "" : "· this page's writes";
    note.title = lastSrc === "histogram" ? "p50/p99 interpolated inside the coordinator's latency histogram buckets"
      : lastSrc === "exact" || anyServer ? "" : "the coordinator reports no write latencies; showing the writes this page made (run load)";
    const ids = [];
    for (const p of h) for (const id of Object.keys(p.lag || {})) if (!ids.includes(id)) ids.push(id);
    ids.sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
    charts.lag.setSeries(ids.map((id) => ({ key: id, label: short(id), points: h.map((p) => [p.t, p.lag ? p.lag[id] ?? null : null]) })));
  }

  // --------------------------------------------------------------------- SEER
  let seerKey = "";
  function renderSeer(seer) {
    const key = JSON.stringify(seer || null);
    if (key === seerKey) return;
    seerKey = key;
    const box = $("#seer");
    const last = seer && (seer.last || seer.last_election || seer.election || null);
    const dry = seer && (seer.dry_run || seer.dryrun || (seer.candidates ? seer : null));
    let html = "";
    if (last) {
      const winner = last.new_leader || last.leader_id || last.winner || last.leader;
      const old = last.old_leader || last.previous_leader;
      html += `<div class="seer-win"><span class="hint">last ${last.planned ? "switchover" : "failover"}</span><span class="big">${esc(short(replicaName(old)))} → ★ ${esc(short(replicaName(winner)))}</span></div>`;
      const kv = [];
      if (last.reason) kv.push(["reason", esc(last.reason)]);
      const why = last.election && last.election.reason;
      if (why) kv.push(["SEER", esc(why)]);
      if (last.time) kv.push(["when", clock(last.time)]);
      if (last.epoch != null) kv.push(["epoch", esc(last.epoch)]);
      const t = last.timings || last.phases || {};
      const total = t.total_ms ?? last.total_ms ?? last.duration_ms;
      if (total != null) kv.push(["took", ms(total)]);
      html += `<dl class="kv">${kv.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("")}</dl>`;
      html += phasesHtml(t);
    } else {
      html += `<p class="empty">No election yet.</p>`;
    }
    const cands = dry && (dry.candidates || []);
    if (cands && cands.length) {
      const pick = dry.leader_id;
      html += `<h3>Ranking now${pick ? ` · best: <strong>${esc(short(replicaName(pick)))}</strong>` : ""}</h3>`;
      html += candidatesTable(cands, pick);
      if (dry.reason) html += `<p class="hint">${esc(dry.reason)}</p>`;
    } else if (!last) {
      html += `<p class="hint">When the leader fails, SEER elects the healthy replica with the lowest predicted commit latency, penalising recent crashes and short uptime.</p>`;
    }
    box.innerHTML = html;
  }

  function phasesHtml(ph) {
    if (!ph) return "";
    const list = Array.isArray(ph) ? ph.map((p) => [p.name || p.phase, p.ms ?? p.duration_ms]) : Object.entries(ph);
    const items = list.filter(([n, v]) => typeof v === "number" && v >= 0 && !/^total/.test(n));
    if (!items.length) return "";
    const total = items.reduce((a, [, v]) => a + v, 0) || 1;
    const colors = ["#2f5bd3", "#c2410c", "#15803d", "#7c3aed", "#be185d", "#0e7490"];
    const bars = items.map(([n, v], i) => `<i style="flex:${Math.max(v / total, 0.02)};background:${colors[i % colors.length]}" title="${esc(n)} ${ms(v)}"></i>`).join("");
    const legend = items.map(([n, v], i) => `<span><span style="color:${colors[i % colors.length]}" aria-hidden="true">■</span> ${i + 1}. ${esc(String(n).replace(/_ms$/, "").replace(/_/g, " "))} ${ms(v)}</span>`).join("");
    return `<div class="phases" aria-hidden="true">${bars}</div><div class="phase-legend">${legend}</div>`;
  }

  // predicted commit = exec + quorum wait; the election minimises it plus penalties
  const SEER_COLS = [["predicted_commit_ms", "commit", "ms"], ["exec_ms", "exec", "ms"], ["quorum_wait_ms", "wait", "ms"],
    ["instability_penalty_ms", "penalty", "ms"], ["catchup_ms", "catch-up", "ms"]];
  function candidatesTable(cands, pick) {
    // optional parts only when some candidate pays them
    const cols = SEER_COLS.filter(([k], i) => cands.some((c) => k in c && (i < 3 || c[k])));
    const leader = state.snap && state.snap.status && state.snap.status.leader;
    const rows = cands.map((c) => {
      const id = c.id || c.replica_id;
      const ok = c.eligible !== false;
      const title = `uptime ${num(c.uptime_seconds, 0)} s · crashes ${num(c.crash_count, 0)} · lag ${num(c.replication_lag, 0)} · poll ${ms(c.latency_ms)}`;
      const name = `${id === pick ? "★ " : ""}${esc(short(c.name || replicaName(id)))}${id === leader ? ` <span class="tag lead-mini" title="current leader">L</span>` : ""}`;
      const cells = ok
        ? cols.map(([k, , u]) => `<td>${c[k] == null ? "–" : (u === "ms" ? num(c[k], 1) : num(c[k], 2))}</td>`).join("")
        : `<td colspan="${cols.length}" class="warn-t">✕ ${esc(c.reason || "ineligible")}</td>`;
      return `<tr title="${esc(title)}"><td>${name}</td>${cells}</tr>`;
    });
    const head = `<tr><th>replica</th>${cols.map(([, l]) => `<th>${esc(l)}</th>`).join("")}</tr>`;
    return `<div class="table-wrap"><table><thead>${head}</thead><tbody>${rows.join("")}</tbody></table></div>` +
      `<p class="hint">Predicted commit latency (ms) if each led: exec on it + quorum wait over the others; ★ = SEER's pick, L = current leader. Penalties for recent crashes and short uptime.</p>`;
  }

  // ------------------------------------------------------------------- events
  const KIND_CLASS = [
    [/down|diverg|fenced|fail(ed|ure)|error|kill|lost|crash/, "k-bad", "✕"],
    [/_up$|^up$|recovered|caught_up|rebuild_done|rebuilt|healed|start/, "k-ok", "✓"],
    [/failover|elect|leader|epoch|mode|reset|bootstrap/, "k-info", "●"],
    [/behind|rebuild|waiting|pause|partition|delay|stop|slow/, "k-warn", "▲"],
  ];
  const ROUTINE = /^(bootstrap|replica_behind_log|waiting_for_replicas)$/;
  function kindClass(kind) {
    for (const [re, cls, icon] of KIND_CLASS) if (re.test(kind)) return [cls, icon];
    return ["", "•"];
  }
  function onEvent(e, live) {
    touch();
    if (state.events.some((x) => x.id === e.id)) return;
    state.events.unshift(e);
    if (state.events.length > 300) state.events.length = 300;
    const [cls, icon] = kindClass(String(e.kind || ""));
    const li = document.createElement("li");
    li.className = `${cls}${live && state.snap ? " fresh" : ""}`;
    li.dataset.kind = e.kind;
    li.dataset.id = e.id;
    li.hidden = $("#ev-quiet").checked && ROUTINE.test(e.kind);
    li.innerHTML = `<time datetime="${new Date(e.time * 1000).toISOString()}">${clock(e.time)}</time><span class="kind"><span aria-hidden="true">${icon}</span> ${esc(String(e.kind).replace(/_/g, " "))}</span><span class="msg">${esc(e.message || "")}</span>`;
    const list = $("#events");
    list.insertBefore(li, list.firstChild);
    while (list.children.length > 300) list.removeChild(list.lastChild);
  }

  // ------------------------------------------------------------------ console
  const EXAMPLES = {
    insert: () => { const tag = Date.now().toString(36) + Math.random().toString(36).slice(2, 5); return `INSERT INTO users (name, email) VALUES ('Ada ${tag}', 'ada-${tag}@example.com')`; },
    select: () => "SELECT id, name, email, timestamp FROM users ORDER BY id DESC LIMIT 10",
    count: () => "SELECT 'users' AS tbl, COUNT(*) AS n FROM users UNION ALL SELECT 'products', COUNT(*) FROM products",
  };

  async function api(path, body, admin, method) {
    const headers = { "Content-Type": "application/json" };
    const token = $("#admin-token").value || localStorage.getItem("coordAdminToken") || "";
    if (admin && token) headers.Authorization = `Bearer ${token}`;
    const t0 = performance.now();
    const get = method === "GET";
    try {
      const r = await fetch(path, get ? { method, headers, cache: "no-store" } : { method: "POST", headers, body: JSON.stringify(body || {}) });
      let data;
      try { data = await r.json(); } catch (_) { data = { error: `HTTP ${r.status} without a JSON body` }; }
      return { status: r.status, ok: r.ok, body: data, ms: performance.now() - t0 };
    } catch (err) {
      return { status: 0, ok: false, body: { error: "the coordinator is unreachable", code: "unreachable" }, ms: performance.now() - t0 };
    }
  }

  async function runQuery(ev) {
    if (ev) ev.preventDefault();
    const sql = $("#sql").value.trim();
    if (!sql) return;
    const consistency = $("#consistency").value;
    const body = { query: sql };
    if (!/^\s*(insert|update|delete|replace|create|alter|drop|truncate|rename)\b/i.test(sql)) {
      body.consistency = consistency;
      if (consistency === "session" && state.lastWriteTs) body.min_timestamp = state.lastWriteTs;
    }
    const btn = $("#run-sql");
    btn.disabled = true; btn.classList.add("busy");
    const r = await api("/query", body);
    btn.disabled = false; btn.classList.remove("busy");
    const out = $("#result");
    if (!r.ok) {
      state.flow = null;
      out.innerHTML = errorHtml(r);
      return;
    }
    if (Array.isArray(r.body.data)) {
      state.flow = null;
      out.innerHTML = readHtml(r.body, r.ms);
    } else {
      if (r.body.timestamp) { state.lastWriteTs = Math.max(state.lastWriteTs, r.body.timestamp); updateSessionHint(); }
      if (r.body.latency_ms != null) state.localLat.push(r.body.latency_ms);
      state.flow = { reply: r.body, weights: Object.assign({}, (state.snap && state.snap.quorum && state.snap.quorum.weights) || {}), at: Date.now() };
      out.innerHTML = flowHtml(state.flow);
      renderFlowFollowers();
    }
  }

  function updateSessionHint() {
    $("#session-ts").textContent = state.lastWriteTs ? `your last write: ts ${state.lastWriteTs}` : "";
  }

  function errorHtml(r) {
    const b = r.body || {};
    return `<div class="error" role="alert"><strong>✕ ${r.status ? "HTTP " + r.status : "No answer"}</strong> — ${esc(b.error || b.detail || "request failed")}${b.code ? ` <code>${esc(b.code)}</code>` : ""}</div>`;
  }

  function readHtml(b, clientMs) {
    const rows = b.data || [];
    const cols = [];
    for (const row of rows) for (const k of Object.keys(row)) if (!cols.includes(k)) cols.push(k);
    const meta = `<div class="meta">✓ ${rows.length} row${rows.length === 1 ? "" : "s"} · read on <strong>${esc(b.executed_on || "?")}</strong> · consistency ${esc(b.consistency || "strong")}${b.replica_timestamp != null ? ` · replica at ts ${esc(b.replica_timestamp)}` : ""} · ${ms(clientMs)}</div>`;
    if (!rows.length) return meta + `<p class="empty">No rows.</p>`;
    const cell = (v) => (v === null || v === undefined ? `<td class="null">NULL</td>` : `<td>${esc(typeof v === "object" ? JSON.stringify(v) : v)}</td>`);
    return meta + `<div class="table-wrap"><table><thead><tr>${cols.map((c) => `<th>${esc(c)}</th>`).join("")}</tr></thead><tbody>${rows.slice(0, 500).map((row) => `<tr>${cols.map((c) => cell(row[c])).join("")}</tr>`).join("")}</tbody></table></div>`;
  }

  function flowHtml(f) {
    const b = f.reply, q = b.quorum || {};
    const members = new Set(q.members || []);
    const acked = q.acked || [];
    const ackRows = acked.map((id) => `<li><span>${members.has(id) ? "◆ " : ""}${esc(short(replicaName(id)))}</span><span class="mono">w ${num(f.weights[id], 2)}</span></li>`).join("");
    const committed = q.weight != null && q.threshold != null ? q.weight > q.threshold : true;
    return `<div class="flow" data-ts="${esc(b.timestamp)}">
      <div class="step"><h3>Timestamp</h3><div class="big" id="flow-ts">${esc(b.timestamp)}</div><div class="sub">unique, strictly increasing</div></div>
      <div class="step"><h3>Executed on leader</h3><div class="big">${esc(short(b.executed_on || "?"))}</div><div class="sub">${num(b.rows_affected, 0)} row${b.rows_affected === 1 ? "" : "s"}${b.last_insert_id ? ` · insert id ${esc(b.last_insert_id)}` : ""}</div></div>
      <div class="step"><h3>Quorum acks · ${esc(q.mode || "")}</h3><ul>${ackRows}</ul><div class="sub ${committed ? "yes" : "warn-t"}">Σ ${num(q.weight, 2)} ${committed ? "&gt;" : "≤"} ${num(q.threshold, 2)} ${committed ? "✓ committed" : ""}</div></div>
      <div class="step"><h3>Followers applied</h3><ul id="flow-followers"></ul><div class="sub" id="flow-followers-sum"></div></div>
    </div>
    <div class="flow-msg">${esc(b.message || "")} · ${ms(b.latency_ms)}</div>`;
  }

  function renderFlowFollowers() {
    const f = state.flow, ul = $("#flow-followers");
    if (!f || !ul || !state.snap) return;
    const ts = f.reply.timestamp;
    const fol = (state.snap.replicas || []).filter((r) => r.name !== f.reply.executed_on);
    let done = 0;
    ul.innerHTML = fol.map((r) => {
      const ok = r.applied_timestamp >= ts;
      if (ok) done++;
      return `<li><span>${esc(short(r.name))}</span><span class="${ok ? "yes" : "no"}">${ok ? "✓ applied" : (r.is_healthy ? "… at " + num(r.applied_timestamp, 0) : "✕ down")}</span></li>`;
    }).join("");
    $("#flow-followers-sum").textContent = `${done}/${fol.length} followers applied (live)`;
  }

  // ----------------------------------------------------------------- controls
  function applyControlAvailability() {
    for (const el of $$("[data-control]")) {
      const c = state.controls[el.dataset.control];
      const off = c && !c.enabled;
      const btns = el.tagName === "BUTTON" ? [el] : $$("button", el).filter((b) => b.closest("[data-control]") === el);
      btns.forEach((b) => { b.disabled = !!off; b.title = off ? c.reason : ""; });
      if (el.tagName === "FIELDSET") $$("select, input", el).forEach((i) => { if (i.closest("[data-control]") === el) i.disabled = !!off && !anyEnabledInside(el); });
    }
    // one outcome line per fieldset: say why its controls are off
    for (const fs of $$("fieldset.ctl")) {
      const out = $(".outcome", fs);
      const names = $$("[data-control]", fs).map((e) => e.dataset.control);
      if (fs.dataset.control) names.unshift(fs.dataset.control);
      const reasons = [...new Set(names.map((n) => state.controls[n]).filter((c) => c && !c.enabled).map((c) => c.reason))];
      if (reasons.length && !out.dataset.result) { out.className = "outcome off"; out.textContent = "Unavailable: " + reasons.join("; "); }
      else if (!reasons.length && out.classList.contains("off")) { out.className = "outcome"; out.textContent = ""; }
    }
  }
  const BACKEND = ["replica", "fault", "stop_master", "start_master"];
  let backendKey = "";
  function backendAvailability(c) {
    const key = `${c.available}|${c.reason}`;
    if (key === backendKey) return;
    backendKey = key;
    $("#backend-note").textContent = c.backend ? `control backend: ${c.backend}` : "";
    for (const n of BACKEND) {
      const cur = state.controls[n];
      if (c.available === false) state.controls[n] = { enabled: false, reason: c.reason || "no control backend", backend: true };
      else if (cur && cur.backend) state.controls[n] = { enabled: true, reason: "" };
    }
    applyControlAvailability();
  }
  function anyEnabledInside(el) {
    return $$("[data-control]", el).some((e) => { const c = state.controls[e.dataset.control]; return !c || c.enabled; });
  }

  function disableControl(name, reason) {
    state.controls[name] = { enabled: false, reason };
    applyControlAvailability();
  }

  function showOutcome(group, r, what) {
    const out = $(`[data-outcome="${group}"]`);
    out.dataset.result = "1";
    const b = r.body || {};
    if (r.ok) {
      out.className = "outcome ok";
      out.textContent = `✓ ${what}: ${b.message || "done"} (${ms(r.ms)})`;
    } else {
      out.className = "outcome bad";
      out.textContent = `✕ ${what}: ${b.error || b.detail || "failed"}${r.status ? ` (HTTP ${r.status})` : ""}`;
    }
  }

  function confirmed(el, vars) {
    const msg = el.dataset.confirm;
    if (!msg) return true;
    return window.confirm(msg.replace(/\{(\w+)\}/g, (_, k) => vars[k] ?? k));
  }

  async function adminAction(group, control, path, body, what, btn) {
    btn.disabled = true; btn.classList.add("busy");
    const out = $(`[data-outcome="${group}"]`);
    out.className = "outcome"; out.textContent = `… ${what}`;
    const r = await api(path, body, true);
    btn.disabled = false; btn.classList.remove("busy");
    if (r.status === 404 || r.status === 501) {
      disableControl(control, (r.body && (r.body.error || r.body.detail)) || `HTTP ${r.status}`);
    }
    if (r.status === 401) $("#token-row").hidden = false;
    showOutcome(group, r, what);
    return r;
  }

  function renderTargets(s) {
    const reps = (s.replicas || []);
    const sel = $("#ctl-replica"), tgt = $("#ctl-target");
    const key = reps.map((r) => r.replica_id + (r.is_master ? "*" : "")).join(",");
    if (sel.dataset.key === key) return;
    sel.dataset.key = key;
    const keep = sel.value, keepT = tgt.value;
    sel.innerHTML = reps.map((r) => `<option value="${esc(r.replica_id)}">${esc(r.replica_id)} · ${esc(r.name)}${r.is_master ? " (leader)" : ""}</option>`).join("");
    if (keep && reps.some((r) => r.replica_id === keep)) sel.value = keep;
    else { const f = reps.find((r) => !r.is_master); if (f) sel.value = f.replica_id; }
    tgt.innerHTML = `<option value="">SEER's choice</option>` + reps.filter((r) => !r.is_master).map((r) => `<option value="${esc(r.replica_id)}">${esc(r.replica_id)} · ${esc(r.name)}</option>`).join("");
    if (keepT && reps.some((r) => r.replica_id === keepT && !r.is_master)) tgt.value = keepT;
  }

  function setupControls() {
    $$("[data-action]").forEach((b) => b.addEventListener("click", () => {
      const id = $("#ctl-replica").value;
      if (!id || !confirmed(b, { name: `${id} (${replicaName(id)})` })) return;
      adminAction("replica", "replica", `/admin/replicas/${encodeURIComponent(id)}/${b.dataset.action}`, {}, `${b.dataset.action} ${id}`, b);
    }));
    $$("[data-fault]").forEach((b) => b.addEventListener("click", () => {
      const id = $("#ctl-replica").value;
      if (!id || !confirmed(b, { name: `${id} (${replicaName(id)})` })) return;
      const kind = b.dataset.fault;
      let body = {}, what = `heal ${id}`;
      if (kind === "delay") {
        const d = Math.max(0, Math.round(Number($("#ctl-delay").value) || 0));
        body = { delay_ms: d }; what = `delay ${id} by ${d} ms`;
      } else if (kind === "partition") { body = { partition: true }; what = `partition ${id}`; }
      adminAction("replica", "fault", `/admin/replicas/${encodeURIComponent(id)}/fault`, body, what, b);
    }));
    $("#btn-failover").addEventListener("click", (e) => {
      const target = $("#ctl-target").value;
      const st = (state.snap && state.snap.status) || {};
      if (!confirmed(e.currentTarget, { leader: st.current_master || "the leader", target: target ? replicaName(target) : "SEER's choice" })) return;
      adminAction("failover", "failover", "/admin/trigger-failover", target ? { new_leader: target } : {}, target ? `failover to ${target}` : "failover to SEER's choice", e.currentTarget);
    });
    $("#btn-stop-master").addEventListener("click", (e) => {
      const st = (state.snap && state.snap.status) || {};
      if (!confirmed(e.currentTarget, { leader: st.current_master || "the leader" })) return;
      adminAction("failover", "stop_master", "/admin/stop-master", {}, `stop leader ${st.current_master || ""}`.trim(), e.currentTarget);
    });
    $("#btn-start-master").addEventListener("click", (e) => {
      adminAction("failover", "start_master", "/admin/start-master", {}, "start old leader", e.currentTarget);
    });
    $$(".seg button").forEach((b) => b.addEventListener("click", () => {
      adminAction("mode", "mode", "/admin/replication-mode", { mode: b.dataset.mode }, `mode ${b.dataset.mode}`, b);
    }));
    $("#btn-reset").addEventListener("click", (e) => {
      if (!confirmed(e.currentTarget, {})) return;
      adminAction("reset", "reset", "/admin/reset", {}, "reset", e.currentTarget).then((r) => {
        if (r.ok) { state.lastWriteTs = 0; updateSessionHint(); }
      });
    });
    $("#btn-load").addEventListener("click", runLoad);
    const tok = $("#admin-token");
    tok.value = localStorage.getItem("coordAdminToken") || "";
    tok.addEventListener("change", () => localStorage.setItem("coordAdminToken", tok.value));
  }

  // ------------------------------------------------------------ transactions
  // Open interactive transactions on the MySQL port: polled from GET /admin/transactions (an admin
  // endpoint: the admin address, and the bearer token when one is set), once a second while the page is
  // visible. Not in the push stream, which anyone who can open the page receives.
  const TXN_POLL_MS = 1000;
  const TXN_STATE = {
    idle: ["‖", "idle", ""],
    running: ["▶", "running", "yes"],
    committing: ["⧗", "committing", "warn-t"],
  };
  let txnTimer = null, txnBusy = false, txnKey = "";
  async function pollTxns() {
    if (!document.hidden && !txnBusy) {
      txnBusy = true;
      try { await loadTxns(); } finally { txnBusy = false; }
    }
    clearTimeout(txnTimer);  // one timer chain, however often this is called
    txnTimer = setTimeout(pollTxns, TXN_POLL_MS);
  }
  async function loadTxns() {
    const c = state.controls.transactions;
    if (c && !c.enabled) { txnsOff(c.reason); return; }
    const r = await api("/admin/transactions", null, true, "GET");
    if (r.ok) { renderTxns(r.body); return; }
    if (r.status === 401) $("#token-row").hidden = false;
    const b = r.body || {};
    txnsOff(r.status === 401 ? "enter the admin token (Controls) to list transactions"
      : `${b.error || b.detail || "cannot list transactions"}${r.status ? ` (HTTP ${r.status})` : ""}`);
  }
  function txnsOff(reason) {
    const key = "off|" + reason;
    if (key === txnKey) return;
    txnKey = key;
    $("#txn-summary").textContent = "";
    $("#txns").innerHTML = `<p class="empty off" data-off="1">Unavailable: ${esc(reason)}</p>`;
  }
  function renderTxns(b) {
    const list = (b.transactions || []).slice().sort((x, y) => (y.age_s || 0) - (x.age_s || 0));
    const idleMax = b.idle_timeout_s;
    const summary = `${list.length} open · ${num(b.pinned_connections, 0)} / ${num(b.max_pinned, 0)} leader connections pinned`;
    if ($("#txn-summary").textContent !== summary) $("#txn-summary").textContent = summary;
    const leader = state.snap && state.snap.status && state.snap.status.leader;
    const rows = list.map((t) => {
      const [icon, text, cls] = TXN_STATE[t.state] || ["•", t.state || (t.committing ? "committing" : "open"), ""];
      const stale = idleMax && t.state !== "running" && !t.committing && t.idle_s >= idleMax * 0.75;
      const idle = t.idle_s >= 1 ? ` <span class="hint">idle ${num(t.idle_s, 1)} s</span>` : "";
      const tags = (t.read_only ? ` <span class="tag">read only</span>` : "") + (stale ? ` <span class="warn-t" title="rolled back after ${num(idleMax, 0)} s idle (transactions.idle_timeout_s)">⚠ near idle timeout</span>` : "");
      const pinned = t.pinned_to
        ? `${esc(t.pinned_name || t.pinned_to)}${leader && t.pinned_to !== leader ? ` <span class="warn-t" title="no longer the leader: the transaction will be refused">⚠ old leader</span>` : ""}`
        : `<span class="hint" title="reads before the first write or locking read are served like autocommit reads">not yet (reads only)</span>`;
      const stmts = `${num(t.statements, 0)}${t.writes ? ` <span class="hint">(${num(t.writes, 0)} write${t.writes === 1 ? "" : "s"})</span>` : ""}` +
        ((t.savepoints || []).length ? ` <span class="hint" title="savepoints: ${esc(t.savepoints.join(", "))}">· ${t.savepoints.length} savepoint${t.savepoints.length === 1 ? "" : "s"}</span>` : "");
      return `<tr data-session="${esc(t.session)}" data-state="${esc(t.state || "")}">
        <td>#${esc(t.session)}</td><td>${esc(t.user)}${t.host ? `<span class="hint">@${esc(t.host)}</span>` : ""}</td>
        <td>${num(t.age_s, 1)} s${idle}</td><td class="${cls}"><span aria-hidden="true">${icon}</span> ${esc(text)}${tags}</td>
        <td>${stmts}</td><td>${pinned}</td></tr>`;
    });
    const html = rows.length
      ? `<div class="table-wrap"><table><thead><tr><th>session</th><th>user</th><th>age</th><th>state</th><th>statements</th><th>pinned leader</th></tr></thead><tbody>${rows.join("")}</tbody></table></div>`
      : `<p class="empty">No open transactions.</p>`;
    if (html === txnKey) return;
    txnKey = html;
    $("#txns").innerHTML = html;
  }

  // --------------------------------------------------------------------- load
  const load = { running: false, stop: false };
  async function runLoad() {
    const btn = $("#btn-load"), out = $('[data-outcome="load"]');
    out.dataset.result = "1";
    if (load.running) { load.stop = true; return; }
    const seconds = Math.min(120, Math.max(1, Number($("#load-seconds").value) || 10));
    const clients = Math.min(64, Math.max(1, Number($("#load-clients").value) || 16));
    load.running = true; load.stop = false;
    btn.textContent = "■ Stop load"; btn.classList.remove("primary");
    out.className = "outcome"; out.textContent = "… creating table dashboard_load";
    const ddl = await api("/query", { query: "CREATE TABLE IF NOT EXISTS dashboard_load (id BIGINT AUTO_INCREMENT PRIMARY KEY, tag VARCHAR(64) NOT NULL UNIQUE, worker INT NOT NULL, n INT NOT NULL, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)" });
    if (!ddl.ok) {
      finishLoad(btn); out.className = "outcome bad";
      out.textContent = `✕ could not create dashboard_load: ${ddl.body.error || "HTTP " + ddl.status}`;
      return;
    }
    const run = Date.now().toString(36) + Math.random().toString(36).slice(2, 6);
    const lat = []; let okN = 0, errN = 0, lastErr = "";
    const t0 = performance.now(), end = t0 + seconds * 1000;
    const tick = setInterval(() => {
      const el = (performance.now() - t0) / 1000;
      out.textContent = `… ${el.toFixed(1)} / ${seconds} s · ${okN} writes · ${errN} errors`;
    }, 250);
    async function worker(w) {
      for (let i = 0; performance.now() < end && !load.stop; i++) {
        const r = await api("/query", { query: "INSERT INTO dashboard_load (tag, worker, n) VALUES (%s, %s, %s)", params: [`${run}-${w}-${i}`, w, i] });
        if (r.ok) { okN++; const l = r.body.latency_ms ?? r.ms; lat.push(l); state.localLat.push(l); }
        else { errN++; lastErr = r.body.error || `HTTP ${r.status}`; await new Promise((res) => setTimeout(res, r.status === 0 ? 500 : 100)); }
      }
    }
    await Promise.all(Array.from({ length: clients }, (_, w) => worker(w)));
    clearInterval(tick);
    const el = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    finishLoad(btn);
    out.className = errN && !okN ? "outcome bad" : "outcome ok";
    out.textContent = `${errN && !okN ? "✕" : "✓"} ${el.toFixed(1)} s × ${clients} clients: ${okN} writes (${num(okN / el, 0)}/s), ${errN} errors` +
      (lat.length ? ` · p50 ${ms(pct(lat, 0.5))}, p99 ${ms(pct(lat, 0.99))}` : "") + (lastErr ? ` · last error: ${lastErr}` : "");
  }
  function finishLoad(btn) {
    load.running = false;
    btn.textContent = "▶ Run load"; btn.classList.add("primary");
  }

  // --------------------------------------------------------------------- boot
  function boot() {
    setupCharts();
    setupControls();
    $("#console").addEventListener("submit", runQuery);
    $("#sql").addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) runQuery(e); });
    $$("[data-example]").forEach((b) => b.addEventListener("click", () => { $("#sql").value = EXAMPLES[b.dataset.example](); $("#sql").focus(); }));
    $("#ev-quiet").addEventListener("change", () => {
      const quiet = $("#ev-quiet").checked;
      $$("#events li").forEach((li) => { li.hidden = quiet && ROUTINE.test(li.dataset.kind); });
    });
    connect();
    startWatchdog();
    pollTxns();
    document.addEventListener("visibilitychange", () => { if (!document.hidden) pollTxns(); });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", boot); else boot();
})();
