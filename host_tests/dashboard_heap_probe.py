# What the dashboard costs the firmware's heap, measured on the MicroPython
# unix port (run by test_dashboard.py and for README "Dashboard"; frozen
# build, fakehw.py as the hardware):
#   rest      what importing dashboard.py, the frozen page (dashpage) and
#             lib/history.py leaves in the heap, and the History itself
#   requests  per request, for "/" and, to compare, the plain page, the
#             status and the history: "allocated", the bytes the whole
#             request allocates (collector off, so every allocation counts;
#             all of it is garbage once answered), and "live", the most it
#             holds at once (collected at every write of the response)
# Prints one JSON line.
#   MICROPYPATH=.frozen:host_tests build/mp/esp32like-frozen/micropython \
#       -X heapsize=128K host_tests/dashboard_heap_probe.py
import asyncio
import gc
import json
import os

gc.collect()
_m0 = gc.mem_alloc()
import history  # noqa: E402

gc.collect()
_m1 = gc.mem_alloc()
_h = history.History(120, 30000)
gc.collect()
_m2 = gc.mem_alloc()
import dashboard  # noqa: E402

gc.collect()
_m3 = gc.mem_alloc()
_page = dashboard.find()
gc.collect()
_m4 = gc.mem_alloc()

import settings as settings_mod  # noqa: E402
from ant.status import Status  # noqa: E402
from fakehw import FakeHw  # noqa: E402
from httpserver import OUT_BUF  # noqa: E402
from jsonout import JsonOut  # noqa: E402
from link.model import LINK_OK  # noqa: E402

import app as app_mod  # noqa: E402

# What Chromium sends with a request to a page on the LAN (no cookies, no
# client hints: those go to secure origins only).
_HEADERS = (b"Host: 192.168.1.23\r\nConnection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n"
            b"User-Agent: Mozilla/5.0 (Linux; Android 14) AppleWebKit/537.36 (KHTML, like Gecko) "
            b"Chrome/150.0.0.0 Mobile Safari/537.36\r\n"
            b"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8\r\n"
            b"Accept-Encoding: gzip, deflate\r\nAccept-Language: en-GB,en;q=0.9\r\n\r\n")


class FakeConn:
    """A connection as httpserver.Conn offers it to microdot: the request
    in memory, the response counted."""

    def __init__(self, path):
        self.data = b"GET " + path + b" HTTP/1.1\r\n" + _HEADERS
        self.pos = 0
        self.out = JsonOut(OUT_BUF)
        self.refused = 0
        self.sent = 0
        self.head = None
        self.track = False
        self.peak = 0

    def handling(self):
        pass

    def get_extra_info(self, name):
        return ("127.0.0.1", 40000)

    async def readline(self):
        end = self.data.find(b"\n", self.pos) + 1 or len(self.data)
        line = self.data[self.pos:end]
        self.pos = end
        return line

    async def read(self, n=-1):
        end = len(self.data) if n < 0 else min(len(self.data), self.pos + n)
        chunk = self.data[self.pos:end]
        self.pos = end
        return chunk

    async def readexactly(self, n):
        return await self.read(n)

    async def awrite(self, data):
        if self.head is None:
            self.head = bytes(data)
        self.sent += len(data)
        if self.track:
            gc.collect()
            self.peak = max(self.peak, gc.mem_alloc())

    async def aclose(self):
        pass


def live_status(a, hw):
    st = a.hub.model.status
    st.cell_count = 16
    for i in range(16):
        st.cells_mv[i] = 3300 + i
    st.pack_cv = 5300
    st.soc_pct = 60
    st.capacity_mah = 100000
    st.remaining_mah = 60000
    st.charge_mos = 1
    st.discharge_mos = 1
    a.hub.model.has_data = True
    a.hub.model.link = LINK_OK
    a.hub.model.fresh_ms = hw.ticks_ms()
    assert isinstance(st, Status)


def main():
    s = settings_mod.Settings()
    s.api_token = "probe-token-0123456789"
    s.program = settings_mod.compile_outputs({"outputs": [{"name": "charger", "when": {"soc": {"below": 80}}},
                                                          {"name": "do2", "mode": "off"},
                                                          {"name": "alarm", "when": {"protection": "any"},
                                                           "inverted": True, "fail_safe": "on"}]})
    hw = FakeHw(os.getenv("ANTBRIDGE_DATA") or "/tmp")
    a = app_mod.build(s, hw)
    live_status(a, hw)
    for k in range(120):  # a full hour of history
        a.history.add(hw.ticks_ms(), 5300 + k % 7, 42, 60, 3300, 3315)
        hw.advance(30000)
    out = {"rest": {"history_module": _m1 - _m0, "history_object": _m2 - _m1, "dashboard_module": _m3 - _m2,
                    "page_found": _m4 - _m3, "page_bytes": _page.length if _page else None}}

    async def measure():
        requests = {}
        for path in (b"/", b"/lite", b"/api/status", b"/api/history"):
            for _ in range(2):  # the first request of a path may import or intern something
                conn = FakeConn(path)
                gc.collect()
                gc.disable()
                before = gc.mem_alloc()
                await a.web.handle_request(conn, conn)
                used = gc.mem_alloc() - before
                gc.enable()
            conn = FakeConn(path)
            conn.track = True
            gc.collect()
            before = gc.mem_alloc()
            await a.web.handle_request(conn, conn)
            requests[path.decode()] = {"allocated": used, "live": conn.peak - before, "sent": conn.sent,
                                       "status": conn.head.split(b" ")[1].decode() if conn.head else None}
        return requests

    out["requests"] = asyncio.run(measure())
    gc.collect()
    out["free_after"] = gc.mem_free()
    print(json.dumps(out))


main()
