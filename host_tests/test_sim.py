# The simulated ANT BMS (tools/bmssim.py): end to end through its TCP port,
# pty and control port (via simproc), plus its sans-IO models directly.
import os
import random
import signal
import socket
import struct
import subprocess
import sys
import time

import pytest
import serial

from ant import commands, new, old
from ant.framer import KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS, Framer
from ant.status import TEMP_NONE, Status
from simproc import SIMULATOR, SimProcess

from sim.device import Config, Device
from sim.faults import Faults
from sim.pack import Pack
from sim.protection import Limits, Protection
from sim.wire import Wire, garble

NEW_STATUS = commands.status_request("new")
OLD_STATUS = commands.status_request("old")
REJECT = bytes.fromhex("a5a5f50001f6")
SLOW = "--time-scale", "0.001"  # frozen dynamics: frame and state can be compared exactly


def exchange(sim, sock, request, count=1, timeout=1.0):
    sock.sendall(request)
    return sim.read_frames(sock, count, timeout)


def decode(kind, frame):
    st = Status()
    if kind == KIND_NEW:
        assert new.decode_status(frame, 0, st) == 0
    else:
        assert kind == KIND_OLD_STATUS
        old.decode_status(frame, 0, st)
    return st


def wait_for(predicate, limit_s=3.0, step_s=0.05):
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step_s)
    return predicate()


def ack_result(frame):
    assert frame[2] == new.REPLY_CONTROL
    return frame[6]


# -- status frames of both generations ------------------------------------------


def test_new_status_frame_decodes_to_the_simulated_state():
    with SimProcess("--protocol", "new", "--cells", "16", "--temps", "2", "--current", "-20", *SLOW) as sim:
        sock = sim.connect()
        [(kind, frame)] = exchange(sim, sock, NEW_STATUS)
        state = sim.state()
        st = decode(kind, frame)
        assert len(frame) == new.status_frame_length(16, 2)
        assert st.cell_count == 16
        assert list(st.cells_mv[:16]) == state["cells_mv"]
        assert [st.temps_c[0], st.temps_c[1]] == state["temps_c"]
        assert st.probe_slots == 2
        assert st.current_da == -200 and state["current_a"] == -20.0
        raw_current = struct.unpack_from("<h", frame, 40 + 2 * 16 + 2 * 2)[0]
        assert raw_current == 200  # ANT's raw sign: positive = discharging
        assert st.pack_cv == sum(state["cells_mv"]) // 10
        assert st.power_w == round(st.pack_cv * st.current_da / 1000) < 0
        assert st.soc_pct == state["soc_pct"] == 70
        assert (st.charge_mos, st.discharge_mos, st.balancer) == (
            state["charge_mos"],
            state["discharge_mos"],
            state["balancer"],
        ) == (1, 1, 0)
        assert st.capacity_mah == 100000 and st.chemistry == 0xFAF2
        assert state["requests"] == 1


def test_old_status_frame_decodes_and_unfitted_probes_read_as_configured():
    with SimProcess("--protocol", "old", "--cells", "20", "--temps", "3", "--unfitted", "-30", *SLOW) as sim:
        sock = sim.connect()
        for request in commands.OLD_STATUS_REQUESTS:
            [(kind, frame)] = exchange(sim, sock, request)
            assert kind == KIND_OLD_STATUS and len(frame) == 140
        state = sim.state()
        st = decode(kind, frame)
        assert st.cell_count == 20
        assert list(st.cells_mv[:20]) == state["cells_mv"]
        assert list(st.temps_c[:3]) == state["temps_c"]
        assert st.temps_c[3] == -30  # the unfitted fourth slot, like a real 22S unit
        assert st.current_da == 0 and st.soc_pct == 70
        assert state["requests"] == 3
        assert exchange(sim, sock, NEW_STATUS, timeout=0.4) == []  # an old unit ignores 7E A1


def test_both_protocols_answered_and_protocol_switch_at_run_time():
    with SimProcess("--protocol", "both", *SLOW) as sim:
        sock = sim.connect()
        assert [k for k, _ in exchange(sim, sock, NEW_STATUS)] == [KIND_NEW]
        assert [k for k, _ in exchange(sim, sock, OLD_STATUS)] == [KIND_OLD_STATUS]
        assert sim.control("protocol new") == {"ok": True}
        assert exchange(sim, sock, OLD_STATUS, timeout=0.4) == []
        assert sim.control("protocol sideways")["ok"] is False


