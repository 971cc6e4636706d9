# The dashboard: the page's build (tools/webbuild.py), how the firmware
# serves it (firmware/dashboard.py, frozen bytes or a file, through the
# connection's buffer), and the page itself in a real headless Chromium
# (selenium, chromedriver; offline) against the firmware under the 32-bit
# MicroPython unix port and the BMS simulator: the simulator's values on the
# page, a protection shown first and loud, a silent BMS greyed out and named,
# a control that switches the simulated BMS, a BMS parameter written and read
# back, a rejected settings file as a red banner, and the long-poll fallback
# and missing endpoints against a stand-in server. The screenshots in
# docs/screenshots/ (README "Dashboard") are written here.
import base64
import gzip
import hashlib
import http.server
import json
import os
import re
import shutil
import struct
import subprocess
import threading
import time
import urllib.parse
import zlib

import pytest

import mpbuild
import run
import webbuild
from ant import alarms
from fwproc import TOKEN, bridge, firmware_module, wait_until
from sim.protection import MANUAL_OFF
from simproc import SimProcess

ROOT = run.ROOT
SHOTS = os.path.join(ROOT, "docs", "screenshots")
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Offline: no updates, no sync, no QUIC, nothing fetched from outside
# (/work/shared/TOOLCHAIN.md section 5).
CHROME_FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--window-size=1280,900")
MOBILE = (412, 915, 2.625)  # a 6.3" phone, CSS pixels and device pixel ratio
DESKTOP = (1280, 900, 1)


def built():
    return webbuild.build(ROOT)


# -- the build --------------------------------------------------------------------------------


def test_the_build_is_deterministic_and_holds_the_whole_page(tmp_path):
    a = webbuild.build(ROOT, str(tmp_path / "a"))
    b = webbuild.build(ROOT, str(tmp_path / "b"))
    with open(a["paths"]["gz"], "rb") as f:
        gz = f.read()
    with open(b["paths"]["gz"], "rb") as f:
        assert f.read() == gz  # the same sources give the same bytes
    assert gz[:4] == b"\x1f\x8b\x08\x00" and gz[4:8] == b"\0\0\0\0"  # gzip, no name, mtime 0
    html = gzip.decompress(gz).decode()
    with open(a["paths"]["html"]) as f:
        assert f.read() == html
    # One file: the stylesheet and the script are inside, nothing is fetched.
    assert "<style>" in html and "<script>" in html and "href=\"style.css\"" not in html and "src=" not in html
    assert "http://" not in html and "https://" not in html
    assert "EventSource('/api/stream')" in html and "wait_ms=25000" in html
    assert '<meta name="viewport" content="width=device-width,initial-scale=1">' in html
    assert "prefers-color-scheme: dark" in html.replace("prefers-color-scheme:dark", "prefers-color-scheme: dark")
    # Every line of the sources that is not a comment survives the light minifying.
    with open(os.path.join(ROOT, "www", "app.js")) as f:
        code = [line.strip() for line in f if line.strip() and not line.strip().startswith("//")]
    assert all(line in html for line in code)
    # The ETag names the page's content: CRC-32 and length of what gunzips.
    assert a["etag"] == '"%08x-%x"' % (zlib.crc32(html.encode()) & 0xFFFFFFFF, len(html.encode()))
    # The module for the frozen image holds the same bytes.
    scope = {}
    with open(a["paths"]["module"]) as f:
        exec(f.read(), scope)
    assert scope["PAGE"] == gz and scope["ETAG"] == a["etag"]


def test_the_build_refuses_a_page_without_its_parts(tmp_path):
    www = tmp_path / "www"
    shutil.copytree(os.path.join(ROOT, "www"), str(www))
    html = (www / "index.html").read_text()
    (www / "index.html").write_text(html.replace(webbuild.JS_TAG, ""))
    with pytest.raises(webbuild.BuildError, match="app.js"):
        webbuild.build(str(tmp_path))
    (www / "index.html").write_text(html)
    (www / "app.js").write_text("const x = '</script>';\n")
    with pytest.raises(webbuild.BuildError, match="closing tag"):
        webbuild.build(str(tmp_path))


def test_a_change_under_www_rebuilds_the_frozen_interpreter(tmp_path):
    # firmware/manifest.py builds the page and freezes dashpage.py; the
    # frozen build's key hashes every frozen file, so editing www/ is seen.
    import interp

    (tmp_path / "firmware").mkdir()
    (tmp_path / "lib").mkdir()
    (tmp_path / "tools").mkdir()
    shutil.copyfile(os.path.join(ROOT, "firmware", "manifest.py"), str(tmp_path / "firmware" / "manifest.py"))
    (tmp_path / "firmware" / "main.py").write_text("")
    shutil.copyfile(os.path.join(ROOT, "tools", "webbuild.py"), str(tmp_path / "tools" / "webbuild.py"))
    shutil.copytree(os.path.join(ROOT, "www"), str(tmp_path / "www"))
    site = tmp_path / ".venv" / "lib" / "python3.11" / "site-packages" / "microdot"
    site.mkdir(parents=True)
    for m in ("__init__.py", "microdot.py"):
        (site / m).write_text("")
    manifest = str(tmp_path / "firmware" / "manifest.py")
    frozen = dict(interp.frozen_files(manifest))
    assert frozen["dashpage.py"] == str(tmp_path / "build" / "www" / "dashpage.py")
    flavour = interp.FLAVOURS["esp32like-frozen"]
    key = interp.build_key(flavour, interp.TREE, manifest)
    assert interp.build_key(flavour, interp.TREE, manifest) == key  # built again: the same bytes
    app = tmp_path / "www" / "app.js"
    app.write_text(app.read_text() + "// a comment line: gone after minifying\n")
    assert interp.build_key(flavour, interp.TREE, manifest) == key
    app.write_text(app.read_text() + "init();\n")
    assert interp.build_key(flavour, interp.TREE, manifest) != key


