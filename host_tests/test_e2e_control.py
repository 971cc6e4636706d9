# End to end: local control in the real firmware (MicroPython unix port,
# tools/hostrt hardware layer) against the real BMS simulator: the DO1-DO3
# rules driven by live BMS data, ACC waking a sleeping BMS, fail-safe on a
# dead link, counters and overrides across a reboot, and the control API's
# refusals. Observed through the firmware's HTTP API, its event log (device
# timestamps) and the simulator's control port. CPython only.
import json
import os
import time

import fwproc
from fwproc import TOKEN, Firmware, no_crash, alloc_probe, firmware_module, wait_until
from simproc import SimProcess

LINK = {"poll_ms": 200, "poll_floor_ms": 100, "stale_ms": 1000, "lost_ms": 2500, "listen_first_ms": 100}
# Short ACC timings so a wake is seen within seconds; keep-awake off, so the
# simulated BMS may fall asleep (the default holds ACC and it never does).
ACC = {"wake": {"boot_grace_ms": 1000, "pulse_ms": 400, "wait_ms": 2500, "backoff_ms": 500},
       "keep_awake": {"mode": "off"}}
# The charger preset without its 60 s minimum off time (a test cannot wait for it).
CHARGER = {"name": "charger", "when": {"all": [{"soc": {"below": 80, "hyst": 10}},
                                               {"cell_max_v": {"on": 3.40, "off": 3.55}}]}}
FAILSAFE_ON = {"name": "fan", "when": {"soc": {"above": 101}}, "fail_safe": "on"}
ALARM = {"name": "alarm", "when": {"protection": "any"}, "inverted": True, "fail_safe": "on"}
OUTPUTS = {"outputs": [CHARGER, FAILSAFE_ON, ALARM]}


def settings(**extra):
    d = {"outputs": OUTPUTS, "acc": ACC}
    d.update(extra)
    return d



def bridge(tmp_path, sim_args=(), **fw_kw):
    fw_kw.setdefault("settings", settings())
    return fwproc.bridge(tmp_path, sim_args, link=LINK, **fw_kw)


def outputs(fw):
    return fw.get_json("/api/outputs")["outputs"]


def wait_output(fw, i, timeout_s=10, **fields):
    def check():
        o = outputs(fw)[i]
        return o if all(o[k] == v for k, v in fields.items()) else None

    return wait_until(check, timeout_s, 0.1, "output %d %r" % (i, fields))


def events(fw, kind):
    return [e for e in fw.get_json("/api/events")["events"] if e["kind"] == kind]


# -- ACC wake -------------------------------------------------------------------------