def test_bytes_leave_at_wire_speed_after_a_reply_latency():
    with SimProcess("--protocol", "old") as sim:
        sock = sim.connect()
        sock.settimeout(1.0)
        sent = time.monotonic()
        sock.sendall(OLD_STATUS)
        got = bytearray()
        arrivals = []
        while len(got) < 140:
            chunk = sock.recv(4096)
            assert chunk
            arrivals.append(time.monotonic())
            got += chunk
        assert len(got) == 140
        assert arrivals[0] - sent >= 0.020  # the shortest reply latency
        assert arrivals[-1] - arrivals[0] >= 0.060  # 140 bytes x 0.52 ms
        assert len(arrivals) >= 4  # paced in small chunks, not one burst


# -- passwords and controls --------------------------------------------------------


def test_old_password_gates_controls():
    with SimProcess("--protocol", "old", "--password", "12345678") as sim:
        sock = sim.connect()
        charge_off = commands.control("charge-off", "old")
        assert exchange(sim, sock, charge_off) == [(KIND_OLD_SHORT, REJECT)]
        state = sim.state()
        assert state["rejected"] == 1 and state["charge_mos"] == 1 and state["commands"] == []
        wrong = commands.password("old", "87654321")
        assert [f for _, f in exchange(sim, sock, wrong, count=4)] == [REJECT] * 4
        right = commands.password("old", "12345678")
        assert [f for _, f in exchange(sim, sock, right, count=4)] == [REJECT] * 3 + [right[18:]]
        assert exchange(sim, sock, charge_off) == [(KIND_OLD_SHORT, charge_off)]
        state = sim.state()
        assert state["charge_mos"] == 15 and state["commands"] == ["charge-off"] and state["rejected"] == 1


def test_new_password_gates_controls():
    with SimProcess("--protocol", "new", "--password", "123456789abc") as sim:
        sock = sim.connect()
        discharge_off = commands.control("discharge-off", "new")
        [(_, ack)] = exchange(sim, sock, discharge_off)
        assert ack_result(ack) == 3
        assert sim.state()["discharge_mos"] == 1
        [(_, reply)] = exchange(sim, sock, commands.password("new", "wrong"))
        assert reply == new.frame(new.REPLY_PASSWORD, new.PASSWORD_ADDR, 2, b"\x00\x00")
        [(_, reply)] = exchange(sim, sock, commands.password("new", "123456789abc"))
        assert reply == bytes.fromhex("7ea1436a010205001e5caa55")  # the captured level-5 grant
        [(_, ack)] = exchange(sim, sock, discharge_off)
        assert ack_result(ack) == 1
        state = sim.state()
        assert state["discharge_mos"] == 15 and state["rejected"] == 1 and state["commands"] == ["discharge-off"]
        assert sim.control("password none") == {"ok": True}


def test_new_controls_change_state_and_status_frame():
    with SimProcess("--protocol", "new", *SLOW) as sim:
        sock = sim.connect()
        for name in ("charge-off", "discharge-off", "balancer-on", "buzzer-off"):
            [(_, ack)] = exchange(sim, sock, commands.control(name, "new"))
            assert ack_result(ack) == 1 and ack[3] == commands.CONTROLS[name][1]
        state = sim.state()
        assert (state["charge_mos"], state["discharge_mos"], state["balancer"], state["buzzer"]) == (15, 15, 4, False)
        [(kind, frame)] = exchange(sim, sock, NEW_STATUS)
        st = decode(kind, frame)
        assert (st.charge_mos, st.discharge_mos, st.balancer) == (15, 15, 4)
        assert st.protection[2] == 0x22  # observed bits: charge (5) and discharge (1) manually off
        assert st.warning[3] == 0x20  # observed: manual balancing
        for name in ("charge-on", "discharge-on", "balancer-off"):
            exchange(sim, sock, commands.control(name, "new"))
        state = sim.state()
        assert (state["charge_mos"], state["discharge_mos"], state["balancer"]) == (1, 1, 0)
        assert state["commands"] == [
            "charge-off", "discharge-off", "balancer-on", "buzzer-off", "charge-on", "discharge-on", "balancer-off",
        ]
        # 0x51 with an unknown register: ACK "failed", nothing recorded
        [(_, ack)] = exchange(sim, sock, new.frame(new.FN_CONTROL, 0x77, 0))
        assert ack_result(ack) == 2


