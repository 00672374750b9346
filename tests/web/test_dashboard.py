"""The operator dashboard as the operators' whole tool, in a real browser: the full campaign
form, templates, a grant from a users file with its progress, codes generated and exported
once, budgets, cap groups, the blocklist, the charts with their CSV, and a viewer who is
offered no write at all."""

from __future__ import annotations

import csv
import io
import re
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Browser, FilePayload, Page, expect

from pages_kit import ADMIN, TOKEN, campaign, card, screenshot


def sign_in(page: Page, base: str, token: str = TOKEN) -> None:
    page.goto(base + "/admin")
    page.fill("#token", token)
    page.click("#login button")
    expect(page.locator("#desk")).to_be_visible()


def api(base: str, path: str) -> dict[str, Any]:
    r = httpx.get(base + path, headers=ADMIN)
    assert r.status_code == 200, r.text
    found: dict[str, Any] = r.json()
    return found


def test_the_full_form_makes_the_campaign_it_shows(base: str, page: Page,
                                                    tmp_path: Path) -> None:
    sign_in(page, base)
    page.fill("#cap-name", "newcomers")  # a cap group first, from the settings
    page.fill("#cap-unused", "3")
    page.click("#cap-group-form button[type=submit]")
    expect(page.locator('#cap-groups tr[data-name="newcomers"]')).to_contain_text("3")
    expect(page.locator("#new-cap-group option[value=newcomers]")).to_have_count(1)

    page.fill("#new-id", "full")
    page.fill("#new-name", "Full form")
    page.fill("#new-stock", "50")
    page.fill("#new-ends", "48")
    first = page.locator(".coupon-row").nth(0)
    first.locator(".c-type").select_option("threshold")
    first.locator(".c-value").fill("20")
    first.locator(".c-min").fill("100")
    first.locator(".c-days").fill("7")
    first.locator(".c-categories").fill("fruit, dairy")
    first.locator(".c-hours").fill("sat,sun 18:00-22:00")
    page.click("#add-coupon")
    second = page.locator(".coupon-row").nth(1)
    second.locator(".c-type").select_option("discount")
    expect(second.locator(".c-value")).to_be_hidden()  # a percentage has no value
    second.locator(".c-percent").fill("15")
    second.locator(".c-max").fill("30")
    second.locator(".c-use-channels").fill("app")
    page.fill("#new-channels", "app,web")
    page.fill("#new-segments", "vip")
    page.fill("#new-excluded", "risky")
    page.fill("#new-limit", "2")
    page.fill("#new-daily", "1")
    page.fill("#new-rate", "5")
    page.fill("#new-buckets", "2")
    page.fill("#new-budget", "500")
    page.select_option("#new-cap-group", "newcomers")
    screenshot(page, "operator-dashboard-form.png", tmp_path)
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_have_text("Created full.")
    made = api(base, "/v1/admin/campaigns/full")
    assert [(c["type"], c.get("value"), c.get("min_spend"), c.get("percent_off"),
             c.get("max_discount")) for c in made["coupons"]] == [
        ("threshold", 2000, 10_000, None, None), ("discount", None, 0, 15, 3000)]
    assert made["coupons"][0]["scope"]["categories"] == ["dairy", "fruit"]  # sorted
    assert made["coupons"][0]["validity"] == {"days": 7}
    assert (made["coupons"][0]["use_windows"], made["coupons"][0]["timezone"]) == (
        [{"days": ["sat", "sun"], "from": "18:00", "to": "22:00"}], "Asia/Shanghai")
    assert made["coupons"][1]["use_channels"] == ["app"]
    assert (made["channels"], made["segments"], made["exclude_segments"]) == (
        ["app", "web"], ["vip"], ["risky"])
    assert (made["per_user_limit"], made["per_user_daily_limit"], made["buckets"],
            made["cap_group"], made["rate_limit"]) == (2, 1, 2, "newcomers",
                                                       {"max": 5, "per_seconds": 1})
    assert made["stats"]["budget"]["amount"] == 50_000
    assert made["ends_at"] is not None
    # the live view shows the budget and the cap group
    expect(page.locator("#live-budget")).to_have_text("¥500.00")
    expect(page.locator("#live-fair")).to_contain_text("cap group newcomers")
    # a refusal is explained, and changes nothing
    page.fill("#new-name", "Too many")
    page.fill("#new-daily", "9")  # above per user
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_contain_text("per_user_daily_limit")

    # the row's actions: more stock, then end (after a confirmation)
    page.on("dialog", lambda dialog: dialog.accept())
    row = page.locator('tr[data-id="full"]')
    row.get_by_role("button", name="+100").click()
    expect(row).to_contain_text("150")
    row.get_by_role("button", name="End").click()
    expect(row).to_contain_text("ended")
    assert api(base, "/v1/admin/campaigns/full")["status"] == "ended"
    # a cap group deleted from the settings is gone from the form's choices
    page.locator('#cap-groups tr[data-name="newcomers"]').get_by_role("button",
                                                                      name="Delete").click()
    expect(page.locator('#cap-groups tr[data-name="newcomers"]')).to_have_count(0)
    expect(page.locator("#new-cap-group option[value=newcomers]")).to_have_count(0)