# -- serving, in process (CPython, microdot's test client) ----------------------------------------


@pytest.fixture
def app(tmp_path):
    from test_web import make_app

    dashboard = firmware_module("dashboard")
    dashboard.reset()
    a, hw = make_app(tmp_path)
    yield a, hw, dashboard
    dashboard.reset()


def test_the_page_is_sent_gzipped_with_a_strong_etag(app):
    from test_web import call

    a, _hw, dashboard = app
    page = built()
    assert dashboard.find(page["paths"]["gz"]) is not None
    with open(page["paths"]["gz"], "rb") as f:
        gz = f.read()
    r = call(a, "GET", "/", headers={"Accept-Encoding": "gzip, deflate"})
    assert r.status_code == 200 and r.body == gz
    assert r.headers["Content-Encoding"] == "gzip" and r.headers["Content-Type"].startswith("text/html")
    assert r.headers["ETag"] == page["etag"] and r.headers["Cache-Control"] == "no-cache"
    assert int(r.headers["Content-Length"]) == len(gz)
    again = call(a, "GET", "/", headers={"Accept-Encoding": "gzip", "If-None-Match": page["etag"]})
    assert again.status_code == 304 and again.body == b"" and again.headers["ETag"] == page["etag"]
    other = call(a, "GET", "/", headers={"Accept-Encoding": "gzip", "If-None-Match": '"0-0"'})
    assert other.status_code == 200 and other.body == gz
    # No gzip: the plain page.
    plain = call(a, "GET", "/")
    assert plain.status_code == 303 and plain.headers["Location"] == "/lite"