def test_old_controls_echo_and_balancer_toggle_echoes_new_state():
    with SimProcess("--protocol", "old", *SLOW) as sim:
        sock = sim.connect()
        for name in ("charge-off", "discharge-off"):
            frame = commands.control(name, "old")
            assert exchange(sim, sock, frame) == [(KIND_OLD_SHORT, frame)]
        toggle = commands.control("balancer-toggle", "old")
        [(_, first)] = exchange(sim, sock, toggle)
        [(_, second)] = exchange(sim, sock, toggle)
        assert first == bytes(old.short_frame(0xA5, 0xFC, 0))  # auto balancing was on: now off
        assert second == bytes(old.short_frame(0xA5, 0xFC, 1))
        state = sim.state()
        assert (state["charge_mos"], state["discharge_mos"]) == (15, 15)
        assert state["commands"] == ["charge-off", "discharge-off", "balancer-toggle", "balancer-toggle"]


def test_parameters_and_device_info():
    with SimProcess("--protocol", "both", *SLOW) as sim:
        sock = sim.connect()
        [(_, reply)] = exchange(sim, sock, commands.read_param("new", 0x0000))
        assert reply[2] == new.REPLY_READ and struct.unpack_from("<H", reply, 6)[0] == 3650
        assert new.reply_trailer_code(reply, 0, len(reply)) == 0x0B
        write, save = commands.write_param("new", 0x0000, 3600)
        [(_, reply)] = exchange(sim, sock, write)
        assert reply[2] == new.REPLY_WRITE and new.reply_trailer_code(reply, 0, len(reply)) == 0x0A
        [(_, ack)] = exchange(sim, sock, save)
        assert ack_result(ack) == 1
        assert sim.state()["limits"]["cell_ov_mv"] == 3600
        [(_, reply)] = exchange(sim, sock, commands.read_param("old", 3))
        assert reply == bytes(old.short_frame(0x5A, 3, 3600))  # one table behind both generations
        write, apply = commands.write_param("old", 5, 3500)
        assert exchange(sim, sock, write + apply, count=2) == [(KIND_OLD_SHORT, write), (KIND_OLD_SHORT, apply)]
        assert sim.state()["limits"]["cell_ov_recover_mv"] == 3500
        [(_, reply)] = exchange(sim, sock, commands.read_param("old", 0x77))
        assert reply == bytes(old.short_frame(0x5A, 0x77, 0xFFFF))  # unknown register
        [(_, info)] = exchange(sim, sock, commands.device_info_request())
        assert len(info) == 48 and info.endswith(bytes.fromhex("ff0b000041f2aa55"))
        assert new.ascii_field(info, 6, 22) == "16ZMB0TB120A"
        assert new.ascii_field(info, 22, 38) == "16ZMUB00-211026A"


# -- power, sleep, reboot -----------------------------------------------------------


def test_reboot_is_silent_for_three_seconds_then_answers():
    with SimProcess("--protocol", "new") as sim:
        sock = sim.connect()
        assert exchange(sim, sock, commands.control("reboot", "new"), timeout=0.4) == []  # no ACK
        started = time.monotonic()
        assert sim.state()["awake"] is False
        assert exchange(sim, sock, NEW_STATUS, timeout=0.8) == []
        answered = None
        while time.monotonic() - started < 6:
            if exchange(sim, sock, NEW_STATUS, timeout=0.3):
                answered = time.monotonic() - started
                break
        assert answered is not None and answered >= 2.5
        assert sim.state()["commands"] == ["reboot"]


def test_sleep_after_idle_wakes_by_acc_or_charge_current_and_deep_sleep_needs_acc():
    with SimProcess("--protocol", "new", "--idle-sleep-s", "0.5") as sim:
        sock = sim.connect()
        assert exchange(sim, sock, NEW_STATUS)
        assert wait_for(lambda: sim.state()["sleep"] == "sleep")
        assert exchange(sim, sock, NEW_STATUS, timeout=0.4) == []
        assert sim.state()["unanswered"] >= 1
        sim.control("acc 1")
        assert sim.state()["sleep"] == "awake"
        assert exchange(sim, sock, NEW_STATUS)
        time.sleep(0.8)
        assert sim.state()["sleep"] == "awake"  # ACC high keeps it awake
        sim.control("acc 0")
        sim.control("sleep")
        sim.control("current 5")  # a charger appears
        assert wait_for(lambda: sim.state()["sleep"] == "awake")
        sim.control("current 0")
        sim.control("deepsleep")
        sim.control("current 5")
        time.sleep(0.3)
        assert sim.state()["sleep"] == "deep"  # a charger does not wake deep sleep
        assert exchange(sim, sock, NEW_STATUS, timeout=0.4) == []
        sim.control("acc 1")
        assert sim.state()["sleep"] == "awake"
        assert exchange(sim, sock, NEW_STATUS)


