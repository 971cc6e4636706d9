# The JSON views of the firmware state that every face serves: the link
# (state, wiring diagnosis with its hint, data age, protocol, statistics),
# the decoded status, the event log and the firmware's health. A status is
# only ever called live when the link says so; otherwise `live` is false and
# the last values stay visible as what they are: old. Faces allocate.
from ant import describe
from eventlog import EV_LINK, KIND_NAMES
from link.describe import describe_link
from link.model import LINK_NAMES

import hw
import pooledbody


def status_doc(engine, now_ms):
    """GET /api/status: the link (lib/link/describe.py), whether the status
    is live, and the status itself (every key, None when never seen)."""
    model = engine.model
    link = describe_link(model, engine, now_ms)
    link["age_ms"] = model.age_ms(now_ms)  # -1: never a status since boot
    return {
        "link": link,
        "live": model.live(),
        "generation": model.generation,  # for ?since= long polls
        "status": describe.status_dict(model.status) if model.has_data else describe.empty_status(),
    }


def _event(entry, now_ms):
    kind, a, b, c, ticks, stamp = entry
    d = {"kind": KIND_NAMES.get(kind, str(kind)), "a": a, "b": b, "c": c, "age_ms": (now_ms - ticks) & 0x3FFFFFFF}
    if stamp:
        d["time"] = stamp
    if kind == EV_LINK:
        d["text"] = "link " + LINK_NAMES[b] + " -> " + LINK_NAMES[a]
    return d


def events_doc(log, now_ms, limit=32):
    return {"count": log.count, "events": [_event(e, now_ms) for e in log.newest(limit)]}


def health_doc(supervisor, settings):
    free, allocated = supervisor.heap()
    return {
        "uptime_ms": (hw.ticks_ms() - supervisor.started_ms) & 0x3FFFFFFF,
        "heap_free": free,
        "heap_allocated": allocated,
        "heap_min_free": supervisor.heap_min_free,
        "task_crashes": supervisor.crashes,
        "task_restarts": supervisor.restarts,
        "last_crash": supervisor.last_crash,
        "settings_error": settings.error,
        "pooled_bodies": pooledbody.stats,
    }
