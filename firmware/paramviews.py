# The documents of the BMS's settings and log (firmware/webparams.py routes),
# written piece by piece into the connection's writer like views.py's: each
# producer yields when the buffer is nearly full. Loaded on the first such
# request, with the parameter table (lib/ant/params.py).
from ant import params as P
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD
from link.paramvalues import V_NA
from ticks import ticks_diff

from views import iso_time

_PROTOCOLS = (None, "old", "new")
# (No character JSON must escape: an escaped string is built in pieces while the reply streams.)
NOT_OFFERED = ("not offered by this BMS generation over the known protocol: the reference names a reply "
               "0x13 'system log' but no request that asks for it")


def params_doc(w, values, reading, now_ms):
    """GET /api/params: the rows of the values' generation, one object each."""
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
    """GET /api/bmslog; `log` is None until the first OLD frame (which
    loaded ant.syslog: nothing is loaded here, while the reply streams)."""
    w.begin_obj()
    w.key("supported")
    w.boolean(protocol == PROTOCOL_OLD)
    w.key("reason")
    if protocol == PROTOCOL_OLD:
        w.null()
    elif protocol == PROTOCOL_NEW:
        w.str_value(NOT_OFFERED)
    else:
        w.str_value("no BMS identified yet")
    w.key("source")
    w.str_value("old system-log word" if protocol == PROTOCOL_OLD else None)
    w.key("frames")  # status frames that carried a log word
    w.integer(log.frames if log is not None else 0)
    w.key("entries")
    w.begin_list()
    if protocol == PROTOCOL_OLD and log is not None:
        from ant import syslog  # loaded with the log
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
