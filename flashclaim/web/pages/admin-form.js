// The dashboard's campaign form (every field of POST /v1/admin/campaigns that an operator
// sets by hand: coupons of each type or from a template, validity, scope and use rules,
// channels, segments, limits, buckets, budget, cap group) and the templates it can use.
"use strict";

const COUPON_TYPES = ["cash", "threshold", "discount", "random_cash", "gift", "trade_up"];
let templatesKnown = [];  // [{id, name, version, coupon}] as last listed

function listOf(text) {
  return text.split(/[,，\s]+/).map((x) => x.trim()).filter(Boolean);
}

function fen(yuan) { return Math.round(Number(yuan) * 100); }

function couponRow() {
  // One coupon of the pack: its type (or a template), its amounts in yuan, validity, scope.
  const row = document.createElement("div");
  row.className = "coupon-row row";
  const field = (label, input) => {
    const l = document.createElement("label");
    const span = document.createElement("span");
    span.textContent = t(label);
    l.append(span, " ", input);
    row.append(l);
    return input;
  };
  const input = (cls, attrs) => {
    const i = document.createElement("input");
    i.className = cls;
    Object.assign(i, attrs);
    return i;
  };
  const kind = document.createElement("select");
  kind.className = "c-type";
  for (const k of COUPON_TYPES) kind.append(new Option(t(k), k));
  for (const tpl of templatesKnown) kind.append(new Option(`${t("template")} ${tpl.name} (${tpl.id})`, `template:${tpl.id}`));
  field("Type", kind);
  const value = field("Value (¥)", input("c-value", { type: "number", min: "0.01", step: "0.01", value: "5" }));
  const min = field("Min spend (¥)", input("c-min", { type: "number", min: "0", step: "0.01", placeholder: "0" }));
  const percent = field("Percent off", input("c-percent", { type: "number", min: "1", max: "99", value: "10" }));
  const most = field("Most off (¥)", input("c-max", { type: "number", min: "0.01", step: "0.01", value: "30" }));
  const values = field("Values (¥×count)", input("c-values", { placeholder: "1×700, 5×250, 30×50" }));
  const personal = field("Personal value (¥ min-max)", input("c-personal", { placeholder: t("none") }));
  const sku = field("Item (SKU)", input("c-sku", { placeholder: "tea-cup" }));
  const itemMoney = field("Cost or price (¥)", input("c-item-money", { type: "number", min: "0", step: "0.01", value: "1" }));
  const pickup = document.createElement("input");
  pickup.type = "checkbox";
  pickup.className = "c-pickup";
  field("Pick up in store", pickup);
  field("Valid for (days)", input("c-days", { type: "number", min: "1", max: "3650", value: "30" }));
  field("Categories", input("c-categories", { placeholder: t("any") }));
  field("Use channels", input("c-use-channels", { placeholder: t("anywhere") }));
  field("Use hours", input("c-hours", { placeholder: "sat,sun 18:00-22:00" }));
  const remove = button("Remove", () => { if (document.querySelectorAll(".coupon-row").length > 1) row.remove(); }, true);
  row.append(remove);
  const show = () => {  // only the fields the chosen type has
    const k = kind.value;
    value.parentElement.hidden = k === "discount" || k === "random_cash" || k.startsWith("template:");
    min.parentElement.hidden = k === "cash" || k === "random_cash" || k.startsWith("template:");
    values.parentElement.hidden = k !== "random_cash";
    personal.parentElement.hidden = k !== "cash";
    sku.parentElement.hidden = k !== "gift" && k !== "trade_up";
    itemMoney.parentElement.hidden = k !== "gift" && k !== "trade_up";
    pickup.parentElement.hidden = k !== "gift";
    if (k === "trade_up") min.parentElement.hidden = false;
    percent.parentElement.hidden = k !== "discount";
    most.parentElement.hidden = k !== "discount";
    row.querySelectorAll(".c-days, .c-categories, .c-use-channels, .c-hours").forEach((el) => {
      el.parentElement.hidden = k.startsWith("template:");
    });
  };
  kind.addEventListener("change", show);
  show();
  return row;
}

