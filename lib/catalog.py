# The field catalog: every value the bridge publishes, once, with what each
# face needs to present it. JSON (/api/status), Prometheus (/metrics), MQTT
# discovery (Home Assistant) and BTHome are all generated from these rows, so
# they can never disagree about a key, a unit or a scale.
#
# A row is a constant tuple (frozen into flash with the firmware, so it
# costs no RAM there):
#
#   (key, part, kind, unit, exp, metric, mtype, ha_class, ha_state, flags, bthome)
#
#   key       the JSON key inside its part's object ("status", "energy", ...)
#   part      the hub part it belongs to (P_*; also its change counter)
#   kind      how its raw value is read and written (K_*)
#   unit      the unit a person reads ("V", "A", "°C", ""), also HA's unit
#   exp       decimal exponent of the raw fixed-point int: raw 5312, exp -2
#             is 53.12 (faces format the digits; no float is ever made)
#   metric    Prometheus name without the "antbridge_" prefix (None: none)
#   mtype     M_GAUGE or M_COUNTER
#   ha_class  Home Assistant device_class (None: none)
#   ha_state  Home Assistant state_class (None: none)
#   flags     F_* bits
#   bthome    BTHome v2 object id (0: none); its own scale is the encoder's
#
# The hub (lib/hub.py) reads a row's raw value by its index; a face walks
# the rows of the parts it serves. Row indexes are stable constants (R_*),
# so a face can address one row without a lookup.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

# Parts: what changes together (the hub keeps one change counter each).
P_STATUS = const(0)  # a new status frame from the BMS
P_LINK = const(1)  # link state, line diagnosis, passive mode
P_OUTPUTS = const(2)  # DO1-DO3: a switch, an override, a mode
P_ACC = const(3)  # ACC wake / supply state
P_ENERGY = const(4)  # energy counters and time estimates
P_HEALTH = const(5)  # tasks, heap, settings/state errors, safe mode
P_EVENTS = const(6)  # a new entry in the event log
P_WIFI = const(7)  # network up/down, address, signal
PARTS = const(8)
PART_NAMES = ("status", "link", "outputs", "acc", "energy", "health", "events", "wifi")

# Kinds.
K_NUM = const(0)  # fixed-point int, always present once there is data
K_OPT = const(1)  # fixed-point int or None (not reported by this BMS / unknown)
K_BOOL = const(2)  # 0/1, JSON true/false
K_TEXT = const(3)  # an enum: raw int, text from the hub (JSON string; metric label)
K_CELLS = const(4)  # one value per cell (label "cell", 1-based)
K_PROBES = const(5)  # one value per probe slot, None when absent (label "probe")
K_STATE = const(6)  # MOSFET/balancer state: {"code", "on", "text"}
K_SPLIT3 = const(7)  # hi, lo with 3 digits: value = hi.lo (e.g. mAh + µAh)
K_LIST = const(8)  # a list of small ints (e.g. the balancing cells)
K_HEX = const(9)  # raw bytes as hex text, None when absent
K_OUTPUTS = const(10)  # one value per output (label "output" = its name)

M_GAUGE = const(0)
M_COUNTER = const(1)
MTYPE_NAMES = ("gauge", "counter")

F_DIAG = const(1)  # diagnostic: HA entity_category "diagnostic"
F_NO_JSON = const(2)  # the JSON face serves it another way (link, outputs)
F_NO_METRIC = const(4)
F_NO_HA = const(8)
F_NULL_IDLE = const(16)  # None when the value is meaningless now (time estimates)


