# JSON-ready views of the link and of the model for the faces (HTTP
# /api/status, MQTT, the PC tool). A face: it allocates.
#
# A status is never presented as live unless the link is "ok": every view
# carries "live" and the data age, and a stale, lost, asleep or unpowered
# link says so together with the wiring hint.
from ant import alarms
from ant.status import PROTOCOL_NAMES
from link.engine import ERROR_NAMES, ERR_NONE
from link.model import (
    HINT_STOPPED,
    LINE_HINTS,
    LINE_INTERMITTENT,
    LINE_NAMES,
    LINE_SILENT,
    LINE_SLOW,
    LINK_HINTS,
    LINK_NAMES,
)
from ticks import ticks_diff


def stats_dict(stats):
    return {
        "frames_ok": stats.frames_ok,
        "polls": stats.polls,
        "timeouts": stats.timeouts,
        "checksum_errors": stats.checksum_errors,
        "resyncs": stats.resyncs,
        "bytes_dropped": stats.bytes_dropped,
        "foreign_frames": stats.foreign_frames,
        "rx_bytes": stats.rx_bytes,
        "tx_frames": stats.tx_frames,
        "commands_ok": stats.commands_ok,
        "commands_failed": stats.commands_failed,
        "baud_switches": stats.baud_switches,
        "late_replies": stats.late_replies,
        "errors": stats.errors,
    }


def last_error_dict(stats, now_ms):
    if stats.last_error == ERR_NONE:
        return None
    return {"error": ERROR_NAMES[stats.last_error], "age_ms": ticks_diff(now_ms, stats.last_error_ms)}


def hint(model, engine=None):
    """What a user needs to know now, from the link state and the line
    diagnosis, with the engine's figures where it names a rate or a time."""
    text = LINK_HINTS[model.link]
    if text is not None:
        return text
    line = model.line
    if line == LINE_SILENT and model.has_data:
        return HINT_STOPPED
    if engine is not None:
        if line == LINE_INTERMITTENT:
            n, _late, corrupt, none = engine.window()
            return LINE_HINTS[line] % (engine.loss_pct(), n, none, corrupt)
        if line == LINE_SLOW:
            return LINE_HINTS[line] % (engine.reply_ms(), engine.reply_timeout_ms())
    return LINE_HINTS[line]


def describe_link(model, engine, now_ms):
    """The link as a dict: state, diagnosis, age, settings, statistics and
    the alarms of the newest status."""
    age = model.age_ms(now_ms)
    stats = engine.stats
    loss = engine.loss_pct()
    reply = engine.reply_ms()
    return {
        "state": LINK_NAMES[model.link],
        "live": model.live(),
        "line": LINE_NAMES[model.line],
        "hint": hint(model, engine),
        "data_age_ms": None if age < 0 else age,
        "state_age_ms": ticks_diff(now_ms, model.changed_ms),
        "protocol": PROTOCOL_NAMES[model.protocol] if model.protocol else None,
        "detected": engine.detector.locked,
        "baud": engine.baud,
        "passive": model.passive,
        "powered": engine.powered,
        "poll_ms": engine.poll_ms(),
        # The line's record: the share of the last `window` polls without a
        # valid reply (None before the first), the BMS's measured reply time
        # (None before the first) and the reply timeout it earned.
        "loss_pct": None if loss < 0 else loss,
        "window": engine.window()[0],
        "reply_ms": reply if reply else None,
        "reply_timeout_ms": engine.reply_timeout_ms(),
        "stats": stats_dict(stats),
        "last_error": last_error_dict(stats, now_ms),
        "alarms": alarms.active_alarms(model.status) if model.has_data else [],
    }


def snapshot(model, engine, now_ms):
    """The status (every key of ant.describe's schema, None when there has
    never been one) plus "live", "data_age_ms" and the "link" dict. (The
    PC tool's view: ant.describe stays out of the firmware's imports.)"""
    from ant.describe import empty_status, status_dict

    d = {}
    d.update(status_dict(model.status) if model.has_data else empty_status())
    age = model.age_ms(now_ms)
    d["live"] = model.live()
    d["data_age_ms"] = None if age < 0 else age
    d["link"] = describe_link(model, engine, now_ms)
    return d
