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
  if (response.status === 401) signedOut("The token was not accepted.");
  return { status: response.status, data };
}

function note(text, good) {
  $("note").textContent = text || "";
  $("note").className = `answer ${good ? "good" : "bad"}`;
}

function signedOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  $("desk").hidden = true;
  $("login").hidden = false;
  $("login-hint").hidden = false;
  $("logout").hidden = true;
  note(message || "", false);
}

function signedIn() {
  $("desk").hidden = false;
  $("login").hidden = true;
  $("login-hint").hidden = true;
  $("logout").hidden = false;
  note("");
  list();
}

function button(label, action, quiet) {
  const b = document.createElement("button");
  b.type = "button";
  b.textContent = label;
  if (quiet) b.className = "quiet";
  b.addEventListener("click", action);
  return b;
}

async function act(method, path, body, done) {
  const { status, data } = await api(method, path, body);
  if (status >= 400) note(data.message || `The service answered ${status}.`, false);
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
    const cells = [c.id, c.name, c.status.replace("_", " "), String(c.granted),
      c.remaining === null ? "unlimited" : String(c.remaining)];
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
        ? button("Resume", () => act("POST", `/v1/admin/campaigns/${id}/resume`, undefined, `${c.id} resumed.`))
        : button("Pause", () => act("POST", `/v1/admin/campaigns/${id}/pause`, undefined, `${c.id} paused.`)));
      if (c.stock !== null) {
        td.append(button("+100", () => act("POST", `/v1/admin/campaigns/${id}/stock`, { delta: 100 },
          `100 coupons added to ${c.id}.`), true));
      }
      td.append(button("End", () => {
        if (confirm(`End ${c.name} now?`)) act("POST", `/v1/admin/campaigns/${id}/end`, undefined, `${c.id} ended.`);
      }, true));
    }
    td.append(button("Watch", () => watch(c.id), true));
    tr.append(td);
    rows.append(tr);
  }
}

async function create(event) {
  event.preventDefault();
  const startsIn = Number($("new-start").value);
  const body = {
    name: $("new-name").value,
    stock: Number($("new-stock").value),
    per_user_limit: Number($("new-limit").value),
    coupons: [{ type: "cash", value: Math.round(Number($("new-value").value) * 100) }],
  };
  if ($("new-id").value.trim()) body.id = $("new-id").value.trim();
  if (startsIn > 0) body.starts_at = new Date(Date.now() + startsIn * 1000).toISOString();
  const { status, data } = await api("POST", "/v1/admin/campaigns", body);
  if (status === 201) {
    note(`Created ${data.id}.`, true);
    $("create").reset();  // the next campaign starts from the defaults, not this one
    watch(data.id);
  } else {
    note(data.message || `The service answered ${status}.`, false);
  }
  list();
}

function watch(id) {
  watched = id;
  last = null;
  ledgerView = null;
  $("live").hidden = false;
  poll();
  report();
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
  $("live-status").textContent = data.status.replace("_", " ");
  $("live-status").className = `status ${data.status}`;
  $("live-granted").textContent = granted.toLocaleString();
  $("live-remaining").textContent = data.remaining === null ? "unlimited" : data.remaining.toLocaleString();
  // Claim rate from the same moment as granted (Redis); only the use rate is the ledger's.
  $("live-claim-rate").textContent = data.stock ? percent(granted / data.stock) : "–";
  showLedger();
  const rejected = $("live-rejected");
  rejected.innerHTML = "";
  const reasons = Object.entries(data.stats.rejected);
  if (!reasons.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "none";
    rejected.append(li);
  }
  for (const [reason, n] of reasons) {
    const li = document.createElement("li");
    li.textContent = `${reason.replace("_", " ")}: ${n.toLocaleString()}`;
    rejected.append(li);
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
  $("live-ledger").textContent = `Use rate from the ledger as of ${ledgerView.at}: it holds ` +
    `${ledgerView.claims.toLocaleString()} claims` +
    (behind ? `, ${behind.toLocaleString()} of the granted not yet.` : ", all of the granted.");
}

async function report() {
  // The use rate comes from the ledger: read every 2 s.
  if (!watched || !token()) return;
  const { status, data } = await api("GET", `/v1/admin/campaigns/${encodeURIComponent(watched)}/report`);
  if (status !== 200) {
    $("live-use-rate").textContent = "–";
    ledgerView = null;
    showLedger();
    return;
  }
  $("live-use-rate").textContent = percent(data.use_rate);
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
  $("logout").addEventListener("click", () => signedOut("Token forgotten."));
  $("create").addEventListener("submit", create);
  if (token()) signedIn();
  setInterval(poll, 1000);
  setInterval(report, 2000);
  setInterval(() => { if (token()) list(); }, 1000);
});
