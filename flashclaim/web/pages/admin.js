// The operator dashboard: the admin token entered once (kept in sessionStorage, never in a
// URL), the campaigns with their actions, and a live view of one campaign polled every
// second. Every action is a call to the admin API.
"use strict";

const $ = (id) => document.getElementById(id);
const TOKEN_KEY = "flashclaim-admin-token";
let watched = null;                 // campaign id of the live view
let last = null;                    // {granted, at} of the previous poll, for the rate

function token() { return sessionStorage.getItem(TOKEN_KEY) || ""; }

async function api(method, path, body) {
  const init = { method, headers: { Authorization: `Bearer ${token()}` }, cache: "no-store" };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  let data = {};
  try { data = await response.json(); } catch (_) { data = {}; }
  if (response.status === 401) signedOut(t("The token was not accepted."));
  return { status: response.status, data };
}

function note(text, good) {
  $("note").textContent = text || "";
  $("note").className = `answer ${good ? "good" : "bad"}`;
}

function signedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  delete document.body.dataset.role;
  $("who").textContent = "";
  $("desk").hidden = true;
  $("login").hidden = false;
  $("login-hint").hidden = false;
  $("logout").hidden = true;
  note(message || "", false);
}

async function whoami() {
  // The role decides what the page offers (the API decides what is allowed).
  const { status, data } = await api("GET", "/v1/admin/whoami");
  if (status !== 200) return;
  document.body.dataset.role = data.role;
  $("who").textContent = `${data.name} (${data.role})`;
}

async function tokens() {
  if (document.body.dataset.role !== "admin") return;
  const { status, data } = await api("GET", "/v1/admin/tokens");
  if (status !== 200) return;
  const rows = $("tokens");
  rows.innerHTML = "";
  for (const t of data.tokens) {
    const tr = document.createElement("tr");
    tr.dataset.name = t.name;
    [t.name, t.role, new Date(t.created_at).toLocaleString()].forEach((text) => cell(tr, text));
    cell(tr, "").append(button("Revoke", () => {
      if (confirm(`Revoke the token ${t.name}?`)) {
        act("DELETE", `/v1/admin/tokens/${encodeURIComponent(t.name)}`, undefined,
          t("Token {name} revoked.", { name: t.name })).then(tokens);
      }
    }, true));
    rows.append(tr);
  }
}

async function addToken(event) {
  event.preventDefault();
  const { status, data } = await api("POST", "/v1/admin/tokens",
    { name: $("token-name").value.trim(), role: $("token-role").value });
  if (status === 201) {
    $("token-made").textContent = t("Token {name} ({role}), shown this once: {token}",
      { name: data.name, role: data.role, token: data.token });
    $("new-token").reset();
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  tokens();
}

function signedIn() {
  whoami().then(tokens);
  $("desk").hidden = false;
  $("login").hidden = true;
  $("login-hint").hidden = true;
  $("logout").hidden = false;
  note("");
  list();
  alerts();
  rules();
  webhooks();
  triggers();
  templates();
  capGroupChoices();
  whoami().then(blocklist);
}

function button(label, action, quiet, cls) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = t(label);
  b.className = [quiet ? "quiet" : "", cls || ""].join(" ").trim();
  b.addEventListener("click", action);
  return b;
}

async function act(method, path, body, done) {
  const { status, data } = await api(method, path, body);
  if (status >= 400) note(data.message || t("The service answered {status}.", { status }), false);
  else note(done, true);
  list();
  if (watched) poll();
}

async function list() {
  const { status, data } = await api("GET", "/v1/admin/campaigns?limit=100");
  if (status !== 200) return;
  const rows = $("campaigns");
  rows.innerHTML = "";
  for (const c of data.campaigns.slice().reverse()) {  // newest first
    const tr = document.createElement("tr");
    tr.dataset.id = c.id;
    const cells = [c.id, c.name, t(c.status.replace("_", " ")), String(c.granted),
      c.remaining === null ? t("unlimited") : String(c.remaining)];
    for (const text of cells) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.append(td);
    }
    const td = document.createElement("td");
    td.className = "actions";
    const id = encodeURIComponent(c.id);
    if (c.status !== "ended") {
      td.append(c.status === "paused"
        ? button("Resume", () => act("POST", `/v1/admin/campaigns/${id}/resume`, undefined, t("{id} resumed.", { id: c.id })), false, "write")
        : button("Pause", () => act("POST", `/v1/admin/campaigns/${id}/pause`, undefined, t("{id} paused.", { id: c.id })), false, "write"));
      if (c.stock !== null) {
        td.append(button("+100", () => act("POST", `/v1/admin/campaigns/${id}/stock`, { delta: 100 },
          t("100 coupons added to {id}.", { id: c.id })), true, "write"));
      }
      td.append(button("End", () => {
        if (confirm(t("End {name} now?", { name: c.name }))) act("POST", `/v1/admin/campaigns/${id}/end`, undefined, t("{id} ended.", { id: c.id }));
      }, true, "write"));
    }
    td.append(button("Watch", () => watch(c.id), true));
    tr.append(td);
    rows.append(tr);
  }
}

