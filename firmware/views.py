# The documents the web face serves, written piece by piece into a
# per-request buffer (lib/jsonout.py): every producer is a generator that
# yields when the buffer is nearly full. Values come from the hub through
# the catalog rows (lib/catalog.py), so the JSON, /metrics and the other
# faces agree by construction. A status is only ever called live when the
# link says so; otherwise "live" is false and the last values stay visible
# as what they are: old.
import catalog as C
from ant import alarms as ant_alarms
from ant.status import PROTOCOL_NAMES
from eventlog import KIND_NAMES
from eventtext import text as event_text
from link.describe import hint
from link.engine import ERR_NONE, ERROR_NAMES
from link.model import LINE_NAMES, LINK_NAMES, LINK_OK
from ticks import ticks_diff

_STATUS_ROWS = tuple(i for i in range(C.COUNT) if C.ROWS[i][C.PART] == C.P_STATUS
                     and not C.ROWS[i][C.FLAGS] & C.F_NO_JSON)
_ENERGY_ROWS = tuple(i for i in range(C.COUNT) if C.ROWS[i][C.PART] == C.P_ENERGY)
_ACC_ROWS = tuple(i for i in range(C.COUNT) if C.ROWS[i][C.PART] == C.P_ACC)
_EPOCH_2024 = 1704067200  # device clock 0 in Unix time


