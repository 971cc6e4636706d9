# End to end: the real firmware (firmware/ + lib/ compiled to .mpy, run by
# the MicroPython unix port with a device-sized heap, hardware layer from
# tools/hostrt) against the real BMS simulator (tools/bmssim.py), observed
# through the firmware's HTTP API and the simulator's control port.
# CPython only: processes, sockets, HTTP.
import os
import time

import pytest

import fwproc
from fwproc import TOKEN, Firmware, no_crash, firmware_module, wait_until
from simproc import SimProcess

# Short intervals so faults show and heal quickly (set in settings.json).
# No display in most tests: a short first listen keeps start-up fast.
FAST = {"poll_ms": 200, "stale_ms": 1000, "lost_ms": 10000, "passive_hold_ms": 3000, "listen_first_ms": 100}
STALE_LIMIT_MS = 3000  # data older than this must never be presented as live


def bridge(tmp_path, sim_args=(), link=None, **fw_kw):
    return fwproc.bridge(tmp_path, sim_args, link=FAST if link is None else link, **fw_kw)


def live_invariant(doc):
    """A face never presents stale data as live."""
    link = doc["link"]
    if doc["live"]:
        assert link["state"] == "ok"
        assert 0 <= link["age_ms"] <= STALE_LIMIT_MS, link
    return doc


# -- soak: started first, checked last ---------------------------------------------------
# 2000 link polls (and 2000 HTTP status polls) in parallel with the other
# tests. Real units need >= 250 ms per poll; the simulator here answers in
# 5 ms, so the link's floor is lowered to what the wire carries (an 8S frame
# is ~70 ms at 19200 baud): about 0.1 s per poll.
SOAK_POLLS = int(os.environ.get("ANTBRIDGE_E2E_SOAK_POLLS") or 1000)
SOAK_HTTP_POLLS = 1000


@pytest.fixture(scope="module")
def soak(tmp_path_factory):
    base = tmp_path_factory.mktemp("soak")
    sim = SimProcess("--cells", "8", "--temps", "2", "--reply-latency-ms", "5", "--profile", "random").start()
    fw = None
    try:
        fw = Firmware(base, sim, link={"poll_ms": 20, "poll_floor_ms": 50, "quiet_ms": 5, "gap_ms": 10})
        yield sim, fw
    finally:
        if fw is not None:
            fw.stop()
        sim.stop()


def test_soak_started(soak):
    sim, fw = soak
    fw.wait_link("ok", protocol="new")


# -- autodetection -------------------------------------------------------------------


@pytest.mark.parametrize(
    "sim_args, protocol, baud",
    [
        (["--protocol", "new"], "new", 19200),
        (["--protocol", "old"], "old", 19200),
        (["--protocol", "both"], "new", 19200),  # NEW is tried first
        (["--protocol", "new", "--baud", "9600"], "new", 9600),
    ],
    ids=["new", "old", "both", "9600-fallback"],
)
def test_autodetect(tmp_path, sim_args, protocol, baud):
    with bridge(tmp_path, sim_args) as (sim, fw):
        doc = fw.wait_link("ok", protocol=protocol, baud=baud)
        assert doc["live"] is True
        assert doc["link"]["line"] == "ok"
        st = doc["status"]
        state = sim.state()
        assert st["cell_count"] == len(state["cells_mv"])
        assert abs(st["soc_pct"] - state["soc_pct"]) <= 1
        assert state["bridge_baud"] == baud  # the host UART told the simulator
        assert state["requests"] > 0