function watch(id) {
  watched = id;
  last = null;
  ledgerView = null;
  lastReport = null;
  forgetSamples();
  $("grant-state").textContent = "";
  $("grant-progress").hidden = true;
  $("live").hidden = false;
  $("uplift-groups").innerHTML = "";
  $("uplift-answer").textContent = "";
  poll();
  report();
  history();
  codeBatches();
}

function percent(x) { return x === null || x === undefined ? "–" : `${(x * 100).toFixed(1)}%`; }

async function poll() {
  if (!watched || !token()) return;
  const { status, data } = await api("GET", `/v1/admin/campaigns/${encodeURIComponent(watched)}`);
  if (status !== 200) return;
  const now = performance.now();
  const granted = data.stats.granted;
  if (last) {
    const perSecond = (granted - last.granted) / ((now - last.at) / 1000);
    $("live-rate").textContent = Math.max(0, Math.round(perSecond)).toLocaleString();
  }
  last = { granted, at: now };
  $("live-name").textContent = data.name;
  $("live-status").textContent = t(data.status.replace("_", " "));
  $("live-status").className = `status ${data.status}`;
  $("live-granted").textContent = granted.toLocaleString();
  $("live-remaining").textContent = data.remaining === null ? t("unlimited") : data.remaining.toLocaleString();
  // Claim rate from the same moment as granted (Redis); only the use rate is the ledger's.
  $("live-claim-rate").textContent = data.stock ? percent(granted / data.stock) : "–";
  const budget = data.stats.budget;
  $("live-budget-box").hidden = !budget;
  $("budget-tool").hidden = !budget;
  if (budget) {
    $("live-budget").textContent = money(budget.remaining);
    $("live-budget").title = t("{committed} of {amount} committed", { committed: money(budget.committed), amount: money(budget.amount) });
  }
  $("uplift").hidden = !data.holdout;
  sample(data);
  showLedger();
  showFairness(data);
  const rejected = $("live-rejected");
  rejected.innerHTML = "";
  const reasons = Object.entries(data.stats.rejected);
  if (!reasons.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("none");
    rejected.append(li);
  }
  for (const [reason, n] of reasons) {
    const li = document.createElement("li");
    li.textContent = `${t(reason.replaceAll("_", " "))}: ${n.toLocaleString()}`;
    rejected.append(li);
  }
}

function showFairness(c) {
  // The campaign's defences, and a drawn campaign's draw: how anyone can check it.
  const defences = [];
  if (c.per_device_limit) {
    defences.push(t("{n} per device (missing id: {missing})", { n: c.per_device_limit, missing: t(c.missing_device) }));
  }
  if (c.challenge) defences.push(t("proof of work, {bits} bits", { bits: c.challenge.difficulty }));
  if (c.cap_group) defences.push(t("cap group {name}", { name: c.cap_group }));
  if (c.holdout) defences.push(t("holdout {percent}% (control group)", { percent: c.holdout.percent }));
  $("live-fair").textContent = defences.length ? t("Defences: {list}.", { list: defences.join("; ") }) : "";
  $("live-draw").hidden = !c.draw;
  if (!c.draw) {
    $("draw-seed").textContent = "";
    return;
  }
  $("draw-state").textContent = t(c.draw.state);
  $("draw-entrants").textContent = c.draw.entrants.toLocaleString();
  $("draw-winners").textContent = c.draw.winners.toLocaleString();
  $("draw-seed").textContent = c.draw.seed
    ? t("Seed {seed} (SHA-256 {sha}): the winners are the {stock} entrants of the smallest " +
      "HMAC-SHA256(seed, user id), from the entries export.",
    { seed: c.draw.seed, sha: c.draw.seed_sha256, stock: c.stock })
    : t("Seed SHA-256 {sha}; the seed is published once drawn at {at}.",
      { sha: c.draw.seed_sha256, at: new Date(c.draw.draw_at).toLocaleTimeString() });
}

function cell(tr, text) {
  const td = document.createElement("td");
  td.textContent = text;
  tr.append(td);
  return td;
}

