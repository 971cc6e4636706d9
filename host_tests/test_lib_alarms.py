# Alarms from the raw flag bits, the MOSFET state codes and the old system
# log, for frames of both generations. Runs under CPython and MicroPython.
from ant import alarms, new, old
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD, Status


def pack(charge=1, discharge=1):
    st = Status()
    st.cell_count = 4
    st.probe_slots = 2
    st.probe_count = 2
    for i in range(4):
        st.cells_mv[i] = 3300
    st.temps_c[0] = 20
    st.temps_c[1] = 21
    st.mosfet_c = 25
    st.balancer_c = 24
    st.pack_cv = 1320
    st.soc_pct = 50
    st.charge_mos = charge
    st.discharge_mos = discharge
    return st


def through_new(st):
    frame = new.build_status(st)
    out = Status()
    assert new.decode_status(frame, 0, out) == 0
    assert out.protocol == PROTOCOL_NEW
    return out


def through_old(st):
    frame = old.build_status(st)
    out = Status()
    old.decode_status(frame, 0, out)
    assert out.protocol == PROTOCOL_OLD
    return out


def test_a_healthy_pack_has_no_alarms():
    for st in (through_new(pack()), through_old(pack())):
        assert alarms.count(st) == 0
        assert alarms.next_active(st) == -1
        assert alarms.active_alarms(st) == []
        assert not alarms.active(st, alarms.CELL_OVER_VOLTAGE)


def test_charge_code_2_is_cell_over_voltage_in_both_generations():
    for st in (through_new(pack(charge=2)), through_old(pack(charge=2))):
        assert alarms.active(st, alarms.CELL_OVER_VOLTAGE)
        assert not alarms.active(st, alarms.CELL_UNDER_VOLTAGE)
        assert alarms.active_alarms(st) == [
            {"code": alarms.CELL_OVER_VOLTAGE, "name": "cell over-voltage", "source": "charge_mos"}
        ]


def test_discharge_codes_name_the_reason():
    st = through_new(pack(discharge=12))
    assert alarms.active(st, alarms.SHORT_CIRCUIT)
    assert [a["name"] for a in alarms.active_alarms(st)] == ["short circuit"]
    st = through_old(pack(discharge=2))
    assert alarms.active(st, alarms.CELL_UNDER_VOLTAGE)
    assert alarms.active_alarms(st)[0]["source"] == "discharge_mos"


def test_plain_on_off_and_charger_connected_are_not_alarms():
    assert alarms.count(pack(charge=0, discharge=0)) == 0
    assert alarms.count(pack(charge=1, discharge=11)) == 0  # "charge MOSFET on": normal
    assert alarms.count(pack(charge=15, discharge=15)) == 2  # both manually off


def test_named_protection_and_warning_bits():
    st = pack(charge=15, discharge=15)
    st.protection[2] = 0x22  # byte 12: bit 1 discharge off, bit 5 charge off
    st.warning[3] = 0x20  # byte 21 = 0x20: manual balancing
    st = through_new(st)
    names = [a["name"] for a in alarms.active_alarms(st)]
    assert names == [
        "discharge FET manually off",
        "charge FET manually off",
        "manual balancing",
        "manually switched off",
        "manually switched off",
    ]
    sources = [a["source"] for a in alarms.active_alarms(st)]
    assert sources == ["protection", "protection", "warning", "charge_mos", "discharge_mos"]
    assert alarms.active(st, alarms.PROTECTION_CHARGE_MANUAL_OFF)
    assert alarms.active(st, alarms.WARNING_MANUAL_BALANCING)
    assert alarms.active(st, alarms.CHARGE_MANUAL_OFF) and alarms.active(st, alarms.DISCHARGE_MANUAL_OFF)


def test_full_pack_flag_with_code_2():
    st = pack(charge=2)
    st.protection[0] = 0x02  # byte 10 bit 1
    st = through_new(st)
    assert alarms.active(st, alarms.PROTECTION_FULL)
    assert [a["name"] for a in alarms.active_alarms(st)] == ["cell over-voltage (full pack)", "cell over-voltage"]


def test_unknown_bits_are_named_by_number_and_kept_raw():
    st = pack()
    st.protection[7] = 0x80  # bit 63
    st.warning[0] = 0x01  # warning bit 0
    st.protection[2] = 0x01  # bit 16 (byte 12 bit 0): unnamed
    st = through_new(st)
    found = alarms.active_alarms(st)
    assert [a["name"] for a in found] == ["protection bit 16", "protection bit 63", "warning bit 0"]
    assert [a["code"] for a in found] == [16, 63, alarms.WARNING_BASE]
    assert alarms.raw_flags(st) == {"protection": [16, 63], "warning": [0]}
    assert alarms.count(st) == 3


def test_old_system_log_word():
    st = pack()
    # bits 0-4 state 3 (over-current), bits 5-9 cell 0, slot 4, bit 15 discharge table
    st.syslog = 0x8000 | (4 << 10) | 3
    st = through_old(st)
    code = alarms.syslog_alarm(st)
    assert code == alarms.SYSLOG_DISCHARGE_BASE + 3
    assert alarms.active(st, code)
    assert alarms.active_alarms(st) == [{"code": code, "name": "over-current", "source": "system_log"}]
    st.syslog = (7 << 5) | 2  # charge table, cell 7, cell over-voltage
    assert alarms.active_alarms(st) == [
        {"code": alarms.SYSLOG_CHARGE_BASE + 2, "name": "cell over-voltage", "source": "system_log", "cell": 7}
    ]
    st.syslog = 1  # charge table, "on": nothing wrong
    assert alarms.syslog_alarm(st) == -1 and alarms.count(st) == 0


def test_new_frames_report_no_system_log():
    st = through_new(pack())
    assert alarms.syslog_alarm(st) == -1


def test_iteration_visits_every_active_code_once_in_order():
    st = pack(charge=6, discharge=3)
    st.protection[0] = 0x81
    st.warning[7] = 0x40
    seen = []
    code = alarms.next_active(st)
    while code >= 0:
        seen.append(code)
        code = alarms.next_active(st, code)
    assert seen == [0, 7, alarms.WARNING_BASE + 62, alarms.CHARGE_OVER_TEMPERATURE, alarms.DISCHARGE_OVER_CURRENT]
    assert alarms.count(st) == 5
    for c in range(alarms.ALARM_CODES):
        assert alarms.active(st, c) == (c in seen)