def test_status_page_and_events(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        status, page = fw.request("GET", "/lite")  # the plain page (the dashboard: test_dashboard.py)
        assert status == 200 and "http-equiv='refresh'" in page and "BMS link ok" in page
        events = fw.get_json("/api/events")["events"]
        assert any(e["kind"] == "boot" for e in events)
        assert any(e.get("text") == "BMS link lost -> ok" for e in events), [e["text"] for e in events]
        sim.control("vcc 0")
        fw.wait_link("stale")
        status, page = fw.request("GET", "/lite")
        assert "BMS link STALE" in page and "class='old'" in page


def test_status_long_poll_wakes_on_change(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        gen = fw.status()["generation"]
        doc = fw.get_json("/api/status?since=%d&wait_ms=20000" % gen)
        assert doc["generation"] != gen  # answered once the link task announced a change
        assert doc["live"] and doc["link"]["state"] == "ok"


# -- faults ---------------------------------------------------------------------------


def _recovers_within_two_polls(sim, fw):
    """Clear the faults; the link must be ok again within 2 poll intervals,
    counted in the firmware's own polls (no wall-clock assertion)."""
    sim.control("fault clear")
    polls_at_clear = fw.status()["link"]["stats"]["polls"]
    doc = fw.wait_link("ok", timeout_s=10)
    frames = doc["link"]["stats"]["frames_ok"]
    doc = wait_until(lambda: (lambda d: d if d["link"]["stats"]["frames_ok"] > frames else None)(fw.status()), 5)
    assert doc["live"]
    # +1: the poll already in flight when the fault ended.
    assert doc["link"]["stats"]["polls"] - polls_at_clear <= 3, doc["link"]["stats"]


@pytest.mark.parametrize(
    "fault, value, evidence",
    [
        ("drop", "0.6", lambda s: s["timeouts"]),
        ("delay", "700", lambda s: s["timeouts"]),  # beyond the reply timeout
        ("truncate", "0.6", lambda s: s["timeouts"]),
        ("flip", "0.6", lambda s: s["checksum_errors"] + s["bytes_dropped"]),
        ("garbage", "0.8", lambda s: s["bytes_dropped"]),
    ],
)
def test_line_fault_then_recovery(tmp_path, fault, value, evidence):
    with bridge(tmp_path) as (sim, fw):
        doc = fw.wait_link("ok")
        before = evidence(doc["link"]["stats"])
        assert sim.control("fault %s %s" % (fault, value))["ok"]
        wait_until(lambda: evidence(live_invariant(fw.status())["link"]["stats"]) > before, 10, 0.1, fault + " observed")
        end = time.monotonic() + 2
        while time.monotonic() < end:
            live_invariant(fw.status())
            time.sleep(0.1)
        _recovers_within_two_polls(sim, fw)


@pytest.mark.parametrize(
    "change, expect",
    [("protocol old", {"protocol": "old", "baud": 19200}), ("baud 9600", {"protocol": "new", "baud": 9600})],
    ids=["protocol-change", "baud-change"],
)
def test_bms_changes_protocol_or_baud_at_run_time(tmp_path, change, expect):
    # A unit swapped or reconfigured under a running bridge: the link notices
    # the silence, searches again and locks onto what answers now.
    with bridge(tmp_path, ["--protocol", "new"]) as (sim, fw):
        fw.wait_link("ok", protocol="new", baud=19200)
        assert sim.control(change)["ok"]
        doc = fw.wait_link("ok", timeout_s=30, **expect)
        assert doc["live"] and doc["status"]["cell_count"] == 16
        assert sim.state()["bridge_baud"] == expect["baud"]


def test_silent_bms_flagged_stale_then_recovers(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        assert sim.control("fault silent 3")["ok"]
        docs = []

        def stale():
            doc = live_invariant(fw.status())
            docs.append(doc)
            return doc if not doc["live"] else None

        doc = wait_until(stale, 5, 0.1, "stale")
        assert doc["link"]["state"] == "stale"
        assert doc["status"]["pack_voltage_v"] is not None  # the last values stay, flagged old
        assert all(d["link"]["age_ms"] <= STALE_LIMIT_MS for d in docs if d["live"])
        fw.wait_link("ok", timeout_s=10)


# -- commands ---------------------------------------------------------------------------


def test_commands_change_the_bms(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "charge-off"}, TOKEN)
        assert status == 200 and reply["ok"] is True, reply
        state = sim.state()
        assert "charge-off" in state["commands"]
        assert state["charge_mos"] != 1
        assert fw.status()["status"]["charge_mos"]["on"] is False
        status, reply = fw.post_json("/api/command", {"command": "charge-on"}, TOKEN)
        assert reply["ok"] is True, reply
        assert sim.state()["charge_mos"] == 1


def test_command_refused_without_password(tmp_path):
    with bridge(tmp_path, ["--password", "SECRET1"], link=dict(FAST, command_timeout_ms=4000)) as (sim, fw):
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "discharge-off"}, TOKEN)
        assert status == 200 and reply["ok"] is False
        assert "password" in reply["reason"] or "permission" in reply["reason"], reply
        state = sim.state()
        assert state["rejected"] >= 1 and "discharge-off" not in state["commands"]
        assert state["discharge_mos"] == 1