def test_shutdown_control_enters_deep_sleep():
    with SimProcess("--protocol", "old") as sim:
        sock = sim.connect()
        shutdown = commands.control("shutdown", "old")
        assert exchange(sim, sock, shutdown) == [(KIND_OLD_SHORT, shutdown)]
        assert sim.state()["sleep"] == "deep"
        assert exchange(sim, sock, OLD_STATUS, timeout=0.4) == []


def test_vcc_off_is_completely_silent():
    with SimProcess("--protocol", "new", "--faults", "display=100") as sim:
        sock = sim.connect()
        sim.control("vcc 0")
        sock.sendall(NEW_STATUS)
        assert sim.read_raw(sock, 0.5) == b""  # not even the display's traffic
        state = sim.state()
        assert state["awake"] is False and state["rx_ignored"] >= len(NEW_STATUS) and state["requests"] == 0
        sim.control("vcc 1")
        sim.control("fault display 0")
        assert exchange(sim, sock, NEW_STATUS)


def test_a_forced_vcc_fault_outlives_the_bridges_supply_cycles():
    # `vcc` is the user's fault (a cut VCC wire); `supply` is the bridge's
    # supply enable. The TTL side is powered only with both on, and switching
    # the supply off and on (a power cycle) never clears a forced vcc 0.
    with SimProcess("--protocol", "new") as sim:
        sock = sim.connect()
        state = sim.state()
        assert (state["vcc"], state["supply"], state["powered"]) == (1, 1, True)
        assert sim.control("supply 0") == {"ok": True}
        assert exchange(sim, sock, NEW_STATUS, timeout=0.4) == []
        assert sim.control("supply 1") == {"ok": True}
        assert exchange(sim, sock, NEW_STATUS)
        assert sim.control("vcc 0") == {"ok": True}
        for _ in range(3):  # the bridge's power cycles
            sim.control("supply 0")
            sim.control("supply 1")
        state = sim.state()
        assert (state["vcc"], state["supply"], state["powered"], state["awake"]) == (0, 1, False, False)
        assert exchange(sim, sock, NEW_STATUS, timeout=0.4) == []
        assert sim.control("vcc 1") == {"ok": True}
        assert exchange(sim, sock, NEW_STATUS)
        assert sim.control("supply 2")["ok"] is False


def test_recent_requests_name_their_source_on_the_simulators_clock():
    with SimProcess("--protocol", "new", "--faults", "display=500") as sim:
        sock = sim.connect()
        assert wait_for(lambda: sim.state()["display_requests"] >= 2)
        for _ in range(10):  # a request during the display's exchange is lost: try again
            sock.sendall(NEW_STATUS)
            if wait_for(lambda: sim.state()["requests"] >= 1, 0.3):
                break
        log = sim.state()["recent_requests"]
        assert {source for _, source in log} == {"display", "bridge"}
        times = [t for t, _ in log]
        assert times == sorted(times) and times[0] >= 0


def test_bridge_baud_mismatch_never_yields_a_valid_frame():
    with SimProcess("--protocol", "new", "--faults", "display=150") as sim:
        sock = sim.connect()
        assert sim.control("bridge_baud 9600") == {"ok": True}
        sock.sendall(NEW_STATUS)
        raw = sim.read_raw(sock, 1.0)
        assert len(raw) > 20  # the display's exchanges, garbled
        framer = Framer()
        framer.feed(raw)
        assert not framer.kind and not framer.flush()
        state = sim.state()
        assert state["requests"] == 0 and state["rx_ignored"] == len(NEW_STATUS)
        sim.control("bridge_baud 19200")
        sim.control("fault clear")
        time.sleep(0.4)
        sim.read_raw(sock, 0.1)
        assert [k for k, _ in exchange(sim, sock, NEW_STATUS)] == [KIND_NEW]