def test_acc_wakes_a_sleeping_bms(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        assert sim.state()["acc"] == 0
        for how in ("sleep", "deepsleep"):  # deep sleep: only ACC wakes it
            wakes = fw.status()["acc"]["wakes_ok"]
            assert sim.control(how)["ok"]
            wait_until(lambda: fw.status()["link"]["state"] != "ok", 10, 0.1, "link leaves ok after " + how)
            doc = wait_until(lambda: (lambda d: d if d["acc"]["wakes_ok"] > wakes else None)(fw.status()), 15, 0.1,
                             "an ACC wake after " + how)
            assert doc["acc"]["wakes_ok"] == wakes + 1, doc["acc"]
            fw.wait_link("ok")
            state = sim.state()
            assert state["awake"] is True and state["sleep"] == "awake"
            assert state["acc"] == 0  # the pulse ended: ACC released again
        pulses = [e for e in events(fw, "acc") if e["c"] == 1]  # c = ACC level
        assert len(pulses) >= 2
        status, page = fw.request("GET", "/lite")
        assert "ACC: nothing to do: the BMS answers" in page


def test_acc_wakes_after_idle_sleep(tmp_path):
    with bridge(tmp_path, ["--idle-sleep-s", "2"]) as (sim, fw):
        fw.wait_link("ok")
        # The simulated BMS dozes off every 2 idle seconds; the bridge keeps
        # waking it: more than one successful wake, and the link comes back.
        wait_until(lambda: fw.status()["acc"]["wakes_ok"] >= 2, 30, 0.2, "two ACC wakes")
        fw.wait_link("ok", timeout_s=15)


def test_default_settings_keep_the_bms_awake_and_raise_no_false_alarm(tmp_path):
    # make run's default configuration (charger and alarm presets, default
    # ACC) against a BMS that dozes off after 3 idle seconds with ACC low:
    # the bridge holds ACC, so it never sleeps; no output ever switches.
    demo = {"outputs": fwproc.run.demo_outputs()}
    with fwproc.bridge(tmp_path, ["--idle-sleep-s", "3"], link={"listen_first_ms": 100}, settings=demo) as (sim, fw):
        fw.wait_link("ok")
        wait_until(lambda: all(o["held_by"] != "boot" for o in outputs(fw)), 15, 0.2, "the boot hold ended")
        count = fw.get_json("/api/events")["count"]
        end = time.monotonic() + 40
        while time.monotonic() < end:
            assert fw.status()["live"]
            time.sleep(0.5)
        state = sim.state()
        assert state["sleeps"] == 0 and state["acc"] == 1  # ACC held: it never fell asleep
        new = fw.get_json("/api/events")["events"][: fw.get_json("/api/events")["count"] - count]
        assert [e for e in new if e["kind"] in ("output", "link", "acc")] == [], new
        assert [o["state"] for o in outputs(fw)] == ["on", "off", "off"]  # charger on (SOC 70 %), alarm quiet


def test_a_routine_sleep_is_woken_before_the_link_is_lost_and_raises_no_alarm(tmp_path):
    # Keep-awake off: the BMS falls asleep when idle, as real ones do. The
    # bridge pulses ACC at the first silent stale poll, long before the link
    # counts as lost: the alarm relay (the preset: stale holds, lost alarms)
    # never drops.
    alarm = fwproc.run.demo_outputs()["outputs"][2]
    cfg = {"outputs": {"outputs": [CHARGER, FAILSAFE_ON, alarm]},
           "acc": {"keep_awake": {"mode": "off"}, "wake": {"pulse_ms": 400}}}
    with fwproc.bridge(tmp_path, ["--idle-sleep-s", "3"], link={"listen_first_ms": 100}, settings=cfg) as (sim, fw):
        fw.wait_link("ok")
        wait_until(lambda: outputs(fw)[2]["held_by"] != "boot", 15, 0.2, "the boot hold ended")
        count = fw.get_json("/api/events")["count"]
        wait_until(lambda: sim.state()["wakes"] >= 3, 45, 0.5, "three sleeps, each woken by ACC")
        events = fw.get_json("/api/events")["events"][: fw.get_json("/api/events")["count"] - count]
        links = [e["text"] for e in events if e["kind"] == "link"]
        assert links and not [t for t in links if "lost" in t or "asleep" in t], links  # only ever stale
        assert not [e for e in events if e["kind"] == "output" and e["a"] == 2], events  # the alarm relay held
        assert outputs(fw)[2]["relay"] == "energised"


def test_a_requested_shutdown_is_honoured(tmp_path):
    with bridge(tmp_path, settings=settings(control={"allow_commands": ["shutdown"]})) as (sim, fw):
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "shutdown", "confirm": "shutdown"}, TOKEN)
        assert status == 200 and reply["ok"] is True, reply
        assert "will not wake it until you ask" in reply["note"]
        wait_until(lambda: sim.state()["sleep"] == "deep", 5, 0.1, "the BMS shut down")
        time.sleep(10)  # far past every wake timing of ACC above
        state = sim.state()
        assert state["sleep"] == "deep" and state["wakes"] == 0, state  # no ACC wake undid it
        doc = fw.status()
        assert doc["acc"]["state"] == "shut down" and "shut down on request" in doc["link"]["hint"], doc
        status, reply = fw.post_json("/api/acc/wake", {}, TOKEN)
        assert status == 200
        fw.wait_link("ok", timeout_s=15)
        assert sim.state()["sleep"] == "awake"


# -- rules on live data ---------------------------------------------------------------


