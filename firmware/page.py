# The plain status page at "/lite", for a browser without JavaScript or a
# client that takes no gzip (the dashboard at "/" sends those here): one
# small self-refreshing HTML document, streamed
# piece by piece (views.py's writer). Problems come first: active BMS
# protections, a link that is not ok (with the wiring hint and the data's
# age; old figures are greyed and labelled, never shown as live), a rejected
# settings file, safe mode. Then the pack, the outputs in plain words (what
# holds each, what its relay really does), ACC and energy.
import catalog as C
from ant import alarms
from jsonout import JsonOut
from link.model import LINK_NAMES

import views

_STYLE = (
    "body{font-family:sans-serif;margin:1em;max-width:40em}"
    ".bad{background:#c62828;color:#fff;padding:.6em;font-size:1.3em;margin:.3em 0}"
    ".warn{background:#ef6c00;color:#fff;padding:.5em;margin:.3em 0}"
    ".ok{background:#2e7d32;color:#fff;padding:.4em}"
    ".old{color:#888}td{padding:0 .8em 0 0}"
)


def _esc(s):
    return str(s).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _row(w, label, value):
    w.text("<tr><td>")
    w.text(label)
    w.text("</td><td>")
    w.text(value)
    w.text("</td></tr>")


def _num(w, hub, row, unit):
    raw = hub.raw(row)
    if raw is None:
        return "-"
    w2 = JsonOut(24)
    w2.number(raw, C.ROWS[row][C.EXP])
    return bytes(w2.take()).decode() + " " + unit


def _hours(s):
    if s is None or s < 0:
        return "-"
    return str(s // 3600) + " h " + str(s % 3600 // 60) + " min"


def render(w, hub, now, health):
    model = hub.model
    live = model.live()
    w.text("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
           "<meta name='viewport' content='width=device-width,initial-scale=1'>"
           "<meta http-equiv='refresh' content='2'><title>antbridge</title><style>")
    w.text(_STYLE)
    w.text("</style></head><body>")
    if health.get("safe_mode"):
        w.text("<div class='bad'>SAFE MODE: " + _esc(health.get("safe_mode_reason") or "") + "</div>")
    if health.get("settings_error"):
        w.text("<div class='bad'>Settings rejected: " + _esc(health["settings_error"]) + "</div>")
    watch = hub.alarms
    if watch is not None and model.has_data:
        for code, since_ms, _s in watch.entries():
            w.text("<div class='bad'>BMS: " + _esc(alarms.name(code)) + " (for "
                   + str(((now - since_ms) & 0x3FFFFFFF) // 1000) + " s)</div>")
    if not live:
        age = model.age_ms(now)
        w.text("<div class='bad'>BMS link " + LINK_NAMES[model.link].upper())
        w.text(": no data yet</div>" if age < 0 else ": data is " + str(age // 1000) + " s old</div>")
        w.text("<p>" + _esc(views.link_hint(hub)) + "</p>")
    else:
        w.text("<div class='ok'>BMS link ok</div>")
    if w.full():
        yield
    w.text("<table class='old'>" if not live else "<table>")
    _row(w, "Pack", _num(w, hub, C.R_PACK_V, "V"))
    _row(w, "Current (+ = charging)", _num(w, hub, C.R_CURRENT, "A"))
    _row(w, "Power (+ = charging)", _num(w, hub, C.R_POWER, "W"))
    _row(w, "SOC", _num(w, hub, C.R_SOC, "%"))
    _row(w, "Cell min / max", _num(w, hub, C.R_CELL_MIN, "V") + " / " + _num(w, hub, C.R_CELL_MAX, "V"))
    for key, label in (("charge_mos", "Charge MOS"), ("discharge_mos", "Discharge MOS"), ("balancer", "Balancer")):
        i = C.find(C.P_STATUS, key)
        t = hub.text(i)
        _row(w, label, _esc(t) if t is not None else "-")
    w.text("</table>")
    if w.full():
        yield
    relays = hub.relays
    if relays is not None:
        w.text("<h3>Outputs</h3><table>")
        for i in range(relays.count):
            d = relays.describe(i, now)
            text = d["state"].upper() + " &ndash; " + _esc(d["reason"])
            if d.get("relay"):
                text += "; relay " + d["relay"] + (" (normally energised output)" if d.get("inverted") else "")
            if d["sense_alarm"]:
                text += " <b>SENSE ALARM</b>"
            _row(w, "DO" + str(i + 1) + " " + _esc(d["name"]), text)
        w.text("</table>")
    if hub.acc is not None:
        w.text("<p>ACC: " + _esc(hub.acc_text() or "") + "</p>")
    e = hub.energy
    if e is not None:
        tte = e.time_to_empty_s
        ttf = e.time_to_full_s
        w.text("<p>Time to empty / full: " + _hours(tte) + " / " + _hours(ttf) + "</p>")
    w.text("<p><a href='/'>dashboard</a> &middot; <a href='/api/status'>/api/status</a> &middot; <a href='/api/events'>/api/events</a> &middot; "
           "<a href='/api/health'>/api/health</a> &middot; <a href='/metrics'>/metrics</a></p></body></html>")
