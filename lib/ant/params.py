# The BMS's own settings ("system parameters" in the vendor apps) of both
# generations (reference §2.6 OLD registers, §3.7 NEW addresses), one
# constant row per parameter, frozen into flash with the firmware:
#
#   (key, name, unit, exp, group, old_reg, new_addr, kind, lo, hi, flags)
#
#   key       stable snake_case key; its suffix is the unit of the value
#   name      plain-language name
#   unit      the unit of the value ("mV", "V", "A", "s", "°C", "%", "")
#   exp       decimal exponent of the raw int: value = raw * 10**exp (OLD
#             register 7 raw 608, exp -1: 60.8 V). The tables hold no float
#   group     the vendor app's page: voltage, temperature, current, balance,
#             battery, system
#   old_reg   OLD register (5A 5A REG read, A5 A5 REG write); 0 = none.
#             K_U32: this register holds the low word, the next the high
#   new_addr  NEW address (function 0x02 read, 0x22 write, LE); -1 = none
#   kind      K_U16, K_I16 (temperatures), K_U32
#   lo, hi    the raw range a write may carry (writable rows only)
#   flags     F_WRITE: the bridge may write it; F_UNVERIFIED_OLD/_NEW: the
#             reference does not settle its scale or meaning in that
#             generation (served as read, flagged "verified": false)
#
# Ranges are this project's choice unless a row says otherwise: no public
# source states what real units accept. They are kept conservative (a
# threshold inside what LTO, LiFePO4 and NMC packs of 8-32 cells use; delays
# and currents as low as protection still works), and the BMS's own check
# stays in force (a NEW write answers "below min"/"above max"; every write
# is read back). Calibration values, cell count and type, capacities and
# short-circuit settings are read-only here: changing those belongs with the
# vendor's tool and the pack in front of you.
#
# One key may name a register in each generation (the same setting on both
# families); the serving face shows the rows of the BMS's generation only.
# Registers the reference names "unknown" (OLD 43, 47; NEW 0x001C, 0x001E,
# 0x0034, 0x0036) and NEW temperature settings (a page at 0x0038 whose
# layout no source gives) are left out.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

KEY = const(0)
NAME = const(1)
UNIT = const(2)
EXP = const(3)
GROUP = const(4)
OLD_REG = const(5)
NEW_ADDR = const(6)
KIND = const(7)
LO = const(8)
HI = const(9)
FLAGS = const(10)

K_U16 = const(0)
K_I16 = const(1)
K_U32 = const(2)

F_WRITE = const(1)
F_UNVERIFIED_OLD = const(2)
F_UNVERIFIED_NEW = const(4)

GROUPS = ("voltage", "temperature", "current", "balance", "battery", "system")

# The NEW pages the vendor app reads as one block each (reference §3.7: the
# app reads 0x0000 LEN 0x38; Wnt lists the pages current (104, 32), balance
# (140, 12), battery (152, 142), other (378, 18)). A read of everything is
# one block read per page that holds a row.
NEW_PAGES = ((0x0000, 0x38), (0x0068, 0x20), (0x008C, 0x0C), (0x0098, 0x8E), (0x017A, 0x12))

