# The simulated BMS's settings: every parameter of lib/ant/params.py, in both
# generations' shapes (reference §2.6 OLD registers, §3.7 NEW addresses).
#
#   protection rows   read and written through the Limits object, so a write
#                     changes what the simulated BMS does (cell over-voltage,
#                     over-current, temperatures, balancing)
#   measured rows     cell count, capacities, runtime: from the pack, read-only
#                     (a write is acknowledged and changes nothing)
#   the rest          a value of their own, realistic for a LiFePO4 pack (the
#                     16S block read of the reference's vectors where its
#                     values are plausible, pack voltages scaled to the cell
#                     count; Wnt's sample values for OLD: tire, pulses, id)
#
# Write semantics (this simulator's choice where no source says):
#   OLD  a write is held until the apply frame (A5 A5 FF): a read before it
#        returns the old value; a reboot drops what was not applied
#   NEW  a write takes effect at once and reads back (the 0x42 reply says
#        "set, needs save"); the save control (0x07) keeps it over a reboot,
#        a reboot without it brings the saved value back
# A register no row names reads FFFF (OLD, "not available") or 0xFF bytes
# (NEW, like the unused words of the reference's block read), and keeps what
# is written to it.
from ant import params as P

# Rows backed by a Limits attribute.
LIMIT_ROWS = {
    "cell_ov_protection_mv": "cell_ov_mv",
    "cell_ov_recovery_mv": "cell_ov_recover_mv",
    "cell_ov_warning_mv": "cell_ov_alarm_mv",
    "cell_uv_protection_mv": "cell_uv_mv",
    "cell_uv_recovery_mv": "cell_uv_recover_mv",
    "cell_uv_warning_mv": "cell_uv_warn_mv",
    "charge_oc_protection_a": "charge_oc_da",
    "charge_oc_delay_s": "charge_oc_delay_s",
    "discharge_oc_protection_a": "discharge_oc_da",
    "discharge_oc_delay_s": "discharge_oc_delay_s",
    "balance_start_mv": "balance_start_mv",
    "balance_on_diff_mv": "balance_diff_mv",
    "balance_current_ma": "balance_current_ma",
    "standby_s": "standby_s",
    "charge_ot_protection_c": "charge_ot_c",
    "charge_ot_recovery_c": "charge_ot_recover_c",
    "discharge_ot_protection_c": "discharge_ot_c",
    "discharge_ot_recovery_c": "discharge_ot_recover_c",
    "mosfet_ot_protection_c": "mosfet_ot_c",
    "mosfet_ot_recovery_c": "mosfet_ot_recover_c",
    "charge_ut_protection_c": "charge_ut_c",
    "charge_ut_recovery_c": "charge_ut_recover_c",
    "discharge_ut_protection_c": "discharge_ut_c",
    "discharge_ut_recovery_c": "discharge_ut_recover_c",
    "cell_type": "chemistry",
}
MEASURED_ROWS = ("cell_count", "capacity_ah", "remaining_capacity_ah", "cycle_capacity_ah", "total_cycle_capacity_ah",
                 "runtime_s")
# Values of a 16-cell pack; pack voltages (key ending in _v) scale with the cell count.
DEFAULTS = {
    "cell_ov_protection_l2_mv": 3800, "cell_ov_recovery_l2_mv": 3700,
    "pack_ov_protection_v": 608, "pack_ov_recovery_v": 584,
    "cell_uv_protection_l2_mv": 2000, "cell_uv_recovery_l2_mv": 2500,
    "pack_uv_protection_v": 400, "pack_uv_recovery_v": 432,
    "cell_diff_protection_mv": 800, "cell_diff_recovery_mv": 600,
    "cell_ov_warning_recovery_mv": 3500, "pack_ov_warning_v": 584, "pack_ov_warning_recovery_v": 552,
    "cell_uv_warning_recovery_mv": 3100, "pack_uv_warning_v": 440, "pack_uv_warning_recovery_v": 480,
    "cell_diff_warning_mv": 600, "cell_diff_warning_recovery_mv": 400,
    "shutdown_voltage_mv": 2500,
    "discharge_oc_protection_l2_a": 3000, "discharge_oc_delay_l2_ms": 300,
    "short_circuit_a": 1000, "short_circuit_delay_us": 300,
    "charge_oc_warning_a": 900, "charge_oc_warning_recovery_a": 800,
    "discharge_oc_warning_a": 1800, "discharge_oc_warning_recovery_a": 1600,
    "requested_charge_current_a": 500, "start_current_a": 5, "current_sensor_range": 600,
    "balance_voltage_mv": 3400, "balance_off_diff_mv": 5, "balance_level": 10, "balance_charge_current_a": 20,
    "soc_method": 0, "internal_resistance_cal_mohm": 10,
    "soc_low_warning_pct": 20, "soc_low_warning_l2_pct": 10,
    "reference_voltage_mv": 3300, "voltage_calibration": 1000,
    "tire_length_mm": 1000, "pulses_per_turn": 23, "module_number": 0, "firmware_id": 12006,
}
NEW_SPACE = 0x0300  # bytes of NEW parameter memory (0x026C device info lives above it)
DEVICE_INFO = 0x026C

_OLD_ROW = {}  # OLD register -> (row, high word)
for _i in range(P.COUNT):
    _reg = P.ROWS[_i][P.OLD_REG]
    if _reg:
        _OLD_ROW[_reg] = (_i, False)
        if P.ROWS[_i][P.KIND] == P.K_U32:
            _OLD_ROW[_reg + 1] = (_i, True)


def _key(row):
    return P.ROWS[row][P.KEY]