def test_without_the_page_the_bridge_says_how_to_install_it(app):
    from test_web import call

    a, _hw, dashboard = app
    assert dashboard.find(os.path.join(ROOT, "build", "no-such-page.gz")) is None
    dashboard.reset()
    # CPython finds neither the frozen module nor a file next to dashboard.py.
    r = call(a, "GET", "/", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 503 and "index.html.gz" in r.json["reason"]


def test_the_plain_page_and_the_history(app):
    from test_web import call, live

    a, hw, _dashboard = app
    lite = call(a, "GET", "/lite")
    assert lite.status_code == 200 and "BMS link LOST" in lite.text and "href='/'" in lite.text
    live(a, hw)
    a.outputs.step(hw.ticks_ms())  # the outputs task samples a live status
    hw.advance(29000)
    a.outputs.step(hw.ticks_ms())  # not a period later: no second sample
    h = call(a, "GET", "/api/history").json
    assert h["period_s"] == 30 and h["fields"] == ["pack_v", "current_a", "soc_pct", "cell_min_v", "cell_max_v"]
    assert h["points"] == [[29, 13.23, -12.5, 55, 3.3, 3.315]]  # live()'s status, 29 s ago
    hw.advance(1000)
    a.outputs.step(hw.ticks_ms())
    assert [p[0] for p in call(a, "GET", "/api/history").json["points"]] == [30, 0]


# -- serving on MicroPython (32-bit, frozen) ---------------------------------------------------------

_SERVE_PROBE = r"""
import gc, micropython, sys
import dashboard
path = sys.argv[1] if len(sys.argv) > 1 else None
gc.collect()
before = gc.mem_alloc()
page = dashboard.find(path)
gc.collect()
found = gc.mem_alloc() - before
buf = bytearray(384)
body = dashboard.Body(page, buf)
h = 0
total = 0
chunks = 0
last = (page.length + len(buf) - 1) // len(buf)
while True:
    c = body.__anext__()
    locked = 1 < chunks + 1 < last  # the first opens the stream, the last is a view: both allocate
    if locked:
        gc.collect()
        micropython.heap_lock()
    try:
        c.send(None)
        raise AssertionError("__anext__ did not finish at once")
    except StopIteration as e:
        chunk = e.value
    except StopAsyncIteration:
        if locked:
            micropython.heap_unlock()
        break
    if locked:
        micropython.heap_unlock()
    chunks += 1
    total += len(chunk)
    for b in chunk:
        h = (h * 31 + b) & 0xFFFFFF
print(page.etag, page.length, total, chunks, h, found)
"""


def _probe_hash(data):
    h = 0
    for b in data:
        h = (h * 31 + b) & 0xFFFFFF
    return h


def test_on_the_32_bit_build_the_page_stays_in_flash_and_is_copied_through_the_buffer(tmp_path):
    # Frozen: the page is the dashpage module's bytes constant; finding it
    # costs a few dozen bytes (the module object), not the page. As a file
    # (the .mpy deployment) it is read piece by piece. Either way every
    # piece between the first and the last is copied into the connection's
    # buffer and handed out with the heap locked: nothing of the page's
    # size is ever allocated.
    page = built()
    with open(page["paths"]["gz"], "rb") as f:
        gz = f.read()
    exe = mpbuild.micropython(frozen=True)
    probe = tmp_path / "probe.py"
    probe.write_text(_SERVE_PROBE)
    runs = {"frozen": [], "file": [page["paths"]["gz"]]}
    for name, args in runs.items():
        r = subprocess.run([exe, "-X", "heapsize=96K", str(probe)] + args, capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, MICROPYPATH=".frozen"))
        assert r.returncode == 0, (name, r.stdout, r.stderr)
        etag, length, total, chunks, h, found = r.stdout.split()
        assert etag == page["etag"] and int(length) == int(total) == len(gz), name
        assert int(chunks) == -(-len(gz) // 384) and int(h) == _probe_hash(gz), name
        if name == "frozen":
            assert int(found) < 1024 < len(gz)  # the bytes were not copied into the heap


def test_what_the_dashboard_costs_the_heap_is_measured(tmp_path):
    # dashboard_heap_probe.py's figures (README "Dashboard") come from real
    # requests: each path answered, "/" sends the whole page, and what a
    # request of "/" holds at once stays far below the page's size.
    built()
    exe = mpbuild.micropython(frozen=True)
    env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "host_tests"), ANTBRIDGE_DATA=str(tmp_path) + "/",
               ANTBRIDGE_ROOT=ROOT)
    r = subprocess.run([exe, "-X", "heapsize=128K", os.path.join(ROOT, "host_tests", "dashboard_heap_probe.py")],
                       cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    figures = json.loads(r.stdout.strip().splitlines()[-1])
    page = figures["rest"]["page_bytes"]
    assert page == os.path.getsize(built()["paths"]["gz"])
    for path, d in figures["requests"].items():
        assert d["status"] == "200", (path, d)
    assert figures["requests"]["/"]["sent"] > page
    assert figures["requests"]["/"]["live"] < page // 4


# -- the browser ------------------------------------------------------------------------------------


class Browser:
    def __init__(self, driver):
        self.d = driver

    def viewport(self, width, height, ratio=1, mobile=False):
        self.d.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": ratio, "mobile": mobile})
        self.d.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {"enabled": mobile, "maxTouchPoints": 5})

    def scheme(self, dark):
        self.d.execute_cdp_cmd("Emulation.setEmulatedMedia",
                               {"features": [{"name": "prefers-color-scheme", "value": "dark" if dark else "light"}]})

    def open(self, url, width=DESKTOP[0], height=DESKTOP[1], ratio=1, mobile=False, dark=False):
        self.viewport(width, height, ratio, mobile)
        self.scheme(dark)
        self.d.get(url)

    def js(self, script, *args):
        return self.d.execute_script(script, *args)

    def text(self, css):
        """The rendered text of the first match ("" when hidden, None when absent)."""
        return self.js("const e = document.querySelector(arguments[0]); return e ? e.innerText : null", css)

    def texts(self, css):
        return self.js("return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText)", css)

    def style(self, css, prop):
        return self.js("return getComputedStyle(document.querySelector(arguments[0]))[arguments[1]]", css, prop)

    def click(self, css):
        from selenium.webdriver.common.by import By

        self.d.find_element(By.CSS_SELECTOR, css).click()

    def type(self, css, text):
        from selenium.webdriver.common.by import By

        e = self.d.find_element(By.CSS_SELECTOR, css)
        e.clear()
        e.send_keys(text)

    def wait(self, predicate, timeout_s=10, what="the page"):
        return wait_until(predicate, timeout_s, 0.05, what)

    def wait_text(self, css, wanted, timeout_s=10):
        """Until the element's text contains `wanted` (str) or matches it
        (a compiled pattern); the text."""
        def check():
            t = self.text(css)
            if t is None:
                return None
            ok = wanted.search(t) if hasattr(wanted, "search") else wanted in t
            return t if ok else None

        return self.wait(check, timeout_s, "%s to show %r (it shows %r)" % (css, getattr(wanted, "pattern", wanted),
                                                                            self.text(css)))

    def wait_live(self, timeout_s=15):
        self.wait_text("#link-pill", "BMS link ok", timeout_s)
        self.wait(lambda: not self.js("return document.body.classList.contains('notlive')"), timeout_s, "live figures")

    def dialog(self):
        """Title of the open dialog, or None."""
        return self.js("const d = document.getElementById('dlg'); return d.open ? "
                       "document.getElementById('dlg-title').textContent : null")

    def screenshot(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        png = base64.b64decode(self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})["data"])
        with open(path, "wb") as f:
            f.write(png)
        return struct.unpack(">II", png[16:24])  # (width, height) from the IHDR chunk


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in CHROME_FLAGS:
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield Browser(driver)
    finally:
        driver.quit()


def pin_cells(sim, count=16):
    """Pin every cell (3302, 3304, ... mV): a pack whose figures hold still."""
    for n in range(1, count + 1):
        assert sim.control("cell %d %d" % (n, 3300 + 2 * n))["ok"]


def sim_settled(sim, **want):
    """The simulator's state once the given keys have those values."""
    def check():
        st = sim.state()
        return st if all(st[k] == v for k, v in want.items()) else None

    return wait_until(check, 10, 0.1, "simulator state %r" % want)


# -- the page against the firmware and the simulator ----------------------------------------------------


def test_the_page_shows_the_simulators_values(tmp_path, browser):
    with bridge(tmp_path, ["--profile", "idle", "--cells", "16"], link={"poll_ms": 500}) as (sim, fw):
        pin_cells(sim)
        assert sim.control("soc 63")["ok"] and sim.control("current 12.5")["ok"]
        st = sim_settled(sim, soc_pct=63, current_a=12.5, cells_mv=[3300 + 2 * n for n in range(1, 17)])
        browser.open(fw.url("/"))
        browser.wait_live()
        browser.wait_text("#pack-v", "%.2f V" % st["pack_v"])  # 16 cells summed: 53.07 V
        browser.wait_text("#soc", "%d %%" % st["soc_pct"])
        browser.wait_text("#current", "+12.5 A")
        assert "charging" in browser.text("#direction").lower()
        for n in (1, 5, 16):  # each cell as the simulator holds it, in volts
            browser.wait_text('#cells li[data-cell="%d"] .v' % n, "%.3f" % (st["cells_mv"][n - 1] / 1000))
        # The lowest and the highest cell are marked.
        assert browser.js("return document.querySelector('#cells li[data-cell=\"1\"]').classList.contains('min')")
        assert browser.js("return document.querySelector('#cells li[data-cell=\"16\"]').classList.contains('max')")
        assert "Δ 30 mV" in browser.text("#cell-summary")
        # Temperatures: the simulator's probes, the MOSFET and the balancer.
        temps = browser.texts("#temps li")
        assert any("MOSFET" in t and "%d °C" % st["mosfet_c"] in t for t in temps), temps
        assert sum(t.startswith("Probe") for t in temps) == len(st["temps_c"])
        # The outputs and ACC in words, as the firmware has them.
        doc = fw.status()
        assert browser.text("#acc-text").lower().startswith(doc["acc"]["text"].lower()[:20])
        assert browser.text("#out-0 header b") == "DO1 " + doc["outputs"][0]["name"]
        # A stream, not reloads: the document is the same one all along.
        browser.js("window.__marker = 42")
        time.sleep(2.5)
        assert browser.js("return window.__marker") == 42
        assert "live stream" in browser.text("#feed")