ROWS = (
    # -- status: the BMS's own figures (the keys of `antbms decode`) --------------
    ("pack_voltage_v", P_STATUS, K_NUM, "V", -2, "pack_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0x4A),
    ("current_a", P_STATUS, K_NUM, "A", -1, "pack_current_amperes", M_GAUGE, "current", "measurement", 0, 0),
    ("power_w", P_STATUS, K_NUM, "W", 0, "pack_power_watts", M_GAUGE, "power", "measurement", 0, 0x5C),
    ("soc_pct", P_STATUS, K_NUM, "%", 0, "state_of_charge_percent", M_GAUGE, "battery", "measurement", 0, 0x01),
    ("soh_pct", P_STATUS, K_OPT, "%", 0, "state_of_health_percent", M_GAUGE, None, "measurement", F_DIAG, 0),
    ("capacity_ah", P_STATUS, K_SPLIT3, "Ah", -3, "capacity_ampere_hours", M_GAUGE, None, "measurement", F_DIAG, 0),
    ("remaining_ah", P_STATUS, K_SPLIT3, "Ah", -3, "remaining_ampere_hours", M_GAUGE, None, "measurement", 0, 0),
    ("cycle_ah", P_STATUS, K_SPLIT3, "Ah", 0, "cycle_ampere_hours_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("runtime_s", P_STATUS, K_NUM, "s", 0, "bms_runtime_seconds", M_GAUGE, "duration", "total_increasing", F_DIAG, 0),
    ("cell_count", P_STATUS, K_NUM, "", 0, "cell_count", M_GAUGE, None, None, F_DIAG, 0),
    ("cell_voltages_v", P_STATUS, K_CELLS, "V", -3, "cell_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0),
    ("cell_min_v", P_STATUS, K_NUM, "V", -3, "cell_min_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0),
    ("cell_min_index", P_STATUS, K_NUM, "", 0, "cell_min_index", M_GAUGE, None, None, F_DIAG, 0),
    ("cell_max_v", P_STATUS, K_NUM, "V", -3, "cell_max_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0),
    ("cell_max_index", P_STATUS, K_NUM, "", 0, "cell_max_index", M_GAUGE, None, None, F_DIAG, 0),
    ("cell_avg_v", P_STATUS, K_NUM, "V", -3, "cell_avg_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0),
    ("cell_delta_v", P_STATUS, K_NUM, "V", -3, "cell_delta_voltage_volts", M_GAUGE, "voltage", "measurement", 0, 0),
    ("temperatures_c", P_STATUS, K_PROBES, "°C", 0, "temperature_celsius", M_GAUGE, "temperature", "measurement", 0, 0x02),
    ("mosfet_temp_c", P_STATUS, K_OPT, "°C", 0, "mosfet_temperature_celsius", M_GAUGE, "temperature", "measurement", 0, 0),
    ("balancer_temp_c", P_STATUS, K_OPT, "°C", 0, "balancer_temperature_celsius", M_GAUGE, "temperature", "measurement", F_DIAG, 0),
    ("charge_mos", P_STATUS, K_STATE, "", 0, "charge_mos", M_GAUGE, None, None, 0, 0),
    ("discharge_mos", P_STATUS, K_STATE, "", 0, "discharge_mos", M_GAUGE, None, None, 0, 0),
    ("balancer", P_STATUS, K_STATE, "", 0, "balancer", M_GAUGE, None, None, 0, 0),
    ("balancing_cells", P_STATUS, K_LIST, "", 0, "balancing_cells", M_GAUGE, None, None, 0, 0),
    ("probe_slots", P_STATUS, K_NUM, "", 0, None, M_GAUGE, None, None, F_DIAG | F_NO_HA, 0),
    ("protection_flags", P_STATUS, K_HEX, "", 0, None, M_GAUGE, None, None, F_DIAG | F_NO_HA, 0),
    ("warning_flags", P_STATUS, K_HEX, "", 0, None, M_GAUGE, None, None, F_DIAG | F_NO_HA, 0),
    ("system_log", P_STATUS, K_OPT, "", 0, None, M_GAUGE, None, None, F_DIAG | F_NO_HA, 0),
    ("battery_state", P_STATUS, K_OPT, "", 0, None, M_GAUGE, None, None, F_DIAG | F_NO_HA, 0),
    ("chemistry", P_STATUS, K_TEXT, "", 0, None, M_GAUGE, None, None, F_DIAG, 0),
    ("discharge_gate_v", P_STATUS, K_NUM, "V", -1, None, M_GAUGE, "voltage", "measurement", F_DIAG | F_NO_HA, 0),
    ("charge_gate_v", P_STATUS, K_NUM, "V", -1, None, M_GAUGE, "voltage", "measurement", F_DIAG | F_NO_HA, 0),
    ("total_discharged_ah", P_STATUS, K_SPLIT3, "Ah", 0, "bms_discharged_ampere_hours_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("total_charged_ah", P_STATUS, K_SPLIT3, "Ah", 0, "bms_charged_ampere_hours_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("total_discharge_time_s", P_STATUS, K_OPT, "s", 0, None, M_GAUGE, "duration", "total_increasing", F_DIAG | F_NO_HA, 0),
    ("total_charge_time_s", P_STATUS, K_OPT, "s", 0, None, M_GAUGE, "duration", "total_increasing", F_DIAG | F_NO_HA, 0),
    ("alarms_active", P_STATUS, K_NUM, "", 0, "alarms_active", M_GAUGE, None, "measurement", F_NO_JSON, 0),
    # -- link (JSON: lib/link/describe.py's describe_link, the same sources) -------
    ("state", P_LINK, K_TEXT, "", 0, "link_state", M_GAUGE, "enum", None, F_NO_JSON, 0),
    ("live", P_LINK, K_BOOL, "", 0, "link_live", M_GAUGE, "connectivity", None, F_NO_JSON, 0),
    ("data_age_s", P_LINK, K_OPT, "s", -3, "data_age_seconds", M_GAUGE, "duration", "measurement", F_NO_JSON | F_DIAG, 0),
    ("frames_ok", P_LINK, K_NUM, "", 0, "link_frames_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG, 0),
    ("polls", P_LINK, K_NUM, "", 0, "link_polls_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("timeouts", P_LINK, K_NUM, "", 0, "link_timeouts_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG, 0),
    ("checksum_errors", P_LINK, K_NUM, "", 0, "link_checksum_errors_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG, 0),
    ("bytes_dropped", P_LINK, K_NUM, "", 0, "link_bytes_dropped_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("foreign_frames", P_LINK, K_NUM, "", 0, "link_foreign_frames_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("commands_ok", P_LINK, K_NUM, "", 0, "link_commands_ok_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("commands_failed", P_LINK, K_NUM, "", 0, "link_commands_failed_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    # -- outputs (JSON: the relays' describe(), the same sources) -------------------
    ("output_on", P_OUTPUTS, K_OUTPUTS, "", 0, "output_on", M_GAUGE, None, None, F_NO_JSON, 0),
    ("output_pin", P_OUTPUTS, K_OUTPUTS, "", 0, "output_pin_asserted", M_GAUGE, None, None, F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("output_switches", P_OUTPUTS, K_OUTPUTS, "", 0, "output_switches_total", M_COUNTER, None, "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    ("output_on_seconds", P_OUTPUTS, K_OUTPUTS, "s", 0, "output_on_seconds_total", M_COUNTER, "duration", "total_increasing", F_NO_JSON | F_DIAG | F_NO_HA, 0),
    # -- ACC and the isolated supply ---------------------------------------------------
    ("state", P_ACC, K_TEXT, "", 0, "acc_state", M_GAUGE, "enum", None, F_DIAG, 0),
    ("acc", P_ACC, K_BOOL, "", 0, "acc_asserted", M_GAUGE, None, None, F_DIAG, 0),
    ("supply", P_ACC, K_BOOL, "", 0, "supply_on", M_GAUGE, "power", None, F_DIAG, 0),
    ("wakes_ok", P_ACC, K_NUM, "", 0, "acc_wakes_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("wake_failures", P_ACC, K_NUM, "", 0, "acc_wake_failures_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    # -- energy counted by the bridge --------------------------------------------------
    ("charged_kwh", P_ENERGY, K_SPLIT3, "kWh", -3, "charged_kilowatt_hours_total", M_COUNTER, "energy", "total_increasing", 0, 0),
    ("discharged_kwh", P_ENERGY, K_SPLIT3, "kWh", -3, "discharged_kilowatt_hours_total", M_COUNTER, "energy", "total_increasing", 0, 0),
    ("charged_ah", P_ENERGY, K_SPLIT3, "Ah", 0, "charged_ampere_hours_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("discharged_ah", P_ENERGY, K_SPLIT3, "Ah", 0, "discharged_ampere_hours_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("time_to_empty_s", P_ENERGY, K_OPT, "s", 0, "time_to_empty_seconds", M_GAUGE, "duration", "measurement", F_NULL_IDLE, 0),
    ("time_to_full_s", P_ENERGY, K_OPT, "s", 0, "time_to_full_seconds", M_GAUGE, "duration", "measurement", F_NULL_IDLE, 0),
    ("power_mismatch", P_ENERGY, K_BOOL, "", 0, "power_mismatch", M_GAUGE, "problem", None, F_DIAG, 0),
    # -- the bridge itself ---------------------------------------------------------------
    ("uptime_s", P_HEALTH, K_NUM, "s", 0, "uptime_seconds", M_GAUGE, "duration", "total_increasing", F_DIAG, 0),
    ("heap_free", P_HEALTH, K_NUM, "B", 0, "heap_free_bytes", M_GAUGE, "data_size", "measurement", F_DIAG, 0),
    ("heap_min_free", P_HEALTH, K_NUM, "B", 0, "heap_min_free_bytes", M_GAUGE, "data_size", "measurement", F_DIAG | F_NO_HA, 0),
    ("task_restarts", P_HEALTH, K_NUM, "", 0, "task_restarts_total", M_COUNTER, None, "total_increasing", F_DIAG, 0),
    ("safe_mode", P_HEALTH, K_BOOL, "", 0, "safe_mode", M_GAUGE, "problem", None, F_DIAG, 0),
    # -- Wi-Fi (JSON: /api/wifi and /api/health's "wifi", from the same state) -----------
    ("rssi_dbm", P_WIFI, K_OPT, "dBm", 0, "wifi_rssi_dbm", M_GAUGE, "signal_strength", "measurement", F_DIAG, 0),
    ("connected", P_WIFI, K_BOOL, "", 0, "wifi_connected", M_GAUGE, "connectivity", None, F_DIAG, 0),
)
COUNT = const(71)

# Stable indexes of the rows the faces address directly.
R_PACK_V = const(0)
R_CURRENT = const(1)
R_POWER = const(2)
R_SOC = const(3)
R_CELLS = const(10)
R_CELL_MIN = const(11)
R_CELL_MAX = const(13)
R_TEMPS = const(17)
R_ALARMS = const(36)
R_LINK_STATE = const(37)
R_LIVE = const(38)
R_OUTPUT_ON = const(48)
R_ACC_STATE = const(52)
R_CHARGED_KWH = const(57)
R_TTE = const(61)
R_TTF = const(62)
R_UPTIME = const(64)
R_WIFI_RSSI = const(69)
R_WIFI_UP = const(70)

# Row fields. (Every row is a literal of constants, so the whole table is
# one constant object: frozen into flash, it costs no RAM.)
KEY = const(0)
PART = const(1)
KIND = const(2)
UNIT = const(3)
EXP = const(4)
METRIC = const(5)
MTYPE = const(6)
HA_CLASS = const(7)
HA_STATE = const(8)
FLAGS = const(9)
BTHOME = const(10)


def find(part, key):
    """Index of the row with this part and key, -1 when there is none."""
    for i in range(COUNT):
        row = ROWS[i]
        if row[PART] == part and row[KEY] == key:
            return i
    return -1


def part_rows(part):
    """Indexes of a part's rows, in catalog order (allocates: faces only)."""
    return [i for i in range(COUNT) if ROWS[i][PART] == part]
