# Meanings of the MOSFET and balancer state codes (reference §2.3; both
# generations use the same numbers). Only the faces import this module.

CHARGE_MOS = (
    "off",
    "on",
    "cell over-voltage",
    "over-current",
    "battery full",
    "pack over-voltage",
    "battery over-temperature",
    "MOSFET over-temperature",
    "abnormal current",
    "balance wire disconnected",
    "board over-temperature",
    "reserved",
    "switch-on failed",
    "discharge MOSFET fault",
    "waiting",
    "manually switched off",
    "level-2 over-voltage",
    "low-temperature protection",
    "cell voltage difference too high",
    "reserved",
    "self-check error",
)

DISCHARGE_MOS = (
    "off",
    "on",
    "cell under-voltage",
    "over-current",
    "level-2 over-current",
    "pack under-voltage",
    "battery over-temperature",
    "MOSFET over-temperature",
    "abnormal current",
    "balance wire disconnected",
    "board over-temperature",
    "charge MOSFET on",
    "short circuit",
    "discharge MOSFET fault",
    "start-up exception",
    "manually switched off",
    "level-2 under-voltage",
    "low-temperature protection",
    "cell voltage difference too high",
    "self-check error",
)

BALANCER = (
    "off",
    "cell above balance limit",
    "charge spread too big",
    "balancer over-temperature",
    "automatic balancing",
    "manual balancing",
)
_BALANCER_BOARD_OVERTEMP = 10

# Which balancer codes mean "balancing now" (Wnt's reading of the vendor app).
BALANCER_ACTIVE = (1, 2, 4, 5)

CHEMISTRY = {0xFAF1: "NMC", 0xFAF2: "LiFePO4", 0xFAF3: "LTO", 0xFAF4: "custom"}

CONTROL_RESULT = ("", "ok", "failed", "no permission")


def _text(table, code):
    if 0 <= code < len(table):
        return table[code]
    return "unknown code " + str(code)


def charge_text(code):
    return _text(CHARGE_MOS, code)


def discharge_text(code):
    return _text(DISCHARGE_MOS, code)


def balancer_text(code):
    if code == _BALANCER_BOARD_OVERTEMP:
        return "board over-temperature"
    return _text(BALANCER, code)


def mos_on(code):
    """A MOSFET is on only for code 1; every other code names why it is off."""
    return code == 1


def balancer_on(code):
    return code in BALANCER_ACTIVE


def control_result_text(result):
    return _text(CONTROL_RESULT, result) if result else "unknown result 0"
