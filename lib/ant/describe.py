# Plain-dict view of the decoded state and of any verified frame: what the
# CLI prints and what the JSON faces serve. This is a face: it allocates.
from ant import codes, new, old
from ant.commands import CONTROLS
from ant.framer import KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS
from ant.status import ERR_CELL_COUNT, ERR_LENGTH, NOT_REPORTED, PROTOCOL_NAMES, TEMP_NONE, Status, fit_probes

# Keys of a status object, always present (None where a protocol has no such
# field) so consumers never need to test for a key.
STATUS_KEYS = (
    "pack_voltage_v",
    "current_a",
    "power_w",
    "soc_pct",
    "soh_pct",
    "capacity_ah",
    "remaining_ah",
    "cycle_ah",
    "runtime_s",
    "cell_count",
    "cell_voltages_v",
    "cell_min_v",
    "cell_min_index",
    "cell_max_v",
    "cell_max_index",
    "cell_avg_v",
    "cell_delta_v",
    "temperatures_c",
    "mosfet_temp_c",
    "balancer_temp_c",
    "charge_mos",
    "discharge_mos",
    "balancer",
    "balancing_cells",
)


def _temp(t):
    return None if t == TEMP_NONE else t


def _opt(v):
    return None if v == NOT_REPORTED else v


def _hex(raw):
    return "".join("%02x" % c for c in raw)


def _state(code, text):
    return {"code": code, "on": code == 1, "text": text}


def status_dict(st):
    """The CLI/API schema of a Status (charging positive)."""
    n = st.cell_count
    d = {
        "pack_voltage_v": st.pack_cv / 100,
        "current_a": st.current_da / 10,
        "power_w": st.power_w,
        "soc_pct": st.soc_pct,
        "soh_pct": _opt(st.soh_pct),
        "capacity_ah": (st.capacity_mah * 1000 + st.capacity_uah) / 1e6,
        "remaining_ah": (st.remaining_mah * 1000 + st.remaining_uah) / 1e6,
        "cycle_ah": (st.cycle_ah * 1000 + st.cycle_mah) / 1000,
        "runtime_s": st.runtime_s,
        "cell_count": n,
        "cell_voltages_v": [st.cells_mv[i] / 1000 for i in range(n)],
        "cell_min_v": st.cell_min_mv / 1000,
        "cell_min_index": st.cell_min_index,
        "cell_max_v": st.cell_max_mv / 1000,
        "cell_max_index": st.cell_max_index,
        "cell_avg_v": st.cell_avg_mv / 1000,
        "cell_delta_v": st.cell_delta_mv / 1000,
        "temperatures_c": [_temp(st.temps_c[i]) for i in range(st.probe_count)],
        "mosfet_temp_c": _temp(st.mosfet_c),
        "balancer_temp_c": _temp(st.balancer_c),
        "charge_mos": _state(st.charge_mos, codes.charge_text(st.charge_mos)),
        "discharge_mos": _state(st.discharge_mos, codes.discharge_text(st.discharge_mos)),
        "balancer": {
            "code": st.balancer,
            "on": codes.balancer_on(st.balancer),
            "text": codes.balancer_text(st.balancer),
        },
        "balancing_cells": [k for k in range(1, n + 1) if st.balancing(k)],
        # Raw extras, None where this generation has no such field.
        "probe_slots": st.probe_slots,
        "protection_flags": _hex(st.protection) if st.permission != NOT_REPORTED else None,
        "warning_flags": _hex(st.warning) if st.permission != NOT_REPORTED else None,
        "system_log": _opt(st.syslog),
        "battery_state": _opt(st.battery_state),
        "chemistry": codes.CHEMISTRY.get(st.chemistry) if st.chemistry != NOT_REPORTED else None,
        "discharge_gate_v": st.discharge_gate_dv / 10,
        "charge_gate_v": st.charge_gate_dv / 10,
        "total_discharged_ah": None,
        "total_charged_ah": None,
        "total_discharge_time_s": _opt(st.total_discharge_time_s),
        "total_charge_time_s": _opt(st.total_charge_time_s),
    }
    if st.total_discharged_ah != NOT_REPORTED:
        d["total_discharged_ah"] = (st.total_discharged_ah * 1000 + st.total_discharged_mah) / 1000
    if st.total_charged_ah != NOT_REPORTED:
        d["total_charged_ah"] = (st.total_charged_ah * 1000 + st.total_charged_mah) / 1000
    return d


def empty_status():
    return {k: None for k in STATUS_KEYS}


# -- any frame -----------------------------------------------------------------

_NEW_REQUESTS = {
    new.FN_STATUS: "status request",
    new.FN_READ: "parameter read request",
    new.FN_BLOCK: "block request (function 0x04)",
    new.FN_SYSINFO: "system info request",
}
_NEW_REPLY_KINDS = {
    new.REPLY_LOG: "log",
    new.REPLY_BLOCK: "block",
    new.REPLY_SYSINFO: "system_info",
    new.REPLY_GPS: "gps",
}


def _control_name(protocol_index, register, value=0):
    """Command name of a control register (OLD: matched on value too, so
    FA 0001 is charge-on and FA 0000 charge-off)."""
    loose = None
    for name in CONTROLS:
        entry = CONTROLS[name][protocol_index]
        if entry is None:
            continue
        if protocol_index == 1:
            if entry == register:
                return name
        elif entry[0] == register:
            if entry[1] == value:
                return name
            loose = loose or name
    return loose


