// Small charts drawn by the page as SVG (no library, no CDN, no build step): a line chart
// over time and grouped bars. Colours and sizes are SVG attributes, not inline styles (the
// page's Content-Security-Policy allows no inline style).
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PALETTE = ["#e4393c", "#1a73e8", "#1a7f37", "#9a6700", "#8250df", "#0a7d8c", "#6b7480"];

function svgEl(name, attrs, text) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, String(v));
  if (text !== undefined) el.textContent = text;
  return el;
}

function niceMax(value) {
  // The axis' top: 1, 2 or 5 times a power of ten, at or above the largest value.
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

function legend(svg, names, x, y) {
  names.forEach((name, i) => {
    const left = x + i * 150;
    svg.append(svgEl("rect", { x: left, y: y - 9, width: 10, height: 10, fill: PALETTE[i % PALETTE.length] }));
    svg.append(svgEl("text", { x: left + 14, y, "font-size": 12, fill: "#1d232b", class: "legend" }, name));
  });
}

// series: [{name, points: [[epoch ms, value], ...]}]; label(ms) writes an x tick.
function lineChart(box, series, label, empty) {
  box.innerHTML = "";
  const width = 900, height = 230, left = 48, right = 12, top = 26, bottom = 28;
  const all = series.flatMap((s) => s.points);
  if (!all.length) {
    box.textContent = empty || "";
    box.classList.add("muted");
    return;
  }
  box.classList.remove("muted");
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "line-chart" });
  const xs = all.map((p) => p[0]);
  const x0 = Math.min(...xs), x1 = Math.max(...xs, x0 + 1);
  const yMax = niceMax(Math.max(...all.map((p) => p[1])));
  const x = (v) => left + ((v - x0) / (x1 - x0)) * (width - left - right);
  const y = (v) => top + (1 - v / yMax) * (height - top - bottom);
  for (let i = 0; i <= 4; i++) {  // horizontal grid with its values
    const v = (yMax * i) / 4;
    svg.append(svgEl("line", { x1: left, x2: width - right, y1: y(v), y2: y(v), stroke: "#e3e6ea" }));
    svg.append(svgEl("text", { x: left - 6, y: y(v) + 4, "font-size": 11, "text-anchor": "end", fill: "#6b7480" },
      Number.isInteger(v) ? v.toLocaleString() : v.toFixed(1)));
  }
  const ticks = Math.min(4, new Set(xs).size - 1);  // one moment alone: one tick
  for (let i = 0; i <= ticks; i++) {  // time ticks (the outer ones kept inside the picture)
    const v = ticks ? x0 + ((x1 - x0) * i) / ticks : x0;
    const anchor = i === 0 ? "start" : i === ticks ? "end" : "middle";
    svg.append(svgEl("text", { x: x(v), y: height - 8, "font-size": 11, "text-anchor": anchor, fill: "#6b7480" },
      label(v)));
  }
  series.forEach((s, i) => {
    if (!s.points.length) return;
    const d = s.points.map((p, k) => `${k ? "L" : "M"}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(" ");
    svg.append(svgEl("path", { d, fill: "none", stroke: PALETTE[i % PALETTE.length], "stroke-width": 2,
      class: "series", "data-name": s.name }));
    if (s.points.length <= 60) {  // few points (one alone draws no line): each one shows
      for (const p of s.points) {
        svg.append(svgEl("circle", { cx: x(p[0]).toFixed(1), cy: y(p[1]).toFixed(1), r: 3,
          fill: PALETTE[i % PALETTE.length], class: "point" }));
      }
    }
  });
  legend(svg, series.map((s) => s.name), left, 14);
  box.append(svg);
}

// groups: [{label, values: [n, ...]}] with one value per name in `names`.
function barChart(box, groups, names, empty) {
  box.innerHTML = "";
  if (!groups.length) {
    box.textContent = empty || "";
    box.classList.add("muted");
    return;
  }
  box.classList.remove("muted");
  const rowHeight = 18 * names.length + 10, left = 110, right = 60, top = 24;
  const width = 420, height = top + groups.length * rowHeight + 6;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", class: "bar-chart" });
  const max = niceMax(Math.max(...groups.flatMap((g) => g.values)));
  groups.forEach((g, row) => {
    const y0 = top + row * rowHeight;
    svg.append(svgEl("text", { x: left - 6, y: y0 + rowHeight / 2 + 2, "font-size": 12, "text-anchor": "end",
      fill: "#1d232b" }, g.label));
    g.values.forEach((v, i) => {
      const w = ((width - left - right) * v) / max;
      const y = y0 + i * 18;
      svg.append(svgEl("rect", { x: left, y, width: Math.max(w, 1), height: 14, fill: PALETTE[i % PALETTE.length],
        class: "bar", "data-label": g.label, "data-name": names[i], "data-value": v }));
      svg.append(svgEl("text", { x: left + w + 4, y: y + 11, "font-size": 11, fill: "#6b7480" }, v.toLocaleString()));
    });
  });
  legend(svg, names, 8, 14);
  box.append(svg);
}

function csvText(rows) {
  // RFC 4180: a field with a comma, quote or line break is quoted, its quotes doubled.
  const field = (v) => {
    const s = v === null || v === undefined ? "" : String(v);
    return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return rows.map((r) => r.map(field).join(",")).join("\r\n") + "\r\n";
}

function download(name, text, type) {
  // A file made in the page: a link to a blob, clicked once, then let go.
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement("a");
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}