class Registers:
    def __init__(self, limits, pack, model="16ZMB0TB120A", firmware="16ZMUB00-211026A", runtime=None):
        self.limits = limits
        self.pack = pack
        self.model = model
        self.firmware = firmware
        self.runtime = runtime or (lambda: 0)  # () -> seconds since power-up
        self.values = {}  # key -> raw, rows of their own
        cells = pack.cells
        for key, value in DEFAULTS.items():
            self.values[key] = value * cells // 16 if key.startswith("pack_") else value
        for k in range(24):
            # Connection resistance (the app divides by 10): a few tenths for fitted cells.
            self.values["cell_resistance_%d" % (k + 1)] = 3 + (k * 7) % 5 if k < cells else 0
        self._old_raw = {}  # registers no row names
        self._old_pending = {}  # register -> value, until the apply frame
        self._new_raw = bytearray(b"\xff" * NEW_SPACE)  # addresses no row names
        self._unsaved = {}  # key -> value before the first unsaved NEW write
        self.writes = 0
        self.applies = 0
        self.saves = 0

    # -- one row -------------------------------------------------------------------

    def get(self, row):
        """The raw value of a row as the BMS holds it (signed for K_I16)."""
        key = _key(row)
        attr = LIMIT_ROWS.get(key)
        if attr is not None:
            return int(getattr(self.limits, attr))
        if key in MEASURED_ROWS:
            return self._measured(key)
        return self.values[key]

    def _measured(self, key):
        pack = self.pack
        if key == "cell_count":
            return pack.cells
        if key == "capacity_ah":
            return int(round(pack.capacity_ah * 1e6)) & 0xFFFFFFFF
        if key == "remaining_capacity_ah":
            return int(round(pack.remaining_ah() * 1e6)) & 0xFFFFFFFF
        if key == "cycle_capacity_ah":
            return int(pack.cycle_ah * 1000) & 0xFFFFFFFF
        if key == "total_cycle_capacity_ah":
            return int(pack.cycle_ah * 1e6) & 0xFFFFFFFF
        return int(self.runtime()) & 0xFFFF  # runtime_s

    def set(self, row, raw):
        """A write reached the row (raw as sent: unsigned words)."""
        key = _key(row)
        if key in MEASURED_ROWS:
            return  # the BMS measures it
        if P.ROWS[row][P.KIND] == P.K_I16 and raw & 0x8000:
            raw -= 0x10000
        attr = LIMIT_ROWS.get(key)
        if attr is not None:
            setattr(self.limits, attr, raw)
        else:
            self.values[key] = raw

    def snapshot(self, protocol):
        """{key: raw} of every row `protocol` ("old"/"new") offers."""
        number = 1 if protocol == "old" else 2
        return {_key(i): self.get(i) for i in range(P.COUNT) if P.offered(i, number)}

    # -- OLD: 16-bit registers ---------------------------------------------------------

    def old_read(self, reg):
        where = _OLD_ROW.get(reg)
        if where is None:
            return self._old_raw.get(reg, 0xFFFF)
        row, high = where
        value = self.get(row) & 0xFFFFFFFF
        return (value >> 16) & 0xFFFF if high else value & 0xFFFF

    def old_write(self, reg, value):
        self.writes += 1
        self._old_pending[reg] = value

    def old_apply(self):
        """A5 A5 FF: what was written takes effect."""
        self.applies += 1
        pending = self._old_pending
        self._old_pending = {}
        for reg, value in pending.items():
            where = _OLD_ROW.get(reg)
            if where is None:
                self._old_raw[reg] = value
                continue
            row, high = where
            if P.ROWS[row][P.KIND] == P.K_U32:
                old = self.get(row) & 0xFFFFFFFF
                value = (old & 0xFFFF) | value << 16 if high else (old & 0xFFFF0000) | value
            self.set(row, value)

    # -- NEW: little-endian byte memory ---------------------------------------------------

    def _image(self):
        mem = bytearray(self._new_raw)
        for i in range(P.COUNT):
            addr = P.ROWS[i][P.NEW_ADDR]
            if addr >= 0:
                n = P.size(i)
                mem[addr : addr + n] = (self.get(i) & (0xFFFFFFFF if n == 4 else 0xFFFF)).to_bytes(n, "little")
        return mem

    def new_read(self, address, length):
        if address == DEVICE_INFO:
            return (self.device_info() + bytes(length))[:length]
        mem = self._image()
        out = bytes(mem[address : address + length])
        return out + b"\xff" * (length - len(out))

    def new_write(self, address, data):
        self.writes += 1
        end = min(NEW_SPACE, address + len(data))
        for i in range(address, end):
            self._new_raw[i] = data[i - address]
        for i in range(P.COUNT):
            addr = P.ROWS[i][P.NEW_ADDR]
            n = P.size(i)
            if addr >= 0 and address <= addr and addr + n <= address + len(data):
                key = _key(i)
                if key not in self._unsaved:
                    self._unsaved[key] = (i, self.get(i))
                k = addr - address
                self.set(i, int.from_bytes(bytes(data[k : k + n]), "little"))

    def new_save(self):
        """Control 0x07: the written values survive a reboot."""
        self.saves += 1
        self._unsaved = {}

    def reboot(self):
        """What was neither applied (OLD) nor saved (NEW) is lost."""
        self._old_pending = {}
        for row, value in self._unsaved.values():
            self.set(row, value & 0xFFFF if P.ROWS[row][P.KIND] == P.K_I16 else value)
        self._unsaved = {}

    def device_info(self):
        def field(text):
            raw = text.encode()[:16]
            return raw + bytes(16 - len(raw))

        return field(self.model) + field(self.firmware)