# -- faults ----------------------------------------------------------------------------


def test_fault_drop_from_the_command_line():
    with SimProcess("--protocol", "new", "--faults", "drop=1") as sim:
        sock = sim.connect()
        assert sim.read_raw(sock, 0.01) == b""
        sock.sendall(NEW_STATUS)
        assert sim.read_raw(sock, 0.5) == b""
        state = sim.state()
        assert state["faults"]["drop"] == 1.0 and state["fault_counts"]["dropped"] == 1
        sim.control("fault clear")
        assert exchange(sim, sock, NEW_STATUS)


def _one_reply(sim, sock, request=NEW_STATUS):
    sock.sendall(request)
    return sim.read_raw(sock, 0.4)


def test_fault_kinds_at_run_time():
    with SimProcess("--protocol", "new", "--cells", "16", "--temps", "2", *SLOW) as sim:
        sock = sim.connect()
        length = new.status_frame_length(16, 2)
        assert len(_one_reply(sim, sock)) == length

        sim.control("fault truncate 1")
        raw = _one_reply(sim, sock)
        assert 0 < len(raw) < length
        framer = Framer()
        framer.feed(raw)
        assert not framer.kind and not framer.flush()

        sim.control("fault clear")
        sim.control("fault flip 1")
        raw = _one_reply(sim, sock)
        framer = Framer()
        framer.feed(raw)
        assert len(raw) == length and not framer.kind and not framer.flush()

        sim.control("fault clear")
        sim.control("fault garbage 1")
        raw = _one_reply(sim, sock)
        framer = Framer()
        framer.feed(raw)
        assert len(raw) > length and framer.kind == KIND_NEW and framer.dropped_bytes == len(raw) - length

        sim.control("fault clear")
        sim.control("fault delay 400")
        sent = time.monotonic()
        sock.sendall(NEW_STATUS)
        sock.settimeout(2.0)
        assert sock.recv(4096)
        assert time.monotonic() - sent >= 0.4

        sim.read_raw(sock, 0.5)
        sim.control("fault clear")
        sim.control("fault silent 0.6")
        assert sim.state()["awake"] is False
        assert _one_reply(sim, sock) == b""
        time.sleep(0.3)
        assert len(_one_reply(sim, sock)) == length

        counts = sim.state()["fault_counts"]
        assert counts["truncated"] == 1 and counts["flipped"] == 1 and counts["garbage_bytes"] > 0
        assert sim.control("fault bogus 1")["ok"] is False
        assert sim.control("fault drop 2")["ok"] is False


def test_display_traffic_appears_with_requests_and_replies_and_collisions_are_counted():
    with SimProcess("--protocol", "new", "--faults", "display=400", *SLOW) as sim:
        sock = sim.connect()
        frames = sim.read_frames(sock, count=5, timeout=3.0)
        functions = [f[2] for kind, f in frames if kind == KIND_NEW]
        functions = functions[functions.index(new.FN_STATUS) :][:4]  # in case we joined mid-exchange
        assert functions == [new.FN_STATUS, new.REPLY_STATUS] * 2  # each request, then its reply
        # keep talking while the display polls: some requests collide with its
        # exchanges, the others are answered
        deadline = time.monotonic() + 3.0
        while time.monotonic() < deadline:
            state = sim.state()
            if state["collisions"] and state["requests"]:
                break
            sock.sendall(NEW_STATUS)
            time.sleep(0.03)
        assert state["collisions"] > 0 and state["requests"] > 0 and state["display_requests"] >= 2


# -- protections -------------------------------------------------------------------------