def test_templates_grants_codes_budget_and_blocklist(base: str, page: Page,
                                                     tmp_path: Path) -> None:
    sign_in(page, base)
    first = page.locator(".coupon-row").nth(0)
    first.locator(".c-type").select_option("cash")
    first.locator(".c-value").fill("8")
    page.fill("#template-name", "Eight off")
    page.click("#new-template button[type=submit]")
    row = page.locator("#templates tr", has_text="Eight off")
    expect(row).to_contain_text("¥8.00")
    template_id = row.get_attribute("data-id")
    # a campaign of that template, with a budget of six grants
    page.fill("#new-id", "tpl")
    page.fill("#new-name", "From a template")
    page.fill("#new-stock", "100")
    page.locator(".coupon-row .c-type").select_option(f"template:{template_id}")
    page.fill("#new-budget", "48")
    page.click("#create button[type=submit]")
    expect(page.locator("#live-name")).to_have_text("From a template")
    assert api(base, "/v1/admin/campaigns/tpl")["coupons"][0]["template"] == {
        "id": template_id, "version": 1}

    # a grant to the users of a file (a CSV with a header): its progress, then done
    users = "user_id,note\n" + "".join(f"file-user-{i},x\n" for i in range(8))
    page.set_input_files("#grant-users", files=FilePayload(
        name="users.csv", mimeType="text/csv", buffer=users.encode()))
    page.click("#grant-file button[type=submit]")
    expect(page.locator("#grant-state")).to_contain_text("8 of 8 users decided", timeout=20_000)
    expect(page.locator("#grant-state")).to_contain_text("granted 6")
    expect(page.locator("#grant-state")).to_contain_text("budget exhausted 2")
    expect(page.locator("#live-budget")).to_have_text("¥0.00")
    page.fill("#top-up-amount", "16")
    page.click("#top-up button[type=submit]")
    expect(page.locator("#live-budget")).to_have_text("¥16.00")

    # codes: generated, exported once, then no more
    plain = campaign(base, id="codes", name="Codes")
    page.locator(f'tr[data-id="{plain["id"]}"]').get_by_role("button", name="Watch").click()
    page.fill("#codes-count", "5")
    page.click("#new-codes button[type=submit]")
    export = page.locator("button.export-codes")
    expect(export).to_be_visible(timeout=20_000)
    with page.expect_download() as downloaded:
        export.click()
    rows = list(csv.DictReader(io.StringIO(Path(downloaded.value.path()).read_text())))
    assert len(rows) == 5 and all(r["code"] for r in rows)
    expect(page.locator("#code-batches")).to_contain_text("exported")
    expect(export).to_have_count(0)
    again = httpx.get(f"{base}/v1/admin/campaigns/codes/codes.csv", headers=ADMIN)
    assert again.status_code == 410  # exported once: gone

    # the blocklist: a user blocked from the page is refused a grab, then unblocked
    page.fill("#block-user", "mallory")
    page.fill("#block-reason", "bot farm")
    page.click("#new-block button[type=submit]")
    expect(page.locator('#blocklist tr[data-user="mallory"]')).to_contain_text("bot farm")
    refused = httpx.post(f"{base}/v1/campaigns/codes/claims", headers={"X-User-Id": "mallory"})
    assert refused.json()["error"] == "blocked"
    page.locator('#blocklist tr[data-user="mallory"]').get_by_role("button",
                                                                   name="Unblock").click()
    expect(page.locator('#blocklist tr[data-user="mallory"]')).to_have_count(0)
    deadline = time.monotonic() + 10
    while httpx.post(f"{base}/v1/campaigns/codes/claims",
                     headers={"X-User-Id": "mallory"}).status_code != 201:
        assert time.monotonic() < deadline  # every instance reads the change within a second
        time.sleep(0.05)


