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
  device_required: "This campaign needs the app's device id.",
  device_limit: "This device's accounts already hold this coupon.",
  challenge_required: "The puzzle was not solved; tap again.",
  challenge_invalid: "The puzzle's answer was not accepted; tap again.",
  challenge_spent: "That puzzle was used already; tap again.",
  draw_campaign: "This campaign is drawn: enter the draw.",
  entries_closed: "The draw's entries are closed.",
  budget_exhausted: "This campaign's budget is spent.",
  holdout: "This offer is not for you this time.",
  cap_reached: "You hold as many of these coupons as allowed: use one first.",
  cap_daily_limit: "Today's limit reached: try again tomorrow.",
};
const DRAW_RESULT = {
  pending: "You are in the draw.",
  won: "You won! The coupon is in your wallet.",
  lost: "Not drawn this time.",
};

function serverNow() { return Date.now() + skewMs; }

function learnClock(body) {
  if (body && body.server_time) skewMs = Date.parse(body.server_time) - Date.now();
}

const USER_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;  // what the service accepts as a user id
const NOT_NOW = {  // why a card's grab button is off for this user
  already_claimed: "You hold this coupon.",
  daily_limit: "Today's limit reached: try again tomorrow.",
  not_eligible: "Not available to you.",
  blocked: "This account cannot claim coupons.",
};

function money(minor, currency) {
  if (LOCALE === "zh-CN") return localMoney(minor, currency);
  const amount = (minor / 100).toFixed(minor % 100 ? 2 : 0);
  return currency && currency !== "CNY" ? `${amount} ${currency}` : `¥${amount}`;
}

function describe(coupon) {
  const cur = coupon.currency;
  if (coupon.type === "cash") return t("{amount} off", { amount: money(coupon.value, cur) });
  if (coupon.type === "threshold") {
    return t("{amount} off {min}", { amount: money(coupon.value, cur), min: money(coupon.min_spend, cur) });
  }
  if (coupon.type === "discount") {
    return t("{percent}% off (up to {max})", { percent: coupon.percent_off, max: money(coupon.max_discount, cur) });
  }
  if (coupon.type === "gift") {
    return t(coupon.fulfilment === "pickup" ? "A free {sku} (pick up in store)" : "A free {sku}", { sku: coupon.sku });
  }
  if (coupon.type === "trade_up") {
    return t("{sku} for {price} when you spend {min}", { sku: coupon.sku, price: money(coupon.price, cur), min: money(coupon.min_spend, cur) });
  }
  if (coupon.type === "random_cash") {  // a blind box: the range its draws come from
    const values = coupon.values.map((v) => v.value);
    return t("A surprise {low} to {high} off", { low: money(Math.min(...values), cur), high: money(Math.max(...values), cur) });
  }
  return coupon.type;
}

function scopeWords(scope) {
  // A coupon's scope in plain words: what it applies to, and what it leaves out.
  if (!scope || typeof scope !== "object") return "";
  const list = (key) => (Array.isArray(scope[key]) ? scope[key] : []);
  const parts = [];
  const on = [...list("categories"), ...list("skus"), ...list("merchants").map((m) => `shop ${m}`)];
  if (on.length) parts.push(`on ${on.join(", ")}`);
  const off = [...list("exclude_categories"), ...list("exclude_skus")];
  if (off.length) parts.push(`not on ${off.join(", ")}`);
  return parts.join("; ");
}

function rulesWords(coupon) {
  // Where and with what a coupon may be used, in plain words (its amounts aside).
  const parts = [];
  const scope = scopeWords(coupon.scope);
  if (scope) parts.push(scope);
  if (Array.isArray(coupon.use_channels) && coupon.use_channels.length) {
    parts.push(`only ${coupon.use_channels.join(", ")}`);
  }
  const stacking = coupon.stacking || { group: "platform", exclusive: false };
  parts.push(stacking.exclusive ? "combines with no other coupon"
    : `one ${stacking.group} coupon an order`);
  return parts.join("; ");
}

// The sample cart of "Try a cart": a few items, amounts in fen.
const SAMPLE_CART = [
  { sku: "pork-500g", name: "Pork belly 500 g", category: "肉蛋水产", merchant: "fresh-mart", unit_price: 3000, quantity: 2 },
  { sku: "apples-1kg", name: "Apples 1 kg", category: "fruit", merchant: "fresh-mart", unit_price: 1200, quantity: 1 },
  { sku: "rice-5kg", name: "Rice 5 kg", category: "grain", merchant: "grain-shop", unit_price: 4500, quantity: 1 },
  { sku: "gift-card-50", name: "Gift card", category: "cards", merchant: "fresh-mart", unit_price: 5000, quantity: 0 },
];