function couponOf(row) {
  // The coupon body a row describes (POST /v1/admin/campaigns' coupons[i]).
  const get = (cls) => row.querySelector(`.${cls}`).value.trim();
  const k = get("c-type");
  if (k.startsWith("template:")) return { template: k.slice("template:".length) };
  const c = { type: k };
  if (k === "gift") {
    c.sku = get("c-sku");
    c.cost = fen(get("c-item-money"));
    c.fulfilment = row.querySelector(".c-pickup").checked ? "pickup" : "delivery";
  } else if (k === "trade_up") {
    c.sku = get("c-sku");
    c.price = fen(get("c-item-money"));
  } else if (k === "random_cash") {  // "1×700, 5×250": yuan and how many of each
    c.values = listOf(get("c-values").replaceAll("x", "×")).map((pair) => {
      const [yuan, count] = pair.split("×");
      return { value: fen(yuan), count: Number(count) };
    });
  } else if (k === "discount") {
    c.percent_off = Number(get("c-percent"));
    c.max_discount = fen(get("c-max"));
  } else {
    c.value = fen(get("c-value"));
  }
  if (k === "threshold" || k === "discount" || k === "trade_up") c.min_spend = fen(get("c-min") || "0");
  const bounds = k === "cash" ? get("c-personal").split(/[-–~～]/).map((x) => x.trim()).filter(Boolean) : [];
  if (bounds.length === 2) c.personal = { min: fen(bounds[0]), max: fen(bounds[1]) };
  if (k === "threshold" && !c.min_spend) c.min_spend = c.value;
  c.validity = { days: Number(get("c-days") || "30") };
  const categories = listOf(get("c-categories"));
  if (categories.length) c.scope = { categories };
  const useChannels = listOf(get("c-use-channels"));
  if (useChannels.length) c.use_channels = useChannels;
  const hours = get("c-hours").match(/^([a-z,\s]*?)\s*(\d{1,2}:\d{2})\s*-\s*(\d{1,2}:\d{2})$/);
  if (hours) {  // "sat,sun 18:00-22:00" (no days: every day), in the campaign's time zone
    const slot = { from: hours[2].padStart(5, "0"), to: hours[3].padStart(5, "0") };
    const days = listOf(hours[1]);
    if (days.length) slot.days = days;
    c.use_windows = [slot];
  }
  return c;
}

function resetCoupons() {
  $("coupon-rows").innerHTML = "";
  $("coupon-rows").append(couponRow());
}

function campaignBody() {
  // The create request the form describes; the service checks it whole (a 400 says why).
  const body = {
    name: $("new-name").value,
    stock: $("new-unlimited").checked ? null : Number($("new-stock").value),
    per_user_limit: Number($("new-limit").value),
    coupons: [...document.querySelectorAll(".coupon-row")].map(couponOf),
    timezone: $("new-tz").value.trim() || "Asia/Shanghai",
    rate_limit: { max: Number($("new-rate").value || "10"), per_seconds: 1 },
  };
  if (body.coupons.some((c) => c.type === "random_cash")) body.stock = null;  // the values' counts
  if ($("new-id").value.trim()) body.id = $("new-id").value.trim();
  const startsIn = Number($("new-start").value);
  const startsAt = Date.now() + startsIn * 1000;
  if (startsIn > 0) body.starts_at = new Date(startsAt).toISOString();
  if ($("new-ends").value) body.ends_at = new Date(startsAt + Number($("new-ends").value) * 3600_000).toISOString();
  if (!$("new-listed").checked) body.listed = false;
  for (const [id, name] of [["new-channels", "channels"], ["new-segments", "segments"],
    ["new-excluded", "exclude_segments"]]) {
    const values = listOf($(id).value);
    if (values.length) body[name] = values;
  }
  if ($("new-daily").value) body.per_user_daily_limit = Number($("new-daily").value);
  if ($("new-device").value) body.per_device_limit = Number($("new-device").value);
  if ($("new-pow").value) body.challenge = { difficulty: Number($("new-pow").value) };
  if (Number($("new-buckets").value) > 1) body.buckets = Number($("new-buckets").value);
  if ($("new-budget").value) body.budget = { amount: fen($("new-budget").value), currency: "CNY" };
  if ($("new-cap-group").value) body.cap_group = $("new-cap-group").value;
  if ($("new-holdout").value) body.holdout = { percent: Number($("new-holdout").value) };
  if ($("new-draw").value) {  // drawn when the entries close
    if (!body.starts_at) body.starts_at = new Date(startsAt).toISOString();
    const closes = new Date(startsAt + Number($("new-draw").value) * 1000).toISOString();
    body.admission = { mode: "draw", entries_until: closes, draw_at: closes };
  }
  return body;
}