def test_a_protection_appears_first_and_loud_within_2_s(tmp_path, browser):
    with bridge(tmp_path, ["--profile", "idle"], link={"poll_ms": 500}) as (sim, fw):
        browser.open(fw.url("/"), *MOBILE, mobile=True)
        browser.wait_live()
        browser.wait_text("#alarms-h", "No active protections")
        assert sim.control("cell 3 3700")["ok"]  # over the LiFePO4 cell over-voltage limit (3650 mV)
        start = time.monotonic()
        wanted = alarms.name(alarms.CELL_OVER_VOLTAGE)  # the charge FET's state code 2
        browser.wait(lambda: wanted in browser.texts("#alarm-list li b"), 2.0, "%r on the page" % wanted)
        shown_after = time.monotonic() - start
        assert shown_after <= 2.0
        # The page names what the firmware reports, each with its start.
        doc = fw.status()
        names = [a["name"] for a in doc["alarms"]]
        browser.wait(lambda: browser.texts("#alarm-list li b") == names, 5, "the firmware's alarms %r" % names)
        assert all("since" in t for t in browser.texts("#alarm-list li > span"))
        assert "protection" in browser.text("#alarms-h")
        # Prominent: red, larger than anything else, above every figure and
        # inside the first screen of a phone.
        bg = [int(x) for x in re.findall(r"\d+", browser.style("#alarms", "backgroundColor"))[:3]]
        assert bg[0] > 150 and bg[1] < 80 and bg[2] < 80, bg
        big = float(browser.style("#alarm-list li b", "fontSize").rstrip("px"))
        assert big >= 1.5 * float(browser.style("body", "fontSize").rstrip("px"))
        assert big > float(browser.style("#pack-v", "fontSize").rstrip("px"))
        top = browser.js("return document.getElementById('alarms').getBoundingClientRect().top")
        cards = browser.js("return [...document.querySelectorAll('main .card')].map((c) => c.getBoundingClientRect().top)")
        assert top < min(cards) and top < MOBILE[1] / 2
        assert browser.js("return document.getElementById('alarms').getAttribute('role')") == "alert"


def test_a_silent_bms_greys_the_figures_and_says_why(tmp_path, browser):
    with bridge(tmp_path, ["--profile", "idle"], link={"poll_ms": 500}) as (sim, fw):
        browser.open(fw.url("/"))
        browser.wait_live()
        figures = "#pack .fig"
        assert float(browser.style(figures, "opacity")) == 1
        assert sim.control("fault silent 30")["ok"]
        browser.wait(lambda: browser.js("return document.body.classList.contains('notlive')"), 10, "not live")
        title = browser.wait_text("#stale-title", re.compile(r"not live — data \d+ s old"))
        age = int(re.search(r"data (\d+) s old", title).group(1))
        link = fw.status()["link"]
        assert link["live"] is False and abs(age - link["data_age_ms"] / 1000) <= 2
        # The state and the line by their names, and the link's own hint.
        def named():
            link = fw.status()["link"]
            return (browser.text("#stale-line").startswith("link %s · line %s" % (link["state"], link["line"]))
                    and browser.text("#stale-hint") == link["hint"]
                    and browser.text("#link-pill") == "BMS link " + link["state"].upper())

        browser.wait(named, 5, "the link's state, line and hint as the firmware has them")
        # The figures stay, greyed and labelled: never shown as live.
        assert float(browser.style(figures, "opacity")) < 0.6
        assert browser.style(figures, "filter").startswith("grayscale")
        assert browser.text("#pack-v") != "—"
        assert browser.texts(".bms .age")[0].startswith("not live — data")
        # It stays so (the age counts up) until the BMS answers again.
        def older():
            return int(re.search(r"data (\d+) s old", browser.text("#stale-title")).group(1)) > age

        browser.wait(older, 5, "the data's age counting up")
        assert sim.control("fault clear")["ok"]
        browser.wait_live(20)


