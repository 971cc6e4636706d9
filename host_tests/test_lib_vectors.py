# mp-heap: 128K
# Every captured vector of the protocol reference against the library:
# status values, rejections with their reason, byte-exact encoders, and the
# decode -> build -> decode round trip. Runs under CPython and MicroPython.
from ant import commands, new, old
from ant.describe import frame_dict, status_dict
from ant.framer import REASONS, KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS, Framer
from ant.status import MAX_CELLS, MAX_PROBES, TEMP_NONE, Status
from vectorset import unhex, vectors


def frames_of(data, chunk=0):
    """[(kind, bytes)] the framer finds in data, fed in chunks of `chunk`
    bytes (all at once for 0), then flushed; and the framer."""
    framer = Framer()
    out = []
    size = chunk or len(data) or 1
    for start in range(0, len(data), size):
        end = min(start + size, len(data))
        pos = start
        while True:
            pos = framer.feed(data, pos, end)
            if not framer.kind:
                break
            out.append((framer.kind, bytes(framer.buf[framer.start : framer.start + framer.length])))
    while framer.flush():
        out.append((framer.kind, bytes(framer.buf[framer.start : framer.start + framer.length])))
    return out, framer


def single_frame(data):
    found, framer = frames_of(data)
    assert len(found) == 1, "expected one frame, got %d" % len(found)
    assert framer.dropped_bytes == 0
    assert found[0][1] == data
    return found[0][0]


def _float_epsilon():
    eps = 1.0
    while 1.0 + eps / 2 != 1.0:
        eps /= 2
    return eps


# 2**-52 on CPython, 2**-23 on the ESP32 (single-precision floats): a decoded
# 19276.387 Ah is 19276.387 +- 0.002 there.
FLOAT_EPS = _float_epsilon()


def near(a, b):
    return a is not None and b is not None and abs(a - b) < 1e-6 + 4 * FLOAT_EPS * abs(b)


def raw_temp(t):
    return -40 if t is None else t


def hex16(v):
    return "0x%04X" % v


def hex32(hi, lo):
    return "0x%04X%04X" % (hi, lo)


def is_status(v):
    e = v["expected"]
    return "cell_voltages_v" in e and e.get("valid_frame", True) and "frames" not in e


# Expected keys that describe the capture, not a decoded value.
META = (
    "frame_length", "header_ok", "checksum_field", "checksum_calculated", "checksum_ok",
    "data_len_field", "length_ok", "crc_field", "crc_calculated", "crc_ok", "function",
)
# Reserved bytes the reference leaves undecoded (always 0 in captures).
UNDECODED = ("bytes_26_33", "byte49")


def check_old_status(e, d, st, data):
    checks = {
        "total_voltage_v": lambda: near(d["pack_voltage_v"], e["total_voltage_v"]),
        "cell_count": lambda: d["cell_count"] == e["cell_count"],
        "cell_voltages_v": lambda: d["cell_voltages_v"] == e["cell_voltages_v"],
        # ANT's raw sign is positive while discharging; ours is the opposite.
        "current_a_raw_sign": lambda: near(-d["current_a"], e["current_a_raw_sign"]),
        "power_w": lambda: -d["power_w"] == e["power_w"],
        "soc_pct": lambda: d["soc_pct"] == e["soc_pct"],
        "capacity_ah": lambda: near(d["capacity_ah"], e["capacity_ah"]),
        "remaining_capacity_ah": lambda: near(d["remaining_ah"], e["remaining_capacity_ah"]),
        "cycle_capacity_ah": lambda: near(d["cycle_ah"], e["cycle_capacity_ah"]),
        "runtime_s": lambda: d["runtime_s"] == e["runtime_s"],
        # Offsets 91, 93, 95..101: MOSFET, balancer board, probes 1-4.
        "temperatures_c": lambda: [raw_temp(d["mosfet_temp_c"]), raw_temp(d["balancer_temp_c"])]
        + [raw_temp(t) for t in d["temperatures_c"]]
        == e["temperatures_c"],
        "charge_mos_code": lambda: d["charge_mos"]["code"] == e["charge_mos_code"],
        "discharge_mos_code": lambda: d["discharge_mos"]["code"] == e["discharge_mos_code"],
        "balancer_code": lambda: d["balancer"]["code"] == e["balancer_code"],
        "tire_length_mm": lambda: st.tire_mm == e["tire_length_mm"],
        "pulses_per_week": lambda: st.pulses == e["pulses_per_week"],
        "relay_byte": lambda: st.relay == e["relay_byte"],
        "max_cell_index": lambda: d["cell_max_index"] == e["max_cell_index"],
        "max_cell_v": lambda: near(d["cell_max_v"], e["max_cell_v"]),
        "min_cell_index": lambda: d["cell_min_index"] == e["min_cell_index"],
        "min_cell_v": lambda: near(d["cell_min_v"], e["min_cell_v"]),
        "avg_cell_v": lambda: near(d["cell_avg_v"], e["avg_cell_v"]),
        "ds_voltage_raw": lambda: st.ds_raw == e["ds_voltage_raw"],
        "drive_voltage_discharge_raw": lambda: st.discharge_gate_dv == e["drive_voltage_discharge_raw"],
        "drive_voltage_charge_raw": lambda: st.charge_gate_dv == e["drive_voltage_charge_raw"],
        "comparator_zero_raw": lambda: st.comparator_raw == e["comparator_zero_raw"],
        "balance_bitmask": lambda: hex32(st.balancing_hi, st.balancing_lo) == e["balance_bitmask"],
        "syslog_word": lambda: hex16(st.syslog) == e["syslog_word"],
        "frame_length": lambda: len(data) == e["frame_length"] == 140,
        "checksum_ok": lambda: e["checksum_ok"] is True,
    }
    return checks


