// The pages in Chinese (zh-CN) or English. English is the source: t("text") is that text in
// the page's language, "{name}" filled from `vars`. The language: the switch's choice (kept
// in localStorage), else the browser's (its Accept-Language, as navigator.languages).
// Elements marked data-i18n (their text) and data-i18n-placeholder are translated on load.
"use strict";

const ZH = {
  // coupon centre
  "Coupon centre": "领券中心",
  "User id": "用户 ID",
  "Have a code?": "有兑换码？",
  "Code": "兑换码",
  "Redeem": "兑换",
  "My coupons": "我的优惠券",
  "Refresh": "刷新",
  "Enter your user id to see your coupons.": "输入用户 ID 查看你的优惠券。",
  "Try a cart": "试算购物车",
  "Item": "商品", "Category": "类目", "Price": "价格", "Quantity": "数量",
  "Check my coupons": "看看我的券能省多少",
  "A few sample items: set the quantities to see which of your coupons apply, why not the others, and the best combination.":
    "几件示例商品：调整数量，看看哪些券可用、其他券为何不可用，以及最优组合。",
  "Grab": "立即领取",
  "Enter the draw": "参加抽签",
  "live": "进行中", "scheduled": "未开始", "sold out": "已抢光", "paused": "已暂停", "ended": "已结束",
  "starts in {time}": "{time} 后开抢",
  "{left} of {stock} left": "剩余 {left} / {stock}",
  "unlimited stock": "不限量",
  "on everything": "全场通用",
  "No campaigns right now.": "暂无活动。",
  "{amount} off": "立减 {amount}",
  "{amount} off {min}": "满 {min} 减 {amount}",
  "{percent}% off (up to {max})": "减 {percent}%（最高减 {max}）",
  "Granted: {coupons}.": "领取成功：{coupons}。",
  "Solving a short puzzle that keeps bots out…": "正在完成防刷验证…",
  "Already claimed: you hold this coupon.": "已领取：你已拥有这张券。",
  "Sold out.": "已抢光。",
  "Not eligible for this campaign.": "不符合本活动的领取条件。",
  "Too fast: try again in a moment.": "操作太快，请稍后再试。",
  "Too fast: try again in {s}s.": "操作太快，请 {s} 秒后再试。",
  "Paused for now.": "活动暂停中。",
  "Not started yet.": "活动尚未开始。",
  "This campaign has ended.": "活动已结束。",
  "This account cannot claim coupons.": "该账号不能领券。",
  "Daily limit reached: try again tomorrow.": "今日已达上限，明天再来。",
  "Enter a user id first.": "请先输入用户 ID。",
  "No such code.": "兑换码不存在。",
  "This code has been used up.": "兑换码已用完。",
  "You have already redeemed this code.": "你已兑换过此码。",
  "This campaign needs the app's device id.": "本活动需要 App 的设备标识。",
  "This device's accounts already hold this coupon.": "该设备上的账号已领过这张券。",
  "The puzzle was not solved; tap again.": "验证未完成，请再点一次。",
  "The puzzle's answer was not accepted; tap again.": "验证未通过，请再点一次。",
  "That puzzle was used already; tap again.": "验证已使用过，请再点一次。",
  "This campaign is drawn: enter the draw.": "本活动为抽签：请参加抽签。",
  "The draw's entries are closed.": "抽签报名已截止。",
  "This campaign's budget is spent.": "本活动预算已用完。",
  "You hold this coupon.": "你已拥有这张券。",
  "Today's limit reached: try again tomorrow.": "今日已达上限，明天再来。",
  "Not available to you.": "你不在本活动范围内。",
  "You are in the draw.": "已参加抽签。",
  "You won! The coupon is in your wallet.": "中签了！券已放入你的卡包。",
  "Not drawn this time.": "很遗憾，本次未中签。",
  "No coupons yet (a new one shows within a second or so).": "还没有券（新领的券约一秒后显示）。",
  "valid until {day}": "有效期至 {day}",
  // operator dashboard
  "Operator dashboard": "运营后台",
  "Admin token": "管理令牌",
  "Use token": "登录",
  "Forget token": "退出",
  "New campaign": "新建活动",
  "Id": "ID", "Name": "名称", "Stock": "库存", "Per user": "每人限领", "Cash off (¥)": "立减金额（元）",
  "Starts in (s)": "几秒后开始", "Per device": "每台设备限领", "Proof of work (bits)": "防刷难度（位）",
  "Draw: entries for (s)": "抽签：报名时长（秒）", "Create": "创建",
  "Campaigns": "活动", "Status": "状态", "Granted": "已发放", "Remaining": "剩余",
  "Pause": "暂停", "Resume": "恢复", "End": "结束", "Watch": "查看",
  "granted": "已发放", "granted per second": "每秒发放", "remaining": "剩余",
  "claim rate": "领取率", "use rate (ledger)": "核销率（账本）",
  "Rejections by reason": "拒绝原因", "History": "操作记录", "Risk alerts": "风险预警",
  "Webhooks": "Webhook 推送", "Rules that grant on events": "事件触发发券规则", "Schedules": "定时发券",
  "Alert rules": "预警规则", "Tokens": "令牌",
  "Raised": "时间", "Rule": "规则", "Subject": "对象", "Count": "次数", "Users": "用户", "Blocked": "已拉黑",
  "Watches": "监测", "Threshold": "阈值", "Window (s)": "窗口（秒）", "Block users": "拉黑用户",
  "Save": "保存", "No alerts.": "暂无预警。", "Add webhook": "添加 Webhook", "Events": "事件",
  "Role": "角色", "Create token": "创建令牌", "Live": "实时", "Delete": "删除", "Revoke": "吊销",
  "Endpoint": "地址", "Waiting": "待推送", "Last deliveries": "最近推送", "Dead": "失败",
  "On": "事件", "When": "条件", "Grants": "发放", "To": "对象", "Grants made": "已发放次数",
  "Schedule": "计划", "Campaign": "活动", "Every": "周期", "Who": "人群", "Runs": "已运行",
  "Next run": "下次运行", "URL": "URL", "Created": "创建时间",
};