def iso_time(clock_s):
    """Device clock seconds as "2026-12-02T10:24:00Z" (None when unset)."""
    if clock_s <= 0:
        return None
    days = clock_s // 86400
    rem = clock_s % 86400
    # Civil date from days since 2024-01-01 (a leap year, start of a 4-year
    # cycle; valid until 2100).
    y = 2024 + (days // 1461) * 4
    d = days % 1461
    for length in (366, 365, 365, 365):
        if d < length:
            break
        d -= length
        y += 1
    leap = y % 4 == 0
    m = 1
    for length in (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31):
        if d < length:
            break
        d -= length
        m += 1
    return "%04d-%02d-%02dT%02d:%02d:%02dZ" % (y, m, d + 1, rem // 3600, rem % 3600 // 60, rem % 60)


# -- catalog rows as JSON --------------------------------------------------------------


def row_value(w, hub, i):
    row = C.ROWS[i]
    kind = row[C.KIND]
    if kind == C.K_NUM or kind == C.K_OPT:
        w.fixed(hub.raw(i), row[C.EXP])
    elif kind == C.K_BOOL:
        v = hub.raw(i)
        if v is None:
            w.null()
        else:
            w.boolean(v)
    elif kind == C.K_TEXT:
        w.str_value(hub.text(i))
    elif kind == C.K_SPLIT3:
        hi = hub.raw(i)
        w.split(hi, hub.low(i) if hi is not None else 0, row[C.EXP])
    elif kind == C.K_STATE:
        code = hub.raw(i)
        if code is None:
            w.null()
            return
        w.begin_obj()
        w.key("code")
        w.integer(code)
        w.key("on")
        w.boolean(hub.state_on(i))
        w.key("text")
        w.str_value(hub.text(i))
        w.end_obj()
    elif kind == C.K_HEX:
        if hub.raw(i) is None:
            w.null()
            return
        st = hub.model.status
        w.hex_value(st.protection if row[C.KEY] == "protection_flags" else st.warning)
    elif kind == C.K_CELLS or kind == C.K_PROBES or kind == C.K_LIST or kind == C.K_OUTPUTS:
        if not hub.has_data() and row[C.PART] == C.P_STATUS:
            w.null()
            return
        w.begin_list()
        exp = row[C.EXP]
        for k in range(hub.count(i)):
            w.fixed(hub.raw(i, k), exp)
        w.end_list()
    else:
        w.null()


def rows_object(w, hub, rows):
    w.begin_obj()
    for i in rows:
        w.key(C.ROWS[i][C.KEY])
        row_value(w, hub, i)
        if w.full():
            yield
    w.end_obj()


# -- documents ------------------------------------------------------------------------------


def alarms_list(w, hub, now_ms):
    """The active BMS alarms with the time they started (oldest first)."""
    watch = hub.alarms
    w.begin_list()
    if watch is not None and hub.has_data():
        slot = watch.first()
        while slot >= 0:
            code = watch.codes[slot]
            since_ms = watch.since_ms[slot]
            since_s = watch.since_s[slot]
            slot = watch.next(slot)
            w.begin_obj()
            w.key("code")
            w.integer(code)
            w.key("name")
            w.str_value(ant_alarms.name(code))
            w.key("source")
            w.str_value(ant_alarms.source(code))
            w.key("since_ms")
            w.integer((now_ms - since_ms) & 0x3FFFFFFF)
            w.key("since")
            w.str_value(iso_time(since_s))
            w.end_obj()
    w.end_list()


# The words for the link that the bridge itself knows better than a generic
# hint: it is waking the BMS already (ACC state), or the BMS was shut down.
_WAKING_HINT = "The BMS went silent; the bridge is waking it through ACC now."
_HELD_OFF_HINT = "The BMS was shut down on request; wake it with POST /api/acc/wake."
_ACC_PULSING = 2
_ACC_BACKOFF = 4
_ACC_HELD_OFF = 9


def link_hint(hub):
    """The one sentence a user needs about the link now (a constant)."""
    model = hub.model
    acc = hub.acc
    if acc is not None and model.link != LINK_OK:
        if _ACC_PULSING <= acc.state <= _ACC_BACKOFF:
            return _WAKING_HINT
        if acc.state == _ACC_HELD_OFF:
            return _HELD_OFF_HINT
    return hint(model, hub.link)


def _int_or_null(w, v):
    if v is None:
        w.null()
    else:
        w.integer(v)


# The link as lib/link/describe.py's describe_link() has it (the same keys;
# tests/test_web.py compares them), plus "age_ms", written in three pieces so
# the producer can hand the buffer out between them.
def link_head(w, hub, now_ms):
    model = hub.model
    engine = hub.link
    age = model.age_ms(now_ms)
    w.begin_obj()
    w.key("state")
    w.str_value(LINK_NAMES[model.link])
    w.key("live")
    w.boolean(model.live())
    w.key("line")
    w.str_value(LINE_NAMES[model.line])
    w.key("hint")
    w.str_value(link_hint(hub))
    w.key("data_age_ms")
    _int_or_null(w, None if age < 0 else age)
    w.key("age_ms")
    w.integer(age)  # -1: never a status since boot
    w.key("state_age_ms")
    w.integer(ticks_diff(now_ms, model.changed_ms))
    w.key("protocol")
    w.str_value(PROTOCOL_NAMES[model.protocol] if model.protocol else None)
    w.key("detected")
    w.boolean(engine.detector.locked)
    w.key("baud")
    w.integer(engine.baud)
    w.key("passive")
    w.boolean(model.passive)
    w.key("powered")
    w.boolean(engine.powered)
    w.key("poll_ms")
    w.integer(engine.poll_ms())
    loss = engine.loss_pct()
    w.key("loss_pct")
    _int_or_null(w, None if loss < 0 else loss)
    w.key("window")
    w.integer(engine.window_polls())
    reply = engine.reply_ms()
    w.key("reply_ms")
    _int_or_null(w, reply if reply else None)
    w.key("reply_timeout_ms")
    w.integer(engine.reply_timeout_ms())


def link_stats(w, hub):
    stats = hub.link.stats
    w.key("stats")
    w.begin_obj()
    for key in _STATS_KEYS:
        w.key(key)
        w.integer(getattr(stats, key))
    w.end_obj()


def link_tail(w, hub, now_ms):
    model = hub.model
    stats = hub.link.stats
    w.key("last_error")
    if stats.last_error == ERR_NONE:
        w.null()
    else:
        w.begin_obj()
        w.key("error")
        w.str_value(ERROR_NAMES[stats.last_error])
        w.key("age_ms")
        w.integer(ticks_diff(now_ms, stats.last_error_ms))
        w.end_obj()
    w.key("alarms")
    w.begin_list()
    if model.has_data:
        st = model.status
        code = ant_alarms.next_active(st)
        while code >= 0:
            w.begin_obj()
            w.key("code")
            w.integer(code)
            w.key("name")
            w.str_value(ant_alarms.name(code))
            w.key("source")
            w.str_value(ant_alarms.source(code))
            w.end_obj()
            code = ant_alarms.next_active(st, code)
    w.end_list()
    w.end_obj()


_STATS_KEYS = ("frames_ok", "polls", "timeouts", "checksum_errors", "resyncs", "bytes_dropped", "foreign_frames",
               "rx_bytes", "tx_frames", "commands_ok", "commands_failed", "baud_switches", "late_replies", "errors")


def status_doc(w, hub, now_ms):
    """GET /api/status: the link, whether the status is live, the status
    itself (every key, null before the first one), the active alarms with
    their start, and summaries of the outputs, ACC and the energy. Written
    without allocating (tests/mp_test_views_alloc.py)."""
    model = hub.model
    w.begin_obj()
    w.key("link")
    link_head(w, hub, now_ms)
    if w.full():
        yield
    link_stats(w, hub)
    if w.full():
        yield
    link_tail(w, hub, now_ms)
    if w.full():
        yield
    w.key("live")
    w.boolean(model.live())
    w.key("generation")
    w.integer(model.generation)
    # (Loops written out here: a nested generator would be an allocation.)
    w.key("status")
    w.begin_obj()
    for i in _STATUS_ROWS:
        w.key(C.ROWS[i][C.KEY])
        row_value(w, hub, i)
        if w.full():
            yield
    w.end_obj()
    w.key("alarms")
    alarms_list(w, hub, now_ms)
    if w.full():
        yield
    relays = hub.relays
    if relays is not None:
        w.key("outputs")
        w.begin_list()
        for i in range(relays.count):
            w.begin_obj()
            w.key("name")
            w.str_value(relays.names[i])
            w.key("state")
            w.str_value("on" if relays.state(i) else "off")
            w.key("held_by")
            w.str_value(relays.held_by(i))
            w.key("reason")
            w.str_value(relays.reason_text(i))
            w.key("relay")
            w.str_value(None if relays.pins[i] is None else ("energised" if relays.levels[i] else "released"))
            w.key("pin_asserted")
            _int_or_null(w, None if relays.pins[i] is None else relays.levels[i])
            w.key("inverted")
            w.boolean(relays.inverted(i))
            w.key("sense_alarm")
            w.boolean(relays.sense_alarm(i))
            w.key("override")
            w.str_value(relays.override(i))
            w.key("override_expires_s")
            _int_or_null(w, relays.override_left_s(i, now_ms))
            w.end_obj()
            if w.full():
                yield
        w.end_list()
    if hub.acc is not None:
        w.key("acc")
        w.begin_obj()
        for i in _ACC_ROWS:
            w.key(C.ROWS[i][C.KEY])
            row_value(w, hub, i)
        w.key("text")
        w.str_value(hub.acc_text())
        w.end_obj()
    if hub.energy is not None:
        w.key("energy")
        w.begin_obj()
        for i in _ENERGY_ROWS:
            w.key(C.ROWS[i][C.KEY])
            row_value(w, hub, i)
        w.end_obj()
    w.end_obj()


def events_doc(w, log, names, commands, now_ms, limit=32):
    """GET /api/events: the newest entries, each with its sentence, kind,
    raw arguments, age (this boot) and time (when the clock was set)."""
    w.begin_obj()
    w.key("count")
    w.integer(log.count)
    w.key("events")
    w.begin_list()
    for k in range(min(limit, len(log))):
        i = log.index(k)
        kind = log.kind[i]
        w.begin_obj()
        w.key("kind")
        w.str_value(KIND_NAMES.get(kind, str(kind)))
        w.key("text")
        w.str_value(event_text(kind, log.a[i], log.b[i], log.c[i], names, commands))
        w.key("a")
        w.integer(log.a[i])
        w.key("b")
        w.integer(log.b[i])
        w.key("c")
        w.integer(log.c[i])
        w.key("time")
        w.str_value(iso_time(log.stamp[i]))
        w.key("age_ms")
        if log.earlier[i]:
            w.null()  # from an earlier boot: no age in this boot's clock
        else:
            w.integer((now_ms - log.ticks[i]) & 0x3FFFFFFF)
        w.key("earlier_boot")
        w.boolean(log.earlier[i])
        w.end_obj()
        if w.full():
            yield
    w.end_list()
    w.end_obj()


def dict_doc(w, d):
    """A small dict some part still builds (energy details, ACC details,
    the outputs). A pause after each top-level value and each item of a
    top-level list, so that the buffer never grows (a growth is one more
    block the heap must find whole)."""
    w.begin_obj()
    for k in d:
        w.key(k)
        v = d[k]
        if isinstance(v, list):
            w.begin_list()
            for x in v:
                w.value(x)
                if w.full():
                    yield
            w.end_list()
        else:
            w.value(v)
        if w.full():
            yield
    w.end_obj()
    if w.full():
        yield


# -- Prometheus ---------------------------------------------------------------------------------

_PREFIX = "antbridge_"


def _label(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _sample(w, name, labels, raw, exp):
    w.text(name)
    if labels:
        w.text("{")
        w.text(labels)
        w.text("}")
    w.text(" ")
    w.number(raw, exp)
    w.text("\n")


def metrics(w, hub, now_ms):
    """GET /metrics: every catalog row with a metric name, in the
    Prometheus text format. The BMS's figures only while the link is live
    (stale data is never exported as current: its series pause)."""
    live = hub.live()
    for i in range(C.COUNT):
        row = C.ROWS[i]
        metric = row[C.METRIC]
        if metric is None or row[C.FLAGS] & C.F_NO_METRIC:
            continue
        part = row[C.PART]
        if part == C.P_STATUS and not live:
            continue
        kind = row[C.KIND]
        counter = row[C.MTYPE] == C.M_COUNTER
        name = _PREFIX + metric
        family = name  # a counter keeps its _total here too (the text format 0.0.4 convention)
        w.text("# HELP ")
        w.text(family)
        w.text(" " + row[C.KEY] + (" (" + row[C.UNIT] + ")" if row[C.UNIT] else "") + "\n")
        w.text("# TYPE ")
        w.text(family)
        w.text(" counter\n" if counter else " gauge\n")
        exp = row[C.EXP]
        if kind == C.K_CELLS or kind == C.K_PROBES or kind == C.K_OUTPUTS:
            label = "cell" if kind == C.K_CELLS else ("probe" if kind == C.K_PROBES else "output")
            for k in range(hub.count(i)):
                v = hub.raw(i, k)
                if v is not None:
                    _sample(w, name, label + '="' + _label(hub.label(i, k)) + '"', v, exp)
        elif kind == C.K_TEXT:
            t = hub.text(i)
            if t is not None:
                _sample(w, name, 'state="' + _label(t) + '"', 1, 0)
        elif kind == C.K_STATE:
            v = hub.raw(i)
            if v is not None:
                _sample(w, name, 'state="' + _label(hub.text(i) or str(v)) + '",code="' + str(v) + '"',
                        1 if hub.state_on(i) else 0, 0)
        elif kind == C.K_LIST:
            _sample(w, name, "", hub.count(i), 0)
        elif kind == C.K_SPLIT3:
            hi = hub.raw(i)
            if hi is not None:
                w.text(name)
                w.text(" ")
                w.split_number(hi, hub.low(i), exp)
                w.text("\n")
        elif kind == C.K_HEX:
            pass
        else:
            v = hub.raw(i)
            if v is not None:
                _sample(w, name, "", v, exp)
        if w.full():
            yield
