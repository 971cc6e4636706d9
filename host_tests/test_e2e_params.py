# End to end: the BMS's settings and log through the real firmware (frozen
# into the 32-bit interpreter, tools/hostrt hardware) against the real
# simulator: every parameter of both generations read over HTTP and equal to
# what the simulated BMS holds; a write with the opt-in and "confirm" that
# changes the simulated BMS's protection and answers with the value read
# back; refused without the opt-in; the OLD system log filling as the frames
# roll. CPython only.
import fwproc
from fwproc import TOKEN, no_crash, wait_until

LINK = {"poll_ms": 500, "listen_first_ms": 100}
OPT_IN = {"control": {"allow_commands": ["write-param"]}}


def bridge(tmp_path, sim_args=(), link=None, settings=None):
    return fwproc.bridge(tmp_path, list(sim_args) + ["--time-scale", "0.001"], link=dict(LINK, **(link or {})),
                         settings=settings if settings is not None else OPT_IN)


def read_params(fw, refresh=False):
    status, doc = fw.request("GET", "/api/params" + ("?refresh=1" if refresh else ""), timeout_s=40)
    assert status == 200, doc
    assert doc["error"] is None and doc["reading"] is False, doc
    return doc


def check_against_the_simulator(doc, sim, protocol):
    held = sim.state()["params"][protocol]
    got = {p["key"]: p["raw"] for p in doc["params"]}
    assert doc["protocol"] == protocol
    assert set(got) == set(held)
    for key in held:
        if key != "runtime_s":  # counts on
            assert got[key] == held[key], (key, got[key], held[key])


def write(fw, key, value, token=TOKEN, confirm="write-param"):
    body = {"key": key, "value": value}
    if confirm:
        body["confirm"] = confirm
    return fw.post_json("/api/params", body, token, timeout_s=40)


def test_new_unit_read_all_and_write_one(tmp_path):
    with bridge(tmp_path, ["--protocol", "new", "--cells", "16", "--password", "123456789abc"],
                link={"password": "123456789abc"}) as (sim, fw):
        fw.wait_link("ok", protocol="new")
        doc = read_params(fw)
        check_against_the_simulator(doc, sim, "new")
        by_key = {p["key"]: p for p in doc["params"]}
        assert by_key["cell_ov_protection_mv"]["value"] == 3650 and by_key["pack_ov_protection_v"]["value"] == 60.8
        assert by_key["capacity_ah"]["verified"] is False and by_key["capacity_ah"]["value"] == 100.0
        assert doc["read_at"] and doc["read_at"].endswith("Z")
        # A write: password, 0x22, save, read back; the simulated BMS now trips at 3.60 V.
        status, result = write(fw, "cell_ov_protection_mv", 3600)
        assert status == 200 and result == {"ok": True, "key": "cell_ov_protection_mv", "value": 3600, "unit": "mV",
                                             "raw": 3600, "reason": None}, result
        state = sim.state()
        assert state["limits"]["cell_ov_mv"] == 3600 and state["param_saves"] == 1
        sim.control("cell 3 3620")
        wait_until(lambda: fw.status()["status"]["charge_mos"]["code"] == 2, 5, 0.1, "charge MOSFET off at 3.62 V")
        assert fw.status()["link"]["state"] == "ok"
        # The BMS's generation decides: an OLD-only setting is refused.
        status, doc = write(fw, "charge_ot_protection_c", 50)
        assert status == 400 and "not offered by the new protocol" in doc["reason"]
        log = fw.get_json("/api/bmslog")
        assert log["supported"] is False and "not offered" in log["reason"] and log["entries"] == []
        no_crash(fw)


def test_old_unit_read_all_write_and_its_log(tmp_path):
    with bridge(tmp_path, ["--protocol", "old", "--cells", "16"], link={"protocol": "old"}) as (sim, fw):
        fw.wait_link("ok", protocol="old")
        doc = read_params(fw)
        check_against_the_simulator(doc, sim, "old")
        by_key = {p["key"]: p for p in doc["params"]}
        assert by_key["discharge_ut_protection_c"]["value"] == -20 and by_key["firmware_id"]["value"] == 12006
        assert by_key["capacity_ah"]["verified"] is True and by_key["capacity_ah"]["value"] == 100.0
        status, result = write(fw, "charge_ut_protection_c", -5)
        assert status == 200 and result["ok"] is True and result["value"] == -5, result
        state = sim.state()
        assert state["limits"]["charge_ut_c"] == -5 and state["param_applies"] == 1
        again = read_params(fw, refresh=True)
        check_against_the_simulator(again, sim, "old")
        assert {p["key"]: p["value"] for p in again["params"]}["charge_ut_protection_c"] == -5
        # The log fills as the frames roll by.
        assert fw.get_json("/api/bmslog")["entries"] == []
        for line in ("log 2 5 charge", "log 3 0 discharge", "log 15 0 charge"):
            assert sim.control(line)["ok"]
        expected = [
            {"slot": 0, "table": "charge", "code": 2, "text": "cell over-voltage", "cell": 5},
            {"slot": 1, "table": "discharge", "code": 3, "text": "over-current", "cell": None},
            {"slot": 2, "table": "charge", "code": 15, "text": "manually switched off", "cell": None},
        ]
        log = wait_until(lambda: (lambda d: d if len(d["entries"]) == 3 else None)(fw.get_json("/api/bmslog")), 10,
                         0.2, "three log entries")
        assert log["supported"] is True and log["source"] == "old system-log word" and log["entries"] == expected
        no_crash(fw)


def test_a_write_is_refused_without_the_opt_in(tmp_path):
    with bridge(tmp_path, ["--protocol", "new"], settings={}) as (sim, fw):
        fw.wait_link("ok")
        status, doc = write(fw, "cell_ov_protection_mv", 3600)
        assert status == 403 and "control.allow_commands" in doc["reason"]
        status, doc = write(fw, "cell_ov_protection_mv", 3600, token=None)
        assert status == 401
        assert sim.state()["param_writes"] == 0 and sim.state()["limits"]["cell_ov_mv"] == 3650
        events = fw.get_json("/api/events")["events"]
        assert "BMS command write-param from http: refused" in [e["text"] for e in events]


def test_a_write_without_the_bms_password_fails_with_the_reason(tmp_path):
    with bridge(tmp_path, ["--protocol", "old", "--password", "12345678"], link={"protocol": "old"}) as (sim, fw):
        fw.wait_link("ok", protocol="old")
        status, result = write(fw, "cell_ov_protection_mv", 3600)
        assert status == 200 and result["ok"] is False
        assert result["reason"] == "the BMS requires a password (write rejected)" and result["value"] is None
        assert sim.state()["limits"]["cell_ov_mv"] == 3650