def test_protections_switch_mosfets_with_reference_codes_and_recover_with_hysteresis():
    with SimProcess("--protocol", "both", *SLOW) as sim:
        sock = sim.connect()
        sim.control("cell 3 3700")
        state = sim.state()
        assert state["charge_mos"] == 2 and state["discharge_mos"] == 1
        assert state["protection"] == ["cell_overvoltage"]
        [(kind, frame)] = exchange(sim, sock, NEW_STATUS)
        assert decode(kind, frame).protection[0] & 0x02  # observed: byte 10 bit 1 with code 2
        [(kind, frame)] = exchange(sim, sock, OLD_STATUS)
        st = decode(kind, frame)
        assert st.charge_mos == 2 and st.syslog & 0x1F == 2 and (st.syslog >> 5) & 0x1F == 3
        sim.control("cell 3 3600")
        assert sim.state()["charge_mos"] == 2  # above the 3550 mV recovery level
        sim.control("cell 3 auto")
        assert sim.state()["charge_mos"] == 1 and sim.state()["protection"] == []

        sim.control("cell 5 2400")
        assert sim.state()["discharge_mos"] == 2
        sim.control("cell 5 auto")
        sim.control("temp 1 70")
        state = sim.state()
        assert (state["charge_mos"], state["discharge_mos"]) == (6, 6)
        sim.control("temp 1 -25")
        state = sim.state()
        assert (state["charge_mos"], state["discharge_mos"]) == (17, 17)
        sim.control("temp 1 auto")
        sim.control("temp mosfet 95")
        assert (sim.state()["charge_mos"], sim.state()["discharge_mos"]) == (7, 7)
        sim.control("temp mosfet 85")
        assert sim.state()["charge_mos"] == 7  # recovers only below 80
        sim.control("temp mosfet auto")
        assert sim.state()["protection"] == []


def test_overcurrent_trips_after_its_delay_and_stops_the_current():
    with SimProcess("--protocol", "new", "--current", "-250", "--time-scale", "20") as sim:
        assert wait_for(lambda: sim.state()["discharge_mos"] == 3)
        state = sim.state()
        assert state["current_a"] == 0.0 and state["demand_a"] == -250.0
        assert "discharge_overcurrent" in state["protection"]


def test_charging_to_full_trips_cell_overvoltage_and_balances_top_cells():
    with SimProcess("--protocol", "new", "--soc", "99", "--profile", "charge", "--time-scale", "300") as sim:
        assert wait_for(lambda: sim.state()["charge_mos"] == 2, limit_s=5)
        state = sim.state()
        assert max(state["cells_mv"]) >= 3550 and state["soc_pct"] == 100
        assert state["balancer"] == 4 and state["balancing_mask"] != 0
        top = state["cells_mv"].index(max(state["cells_mv"]))
        assert state["balancing_mask"] >> top & 1


# -- ports and robustness ---------------------------------------------------------------


def test_pty_works_with_pyserial():
    with SimProcess("--protocol", "new", "--cells", "8", pty=True) as sim:
        assert os.path.islink(sim.pty)
        with serial.Serial(sim.pty, 19200, timeout=1.0) as port:
            port.reset_input_buffer()
            port.write(NEW_STATUS)
            data = port.read(new.status_frame_length(8, 2))
        framer = Framer()
        framer.feed(data)
        assert framer.kind == KIND_NEW and decode(KIND_NEW, data).cell_count == 8
        path = sim.pty
    assert not os.path.lexists(path)


def test_garbage_input_and_disconnects_do_not_crash_it():
    with SimProcess("--protocol", "both", "--password", "1234") as sim:
        rng = random.Random(7)
        sock = sim.connect()
        blob = bytearray(rng.randrange(256) for _ in range(30000))
        for at in range(0, len(blob), 997):  # headers inside the noise
            blob[at : at + 2] = rng.choice((b"\x7e\xa1", b"\xaa\x55", b"\x5a\x5a", b"\xa5\xa5", b"\xdb\xdb"))
        sock.sendall(bytes(blob))
        sock.close()  # mid-stream
        ctl = socket.create_connection(("127.0.0.1", sim.control_port))
        ctl.sendall(b"\xff\xfe\x00 garbage\n" + b"x" * 10000 + b"\n")
        ctl.close()
        sock = sim.connect()
        time.sleep(0.3)
        sim.read_raw(sock, 0.3)
        assert [k for k, _ in exchange(sim, sock, NEW_STATUS)] == [KIND_NEW]
        assert sim.proc.poll() is None
        assert sim.control("state")["ok"] is True


def test_one_client_at_a_time_a_second_is_refused_with_a_reason():
    from sim.server import BUSY

    with SimProcess("--protocol", "new") as sim:
        first = sim.connect()
        second = sim.connect()
        assert sim.read_raw(second, 1.0) == BUSY  # then closed
        assert not any(b in BUSY for b in (0x7E, 0xAA, 0x5A, 0xA5, 0xDB))  # noise to a bridge, never a frame
        assert [k for k, _ in exchange(sim, first, NEW_STATUS)] == [KIND_NEW]  # the first keeps the port
        first.close()
        third = sim.connect()  # served: the first has gone (waited for while it leaves)
        assert [k for k, _ in exchange(sim, third, NEW_STATUS)] == [KIND_NEW]