def test_the_charts_draw_the_report_and_the_live_minutes(base_with_ledger: str, page: Page,
                                                         tmp_path: Path) -> None:
    base = base_with_ledger
    made = campaign(base, id="charted", name="Charted", stock=400,
                    segments=[], channels=[])
    assert made["id"] == "charted"
    for i in range(60):  # claims over two channels and two segments
        r = httpx.post(f"{base}/v1/campaigns/charted/claims",
                       headers={"X-User-Id": f"c{i}", "X-User-Tags": "vip" if i % 3 else "new"},
                       json={"channel": "app" if i % 2 else "web"})
        assert r.status_code == 201
    sign_in(page, base)
    page.locator('tr[data-id="charted"]').get_by_role("button", name="Watch").click()

    def crowd() -> None:  # more claims, and refusals, while the live chart draws
        with httpx.Client(base_url=base) as c:
            for i in range(700):  # a few seconds of taps: the live chart has a shape
                c.post("/v1/campaigns/charted/claims", headers={"X-User-Id": f"live{i % 380}"})
                time.sleep(0.006)

    tapping = threading.Thread(target=crowd)
    tapping.start()
    timeline = page.locator("#report-timeline svg path.series")
    expect(timeline).to_have_count(2, timeout=20_000)  # claims and uses per minute
    expect(page.locator('#report-channel rect.bar[data-label="app"][data-name="claims"]')
           ).to_have_attribute("data-value", "30", timeout=20_000)
    expect(page.locator('#report-segment rect.bar[data-label="vip"][data-name="claims"]')
           ).to_have_attribute("data-value", "40")
    expect(page.locator("#report-source rect.bar[data-label=grab]")).to_have_count(2)
    tapping.join()
    expect(page.locator("#live-chart svg path.series").first).to_be_visible()
    expect(page.locator('#live-chart path.series[data-name="sold out /s"]')).to_have_count(
        1, timeout=10_000)
    screenshot(page.locator("#live"), "operator-dashboard-charts.png", tmp_path)
    with page.expect_download() as downloaded:
        page.click("#report-csv")
    rows = list(csv.reader(io.StringIO(Path(downloaded.value.path()).read_text())))
    assert rows[0][:3] == ["dimension", "value", "claims"]
    by = {(r[0], r[1]): r for r in rows if len(r) > 2}
    assert by[("channel", "web")][2] == "30" and by[("segment", "new")][2] == "20"


def test_a_viewer_is_offered_no_write(base: str, browser: Browser) -> None:
    made = httpx.post(base + "/v1/admin/tokens", headers=ADMIN,
                      json={"name": "watcher", "role": "viewer"}).json()["token"]
    campaign(base, id="looked-at", name="Looked at")
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    sign_in(page, base, made)
    expect(page.locator("#who")).to_have_text("watcher (viewer)")
    page.locator('tr[data-id="looked-at"]').get_by_role("button", name="Watch").click()
    expect(page.locator("#live-name")).to_have_text("Looked at")
    expect(page.locator("#report-timeline")).to_be_visible()  # reads: yes
    for write in ("#create", "#new-template", "#grant-file", "#new-codes", "#top-up",
                  "#cap-group-form", "#new-block", "#new-token", "#new-webhook"):
        expect(page.locator(write)).to_be_hidden()
    visible_buttons = page.locator("#campaigns button:visible")
    expect(visible_buttons).to_have_text(["Watch"])
    context.close()


