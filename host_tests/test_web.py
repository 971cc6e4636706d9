# The web face in process: the app exactly as build() wires it (fakehw.py
# as the hardware), its routes through microdot's TestClient. Every error is
# JSON with its status and a reason; /api/status has the link exactly as
# lib/link/describe.py describes it; /metrics parses with Prometheus's own
# parser and carries the same values as the JSON; the control routes go
# through the control service's gate. CPython.
import asyncio
import json

from prometheus_client.parser import text_string_to_metric_families

import catalog as C
from ant.status import TEMP_NONE
from fakehw import FakeHw
from fwproc import firmware_module
from link.describe import describe_link
from link.model import LINK_OK

from microdot.test_client import TestClient

settings_mod = firmware_module("settings")
app_mod = firmware_module("app")
control_mod = firmware_module("control")

TOKEN = "web-test-token-0123456789"
AUTH = {"Authorization": "Bearer " + TOKEN}
OUTPUTS = {"outputs": [{"name": "charger", "when": {"soc": {"below": 80, "hyst": 10}}},
                       {"name": "do2", "mode": "off"},
                       {"name": "alarm", "when": {"protection": "any"}, "inverted": True, "fail_safe": "on"}]}


def make_app(tmp_path, token=TOKEN, **extra):
    s = settings_mod.Settings()
    s.api_token = token
    s.program = settings_mod.compile_outputs(OUTPUTS)
    s.link.command_timeout_ms = 1000
    for k, v in extra.items():
        setattr(s, k, v)
    hw = FakeHw(str(tmp_path))
    return app_mod.build(s, hw), hw


def live(a, hw):
    """A fresh status in the model, as the link engine would leave it."""
    model = a.hub.model
    st = model.status
    st.cell_count = 4
    for i in range(4):
        st.cells_mv[i] = 3300 + i * 5
    st.cell_min_mv, st.cell_max_mv, st.cell_avg_mv, st.cell_delta_mv = 3300, 3315, 3307, 15
    st.probe_count = 2
    st.temps_c[0] = 21
    st.temps_c[1] = TEMP_NONE
    st.pack_cv = 1323
    st.current_da = -125
    st.power_w = -165
    st.soc_pct = 55
    st.capacity_mah = 100000
    st.remaining_mah = 55000
    st.charge_mos = 1
    st.discharge_mos = 1
    model.has_data = True
    model.link = LINK_OK
    model.fresh_ms = hw.ticks_ms()
    a.link.stats.frames_ok = 7


def call(a, method, path, body=None, headers=None):
    client = TestClient(a.web)
    return asyncio.run(client.request(method, path, headers=dict(headers or {}), body=body))  # (it adds to headers)


def test_status_document(tmp_path):
    a, hw = make_app(tmp_path)
    r = call(a, "GET", "/api/status")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    doc = r.json
    assert doc["live"] is False and doc["link"]["age_ms"] == -1
    assert all(v is None for v in doc["status"].values())  # nothing shown before the first status
    live(a, hw)
    doc = call(a, "GET", "/api/status").json
    assert doc["live"] is True
    s = doc["status"]
    assert s["pack_voltage_v"] == 13.23 and s["current_a"] == -12.5 and s["power_w"] == -165
    assert s["cell_voltages_v"] == [3.3, 3.305, 3.31, 3.315] and s["temperatures_c"] == [21, None]
    assert s["charge_mos"] == {"code": 1, "on": True, "text": "on"}
    assert s["capacity_ah"] == 100.0 and s["remaining_ah"] == 55.0
    # The link object has exactly describe_link()'s keys and values (plus age_ms).
    expected = describe_link(a.hub.model, a.link, hw.ticks_ms())
    got = dict(doc["link"])
    assert got.pop("age_ms") == 0
    assert got == json.loads(json.dumps(expected))
    assert [o["name"] for o in doc["outputs"]] == ["charger", "do2", "alarm"]
    assert doc["outputs"][0]["held_by"] == "boot" and doc["acc"]["state"] == "starting"
    assert doc["energy"]["time_to_empty_s"] is None  # null, never -1