def test_the_cli_recognises_the_simulators_refusal():
    import antbms_serial
    from sim.server import BUSY

    assert BUSY.startswith(antbms_serial._SIM_BUSY)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_clean_exit_on_signal(sig):
    sim = SimProcess("--protocol", "new", pty=True).start()
    path = sim.pty
    sim.proc.send_signal(sig)
    assert sim.proc.wait(5) == 0
    assert not os.path.lexists(path)
    sim.stop()


def test_help_and_bad_arguments():
    out = subprocess.run([sys.executable, SIMULATOR, "--help"], capture_output=True, text=True)
    assert out.returncode == 0
    for word in ("--tcp", "--control", "--pty", "--faults", "--protocol", "--time-scale", "help"):
        assert word in out.stdout
    bad = subprocess.run([sys.executable, SIMULATOR, "--cells", "40"], capture_output=True, text=True)
    assert bad.returncode == 2 and "--cells" in bad.stderr
    bad = subprocess.run([sys.executable, SIMULATOR, "--faults", "drop=3"], capture_output=True, text=True)
    assert bad.returncode == 2 and "drop" in bad.stderr


def test_values_no_frame_can_carry_are_refused_with_the_reason():
    for args, word in ((("--capacity-ah", "4300"), "4294.967"), (("--current", "-3300"), "3276.7"),
                       (("--current", "3276.8"), "3276.7")):
        bad = subprocess.run([sys.executable, SIMULATOR] + list(args), capture_output=True, text=True)
        assert bad.returncode == 2 and args[0] in bad.stderr and word in bad.stderr, bad.stderr
    with SimProcess("--protocol", "new", "--capacity-ah", "4294.967", *SLOW) as sim:
        reply = sim.control("current -3300")
        assert reply["ok"] is False and "3276.7" in reply["error"]
        for target in ("1", "mosfet"):
            reply = sim.control("temp %s -40" % target)
            assert reply["ok"] is False and "absent" in reply["error"]
        assert sim.control("current -3276.7")["ok"]
        sock = sim.connect()
        st = decode(*exchange(sim, sock, NEW_STATUS)[0])
        assert st.current_da == -32767 and sim.state()["current_a"] == -3276.7
        assert st.capacity_mah * 1000 + st.capacity_uah == 4294967000


def test_a_frame_reports_what_the_protections_see():
    # A fitted probe as cold as the frames can say (-39 °C): the frame shows
    # it, and the low-temperature protection acts on the same value.
    with SimProcess("--protocol", "new", *SLOW) as sim:
        assert sim.control("temp 1 -39")["ok"]
        sock = sim.connect()
        st = decode(*exchange(sim, sock, NEW_STATUS)[0])
        assert st.temps_c[0] == -39
        protection = sim.state()["protection"]
        assert any("temperature" in name for name in protection), protection


# -- the models without I/O ------------------------------------------------------------


def test_soc_integrates_current_in_simulated_time():
    dev = Device(Config(soc=50.0, current=100.0, time_scale=10.0, capacity_ah=100.0), now=0.0)
    t = 0.0
    while t < 3.6:  # 36 simulated seconds at 100 A = 1 Ah = 1 %
        t += 0.05
        dev.tick(t)
    assert abs(dev.pack.soc_exact - 51.0) < 0.02
    assert dev.state()["current_a"] == 100.0


def test_wire_paces_whole_bytes_at_the_baud_rate():
    wire = Wire(19200)
    done = []
    wire.send(bytes(range(100)), due=1.0, on_done=done.append)
    assert wire.pump(0.999) == b""
    first = wire.pump(1.0 + 10 * 10 / 19200)
    assert first == bytes(range(10))
    rest = wire.pump(2.0)
    assert first + rest == bytes(range(100)) and done == [pytest.approx(1.0 + 1000 / 19200)]


def test_garbled_frames_never_form_a_frame():
    framer = Framer()
    for request in (NEW_STATUS, OLD_STATUS, bytes(old.short_frame(0xA5, 0xFA, 1))):
        for seen in (9600, 38400, 115200, 4800):
            framer.feed(garble(request * 5, 19200, seen))
            assert not framer.kind
    assert not framer.flush()