def test_the_dashboard_tool_speaks_chinese(base: str, browser: Browser, tmp_path: Path) -> None:
    campaign(base, id="zh-tool", name="年货节", budget={"amount": 10_000, "currency": "CNY"})
    context = browser.new_context(locale="zh-CN", viewport={"width": 1100, "height": 900})
    page = context.new_page()
    sign_in(page, base)
    expect(page.locator("nav.sections")).to_contain_text("券模板")
    expect(page.locator("#create legend").first).to_have_text("基本信息")
    expect(page.locator(".coupon-row .c-type option").first).to_have_text("无门槛券")
    expect(page.locator("#cap-group-form button[type=submit]")).to_have_text("保存封顶组")
    page.locator('tr[data-id="zh-tool"]').get_by_role("button", name="查看").click()
    expect(page.locator("#live-budget")).to_have_text("¥100.00")
    expect(page.locator("#live-chart .legend").first).to_have_text("每秒发放", timeout=10_000)
    expect(page.locator("#report-csv")).to_have_text("导出 CSV")
    screenshot(page, "operator-dashboard-zh.png", tmp_path)
    context.close()


def test_a_blind_box_made_on_the_form_and_grabbed_in_the_centre(base: str, page: Page,
                                                                  browser: Browser) -> None:
    sign_in(page, base)
    page.fill("#new-id", "box")
    page.fill("#new-name", "Blind box")
    row = page.locator(".coupon-row").nth(0)
    row.locator(".c-type").select_option("random_cash")
    expect(row.locator(".c-value")).to_be_hidden()
    row.locator(".c-values").fill("1×3, 30x1")  # noqa: RUF001  (both signs are read)
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_have_text("Created box.")
    made = api(base, "/v1/admin/campaigns/box")
    assert (made["stock"], made["coupons"][0]["values"]) == (
        4, [{"value": 100, "count": 3}, {"value": 3000, "count": 1}])
    shopper = browser.new_page()
    shopper.goto(base + "/")
    box = card(shopper, "box")
    expect(box.locator(".coupon")).to_have_text("A surprise ¥1 to ¥30 off")
    shopper.fill("#user", "lucky")
    shopper.dispatch_event("#user", "change")
    box.locator("button").click()
    expect(box.locator(".answer")).to_have_text(re.compile(r"Granted: ¥(1|30) off\."))
    shopper.close()


def test_the_uplift_of_a_holdout_campaign_on_the_dashboard(base_with_ledger: str, page: Page,
                                                            tmp_path: Path) -> None:
    base = base_with_ledger
    events = {"Authorization": "Bearer " + (tmp_path / "data" / "events-token").read_text()
              .strip()}
    made = campaign(base, id="ab", name="A/B", stock=None, holdout={"percent": 50, "salt": "s"})
    assert made["holdout"] == {"percent": 50, "salt": "s"}
    treated = 0
    with httpx.Client(base_url=base) as c:
        for i in range(40):  # about half are held out; every one buys ¥100
            user = f"ab{i}"
            r = c.post("/v1/campaigns/ab/claims", headers={"X-User-Id": user})
            assert r.status_code in (201, 403), r.text
            treated += r.status_code == 201
            paid = c.post("/v1/events", headers=events, json={
                "event_id": f"paid-{user}", "type": "order_paid", "user_id": user,
                "attributes": {"amount": 10_000}})
            assert paid.status_code == 202, paid.text
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(),
              "to": (now + timedelta(days=1)).isoformat(), "margin": "0.2"}
    deadline = time.monotonic() + 30
    while httpx.get(f"{base}/v1/admin/campaigns/ab/uplift", headers=ADMIN, params=window
                    ).json()["control"]["buyers"] != 40 - treated:
        assert time.monotonic() < deadline, "the ledger never carried the groups"
        time.sleep(0.1)
    sign_in(page, base)
    page.locator('tr[data-id="ab"]').get_by_role("button", name="Watch").click()
    expect(page.locator("#uplift")).to_be_visible()
    expect(page.locator("#live-fair")).to_contain_text("holdout 50% (control group)")
    page.click("#uplift-form button[type=submit]")
    expect(page.locator('#uplift-groups tr[data-group="treatment"]')).to_contain_text(
        f"{treated}")
    expect(page.locator('#uplift-groups tr[data-group="control"]')).to_contain_text("¥20.00")
    # both groups buy alike: no uplift (0, within its interval)
    expect(page.locator("#uplift-answer")).to_contain_text("Uplift per treated user: ¥0.00")
    screenshot(page.locator("#uplift"), "operator-dashboard-uplift.png", tmp_path)


