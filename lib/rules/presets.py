# Ready-made rule sets for the common jobs; docs/rules.md explains each and
# host_tests/test_lib_rules_presets.py replays a scenario for each. get()
# returns a fresh copy, so a caller may edit it (names, thresholds) and
# combine several into one config with merge().

CHARGER = {
    # Charger enable: on once SOC falls below 80 %, off at 90 %; and off at
    # any cell >= 3.55 V until the highest cell is back at <= 3.40 V.
    "outputs": [{
        "name": "charger",
        "when": {"all": [
            {"soc": {"below": 80, "hyst": 10}},
            {"cell_max_v": {"on": 3.40, "off": 3.55}},
        ]},
        "min_off_s": 60,
        "fail_safe": "off",
    }],
}

LOAD_SHED = {
    # Load contactor: connected at SOC >= 30 %, cut at <= 20 %, 30 s after
    # the pre-alarm (which starts at <= 22 %, or at the cut condition at the
    # latest) began to blink.
    "outputs": [
        {
            "name": "load",
            "when": {"soc": {"on": 30, "off": 20}},
            "off_delay_s": 30,
            "fail_safe": {"stale": "hold", "lost": "off", "error": "hold"},
        },
        {
            "name": "prealarm",
            "when": {"soc": {"on": 22, "off": 30}},
            "blink": {"on_s": 1, "off_s": 1},
            "fail_safe": "on",
        },
    ],
}

HEATER = {
    # Pad heater: below 5 °C (off again at 8 °C), only while charging is
    # wanted (SOC below 95 %); a missing probe keeps it off.
    "outputs": [{
        "name": "heater",
        "when": {"all": [
            {"temp_min_c": {"below": 5, "hyst": 3}},
            {"soc": {"below": 95, "hyst": 3}},
        ]},
        "min_on_s": 120,
        "min_off_s": 120,
        "max_on_s": 14400,
        "fail_safe": "off",
    }],
}

FAN = {
    # MOSFET fan: on above 45 °C, off at 40 °C; runs when the sensor is
    # missing or the data is stale.
    "outputs": [{
        "name": "fan",
        "when": {"mosfet_c": {"above": 45, "hyst": 5}, "if_unknown": True},
        "min_on_s": 60,
        "fail_safe": "on",
    }],
}

ALARM = {
    # Alarm relay, normally energised: released (alarm) on any protection
    # flag, on a lost link (a wake that failed) and when the bridge loses
    # power. Stale data alone holds it: a BMS that dozed off is woken through
    # ACC long before the link counts as lost, and a routine sleep is no
    # alarm.
    "outputs": [{
        "name": "alarm",
        "when": {"protection": "any", "if_unknown": False},
        "inverted": True,
        "fail_safe": {"stale": "hold", "lost": "on", "error": "on"},
    }],
}

GENERATOR = {
    # Generator start/stop: start at SOC <= 20 % (<= 10 % during quiet hours
    # 22:00-07:00), stop at >= 80 %; run at least an hour, rest 10 minutes,
    # at most 2 starts an hour; a 15-minute exercise run every 14 days at 10:00.
    "outputs": [{
        "name": "generator",
        "when": {"soc": {"on": 20, "off": 80, "quiet": {"on": 10, "off": 80}}},
        "quiet_hours": {"from": "22:00", "to": "07:00"},
        "min_on_s": 3600,
        "min_off_s": 600,
        "max_switches_per_hour": 2,
        "exercise": {"every_days": 14, "minutes": 15, "at": "10:00"},
        "fail_safe": {"stale": "hold", "lost": "off", "error": "hold"},
    }],
}

PRESETS = {
    "charger": CHARGER,
    "load_shed": LOAD_SHED,
    "heater": HEATER,
    "fan": FAN,
    "alarm": ALARM,
    "generator": GENERATOR,
}


def _copy(v):
    if isinstance(v, dict):
        return dict((k, _copy(v[k])) for k in v)
    if isinstance(v, list):
        return [_copy(x) for x in v]
    return v


def get(name):
    """A fresh copy of preset `name` (a whole config dict)."""
    return _copy(PRESETS[name])


def merge(*names):
    """One config with the outputs of several presets, in order."""
    outputs = []
    for n in names:
        for out in PRESETS[n]["outputs"]:
            outputs.append(_copy(out))
    return {"outputs": outputs}
