# tools/antbms.py monitor / control as a user runs them: a separate process
# with pyserial, talking to the simulator (tools/bmssim.py) over socket:// or
# its pty, in real time through the firmware's own link engine.
import json
import os
import subprocess
import sys
import time

import pytest

from conftest import ROOT
from simproc import SimProcess

CLI = os.path.join(ROOT, "tools", "antbms.py")


def cli(*args, timeout=60):
    return subprocess.run([sys.executable, CLI] + [str(a) for a in args], capture_output=True, text=True, timeout=timeout)


def url(sim):
    return "socket://127.0.0.1:%d" % sim.tcp_port


def statuses(result):
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def assert_matches_sim(d, state):
    # The sim's state moves on while we read it; an idle pack drifts by a
    # few mV at most.
    assert d["live"] is True and d["link"]["state"] == "ok"
    assert d["cell_count"] == len(state["cells_mv"])
    for got, want in zip(d["cell_voltages_v"], state["cells_mv"]):
        assert abs(got * 1000 - want) <= 5, (d["cell_voltages_v"], state["cells_mv"])
    assert abs(d["pack_voltage_v"] - state["pack_v"]) <= 0.1
    assert d["soc_pct"] == state["soc_pct"]
    assert d["current_a"] == pytest.approx(state["current_a"], abs=0.15)
    fitted = len(state["temps_c"])
    assert d["temperatures_c"][:fitted] == state["temps_c"]
    assert all(t is None for t in d["temperatures_c"][fitted:])  # the old frame's unfitted slots
    assert d["charge_mos"]["code"] == state["charge_mos"]
    assert d["discharge_mos"]["code"] == state["discharge_mos"]
    assert d["link"]["protocol"] == state["protocol"] or state["protocol"] == "both"


@pytest.mark.parametrize("protocol", ["new", "old"])
def test_monitor_json_decodes_live_values_of_either_protocol(protocol):
    with SimProcess("--protocol", protocol, "--current", "-12.5", "--seed", "1") as sim:
        r = cli("monitor", "--port", url(sim), "--json", "--count", "3", "--interval", "0.5", "--timeout", "15")
        state = sim.state()
    assert r.returncode == 0, r.stderr
    out = statuses(r)
    assert len(out) == 3
    for d in out:
        assert d["link"]["protocol"] == protocol and d["link"]["detected"] is True
        assert d["current_a"] < 0 and d["power_w"] < 0  # discharging: negative in our convention
    assert out[-1]["link"]["stats"]["frames_ok"] == 3
    assert out[-1]["link"]["stats"]["checksum_errors"] == 0
    assert_matches_sim(out[-1], state)
    assert state["requests"] >= 3


def test_monitor_finds_the_old_protocol_on_a_unit_answering_both_and_follows_pinned():
    with SimProcess("--protocol", "both") as sim:
        r = cli("monitor", "--port", url(sim), "--json", "--count", "1", "--protocol", "old", "--timeout", "15")
    assert r.returncode == 0, r.stderr
    assert statuses(r)[0]["link"]["protocol"] == "old"


def test_monitor_plain_lines_when_not_a_tty():
    with SimProcess("--current", "5") as sim:
        r = cli("monitor", "--port", url(sim), "--count", "2", "--timeout", "15")
    assert r.returncode == 0, r.stderr
    assert "\x1b[" not in r.stdout
    # --count 2: two data lines on stdout, nothing else there.
    statuses = r.stdout.splitlines()
    assert len(statuses) == 2
    assert all(" ok new " in line and "+5.0A" in line and "CHG on" in line for line in statuses)
    # While the tool listens before its first poll, a line a second on stderr says so.
    waiting = r.stderr.splitlines()
    assert len(waiting) <= 2 and all(" lost " in line and "Waiting for the BMS" in line for line in waiting)