def _old_short(b, o, direction):
    head = b[o]
    reg = b[o + 2]
    value = (b[o + 3] << 8) | b[o + 4]
    d = {"register": reg, "value": value}
    if head == old.HEAD_DATA:
        d["kind"] = "request"
        d["meaning"] = "status request" if reg == 0 else "screen/data request"
    elif head == old.HEAD_READ:
        if direction == "bms":
            d["kind"] = "echo"
            d["meaning"] = "register %d reads %d" % (reg, value)
        else:
            d["kind"] = "request"
            d["meaning"] = "status request" if reg == 0 else "read register %d" % reg
    elif reg == old.REG_REJECTED and value == 1:
        d["kind"] = "reject"
        d["meaning"] = "write rejected: not authorised (wrong or missing password)"
    else:
        d["kind"] = "echo" if direction == "bms" else "command"
        if old.REG_PASSWORD_1 <= reg <= old.REG_PASSWORD_1 + 3:
            d["meaning"] = "password characters %d-%d" % (2 * (reg - 0xF1) + 1, 2 * (reg - 0xF1) + 2)
            d["value"] = None  # never print secrets
        else:
            name = _control_name(0, reg, value)
            d["command"] = name
            d["meaning"] = name if name else "write register %d = %d" % (reg, value)
    return d


def _new_frame(b, o, length, direction):
    func = b[o + 2]
    address = b[o + 3] | (b[o + 4] << 8)
    size = b[o + 5]
    d = {"function": func, "address": address}
    if func == new.REPLY_STATUS:
        d["kind"] = "status"
    elif func in _NEW_REQUESTS:
        d["kind"] = "request"
        d["meaning"] = _NEW_REQUESTS[func]
        d["data_length"] = size
        if func == new.FN_READ and address == new.DEVICE_INFO_ADDR:
            d["meaning"] = "device info request"
    elif func == new.FN_CONTROL:
        d["kind"] = "command"
        d["register"] = address & 0xFF
        d["command"] = _control_name(1, address & 0xFF)
    elif func == new.FN_WRITE:
        d["kind"] = "command"
        d["meaning"] = "parameter write"
        d["words"] = [b[o + 6 + i] | (b[o + 7 + i] << 8) for i in range(0, size - 1, 2)]
    elif func == new.FN_PASSWORD:
        d["kind"] = "command"
        d["meaning"] = "password"
        d["password_length"] = size  # the password itself is never printed
    elif func == new.REPLY_CONTROL:
        result = b[o + 6] | (b[o + 7] << 8)
        d["kind"] = "ack"
        d["register"] = address & 0xFF
        d["command"] = _control_name(1, address & 0xFF)
        d["result"] = result
        d["result_text"] = codes.control_result_text(result)
    elif func == new.REPLY_PASSWORD:
        d["kind"] = "ack"
        d["meaning"] = "password accepted"
        d["granted_level"] = b[o + 6] | (b[o + 7] << 8)
    elif func == new.REPLY_READ and address == new.DEVICE_INFO_ADDR and size >= 32:
        d["kind"] = "device_info"
        d["model"] = new.ascii_field(b, o + 6, o + 22)
        d["firmware"] = new.ascii_field(b, o + 22, o + 38)
    elif func == new.REPLY_READ or func == new.REPLY_WRITE:
        d["kind"] = "param"
        d["meaning"] = "parameter read reply" if func == new.REPLY_READ else "parameter write reply"
        d["data_length"] = size
        d["words"] = [b[o + 6 + i] | (b[o + 7 + i] << 8) for i in range(0, size - 1, 2)]
        code = new.reply_trailer_code(b, o, length)
        d["trailer_code"] = None if code < 0 else code
    else:
        d["kind"] = _NEW_REPLY_KINDS.get(func, "reply")
        d["data_hex"] = _hex(b[o + 6 : o + 6 + size])
    return d


# decode_status() results as the faces name them.
DECODE_ERRORS = {ERR_LENGTH: "bad_length", ERR_CELL_COUNT: "bad_cell_count"}


def frame_dict(b, o, length, kind, direction="auto", status=None, probes=-1):
    """Everything the frame at b[o:o+length] says. Status frames are decoded
    into `status` (a Status, created when not given) and carry every key of
    STATUS_KEYS; other frames carry only their own keys. `probes` >= 0: only
    that many temperature probes are fitted (the others read null and are
    left out); -1: as many as the frame has slots, all of them listed, even
    beyond what a Status keeps."""
    d = {"valid": True, "error": None}
    if kind == KIND_OLD_SHORT:
        d["protocol"] = "old"
        d.update(_old_short(b, o, direction))
    elif kind == KIND_NEW and b[o + 2] != new.REPLY_STATUS:
        d["protocol"] = "new"
        d.update(_new_frame(b, o, length, direction))
    else:
        generation = old if kind == KIND_OLD_STATUS else new
        d["protocol"] = "old" if kind == KIND_OLD_STATUS else "new"
        if kind == KIND_NEW:
            d.update(_new_frame(b, o, length, direction))  # function, address
        d["kind"] = "status"
        st = status if status is not None else Status()
        err = generation.decode_status(b, o, st)
        if err:
            d["valid"] = False
            d["error"] = DECODE_ERRORS.get(err, "bad_length")
            d.update(empty_status())
        else:
            temps = None
            if kind == KIND_NEW and st.probe_slots > st.probe_count:
                temps = new.probe_temps(b, o)  # more slots than a Status keeps: all of them
            if probes >= 0:
                fit_probes(st, probes)
                if temps is not None:
                    temps = temps[:probes]
            d.update(status_dict(st))
            if temps is not None:
                d["temperatures_c"] = temps
    d["length"] = length
    return d


def protocol_name(st):
    return PROTOCOL_NAMES[st.protocol]