async function create(event) {
  event.preventDefault();
  const { status, data } = await api("POST", "/v1/admin/campaigns", campaignBody());
  if (status === 201) {
    note(t("Created {id}.", { id: data.id }), true);
    $("create").reset();  // the next campaign starts from the defaults, not this one
    resetCoupons();
    watch(data.id);
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  list();
}

function couponWords(c) {
  if (c.type === "discount") return `${c.percent_off}% (≤ ${money(c.max_discount)})`;
  if (c.type === "threshold") return `${money(c.value)} / ${money(c.min_spend)}`;
  if (c.type === "random_cash") return c.values.map((v) => `${money(v.value)}×${v.count}`).join(", ");
  if (c.type === "gift") return `${c.sku} (${money(c.cost)})`;
  if (c.type === "trade_up") return `${c.sku} ${money(c.price)} / ${money(c.min_spend)}`;
  return money(c.value);
}

function money(minor) {
  return LOCALE === "zh-CN" ? localMoney(minor, "CNY") : `¥${(minor / 100).toFixed(2)}`;
}

async function templates() {
  const { status, data } = await api("GET", "/v1/admin/templates?limit=100");
  if (status !== 200) return;
  templatesKnown = data.templates;
  const rows = $("templates");
  rows.innerHTML = "";
  if (!data.templates.length) placeholder(rows, t("No templates."));
  for (const tpl of data.templates) {
    const tr = document.createElement("tr");
    tr.dataset.id = tpl.id;
    [tpl.id, tpl.name, String(tpl.version), `${t(tpl.coupon.type)} ${couponWords(tpl.coupon)}`]
      .forEach((text) => cell(tr, text));
    rows.append(tr);
  }
  // the coupon rows offer the templates too (a row's choice is kept)
  document.querySelectorAll(".coupon-row .c-type").forEach((select) => {
    const chosen = select.value;
    select.querySelectorAll("option[value^='template:']").forEach((o) => o.remove());
    for (const tpl of templatesKnown) select.append(new Option(`${t("template")} ${tpl.name} (${tpl.id})`, `template:${tpl.id}`));
    select.value = chosen;
  });
}

async function saveTemplate(event) {
  event.preventDefault();
  const first = document.querySelector(".coupon-row");
  const coupon = couponOf(first);
  if (coupon.template) {
    note(t("Choose a coupon type, not a template, to save as a template."), false);
    return;
  }
  const { status, data } = await api("POST", "/v1/admin/templates", { name: $("template-name").value, coupon });
  if (status === 201) {
    note(t("Template {id} saved.", { id: data.id }), true);
    $("new-template").reset();
  } else {
    note(data.message || t("The service answered {status}.", { status }), false);
  }
  templates();
}

async function capGroupChoices() {
  const { status, data } = await api("GET", "/v1/admin/cap-groups");
  if (status !== 200) return;
  const select = $("new-cap-group");
  const chosen = select.value;
  select.querySelectorAll("option:not([value=''])").forEach((o) => o.remove());
  for (const g of data.cap_groups) select.append(new Option(g.name, g.name));
  select.value = chosen;
  showCapGroups(data.cap_groups);
}

document.addEventListener("DOMContentLoaded", () => {
  resetCoupons();
  $("add-coupon").addEventListener("click", () => $("coupon-rows").append(couponRow()));
  $("create").addEventListener("submit", create);
  $("new-template").addEventListener("submit", saveTemplate);
  $("new-unlimited").addEventListener("change", () => { $("new-stock").disabled = $("new-unlimited").checked; });
});