def test_a_simulator_port_held_by_another_client_is_named_as_such():
    with SimProcess() as sim:
        holder = sim.connect()  # e.g. `make run`'s firmware
        try:
            for args in (("monitor", "--port", url(sim), "--count", "1", "--timeout", "10"),
                         ("control", "--port", url(sim), "charge-off", "--timeout", "10")):
                r = cli(*args)
                assert r.returncode == 1, r.stdout + r.stderr
                assert "the simulator already has a client" in r.stderr, r.stderr
                assert "port lost" not in r.stderr
            assert [k for k, _ in sim.read_frames(holder, 0, 0.1)] == [] and sim.state()["charge_mos"] == 1
            # The holder still has the port.
            holder.sendall(b"\x7e\xa1\x01\x00\x00\xbe\x18\x55\xaa\x55")
            assert len(sim.read_frames(holder, 1, 2.0)) == 1
        finally:
            holder.close()
        r = cli("monitor", "--port", url(sim), "--json", "--count", "1", "--timeout", "10")
        assert r.returncode == 0, r.stderr  # served once the holder has gone


def test_control_charge_off_then_on_is_confirmed_and_reaches_the_bms():
    with SimProcess("--protocol", "new") as sim:
        r = cli("control", "--port", url(sim), "charge-off", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.startswith("charge-off: ok")
        assert "charge MOS: manually switched off" in r.stdout
        state = sim.state()
        assert state["charge_mos"] == 15 and "charge-off" in state["commands"]
        r = cli("control", "--port", url(sim), "--json", "charge-on", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr
        result = json.loads(r.stdout)
        assert result["ok"] is True and result["command"] == "charge-on" and result["reason"] is None
        assert sim.state()["charge_mos"] == 1


def test_control_over_the_old_protocol_uses_the_echo():
    with SimProcess("--protocol", "old") as sim:
        r = cli("control", "--port", url(sim), "discharge-off", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr
        assert sim.state()["discharge_mos"] == 15
        r = cli("control", "--port", url(sim), "discharge-on", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr
        assert sim.state()["discharge_mos"] == 1


@pytest.mark.parametrize("protocol", ["new", "old"])
def test_password_protected_bms(protocol):
    with SimProcess("--protocol", protocol, "--password", "abc12345") as sim:
        r = cli("control", "--port", url(sim), "charge-off", "--timeout", "10")
        assert r.returncode == 1
        assert "charge-off: failed" in r.stdout and "password" in r.stdout
        assert "wrong" not in r.stdout
        assert sim.state()["charge_mos"] == 1
        r = cli("control", "--port", url(sim), "--password", "nope0000", "charge-off", "--timeout", "10")
        assert r.returncode == 1 and "wrong password" in r.stdout, r.stdout
        assert sim.state()["charge_mos"] == 1
        r = cli("control", "--port", url(sim), "--password", "abc12345", "charge-off", "--timeout", "10")
        assert r.returncode == 0, r.stdout + r.stderr
        assert sim.state()["charge_mos"] == 15
        assert "abc12345" not in r.stdout + r.stderr  # secrets are never printed


def test_monitor_against_a_silent_bms_gives_the_wiring_hint_and_fails():
    with SimProcess() as sim:
        sim.control("vcc 0")
        r = cli("monitor", "--port", url(sim), "--json", "--timeout", "4")
    assert r.returncode == 1
    assert "VCC" in r.stderr and "no status" in r.stderr
    last = statuses(r)[-1]
    assert last["live"] is False and last["pack_voltage_v"] is None
    assert last["link"]["state"] == "lost" and last["link"]["line"] == "silent"
    assert last["link"]["stats"]["frames_ok"] == 0 and last["link"]["stats"]["polls"] >= 4


def test_monitor_shows_a_link_going_stale_and_coming_back():
    with SimProcess() as sim:
        proc = subprocess.Popen(
            [sys.executable, CLI, "monitor", "--port", url(sim), "--json", "--count", "8", "--timeout", "20"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = json.loads(proc.stdout.readline())
        assert first["live"] is True
        sim.control("fault silent 4")
        out, err = proc.communicate(timeout=40)
    assert proc.returncode == 0, err
    rest = [json.loads(x) for x in out.splitlines()]
    # Fresh statuses are only printed when live; the gap shows as an age and
    # as timeouts in the statistics.
    assert all(d["live"] for d in rest)
    assert rest[-1]["link"]["stats"]["timeouts"] >= 2
    assert rest[-1]["link"]["last_error"]["error"] == "silent"  # no byte at all while stale


def test_monitor_and_control_over_the_pty_device():
    with SimProcess("--protocol", "new", pty=True) as sim:
        assert sim.pty and os.path.exists(sim.pty)
        r = cli("monitor", "--port", sim.pty, "--json", "--count", "2", "--timeout", "15")
        assert r.returncode == 0, r.stderr
        out = statuses(r)
        assert len(out) == 2 and out[0]["link"]["baud"] == 19200
        assert_matches_sim(out[-1], sim.state())
        r = cli("control", "--port", sim.pty, "balancer-on", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr


def test_usage_errors_exit_2_and_a_missing_port_exits_1():
    r = cli("control", "--port", "socket://127.0.0.1:1", "no-such-command")
    assert r.returncode == 2 and "invalid choice" in r.stderr
    r = cli("monitor", "--port", "socket://127.0.0.1:1", "--interval", "0")
    assert r.returncode == 2 and "--interval" in r.stderr
    r = cli("monitor", "--port", "/dev/does-not-exist", "--count", "1")
    assert r.returncode == 1 and "cannot open" in r.stderr


def test_control_against_a_silent_bms_fails_with_the_reason():
    with SimProcess() as sim:
        sim.control("vcc 0")
        start = time.monotonic()
        r = cli("control", "--port", url(sim), "charge-off", "--timeout", "4")
        assert time.monotonic() - start < 30
    assert r.returncode == 1 and "not answering" in r.stdout, r.stdout


def test_with_a_display_on_the_port_the_tool_listens_and_commands_in_the_gaps():
    with SimProcess("--faults", "display=1000") as sim:
        r = cli("monitor", "--port", url(sim), "--json", "--count", "4", "--timeout", "15")
        assert r.returncode == 0, r.stderr
        last = statuses(r)[-1]
        assert last["link"]["passive"] is True and last["link"]["line"] == "foreign"
        assert last["live"] is True and last["link"]["stats"]["foreign_frames"] >= 2
        r = cli("control", "--port", url(sim), "discharge-off", "--timeout", "15")
        assert r.returncode == 0, r.stdout + r.stderr
        state = sim.state()
    assert state["discharge_mos"] == 15
    assert state["collisions"] == 0  # never talked into the display's exchanges
    assert state["display_requests"] >= 4


def test_monitor_on_a_line_with_only_corrupted_frames_diagnoses_noise():
    with SimProcess() as sim:
        sim.control("fault flip 1")
        r = cli("monitor", "--port", url(sim), "--json", "--timeout", "5")
    assert r.returncode == 1
    last = statuses(r)[-1]
    assert last["link"]["line"] == "noise" and "baud" in last["link"]["hint"]
    stats = last["link"]["stats"]
    assert stats["frames_ok"] == 0 and stats["checksum_errors"] >= 2 and stats["bytes_dropped"] > 100
    assert "line noise" in r.stderr


def test_per_install_sign_inversion():
    with SimProcess("--current", "7.5") as sim:
        r = cli("monitor", "--port", url(sim), "--json", "--count", "1", "--invert-current", "--timeout", "15")
    assert r.returncode == 0, r.stderr
    d = statuses(r)[0]
    assert d["current_a"] == -7.5 and d["power_w"] < 0


def test_the_full_screen_view_shows_the_line_record():
    import antbms_serial
    from link.describe import snapshot
    from link.engine import LinkConfig, LinkEngine
    from link.model import LINK_OK, Model
    from linkharness import FakeBms, Harness

    config = LinkConfig()
    config.listen_first_ms = 300
    model = Model()
    engine = LinkEngine(model, config)
    bms = FakeBms()
    h = Harness(engine, bms)
    assert h.run_until(lambda: model.link == LINK_OK, 2000)
    bms.drop_pattern = (0, 1)
    h.run(20000)
    text = "\n".join(antbms_serial.render(snapshot(model, engine, h.now), "socket://x"))
    assert 40 <= engine.loss_pct() <= 60
    assert "loss %d %% of %d polls" % (engine.loss_pct(), engine.window()[0]) in text, text
    assert "reply 40 ms (timeout 500 ms)" in text and "Replies are intermittent" in text
