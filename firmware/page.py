# The status page at "/": one small self-refreshing HTML document, written
# piece by piece into a stream (no big string is ever built). When the link
# is not ok, its state and the wiring hint come first, large, and the
# figures are greyed and labelled with their age, so old data never looks
# live.
_STYLE = (
    "body{font-family:sans-serif;margin:1em;max-width:40em}"
    ".bad{background:#c62828;color:#fff;padding:.6em;font-size:1.4em}"
    ".ok{background:#2e7d32;color:#fff;padding:.4em}"
    ".old{color:#888}td{padding:0 .8em 0 0}"
)


def _fmt(v, unit):
    if v is None:
        return "-"
    return str(v) + " " + unit


def _row(out, label, value):
    out.write("<tr><td>")
    out.write(label)
    out.write("</td><td>")
    out.write(value)
    out.write("</td></tr>")


def _hours(s):
    if s is None or s < 0:
        return "-"
    return str(s // 3600) + " h " + str(s % 3600 // 60) + " min"


def _control(out, doc):
    """DO1-DO3 with the reason, ACC, energy: one compact table."""
    outs = doc.get("outputs")
    if outs is None:
        return
    out.write("<h3>Outputs</h3><table>")
    for i in range(len(outs)):
        o = outs[i]
        text = o["state"].upper() + " &ndash; " + o["reason"] + " (" + o["held_by"] + ")"
        if o["sense_alarm"]:
            text += " <b>SENSE ALARM</b>"
        _row(out, "DO" + str(i + 1) + " " + o["name"].replace("<", "&lt;"), text)
    acc = doc.get("acc")
    if acc is not None:
        _row(out, "ACC", acc["state"] + (", asserted" if acc["acc"] else "") + ("" if acc["supply"] else ", supply off"))
    e = doc["energy"]
    _row(out, "Energy in / out", str(e["charged_kwh"]) + " / " + str(e["discharged_kwh"]) + " kWh")
    _row(out, "Time to empty / full", _hours(e["time_to_empty_s"]) + " / " + _hours(e["time_to_full_s"]))
    out.write("</table>")


def render(doc, out, refresh_s=2):
    link = doc["link"]
    st = doc["status"]
    live = doc["live"]
    out.write("<!DOCTYPE html><html><head><meta charset='utf-8'><meta http-equiv='refresh' content='")
    out.write(str(refresh_s))
    out.write("'><title>antbridge</title><style>")
    out.write(_STYLE)
    out.write("</style></head><body>")
    if live:
        out.write("<div class='ok'>BMS link ok (")
        out.write(str(link["protocol"]) + ", " + str(link["baud"]) + " baud)</div>")
    else:
        age = link["age_ms"]
        out.write("<div class='bad'>BMS link ")
        out.write(link["state"].upper())
        out.write(": no data yet</div>" if age < 0 else ": data is " + str(age // 1000) + " s old</div>")
        out.write("<p>")
        out.write(link["hint"])
        out.write("</p>")
    if link["passive"] and (live or link["line"] != "foreign"):  # else the hint said it already
        out.write("<p>Another master (a display) polls the BMS: listening passively.</p>")
    out.write("<table class='old'>" if not live else "<table>")
    _row(out, "Pack", _fmt(st["pack_voltage_v"], "V"))
    _row(out, "Current (+ charging)", _fmt(st["current_a"], "A"))
    _row(out, "SOC", _fmt(st["soc_pct"], "%"))
    _row(out, "Cell min / max", _fmt(st["cell_min_v"], "V") + " / " + _fmt(st["cell_max_v"], "V"))
    _row(out, "Cell delta", _fmt(st["cell_delta_v"], "V"))
    cm = st["charge_mos"]
    dm = st["discharge_mos"]
    _row(out, "Charge MOS", cm["text"] if cm else "-")
    _row(out, "Discharge MOS", dm["text"] if dm else "-")
    temps = st["temperatures_c"]
    out.write("<tr><td>Temperatures</td><td>")
    if temps:
        for i in range(len(temps)):
            out.write(_fmt(temps[i], "&deg;C") if i == 0 else ", " + _fmt(temps[i], "&deg;C"))
    else:
        out.write("-")
    out.write("</td></tr></table>")
    _control(out, doc)
    out.write("<p><a href='/api/status'>/api/status</a> &middot; <a href='/api/outputs'>/api/outputs</a> &middot; ")
    out.write("<a href='/api/events'>/api/events</a> &middot; <a href='/api/health'>/api/health</a></p></body></html>")
