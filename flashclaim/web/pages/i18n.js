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
  // the dashboard as the operators' tool
  "The admin token is in admin-token in the service's data directory (.flashclaim/admin-token by default), unless FLASHCLAIM_ADMIN_TOKEN sets it.":
    "管理令牌在服务数据目录的 admin-token 文件中（默认 .flashclaim/admin-token），除非由 FLASHCLAIM_ADMIN_TOKEN 指定。",
  "Templates": "券模板", "Settings": "设置", "Basics": "基本信息", "optional": "可选",
  "Unlimited stock": "不限库存", "Ends after (h)": "持续（小时）", "no end": "不结束", "Time zone": "时区",
  "Listed in the coupon centre": "在领券中心展示", "Coupons (one claim grants them all)": "券（一次领取全部发放）",
  "Add a coupon": "添加一张券", "Who may claim": "领取人群", "Channels": "渠道", "any": "不限",
  "Segments": "人群标签", "anyone": "所有人", "Excluded segments": "排除人群", "none": "无", "Limits": "限制",
  "Per user a day": "每人每日限领", "no cap": "不限", "Taps per second": "每秒点击上限", "not drawn": "不抽签",
  "Scale and cost": "规模与成本", "Buckets": "分桶数", "Budget (¥)": "预算（元）", "no budget": "不设预算",
  "Cap group": "封顶组", "budget left": "剩余预算", "draw": "抽签", "entrants": "报名人数", "winners granted": "已发放中签",
  "The last minutes": "最近几分钟", "Report": "报表", "Export CSV": "导出 CSV", "By channel": "按渠道",
  "By segment": "按人群", "By source": "按来源", "Grant to users from a file": "按文件定向发券",
  "Users file (one id a line, or CSV)": "用户文件（每行一个 ID，或 CSV）", "Grant": "发放",
  "Redemption codes": "兑换码", "Codes": "数量", "Uses per code": "每码可用次数", "Generate": "生成",
  "Budget": "预算", "Top up (¥)": "追加（元）", "Top up": "追加预算", "No changes yet.": "暂无操作记录。",
  "saves the first coupon of the form above": "保存上方表单中的第一张券", "Save as template": "存为模板",
  "Version": "版本", "Coupon": "券", "No webhooks.": "暂无 Webhook。", "No rules.": "暂无规则。",
  "No schedules.": "暂无定时任务。", "Cap groups": "封顶组", "Most unused coupons": "最多未使用券数",
  "Most grants a day": "每日最多发放", "Save cap group": "保存封顶组", "Blocklist": "黑名单", "Reason": "原因",
  "Block": "拉黑", "Since": "时间", "The token was not accepted.": "令牌无效。",
  "Token {name} revoked.": "令牌 {name} 已吊销。",
  "Token {name} ({role}), shown this once: {token}": "令牌 {name}（{role}），仅显示这一次：{token}",
  "The service answered {status}.": "服务返回 {status}。", "unlimited": "不限量",
  "{id} resumed.": "{id} 已恢复。", "{id} paused.": "{id} 已暂停。", "100 coupons added to {id}.": "已为 {id} 追加 100 张券。",
  "End {name} now?": "立即结束「{name}」？", "{id} ended.": "{id} 已结束。",
  "{committed} of {amount} committed": "已占用 {committed} / {amount}",
  "{n} per device (missing id: {missing})": "每台设备 {n} 张（无设备标识：{missing}）",
  "proof of work, {bits} bits": "防刷验证 {bits} 位", "cap group {name}": "封顶组 {name}", "Defences: {list}.": "防护：{list}。",
  "Seed {seed} (SHA-256 {sha}): the winners are the {stock} entrants of the smallest HMAC-SHA256(seed, user id), from the entries export.":
    "种子 {seed}（SHA-256 {sha}）：中签者为报名导出中 HMAC-SHA256(种子, 用户 ID) 最小的 {stock} 人。",
  "Seed SHA-256 {sha}; the seed is published once drawn at {at}.": "种子 SHA-256 {sha}；{at} 开奖后公布种子。",
  "{count} > {threshold} in {s} s": "{s} 秒内 {count} > {threshold}", "yes": "是", "no": "否",
  "Rule {rule} saved.": "规则 {rule} 已保存。", "Webhook deleted.": "Webhook 已删除。",
  "Webhook {id} added. Its signing secret, shown this once: {secret}": "Webhook {id} 已添加。签名密钥仅显示这一次：{secret}",
  "Use rate from the ledger as of {at}: it holds {claims} claims, {behind} of the granted not yet.":
    "核销率来自账本（{at}）：已入账 {claims} 笔领取，尚有 {behind} 笔未入账。",
  "Use rate from the ledger as of {at}: it holds {claims} claims, all of the granted.":
    "核销率来自账本（{at}）：已入账 {claims} 笔领取，全部已入账。",
  "Token forgotten.": "已退出。", "template": "模板", "Type": "类型", "Value (¥)": "面额（元）",
  "Min spend (¥)": "门槛（元）", "Percent off": "折扣（%）", "Most off (¥)": "最高减（元）",
  "Valid for (days)": "有效天数", "Categories": "适用类目", "Use channels": "使用渠道", "anywhere": "不限",
  "Remove": "移除", "Created {id}.": "已创建 {id}。", "No templates.": "暂无模板。",
  "Choose a coupon type, not a template, to save as a template.": "请选择券类型（而非模板）再存为模板。",
  "Template {id} saved.": "模板 {id} 已保存。", "Gathering the first seconds…": "正在采集最初几秒的数据…",
  "claims per minute": "每分钟领取", "uses per minute": "每分钟核销", "No claims in the ledger yet.": "账本中暂无领取。",
  "claims": "领取", "used": "已核销", "The file names no users.": "文件中没有用户。",
  "Grant {id}: {done} of {total} users decided ({outcomes}).": "发放 {id}：已处理 {done} / {total} 位用户（{outcomes}）。",
  "Grant {id} done.": "发放 {id} 已完成。", "Generating {n} codes.": "正在生成 {n} 个兑换码。",
  "{count} codes, {uses} use(s) each: {state}": "{count} 个码，每码可用 {uses} 次：{state}",
  "Export codes (once)": "导出兑换码（仅一次）", "Codes exported: they cannot be exported again.": "兑换码已导出，不能再次导出。",
  "Budget topped up.": "预算已追加。", "No cap groups.": "暂无封顶组。", "Delete the cap group {name}?": "删除封顶组 {name}？",
  "Cap group {name} deleted.": "封顶组 {name} 已删除。", "Cap group {name} saved.": "封顶组 {name} 已保存。",
  "Nobody is blocked.": "黑名单为空。", "Unblock": "移出黑名单", "{user} unblocked.": "{user} 已移出黑名单。",
  "{user} blocked.": "{user} 已拉黑。",
  // words the API answers with, shown as they are in English
  "cash": "无门槛券", "threshold": "满减券", "discount": "折扣券",
  "ready": "待导出", "generating": "生成中", "exported": "已导出", "open": "报名中", "drawing": "开奖中", "done": "已完成",
  "refuse": "拒绝", "allow": "允许",
  "already claimed": "已领过", "rate limited": "点击过快", "not eligible": "不符合条件", "blocked": "已拉黑",
  "daily limit": "今日已达上限", "budget exhausted": "预算用完", "cap reached": "达到封顶", "cap daily limit": "达到每日封顶",
  "device limit": "设备已达上限", "device required": "缺少设备标识", "challenge required": "缺少防刷验证",
  "challenge spent": "验证已使用", "not started": "未开始", "code not found": "兑换码不存在", "code used": "兑换码已用完",
  "granted per second /s": "每秒发放",
  "random_cash": "随机金额券", "Values (¥×count)": "面额（元×张数）",
  "Personal value (¥ min-max)": "千人千券面额（元，最小-最大）",
  "usable from {when}": "{when} 起可用", "Use hours": "可用时段",
  // the cart's reasons and the draw's line on the coupon centre
  "spend {amount} more in {cats} to use it": "在 {cats} 再买 {amount} 即可使用",
  "spend {amount} more to use it": "再买 {amount} 即可使用",
  "nothing in this cart is covered": "购物车里没有适用的商品", "only {channels}": "仅限 {channels}",
  "valid from {day}": "{day} 起生效", "expired": "已过期", "held by an unpaid order": "被未支付订单占用",
  "for another currency": "币种不符", "not at this hour": "当前时段不可用",
  "put {sku} in the cart to use it": "将 {sku} 加入购物车即可使用", "Quantity of {item}": "{item} 的数量",
  "Put something in the cart first.": "请先在购物车里放些商品。",
  "Best: {coupons}: {discount} off, pay {total} (of {subtotal})": "最优：{coupons}，共减 {discount}，实付 {total}（原价 {subtotal}）",
  "No coupon applies: pay {total}.": "没有可用的券：实付 {total}。", "You hold no unused coupons.": "你没有未使用的券。",
  "{coupon}: applies, {discount} off": "{coupon}：可用，减 {discount}",
  "{coupon}: not this time: {why}": "{coupon}：本单不可用：{why}",
  "Drawn among {n} entrants.": "已在 {n} 位报名者中开奖。",
  "Entries close in {time}; {n} entered so far.": "{time} 后截止报名；已有 {n} 人报名。",
  "Entries closed: the draw is under way.": "报名已截止，正在开奖。",
  "Seed {seed}… (its SHA-256 was published before).": "种子 {seed}…（其 SHA-256 已提前公布）。",
  "Seed SHA-256 {sha}… (the seed is published after the draw).": "种子 SHA-256 {sha}…（开奖后公布种子）。",
  "gift": "赠品券", "trade_up": "换购券", "Item (SKU)": "商品（SKU）", "Cost or price (¥)": "成本或换购价（元）",
  "Pick up in store": "到店自提", "A free {sku}": "免费赠送 {sku}", "A free {sku} (pick up in store)": "免费赠送 {sku}（到店自提）",
  "{sku} for {price} when you spend {min}": "满 {min} 可 {price} 换购 {sku}",
  "A surprise {low} to {high} off": "随机立减 {low}～{high}",
  "This offer is not for you this time.": "本次活动暂未向你开放。",
  "You hold as many of these coupons as allowed: use one first.": "你持有的同类券已达上限，请先使用。",
  "Holdout (%)": "对照组（%）", "Uplift": "增量效果", "Margin (%)": "毛利率（%）", "Last days": "最近天数",
  "Compare": "对比", "treatment": "实验组", "control": "对照组", "users": "用户数", "buyers": "购买用户",
  "orders": "订单数", "GMV": "GMV", "GMV per user": "人均 GMV", "discount cost": "券成本", "profit": "利润",
  "profit per user": "人均利润",
  "Uplift per treated user: {uplift} (95% interval {low} to {high}).": "每位实验组用户增量利润：{uplift}（95% 置信区间 {low}～{high}）。",
  "Not enough users in both groups yet.": "两组用户还不够。",
  "holdout {percent}% (control group)": "对照组 {percent}%",
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
