// The coupon centre: campaigns with a countdown on the server's clock, a grab button,
// a code box and the user's wallet. Every action is a call to the JSON API.
"use strict";

const $ = (id) => document.getElementById(id);
let skewMs = 0;             // server clock minus this browser's clock
let campaigns = [];
const answers = new Map();  // campaign id -> last answer shown on its card

const ANSWERS = {
  already_claimed: "Already claimed: you hold this coupon.",
  sold_out: "Sold out.",
  not_eligible: "Not eligible for this campaign.",
  rate_limited: "Too fast: try again in a moment.",
  paused: "Paused for now.",
  not_started: "Not started yet.",
  ended: "This campaign has ended.",
  blocked: "This account cannot claim coupons.",
  daily_limit: "Daily limit reached: try again tomorrow.",
  unauthenticated: "Enter a user id first.",
  code_not_found: "No such code.",
  code_used: "This code has been used up.",
  code_already_redeemed: "You have already redeemed this code.",
};

function serverNow() { return Date.now() + skewMs; }

function learnClock(body) {
  if (body && body.server_time) skewMs = Date.parse(body.server_time) - Date.now();
}

function describe(coupon) {
  const money = (cents) => (cents / 100).toFixed(cents % 100 ? 2 : 0);
  if (coupon.type === "cash") return `¥${money(coupon.value)} off`;
  if (coupon.type === "threshold") return `¥${money(coupon.value)} off ¥${money(coupon.min_spend)}`;
  if (coupon.type === "discount") return `${coupon.percent_off}% off (up to ¥${money(coupon.max_discount)})`;
  return coupon.type;
}

function userHeaders() {
  const user = $("user").value.trim();
  return user ? { "X-User-Id": user } : {};
}

async function call(method, path, { body, headers } = {}) {
  const init = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(path, init);
  let data = null;
  try { data = await response.json(); } catch (_) { data = null; }
  learnClock(data);
  return { status: response.status, data: data || {}, retryAfter: response.headers.get("Retry-After") };
}

