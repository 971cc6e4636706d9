# The parameter and BMS-log routes (firmware/webparams.py) in process: the
# app exactly as build() wires it (fakehw.py), its link task stepping
# against the virtual bus's BMS (linkharness.FakeBms) while microdot's
# TestClient waits for the answer. Document shapes, the cache and refresh,
# the write gate's statuses, the log of both generations. CPython.
import asyncio

from ant import params as P
from fakehw import FakeHw
from fwproc import firmware_module
from linkharness import FakeBms
from link.model import LINK_OK

from microdot.test_client import TestClient

settings_mod = firmware_module("settings")
app_mod = firmware_module("app")

TOKEN = "web-test-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
CONFIRM = "write-param"


class BusUart:
    """The app's UART wired to a FakeBms."""

    def __init__(self, bms, hw):
        self.bms = bms
        self.hw = hw

    def write(self, buf):
        self.bms.receive(bytes(buf), self.hw.ticks_ms(), 19200)

    def set_baud(self, baud):
        pass


class RollingBms(FakeBms):
    """An OLD unit whose status frames roll through a system log."""

    def __init__(self, words, **kw):
        FakeBms.__init__(self, **kw)
        self.words = words
        self.k = 0

    def _handle(self, f, kind, now_ms):
        self.st.syslog = self.words[self.k % len(self.words)]
        if f[0] in (0x5A, 0xDB) and f[2] == 0:
            self.k += 1
        FakeBms._handle(self, f, kind, now_ms)


def make(tmp_path, bms, allow=(CONFIRM,)):
    s = settings_mod.Settings()
    s.api_token = TOKEN
    s.allow_commands = allow
    s.link.listen_first_ms = 100
    s.program = settings_mod.compile_outputs({"outputs": [{"name": "do1", "mode": "off"}]})
    hw = FakeHw(str(tmp_path))
    a = app_mod.build(s, hw)
    a.bmslink.uart = BusUart(bms, hw)
    for i in range(P.COUNT):
        addr = P.ROWS[i][P.NEW_ADDR]
        if addr >= 0:
            bms.new_mem[addr : addr + 2] = (1000 + i).to_bytes(2, "little")
        if P.ROWS[i][P.OLD_REG]:
            bms.old_regs[P.ROWS[i][P.OLD_REG]] = 1000 + i
    return a, hw


def step(a, hw, bms):
    hw.advance(5)
    now = hw.ticks_ms()
    for frame in bms.due(now):
        a.link.feed(frame, len(frame), now)
    a.bmslink.step(now)


def go_live(a, hw, bms):
    for _ in range(2000):
        step(a, hw, bms)
        if a.hub.model.link == LINK_OK:
            return
    raise AssertionError("no link")


def call(a, hw, bms, method, path, body=None, headers=None):
    """A request while the link task runs."""

    async def main():
        client = TestClient(a.web)
        task = asyncio.create_task(client.request(method, path, headers=dict(headers or {}), body=body))
        while not task.done():
            step(a, hw, bms)
            await asyncio.sleep(0)
        return await task

    return asyncio.run(main())


def by_key(doc):
    return {p["key"]: p for p in doc["params"]}


def test_params_before_the_bms_answers(tmp_path):
    bms = FakeBms()
    a, hw = make(tmp_path, bms)
    bms.silent = True
    r = call(a, hw, bms, "GET", "/api/params")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    assert r.json == {"protocol": None, "read_at": None, "age_s": None, "reading": False,
                      "error": "the BMS link is not live: nothing read", "params": []}


def test_params_of_a_new_unit_read_once_then_cached(tmp_path):
    bms = FakeBms(protocols=("new",))
    a, hw = make(tmp_path, bms)
    go_live(a, hw, bms)
    sent_before = bms.replies
    r = call(a, hw, bms, "GET", "/api/params")
    doc = r.json
    assert r.status_code == 200 and doc["protocol"] == "new" and doc["error"] is None and doc["reading"] is False
    assert doc["read_at"].endswith("Z") and doc["age_s"] == 0
    params = by_key(doc)
    assert set(params) == {P.ROWS[i][P.KEY] for i in range(P.COUNT) if P.offered(i, 2)}
    row = P.find("pack_ov_protection_v")
    assert params["pack_ov_protection_v"] == {
        "key": "pack_ov_protection_v", "name": "Pack over-voltage protection", "unit": "V",
        "value": (1000 + row) / 10, "raw": 1000 + row, "min": 5.0, "max": 150.0, "step": 0.1, "writable": True,
        "group": "voltage", "verified": True, "register": 8}
    cap = params["capacity_ah"]
    assert cap["verified"] is False and cap["writable"] is False and cap["min"] is None and cap["step"] == 0.000001
    assert params["cell_count"]["value"] == 1000 + P.find("cell_count")
    replies = bms.replies - sent_before
    # Served from the cache: the BMS is asked nothing more for the parameters.
    reads = bms.replies
    for _ in range(600):  # 3 s of polling
        step(a, hw, bms)
    doc2 = call(a, hw, bms, "GET", "/api/params").json
    assert doc2["params"] == doc["params"] and doc2["age_s"] == 3
    polls_only = bms.replies - reads
    bms.new_mem[0x0008:0x000A] = (600).to_bytes(2, "little")
    doc3 = call(a, hw, bms, "GET", "/api/params?refresh=1").json
    assert by_key(doc3)["pack_ov_protection_v"]["value"] == 60.0 and doc3["age_s"] == 0
    assert replies >= len(P.NEW_PAGES) and polls_only <= 4  # three polls in 3 s