function why(c) {
  // A quote's reason, in words a shopper acts on ("spend ¥10.00 more in 肉蛋水产").
  const cats = c.scope && Array.isArray(c.scope.categories) ? c.scope.categories : [];
  switch (c.reason) {
    case "below_min_spend":
      return t(cats.length ? "spend {amount} more in {cats} to use it" : "spend {amount} more to use it",
        { amount: money(c.shortfall, c.currency), cats: cats.join(", ") });
    case "out_of_scope": return t("nothing in this cart is covered");
    case "wrong_channel": return t("only {channels}", { channels: (c.use_channels || []).join(", ") });
    case "not_yet_valid": return t("valid from {day}", { day: day(c.valid_from) });
    case "expired": return t("expired");
    case "locked": return t("held by an unpaid order");
    case "currency": return t("for another currency");
    case "outside_window":
      return c.usable_from ? t("usable from {when}", { when: new Date(c.usable_from).toLocaleString(LOCALE === "zh-CN" ? "zh-CN" : "en") })
        : t("not at this hour");
    case "item_not_in_cart": return t("put {sku} in the cart to use it", { sku: c.sku });
    default: return c.reason || "";
  }
}

function paintCart() {
  const body = $("cart").querySelector("tbody");
  body.innerHTML = "";
  SAMPLE_CART.forEach((item, n) => {
    const row = document.createElement("tr");
    const cells = [item.name, item.category, money(item.unit_price)].map((text) => {
      const td = document.createElement("td");
      td.textContent = text;
      return td;
    });
    const qty = document.createElement("input");
    qty.type = "number"; qty.min = "0"; qty.max = "99"; qty.value = String(item.quantity);
    qty.id = `qty-${n}`;
    qty.setAttribute("aria-label", t("Quantity of {item}", { item: item.name }));
    qty.addEventListener("change", () => { item.quantity = Math.max(0, Math.min(99, Number(qty.value) || 0)); });
    const td = document.createElement("td");
    td.append(qty);
    row.append(...cells, td);
    body.append(row);
  });
}

async function quote() {
  const out = $("best"), list = $("quoted");
  list.innerHTML = "";
  const problem = userProblem();
  if (problem) { out.textContent = problem; out.className = "answer bad"; return; }
  const items = SAMPLE_CART.filter((i) => i.quantity > 0).map(
    ({ sku, category, merchant, unit_price, quantity }) => ({ sku, category, merchant, unit_price, quantity }));
  if (!items.length) { out.textContent = t("Put something in the cart first."); out.className = "answer bad"; return; }
  const { status, data } = await call("POST", "/v1/me/quote",
    { body: { channel: "web", items }, headers: userHeaders() });
  if (status !== 200) {
    out.textContent = data.message || t("The service answered {status}.", { status });
    out.className = "answer bad";
    return;
  }
  const names = new Map(data.coupons.map((c) => [c.coupon_id, describe(c)]));
  const best = data.best;
  out.textContent = best.coupon_ids.length
    ? t("Best: {coupons}: {discount} off, pay {total} (of {subtotal})", {
      coupons: best.coupon_ids.map((id) => names.get(id)).join(" + "), discount: money(best.discount),
      total: money(best.total), subtotal: money(data.subtotal) })
    : t("No coupon applies: pay {total}.", { total: money(best.total) });
  out.className = `answer ${best.coupon_ids.length ? "good" : ""}`;
  if (!data.coupons.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = t("You hold no unused coupons.");
    list.append(li);
  }
  for (const c of data.coupons) {
    const li = document.createElement("li");
    li.className = c.applicable ? "applies" : "muted";
    li.textContent = c.applicable
      ? t("{coupon}: applies, {discount} off", { coupon: describe(c), discount: money(c.discount, c.currency) })
      : t("{coupon}: not this time: {why}", { coupon: describe(c), why: why(c) });
    list.append(li);
  }
}

