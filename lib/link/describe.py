# JSON-ready views of the link and of the model for the faces (HTTP
# /api/status, MQTT, the PC tool). A face: it allocates.
#
# A status is never presented as live unless the link is "ok": every view
# carries "live" and the data age, and a stale, lost, asleep or unpowered
# link says so together with the wiring hint.
from ant import alarms
from ant.describe import empty_status, status_dict
from ant.status import PROTOCOL_NAMES
from link.engine import ERROR_NAMES, ERR_NONE
from link.model import LINE_HINTS, LINE_NAMES, LINK_HINTS, LINK_NAMES
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
        "errors": stats.errors,
    }


def last_error_dict(stats, now_ms):
    if stats.last_error == ERR_NONE:
        return None
    return {"error": ERROR_NAMES[stats.last_error], "age_ms": ticks_diff(now_ms, stats.last_error_ms)}


def hint(model):
    """The one sentence a user needs now."""
    text = LINK_HINTS[model.link]
    return text if text is not None else LINE_HINTS[model.line]


def describe_link(model, engine, now_ms):
    """The link as a dict: state, diagnosis, age, settings, statistics and
    the alarms of the newest status."""
    age = model.age_ms(now_ms)
    stats = engine.stats
    return {
        "state": LINK_NAMES[model.link],
        "live": model.live(),
        "line": LINE_NAMES[model.line],
        "hint": hint(model),
        "data_age_ms": None if age < 0 else age,
        "state_age_ms": ticks_diff(now_ms, model.changed_ms),
        "protocol": PROTOCOL_NAMES[model.protocol] if model.protocol else None,
        "detected": engine.detector.locked,
        "baud": engine.baud,
        "passive": model.passive,
        "powered": engine.powered,
        "poll_ms": engine.poll_ms(),
        "stats": stats_dict(stats),
        "last_error": last_error_dict(stats, now_ms),
        "alarms": alarms.active_alarms(model.status) if model.has_data else [],
    }


def snapshot(model, engine, now_ms):
    """The status (every key of ant.describe's schema, None when there has
    never been one) plus "live", "data_age_ms" and the "link" dict."""
    d = {}
    d.update(status_dict(model.status) if model.has_data else empty_status())
    age = model.age_ms(now_ms)
    d["live"] = model.live()
    d["data_age_ms"] = None if age < 0 else age
    d["link"] = describe_link(model, engine, now_ms)
    return d