def test_cell_rise_cuts_charger_with_hysteresis(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        o = wait_output(fw, 0, state="on", reason="rule on")  # SOC 70 % < 80 %, cells low
        assert o["pin_asserted"] == 1 and o["sense"] == 1 and o["held_by"] == "rule"
        sim.control("cell 3 3600")  # above the 3.55 V cut-off
        o = wait_output(fw, 0, state="off", reason="rule off")
        assert o["pin_asserted"] == 0 and "cell_max_v" in o["rule_text"]
        sim.control("cell 3 3450")  # inside the band: stays off
        wait_until(lambda: fw.status()["status"]["cell_max_v"] == 3.45, 10, 0.1, "3.45 V seen")
        gen = fw.status()["generation"]
        wait_until(lambda: fw.status()["generation"] >= gen + 5, 10, 0.1, "five more frames")
        o = outputs(fw)[0]
        assert o["state"] == "off" and o["pin_asserted"] == 0, o
        sim.control("cell 3 3380")  # at/below 3.40 V: back on
        o = wait_output(fw, 0, state="on", reason="rule on")
        assert o["pin_asserted"] == 1
        switches = [e for e in events(fw, "output") if e["a"] == 0]
        assert [e["b"] for e in switches[:3]] == [1, 0, 1]  # newest first: on, off, on
        doc = fw.status()
        assert doc["outputs"][0]["state"] == "on"
        status, page = fw.request("GET", "/lite")
        assert "DO1 charger" in page and "rule on" in page


def test_dead_link_puts_every_output_in_its_fail_safe_state(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        wait_output(fw, 0, state="on")
        wait_output(fw, 1, state="off", reason="rule off")
        o = wait_output(fw, 2, state="off", reason="rule off")
        assert o["pin_asserted"] == 1  # the alarm relay is energised while all is well
        sim.control("fault silent 30")
        wait_until(lambda: all(o["held_by"] == "fail-safe" for o in outputs(fw)), 10, 0.1, "all fail-safe")
        outs = outputs(fw)
        assert [o["state"] for o in outs] == ["off", "on", "on"], outs
        assert [o["pin_asserted"] for o in outs] == [0, 1, 0]  # the alarm relay drops
        # Within 3 s of the link going stale, by the firmware's own clock.
        evs = fw.get_json("/api/events")["events"]
        stale = [e for e in evs if e["kind"] == "link" and e.get("text", "").endswith("-> stale")][0]
        for i in range(3):
            switch = [e for e in evs if e["kind"] == "output" and e["a"] == i and "fail-safe" in e["text"]][0]
            assert stale["age_ms"] - switch["age_ms"] <= 3000, (stale, switch)


def test_no_bms_at_boot_ends_the_hold_in_the_fail_safe_states(tmp_path):
    # The BMS never answers: the boot hold must not last for ever, or an
    # alarm relay would never report the dead link. Once the link counts as
    # lost (plus the settle time) the fail-safe states apply.
    with bridge(tmp_path, ["--faults", "silent=120"]) as (sim, fw):
        o = outputs(fw)
        assert [x["held_by"] for x in o] == ["boot"] * 3, o
        wait_until(lambda: all(x["held_by"] == "fail-safe" for x in outputs(fw)), 15, 0.2, "hold ended")
        outs = outputs(fw)
        assert [x["state"] for x in outs] == ["off", "on", "on"], outs
        assert outs[2]["pin_asserted"] == 0  # the normally-energised alarm relay is dropped
        assert fw.status()["link"]["state"] != "ok"


# -- reboot ---------------------------------------------------------------------------


def _saved_override(fw):
    try:
        with open(os.path.join(fw.data, "state.json")) as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return None
    return saved if saved.get("outputs", {}).get("overrides") else None


def test_reboot_keeps_energy_counters_and_persistent_override(tmp_path):
    sim = SimProcess("--current", "50").start()
    fw = None
    try:
        fw = Firmware(tmp_path, sim, link=LINK, settings=settings())
        fw.wait_link("ok")
        wait_until(lambda: fw.get_json("/api/energy")["charged_kwh"] >= 0.002, 20, 0.2, "energy counted")
        status, reply = fw.post_json("/api/outputs", {"output": "fan", "action": "on", "persist": True}, TOKEN)
        assert status == 200 and reply["output"]["state"] == "on", reply
        assert reply["output"]["override"] == "on"
        # Saved within the coalescing delay (2 s), not at the next interval.
        saved = wait_until(lambda: _saved_override(fw), 5, 0.2, "the override in state.json")
        assert saved["outputs"]["overrides"] == [[1, 1, -1]]
        assert fw.stop() == 0
        with open(os.path.join(fw.data, "state.json")) as f:
            saved = json.load(f)
        charged_wh = saved["energy"]["charged_wh"] + saved["energy"]["charged_mj"] / 3.6e6
        assert charged_wh > 1  # ~2 Wh counted (describe() rounds to 0.1 Wh)
        fw = Firmware(tmp_path, sim, link=LINK, settings=settings())  # same data dir
        energy = fw.get_json("/api/energy")
        assert energy["charged_kwh"] >= round(charged_wh / 1000, 4) - 0.0001, (energy, charged_wh)
        o = outputs(fw)[1]
        assert o["override"] == "on", o
        if o["held_by"] == "boot":  # held at its boot state until the first fresh status + 3 s
            assert o["state"] == "off" and o["pin_asserted"] == 0, o
        wait_output(fw, 1, override="on", state="on", held_by="override", pin_asserted=1)
        # Released, the output goes back to its rule (and the release persists).
        status, reply = fw.post_json("/api/outputs", {"output": 1, "action": "release"}, TOKEN)
        assert status == 200
        wait_output(fw, 1, override=None)
        no_crash(fw)
    finally:
        if fw is not None:
            fw.stop()
        sim.stop()


# -- the control API ------------------------------------------------------------------


def test_control_api_overrides_modes_and_flags(tmp_path):
    flagged = {"outputs": [CHARGER, {"name": "heater", "when": {"flag": 2}}, ALARM]}
    with bridge(tmp_path, settings=settings(outputs=flagged)) as (sim, fw):
        fw.wait_link("ok")
        wait_output(fw, 1, state="off", reason="rule off")
        status, reply = fw.post_json("/api/flags", {"flag": 2, "on": True}, TOKEN)
        assert status == 200 and reply["flags"][2] == 1
        wait_output(fw, 1, state="on", reason="rule on")
        status, reply = fw.post_json("/api/outputs", {"output": 0, "action": "off", "expiry_s": 60}, TOKEN)
        assert reply["output"]["state"] == "off" and reply["output"]["held_by"] == "override"
        assert 0 < reply["output"]["override_expires_s"] <= 60
        status, reply = fw.post_json("/api/outputs", {"output": "charger", "action": "mode", "mode": "off"}, TOKEN)
        assert status == 200 and reply["output"]["mode"] == "off" and reply["output"]["override"] is None
        status, reply = fw.post_json("/api/outputs", {"output": "charger", "action": "auto"}, TOKEN)
        wait_output(fw, 0, state="on", mode="auto")
        status, reply = fw.post_json("/api/acc/wake", {}, TOKEN)
        assert status == 200 and reply["ok"] is True
        wait_until(lambda: any(e["c"] == 1 for e in events(fw, "acc")), 5, 0.1, "ACC pulse")


def test_control_api_refuses_bad_requests(tmp_path):
    # A corrupt state.json must not stop the boot: counters start at zero.
    data = os.path.join(str(tmp_path), "fw", "data")
    os.makedirs(data)
    with open(os.path.join(data, "state.json"), "w") as f:
        f.write('{"energy": {"charged_wh": ')
    with bridge(tmp_path, env={"ANTBRIDGE_SENSE_STUCK": "do2"}) as (sim, fw):
        health = fw.get_json("/api/health")
        assert "corrupt" in health["state_error"]
        assert fw.get_json("/api/energy")["charged_kwh"] == 0
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN}
        for path, body in (("/api/outputs", {"output": 0, "action": "on"}), ("/api/flags", {"flag": 0, "on": True}),
                           ("/api/acc/wake", {})):
            status, reply = fw.post_json(path, body)
            assert status == 401 and reply["ok"] is False, path
            status, reply = fw.post_json(path, body, "wrong-token-0123456789")
            assert status == 401, path
            if path != "/api/acc/wake":  # takes no body
                status, reply = fw.request("POST", path, b'{"output": ', headers)
                assert status == 400 and "JSON" in reply["reason"], path
            status, reply = fw.request("POST", path, b"x" * 4096, headers)
            assert status == 413 and "over 256 bytes" in reply["reason"], path
        for body, why in (({"output": 7, "action": "on"}, "unknown output"),
                          ({"output": "pump", "action": "on"}, "unknown output"),
                          ({"output": 0, "action": "explode"}, "action"),
                          ({"output": 0}, "action: required"),
                          ({"output": 0, "action": "on", "expiry_s": -1}, "expiry_s"),
                          ({"output": 0, "action": "mode"}, "mode"),
                          ({"output": 0, "action": "on", "colour": "red"}, "colour: unknown key")):
            status, reply = fw.post_json("/api/outputs", body, TOKEN)
            assert status == 400 and why in reply["reason"], (body, reply)
        for body in ({"flag": 8, "on": True}, {"flag": 0}, {"flag": "x", "on": True}):
            status, reply = fw.post_json("/api/flags", body, TOKEN)
            assert status == 400, (body, reply)
        assert all(o["override"] is None for o in outputs(fw))
        assert fw.get_json("/api/outputs")["flags"] == [0] * 8
        # The stuck relay: DO2 forced on, its sense input never follows.
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/outputs", {"output": 1, "action": "on"}, TOKEN)
        assert status == 200
        wait_output(fw, 1, sense_alarm=True)
        alarms = events(fw, "alarm")
        assert alarms and alarms[0]["a"] == 1 and alarms[0]["b"] == 1 and alarms[0]["c"] == 1
        assert outputs(fw)[0]["sense_alarm"] is False


def test_damaged_state_parts_are_reported_and_skipped(tmp_path):
    # Valid JSON, damaged parts: each is reported, none stops the boot.
    data = os.path.join(str(tmp_path), "fw", "data")
    os.makedirs(data)
    with open(os.path.join(data, "state.json"), "w") as f:
        json.dump({"energy": {"version": 1, "charged_wh": "lots"}, "outputs": {"v": 1, "names": None}}, f)
    with bridge(tmp_path) as (sim, fw):
        error = fw.get_json("/api/health")["state_error"]
        assert "state.json: energy: " in error and "charged_wh: must be an integer" in error, error
        assert "state.json: outputs:" in error and error.count("this part starts from zero") == 2, error
        assert fw.get_json("/api/energy")["charged_kwh"] == 0
        fw.wait_link("ok")
        wait_output(fw, 0, held_by="rule")


def test_bad_rules_config_keeps_default_outputs(tmp_path):
    bad = {"outputs": [{"name": "charger", "when": {"soc": {"below": "low"}}}]}
    with bridge(tmp_path, settings=settings(outputs=bad)) as (sim, fw):
        health = fw.get_json("/api/health")
        assert "outputs.outputs[0].when.soc.below" in health["settings_error"], health
        outs = outputs(fw)
        assert [o["name"] for o in outs] == ["do1", "do2", "do3"]
        fw.wait_link("ok")
        wait_output(fw, 0, reason="mode off")
        # The rest of the file still applies: the API token works.
        status, reply = fw.post_json("/api/outputs", {"output": 0, "action": "on", "expiry_s": 5}, TOKEN)
        assert status == 200 and reply["output"]["state"] == "on"


# -- allocation ---------------------------------------------------------------------------


def test_periodic_tasks_and_the_status_document_allocate_nothing(tmp_path):
    # The link, outputs, acc and persist tasks of the compiled firmware as
    # build() wires them, 60 s of passes under micropython.heap_lock(): no
    # task crashed, each kept working; then /api/status written, still locked.
    r = alloc_probe(tmp_path)
    assert "scheduler_allocated" not in r, r
    assert r["crashes"] == 0 and all(r["alive"]), r  # link, outputs, acc, persist
    assert r["link_ok"] and r["frames"] >= 50 and r["polls"] >= 50, r  # a status a second (default poll_ms)
    assert r["evaluations"] >= r["frames"], r  # the rules ran on every new status
    assert r["history_added"] >= 1, r  # the dashboard's history took samples (one per 30 s)
    assert r["acc_steps"] >= 250 and r["holding"] is False and r["charger_on"] is True, r
    assert r["doc_allocated"] is False and r["doc_bytes"] > 1500, r
