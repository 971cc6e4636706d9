# What the Wi-Fi work costs in RAM, on the frozen 32-bit build (run by the
# esp32like-frozen interpreter with the host runtime, as the firmware runs):
#
#   build/mp/esp32like-frozen/micropython -X heapsize=256K host_tests/wifi_heap_probe.py
#   (env: MICROPYPATH=.frozen ANTBRIDGE_BOARDS=boards ANTBRIDGE_DATA=<dir with settings.json>
#    ANTBRIDGE_WIFI=<air file> ANTBRIDGE_DNS_PORT=<udp port>)
#
# Prints one JSON object: bytes that stay in the heap after importing each
# module (the rest of the firmware already loaded), after making the task and
# mounting the portal, in set-up mode at rest (access point, DNS responder,
# a scan), and for each portal request the bytes it allocates while it runs
# (the collector held off) and those still held after it. Not a test: the
# figures for README "Figures" and for the lead's heap budget.
import asyncio
import gc
import json
import sys

import hw
import settings as settings_mod

s = settings_mod.boot_load(hw.storage_root())
del settings_mod
sys.modules.pop("settings", None)
hw.board()
# What the Wi-Fi modules import, loaded first (the firmware has it anyway).
import catalog  # noqa: E402,F401
import eventlog  # noqa: E402,F401
import eventtext  # noqa: E402,F401
import ticks  # noqa: E402,F401
import wakeup  # noqa: E402,F401
import web  # noqa: E402  (views, page, microdot, jsonout, control)
from jsonout import JsonOut  # noqa: E402

out = {}


def held(label, before):
    gc.collect()
    now = gc.mem_alloc()
    out[label] = now - before
    return now


gc.collect()
a = gc.mem_alloc()
for name in ("wifistate", "wifi", "webportal", "ntp", "ntpsync", "dnswire", "dnsd", "setuppage"):
    __import__(name)
    a = held("import " + name, a)
for name in ("ntpsync", "dnswire", "dnsd", "setuppage"):  # loaded only when needed: back out
    sys.modules.pop(name)
import app  # noqa: E402,F401  (the rest of the firmware)


class _Hub:
    wifi = None

    def publish(self, part):
        pass


class _Control:
    token = "probe-token-0123456789"

    def authorize(self, header):
        return None if header == "Bearer " + self.token else ValueError("no")


import webportal  # noqa: E402
import wifi as wifi_mod  # noqa: E402
from microdot import Microdot  # noqa: E402  # pyright: ignore[reportMissingImports]

gc.collect()
a = gc.mem_alloc()
task = wifi_mod.WifiTask(hw, s, _Hub(), None)
a = held("WifiTask() (host radio)", a)
routes = web.Routes()
baseline = Microdot()


@baseline.get("/baseline")
async def _baseline(request):
    return web.error(404, "a request that does nothing")


routes.mount(baseline)
del baseline
gc.collect()
a = gc.mem_alloc()
sub = webportal.create(task, _Control(), hw, hw.storage_root())
routes.mount(sub)
del sub
a = held("portal routes mounted", a)


async def run_for(ms):
    t = asyncio.create_task(task.run())
    await asyncio.sleep_ms(ms)
    return t


runner = asyncio.run(run_for(1500))
a = held("set-up mode at rest (AP, DNS responder and its modules, a scan; state %d)" % task.m.state, a)


class Conn:
    """A connection as httpserver.Conn shows it to microdot."""

    def __init__(self, raw):
        self.raw = raw
        self.pos = 0
        self.out = JsonOut(384)
        self.sent = 0
        self.refused = 0

    def get_extra_info(self, name):
        return ("127.0.0.1", 5555)

    def handling(self):
        pass

    async def readline(self):
        i = self.raw.find(b"\n", self.pos)
        i = len(self.raw) if i < 0 else i + 1
        line = self.raw[self.pos:i]
        self.pos = i
        return line

    async def read(self, n=-1):
        data = self.raw[self.pos:] if n < 0 else self.raw[self.pos:self.pos + n]
        self.pos += len(data)
        return data

    async def readexactly(self, n):
        return await self.read(n)

    async def awrite(self, data):
        self.sent += len(data)

    async def aclose(self):
        pass


def request(label, method, path, body=b"", ctype=None, host=None):
    head = method + " " + path + " HTTP/1.0\r\nHost: " + (host or task.ap_ip) + "\r\n"
    if body:
        head += "Content-Type: " + ctype + "\r\nContent-Length: " + str(len(body)) + "\r\n"
    conn = Conn((head + "\r\n").encode() + body)
    gc.collect()
    before = gc.mem_alloc()
    gc.disable()
    asyncio.run(routes.handle_request(conn, conn))
    during = gc.mem_alloc() - before
    gc.enable()
    gc.collect()
    out[label] = {"allocated": during, "held_after": gc.mem_alloc() - before, "sent": conn.sent}


request("(a request that does nothing, first)", "GET", "/baseline")
request("(a request that does nothing)", "GET", "/baseline")
request("GET /generate_204 (captive 302)", "GET", "/generate_204")
request("GET / of another host (captive 302)", "GET", "/", host="captive.apple.com")
request("GET /api/wifi", "GET", "/api/wifi")
request("GET /setup (first: imports setuppage)", "GET", "/setup")
request("GET /setup", "GET", "/setup")
form = b"ssid=home&password=home-pass-123&hostname=garage-bms&token=probe-token-0123456789"
request("POST /setup (merge settings.json, join)", "POST", "/setup", form, "application/x-www-form-urlencoded")
runner.cancel()
print(json.dumps(out))