ROWS = (
    # -- voltage: cell thresholds 1500-4500 mV (LTO's lowest to NMC's highest,
    # our choice), pack thresholds 5.0-150.0 V (8-32 cells), differences
    # 5-1000 mV.
    ("cell_ov_protection_mv", "Cell over-voltage protection", "mV", 0, "voltage", 3, 0x0000, K_U16, 1500, 4500,
     F_WRITE),
    ("cell_ov_recovery_mv", "Cell over-voltage recovery", "mV", 0, "voltage", 5, 0x0002, K_U16, 1500, 4500, F_WRITE),
    ("cell_ov_protection_l2_mv", "Cell over-voltage protection, level 2", "mV", 0, "voltage", 0, 0x0004, K_U16,
     1500, 4500, F_WRITE),
    ("cell_ov_recovery_l2_mv", "Cell over-voltage recovery, level 2", "mV", 0, "voltage", 0, 0x0006, K_U16, 1500,
     4500, F_WRITE),
    ("pack_ov_protection_v", "Pack over-voltage protection", "V", -1, "voltage", 7, 0x0008, K_U16, 50, 1500, F_WRITE),
    ("pack_ov_recovery_v", "Pack over-voltage recovery", "V", -1, "voltage", 0, 0x000A, K_U16, 50, 1500, F_WRITE),
    ("cell_uv_protection_mv", "Cell under-voltage protection", "mV", 0, "voltage", 4, 0x000C, K_U16, 1500, 4500,
     F_WRITE),
    ("cell_uv_recovery_mv", "Cell under-voltage recovery", "mV", 0, "voltage", 6, 0x000E, K_U16, 1500, 4500, F_WRITE),
    ("cell_uv_protection_l2_mv", "Cell under-voltage protection, level 2", "mV", 0, "voltage", 0, 0x0010, K_U16,
     1500, 4500, F_WRITE),
    ("cell_uv_recovery_l2_mv", "Cell under-voltage recovery, level 2", "mV", 0, "voltage", 0, 0x0012, K_U16, 1500,
     4500, F_WRITE),
    ("pack_uv_protection_v", "Pack under-voltage protection", "V", -1, "voltage", 8, 0x0014, K_U16, 50, 1500, F_WRITE),
    ("pack_uv_recovery_v", "Pack under-voltage recovery", "V", -1, "voltage", 0, 0x0016, K_U16, 50, 1500, F_WRITE),
    ("cell_diff_protection_mv", "Cell voltage difference protection", "mV", 0, "voltage", 44, 0x0018, K_U16, 5, 1000,
     F_WRITE),
    ("cell_diff_recovery_mv", "Cell voltage difference recovery", "mV", 0, "voltage", 0, 0x001A, K_U16, 5, 1000,
     F_WRITE),
    # Warnings (NEW 0x0020-0x0032 in this order: the decoded block read of
    # the reference's vectors; OLD 1 and 2 are the "alarm"/"warning" levels).
    ("cell_ov_warning_mv", "Cell over-voltage warning", "mV", 0, "voltage", 1, 0x0020, K_U16, 1500, 4500, F_WRITE),
    ("cell_ov_warning_recovery_mv", "Cell over-voltage warning recovery", "mV", 0, "voltage", 0, 0x0022, K_U16, 1500,
     4500, F_WRITE),
    ("pack_ov_warning_v", "Pack over-voltage warning", "V", -1, "voltage", 0, 0x0024, K_U16, 50, 1500, F_WRITE),
    ("pack_ov_warning_recovery_v", "Pack over-voltage warning recovery", "V", -1, "voltage", 0, 0x0026, K_U16, 50,
     1500, F_WRITE),
    ("cell_uv_warning_mv", "Cell under-voltage warning", "mV", 0, "voltage", 2, 0x0028, K_U16, 1500, 4500, F_WRITE),
    ("cell_uv_warning_recovery_mv", "Cell under-voltage warning recovery", "mV", 0, "voltage", 0, 0x002A, K_U16,
     1500, 4500, F_WRITE),
    ("pack_uv_warning_v", "Pack under-voltage warning", "V", -1, "voltage", 0, 0x002C, K_U16, 50, 1500, F_WRITE),
    ("pack_uv_warning_recovery_v", "Pack under-voltage warning recovery", "V", -1, "voltage", 0, 0x002E, K_U16, 50,
     1500, F_WRITE),
    ("cell_diff_warning_mv", "Cell voltage difference warning", "mV", 0, "voltage", 0, 0x0030, K_U16, 5, 1000,
     F_WRITE),
    ("cell_diff_warning_recovery_mv", "Cell voltage difference warning recovery", "mV", 0, "voltage", 0, 0x0032,
     K_U16, 5, 1000, F_WRITE),
    ("shutdown_voltage_mv", "Cell shutdown voltage", "mV", 0, "voltage", 0, 0x009E, K_U16, 1500, 4500, F_WRITE),
    # -- temperature (OLD only; signed °C): high limits 20-100 °C, MOSFET
    # 50-120 °C, low limits -40..+30 °C (our choice).
    ("charge_ot_protection_c", "Charge over-temperature protection", "°C", 0, "temperature", 25, -1, K_I16, 20, 100,
     F_WRITE),
    ("charge_ot_recovery_c", "Charge over-temperature recovery", "°C", 0, "temperature", 26, -1, K_I16, 20, 100,
     F_WRITE),
    ("discharge_ot_protection_c", "Discharge over-temperature protection", "°C", 0, "temperature", 27, -1, K_I16, 20,
     100, F_WRITE),
    ("discharge_ot_recovery_c", "Discharge over-temperature recovery", "°C", 0, "temperature", 28, -1, K_I16, 20, 100,
     F_WRITE),
    ("mosfet_ot_protection_c", "MOSFET over-temperature protection", "°C", 0, "temperature", 29, -1, K_I16, 50, 120,
     F_WRITE),
    ("mosfet_ot_recovery_c", "MOSFET over-temperature recovery", "°C", 0, "temperature", 30, -1, K_I16, 50, 120,
     F_WRITE),
    ("charge_ut_protection_c", "Charge low-temperature protection", "°C", 0, "temperature", 37, -1, K_I16, -40, 30,
     F_WRITE),
    ("charge_ut_recovery_c", "Charge low-temperature recovery", "°C", 0, "temperature", 38, -1, K_I16, -40, 30,
     F_WRITE),
    ("discharge_ut_protection_c", "Discharge low-temperature protection", "°C", 0, "temperature", 39, -1, K_I16, -40,
     30, F_WRITE),
    ("discharge_ut_recovery_c", "Discharge low-temperature recovery", "°C", 0, "temperature", 40, -1, K_I16, -40, 30,
     F_WRITE),
    # -- current: 1.0-1000.0 A, delays 1-60 s (level 2: 10-5000 ms).
    ("charge_oc_protection_a", "Charge over-current protection", "A", -1, "current", 9, 0x0068, K_U16, 10, 10000,
     F_WRITE),
    ("charge_oc_delay_s", "Charge over-current delay", "s", 0, "current", 10, 0x006A, K_U16, 1, 60, F_WRITE),
    ("discharge_oc_protection_a", "Discharge over-current protection", "A", -1, "current", 11, 0x006C, K_U16, 10,
     10000, F_WRITE),
    ("discharge_oc_delay_s", "Discharge over-current delay", "s", 0, "current", 12, 0x006E, K_U16, 1, 60, F_WRITE),
    ("discharge_oc_protection_l2_a", "Discharge over-current protection, level 2", "A", -1, "current", 0, 0x0070,
     K_U16, 10, 10000, F_WRITE),
    ("discharge_oc_delay_l2_ms", "Discharge over-current delay, level 2", "ms", 0, "current", 0, 0x0072, K_U16, 10,
     5000, F_WRITE),
    ("short_circuit_a", "Short-circuit protection current", "A", 0, "current", 20, 0x0074, K_U16, 0, 0, 0),
    ("short_circuit_delay_us", "Short-circuit protection delay", "µs", 0, "current", 21, 0x0076, K_U16, 0, 0, 0),
    ("charge_oc_warning_a", "Charge over-current warning", "A", -1, "current", 0, 0x007C, K_U16, 10, 10000, F_WRITE),
    ("charge_oc_warning_recovery_a", "Charge over-current warning recovery", "A", -1, "current", 0, 0x007E, K_U16, 10,
     10000, F_WRITE),
    ("discharge_oc_warning_a", "Discharge over-current warning", "A", -1, "current", 0, 0x0080, K_U16, 10, 10000,
     F_WRITE),
    ("discharge_oc_warning_recovery_a", "Discharge over-current warning recovery", "A", -1, "current", 0, 0x0082,
     K_U16, 10, 10000, F_WRITE),
    ("requested_charge_current_a", "Requested charge current", "A", -1, "current", 0, 0x00A0, K_U16, 0, 10000,
     F_WRITE),
    # OLD 19: the PDF says 0.1 A, the app divides by 1 (reference §2.6).
    ("start_current_a", "Start current", "A", -1, "current", 19, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("current_sensor_range", "Current sensor range (calibration)", "", 0, "current", 18, -1, K_U16, 0, 0, 0),
    # -- balance: voltages 1500-4500 mV, differences 1-500 mV, current
    # 10-2000 mA; the OLD level is the reference's 1..20.
    ("balance_voltage_mv", "Balancing voltage (a cell above it is balanced)", "mV", 0, "balance", 13, 0x008C, K_U16,
     1500, 4500, F_WRITE),
    ("balance_start_mv", "Balancing start voltage (while charging)", "mV", 0, "balance", 14, 0x008E, K_U16, 1500,
     4500, F_WRITE),
    ("balance_on_diff_mv", "Balancing on difference", "mV", 0, "balance", 15, 0x0090, K_U16, 1, 500, F_WRITE),
    ("balance_off_diff_mv", "Balancing off difference", "mV", 0, "balance", 0, 0x0092, K_U16, 1, 500, F_WRITE),
    ("balance_current_ma", "Balancing current", "mA", 0, "balance", 0, 0x0094, K_U16, 10, 2000, F_WRITE),
    ("balance_level", "Balancing current level (1-20)", "", 0, "balance", 16, -1, K_U16, 1, 20, F_WRITE),
    # What this current gates is not documented: shown, not written.
    ("balance_charge_current_a", "Balancing charging current", "A", -1, "balance", 0, 0x0096, K_U16, 0, 0, 0),
    # -- battery. The NEW u32 capacities: ESPHome reads 1 Ah, Wnt µAh
    # (reference §9.7); served in µAh like the status frame, unverified.
    ("cell_count", "Number of cells", "", 0, "battery", 24, 0x009A, K_U16, 0, 0, 0),
    ("cell_type", "Cell type (code)", "", 0, "battery", 0, 0x0098, K_U16, 0, 0, 0),
    ("capacity_ah", "Full capacity", "Ah", -6, "battery", 31, 0x00A2, K_U32, 0, 0, F_UNVERIFIED_NEW),
    ("remaining_capacity_ah", "Remaining capacity", "Ah", -6, "battery", 33, 0x00A6, K_U32, 0, 0, F_UNVERIFIED_NEW),
    ("cycle_capacity_ah", "Cycle capacity", "Ah", -3, "battery", 35, -1, K_U32, 0, 0, 0),
    ("total_cycle_capacity_ah", "Total cycle capacity", "Ah", -6, "battery", 0, 0x00AA, K_U32, 0, 0,
     F_UNVERIFIED_NEW),
    ("soc_method", "SOC method (code)", "", 0, "battery", 0, 0x00C4, K_U16, 0, 0, 0),
    ("internal_resistance_cal_mohm", "Internal resistance calibration", "mΩ", 0, "battery", 0, 0x009C, K_U16, 0, 0,
     0),
    ("soc_low_warning_pct", "Low SOC warning, level 1", "%", 0, "battery", 0, 0x0084, K_U16, 0, 100, F_WRITE),
    ("soc_low_warning_l2_pct", "Low SOC warning, level 2", "%", 0, "battery", 0, 0x0086, K_U16, 0, 100, F_WRITE),
    # OLD 51-74: the app divides the raw value by 10; no source names the unit.
    ("cell_resistance_1", "Cell 1 connection resistance", "", -1, "battery", 51, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_2", "Cell 2 connection resistance", "", -1, "battery", 52, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_3", "Cell 3 connection resistance", "", -1, "battery", 53, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_4", "Cell 4 connection resistance", "", -1, "battery", 54, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_5", "Cell 5 connection resistance", "", -1, "battery", 55, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_6", "Cell 6 connection resistance", "", -1, "battery", 56, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_7", "Cell 7 connection resistance", "", -1, "battery", 57, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_8", "Cell 8 connection resistance", "", -1, "battery", 58, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_9", "Cell 9 connection resistance", "", -1, "battery", 59, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_10", "Cell 10 connection resistance", "", -1, "battery", 60, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_11", "Cell 11 connection resistance", "", -1, "battery", 61, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_12", "Cell 12 connection resistance", "", -1, "battery", 62, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_13", "Cell 13 connection resistance", "", -1, "battery", 63, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_14", "Cell 14 connection resistance", "", -1, "battery", 64, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_15", "Cell 15 connection resistance", "", -1, "battery", 65, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_16", "Cell 16 connection resistance", "", -1, "battery", 66, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_17", "Cell 17 connection resistance", "", -1, "battery", 67, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_18", "Cell 18 connection resistance", "", -1, "battery", 68, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_19", "Cell 19 connection resistance", "", -1, "battery", 69, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_20", "Cell 20 connection resistance", "", -1, "battery", 70, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_21", "Cell 21 connection resistance", "", -1, "battery", 71, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_22", "Cell 22 connection resistance", "", -1, "battery", 72, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_23", "Cell 23 connection resistance", "", -1, "battery", 73, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    ("cell_resistance_24", "Cell 24 connection resistance", "", -1, "battery", 74, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
    # -- system. Standby: 60-65535 s (our choice: a BMS that sleeps within a
    # minute of no current leaves the bridge waking it all the time).
    ("standby_s", "No-current standby time", "s", 0, "system", 22, -1, K_U16, 60, 65535, F_WRITE),
    ("reference_voltage_mv", "System reference voltage (calibration)", "mV", 0, "system", 17, -1, K_U16, 0, 0, 0),
    ("voltage_calibration", "Pack voltage ADC calibration", "", 0, "system", 23, -1, K_U16, 0, 0, 0),
    ("tire_length_mm", "Tire length (speed feature)", "mm", 0, "system", 41, 0x017A, K_U16, 100, 5000, F_WRITE),
    ("pulses_per_turn", "Pulses per wheel turn (speed feature)", "", 0, "system", 42, 0x017C, K_U16, 1, 1000,
     F_WRITE),
    ("module_number", "Secondary module number", "", 0, "system", 0, 0x017E, K_U16, 0, 0, 0),
    ("firmware_id", "Firmware / protocol id", "", 0, "system", 90, -1, K_U16, 0, 0, 0),
    # A 16-bit register for a counter that passes 65535 s in 18 hours.
    ("runtime_s", "Runtime", "s", 0, "system", 100, -1, K_U16, 0, 0, F_UNVERIFIED_OLD),
)
COUNT = const(99)  # len(ROWS): checked by the tests


def find(key):
    """Row index of `key`, or -1."""
    for i in range(COUNT):
        if ROWS[i][KEY] == key:
            return i
    return -1


def offered(row, protocol):
    """Does the row exist in `protocol` (ant.status PROTOCOL_OLD = 1 /
    PROTOCOL_NEW = 2)?"""
    r = ROWS[row]
    return r[OLD_REG] > 0 if protocol == 1 else (r[NEW_ADDR] >= 0 if protocol == 2 else False)


def verified(row, protocol):
    return not ROWS[row][FLAGS] & (F_UNVERIFIED_OLD if protocol == 1 else F_UNVERIFIED_NEW)


def size(row):
    """Bytes the value takes (NEW LEN; OLD: registers * 2)."""
    return 4 if ROWS[row][KIND] == K_U32 else 2