async function alerts() {
  if (!token()) return;
  const { status, data } = await api("GET", "/v1/admin/alerts?limit=50");
  if (status !== 200) return;
  const rows = $("alerts");
  rows.innerHTML = "";
  const total = Object.values(data.counts).reduce((a, b) => a + b, 0);
  $("alert-total").textContent = total ? `(${total} raised)` : "";
  if (!data.alerts.length) {
    const tr = document.createElement("tr");
    cell(tr, t("No alerts.")).colSpan = 6;
    rows.append(tr);
  }
  for (const a of data.alerts) {
    const tr = document.createElement("tr");
    tr.className = "alert";
    tr.dataset.rule = a.rule;
    cell(tr, new Date(a.raised_at).toLocaleTimeString());
    cell(tr, `${a.rule}: ${a.watches}`);
    cell(tr, a.evidence.campaign_id ? `${a.subject} (${a.evidence.campaign_id})` : a.subject);
    cell(tr, t("{count} > {threshold} in {s} s", { count: a.count, threshold: a.threshold, s: a.window_s }));
    cell(tr, a.users.join(", ") || "–");
    cell(tr, a.blocked ? t("yes") : t("no"));
    rows.append(tr);
  }
}

async function rules() {
  if (!token()) return;
  const { status, data } = await api("GET", "/v1/admin/alert-rules");
  if (status !== 200) return;
  const rows = $("rules");
  rows.innerHTML = "";
  for (const r of data.rules) {
    const tr = document.createElement("tr");
    tr.dataset.rule = r.rule;
    cell(tr, r.rule);
    cell(tr, r.watches);
    const input = (value, min) => {
      const i = document.createElement("input");
      i.type = "number";
      i.min = String(min);
      i.value = String(value);
      return i;
    };
    const threshold = input(r.threshold, 1);
    threshold.className = "threshold";
    const windowS = input(r.window_s, 1);
    cell(tr, "").append(threshold);
    cell(tr, "").append(windowS);
    const block = document.createElement("input");
    block.type = "checkbox";
    block.className = "block";
    block.checked = r.block;
    cell(tr, "").append(block);
    cell(tr, "").append(button("Save", async () => {
      const body = { threshold: Number(threshold.value), window_s: Number(windowS.value),
                     block: block.checked };
      const { status: s2, data: d2 } = await api("PUT",
        `/v1/admin/alert-rules/${encodeURIComponent(r.rule)}`, body);
      if (s2 === 200) note(t("Rule {rule} saved.", { rule: r.rule }), true);
      else note(d2.message || t("The service answered {status}.", { status: s2 }), false);
      rules();
    }, true));
    rows.append(tr);
  }
}

function placeholder(rows, text) {
  const tr = document.createElement("tr");
  cell(tr, text).colSpan = 6;
  tr.className = "muted";
  rows.append(tr);
}

async function webhooks() {
  // Each endpoint with its waiting events, its last attempts (status, ms) and dead letters.
  if (!token()) return;
  const { status, data } = await api("GET", "/v1/admin/webhooks");
  if (status !== 200) return;
  const rows = $("webhooks");
  rows.innerHTML = "";
  if (!data.webhooks.length) placeholder(rows, t("No webhooks."));
  for (const w of data.webhooks) {
    const got = await api("GET", `/v1/admin/webhooks/${encodeURIComponent(w.id)}/deliveries?limit=5`);
    const d = got.status === 200 ? got.data : { deliveries: [], waiting: 0, dead: [] };
    const tr = document.createElement("tr");
    tr.dataset.id = w.id;
    cell(tr, `${w.url} (${w.id})`);
    cell(tr, w.events.join(", "));
    cell(tr, String(d.waiting));
    cell(tr, d.deliveries.map((x) => `${x.type} ${x.status || x.error} ${x.ms} ms`).join("; ") || "–");
    cell(tr, String(d.dead.length));
    cell(tr, "").append(button("Delete", () => {
      if (confirm(`Delete the webhook to ${w.url}?`)) {
        act("DELETE", `/v1/admin/webhooks/${encodeURIComponent(w.id)}`, undefined, t("Webhook deleted."))
          .then(webhooks);
      }
    }, true, "admin-only"));
    rows.append(tr);
  }
}