def check_new_status(e, d, st, data):
    checks = {
        "data_len_field": lambda: data[5] == e["data_len_field"],
        "frame_length": lambda: len(data) == e["frame_length"],
        "crc_ok": lambda: e["crc_ok"] is True,
        "function": lambda: e["function"] == "0x11",
        "permissions": lambda: st.permission == e["permissions"],
        "battery_status_code": lambda: st.battery_state == e["battery_status_code"],
        "temp_sensor_count": lambda: d["probe_slots"] == e["temp_sensor_count"],
        "cell_count": lambda: d["cell_count"] == e["cell_count"],
        "protection_bytes_10_17": lambda: d["protection_flags"] == e["protection_bytes_10_17"],
        "warning_bytes_18_25": lambda: d["warning_flags"] == e["warning_bytes_18_25"],
        "cell_voltages_v": lambda: d["cell_voltages_v"] == e["cell_voltages_v"],
        "temperatures_c": lambda: [raw_temp(t) for t in d["temperatures_c"]] == e["temperatures_c"],
        "mosfet_temp_c": lambda: d["mosfet_temp_c"] == e["mosfet_temp_c"],
        "balancer_temp_c": lambda: d["balancer_temp_c"] == e["balancer_temp_c"],
        "total_voltage_v": lambda: near(d["pack_voltage_v"], e["total_voltage_v"]),
        "current_a": lambda: near(-d["current_a"], e["current_a"]),  # raw: + = discharging
        "soc_pct": lambda: d["soc_pct"] == e["soc_pct"],
        "soh_pct": lambda: d["soh_pct"] == e["soh_pct"],
        "discharge_mos_code_byte46": lambda: d["discharge_mos"]["code"] == e["discharge_mos_code_byte46"],
        "charge_mos_code_byte47": lambda: d["charge_mos"]["code"] == e["charge_mos_code_byte47"],
        "balancer_code": lambda: d["balancer"]["code"] == e["balancer_code"],
        "capacity_ah": lambda: near(d["capacity_ah"], e["capacity_ah"]),
        "remaining_capacity_ah": lambda: near(d["remaining_ah"], e["remaining_capacity_ah"]),
        "cycle_capacity_ah": lambda: near(d["cycle_ah"], e["cycle_capacity_ah"]),
        "power_w": lambda: -d["power_w"] == e["power_w"],
        "runtime_s": lambda: d["runtime_s"] == e["runtime_s"],
        "balanced_cell_bitmask": lambda: hex32(st.balancing_hi, st.balancing_lo) == e["balanced_cell_bitmask"],
        "max_cell_v": lambda: near(d["cell_max_v"], e["max_cell_v"]),
        "max_cell_index": lambda: d["cell_max_index"] == e["max_cell_index"],
        "min_cell_v": lambda: near(d["cell_min_v"], e["min_cell_v"]),
        "min_cell_index": lambda: d["cell_min_index"] == e["min_cell_index"],
        "delta_cell_v": lambda: near(d["cell_delta_v"], e["delta_cell_v"]),
        "avg_cell_v": lambda: near(d["cell_avg_v"], e["avg_cell_v"]),
        "ds_voltage_raw": lambda: st.ds_raw == e["ds_voltage_raw"],
        "drive_voltage_discharge_raw": lambda: st.discharge_gate_dv == e["drive_voltage_discharge_raw"],
        "drive_voltage_charge_raw": lambda: st.charge_gate_dv == e["drive_voltage_charge_raw"],
        "f40com_raw": lambda: st.comparator_raw == e["f40com_raw"],
        "battery_type_code": lambda: hex16(st.chemistry) == e["battery_type_code"],
        "total_discharge_ah": lambda: near(d["total_discharged_ah"], e["total_discharge_ah"]),
        "total_charge_ah": lambda: near(d["total_charged_ah"], e["total_charge_ah"]),
        "total_discharge_time_s": lambda: d["total_discharge_time_s"] == e["total_discharge_time_s"],
        "total_charge_time_s": lambda: d["total_charge_time_s"] == e["total_charge_time_s"],
    }
    return checks