def test_charge_off_from_the_page_switches_the_bms(tmp_path, browser):
    with bridge(tmp_path, ["--profile", "idle"], link={"poll_ms": 500}) as (sim, fw):
        browser.open(fw.url("/"))
        browser.wait_live()
        assert sim.state()["charge_mos"] == 1
        browser.wait_text("#sw-charge_mos [data-role=state]", "ON")
        off = '#sw-charge_mos button[data-cmd="charge-off"]'
        # No token yet: it is asked for; a wrong one is refused and forgotten.
        browser.click(off)
        browser.wait(lambda: browser.dialog() == "Control token", 5, "the token dialog")
        browser.type("#dlg-input", "not-the-token-0123456789")
        browser.click("#dlg-ok")
        browser.wait(lambda: "charge MOSFET off" in (browser.dialog() or ""), 5, "the confirm dialog")
        browser.click("#dlg-ok")
        browser.wait_text("#switches-reply", "refused the token (401")
        assert browser.js("return localStorage.getItem('antbridge.token')") is None
        assert sim.state()["charge_mos"] == 1
        # The right token; cancelling the confirmation sends nothing.
        browser.click(off)
        browser.wait(lambda: browser.dialog() == "Control token", 5, "the token dialog")
        browser.type("#dlg-input", TOKEN)
        browser.click("#dlg-ok")
        browser.wait(lambda: "charge MOSFET off" in (browser.dialog() or ""), 5, "the confirm dialog")
        browser.click("#dlg-cancel")
        browser.wait(lambda: browser.dialog() is None, 5, "the dialog closed")
        time.sleep(0.5)
        assert sim.state()["charge_mos"] == 1
        assert browser.js("return localStorage.getItem('antbridge.token')") == TOKEN
        assert browser.text("#token-state") == "kept in this browser"
        # Now for real: the token is not asked again.
        browser.click(off)
        browser.wait(lambda: "charge MOSFET off" in (browser.dialog() or ""), 5, "the confirm dialog")
        browser.click("#dlg-ok")
        browser.wait_text("#switches-reply", "✓ charge-off: done", 20)
        wait_until(lambda: sim.state()["charge_mos"] == MANUAL_OFF, 5, 0.1, "the simulated charge FET off")
        browser.wait_text("#sw-charge_mos [data-role=state]", "OFF")
        doc = fw.status()
        browser.wait_text("#sw-charge_mos [data-role=text]", doc["status"]["charge_mos"]["text"])
        # A command the settings do not allow: the bridge's reason is shown.
        browser.js("document.querySelector('#switches-card details').open = true")
        browser.js("document.getElementById('cmd-select').value = 'shutdown'")
        browser.click("#cmd-send")
        browser.wait(lambda: browser.dialog() is not None, 5, "the confirm dialog")
        browser.click("#dlg-ok")
        reply = browser.wait_text("#switches-reply", "✗ shutdown: refused (403)")
        assert "control.allow_commands" in reply
        assert sim.state()["awake"]
        # Forget the token.
        browser.click("#token-forget")
        assert browser.js("return localStorage.getItem('antbridge.token')") is None
        assert browser.text("#token-state") == "not set"


def test_an_output_override_from_the_page(tmp_path, browser):
    with bridge(tmp_path, ["--profile", "idle"], link={"poll_ms": 500}) as (sim, fw):
        browser.open(fw.url("/"))
        browser.wait_live()
        browser.js("localStorage.setItem('antbridge.token', arguments[0])", TOKEN)
        browser.wait_text("#out-1 [data-role=held]", "held by its mode")
        browser.js("document.getElementById('exp-1').value = '900'")
        browser.click('#out-1 button[aria-label$=" on"]')
        browser.wait(lambda: "ON for 15 min" in (browser.dialog() or ""), 5, "the confirm dialog")
        browser.click("#dlg-ok")
        browser.wait_text("#out-1 .reply", "now ON")
        out = wait_until(lambda: fw.status()["outputs"][1] if fw.status()["outputs"][1]["override"] else None, 5,
                         0.1, "the override")
        assert out["state"] == "on" and 890 <= out["override_expires_s"] <= 900
        browser.wait_text("#out-1 [data-role=override]", re.compile(r"Manual override ON, ends in 1[45] min"))
        browser.wait_text("#out-1 [data-role=relay]", "Relay " + out["relay"])
        browser.click('#out-1 button[aria-label$=" release"]')
        browser.wait(lambda: browser.dialog() is not None, 5, "the confirm dialog")
        browser.click("#dlg-ok")
        wait_until(lambda: fw.status()["outputs"][1]["override"] is None, 5, 0.1, "the override released")
        browser.wait_text("#out-1 [data-role=held]", "Off, held by its mode")


def test_a_parameter_edited_on_the_page_is_written_to_the_bms_and_read_back(tmp_path, browser):
    # Parameter writes are opted in (control.allow_commands), as a user must.
    key = "cell_ov_protection_mv"
    opt_in = {"control": {"allow_commands": ["write-param"]}}
    with bridge(tmp_path, ["--profile", "idle"], link={"poll_ms": 500}, settings=opt_in) as (sim, fw):
        browser.open(fw.url("/"))
        browser.wait_live()
        browser.js("localStorage.setItem('antbridge.token', arguments[0])", TOKEN)
        browser.click("#params-details summary")
        row = '#params .param[data-key="%s"]' % key
        browser.wait(lambda: browser.text(row) or "Not available" in browser.text("#params-status"), 30,
                     "the parameter %s on the page" % key)
        assert browser.text(row), "GET /api/params: %s" % fw.request("GET", "/api/params")[0]
        before = sim.state()["limits"]["cell_ov_mv"]
        browser.wait_text(row + " [data-role=value]", "%d mV" % before)
        # Out of range: refused on the page, nothing written.
        browser.click(row + " button")
        browser.type(row + " input", "9999")
        browser.click(row + ' button[type="submit"]')
        browser.wait_text(row + " .error", "At most")
        assert browser.dialog() is None and sim.state()["param_writes"] == 0
        # In range: confirmed, written, read back.
        new = before - 10
        browser.type(row + " input", str(new))
        browser.click(row + ' button[type="submit"]')
        browser.wait(lambda: browser.dialog() == "Write a BMS parameter?", 5, "the confirm dialog")
        browser.click("#dlg-ok")
        browser.wait_text(row + " .reply", "✓ Written; the BMS reads back %d mV" % new, 30)
        wait_until(lambda: sim.state()["limits"]["cell_ov_mv"] == new, 5, 0.1, "the simulator's limit")
        browser.wait_text(row + " [data-role=value]", "%d mV" % new)
        params = {p["key"]: p for p in fw.get_json("/api/params")["params"]}
        assert params[key]["value"] == new