async function addWebhook(event) {
  event.preventDefault();
  const events = $("webhook-events").value.split(",").map((x) => x.trim()).filter(Boolean);
  const { status, data } = await api("POST", "/v1/admin/webhooks", { url: $("webhook-url").value, events });
  if (status === 201) {
    $("webhook-secret").textContent = t("Webhook {id} added. Its signing secret, shown this once: {secret}",
      { id: data.id, secret: data.secret });
    $("new-webhook").reset();
    note("", true);
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  webhooks();
}

function words(obj) {
  return Object.entries(obj).map(([k, v]) => `${k} ${Array.isArray(v) ? v.join("/") : v}`).join(", ") || "always";
}

async function triggers() {
  if (!token()) return;
  const rules = await api("GET", "/v1/admin/rules");
  if (rules.status === 200) {
    const rows = $("trigger-rules");
    rows.innerHTML = "";
    if (!rules.data.rules.length) placeholder(rows, t("No rules."));
    for (const r of rules.data.rules) {
      const tr = document.createElement("tr");
      tr.dataset.rule = r.rule_id;
      [r.rule_id, r.on, words(r.when), r.grant.campaign_ids.join(", "), r.to,
        String(r.grants_made)].forEach((text) => cell(tr, text));
      rows.append(tr);
    }
  }
  const schedules = await api("GET", "/v1/admin/schedules");
  if (schedules.status === 200) {
    const rows = $("schedules");
    rows.innerHTML = "";
    if (!schedules.data.schedules.length) placeholder(rows, t("No schedules."));
    for (const x of schedules.data.schedules) {
      const tr = document.createElement("tr");
      tr.dataset.schedule = x.schedule_id;
      const who = x.segment.users ? `${x.segment.users.length} users`
        : x.segment.event_type ? `senders of ${x.segment.event_type}`
          : `inactive ${x.segment.inactive_days} days`;
      [x.schedule_id, x.campaign_id, `${words(x.every)} (${x.timezone})`, who, String(x.runs),
        x.next_run ? new Date(x.next_run).toLocaleString() : "–"].forEach((text) => cell(tr, text));
      rows.append(tr);
    }
  }
}

let ledgerView = null;  // {claims, at} of the last report read from the ledger

function showLedger() {
  // The use rate is the ledger's: say how far it has got, against the live granted count.
  if (!ledgerView || !last) {
    $("live-ledger").textContent = "";
    return;
  }
  const behind = Math.max(0, last.granted - ledgerView.claims);
  $("live-ledger").textContent = behind
    ? t("Use rate from the ledger as of {at}: it holds {claims} claims, {behind} of the granted not yet.",
      { at: ledgerView.at, claims: ledgerView.claims.toLocaleString(), behind: behind.toLocaleString() })
    : t("Use rate from the ledger as of {at}: it holds {claims} claims, all of the granted.",
      { at: ledgerView.at, claims: ledgerView.claims.toLocaleString() });
}

async function history() {
  // Who changed the watched campaign, how, with what result (the audit log), newest first.
  if (!watched || !token()) return;
  const { status, data } = await api("GET",
    `/v1/admin/audit?campaign=${encodeURIComponent(watched)}&limit=20`);
  if (status !== 200) return;
  const list = $("live-history");
  list.innerHTML = "";
  if (!data.entries.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("No changes yet.");
    list.append(li);
  }
  for (const e of data.entries) {
    const li = document.createElement("li");
    const what = e.body ? ` ${JSON.stringify(e.body)}` : "";
    li.textContent = `${new Date(e.at).toLocaleString()}: ${e.actor} (${e.role}) ` +
      `${e.method} ${e.path}${what} → ${e.status}`;
    list.append(li);
  }
}

async function report() {
  // The use rate comes from the ledger: read every 2 s.
  if (!watched || !token()) return;
  const { status, data } = await api("GET", `/v1/admin/campaigns/${encodeURIComponent(watched)}/report?bucket=minute`);
  if (status !== 200) {
    $("live-use-rate").textContent = "–";
    ledgerView = null;
    showLedger();
    return;
  }
  $("live-use-rate").textContent = percent(data.use_rate);
  showReport(data);
  ledgerView = { claims: data.claims, at: new Date(data.server_time).toLocaleTimeString() };
  showLedger();
}

document.addEventListener("DOMContentLoaded", () => {
  $("login").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
    $("token").value = "";
    signedIn();
  });
  $("logout").addEventListener("click", () => signedOut(t("Token forgotten.")));
  if (token()) signedIn();
  setInterval(poll, 1000);
  setInterval(report, 2000);
  setInterval(history, 2000);
  setInterval(alerts, 2000);
  setInterval(webhooks, 2000);
  setInterval(triggers, 5000);
  $("new-webhook").addEventListener("submit", addWebhook);
  $("new-token").addEventListener("submit", addToken);
  setInterval(() => { if (token()) list(); }, 1000);
});