def assert_small_ints(st):
    # The ESP32 boxes ints >= 2**30: a decode that stored one would allocate.
    limit = 1 << 30
    for name in st.__dict__:
        value = getattr(st, name)
        if isinstance(value, int):
            assert -limit < value < limit, name
    for arr in (st.cells_mv, st.temps_c):
        for v in arr:
            assert -limit < v < limit


def test_every_valid_status_vector_decodes_to_its_expected_values():
    seen = 0
    for index, v in vectors():
        if not is_status(v):
            continue
        data = unhex(v["hex"])
        kind = single_frame(data)
        st = Status()
        d = frame_dict(data, 0, len(data), kind, status=st)
        assert d["valid"] and d["kind"] == "status", index
        assert d["protocol"] == v["protocol"]
        e = v["expected"]
        checks = (check_old_status if v["protocol"] == "old" else check_new_status)(e, d, st, data)
        for key in e:
            if key in UNDECODED or (key in META and key not in checks):
                continue
            assert key in checks, "vector %d: expected key %s is not checked" % (index, key)
            assert checks[key](), "vector %d: %s: expected %r" % (index, key, e[key])
        assert_small_ints(st)
        seen += 1
    assert seen == 26


def reason_counts(framer):
    return {REASONS[k]: framer.drops[k] for k in range(len(REASONS)) if framer.drops[k]}


def test_every_invalid_vector_is_rejected_with_a_reason():
    seen = 0
    for index, v in vectors():
        e = v["expected"]
        if e.get("valid_frame", True) and e.get("crc_ok", True) and e.get("checksum_ok", True):
            continue
        data = unhex(v["hex"])
        found, framer = frames_of(data)
        assert found == [], index
        reasons = reason_counts(framer)
        assert framer.dropped_bytes == len(data), index
        if e.get("checksum_ok") is False or e.get("crc_ok") is False:
            assert reasons.get("bad_checksum") == 1, (index, reasons)
        elif "too short" in e.get("reason", ""):
            assert reasons.get("truncated") == 1, (index, reasons)
        else:  # not a frame at all: garbage or a broken header
            assert set(reasons) <= {"noise", "bad_header"}, (index, reasons)
        seen += 1
    assert seen == 7


def test_concatenated_and_fragmented_vectors_split_into_their_frames():
    seen = 0
    for index, v in vectors():
        e = v["expected"]
        if "frames" not in e:
            continue
        seen += 1
        data = unhex(v["hex"])
        if "notifications" in e:
            # BLE notifications: a device-info reply whose tail shares a chunk
            # with the head of the next status frame.
            framer = Framer()
            found = []
            for note in e["notifications"]:
                chunk = unhex(note)
                pos = 0
                while True:
                    pos = framer.feed(chunk, pos)
                    if not framer.kind:
                        break
                    found.append(frame_dict(framer.buf, framer.start, framer.length, framer.kind))
            assert [f["kind"] for f in found] == ["device_info"]
            assert found[0]["model"] == "24BH"
            assert framer.pending() == 12  # the status frame's head waits for its rest
            continue
        found, framer = frames_of(data, chunk=5)
        assert [f.hex() for _, f in found] == e["frames"], index
        assert framer.dropped_bytes == 0
    assert seen == 3