const LANG_KEY = "flashclaim-lang";

function pageLocale() {
  const saved = localStorage.getItem(LANG_KEY);
  if (saved === "zh-CN" || saved === "en") return saved;
  const wanted = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language];
  return wanted.some((l) => String(l).toLowerCase().startsWith("zh")) ? "zh-CN" : "en";
}

const LOCALE = pageLocale();

function t(text, vars) {
  let out = LOCALE === "zh-CN" && ZH[text] !== undefined ? ZH[text] : text;
  for (const [name, value] of Object.entries(vars || {})) out = out.replaceAll(`{${name}}`, String(value));
  return out;
}

function localMoney(minor, currency) {
  // zh-CN: the locale's own form (¥20.00); English keeps the page's short form.
  return new Intl.NumberFormat("zh-CN", { style: "currency", currency: currency || "CNY" }).format(minor / 100);
}

function localDay(iso) {
  return new Date(iso).toLocaleDateString("zh-CN", { year: "numeric", month: "long", day: "numeric" });
}

function translatePage() {
  document.documentElement.lang = LOCALE === "zh-CN" ? "zh-CN" : "en";
  document.querySelectorAll("[data-i18n]").forEach((el) => {
    if (!el.dataset.i18nSource) el.dataset.i18nSource = el.textContent.trim().replace(/\s+/g, " ");
    el.textContent = t(el.dataset.i18nSource);
  });
  document.querySelectorAll("[data-i18n-placeholder]").forEach((el) => {
    el.placeholder = t(el.dataset.i18nPlaceholder);
  });
  const toggle = document.getElementById("lang");
  if (toggle) {
    toggle.textContent = LOCALE === "zh-CN" ? "English" : "中文";
    toggle.addEventListener("click", () => {
      localStorage.setItem(LANG_KEY, LOCALE === "zh-CN" ? "en" : "zh-CN");
      location.reload();
    });
  }
}

document.addEventListener("DOMContentLoaded", translatePage);