def test_command_with_configured_password(tmp_path):
    link = dict(FAST, password="SECRET1")
    with bridge(tmp_path, ["--password", "SECRET1", "--protocol", "old"], link=link) as (sim, fw):
        fw.wait_link("ok", protocol="old")
        status, reply = fw.post_json("/api/command", {"command": "discharge-off"}, TOKEN)
        assert reply["ok"] is True, reply
        assert "discharge-off" in sim.state()["commands"]


# -- a display on the same port -------------------------------------------------------------


def test_display_detected_passive_without_collisions(tmp_path):
    # The default first listen (1.5 s) hears a display that polls each second
    # before the bridge ever talks.
    link = dict(FAST, listen_first_ms=1500)
    with bridge(tmp_path, ["--faults", "display=1000"], link=link) as (sim, fw):
        doc = wait_until(lambda: (lambda d: d if d["link"]["passive"] and d["live"] else None)(fw.status()), 15, 0.1, "passive")
        assert doc["link"]["line"] in ("foreign", "ok")
        frames = doc["link"]["stats"]["frames_ok"]
        wait_until(lambda: fw.status()["link"]["stats"]["frames_ok"] >= frames + 4, 10, 0.1, "display's replies decoded")
        status, reply = fw.post_json("/api/command", {"command": "charge-off"}, TOKEN)
        assert reply["ok"] is True, reply
        state = sim.state()
        assert state["collisions"] == 0
        assert "charge-off" in state["commands"]
        assert fw.status()["link"]["passive"] is True


# -- wiring faults get their hints -------------------------------------------------------------


