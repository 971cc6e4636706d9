# The BMS's own settings and log over HTTP: the vendor app's parameter
# screen and the PC software's system log. A sub-app that app.py hands to
# web.create(extra=...):
#
#   GET  /api/params         every parameter of the BMS's generation with its
#                            value, range and step ({"protocol", "read_at",
#                            "reading", "error", "params": [...]}); read from
#                            the BMS on the first request, then served from
#                            the cache with its time; ?refresh=1 reads afresh
#                            (answered when done, or after 30 s with what has
#                            arrived and "reading": true). No token: reading
#                            changes nothing; one full read runs at a time.
#   POST /api/params         {"key", "value", "confirm": "write-param"} with
#                            the token; opt-in control.allow_commands
#                            "write-param". {"ok", "key", "value" (read back),
#                            "unit", "raw", "reason"}
#   GET  /api/bmslog         the BMS's system log: OLD frames carry one slot
#                            each (lib/ant/syslog.py); NEW: not offered
#
# The parameter table and the jobs load on the first request (lazily): the
# firmware at rest holds only these handlers.
import json

from ant.status import PROTOCOL_NEW, PROTOCOL_OLD
from control import ControlError
from eventlog import WHO_HTTP

import web
from microdot import Microdot  # pyright: ignore[reportMissingImports]  (deployed frozen, no stubs)
from views import iso_time

_BODY = 256
_PROTOCOLS = (None, "old", "new")


def params_doc(w, values, reading, now_ms):
    """GET /api/params: the rows of the values' generation, one object each."""
    from ant import params as P
    from link.paramjob import V_NA
    from ticks import ticks_diff

    protocol = values.protocol
    w.begin_obj()
    w.key("protocol")
    w.str_value(_PROTOCOLS[protocol] if 0 <= protocol <= 2 else None)
    w.key("read_at")
    w.str_value(iso_time(values.read_s) if values.complete else None)
    w.key("age_s")  # since the last complete read (the device clock may be unset)
    if values.complete:
        w.integer(ticks_diff(now_ms, values.read_ms) // 1000)
    else:
        w.null()
    w.key("reading")
    w.boolean(reading)
    w.key("error")
    w.str_value(values.error or None)
    w.key("params")
    w.begin_list()
    for i in range(P.COUNT):
        if not P.offered(i, protocol):
            continue
        r = P.ROWS[i]
        exp = r[P.EXP]
        writable = r[P.FLAGS] & P.F_WRITE != 0
        raw = values.raw(i)
        w.begin_obj()
        w.key("key")
        w.str_value(r[P.KEY])
        w.key("name")
        w.str_value(r[P.NAME])
        w.key("unit")
        w.str_value(r[P.UNIT])
        w.key("value")
        w.fixed(raw, exp)
        w.key("raw")
        if raw is not None:
            w.integer(raw)
        elif values.state[i] == V_NA:
            w.integer(values.lo[i])  # FFFF: "not available"
        else:
            w.null()
        w.key("min")
        w.fixed(r[P.LO] if writable else None, exp)
        w.key("max")
        w.fixed(r[P.HI] if writable else None, exp)
        w.key("step")
        w.fixed(1, exp)
        w.key("writable")
        w.boolean(writable)
        w.key("group")
        w.str_value(r[P.GROUP])
        w.key("verified")
        w.boolean(P.verified(i, protocol))
        w.key("register")  # OLD register / NEW address
        w.integer(r[P.OLD_REG] if protocol == PROTOCOL_OLD else r[P.NEW_ADDR])
        w.end_obj()
        if w.full():
            yield
    w.end_list()
    w.end_obj()
    if w.full():
        yield


def write_doc(w, d):
    """POST /api/params: the control service's result, the value exact."""
    w.begin_obj()
    w.key("ok")
    w.boolean(d["ok"])
    w.key("key")
    w.str_value(d["key"])
    w.key("value")
    w.fixed(d["raw"], d["exp"])
    w.key("unit")
    w.str_value(d["unit"])
    w.key("raw")
    w.value(d["raw"])
    w.key("reason")
    w.str_value(d["reason"])
    w.end_obj()
    if w.full():
        yield


def bmslog_doc(w, protocol, log):
    """GET /api/bmslog."""
    from ant import syslog

    w.begin_obj()
    w.key("supported")
    w.boolean(protocol == PROTOCOL_OLD)
    w.key("reason")
    if protocol == PROTOCOL_OLD:
        w.null()
    elif protocol == PROTOCOL_NEW:
        w.str_value(syslog.NOT_OFFERED)
    else:
        w.str_value("no BMS identified yet")
    w.key("source")
    w.str_value("old system-log word" if protocol == PROTOCOL_OLD else None)
    w.key("frames")  # status frames that carried a log word
    w.integer(log.frames)
    w.key("entries")
    w.begin_list()
    if protocol == PROTOCOL_OLD:
        for slot in range(syslog.SLOTS):
            if not log.has(slot):
                continue
            word = log.words[slot]
            w.begin_obj()
            w.key("slot")
            w.integer(slot)
            w.key("table")
            w.str_value("discharge" if syslog.discharge(word) else "charge")
            w.key("code")
            w.integer(syslog.code(word))
            w.key("text")
            w.str_value(syslog.text(word))
            w.key("cell")
            cell = syslog.cell(word)
            if cell:
                w.integer(cell)
            else:
                w.null()
            w.end_obj()
            if w.full():
                yield
    w.end_list()
    w.end_obj()
    if w.full():
        yield


def create(hub, control, clock, log):
    """The sub-app; `log` is the ant.syslog.SysLog the link task fills."""
    app = Microdot()

    @app.get("/api/params")
    async def params_get(request):
        refresh = request.args.get("refresh") in ("1", "true")
        values = await control.param_read_all(WHO_HTTP, refresh)
        reading = control.param_reading()
        now = clock.ticks_ms()
        return web.streamed(request, lambda w: params_doc(w, values, reading, now))

    @app.post("/api/params")
    async def params_post(request):
        try:
            denied = control.authorize(request.headers.get("Authorization"))
            if denied is not None:
                raise denied
            if request.content_length > _BODY:
                raise ControlError(413, "body over " + str(_BODY) + " bytes")
            raw = request.body
            try:
                body = json.loads(raw.decode()) if raw else {}
            except (ValueError, UnicodeError):
                raise ControlError(400, "malformed JSON body")
            d = await control.param_write(body, WHO_HTTP)
        except ControlError as e:
            if e.status == 413:
                return await web._drain(request, _BODY)  # pyright: ignore[reportPrivateUsage]
            r = web.error(e.status, e.reason)
            if e.status == 401:
                r.headers["WWW-Authenticate"] = "Bearer"
            return r
        return web.streamed(request, lambda w: write_doc(w, d))

    @app.get("/api/bmslog")
    async def bmslog(request):
        protocol = hub.model.protocol
        return web.streamed(request, lambda w: bmslog_doc(w, protocol, log))

    return app