def test_same_seed_same_faults_and_pack():
    def decisions(seed):
        f = Faults(seed)
        f.parse("drop=0.3,truncate=0.3,flip=0.3,garbage=0.3", 0.0)
        return [f.apply(NEW_STATUS) for _ in range(50)]

    assert decisions(1) == decisions(1) != decisions(2)
    assert Pack(seed=5).cells_mv() == Pack(seed=5).cells_mv() != Pack(seed=6).cells_mv()


def test_protection_hysteresis_in_isolation():
    prot = Protection(Limits())
    cells = [3300] * 16
    prot.evaluate(0.0, cells, [25], 25, 0.0, True, True)
    assert prot.charge_code() == 0
    cells[0] = 3650
    prot.evaluate(1.0, cells, [25], 25, 0.0, True, True)
    assert prot.charge_code() == 2 and prot.discharge_code() == 0
    cells[0] = 3551
    prot.evaluate(2.0, cells, [25], 25, 0.0, True, True)
    assert prot.charge_code() == 2
    cells[0] = 3549
    prot.evaluate(3.0, cells, [25], 25, 0.0, True, True)
    assert prot.charge_code() == 0 and prot.trips == 1


def test_temp_none_is_not_leaked_into_old_frames():
    dev = Device(Config(protocol="old", temps=0, unfitted=0), now=0.0)
    st = decode(KIND_OLD_STATUS, dev.status_frame("old"))
    assert list(st.temps_c[:4]) == [0, 0, 0, 0]
    dev = Device(Config(protocol="old", temps=1), now=0.0)
    st = decode(KIND_OLD_STATUS, dev.status_frame("old"))
    assert st.temps_c[0] == 25 and st.temps_c[1] == TEMP_NONE


def test_cycle_profile_charges_to_full_then_discharges():
    dev = Device(Config(profile="cycle", soc=97.0, time_scale=500.0), now=0.0)
    signs = []
    t = 0.0
    while t < 20.0:
        t += 0.05
        dev.tick(t)
        sign = (dev.pack.current_a > 0) - (dev.pack.current_a < 0)
        if not signs or signs[-1] != sign:
            signs.append(sign)
    assert signs[:2] == [1, -1]
    assert dev.pack.soc_exact < 97.0


def test_random_profile_is_deterministic_with_a_seed():
    def currents(seed):
        dev = Device(Config(profile="random", seed=seed, time_scale=50.0), now=0.0)
        out = []
        for i in range(1, 200):
            dev.tick(i * 0.05)
            out.append(dev.state()["demand_a"])
        return out

    first = currents(3)
    assert first == currents(3) != currents(4)
    assert len(set(first)) > 2


def test_every_request_shape_is_handled_without_error():
    from ant import commands as c

    rng = random.Random(11)
    for password in (None, "abc"):
        dev = Device(Config(protocol="both", password=password), now=0.0)
        t = 0.0
        frames = [c.control(n, p) for n in c.CONTROLS for p in ("old", "new") if c.supported(n, p)]
        for _ in range(300):
            frames.append(c.read_param("new", rng.randrange(0x10000), rng.randrange(1, 256)))
            frames.append(c.read_param("old", rng.randrange(256)))
            addr = rng.randrange(0x10000)
            frames.extend(c.write_param("new", addr, rng.randrange(0x10000)))
            frames.extend(c.write_param("old", rng.randrange(256), rng.randrange(0x10000)))
            frames.append(c.password("new", "x" * rng.randrange(1, 17)))
        frames += [c.device_info_request(), c.block_request(), c.system_info_request(), c.password("old", "abc")]
        rng.shuffle(frames)
        for frame in frames:
            t += 0.2
            dev.power.wake(t)  # shutdown/reboot controls must not hide the rest
            dev.power.reboot_until = None
            dev.receive(frame, t)
            dev.tick(t)
            dev.pump(t + 1.0)
        import json

        json.dumps(dev.state())
        assert dev.requests == 0 and len(dev.commands) + dev.rejected > 0


def test_new_frames_announce_probe_slots_and_unfitted_slots_read_minus_40():
    dev = Device(Config(protocol="new", temps=1, temp_slots=4), now=0.0)
    frame = dev.status_frame("new")
    st = decode(KIND_NEW, frame)
    assert st.probe_slots == 4 and st.temps_c[0] == 25
    assert [struct.unpack_from("<h", frame, 34 + 2 * 16 + 2 * i)[0] for i in range(1, 4)] == [-40] * 3