function day(iso) {  // 2026-12-09 (2026年12月9日), in this browser's time zone
  if (LOCALE === "zh-CN") return localDay(iso);
  const d = new Date(iso);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

function userId() {
  const user = $("user").value.trim();
  return USER_ID.test(user) ? user : "";
}

function deviceId() {
  // This browser, as the gateway would name the device of an app: one id, kept.
  let id = localStorage.getItem("flashclaim-device");
  if (!id) {
    id = `web-${crypto.randomUUID()}`;
    localStorage.setItem("flashclaim-device", id);
  }
  return id;
}

function userHeaders() {
  const user = userId();
  return user ? { "X-User-Id": user, "X-Device-Id": deviceId() } : {};
}

let solver = null;  // the proof-of-work worker, started on the first challenge

function solveChallenge(token, bits) {
  solver = solver || new Worker("/static/pow.js");
  return new Promise((resolve) => {
    solver.onmessage = (event) => resolve(event.data);
    solver.postMessage({ token, bits });
  });
}

async function proof(c) {
  // A campaign that asks for proof of work: a challenge from the service, solved off the
  // page's thread; {} when it asks for none, null when no challenge could be had.
  if (!c || !c.challenge) return {};
  answers.set(c.id, { good: true, text: t("Solving a short puzzle that keeps bots out…") });
  paint();
  const got = await call("GET", `/v1/campaigns/${encodeURIComponent(c.id)}/challenge`,
    { headers: userHeaders() });
  if (got.status !== 200) {
    answers.set(c.id, explain(got.status, got.data, got.retryAfter));
    paint();
    return null;
  }
  const solved = await solveChallenge(got.data.token, got.data.difficulty);
  document.body.dataset.solveMs = String(Math.round(solved.ms));
  document.body.dataset.solveHashes = String(solved.hashes);
  return { challenge: got.data.token, nonce: solved.nonce };
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
  const scope = document.createElement("div");
  scope.className = "muted scope";
  scope.textContent = c.coupons.map((x) => scopeWords(x.scope)).filter(Boolean).join(" · ")
    || t("on everything");
  const status = document.createElement("div");
  status.className = "status";
  const stock = document.createElement("div");
  stock.className = "muted stock";
  const button = document.createElement("button");
  button.type = "button";
  button.textContent = t(c.draw ? "Enter the draw" : "Grab");
  button.addEventListener("click", () => (c.draw ? enter(c.id) : grab(c.id)));
  const draw = document.createElement("div");
  draw.className = "muted draw";
  const answer = document.createElement("p");
  answer.className = "answer";
  answer.setAttribute("role", "status");
  const why = document.createElement("div");
  why.className = "muted why";
  el.append(title, coupon, scope, status, stock, draw, button, why, answer);
  return el;
}

function paint() {
  const box = $("campaigns");
  if (!campaigns.length) {
    box.innerHTML = "";
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = t("No campaigns right now.");
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
      ? t("starts in {time}", { time: countdown(Date.parse(c.starts_at) - serverNow()) })
      : t(status.replace("_", " "));
    el.querySelector(".stock").textContent = c.stock === null
      ? t("unlimited stock") : t("{left} of {stock} left", { left: c.remaining, stock: c.stock });
    el.querySelector(".draw").textContent = c.draw ? drawWords(c) : "";
    const answer = el.querySelector(".answer");
    if (c.draw) {  // entries, not grabs: open until entries_until, then the draw's result
      const open = c.draw.state === "open" && serverNow() < Date.parse(c.draw.entries_until);
      el.querySelector("button").disabled = status === "scheduled" || !open;
      el.querySelector(".why").textContent = "";
      const shown = answers.get(c.id);
      const result = drawResults.get(c.id);
      const text = result && result !== "pending" ? t(DRAW_RESULT[result]) : shown && shown.text;
      answer.textContent = text || "";
      answer.className = `answer ${result === "lost" || (shown && !shown.good) ? "bad" : "good"}`;
      continue;
    }
    // The server says what this user may do (can_claim); the clock moves the status.
    const refused = userId() && c.can_claim === false && status === c.status;
    el.querySelector("button").disabled = status !== "live" || Boolean(refused);
    el.querySelector(".why").textContent = refused ? t(NOT_NOW[c.refusal] || "") : "";
    const shown = answers.get(c.id);
    answer.textContent = shown ? shown.text : "";
    answer.className = `answer ${shown ? (shown.good ? "good" : "bad") : ""}`;
  }
}

async function load() {
  // With the user's id, each campaign also says what this user may do on this page (web).
  const { status, data } = await call("GET", "/v1/campaigns?channel=web", { headers: userHeaders() });
  if (status !== 200) {
    $("note").textContent = data.message || t("The service answered {status}.", { status });
    return;
  }
  $("note").textContent = "";
  // The list holds scheduled and live campaigns only; one shown here that left it (sold
  // out, paused, ended) keeps its card, with its status read on its own.
  const listed = new Set(data.campaigns.map((c) => c.id));
  const gone = campaigns.filter((c) => !listed.has(c.id));
  const kept = [];
  for (const c of gone) {
    const one = await call("GET", `/v1/campaigns/${encodeURIComponent(c.id)}?channel=web`,
      { headers: userHeaders() });
    if (one.status === 200) kept.push(one.data);
  }
  campaigns = [...data.campaigns, ...kept];
  paint();
  drawStandings();
}

function explain(status, data, retryAfter) {
  if (status === 201 || status === 200) {
    const coupons = (data.coupons || []).map(describe).join(" + ");
    return { good: true, text: t("Granted: {coupons}.", { coupons }) };
  }
  let text = t(ANSWERS[data.error] || "") || data.message || `The service answered ${status}.`;
  if (data.error === "rate_limited" && retryAfter) text = t("Too fast: try again in {s}s.", { s: retryAfter });
  return { good: false, text };
}

function userProblem() {
  // A plain word before any call: no id yet, or one the service would refuse.
  const user = $("user").value.trim();
  if (!user) return t(ANSWERS.unauthenticated);
  if (!USER_ID.test(user)) return "A user id is up to 128 letters, digits or _ . : @ -.";
  return "";
}

function drawWords(c) {
  // A drawn campaign: when entries close, when it is drawn, and how anyone can check it.
  const d = c.draw;
  const until = Date.parse(d.entries_until) - serverNow();
  const when = d.state === "done" ? t("Drawn among {n} entrants.", { n: d.entrants })
    : until > 0 ? t("Entries close in {time}; {n} entered so far.", { time: countdown(until), n: d.entrants })
      : t("Entries closed: the draw is under way.");
  const check = d.seed ? t("Seed {seed}… (its SHA-256 was published before).", { seed: d.seed.slice(0, 16) })
    : t("Seed SHA-256 {sha}… (the seed is published after the draw).", { sha: d.seed_sha256.slice(0, 16) });
  return `${when} ${check}`;
}

const drawResults = new Map();  // campaign id -> "pending", "won", "lost" for this user

async function drawStandings() {
  if (!userId()) return;
  for (const c of campaigns.filter((x) => x.draw)) {
    const { status, data } = await call("GET",
      `/v1/campaigns/${encodeURIComponent(c.id)}/entries/me`, { headers: userHeaders() });
    if (status === 200 && data.entered) drawResults.set(c.id, data.result);
  }
  paint();
}

async function prepared(id) {
  // Before a tap's call: a plain word for an id the service would refuse, then the
  // campaign's proof of work. The body's extra fields, or null when the tap stops here.
  const problem = userProblem();
  if (problem) {
    answers.set(id, { good: false, text: problem });
    paint();
    return null;
  }
  return proof(campaigns.find((c) => c.id === id));
}

async function enter(id) {
  const solution = await prepared(id);
  if (solution === null) return;
  const { status, data, retryAfter } = await call("POST",
    `/v1/campaigns/${encodeURIComponent(id)}/entries`,
    { body: { channel: "web", ...solution }, headers: userHeaders() });
  answers.set(id, status === 201 || status === 200
    ? { good: true, text: t(DRAW_RESULT[data.result]) } : explain(status, data, retryAfter));
  paint();
  load();
}

async function grab(id) {
  const solution = await prepared(id);
  if (solution === null) return;
  const key = crypto.randomUUID();  // one per tap: a retried tap cannot be granted twice
  const { status, data, retryAfter } = await call("POST",
    `/v1/campaigns/${encodeURIComponent(id)}/claims`,
    { body: { channel: "web", ...solution },
      headers: { ...userHeaders(), "Idempotency-Key": key } });
  answers.set(id, explain(status, data, retryAfter));
  paint();
  load();
  wallet();
}

async function redeem(event) {
  event.preventDefault();
  const out = $("redeem-answer");
  const problem = userProblem();
  if (problem) {
    out.textContent = problem;
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
  if (!userId()) return;
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
  if (!data.coupons.length) item(t("No coupons yet (a new one shows within a second or so)."), "muted");
  for (const c of data.coupons) {
    const later = c.usable_from && Date.parse(c.usable_from) > serverNow() + 1000
      ? `, ${t("usable from {when}", { when: new Date(c.usable_from).toLocaleString(LOCALE === "zh-CN" ? "zh-CN" : "en") })}`
      : "";
    item(`${c.campaign_name || c.campaign_id}: ${describe(c)} (${rulesWords(c)}), ` +
      `${t(c.status)}, ${t("valid until {day}", { day: day(c.valid_until) })}${later}`);
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("user").value = sessionStorage.getItem("flashclaim-user") || "";
  $("user").addEventListener("change", () => {
    sessionStorage.setItem("flashclaim-user", $("user").value.trim());
    answers.clear();  // what was said to the previous id (or a mistyped one) no longer holds
    drawResults.clear();
    $("redeem-answer").textContent = "";
    load();
    wallet();
  });
  $("redeem").addEventListener("submit", redeem);
  $("wallet-refresh").addEventListener("click", wallet);
  $("quote").addEventListener("click", quote);
  paintCart();
  load();
  wallet();
  setInterval(paint, 250);   // countdowns
  setInterval(load, 2000);   // stock and status
});