def test_personal_values_from_the_form_and_a_users_file(base_with_ledger: str,
                                                       page: Page) -> None:
    base = base_with_ledger
    sign_in(page, base)
    page.fill("#new-id", "personal")
    page.fill("#new-name", "Personal values")
    page.fill("#new-stock", "10")
    row = page.locator(".coupon-row").nth(0)
    row.locator(".c-value").fill("5")
    row.locator(".c-personal").fill("1-20")
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_have_text("Created personal.")
    assert api(base, "/v1/admin/campaigns/personal")["coupons"][0]["personal"] == {
        "min": 100, "max": 2000}
    users = "user_id,value\np1,18\np2,1\np3,\n"  # p3: the default ¥5
    page.set_input_files("#grant-users", files=FilePayload(
        name="values.csv", mimeType="text/csv", buffer=users.encode()))
    page.click("#grant-file button[type=submit]")
    expect(page.locator("#grant-state")).to_contain_text("3 of 3 users decided", timeout=20_000)
    expect(page.locator("#grant-state")).to_contain_text("granted 3")
    deadline = time.monotonic() + 30
    while (values := [(f["value"], f["coupons"]) for f in api(
            base, "/v1/admin/campaigns/personal/report")["face_values"]]) != [
            (100, 1), (500, 1), (1800, 1)]:
        assert time.monotonic() < deadline, values  # the ledger has each user's own value
        time.sleep(0.1)


def test_a_gift_and_a_trade_up_from_the_form_to_the_centre(base: str, page: Page,
                                                          browser: Browser) -> None:
    sign_in(page, base)
    page.fill("#new-id", "gifts")
    page.fill("#new-name", "Gifts")
    first = page.locator(".coupon-row").nth(0)
    first.locator(".c-type").select_option("gift")
    first.locator(".c-sku").fill("tea-cup")
    first.locator(".c-item-money").fill("9")
    first.locator(".c-pickup").check()
    page.click("#add-coupon")
    second = page.locator(".coupon-row").nth(1)
    second.locator(".c-type").select_option("trade_up")
    second.locator(".c-sku").fill("cola")
    second.locator(".c-item-money").fill("1")
    second.locator(".c-min").fill("50")
    page.click("#create button[type=submit]")
    expect(page.locator("#note")).to_have_text("Created gifts.")
    made = api(base, "/v1/admin/campaigns/gifts")["coupons"]
    assert [(c["type"], c["sku"], c.get("cost"), c.get("price"), c.get("fulfilment"))
            for c in made] == [("gift", "tea-cup", 900, None, "pickup"),
                               ("trade_up", "cola", None, 100, None)]
    shopper = browser.new_page()
    shopper.goto(base + "/")
    expect(card(shopper, "gifts").locator(".coupon")).to_contain_text(
        "A free tea-cup (pick up in store)")
    expect(card(shopper, "gifts").locator(".coupon")).to_contain_text(
        "cola for ¥1 when you spend ¥50")
    shopper.close()