def test_metrics_parse_and_agree_with_the_json(tmp_path):
    a, hw = make_app(tmp_path)
    r = call(a, "GET", "/metrics")
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    assert "antbridge_pack_voltage_volts" not in families  # no data: the BMS's series are absent, not stale
    assert families["antbridge_link_live"].samples[0].value == 0
    live(a, hw)
    text = call(a, "GET", "/metrics").text
    families = {f.name: f for f in text_string_to_metric_families(text)}
    doc = call(a, "GET", "/api/status").json
    assert families["antbridge_pack_voltage_volts"].samples[0].value == doc["status"]["pack_voltage_v"]
    cells = {s.labels["cell"]: s.value for s in families["antbridge_cell_voltage_volts"].samples}
    assert cells == {"1": 3.3, "2": 3.305, "3": 3.31, "4": 3.315}
    temps = {s.labels["probe"]: s.value for s in families["antbridge_temperature_celsius"].samples}
    assert temps == {"1": 21}  # the absent probe has no sample
    assert families["antbridge_link_frames"].type == "counter"
    assert families["antbridge_link_frames"].samples[0].value == 7
    assert families["antbridge_link_state"].samples[0].labels == {"state": "ok"}
    outs = {s.labels["output"]: s.value for s in families["antbridge_output_on"].samples}
    assert set(outs) == {"charger", "do2", "alarm"}
    assert families["antbridge_charge_mos"].samples[0].labels["state"] == "on"
    for row in C.ROWS:  # every metric the catalog names is there while live (or has no value yet)
        m = row[C.METRIC]
        if m is not None and not row[C.FLAGS] & C.F_NO_METRIC:
            family = "antbridge_" + (m[:-6] if m.endswith("_total") else m)
            assert family in families or row[C.KIND] in (C.K_OPT, C.K_SPLIT3, C.K_TEXT), family


def test_errors_are_json_with_a_reason(tmp_path):
    a, hw = make_app(tmp_path)
    for method, path, body, headers, status, words in (
            ("GET", "/nope", None, {}, 404, "not found"),
            ("POST", "/api/status", None, {}, 405, "method not allowed"),
            ("POST", "/api/command", {"command": "charge-off"}, {}, 401, "token"),
            ("POST", "/api/command", {"command": "charge-off"}, {"Authorization": "Bearer wrong-token-01234567"},
             401, "token"),
            ("POST", "/api/command", b'{"command": ', AUTH, 400, "malformed JSON"),
            ("POST", "/api/command", {"command": "explode"}, AUTH, 400, "unknown command"),
            ("POST", "/api/command", b"x" * 300, AUTH, 413, "over 256 bytes"),
            ("POST", "/api/outputs", {"output": 9, "action": "on"}, AUTH, 400, "unknown output"),
            ("GET", "/api/events?limit=x", None, {}, 400, "limit"),
            ("GET", "/api/status?since=0&wait_ms=soon", None, {}, 400, "wait_ms")):
        r = call(a, method, path, body, headers)
        assert r.status_code == status, (path, r.status_code, r.text)
        assert r.headers["Content-Type"].startswith("application/json"), (path, r.headers)
        assert r.json["ok"] is False and words in r.json["reason"], (path, r.json)
    r = call(a, "POST", "/api/command", {"command": "charge-off"}, {"Authorization": "bearer " + TOKEN})
    assert r.status_code == 200  # "Bearer" in any case
    off, _ = make_app(tmp_path / "off", token="")
    r = call(off, "POST", "/api/command", {"command": "charge-off"}, AUTH)
    assert r.status_code == 403 and "control is disabled" in r.json["reason"]


