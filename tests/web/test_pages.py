"""The coupon centre (GET /) and the operator dashboard (GET /admin) in a real browser:
Debian's chromium driven by Playwright, against `flashclaim serve` on a real Valkey."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
from playwright.sync_api import Browser, Page, expect

from flashclaim.runtime.embedded import EmbeddedServer
from flashclaim.tools import children

from helpers import Receiver
from pages_kit import ADMIN, TOKEN, campaign, card, one_code, screenshot


def test_pages_are_served_with_their_security_headers(base: str) -> None:
    centre = httpx.get(base + "/")
    dashboard = httpx.get(base + "/admin")
    for r in (centre, dashboard):
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        csp = r.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
    assert dashboard.headers["cache-control"] == "no-store"
    listing = httpx.get(base + "/v1/admin/campaigns", headers=ADMIN)
    assert listing.headers["cache-control"] == "no-store"  # admin data is never cached
    assert httpx.get(base + "/static/centre.js").headers["content-type"].startswith(
        "text/javascript")
    for missing in ("/static/nothing.js", "/static/centre.html", "/static/..%2Fpages_api.py"):
        assert httpx.get(base + missing).status_code == 404, missing


def test_countdown_then_grab_then_already_claimed_and_sold_out(base: str, page: Page,
                                                              tmp_path: Path) -> None:
    starts = datetime.now(UTC) + timedelta(seconds=3)
    campaign(base, id="soon", name="Midnight sale", stock=5, starts_at=starts.isoformat())
    campaign(base, id="gone", name="Last one", stock=1)
    page.goto(base + "/")
    soon = card(page, "soon")
    expect(soon.locator(".status")).to_contain_text("starts in")
    expect(soon.locator("button")).to_be_disabled()
    page.fill("#user", "alice")
    page.dispatch_event("#user", "change")
    screenshot(page, "coupon-centre.png", tmp_path)
    expect(soon.locator(".status")).to_have_text("live", timeout=10_000)  # the countdown ran out
    soon.locator("button").click()
    expect(soon.locator(".answer")).to_have_text("Granted: ¥20 off ¥100.")
    expect(soon.locator("button")).to_be_disabled()  # alice holds her one: no second offer
    expect(soon.locator(".why")).to_have_text("You hold this coupon.")
    expect(soon.locator(".stock")).to_have_text("4 of 5 left")
    gone = card(page, "gone")
    expect(gone.locator(".stock")).to_have_text("1 of 1 left")
    assert httpx.post(base + "/v1/campaigns/gone/claims",  # someone else is faster
                      headers={"X-User-Id": "early"}).status_code == 201
    expect(gone.locator(".status")).to_have_text("sold out")
    expect(gone.locator("button")).to_be_disabled()


def test_an_operator_creates_pauses_and_watches_a_crowd(base: str, browser: Browser,
                                                        page: Page, tmp_path: Path) -> None:
    page.goto(base + "/admin")
    expect(page.locator("#desk")).to_be_hidden()
    page.fill("#token", TOKEN)
    page.click("#login button")
    assert TOKEN not in page.url
    page.fill("#new-id", "d11")
    page.fill("#new-name", "Double 11 live")
    page.fill("#new-stock", "300")
    page.click("#create button[type=submit]")
    row = page.locator('tr[data-id="d11"]')
    expect(row).to_contain_text("Double 11 live")
    expect(page.locator("#live-name")).to_have_text("Double 11 live")

    # the live view's numbers move during a small flash crowd
    def crowd() -> None:
        with httpx.Client(base_url=base) as c:
            for i in range(400):
                c.post("/v1/campaigns/d11/claims", headers={"X-User-Id": f"crowd{i}"},
                       json={"channel": "app"})

    tapping = threading.Thread(target=crowd)
    tapping.start()
    expect(page.locator("#live-granted")).not_to_have_text("0", timeout=10_000)
    tapping.join()
    expect(page.locator("#live-granted")).to_have_text("300", timeout=10_000)
    expect(page.locator("#live-remaining")).to_have_text("0")
    expect(page.locator("#live-rejected")).to_contain_text("sold out: 100")
    screenshot(page, "operator-dashboard.png", tmp_path)

    # pause another campaign from the dashboard: the coupon centre shows it paused
    campaign(base, id="calm", name="Calm sale")
    shopper = browser.new_page()
    shopper.goto(base + "/")
    expect(card(shopper, "calm").locator(".status")).to_have_text("live")
    calm = page.locator('tr[data-id="calm"]')
    expect(calm).to_be_visible(timeout=10_000)
    calm.get_by_role("button", name="Pause").click()
    expect(calm).to_contain_text("paused")
    expect(card(shopper, "calm").locator(".status")).to_have_text("paused")  # its next refresh
    expect(card(shopper, "calm").locator("button")).to_be_disabled()
    shopper.close()


def test_a_code_is_redeemed_and_the_coupons_show_in_the_wallet(base_with_ledger: str,
                                                                page: Page) -> None:
    base = base_with_ledger
    campaign(base, id="grab", name="Grab me", stock=10)
    campaign(base, id="coded", name="Code gift", stock=10,
             coupons=[{"type": "cash", "value": 500}])
    code = one_code(base, "coded")
    page.goto(base + "/")
    page.fill("#user", "bob")
    page.dispatch_event("#user", "change")
    card(page, "grab").locator("button").click()
    expect(card(page, "grab").locator(".answer")).to_have_text("Granted: ¥20 off ¥100.")
    page.fill("#code", code)
    page.click("#redeem button")
    expect(page.locator("#redeem-answer")).to_have_text("Granted: ¥5 off.")
    page.click("#redeem button")  # bob again: he holds this campaign's coupon
    expect(page.locator("#redeem-answer")).to_contain_text("Already claimed")
    page.fill("#user", "carol")
    page.click("#redeem button")  # carol, with the same single-use code: used up
    expect(page.locator("#redeem-answer")).to_have_text("This code has been used up.")
    page.fill("#user", "bob")
    wanted = ("Grab me: ¥20 off ¥100 (one platform coupon an order), unused, valid until 20",
              "Code gift: ¥5 off (one platform coupon an order), unused")
    deadline = time.monotonic() + 15
    while not all(w in " | ".join(page.locator("#coupons li").all_inner_texts())
                  for w in wanted):
        assert time.monotonic() < deadline, page.locator("#coupons li").all_inner_texts()
        page.click("#wallet-refresh")  # the ledger carries the claims within a moment
        page.wait_for_timeout(100)


def test_a_cart_shows_what_applies_why_not_and_the_best(base_with_ledger: str, page: Page,
                                                        tmp_path: Path) -> None:
    """The coupon centre's sample cart: each coupon's rules in words in the wallet, and a
    quote that says what applies, the shortfall of a threshold coupon in its category, and
    the best combination; more meat in the cart, and the threshold coupon joins it."""
    base = base_with_ledger
    campaign(base, id="meat", name="Meat week", coupons=[
        {"type": "threshold", "value": 2000, "min_spend": 10000,
         "scope": {"categories": ["肉蛋水产"]}}])
    campaign(base, id="fruit", name="Fruit stall", coupons=[
        {"type": "cash", "value": 300, "scope": {"categories": ["fruit"]},
         "stacking": {"group": "merchant"}}])
    campaign(base, id="store", name="Store day", coupons=[
        {"type": "cash", "value": 1000, "use_channels": ["store"]}])
    for campaign_id in ("meat", "fruit", "store"):
        r = httpx.post(f"{base}/v1/campaigns/{campaign_id}/claims", headers={"X-User-Id": "erin"})
        assert r.status_code == 201, r.text
    page.goto(base + "/")
    page.fill("#user", "erin")
    page.dispatch_event("#user", "change")
    deadline = time.monotonic() + 15
    while page.locator("#quoted li").count() < 3:  # the ledger carries the claims shortly
        assert time.monotonic() < deadline, page.locator("#quoted li").all_inner_texts()
        page.click("#quote")
        page.wait_for_timeout(100)
    quoted = " | ".join(page.locator("#quoted li").all_inner_texts())
    assert "¥20 off ¥100: not this time: spend ¥40 more in 肉蛋水产 to use it" in quoted
    assert "¥3 off: applies, ¥3 off" in quoted
    assert "¥10 off: not this time: only store" in quoted
    expect(page.locator("#best")).to_have_text("Best: ¥3 off: ¥3 off, pay ¥114 (of ¥117)")
    page.fill("#qty-0", "4")
    page.dispatch_event("#qty-0", "change")
    page.click("#quote")
    expect(page.locator("#best")).to_have_text(
        "Best: ¥3 off + ¥20 off ¥100: ¥23 off, pay ¥154 (of ¥177)")
    page.click("#wallet-refresh")
    expect(page.locator("#coupons")).to_contain_text(
        "Fruit stall: ¥3 off (on fruit; one merchant coupon an order)")
    expect(page.locator("#coupons")).to_contain_text("Store day: ¥10 off (only store;")
    page.click("#quote")  # (the wallet's refresh moved the page: the answer back in view)
    expect(page.locator("#quoted li")).to_have_count(3)
    page.locator("#quoted").scroll_into_view_if_needed()
    screenshot(page, "coupon-centre-cart.png", tmp_path)


def test_the_centre_offers_only_the_grabs_this_user_can_win(base: str, page: Page) -> None:
    campaign(base, id="shoes", name="Shoe week", stock=5, coupons=[
        {"type": "threshold", "value": 2000, "min_spend": 10000,
         "scope": {"categories": ["shoes"], "exclude_skus": ["sku-gift-card"]}}])
    campaign(base, id="vip-only", name="VIP night", stock=5, segments=["vip"])
    campaign(base, id="app-only", name="App only", stock=5, channels=["app"])
    campaign(base, id="probe", name="Internal probe", stock=None, listed=False)
    page.goto(base + "/")
    expect(card(page, "shoes")).to_be_visible()
    expect(card(page, "probe")).to_have_count(0)  # internal: never on the public list
    expect(card(page, "shoes").locator(".scope")).to_have_text("on shoes; not on sku-gift-card")
    page.fill("#user", "bad id")
    page.dispatch_event("#user", "change")
    card(page, "shoes").locator("button").click()
    expect(card(page, "shoes").locator(".answer")).to_contain_text("A user id is up to 128")
    page.fill("#user", "dora")
    page.dispatch_event("#user", "change")  # the advice about the old id goes with it
    expect(card(page, "shoes").locator(".answer")).to_have_text("")
    for refused in ("vip-only", "app-only"):  # not for dora, or not on this page (web)
        expect(card(page, refused).locator("button")).to_be_disabled()
        expect(card(page, refused).locator(".why")).to_have_text("Not available to you.")
    card(page, "shoes").locator("button").click()
    expect(card(page, "shoes").locator(".answer")).to_have_text("Granted: ¥20 off ¥100.")
    expect(card(page, "shoes").locator("button")).to_be_disabled()  # can_claim is now false
    expect(card(page, "shoes").locator(".why")).to_have_text("You hold this coupon.")


def test_the_dashboard_counts_unlimited_grants_and_explains_its_figures(
        base: str, page: Page) -> None:
    page.goto(base + "/admin")
    expect(page.locator("#login-hint")).to_contain_text(".flashclaim/admin-token")
    campaign(base, id="endless", name="Endless", stock=None)
    for i in range(3):
        assert httpx.post(base + "/v1/campaigns/endless/claims",
                          headers={"X-User-Id": f"e{i}"}).status_code == 201
    page.fill("#token", TOKEN)
    page.click("#login button")
    expect(page.locator("#login-hint")).to_be_hidden()
    row = page.locator('tr[data-id="endless"]')
    expect(row.locator("td").nth(3)).to_have_text("3")  # granted, with no stock to subtract
    expect(row.locator("td").nth(4)).to_have_text("unlimited")
    page.fill("#new-id", "small")
    page.fill("#new-name", "Small sale")
    page.fill("#new-stock", "4")
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_have_text("Created small.")
    expect(page.locator("#new-name")).to_have_value("")  # the form starts afresh
    expect(page.locator("#new-stock")).to_have_value("1000")
    for i in range(2):
        httpx.post(base + "/v1/campaigns/small/claims", headers={"X-User-Id": f"s{i}"})
    expect(page.locator("#live-granted")).to_have_text("2", timeout=10_000)
    expect(page.locator("#live-claim-rate")).to_have_text("50.0%")  # 2 of 4, the same moment
    # no ledger runs here: the use rate's line says the ledger has none of them
    expect(page.locator("#live-ledger")).to_contain_text("2 of the granted not yet",
                                                         timeout=10_000)


def test_the_centre_solves_a_challenge_in_a_worker_then_grabs(base: str, page: Page) -> None:
    campaign(base, id="fair", name="Fair sale", challenge={"difficulty": 16})
    page.goto(base + "/")
    page.fill("#user", "alice")
    page.dispatch_event("#user", "change")
    fair = card(page, "fair")
    fair.locator("button").click()
    expect(fair.locator(".answer")).to_have_text("Solving a short puzzle that keeps bots out…")
    expect(fair.locator(".answer")).to_have_text("Granted: ¥20 off ¥100.", timeout=30_000)
    solve_ms = int(page.locator("body").get_attribute("data-solve-ms") or "-1")
    hashes = int(page.locator("body").get_attribute("data-solve-hashes") or "0")
    print(f"chromium solved 16 bits: {hashes} hashes in {solve_ms} ms")
    assert solve_ms >= 0 and hashes > 0
    granted = httpx.get(base + "/v1/admin/campaigns/fair/claims", headers=ADMIN).json()
    assert [c["user_id"] for c in granted["claims"]] == ["alice"]


def test_a_drawn_campaign_from_entry_to_its_result(base: str, page: Page,
                                                   tmp_path: Path) -> None:
    closes = (datetime.now(UTC) + timedelta(seconds=4)).isoformat()
    campaign(base, id="drawn", name="Drawn sale", stock=1,
             admission={"mode": "draw", "entries_until": closes, "draw_at": closes})
    page.goto(base + "/")
    page.fill("#user", "alice")
    page.dispatch_event("#user", "change")
    drawn = card(page, "drawn")
    expect(drawn.locator("button")).to_have_text("Enter the draw")
    expect(drawn.locator(".draw")).to_contain_text("Entries close in")
    drawn.locator("button").click()
    expect(drawn.locator(".answer")).to_have_text("You are in the draw.")
    screenshot(page, "coupon-centre-draw.png", tmp_path)
    expect(drawn.locator(".answer")).to_have_text("You won! The coupon is in your wallet.",
                                                  timeout=20_000)
    expect(drawn.locator(".draw")).to_contain_text("Drawn among 1 entrants. Seed")
    expect(drawn.locator("button")).to_be_disabled()


def test_the_dashboard_shows_alerts_and_changes_a_rule(base_with_ledger: str,
                                                       page: Page, tmp_path: Path) -> None:
    base = base_with_ledger
    page.goto(base + "/admin")
    page.fill("#token", TOKEN)
    page.click("#login button")
    # a drawn campaign with the defences, made from the form
    page.fill("#new-id", "fair-draw")
    page.fill("#new-name", "Fair draw")
    page.fill("#new-stock", "10")
    page.fill("#new-device", "1")
    page.fill("#new-pow", "12")
    page.fill("#new-draw", "600")
    page.click("#create button[type=submit]")
    expect(page.locator("#live-fair")).to_have_text(
        "Defences: 1 per device (missing id: refuse); proof of work, 12 bits.")
    expect(page.locator("#draw-state")).to_have_text("open")
    expect(page.locator("#draw-seed")).to_contain_text("Seed SHA-256")
    # a farm: seven accounts on one phone win seven coupons
    campaign(base, id="farmed", name="Farmed", stock=100)
    for i in range(7):
        assert httpx.post(base + "/v1/campaigns/farmed/claims", headers={
            "X-User-Id": f"farm{i}", "X-Device-Id": "rig-1"}).status_code == 201
    alert = page.locator('#alerts tr[data-rule="device_grants"]')
    expect(alert).to_contain_text("grants won on one device", timeout=20_000)
    expect(alert).to_contain_text("farm0, farm1")
    expect(alert).to_contain_text(" > 5 in 60 s")  # (6 or 7: as the batches fell)
    page.locator("#risk").scroll_into_view_if_needed()
    screenshot(page, "operator-dashboard-alerts.png", tmp_path)
    rule = page.locator('#rules tr[data-rule="device_grants"]')
    rule.locator("input.threshold").fill("9")
    rule.locator("input.block").check()
    rule.get_by_role("button", name="Save").click()
    expect(page.locator("#note")).to_have_text("Rule device_grants saved.")
    rules = httpx.get(base + "/v1/admin/alert-rules", headers=ADMIN).json()["rules"]
    [changed] = [r for r in rules if r["rule"] == "device_grants"]
    assert (changed["threshold"], changed["block"]) == (9, True)


def test_the_dashboard_adds_a_webhook_and_shows_its_deliveries_rules_and_schedules(
        base_with_ledger: str, page: Page, tmp_path: Path, server: EmbeddedServer) -> None:
    base = base_with_ledger
    receiver = Receiver().start()
    env = children.clean_env(FLASHCLAIM_REDIS_URL=server.url)
    dispatcher = children.start(["webhooks"], env, tmp_path / "webhooks.log")
    try:
        campaign(base, id="hooked", name="Hooked", stock=10)
        rule = httpx.post(base + "/v1/admin/rules", headers=ADMIN, json={
            "rule_id": "welcome", "on": "signup", "grant": {"campaign_id": "hooked"}})
        assert rule.status_code == 201
        made = httpx.post(base + "/v1/admin/schedules", headers=ADMIN, json={
            "schedule_id": "monthly", "campaign_id": "hooked", "every": {"month_day": 1},
            "segment": {"users": ["vip1", "vip2"]}})
        assert made.status_code == 201
        page.goto(base + "/admin")
        page.fill("#token", TOKEN)
        page.click("#login button")
        page.fill("#webhook-url", receiver.url)
        page.fill("#webhook-events", "claim.granted")
        page.click("#new-webhook button")
        expect(page.locator("#webhook-secret")).to_contain_text("shown this once: whsec_")
        assert httpx.post(base + "/v1/campaigns/hooked/claims",
                          headers={"X-User-Id": "alice"}).status_code == 201
        row = page.locator("#webhooks tr").first
        expect(row).to_contain_text("claim.granted 200", timeout=30_000)
        assert [orjson.loads(b)["data"]["claim"]["user_id"] for _, b in receiver.got] == ["alice"]
        welcome = page.locator('#trigger-rules tr[data-rule="welcome"] td')
        expect(welcome).to_have_text(["welcome", "signup", "always", "hooked", "user", "0"],
                                     timeout=10_000)
        expect(page.locator('#schedules tr[data-schedule="monthly"]')).to_contain_text(
            "month_day 1, at 00:00 (Asia/Shanghai)")
        page.locator("#webhooks").scroll_into_view_if_needed()
        screenshot(page, "operator-dashboard-webhooks.png", tmp_path)
    finally:
        children.stop(dispatcher)
        receiver.stop()


def test_each_role_sees_only_what_it_may_do(base: str, browser: Browser, page: Page,
                                            tmp_path: Path) -> None:
    campaign(base, id="seen", name="Seen by all")
    page.goto(base + "/admin")
    page.fill("#token", TOKEN)
    page.click("#login button")
    expect(page.locator("#who")).to_have_text("bootstrap (admin)")
    seen = page.locator('tr[data-id="seen"]')
    seen.get_by_role("button", name="Watch").click()
    seen.get_by_role("button", name="Pause").click()
    expect(page.locator("#live-history")).to_contain_text(
        "bootstrap (admin) POST /v1/admin/campaigns/seen/pause → 200", timeout=10_000)
    seen.get_by_role("button", name="Resume").click()
    made: dict[str, str] = {}
    for role in ("viewer", "operator"):  # made from the dashboard: shown once
        page.fill("#token-name", f"{role}-1")
        page.select_option("#token-role", role)
        page.click("#new-token button")
        expect(page.locator("#token-made")).to_contain_text(
            f"Token {role}-1 ({role}), shown this once: fct_")
        made[role] = page.locator("#token-made").inner_text().rsplit(" ", 1)[-1]
    expect(page.locator('#tokens tr[data-name="viewer-1"]')).to_contain_text("viewer")
    screenshot(page, "operator-dashboard-tokens.png", tmp_path)
    for role, writes, admin_only in (("viewer", False, False), ("operator", True, False)):
        other = browser.new_page()
        other.goto(base + "/admin")
        other.fill("#token", made[role])
        other.click("#login button")
        expect(other.locator("#who")).to_have_text(f"{role}-1 ({role})")
        row = other.locator('tr[data-id="seen"]')
        expect(row).to_contain_text("Seen by all")  # both read the campaigns
        expect(row.get_by_role("button", name="Watch")).to_be_visible()
        pause = row.get_by_role("button", name="Pause")
        (expect(pause).to_be_visible if writes else expect(pause).to_be_hidden)()
        create = other.locator("#create")
        (expect(create).to_be_visible if writes else expect(create).to_be_hidden)()
        for admin_thing in ("#new-webhook", "#new-token"):
            (expect(other.locator(admin_thing)).to_be_visible if admin_only
             else expect(other.locator(admin_thing)).to_be_hidden)()
        other.close()


def test_both_pages_speak_chinese_to_a_chinese_browser(base: str, browser: Browser,
                                                        tmp_path: Path) -> None:
    campaign(base, id="zh", name="双十一")
    context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 700})
    page = context.new_page()
    page.goto(base + "/")
    expect(page.locator("h1")).to_have_text("领券中心")
    card_zh = card(page, "zh")
    expect(card_zh.locator("button")).to_have_text("立即领取")
    expect(card_zh.locator(".coupon")).to_have_text("满 ¥100.00 减 ¥20.00")
    expect(card_zh.locator(".status")).to_have_text("进行中")
    expect(card_zh.locator(".stock")).to_have_text("剩余 100 / 100")
    page.fill("#user", "xiaoming")
    page.dispatch_event("#user", "change")
    card_zh.locator("button").click()
    expect(card_zh.locator(".answer")).to_have_text("领取成功：满 ¥100.00 减 ¥20.00。")  # noqa: RUF001
    screenshot(page, "coupon-centre-zh.png", tmp_path)
    page.click("#lang")  # the switch: English, kept for the next visit
    expect(page.locator("h1")).to_have_text("Coupon centre")
    expect(card(page, "zh").locator(".coupon")).to_have_text("¥20 off ¥100")
    page.click("#lang")
    expect(page.locator("h1")).to_have_text("领券中心")
    page.goto(base + "/admin")
    expect(page.locator("h1")).to_have_text("运营后台")
    page.fill("#token", TOKEN)
    page.click("#login button")
    expect(page.locator('tr[data-id="zh"]')).to_contain_text("进行中")
    expect(page.locator('tr[data-id="zh"]').get_by_role("button", name="暂停")).to_be_visible()
    context.close()