function countdown(ms) {
  const s = Math.max(0, Math.ceil(ms / 1000));
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(sec)}` : `${pad(m)}:${pad(sec)}`;
}

function statusNow(c) {
  // The server's status, moved on by the clock: a countdown that reaches zero is live.
  if (c.status === "scheduled" && serverNow() >= Date.parse(c.starts_at)) return "live";
  if (c.ends_at && serverNow() >= Date.parse(c.ends_at)) return "ended";
  return c.status;
}

function card(c) {
  const el = document.createElement("article");
  el.className = "card";
  el.dataset.id = c.id;
  const title = document.createElement("h3");
  title.textContent = c.name;
  const coupon = document.createElement("div");
  coupon.className = "coupon";
  coupon.textContent = c.coupons.map(describe).join(" + ");
  const status = document.createElement("div");
  status.className = "status";
  const stock = document.createElement("div");
  stock.className = "muted stock";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = "Grab";
  button.addEventListener("click", () => grab(c.id));
  const answer = document.createElement("p");
  answer.className = "answer";
  answer.setAttribute("role", "status");
  el.append(title, coupon, status, stock, button, answer);
  return el;
}

function paint() {
  const box = $("campaigns");
  if (!campaigns.length) {
    box.innerHTML = "";
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No campaigns right now.";
    box.append(p);
    return;
  }
  const ids = campaigns.map((c) => c.id).join(",");
  if (box.dataset.ids !== ids) {  // rebuild only when the set of campaigns changes
    box.innerHTML = "";
    campaigns.forEach((c) => box.append(card(c)));
    box.dataset.ids = ids;
  }
  for (const c of campaigns) {
    const el = box.querySelector(`[data-id="${CSS.escape(c.id)}"]`);
    const status = statusNow(c);
    const label = el.querySelector(".status");
    label.className = `status ${status}`;
    label.textContent = status === "scheduled"
      ? `starts in ${countdown(Date.parse(c.starts_at) - serverNow())}`
      : status.replace("_", " ");
    el.querySelector(".stock").textContent = c.stock === null
      ? "unlimited stock" : `${c.remaining} of ${c.stock} left`;
    el.querySelector("button").disabled = status !== "live";
    const shown = answers.get(c.id);
    const answer = el.querySelector(".answer");
    answer.textContent = shown ? shown.text : "";
    answer.className = `answer ${shown ? (shown.good ? "good" : "bad") : ""}`;
  }
}

async function load() {
  const { status, data } = await call("GET", "/v1/campaigns");
  if (status !== 200) {
    $("note").textContent = data.message || `The service answered ${status}.`;
    return;
  }
  $("note").textContent = "";
  // The list holds scheduled and live campaigns only; one shown here that left it (sold
  // out, paused, ended) keeps its card, with its status read on its own.
  const listed = new Set(data.campaigns.map((c) => c.id));
  const gone = campaigns.filter((c) => !listed.has(c.id));
  const kept = [];
  for (const c of gone) {
    const one = await call("GET", `/v1/campaigns/${encodeURIComponent(c.id)}`);
    if (one.status === 200) kept.push(one.data);
  }
  campaigns = [...data.campaigns, ...kept];
  paint();
}

function explain(status, data, retryAfter) {
  if (status === 201 || status === 200) {
    const coupons = (data.coupons || []).map(describe).join(" + ");
    return { good: true, text: `Granted: ${coupons}.` };
  }
  let text = ANSWERS[data.error] || data.message || `The service answered ${status}.`;
  if (data.error === "rate_limited" && retryAfter) text = `Too fast: try again in ${retryAfter}s.`;
  return { good: false, text };
}

async function grab(id) {
  if (!$("user").value.trim()) {
    answers.set(id, { good: false, text: ANSWERS.unauthenticated });
    paint();
    return;
  }
  const key = crypto.randomUUID();  // one per tap: a retried tap cannot be granted twice
  const { status, data, retryAfter } = await call("POST",
    `/v1/campaigns/${encodeURIComponent(id)}/claims`,
    { body: { channel: "web" }, headers: { ...userHeaders(), "Idempotency-Key": key } });
  answers.set(id, explain(status, data, retryAfter));
  paint();
  load();
  wallet();
}

async function redeem(event) {
  event.preventDefault();
  const out = $("redeem-answer");
  if (!$("user").value.trim()) {
    out.textContent = ANSWERS.unauthenticated;
    out.className = "answer bad";
    return;
  }
  const { status, data, retryAfter } = await call("POST", "/v1/redemptions",
    { body: { code: $("code").value, channel: "web" }, headers: userHeaders() });
  const shown = explain(status, data, retryAfter);
  out.textContent = shown.text;
  out.className = `answer ${shown.good ? "good" : "bad"}`;
  wallet();
}

async function wallet() {
  const list = $("coupons");
  if (!$("user").value.trim()) return;
  const { status, data } = await call("GET", "/v1/me/coupons", { headers: userHeaders() });
  list.innerHTML = "";
  const item = (text, cls) => {
    const li = document.createElement("li");
    li.textContent = text;
    if (cls) li.className = cls;
    list.append(li);
  };
  if (status !== 200) {
    item(data.message || `The wallet is not available (${status}).`, "muted");
    return;
  }
  if (!data.coupons.length) item("No coupons yet (a new one shows within a second or so).", "muted");
  for (const c of data.coupons) {
    const until = new Date(c.valid_until).toLocaleDateString();
    item(`${c.campaign_name || c.campaign_id}: ${describe(c)}, ${c.status}, valid until ${until}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("user").value = sessionStorage.getItem("flashclaim-user") || "";
  $("user").addEventListener("change", () => {
    sessionStorage.setItem("flashclaim-user", $("user").value.trim());
    wallet();
  });
  $("redeem").addEventListener("submit", redeem);
  $("wallet-refresh").addEventListener("click", wallet);
  load();
  wallet();
  setInterval(paint, 250);   // countdowns
  setInterval(load, 2000);   // stock and status
});