def test_writing_a_parameter_over_http(tmp_path):
    bms = FakeBms(protocols=("new",))
    a, hw = make(tmp_path, bms)
    go_live(a, hw, bms)
    body = {"key": "pack_ov_protection_v", "value": 58.4, "confirm": CONFIRM}
    r = call(a, hw, bms, "POST", "/api/params", body, AUTH)
    assert r.status_code == 200, r.text
    assert r.json == {"ok": True, "key": "pack_ov_protection_v", "value": 58.4, "unit": "V", "raw": 584,
                      "reason": None}
    assert bms.param_writes == [(0x0008, 584)] and bms.saves == 1
    doc = call(a, hw, bms, "GET", "/api/params").json
    assert by_key(doc)["pack_ov_protection_v"]["value"] == 58.4  # the cache has the read-back value
    events = call(a, hw, bms, "GET", "/api/events").json["events"]
    assert "BMS command write-param from http: done" in [e["text"] for e in events]


def test_the_write_gate_answers_with_statuses(tmp_path):
    bms = FakeBms(protocols=("new",))
    a, hw = make(tmp_path, bms)
    go_live(a, hw, bms)
    good = {"key": "cell_ov_protection_mv", "value": 3600, "confirm": CONFIRM}
    for body, headers, status, words in (
            (good, {}, 401, "token"),
            ({"key": "cell_ov_protection_mv", "value": 3600}, AUTH, 403, "confirm"),
            ({"key": "cell_ov_protection_mv", "value": 9000, "confirm": CONFIRM}, AUTH, 400, "within 1500 .. 4500"),
            ({"key": "nope", "value": 1, "confirm": CONFIRM}, AUTH, 400, "unknown parameter"),
            ({"key": "cell_count", "value": 8, "confirm": CONFIRM}, AUTH, 400, "read-only"),
            (b'{"key": ', AUTH, 400, "malformed JSON"),
            (b"x" * 300, AUTH, 413, "over 256 bytes")):
        r = call(a, hw, bms, "POST", "/api/params", body, headers)
        assert r.status_code == status and words in r.json["reason"] and r.json["ok"] is False, (body, r.json)
    off, hw2 = make(tmp_path / "off", FakeBms(), allow=())
    r = call(off, hw2, FakeBms(), "POST", "/api/params", good, AUTH)
    assert r.status_code == 403 and "control.allow_commands" in r.json["reason"]
    bms.silent = True
    hw.advance(20000)
    for _ in range(10):
        step(a, hw, bms)
    r = call(a, hw, bms, "POST", "/api/params", good, AUTH)
    assert r.status_code == 503 and "not live" in r.json["reason"]
    assert bms.param_writes == []


def test_the_bms_log_of_both_generations(tmp_path):
    bms = FakeBms(protocols=("new",))
    a, hw = make(tmp_path, bms)
    assert call(a, hw, bms, "GET", "/api/bmslog").json["reason"] == "no BMS identified yet"
    go_live(a, hw, bms)
    doc = call(a, hw, bms, "GET", "/api/bmslog").json
    assert doc["supported"] is False and doc["source"] is None and doc["entries"] == []
    assert doc["reason"].startswith("not offered by this BMS generation over the known protocol")
    words = [2 | 5 << 5 | 29 << 10, 3 | 9 << 10 | 0x8000, 15 | 16 << 10]
    bms = RollingBms(words, protocols=("old",))
    a, hw = make(tmp_path / "old", bms)
    go_live(a, hw, bms)
    for _ in range(1000):
        step(a, hw, bms)
    doc = call(a, hw, bms, "GET", "/api/bmslog").json
    assert doc["supported"] is True and doc["reason"] is None and doc["source"] == "old system-log word"
    assert doc["frames"] >= 3
    assert doc["entries"] == [
        {"slot": 9, "table": "discharge", "code": 3, "text": "over-current", "cell": None},
        {"slot": 16, "table": "charge", "code": 15, "text": "manually switched off", "cell": None},
        {"slot": 29, "table": "charge", "code": 2, "text": "cell over-voltage", "cell": 5},
    ]
