"""Times `dnsq serve`'s dashboard as a browser sees it (Debian's Chromium through
Playwright): the first load, a reload, a click on the busiest domain, back, a
tenth of the time range, an rcode filter, removing its chip, 1-minute buckets
chosen in the page's menu and 5-minute buckets opened as a link (a new page:
scripts parsed again), each until every panel is drawn; and each panel's
answer as the browser timed it: from asking to its line of the streamed answer
arriving (`window.dnsq.timing`), and each request. Prints one JSON object.

usage: serve.py URL
"""

import calendar
import json
import os
import sys
import time

from playwright.sync_api import sync_playwright

url = sys.argv[1].rstrip("/") + "/"
chromium = os.environ.get("DNSQ_CHROMIUM", "/usr/bin/chromium")
READY = "n => window.dnsq && window.dnsq.loads >= n && document.body.dataset.state === 'ready'"
REQUESTS = """() => performance.getEntriesByType('resource')
  .filter(e => e.name.includes('/api/'))
  .map(e => [new URL(e.name).pathname, Math.round(e.duration)])"""

out = {"views": [], "requests": {}}


def timed(page, what, n, act):
    page.evaluate("performance.clearResourceTimings()")
    t = time.monotonic()
    act()
    page.wait_for_function(READY, arg=n, timeout=600_000)
    wall = time.monotonic() - t
    reqs = page.evaluate(REQUESTS)
    out["views"].append({
        "view": what,
        "seconds": round(wall, 3),
        "search": page.evaluate("location.search"),
        "arrived": page.evaluate("window.dnsq.timing"),
    })
    out["requests"][what] = reqs
    return reqs


with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
    page = browser.new_page(viewport={"width": 1440, "height": 900})
    timed(page, "first load", 1, lambda: page.goto(url))
    timed(page, "reload (answers kept)", 1, lambda: page.reload())
    busiest = page.locator("section[data-panel=top_domains] td.facet[data-key=domain]").first
    domain = busiest.get_attribute("data-value")
    timed(page, f"click the busiest domain ({domain})", 2, lambda: busiest.click())
    timed(page, "back to all domains", 3, lambda: page.go_back())
    meta = page.evaluate("window.dnsq.meta")
    first, last = [calendar.timegm(time.strptime(t[:19], "%Y-%m-%dT%H:%M:%S")) for t in (meta["first"], meta["last"])]
    mid = (first + last) / 2
    since = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mid - (last - first) / 20))
    until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(mid + (last - first) / 20))
    timed(page, "a tenth of the time range", 1, lambda: page.goto(f"{url}?since={since}&until={until}"))
    timed(page, "rcode SERVFAIL", 1, lambda: page.goto(f"{url}?rcode=SERVFAIL"))
    out["panels"] = {k: [v["ms"]] for k, v in page.evaluate("window.dnsq.panels").items()}
    chip = page.locator("#bar .chip[data-key=rcode] button.remove")
    timed(page, "remove the rcode chip (answers kept)", 2, lambda: chip.click())
    timed(page, "1-minute buckets from the menu (not kept)", 3, lambda: page.select_option("#bucket", "1m"))
    for k, v in page.evaluate("window.dnsq.panels").items():
        out["panels"][k].append(v["ms"])
    timed(page, "a link with 5-minute buckets (not kept)", 1, lambda: page.goto(f"{url}?bucket=5m"))
    for k, v in page.evaluate("window.dnsq.panels").items():
        out["panels"][k].append(v["ms"])
    browser.close()
print(json.dumps(out))