def test_reply_vectors_decode_to_their_fields():
    seen = 0
    for index, v in vectors():
        e = v["expected"]
        if v["direction"] != "response" or is_status(v) or "frames" in e:
            continue
        if not (e.get("valid_frame", True) and e.get("crc_ok", True)):
            continue
        data = unhex(v["hex"])
        kind = single_frame(data)
        d = frame_dict(data, 0, len(data), kind, direction="bms")
        assert d["valid"], index
        if "result" in e:
            assert d["kind"] == "ack" and d["result"] == e["result"], index
            assert d["register"] == int(e["register"], 16)
        elif "granted_level" in e:
            assert d["kind"] == "ack" and d["granted_level"] == e["granted_level"]
        elif "hardware_model" in e:
            assert d["kind"] == "device_info"
            assert d["model"] == e["hardware_model"] and d["firmware"] == e["software_version"]
            assert len(data) == e["frame_length"]
        elif "words_le" in e:
            assert d["kind"] == "param"
            words = e["words_le"]
            for i in range(len(d["words"])):
                assert d["words"][i] == words["0x%04X" % (2 * i)]
            assert d["trailer_code"] == 0x0B
        elif "value_echo" in e:
            assert d["kind"] == "param" and d["words"] == [e["value_echo"]]
            assert d["trailer_code"] == e["trailer_code"]
        elif "data" in e:
            assert d["data_hex"] == e["data"]
        elif "interpretation" in e:
            assert d["kind"] == "reject" and d["register"] == 0xF5 and d["value"] == 1
        elif "meaning" in e:  # an echo of an accepted write
            assert d["kind"] == "echo" and d["command"] == "charge-on"
        else:
            assert False, "vector %d not checked" % index
        seen += 1
    assert seen == 20


def _old_raw(head, reg, value):
    return bytes(old.short_frame(head, reg, value))


def encoder_for(hexstr):
    """The library call that must produce a captured request/command."""
    table = {
        # OLD requests
        "5a5a00000101": lambda: commands.status_request("old", 0),
        "dbdb00000000": lambda: commands.status_request("old", 1),
        "5a5a00000000": lambda: commands.status_request("old", 2),
        "dbdb00000101": lambda: _old_raw(old.HEAD_DATA, 0, 0x0001),
        "dbdb00000202": lambda: _old_raw(old.HEAD_DATA, 0, 0x0002),
        "5a5aff0000ff": lambda: commands.read_param("old", 0xFF),
        "5a5a5a00005a": lambda: commands.read_param("old", 0x5A),
        "5a5a03000003": lambda: commands.read_param("old", 3),
        # NEW requests
        "7ea1010000be1855aa55": lambda: commands.status_request("new"),
        "7ea1026c022058c4aa55": lambda: commands.device_info_request(),
        "7ea10200003899b3aa55": lambda: commands.read_param("new", 0x0000, 0x38),
        "7ea10400000c98ecaa55": lambda: commands.block_request(),
        "7ea105000028990baa55": lambda: commands.system_info_request(),
        "7ea10200000219a0aa55": lambda: commands.read_param("new", 0x0000, 2),
        "7ea102020002b860aa55": lambda: commands.read_param("new", 0x0002, 2),
        "7ea1020400025861aa55": lambda: commands.read_param("new", 0x0004, 2),
        "7ea102a200043840aa55": lambda: commands.read_param("new", 0x00A2, 4),
        "7ea1027a010239e9aa55": lambda: commands.read_param("new", 0x017A, 2),
        # passwords and parameter writes
        "7ea1236a010c3132333435363738396162632062aa55": lambda: commands.password("new", "123456789abc"),
        "7ea123016a083132333435363738d9eeaa55": lambda: commands.password("new", "12345678", 0x6A01),
        "7ea122000002420ebdecaa55": lambda: commands.write_param("new", 0x0000, 3650)[0],
        "7ea122020002de0ded2daa55": lambda: commands.write_param("new", 0x0002, 3550)[0],
        "a5a5f1313254": lambda: commands.password("old", "12345678")[0:6],
        "a5a5f2333459": lambda: commands.password("old", "12345678")[6:12],
        "a5a5f335365e": lambda: commands.password("old", "12345678")[12:18],
        "a5a5f4373863": lambda: commands.password("old", "12345678")[18:24],
    }
    if hexstr in table:
        return table[hexstr]
    data = unhex(hexstr)
    # Controls: find the name whose frame this is, then build it by name.
    protocol = "new" if data[0] == 0x7E else "old"
    for name in commands.CONTROLS:
        if commands.supported(name, protocol) and commands.control(name, protocol) == data:
            return lambda: commands.control(name, protocol)
    return None