def test_rejected_settings_show_a_red_banner_with_the_reason(tmp_path, browser):
    raw = json.dumps({"api_token": TOKEN, "outputs": {"outputs": [{"name": "x", "when": {"soc": {"below": "low"}}}]}})
    with bridge(tmp_path, ["--profile", "idle"], raw_settings=raw) as (sim, fw):
        reason = fw.get_json("/api/health")["settings_error"]
        assert reason and "outputs" in reason
        browser.open(fw.url("/"), *MOBILE, mobile=True)
        banner = browser.wait_text("#banners .banner", "Settings rejected")
        assert reason in banner
        bg = [int(x) for x in re.findall(r"\d+", browser.style("#banners .banner", "backgroundColor"))[:3]]
        assert bg[0] > 150 and bg[1] < 80 and bg[2] < 80, bg
        assert browser.js("return document.getElementById('banners').getAttribute('role')") == "alert"


def test_the_screenshots(tmp_path, browser):
    # The README's pictures: a charging pack with the demo outputs of
    # `make run`, on a phone and on a desktop, light and dark, and a phone
    # with a protection active.
    settings = {"outputs": run.demo_outputs()}
    with bridge(tmp_path, ["--profile", "idle", "--cells", "16"], link={"poll_ms": 500}, settings=settings) as (sim, fw):
        assert sim.control("soc 76")["ok"] and sim.control("current 18.4")["ok"]
        wait_until(lambda: fw.status()["energy"]["time_to_full_s"], 90, 0.5, "a time to full")
        shots = (("dashboard-mobile.png", MOBILE, True, False), ("dashboard-desktop.png", DESKTOP, False, False),
                 ("dashboard-desktop-dark.png", DESKTOP, False, True))
        for name, (w, h, ratio), mobile, dark in shots:
            browser.open(fw.url("/"), w, h, ratio, mobile, dark)
            browser.wait_live()
            browser.wait_text("#pack-v", " V")
            browser.wait(lambda: browser.texts("#charts .chart"), 10, "the chart")
            time.sleep(0.8)  # the ring's transition
            assert browser.screenshot(os.path.join(SHOTS, name)) == (round(w * ratio), round(h * ratio))
        assert sim.control("cell 3 3700")["ok"]
        browser.open(fw.url("/"), *MOBILE, mobile=True)
        browser.wait(lambda: browser.texts("#alarm-list li"), 10, "the alarms")
        time.sleep(0.8)
        assert browser.screenshot(os.path.join(SHOTS, "dashboard-mobile-alarm.png")) == (1082, 2402)


# -- the second deployment: the firmware as .mpy files, the page a file ----------------------------------


def test_the_mpy_deployment_serves_the_page_from_its_file(tmp_path):
    out = str(tmp_path / "mpy")
    runtime = run.build(out, "mpy")
    page = os.path.join(out, "firmware", "index.html.gz")
    with open(built()["paths"]["gz"], "rb") as f:
        assert open(page, "rb").read() == f.read()
    data = tmp_path / "data"
    data.mkdir()
    (data / "settings.json").write_text(json.dumps({"api_token": TOKEN}))
    with SimProcess("--profile", "idle") as sim:
        port = run.free_port()
        log = open(str(tmp_path / "fw.log"), "w+")
        proc = run.start_firmware(runtime, str(data), sim.ready, port, run.MPY_HEAP, stdout=log, stderr=log)
        try:
            try:
                run.wait_http(port, proc, 30)
            except run.RunError as e:
                log.seek(0)
                raise AssertionError("%s:\n%s" % (e, log.read()[-3000:]))
            import urllib.request

            req = urllib.request.Request("http://127.0.0.1:%d/" % port, headers={"Accept-Encoding": "gzip"})
            with urllib.request.urlopen(req, timeout=10) as r:
                body = r.read()
                assert r.headers["Content-Encoding"] == "gzip" and r.headers["ETag"] == built()["etag"]
            with open(page, "rb") as f:
                assert body == f.read()
        finally:
            run.stop(proc)
            log.close()


# -- against a stand-in bridge: the long-poll fallback, missing endpoints, Wi-Fi --------------------------


