/* A tiny time-series line chart on <canvas>: crisp on HiDPI, resizes itself,
   series told apart by dash pattern + legend text, not colour alone. No dependencies. */
"use strict";

(function () {
  const PALETTE = ["#2f5bd3", "#c2410c", "#15803d", "#7c3aed", "#be185d", "#0e7490", "#57534e"];
  const DASHES = [[], [6, 4], [2, 3], [10, 3, 2, 3], [1, 5], [8, 8], [4, 2]];

  function niceMax(v) {
    if (!(v > 0)) return 1;
    const exp = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 4, 6, 8, 10]) if (m * exp >= v) return m * exp;
    return 10 * exp;
  }

  function fmt(v) {
    if (v == null || !isFinite(v)) return "–";
    const a = Math.abs(v);
    if (a >= 10000) return (v / 1000).toFixed(a >= 100000 ? 0 : 1) + "k";
    if (a >= 100) return v.toFixed(0);
    if (a >= 10) return v.toFixed(1).replace(/\.0$/, "");
    return v.toFixed(2).replace(/\.?0+$/, "") || "0";
  }

  function swatch(color, dash) {
    const d = dash.length ? ` stroke-dasharray="${dash.join(" ")}"` : "";
    return `<svg width="22" height="8" aria-hidden="true"><line x1="1" y1="4" x2="21" y2="4" stroke="${color}" stroke-width="2.2"${d}/></svg>`;
  }

  class LineChart {
    /* figure: element holding a <canvas> and a .legend; opts.windowS = seconds shown */
    constructor(figure, opts) {
      this.fig = figure;
      this.canvas = figure.querySelector("canvas");
      this.legend = figure.querySelector(".legend");
      this.opts = Object.assign({ windowS: 300, unit: "" }, opts || {});
      this.series = [];  // {key, label, color, dash, points: [[t, v]]}
      this.now = 0;
      this._queued = false;
      if (window.ResizeObserver) new ResizeObserver(() => this.draw()).observe(this.canvas);
    }

    setSeries(list) {
      /* list: [{key, label, points}] — colours and dashes follow the order */
      this.series = list.map((s, i) => Object.assign({ color: PALETTE[i % PALETTE.length], dash: DASHES[i % DASHES.length] }, s));
      this.renderLegend();
      this.draw();
    }

    renderLegend() {
      if (!this.legend) return;
      this.legend.innerHTML = this.series.map((s) => {
        // the latest value, or the most recent one seen when the series has paused (e.g. latency with no writes)
        let last = null;
        for (let i = s.points.length - 1; i >= 0 && i >= s.points.length - 20; i--) if (s.points[i][1] != null) { last = s.points[i][1]; break; }
        const val = last == null ? "–" : fmt(last) + (this.opts.unit ? " " + this.opts.unit : "");
        return `<span>${swatch(s.color, s.dash)}${escapeHtml(s.label)} <b>${val}</b></span>`;
      }).join("");
    }

    draw() {
      if (this._queued) return;
      this._queued = true;
      requestAnimationFrame(() => { this._queued = false; this._draw(); });
    }

    _draw() {
      const c = this.canvas;
      const w = c.clientWidth, h = c.clientHeight;
      if (!w || !h) return;
      const dpr = window.devicePixelRatio || 1;
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr); c.height = Math.round(h * dpr);
      }
      const g = c.getContext("2d");
      g.setTransform(dpr, 0, 0, dpr, 0, 0);
      g.clearRect(0, 0, w, h);
      const padL = 38, padR = 8, padT = 8, padB = 18;
      const pw = w - padL - padR, ph = h - padT - padB;
      const tEnd = this.now || Date.now() / 1000, tStart = tEnd - this.opts.windowS;
      let vmax = 0;
      for (const s of this.series) for (const [t, v] of s.points) if (t >= tStart && v != null && v > vmax) vmax = v;
      const ymax = niceMax(vmax * 1.1);
      const X = (t) => padL + ((t - tStart) / this.opts.windowS) * pw;
      const Y = (v) => padT + ph - (v / ymax) * ph;
      g.font = "11px system-ui, sans-serif";
      g.textBaseline = "middle";
      // grid + y labels
      g.strokeStyle = "#e9ecf1"; g.fillStyle = "#7b8496"; g.lineWidth = 1;
      for (let i = 0; i <= 4; i++) {
        const v = (ymax * i) / 4, y = Math.round(Y(v)) + 0.5;
        g.beginPath(); g.moveTo(padL, y); g.lineTo(padL + pw, y); g.stroke();
        g.textAlign = "right"; g.fillText(fmt(v), padL - 6, y);
      }
      // x labels: minutes ago
      g.textAlign = "center"; g.textBaseline = "top";
      const stepS = this.opts.windowS >= 240 ? 60 : this.opts.windowS >= 120 ? 30 : 15;
      for (let ago = 0; ago <= this.opts.windowS; ago += stepS) {
        const x = X(tEnd - ago);
        g.fillText(ago === 0 ? "now" : (ago % 60 === 0 ? `−${ago / 60}m` : `−${ago}s`), Math.min(Math.max(x, padL + 10), padL + pw - 12), padT + ph + 4);
      }
      // series
      g.save();
      g.beginPath(); g.rect(padL, padT - 2, pw, ph + 4); g.clip();
      g.lineJoin = "round"; g.lineCap = "round";
      for (const s of this.series) {
        g.strokeStyle = s.color; g.lineWidth = 1.8; g.setLineDash(s.dash);
        g.beginPath();
        let pen = false, prevT = null, run = 0;
        const lone = [];  // points with no neighbour get a dot, or they would not show at all
        let last = null;
        for (const [t, v] of s.points) {
          if (t < tStart - 2) continue;
          // a gap in the data (coordinator restarted, tab asleep) breaks the line
          if (v == null || (prevT !== null && t - prevT > 5)) {
            if (run === 1 && last) lone.push(last);
            pen = false; run = 0;
            if (v == null) { prevT = t; continue; }
          }
          const x = X(t), y = Y(v);
          if (pen) g.lineTo(x, y); else { g.moveTo(x, y); pen = true; }
          prevT = t; run++; last = [x, y];
        }
        if (run === 1 && last) lone.push(last);
        g.stroke();
        g.fillStyle = s.color;
        for (const [x, y] of lone) { g.beginPath(); g.arc(x, y, 2.4, 0, Math.PI * 2); g.fill(); }
      }
      g.restore();
      g.setLineDash([]);
      g.strokeStyle = "#cfd4dd";
      g.beginPath(); g.moveTo(padL + 0.5, padT); g.lineTo(padL + 0.5, padT + ph + 0.5); g.lineTo(padL + pw, padT + ph + 0.5); g.stroke();
    }
  }

  function escapeHtml(s) {
    return String(s).replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[ch]));
  }

  window.QCharts = { LineChart, fmt, escapeHtml, PALETTE, DASHES };
})();
