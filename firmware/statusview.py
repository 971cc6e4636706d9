# The JSON views of the firmware state that every face serves: the link
# (state, wiring diagnosis with its hint, data age, protocol, statistics),
# the decoded status, the event log and the firmware's health. A status is
# only ever called live when the link says so; otherwise `live` is false and
# the last values stay visible as what they are: old. Faces allocate.
from ant import describe
from eventlog import EV_ALARM, EV_LINK, EV_OUTPUT, KIND_NAMES
from link.describe import describe_link
from link.model import LINK_NAMES
from acc import STATE_NAMES as ACC_STATES
from rules.reasons import name as reason_name

import hw
import pooledbody


def status_doc(ctx, now_ms):
    """GET /api/status: the link (lib/link/describe.py), whether the status
    is live, the status itself (every key, None when never seen), and
    summaries of the outputs, ACC and the energy counters."""
    engine = ctx.engine
    model = engine.model
    link = describe_link(model, engine, now_ms)
    link["age_ms"] = model.age_ms(now_ms)  # -1: never a status since boot
    doc = {
        "link": link,
        "live": model.live(),
        "generation": model.generation,  # for ?since= long polls
        "status": describe.status_dict(model.status) if model.has_data else describe.empty_status(),
    }
    outs = ctx.outputs
    if outs is not None:
        doc["outputs"] = outs.summary(now_ms)
        e = outs.energy
        doc["energy"] = {
            "charged_kwh": round(e.charged_kwh(), 4),
            "discharged_kwh": round(e.discharged_kwh(), 4),
            "time_to_empty_s": e.time_to_empty_s,
            "time_to_full_s": e.time_to_full_s,
        }
    if ctx.acc is not None:
        a = ctx.acc.acc
        doc["acc"] = {"state": ACC_STATES[a.state], "acc": a.acc_level, "supply": a.supply_level,
                      "wakes_ok": a.wakes_ok, "wake_failures": a.wake_failures}
    return doc


def _event(entry, now_ms):
    kind, a, b, c, ticks, stamp = entry
    d = {"kind": KIND_NAMES.get(kind, str(kind)), "a": a, "b": b, "c": c, "age_ms": (now_ms - ticks) & 0x3FFFFFFF}
    if stamp:
        d["time"] = stamp
    if kind == EV_LINK:
        d["text"] = "link " + LINK_NAMES[b] + " -> " + LINK_NAMES[a]
    elif kind == EV_OUTPUT:
        d["text"] = "DO" + str(a + 1) + (" on (" if b else " off (") + ("boot" if c == 0 else reason_name(c)) + ")"
    elif kind == EV_ALARM and a == 1:
        d["text"] = "DO" + str(c + 1) + " sense disagrees with the output" if b else "DO" + str(c + 1) + " sense agrees again"
    return d


def events_doc(log, now_ms, limit=32):
    return {"count": log.count, "events": [_event(e, now_ms) for e in log.newest(limit)]}


def health_doc(supervisor, settings, store=None):
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
        "state_error": store.error if store is not None else None,
        "state_saves": store.saves if store is not None else 0,
        "state_save_errors": store.save_errors if store is not None else 0,
    }