class StandIn:
    """A stand-in bridge serving the built page and documents of the real
    firmware's shape (taken from the app in process): no event stream (404),
    so the page has to long-poll. /api/params and /api/bmslog answer 404
    until a test gives them a document (the shapes the params branch
    implements); POSTs to /api/params are kept and answered by `write`."""

    def __init__(self, docs, page_gz):
        self.docs = docs
        self.page = page_gz
        self.wifi = None
        self.params = None  # the GET /api/params documents, in turn (the last one stays)
        self.bmslog = None
        self.write = None  # callable(body) -> (status, reply) for POST /api/params
        self.polls = []  # the query of every /api/status request
        self.gets = []  # every path asked for
        self.posts = []  # (path, headers, body) of every POST
        self.generation = docs["status"]["generation"]
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                url = urllib.parse.urlparse(self.path)
                query = urllib.parse.parse_qs(url.query)
                stand_in.gets.append(self.path)
                if url.path == "/":
                    return self.send(200, stand_in.page, "text/html", {"Content-Encoding": "gzip"})
                if url.path == "/api/status":
                    stand_in.polls.append(query)
                    if "since" in query:
                        time.sleep(0.3)  # a change comes: answer the long poll
                        stand_in.generation += 1
                    doc = dict(stand_in.docs["status"], generation=stand_in.generation)
                    return self.send_json(doc)
                if url.path == "/api/health":
                    doc = dict(stand_in.docs["health"])
                    if stand_in.wifi is not None:
                        doc["wifi"] = stand_in.wifi
                    return self.send_json(doc)
                if url.path in ("/api/events", "/api/history"):
                    return self.send_json(stand_in.docs[url.path[5:]])
                if url.path == "/api/params" and stand_in.params:
                    doc = stand_in.params[0] if len(stand_in.params) == 1 else stand_in.params.pop(0)
                    return self.send_json(doc)
                if url.path == "/api/bmslog" and stand_in.bmslog is not None:
                    return self.send_json(stand_in.bmslog)
                self.send(404, b'{"ok": false, "reason": "not found"}', "application/json")

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                stand_in.posts.append((self.path, dict(self.headers), body))
                if self.path == "/api/params" and stand_in.write is not None:
                    status, reply = stand_in.write(body)
                    return self.send(status, json.dumps(reply).encode(), "application/json")
                self.send(404, b'{"ok": false, "reason": "not found"}', "application/json")

            def send_json(self, doc):
                self.send(200, json.dumps(doc).encode(), "application/json")

            def send(self, status, body, ctype, headers=None):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in(tmp_path):
    from test_web import call, live

    dashboard = firmware_module("dashboard")
    from test_web import make_app

    a, hw = make_app(tmp_path)
    live(a, hw)
    a.outputs.step(hw.ticks_ms())
    docs = {"status": call(a, "GET", "/api/status").json, "health": call(a, "GET", "/api/health").json,
            "events": call(a, "GET", "/api/events").json, "history": call(a, "GET", "/api/history").json}
    dashboard.reset()
    with open(built()["paths"]["gz"], "rb") as f:
        s = StandIn(docs, f.read())
    yield s
    s.close()


def test_without_a_stream_the_page_long_polls_and_tolerates_missing_endpoints(stand_in, browser):
    doc = stand_in.docs["status"]
    browser.open(stand_in.url)
    browser.wait_text("#feed", "polling")
    browser.wait_text("#pack-v", "%.2f V" % doc["status"]["pack_voltage_v"])
    # Long polls: each asks for the next generation and waits for it.
    browser.wait(lambda: sum(1 for q in stand_in.polls if "since" in q) >= 3, 10, "long polls")
    since = [q for q in stand_in.polls if "since" in q]
    assert all(q["wait_ms"] == ["25000"] for q in since)
    assert [int(q["since"][0]) for q in since[:3]] == [doc["generation"] + k for k in range(3)]
    # Endpoints this bridge does not have: said so, the rest works.
    browser.click("#params-details summary")
    browser.wait_text("#params-status", "Not available")
    browser.wait_text("#bmslog-note", "Not available")
    assert browser.texts("#events li") and browser.texts("#charts .chart")
    # No "wifi" in /api/health: no indicator.
    assert browser.text("#wifi") == ""
    assert browser.js("return document.getElementById('wifi').hidden") is True


def test_the_wifi_indicator(stand_in, browser):
    stand_in.wifi = {"mode": "sta", "ssid": "home-net", "rssi": -61, "ip": "192.168.1.23", "reason": None}
    browser.open(stand_in.url, *MOBILE, mobile=True)
    browser.wait_text("#wifi", "Wi-Fi home-net -61 dBm")
    assert "192.168.1.23" in browser.js("return document.getElementById('wifi').title")
    stand_in.wifi = {"mode": "sta", "ssid": "home-net", "rssi": None, "ip": None, "reason": "wrong password"}
    browser.open(stand_in.url)
    browser.wait_text("#wifi", "Wi-Fi not connected")
    assert "wrong password" in browser.js("return document.getElementById('wifi').title")


def param(key, name, unit, value, group, lo=None, hi=None, step=None, writable=True, verified=True):
    return {"key": key, "name": name, "unit": unit, "value": value, "raw": value, "min": lo, "max": hi, "step": step,
            "writable": writable, "group": group, "verified": verified}


PARAMS = [
    param("cell_ov_protection_mv", "Cell over-voltage protection", "mV", 3650, "voltage", 1500, 4500, 1),
    param("pack_ov_protection_v", "Pack over-voltage protection", "V", 58.4, "voltage", 5.0, 150.0, 0.1),
    param("charge_oc_delay_s", "Charge over-current delay", "s", 2, "current", 1, 60, 1),
    param("cell_count", "Cells in series", "", 16, "battery", writable=False),
    param("balance_start_mv", "Balancing start voltage", "mV", 3400, "balance", 2000, 4500, 1, verified=False),
]