def test_every_request_and_command_vector_is_reproduced_by_the_encoders():
    seen = 0
    names = {}
    for index, v in vectors():
        if v["direction"] not in ("request", "command"):
            continue
        build = encoder_for(v["hex"])
        assert build is not None, "vector %d (%s) has no encoder" % (index, v["hex"])
        assert bytes(build()).hex() == v["hex"], index
        meaning = v["expected"].get("meaning", "")
        if v["expected"].get("function") == "0x51" or v["direction"] == "command":
            d = frame_dict(unhex(v["hex"]), 0, len(v["hex"]) // 2, single_frame(unhex(v["hex"])))
            if d.get("command"):
                names[d["command"]] = meaning
        seen += 1
    assert seen == 67
    # The control names agree with the captures' own descriptions.
    assert "discharge MOSFET off" in names["discharge-off"]
    assert "charge MOSFET on" in names["charge-on"]
    assert "buzzer on" in names["buzzer-on"]


def test_commands_missing_from_a_protocol_are_refused_with_a_reason():
    for name, proto in (("buzzer-on", "old"), ("clear-log", "old"), ("balancer-toggle", "new")):
        try:
            commands.control(name, proto)
        except commands.Unsupported as e:
            assert proto in str(e)
        else:
            assert False, name
    try:
        commands.password("old", "123456789")
    except ValueError:
        pass
    else:
        assert False


def rebuild(st, protocol):
    return old.build_status(st) if protocol == "old" else new.build_status(st)


def test_round_trip_every_valid_status_vector():
    seen = 0
    for index, v in vectors():
        if not is_status(v):
            continue
        data = unhex(v["hex"])
        kind = single_frame(data)
        first = Status()
        d1 = frame_dict(data, 0, len(data), kind, status=first)
        rebuilt = bytes(rebuild(first, v["protocol"]))
        # The rebuilt frame passes the framer: checksum/CRC, header, trailer.
        kind2 = single_frame(rebuilt)
        assert kind2 == kind
        d2 = frame_dict(rebuilt, 0, len(rebuilt), kind2)
        assert d1 == d2, index
        if v["protocol"] == "new":
            assert len(rebuilt) == len(data)
        seen += 1
    assert seen == 26


def test_status_model_limits_are_those_of_the_frames():
    assert MAX_CELLS == 32 and MAX_PROBES >= 6
    st = Status()
    assert st.mosfet_c == TEMP_NONE and st.cell_count == 0
    # NEW frames larger than our probe storage still decode every later field.
    st.cell_count = 4
    st.probe_slots = 12
    st.pack_cv = 1320
    st.current_da = -25
    st.soc_pct = 55
    frame = new.build_status(st)
    assert len(frame) == new.status_frame_length(4, 12)
    again = Status()
    assert new.decode_status(frame, 0, again) == 0
    assert again.probe_slots == 12 and again.probe_count == MAX_PROBES
    assert again.pack_cv == 1320 and again.current_da == -25 and again.soc_pct == 55


def test_kinds_are_distinct():
    assert len({KIND_OLD_STATUS, KIND_OLD_SHORT, KIND_NEW}) == 3


# -- both generations agree; builders clamp like a unit -----------------------------


def _status(cells, slots=2):
    st = Status()
    st.cell_count = cells
    st.probe_slots = slots
    st.probe_count = min(slots, MAX_PROBES)
    for i in range(cells):
        st.cells_mv[i] = 3300 + i
    for i in range(min(slots, MAX_PROBES)):
        st.temps_c[i] = 20 + i
    st.pack_cv = 3300 * cells // 10
    st.soc_pct = 50
    return st


def _old_with_cell_count(n):
    b = bytearray(old.build_status(_status(16)))
    b[123] = n
    total = sum(b[4:138]) & 0xFFFF
    b[138] = total >> 8
    b[139] = total & 0xFF
    return bytes(b)


def _new_with_cell_count(n, slots=2):
    # LEN consistent with n cells: only the cell count is out of range.
    size = 116 + 2 * n + 2 * slots
    b = bytearray(size)
    b[0] = 0x7E
    b[1] = 0xA1
    b[2] = new.REPLY_STATUS
    b[5] = 106 + 2 * n + 2 * slots
    b[8] = slots
    b[9] = n
    new.seal(b, size - 4)
    return bytes(b)


def test_both_generations_refuse_more_than_32_cells_alike():
    from ant.status import ERR_CELL_COUNT

    for n, expect in ((32, 0), (33, ERR_CELL_COUNT), (60, ERR_CELL_COUNT)):
        for frame, generation, kind in ((_old_with_cell_count(n), old, KIND_OLD_STATUS),
                                        (_new_with_cell_count(n), new, KIND_NEW)):
            # The framer drops such a frame, and names why, alike for both ...
            found, framer = frames_of(frame)
            if expect:
                assert found == [] and reason_counts(framer).get("bad_cell_count") == 1, (n, generation)
            else:
                assert found == [(kind, frame)]
            # ... and so do the decoders, should one be handed such a frame.
            st = Status()
            assert generation.decode_status(frame, 0, st) == expect, (n, generation)
            d = frame_dict(frame, 0, len(frame), kind)
            if expect:
                assert d["valid"] is False and d["error"] == "bad_cell_count" and d["cell_count"] is None
                assert st.cell_count == 0  # left untouched
            else:
                assert d["valid"] is True and d["cell_count"] == 32


def test_every_probe_slot_of_a_frame_is_reported_and_fitted_probes_are_honoured():
    # A NEW frame with 10 probe slots: a Status keeps 8, the frame's dict
    # lists all 10 (none cut silently).
    st = _status(4, 10)
    frame = bytearray(new.build_status(st))
    first = 34 + 2 * 4  # probe temperatures follow the 4 cells (reference §3.2)
    for i in (8, 9):
        frame[first + 2 * i] = 30 + i  # probes 9 and 10 read 38 and 39 °C
        frame[first + 2 * i + 1] = 0
    new.seal(frame, len(frame) - 4)
    d = frame_dict(frame, 0, len(frame), single_frame(bytes(frame)))
    assert d["valid"] and d["probe_slots"] == 10
    assert d["temperatures_c"] == [20, 21, 22, 23, 24, 25, 26, 27, 38, 39]
    kept = Status()
    assert new.decode_status(frame, 0, kept) == 0 and kept.probe_count == MAX_PROBES
    assert status_dict(kept)["temperatures_c"] == [20, 21, 22, 23, 24, 25, 26, 27]
    assert frame_dict(frame, 0, len(frame), KIND_NEW, probes=3)["temperatures_c"] == [20, 21, 22]
    # An OLD unit whose unfitted slots read 0 °C: only the count tells.
    st = _status(16, 4)
    st.temps_c[2] = 0
    st.temps_c[3] = 0
    frame = old.build_status(st)
    assert frame_dict(frame, 0, len(frame), KIND_OLD_STATUS)["temperatures_c"] == [20, 21, 0, 0]
    d = frame_dict(frame, 0, len(frame), KIND_OLD_STATUS, probes=2)
    assert d["temperatures_c"] == [20, 21] and d["probe_slots"] == 4
    assert frame_dict(frame, 0, len(frame), KIND_OLD_STATUS, probes=0)["temperatures_c"] == []


def test_builders_saturate_at_the_field_range_like_a_unit():
    st = _status(16)
    st.capacity_mah = 5000000  # 5000 Ah: beyond the u32 in µAh
    st.remaining_mah = 4500000
    st.current_da = -33000  # -3300 A: beyond the NEW i16
    st.power_w = -174000
    st.temps_c[0] = -40  # a fitted probe at -40 °C: the frames' "absent"
    st.temps_c[1] = -55
    st.mosfet_c = -40
    st.pack_cv = 70000  # 700 V: beyond the NEW u16 in 0.01 V
    for protocol in ("new", "old"):
        frame = rebuild(st, protocol)
        d = frame_dict(frame, 0, len(frame), single_frame(bytes(frame)))
        assert d["valid"], protocol
        assert near(d["capacity_ah"], 4294.967295) and near(d["remaining_ah"], 4294.967295), protocol
        assert d["temperatures_c"][:2] == [-39, -39] and d["mosfet_temp_c"] == -39, protocol
        if protocol == "new":
            assert d["current_a"] == -3276.7 and d["pack_voltage_v"] == 655.35
        else:  # the OLD fields are wide enough
            assert d["current_a"] == -3300.0 and d["pack_voltage_v"] == 700.0
        assert d["power_w"] == -174000
