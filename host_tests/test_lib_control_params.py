# mp-heap: 192K
# The control service's parameter actions (lib/control.py param_*), driving
# the real link engine on the virtual bus (linkharness) while the action
# awaits: the opt-in and "confirm" gate, the table's range and step, a live
# link, the value read back, one full read at a time with its error. CPython
# and MicroPython.
import asyncio

from ant import params as P
from control import COMMAND_NAMES, Control, ControlError
from eventlog import EV_COMMAND, WHO_HTTP, EventLog
from eventtext import CMD_REFUSED
from link.engine import LinkConfig, LinkEngine
from link.model import LINK_OK, Model
from linkharness import FakeBms, Harness

WRITE_PARAM = COMMAND_NAMES.index("write-param")


class Clock:
    def __init__(self, h):
        self.h = h

    def ticks_ms(self):
        return self.h.now

    def clock_s(self):
        return 86400  # 2024-01-02T00:00:00Z


def make(allow=("write-param",), protocols=("new",), bms=None):
    bms = bms or FakeBms(protocols=protocols)
    for i in range(P.COUNT):
        addr = P.ROWS[i][P.NEW_ADDR]
        if addr >= 0:
            bms.new_mem[addr : addr + 2] = (100 + i).to_bytes(2, "little")
        if P.ROWS[i][P.OLD_REG]:
            bms.old_regs[P.ROWS[i][P.OLD_REG]] = 100 + i
    config = LinkConfig()
    config.listen_first_ms = 300
    model = Model()
    log = EventLog(32)
    engine = LinkEngine(model, config, log)
    h = Harness(engine, bms)
    assert h.run_until(lambda: model.link == LINK_OK, 4000)
    c = Control("token-0123456789abcdef", allow, engine, None, None, bytearray(8), log, Clock(h))
    return c, h, bms, log


def drive(h, *coros):
    """Run the coroutines while the bus runs; their results."""

    async def main():
        tasks = [asyncio.create_task(co) for co in coros]
        while not all(t.done() for t in tasks):
            h.step()
            await asyncio.sleep(0)
        out = []
        for t in tasks:
            out.append(await t)
        return out

    return asyncio.run(main())


def refused(c, h, body, status, words):
    try:
        drive(h, c.param_write(body, WHO_HTTP))
    except ControlError as e:
        assert e.status == status and words in e.reason, (e.status, e.reason)
        return
    raise AssertionError("not refused: %r" % (body,))


def test_a_write_needs_the_opt_in_and_the_confirm_field():
    c, h, bms, log = make(allow=())
    body = {"key": "cell_ov_protection_mv", "value": 3600, "confirm": "write-param"}
    refused(c, h, body, 403, 'add "write-param" to control.allow_commands')
    c, h, bms, log = make()
    refused(c, h, {"key": "cell_ov_protection_mv", "value": 3600}, 403, '"confirm": "write-param"')
    refused(c, h, {"key": "cell_ov_protection_mv", "value": 3600, "confirm": "yes"}, 403, "confirm")
    assert bms.param_writes == []
    refusals = [e for e in log.to_list(32) if e[0] == EV_COMMAND and e[2] == CMD_REFUSED]  # [kind, a, b, c, stamp]
    assert len(refusals) == 2 and all(e[1] == WRITE_PARAM and e[3] == WHO_HTTP for e in refusals), refusals


def test_a_write_is_checked_against_the_table():
    c, h, bms, log = make()

    def body(key, value):
        return {"key": key, "value": value, "confirm": "write-param"}

    refused(c, h, body("explode_mv", 1), 400, "unknown parameter: explode_mv")
    refused(c, h, body("cell_count", 8), 400, "cell_count is read-only")
    refused(c, h, body("cell_ov_protection_mv", "3600"), 400, "value must be a number")
    refused(c, h, body("cell_ov_protection_mv", True), 400, "value must be a number")
    refused(c, h, body("cell_ov_protection_mv", 5000), 400, "within 1500 .. 4500 mV")
    refused(c, h, body("pack_ov_protection_v", 150.1), 400, "within 5 .. 150 V")
    refused(c, h, body("pack_ov_protection_v", 58.45), 400, "a multiple of 0.1")
    refused(c, h, body("charge_ot_protection_c", 50), 400, "not offered by the new protocol")
    refused(c, h, {"key": "cell_ov_protection_mv", "value": 3600, "confirm": "write-param", "x": 1}, 400,
            "unknown field")
    assert bms.param_writes == []


def test_a_write_needs_a_live_link():
    c, h, bms, log = make()
    bms.silent = True
    h.run(15000)
    refused(c, h, {"key": "cell_ov_protection_mv", "value": 3600, "confirm": "write-param"}, 503, "not live")


def test_a_write_answers_with_the_value_read_back_and_is_logged():
    c, h, bms, log = make()
    [doc] = drive(h, c.param_write({"key": "pack_ov_protection_v", "value": 58.4, "confirm": "write-param"},
                                   WHO_HTTP))
    assert doc == {"ok": True, "key": "pack_ov_protection_v", "raw": 584, "exp": -1, "unit": "V", "reason": None}
    assert bms.param_writes == [(0x0008, 584)] and bms.saves == 1
    assert c.params.raw(P.find("pack_ov_protection_v")) == 584  # the cache has it too
    writes = [e for e in log.to_list(32) if e[0] == EV_COMMAND and e[1] == WRITE_PARAM]
    assert [(e[2], e[3]) for e in writes] == [(2, WHO_HTTP)]  # done, from http


def test_a_value_the_bms_did_not_keep_is_reported_with_what_it_kept():
    c, h, bms, log = make(protocols=("old",))
    bms.keep_params = True
    row = P.find("cell_ov_protection_mv")
    [doc] = drive(h, c.param_write({"key": "cell_ov_protection_mv", "value": 3600, "confirm": "write-param"},
                                   WHO_HTTP))
    assert doc["ok"] is False and doc["raw"] == 100 + row
    assert doc["reason"] == "the BMS kept %d instead of 3600 (read back)" % (100 + row)


def test_reading_everything_once_while_several_ask():
    c, h, bms, log = make()
    first = len(h.sent)
    a, b = drive(h, c.param_read_all(WHO_HTTP, True), c.param_read_all(WHO_HTTP, True))
    assert a is b is c.params and a.complete and a.error == ""
    assert a.read_s == 86400 and a.protocol == 2
    reads = [f for f in h.sent[first:] if f[2] == 0x02]
    assert len(reads) == len(P.NEW_PAGES)  # one full read served both
    for i in range(P.COUNT):
        if P.offered(i, 2) and P.ROWS[i][P.KIND] != P.K_U32:
            assert a.raw(i) == 100 + i
    # Cached: a plain read asks the BMS nothing.
    n = len(h.sent)
    drive(h, c.param_read_all(WHO_HTTP))
    assert [f for f in h.sent[n:] if f[2] == 0x02] == [] and not c.param_reading()


def test_a_read_says_why_it_failed():
    class NoParams(FakeBms):
        def _handle(self, f, kind, now_ms):
            if f[0] == 0x7E and f[2] == 0x02:
                return
            FakeBms._handle(self, f, kind, now_ms)

    c, h, bms, log = make(bms=NoParams(protocols=("new",)))
    [values] = drive(h, c.param_read_all(WHO_HTTP, True))
    assert not values.complete and values.error.startswith("no reply to the read of 56 bytes at 0x0000")
    c, h, bms, log = make()
    bms.silent = True
    h.run(15000)
    [values] = drive(h, c.param_read_all(WHO_HTTP, True))
    assert values.error == "the BMS link is not live: nothing read"
