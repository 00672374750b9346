// The dashboard's tools on the watched campaign (a grant from a users file with its
// progress, redemption codes generated and exported once, budget top-ups), its pictures
// (the live minutes, the report as charts, CSV), and the settings (cap groups, blocklist).
"use strict";

const LIVE_SECONDS = 300;  // the live chart keeps the last five minutes the page has seen
let samples = [];          // [{at, granted, rejected: {reason: n}}], one a poll

function clock(ms) {
  return new Date(ms).toLocaleTimeString(LOCALE === "zh-CN" ? "zh-CN" : "en", { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

function minute(ms) {
  return new Date(ms).toLocaleTimeString(LOCALE === "zh-CN" ? "zh-CN" : "en", { hour: "2-digit", minute: "2-digit" });
}

function sample(data) {
  // One poll of the watched campaign: granted per second and rejections per second by
  // reason, from the differences between polls.
  const now = Date.now();
  samples.push({ at: now, granted: data.stats.granted, rejected: { ...data.stats.rejected } });
  samples = samples.filter((s) => s.at >= now - LIVE_SECONDS * 1000);
  const granted = { name: t("granted per second"), points: [] };
  const reasons = new Map();
  for (let i = 1; i < samples.length; i++) {
    const a = samples[i - 1], b = samples[i];
    const seconds = Math.max((b.at - a.at) / 1000, 0.001);
    granted.points.push([b.at, Math.max(0, (b.granted - a.granted) / seconds)]);
    for (const reason of new Set([...Object.keys(a.rejected), ...Object.keys(b.rejected)])) {
      if (!reasons.has(reason)) reasons.set(reason, { name: `${t(reason.replaceAll("_", " "))} /s`, points: [] });
      reasons.get(reason).points.push([b.at, Math.max(0, ((b.rejected[reason] || 0) - (a.rejected[reason] || 0)) / seconds)]);
    }
  }
  lineChart($("live-chart"), [granted, ...reasons.values()], clock, t("Gathering the first seconds…"));
}

function forgetSamples() { samples = []; }

let lastReport = null;  // the watched campaign's report, for the CSV

function showReport(data) {
  lastReport = data;
  const points = data.timeline.map((p) => Date.parse(p.at));
  lineChart($("report-timeline"), [
    { name: t("claims per minute"), points: data.timeline.map((p, i) => [points[i], p.claims]) },
    { name: t("uses per minute"), points: data.timeline.map((p, i) => [points[i], p.uses]) },
  ], minute, t("No claims in the ledger yet."));
  const names = [t("claims"), t("used")];
  const bars = (rows, key) => rows.map((r) => ({ label: r[key] || "–", values: [r.claims, r.used] }));
  barChart($("report-channel"), bars(data.by_channel, "channel"), names, t("none"));
  barChart($("report-segment"), bars(data.by_segment, "segment"), names, t("none"));
  barChart($("report-source"), bars(data.by_source, "source"), names, t("none"));
}

function reportCsv() {
  // The report as one table: the totals, each split, and the timeline.
  if (!lastReport) return;
  const r = lastReport;
  const head = ["dimension", "value", "claims", "coupons", "used", "use_rate", "expired", "discount_cost_fen"];
  const row = (dimension, value, f) => [dimension, value, f.claims, f.coupons, f.used,
    f.use_rate === null ? "" : f.use_rate, f.expired, Object.values(f.discount_cost).reduce((a, b) => a + b, 0)];
  const rows = [head, row("total", r.campaign_id, r)];
  for (const c of r.by_channel) rows.push(row("channel", c.channel, c));
  for (const s of r.by_segment) rows.push(row("segment", s.segment, s));
  for (const s of r.by_source) rows.push(row("source", s.source, s));
  rows.push([], ["minute", "claims", "uses"]);
  for (const p of r.timeline) rows.push([p.at, p.claims, p.uses]);
  download(`${r.campaign_id}-report.csv`, csvText(rows), "text/csv");
}

async function compareGroups(event) {
  // A holdout campaign's treatment against its control group, over the last days.
  if (event) event.preventDefault();
  if (!watched) return;
  const to = new Date(Date.now() + 60_000);
  const from = new Date(to.getTime() - Number($("uplift-days").value) * 86_400_000);
  const margin = (Number($("uplift-margin").value) / 100).toFixed(4).replace(/0+$/, "").replace(/\.$/, "");
  const query = new URLSearchParams({ from: from.toISOString(), to: to.toISOString(), margin });
  const { status, data } = await api("GET", `/v1/admin/campaigns/${encodeURIComponent(watched)}/uplift?${query}`);
  if (status !== 200) {
    note(data.message || t("The service answered {status}.", { status }), false);
    return;
  }
  const rows = $("uplift-groups");
  rows.innerHTML = "";
  for (const name of ["treatment", "control"]) {
    const g = data[name];
    const tr = document.createElement("tr");
    tr.dataset.group = name;
    const amount = (v) => (v === null ? "–" : money(v));
    [t(name), String(g.users), String(g.buyers), String(g.orders), amount(g.gmv), amount(g.gmv_per_user),
      amount(g.discount_cost), amount(g.profit), amount(g.profit_per_user)].forEach((text) => cell(tr, text));
    rows.append(tr);
  }
  $("uplift-answer").textContent = data.uplift_per_user === null ? t("Not enough users in both groups yet.")
    : t("Uplift per treated user: {uplift} (95% interval {low} to {high}).",
      { uplift: money(data.uplift_per_user), low: money(data.ci95[0]), high: money(data.ci95[1]) });
}

function usersOf(text) {
  // One user id a line, or a CSV whose first column is the user id (a header line is
  // skipped); a header naming a `value` column gives each user a personal value (yuan).
  const lines = text.split(/\r?\n/).map((line) => line.split(",").map((x) => x.trim().replace(/^"|"$/g, "")));
  const header = lines.length && lines[0][0].toLowerCase() === "user_id" ? lines.shift() : [];
  const valueAt = header.findIndex((h) => h.toLowerCase() === "value");
  return lines.filter((cols) => cols[0]).map((cols) => (valueAt > 0 && cols[valueAt]
    ? { user_id: cols[0], value: fen(cols[valueAt]) } : cols[0]));
}

async function grantFromFile(event) {
  event.preventDefault();
  const file = $("grant-users").files[0];
  if (!file || !watched) return;
  const users = usersOf(await file.text());
  if (!users.length) {
    note(t("The file names no users."), false);
    return;
  }
  const grantId = `file-${Date.now().toString(36)}`;
  const path = `/v1/admin/campaigns/${encodeURIComponent(watched)}/grants`;
  $("grant-progress").hidden = false;
  $("grant-progress").value = 0;
  for (let i = 0; i < users.length; i += 10000) {  // at most 10,000 users a call
    const { status, data } = await api("POST", path, { grant_id: grantId, users: users.slice(i, i + 10000) });
    if (status >= 400) {
      note(data.message || t("The service answered {status}.", { status }), false);
      return;
    }
  }
  $("grant-file").reset();
  followGrant(`${path}/${grantId}`);
}

async function followGrant(path) {
  // The grant's progress, until every user is decided.
  const { status, data } = await api("GET", path);
  if (status !== 200) return;
  $("grant-progress").max = Math.max(data.total, 1);
  $("grant-progress").value = data.processed;
  const outcomes = Object.entries(data.outcomes).map(([k, n]) => `${t(k.replaceAll("_", " "))} ${n}`).join(", ");
  $("grant-state").textContent = t("Grant {id}: {done} of {total} users decided ({outcomes}).",
    { id: data.grant_id, done: data.processed, total: data.total, outcomes: outcomes || "–" });
  if (data.state !== "done") setTimeout(() => followGrant(path), 300);
  else note(t("Grant {id} done.", { id: data.grant_id }), true);
}

async function makeCodes(event) {
  event.preventDefault();
  if (!watched) return;
  const { status, data } = await api("POST", `/v1/admin/campaigns/${encodeURIComponent(watched)}/codes`,
    { count: Number($("codes-count").value), uses_per_code: Number($("codes-uses").value) });
  if (status === 202) note(t("Generating {n} codes.", { n: data.count }), true);
  else note(data.message || t("The service answered {status}.", { status }), false);
  codeBatches();
}

async function codeBatches() {
  if (!watched || !token() || document.body.dataset.role === "viewer") return;
  const id = encodeURIComponent(watched);
  const { status, data } = await api("GET", `/v1/admin/campaigns/${id}/codes`);
  const list = $("code-batches");
  list.innerHTML = "";
  if (status !== 200) return;
  for (const b of data.batches) {
    const li = document.createElement("li");
    li.dataset.batch = b.batch_id;
    li.textContent = t("{count} codes, {uses} use(s) each: {state}", { count: b.count, uses: b.uses_per_code, state: t(b.state) });
    list.append(li);
  }
  if (data.batches.some((b) => b.state === "ready")) {
    const li = document.createElement("li");
    li.append(button("Export codes (once)", async () => {
      const response = await fetch(`/v1/admin/campaigns/${id}/codes.csv`,
        { headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" });
      if (response.status !== 200) {
        note(t("The service answered {status}.", { status: response.status }), false);
        return;
      }
      download(`${watched}-codes.csv`, await response.text(), "text/csv");
      note(t("Codes exported: they cannot be exported again."), true);
      codeBatches();
    }, false, "export-codes"));
    list.append(li);
  }
  if (data.batches.some((b) => b.state === "generating")) setTimeout(codeBatches, 500);
}

async function topUp(event) {
  event.preventDefault();
  if (!watched) return;
  act("POST", `/v1/admin/campaigns/${encodeURIComponent(watched)}/budget`,
    { delta: fen($("top-up-amount").value) }, t("Budget topped up."));
  $("top-up").reset();
}

function showCapGroups(groups) {
  const rows = $("cap-groups");
  rows.innerHTML = "";
  if (!groups.length) placeholder(rows, t("No cap groups."));
  for (const g of groups) {
    const tr = document.createElement("tr");
    tr.dataset.name = g.name;
    [g.name, g.max_unused === null ? "–" : String(g.max_unused), g.max_daily === null ? "–" : String(g.max_daily),
      g.timezone].forEach((text) => cell(tr, text));
    cell(tr, "").append(button("Delete", () => {
      if (confirm(t("Delete the cap group {name}?", { name: g.name }))) {
        act("DELETE", `/v1/admin/cap-groups/${encodeURIComponent(g.name)}`, undefined,
          t("Cap group {name} deleted.", { name: g.name })).then(capGroupChoices);
      }
    }, true, "admin-only"));
    rows.append(tr);
  }
}

async function saveCapGroup(event) {
  event.preventDefault();
  const body = {};
  if ($("cap-unused").value) body.max_unused = Number($("cap-unused").value);
  if ($("cap-daily").value) body.max_daily = Number($("cap-daily").value);
  const name = $("cap-name").value.trim();
  const { status, data } = await api("PUT", `/v1/admin/cap-groups/${encodeURIComponent(name)}`, body);
  if (status === 200 || status === 201) {
    note(t("Cap group {name} saved.", { name }), true);
    $("cap-group-form").reset();
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  capGroupChoices();
}

async function blocklist() {
  if (document.body.dataset.role !== "admin") return;
  const { status, data } = await api("GET", "/v1/admin/blocklist?limit=100");
  if (status !== 200) return;
  const rows = $("blocklist");
  rows.innerHTML = "";
  if (!data.blocked.length) placeholder(rows, t("Nobody is blocked."));
  for (const b of data.blocked) {
    const tr = document.createElement("tr");
    tr.dataset.user = b.user_id;
    [b.user_id, b.reason, new Date(b.blocked_at).toLocaleString()].forEach((text) => cell(tr, text));
    cell(tr, "").append(button("Unblock", () => act("DELETE", `/v1/admin/blocklist/${encodeURIComponent(b.user_id)}`,
      undefined, t("{user} unblocked.", { user: b.user_id })).then(blocklist), true));
    rows.append(tr);
  }
}

async function block(event) {
  event.preventDefault();
  const user = $("block-user").value.trim();
  const { status, data } = await api("PUT", `/v1/admin/blocklist/${encodeURIComponent(user)}`,
    { reason: $("block-reason").value });
  if (status < 300) {
    note(t("{user} blocked.", { user }), true);
    $("new-block").reset();
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  blocklist();
}

document.addEventListener("DOMContentLoaded", () => {
  $("grant-file").addEventListener("submit", grantFromFile);
  $("new-codes").addEventListener("submit", makeCodes);
  $("top-up").addEventListener("submit", topUp);
  $("report-csv").addEventListener("click", reportCsv);
  $("uplift-form").addEventListener("submit", compareGroups);
  $("cap-group-form").addEventListener("submit", saveCapGroup);
  $("new-block").addEventListener("submit", block);
});