def test_the_parameter_screen_reads_groups_checks_confirms_and_writes(stand_in, browser):
    # The section against the documented shapes of GET/POST /api/params (a
    # stand-in here; the firmware's own in the test above once merged).
    reading = {"protocol": "new", "read_at": None, "reading": True, "error": None, "params": []}
    done = {"protocol": "new", "read_at": "2026-12-02T10:24:00Z", "reading": False, "error": None,
            "params": [dict(p) for p in PARAMS]}
    stand_in.params = [reading, done]
    stand_in.bmslog = {"supported": True, "reason": None, "source": "the BMS's system log (OLD register 0x5F)",
                       "entries": [{"slot": 1, "table": "charge", "code": 2, "text": "cell over-voltage", "cell": 3},
                                   {"slot": 2, "table": "discharge", "code": 5, "text": "pack under-voltage",
                                    "cell": None}]}

    def write(body):
        if body["value"] == 57.0:
            return 200, {"ok": False, "key": body["key"], "value": 58.4, "reason": "the BMS refused the value"}
        return 200, {"ok": True, "key": body["key"], "value": body["value"], "reason": None}

    stand_in.write = write
    browser.open(stand_in.url)
    browser.js("localStorage.setItem('antbridge.token', arguments[0])", TOKEN)
    browser.wait_text("#bmslog", "cell over-voltage (cell 3)")
    assert "pack under-voltage" in browser.text("#bmslog")
    browser.click("#params-details summary")
    browser.wait_text("#params-status", "Read from the BMS at", 10)  # after "reading" it asked again
    assert browser.texts("#params .pgroup h3") == ["Voltage", "Current", "Balance", "Battery"]
    row = '#params .param[data-key="%s"]'
    assert browser.text(row % "cell_ov_protection_mv" + " [data-role=value]") == "3650 mV"
    assert browser.text(row % "pack_ov_protection_v" + " [data-role=value]") == "58.4 V"
    assert "1500 mV to 4500 mV" in browser.text(row % "cell_ov_protection_mv" + " .pname small")
    assert browser.js("return document.querySelector(arguments[0]) === null", row % "cell_count" + " button")
    assert "read-only" in browser.text(row % "cell_count")
    assert "unverified" in browser.text(row % "balance_start_mv")
    pack = row % "pack_ov_protection_v"
    browser.click(pack + " button")
    for typed, why in (("58.45", "In steps of 0.1 V."), ("200", "At most 150.0 V."), ("4", "At least 5.0 V."),
                       ("abc", "Enter a number.")):
        browser.js("const i = document.querySelector(arguments[0]); i.value = arguments[1];", pack + " input", typed)
        browser.click(pack + ' button[type="submit"]')
        browser.wait_text(pack + " .error", why)
        assert browser.dialog() is None
    assert stand_in.posts == []
    # Refused by the BMS: the reason, and the value stays.
    browser.type(pack + " input", "57.0")
    browser.click(pack + ' button[type="submit"]')
    browser.wait(lambda: browser.dialog() == "Write a BMS parameter?", 5, "the confirm dialog")
    assert "58.4 V → 57.0 V" in browser.text("#dlg-text")
    browser.click("#dlg-ok")
    browser.wait_text(pack + " .reply", "✗ write pack_ov_protection_v: refused (200) — the BMS refused the value")
    assert browser.text(pack + " [data-role=value]") == "58.4 V"
    # Written: the value read back is shown.
    browser.type(pack + " input", "57.6")
    browser.click(pack + ' button[type="submit"]')
    browser.wait(lambda: browser.dialog() == "Write a BMS parameter?", 5, "the confirm dialog")
    browser.click("#dlg-ok")
    browser.wait_text(pack + " .reply", "✓ Written; the BMS reads back 57.6 V.")
    assert browser.text(pack + " [data-role=value]") == "57.6 V"
    path, headers, body = stand_in.posts[-1]
    assert path == "/api/params" and body == {"key": "pack_ov_protection_v", "value": 57.6, "confirm": "write-param"}
    assert headers["Authorization"] == "Bearer " + TOKEN
    # Read again from the BMS.
    browser.click("#params-refresh")
    browser.wait(lambda: "/api/params?refresh=1" in stand_in.gets, 5, "a fresh read")


_A11Y = r"""
function rgba(s) { const m = s.match(/[\d.]+/g).map(Number); return [m[0], m[1], m[2], m.length > 3 ? m[3] : 1]; }
function lum(c) {
  const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
  return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]);
}
function background(e) {
  for (; e; e = e.parentElement) { const c = rgba(getComputedStyle(e).backgroundColor); if (c[3] > 0.99) return c; }
  return [255, 255, 255, 1];
}
const low = [];
for (const e of document.querySelectorAll('body *')) {
  if (!e.getClientRects().length || e.closest('dialog:not([open])')) continue;
  if (![...e.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
  const cs = getComputedStyle(e);
  const fg = rgba(cs.color);
  const bg = background(e);
  const mix = fg.slice(0, 3).map((v, i) => v * fg[3] + bg[i] * (1 - fg[3]));
  const a = lum(mix), b = lum(bg);
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  const size = parseFloat(cs.fontSize);
  const large = size >= 24 || (size >= 18.66 && Number(cs.fontWeight) >= 700);
  if (ratio < (large ? 3 : 4.5)) low.push(e.tagName + '.' + e.className + ' "' + e.textContent.trim().slice(0, 30) + '" ' + ratio.toFixed(2));
}
const unnamed = [];
for (const e of document.querySelectorAll('button, select, input')) {
  if (!e.getClientRects().length) continue;
  const name = e.getAttribute('aria-label') || (e.labels && e.labels.length ? e.labels[0].textContent : '') || e.textContent;
  if (!name.trim()) unnamed.push(e.outerHTML.slice(0, 60));
}
return {low: low, unnamed: unnamed, lang: document.documentElement.lang};
"""


def test_text_contrast_and_labels_in_both_schemes(stand_in, browser):
    stand_in.wifi = {"mode": "sta", "ssid": "home-net", "rssi": -61, "ip": "192.168.1.23", "reason": None}
    for dark in (False, True):
        browser.open(stand_in.url, dark=dark)
        browser.wait_text("#pack-v", " V")
        browser.wait(lambda: browser.texts("#charts .chart"), 10, "the chart")
        browser.js("document.getElementById('params-details').open = true; "
                   "document.querySelector('#switches-card details').open = true")
        time.sleep(0.5)
        result = browser.js(_A11Y)
        assert result["lang"] == "en"
        assert result["low"] == [], ("dark" if dark else "light", result["low"])
        assert result["unnamed"] == [], result["unnamed"]