def test_unpowered_ttl_port_gets_silent_hint(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        fw.wait_link("ok")
        sim.control("vcc 0")
        doc = wait_until(lambda: (lambda d: d if d["link"]["line"] == "silent" else None)(fw.status()), 10, 0.1, "silent")
        assert doc["live"] is False
        assert "VCC" in doc["link"]["hint"]


def test_wrong_baud_gets_noise_hint(tmp_path):
    # The bridge pinned to 9600 while the BMS talks 19200; a display keeps the
    # BMS talking, so garbled bytes arrive but never a frame.
    link = dict(FAST, baud=9600, protocol="new")
    with bridge(tmp_path, ["--faults", "display=300"], link=link) as (sim, fw):
        doc = wait_until(lambda: (lambda d: d if d["link"]["line"] == "noise" else None)(fw.status()), 15, 0.1, "noise")
        assert doc["live"] is False and doc["link"]["age_ms"] == -1
        assert "baud" in doc["link"]["hint"]
        assert sim.state()["bridge_baud"] == 9600


def test_sleeping_bms_reported_asleep(tmp_path):
    # ACC wake off: the link's own naming of a BMS gone to sleep, not the
    # bridge waking it (the default wakes it at the first silent stale poll).
    no_wake = {"acc": {"wake": {"enabled": False}, "keep_awake": {"mode": "off"}}}
    with bridge(tmp_path, link=dict(FAST, lost_ms=2000), settings=no_wake) as (sim, fw):
        fw.wait_link("ok")
        assert sim.control("sleep")["ok"]
        doc = fw.wait_link("asleep", timeout_s=10)
        assert doc["live"] is False
        sim.control("wake")
        fw.wait_link("ok", timeout_s=10)


# -- the link tells the truth: no false alarm, the right hint ------------------------------


def _new_events(fw, count_before):
    """The events logged since the log's count was count_before (the newest
    32 are served; the tests below add far fewer)."""
    doc = fw.get_json("/api/events")
    added = doc["count"] - count_before
    assert 0 <= added <= len(doc["events"]), doc
    return doc["events"][:added] if added else []


def _settled(fw):
    """Live, and every output out of its boot hold."""
    doc = fw.status()
    if doc["live"] and doc["outputs"] and all(o["held_by"] != "boot" for o in doc["outputs"]):
        return doc
    return None


def test_a_display_that_stops_polling_raises_no_false_alarm(tmp_path):
    # The link's defaults (1 s polls, 2.5 s stale, 10 s lost) and the demo
    # outputs of `make run` (DO1 charger, DO3 alarm): a display polls each
    # second, then is unplugged. The bridge must take over within two of its
    # own poll intervals of the display's first missed poll, with no output
    # switching, no ACC pulse and no link event on the way.
    settings = {"outputs": fwproc.run.demo_outputs()}
    with bridge(tmp_path, ["--faults", "display=1000"], link={}, settings=settings) as (sim, fw):
        wait_until(lambda: (lambda d: d if d and d["link"]["passive"] else None)(_settled(fw)), 30, 0.1, "passive, settled")
        time.sleep(2)  # a few display exchanges more, all passive
        assert fw.status()["link"]["passive"] is True
        count = fw.get_json("/api/events")["count"]
        before = sim.state()
        assert sim.control("fault display 0")["ok"]
        samples = []
        end = time.monotonic() + 12  # beyond lost_ms
        while time.monotonic() < end:
            samples.append(live_invariant(fw.status()))
            time.sleep(0.1)
        state = sim.state()
        events = _new_events(fw, count)
    # Active polling resumed, and soon: measured on the simulator's clock
    # from the display's last request to the bridge's first one after it.
    assert state["requests"] - before["requests"] >= 8, (before["requests"], state["requests"])
    log = state["recent_requests"]
    last_display = max(t for t, source in log if source == "display")
    first_bridge = min(t for t, source in log if source == "bridge" and t > last_display)
    assert first_bridge - last_display <= 1.0 + 2 * 1.0, (last_display, first_bridge)
    # No false alarm: live throughout, no output, ACC or link event, no ACC
    # pulse at the simulator, never a collision.
    assert all(d["live"] and d["link"]["state"] == "ok" for d in samples), [d["link"] for d in samples if not d["live"]]
    assert [e for e in events if e["kind"] in ("output", "acc", "supply", "link")] == [], events
    assert state["acc"] == before["acc"] and state["collisions"] == 0  # ACC held (keep-awake), never pulsed
    # One consistent diagnosis: passive until the bridge took over, then
    # never again, and never the "no bytes / VCC" hint.
    resumed = [i for i, d in enumerate(samples) if not d["link"]["passive"]]
    assert resumed, "never left passive listening"
    assert all(not d["link"]["passive"] for d in samples[resumed[0]:])
    assert all("VCC" not in d["link"]["hint"] for d in samples)
    assert samples[-1]["link"]["line"] == "ok" and "Another master" not in samples[-1]["link"]["hint"]
    for d in samples:
        assert not (d["link"]["passive"] and d["link"]["line"] == "silent"), d["link"]


def test_intermittent_replies_are_named_with_their_loss_rate(tmp_path):
    # Half the replies lost: the stale spells between two answered polls are
    # named intermittent, with the loss rate, never "no bytes at all".
    link = dict(FAST, poll_ms=250, stale_ms=600)
    with bridge(tmp_path, link=link) as (sim, fw):
        fw.wait_link("ok")
        assert sim.control("fault drop 0.5")["ok"]
        # The first spell may come before any loss the BMS recovered from:
        # nothing yet says "intermittent" then. Give it a record first.
        time.sleep(3)
        stale = []
        spells = 0
        was_stale = False
        end = time.monotonic() + 60
        while spells < 3 and time.monotonic() < end:
            d = live_invariant(fw.status())
            is_stale = d["link"]["state"] == "stale"
            if is_stale:
                stale.append(d)
                spells += 0 if was_stale else 1
            was_stale = is_stale
            time.sleep(0.05)
        counts = sim.state()["fault_counts"]
    assert spells >= 3, "%d stale spells in 60 s" % spells
    assert counts["dropped"] >= 5
    for d in stale:
        link = d["link"]
        assert link["line"] == "intermittent", link
        if d["acc"]["state"] in ("pulsing", "waiting", "backoff"):
            # A wake begun in the first spell (a clean record going quiet is a
            # stop) runs on: the page says so, never "no bytes" or VCC.
            assert link["hint"] == "The BMS went silent; the bridge is waking it through ACC now.", link["hint"]
            continue
        assert "No bytes" not in link["hint"] and "intermittent" in link["hint"], link["hint"]
        assert 20 <= link["loss_pct"] <= 80, link
        assert "%d %%" % link["loss_pct"] in link["hint"], link["hint"]


def test_a_slow_bms_is_named_slow_and_stays_live(tmp_path):
    # 300 ms more latency than real units (replies end ~400-530 ms after the
    # request, beyond the default 500 ms timeout): the bridge measures it,
    # waits longer, stays live and says why; a late reply is never taken for
    # another master's traffic.
    link = {"listen_first_ms": 100}  # the default 1 s polls
    with bridge(tmp_path, link=link) as (sim, fw):
        fw.wait_link("ok")
        assert sim.control("fault delay 300")["ok"]
        samples = []
        end = time.monotonic() + 20
        while time.monotonic() < end:
            samples.append(live_invariant(fw.status()))
            time.sleep(0.1)
    live = sum(1 for d in samples if d["live"])
    assert live >= 0.95 * len(samples), "live %d of %d samples" % (live, len(samples))
    assert all(not d["link"]["passive"] for d in samples)
    last = samples[-1]["link"]
    assert last["stats"]["foreign_frames"] == 0
    assert last["line"] == "slow" and "slow" in last["hint"], last
    assert 350 <= last["reply_ms"] <= 700, last
    assert last["reply_ms"] < last["reply_timeout_ms"] <= 1000, last


# Fast wakes and a power cycle of the TTL supply after every failed wake.
FAST_ACC = {"wake": {"pulse_ms": 100, "wait_ms": 500, "backoff_ms": 100, "backoff_max_ms": 200},
            "supply": {"off_ms": 300, "cycle_after_failures": 1}}


def test_a_forced_unpowered_ttl_port_stays_unpowered_until_cleared(tmp_path):
    # README's "TTL port unpowered" scenario: the bridge power-cycles its
    # supply to recover; that must not clear the fault the user forced.
    from acc import SUPPLY_CYCLE_END

    with bridge(tmp_path, link=dict(FAST, lost_ms=2000), settings={"acc": FAST_ACC}) as (sim, fw):
        fw.wait_link("ok")
        count = fw.get_json("/api/events")["count"]
        assert sim.control("vcc 0")["ok"]

        def cycles():
            n = sum(1 for e in _new_events(fw, count) if e["kind"] == "supply" and e["a"] == 1 and e["b"] == SUPPLY_CYCLE_END)
            return n if n >= 2 else None

        wait_until(cycles, 40, 0.2, "two power cycles of the TTL supply")
        time.sleep(1)
        state = sim.state()
        assert state["vcc"] == 0 and state["awake"] is False, state
        doc = fw.status()
        assert doc["live"] is False and doc["link"]["line"] == "silent" and "VCC" in doc["link"]["hint"], doc["link"]
        assert sim.control("vcc 1")["ok"]
        fw.wait_link("ok", timeout_s=30)


# -- HTTP ----------------------------------------------------------------------------------------


def test_http_control_needs_token_and_valid_json(tmp_path):
    with bridge(tmp_path) as (sim, fw):
        status, reply = fw.post_json("/api/command", {"command": "charge-off"})
        assert status == 401 and reply["ok"] is False
        for wrong in ("wrong-token-0123456789", TOKEN[:-1], TOKEN + "9", TOKEN.upper(), ""):
            status, reply = fw.post_json("/api/command", {"command": "charge-off"}, wrong)
            assert status == 401, wrong
        status, reply = fw.request("POST", "/api/command", b'{"command": "charge-off"}', {"Authorization": TOKEN})
        assert status == 401  # the token without "Bearer "
        headers = {"Content-Type": "application/json", "Authorization": "Bearer " + TOKEN}
        status, reply = fw.request("POST", "/api/command", b'{"command": ', headers)
        assert status == 400 and "JSON" in reply["reason"]
        status, reply = fw.request("POST", "/api/command", b'["charge-off"]', headers)
        assert status == 400
        status, reply = fw.post_json("/api/command", {"command": "self-destruct"}, TOKEN)
        assert status == 400 and "unknown command" in reply["reason"]
        for size in (257, 4096, 4096, 4096):  # a refused body is read first: the client gets the 413, not a reset
            status, reply = fw.request("POST", "/api/command", b"x" * size, headers)
            assert status == 413 and reply["ok"] is False and "over 256 bytes" in reply["reason"], (size, reply)
        assert "charge-off" not in sim.state()["commands"]


def test_corrupt_settings_fall_back_to_defaults(tmp_path):
    with bridge(tmp_path, raw_settings="{not json") as (sim, fw):
        health = no_crash(fw)
        assert "not valid JSON" in health["settings_error"]
        fw.wait_link("ok")
        status, reply = fw.post_json("/api/command", {"command": "charge-off"}, TOKEN)
        assert status == 403  # no token configured: control disabled


def test_crashed_task_is_logged_and_restarted(tmp_path):
    sim = SimProcess().start()
    try:
        fw = Firmware(tmp_path, sim, link=FAST, env={"ANTBRIDGE_UART_FAIL_AT": "50"})
    except BaseException:
        sim.stop()
        raise
    try:
        health = wait_until(lambda: (lambda h: h if h["task_crashes"] else None)(fw.get_json("/api/health")), 10, 0.1, "crash")
        assert health["task_restarts"]["link"] == 1 and "injected UART failure" in health["last_crash"]
        frames = fw.status()["link"]["stats"]["frames_ok"]
        wait_until(lambda: fw.status()["link"]["stats"]["frames_ok"] > frames, 10, 0.1, "link running again")
        assert fw.status()["live"]
        out, err = fw.output()
        assert "supervisor: task link: InjectedFault: injected UART failure" in err and "Traceback" in err, err
    finally:
        fw.stop()
        sim.stop()


# -- settings.json (firmware/settings.py under CPython) -------------------------------------


def test_settings_defaults_errors_and_atomic_save(tmp_path):
    settings = firmware_module("settings")
    root = str(tmp_path) + "/"
    s = settings.load(root)
    assert not s.found and s.error is None and s.link.poll_ms == 1000 and s.api_token == ""
    (tmp_path / "settings.json").write_text('{"link": {"poll_ms": 5}}')
    s = settings.load(root)
    assert s.found and s.error == "settings.json: link.poll_ms: must be >= 10; using defaults"
    assert s.link.poll_ms == 1000
    (tmp_path / "settings.json").write_text('{"lnk": {}}')
    assert "lnk: unknown key" in settings.load(root).error
    (tmp_path / "settings.json").write_text('{"api_token": "t0k", "board": "' + "x" * settings.MAX_FILE_BYTES + '"}')
    s = settings.load(root)  # a runaway file is not read whole (the heap at boot)
    assert s.error == "settings.json: larger than %d bytes; using defaults" % settings.MAX_FILE_BYTES
    assert s.api_token == ""
    (tmp_path / "settings.json").write_text('{"api_token": "short"}')
    s = settings.load(root)
    assert s.error is not None and "api_token" in s.error and s.api_token == ""  # refused: control stays off
    settings.save(root, {"api_token": "t0k-0123456789abcdef", "link": {"poll_ms": 500, "protocol": "old", "password": "1234"}})
    s = settings.load(root)
    assert s.error is None and s.api_token == "t0k-0123456789abcdef" and s.link.poll_ms == 500
    assert s.link.protocol == 1 and s.link.password == "1234"
    assert sorted(os.listdir(tmp_path)) == ["settings.json"]  # no temporary file left behind
    with pytest.raises(ValueError):
        settings.save(root, {"link": {"baud": 4800}})
    assert settings.load(root).link.poll_ms == 500  # the invalid save changed nothing


# -- last: the soak's heap ---------------------------------------------------------------------


def test_heap_does_not_grow_over_1000_polls(soak):
    sim, fw = soak
    start = fw.wait_link("ok")["link"]["stats"]["polls"]
    for _ in range(20):  # warm up: every response path allocated once
        fw.status()
    first = fw.get_json("/api/health")
    for _ in range(SOAK_HTTP_POLLS):
        live_invariant(fw.status())
    doc = wait_until(
        lambda: (lambda d: d if d["link"]["stats"]["polls"] - start >= SOAK_POLLS else None)(fw.status()),
        SOAK_POLLS * 0.5 + 60, 0.5, "%d link polls" % SOAK_POLLS,
    )
    assert doc["live"]
    last = no_crash(fw)
    # Retained heap after a full collection: allow one KB for the HTTP
    # server's buffers, nothing proportional to the polls.
    assert last["heap_free"] >= first["heap_free"] - 1024, (first, last)
    assert last["http"]["accepted"] - first["http"]["accepted"] >= SOAK_HTTP_POLLS
    assert last["http"]["failed"] == 0 and last["http"]["busy_503"] == 0