def test_factory_reset_needs_the_opt_in_and_the_confirm_field(tmp_path):
    a, hw = make_app(tmp_path)
    r = call(a, "POST", "/api/command", {"command": "factory-reset", "confirm": "factory-reset"}, AUTH)
    assert r.status_code == 403 and "control.allow_commands" in r.json["reason"]
    allowed, _ = make_app(tmp_path / "b", allow_commands=("factory-reset",))
    r = call(allowed, "POST", "/api/command", {"command": "factory-reset"}, AUTH)
    assert r.status_code == 403 and '"confirm": "factory-reset"' in r.json["reason"]
    r = call(allowed, "POST", "/api/command", {"command": "factory-reset", "confirm": "factory-reset"}, AUTH)
    # Past the gate: queued on the link (no link task runs in this test, so
    # the reply reports no result; the simulator test sees it executed).
    assert r.status_code == 200 and r.json["command"] == "factory-reset" and r.json["ok"] is False
    assert "no result within" in r.json["reason"] and allowed.link.busy()
    events = call(allowed, "GET", "/api/events").json["events"]
    texts = [e["text"] for e in events if e["kind"] == "command"]
    assert texts == ["BMS command factory-reset from http: refused"], texts


def test_settings_refuse_an_opt_in_for_a_command_that_needs_none():
    for allow, ok in ((["shutdown", "factory-reset"], True), (["charge-off"], False), (["explode"], False)):
        try:
            s = settings_mod.parse({"control": {"allow_commands": allow}})
            assert ok and s.allow_commands == tuple(allow)
        except settings_mod.schema.ConfigError as e:
            assert not ok and e.path == "control.allow_commands[0]", e


def test_events_say_what_happened(tmp_path):
    a, hw = make_app(tmp_path)
    r = call(a, "POST", "/api/outputs", {"output": "charger", "action": "off", "expiry_s": 60}, AUTH)
    assert r.status_code == 200 and r.json["output"]["override"] == "off"
    events = call(a, "GET", "/api/events").json["events"]
    control = [e for e in events if e["kind"] == "control"]
    assert control[0]["text"] == "DO1 charger override off (from http)"
    assert all(e["text"] and e["time"] and e["time"].endswith("Z") for e in events)  # every entry: text and time
    boot = [e for e in events if e["kind"] == "boot"][0]
    assert boot["text"] == "bridge started (power-on)"


def test_health_and_plain_page(tmp_path):
    a, hw = make_app(tmp_path)
    h = call(a, "GET", "/api/health").json
    assert h["safe_mode"] is False and h["settings_error"] is None and h["task_crashes"] == 0
    assert h["http"]["accepted"] == 0 and h["reset_cause"] == 1
    page = call(a, "GET", "/lite")  # the plain page (the dashboard at "/": test_dashboard.py)
    assert page.status_code == 200 and "<meta name='viewport'" in page.text and "BMS link LOST" in page.text


def test_outputs_and_acc_are_told_in_plain_words(tmp_path):
    a, hw = make_app(tmp_path)
    live(a, hw)
    for _ in range(5):  # past the boot hold (a fresh status, then 3 s)
        a.outputs.step(hw.ticks_ms())
        hw.advance(1000)
        a.hub.model.fresh_ms = hw.ticks_ms()
    doc = call(a, "GET", "/api/status").json
    alarm = doc["outputs"][2]
    # The alarm output is off (no protection) and its normally-energised
    # relay is energised: the state and the relay are named separately.
    assert alarm["state"] == "off" and alarm["inverted"] is True and alarm["relay"] == "energised", alarm
    assert alarm["held_by"] == "rule" and alarm["reason"] == "rule off"
    page = call(a, "GET", "/lite").text
    assert "relay energised (normally energised output)" in page
    assert "(fail-safe)" not in page  # the reason is not repeated as its holder
    assert doc["acc"]["text"] and doc["acc"]["state"] in ("starting", "idle")
    # While the bridge wakes the BMS it says so, instead of asking the user to.
    a.hub.acc.state = 3  # waiting after a pulse
    a.hub.model.link = 1  # stale
    doc = call(a, "GET", "/api/status").json
    assert doc["link"]["hint"] == "The BMS went silent; the bridge is waking it through ACC now."
    assert doc["acc"]["text"] == "ACC pulse sent; waiting for the BMS to answer"
