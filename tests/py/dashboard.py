"""Drives `dnsq serve`'s dashboard and a `dnsq report` file in Debian's Chromium
(headless, through Playwright) and writes what the pages showed as JSON, for
tests/dashboard.rs to hold against `dnsq sql`.

usage: dashboard.py URL REPORT.html OUT.json [SCREENSHOT_DIR]
"""

import json
import os
import sys

from playwright.sync_api import sync_playwright

url, report, out = sys.argv[1], sys.argv[2], sys.argv[3]
shots = sys.argv[4] if len(sys.argv) > 4 else None
chromium = os.environ.get("DNSQ_CHROMIUM", "/usr/bin/chromium")

STATE = """() => ({
  search: location.search,
  loads: window.dnsq.loads,
  state: window.dnsq.state,
  summary: window.dnsq.summary,
  panels: window.dnsq.panels,
  unchanged: window.dnsq.unchanged,
  chips: [...document.querySelectorAll('#bar .chip')].map(c => [c.dataset.key, c.dataset.value]),
  sections: [...document.querySelectorAll('section.panel')].map(s => ({
    id: s.dataset.panel, state: s.dataset.state, leg: s.dataset.leg,
    canvas: !!s.querySelector('canvas'),
    table_rows: s.querySelectorAll('table tr').length,
    empty: !!s.querySelector('.empty'),
    about: s.querySelector('.tools').textContent })),
})"""


def settled(page, loads):
    page.wait_for_function(
        f"() => window.dnsq && window.dnsq.loads >= {loads} && document.body.dataset.state === 'ready'",
        timeout=60_000,
    )
    return page.evaluate(STATE)


result = {"console": [], "requests_after_offline": []}
with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    for scheme in ["light", "dark"]:
        ctx = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme=scheme)
        page = ctx.new_page()
        page.on("console", lambda m: m.type == "error" and result["console"].append(m.text))
        page.on("pageerror", lambda e: result["console"].append(str(e)))
        page.goto(url)
        first = settled(page, 1)
        if shots:
            page.screenshot(path=os.path.join(shots, f"dashboard-{scheme}.png"), full_page=True)
        if scheme == "dark":
            ctx.close()
            continue
        result["first"] = first

        # click a domain in the top domains table: every panel refilters
        cell = page.locator("section[data-panel=top_domains] td.facet[data-key=domain]").first
        result["clicked"] = cell.get_attribute("data-value")
        cell.click()
        result["filtered"] = settled(page, 2)

        # drag across the downstream response-time chart: the view's time range
        chart = page.locator("section[data-panel=latency_down] canvas").first
        chart.scroll_into_view_if_needed()
        box = chart.bounding_box()
        y = box["y"] + box["height"] / 2
        page.mouse.move(box["x"] + box["width"] * 0.3, y)
        page.mouse.down()
        page.mouse.move(box["x"] + box["width"] * 0.5, y, steps=5)
        page.mouse.move(box["x"] + box["width"] * 0.7, y, steps=5)
        page.mouse.up()
        result["brushed"] = settled(page, 3)

        # back twice: the domain filter alone, then the first view
        page.go_back()
        result["back1"] = settled(page, 4)
        page.go_back()
        result["back2"] = settled(page, 5)

        # a link reopens the same view
        page.goto(url.rstrip("/") + "/" + result["brushed"]["search"])
        result["reopened"] = settled(page, 1)

        # a chip's remove button drops its filter
        page.locator("#bar .chip[data-key=domain] button.remove").click()
        result["unchipped"] = settled(page, 2)

        # 10-second buckets from the menu: the panels that read no bucket are
        # answered `same` by the server and stay as drawn
        page.select_option("#bucket", "10s")
        result["rebucketed"] = settled(page, 3)

        # a bar of the unanswered panel is a server on one leg: a click narrows to both
        page.locator("#chart-unanswered").scroll_into_view_if_needed()
        x, y = page.evaluate("""() => {
          const box = document.getElementById('chart-unanswered');
          const c = echarts.getInstanceByDom(box);
          const d = c.getOption().series[0].data.find(p => p[1] > 0);
          const px = c.convertToPixel({ seriesIndex: 0 }, [d[0], d[1] / 2]);
          const r = box.getBoundingClientRect();
          return [r.left + px[0], r.top + px[1]];
        }""")
        page.mouse.click(x, y)
        result["legclick"] = settled(page, 4)
        ctx.close()

    # the report, from a file, with the network off: every request is refused
    ctx = browser.new_context(viewport={"width": 1440, "height": 900}, offline=True)

    def refuse(route):
        if route.request.url.startswith("file:"):
            return route.continue_()
        result["requests_after_offline"].append(route.request.url)
        return route.abort()

    ctx.route("**/*", refuse)
    page = ctx.new_page()
    page.on("console", lambda m: m.type == "error" and result["console"].append("report: " + m.text))
    page.on("pageerror", lambda e: result["console"].append("report: " + str(e)))
    page.goto("file://" + os.path.abspath(report))
    result["report"] = settled(page, 1)
    if shots:
        page.screenshot(path=os.path.join(shots, "report.png"), full_page=True)
    ctx.close()
    browser.close()

with open(out, "w") as f:
    json.dump(result, f)
