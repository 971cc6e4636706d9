# Board pin maps (boards/*.json, lib/board.py): every shipped file is valid
# and complete, and each safety rule rejects a board that breaks it.
import copy
import glob
import json
import os

import pytest

import board
from schema import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FILES = sorted(glob.glob(os.path.join(ROOT, "boards", "*.json")))
REQUIRED = ("esp32-devkitc.json", "esp32-c3-supermini.json", "esp32-s3-devkitc-1.json", "host.json")


def read(name):
    with open(os.path.join(ROOT, "boards", name)) as f:
        return json.load(f)


def test_the_required_boards_are_shipped():
    names = [os.path.basename(p) for p in FILES]
    for name in REQUIRED:
        assert name in names


@pytest.mark.parametrize("path", FILES, ids=os.path.basename)
def test_shipped_board_is_valid_and_documented(path):
    b = board.load_file(path)
    assert b.name and b.chip in board.CHIPS
    assert all(o is not None for o in b.do) and b.acc is not None and b.led is not None
    pins = [b.uart_tx, b.uart_rx] + [o.pin for o in b.outputs()] + [i.pin for i in b.inputs()]
    assert len(pins) == len(set(pins))
    # Every pin says what it does while the ESP32 resets.
    for p in b.outputs() + b.inputs():
        assert p.reset, (path, p.role)
    # DOs and ACC boot OFF; the supply boots ON (the link survives a reset).
    levels = dict(board.boot_levels(b))
    for o in b.do + [b.acc]:
        assert o is not None and levels[o.pin] == 1 - o.active
    if b.supply_enable is not None:
        assert levels[b.supply_enable.pin] == b.supply_enable.active


def test_boot_levels_follow_active_level_and_boot_state():
    d = read("host.json")
    out = d["outputs"]
    out["do1"] = {"pin": 10, "active": 0}  # active-low relay board: off = high
    out["do2"] = {"pin": 11, "active": 1, "boot": 1}  # configured to boot on
    out["supply_enable"] = {"pin": 14, "active": 0}  # default boot state: on
    out["led"] = {"pin": 15, "kind": "ws2812"}  # no plain level
    b = board.load(d)
    levels = dict(board.boot_levels(b))
    assert levels[10] == 1 and levels[11] == 1 and levels[12] == 0 and levels[14] == 0
    assert 15 not in levels
    assert b.do[0].level(True) == 0 and b.do[0].level(False) == 1
    assert b.boot_button is not None and b.boot_button.asserted(0) and not b.boot_button.asserted(1)


def bad(name, change):
    d = copy.deepcopy(read(name))
    change(d)
    with pytest.raises(ConfigError) as info:
        board.load(d)
    return info.value


def setter(path, value):
    def change(d):
        keys = path.split(".")
        target = d
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value

    return change


# (board file, field, value, error path, reason fragment)
NEGATIVE = [
    # pin in the chip's range
    ("esp32-devkitc.json", "outputs.do1.pin", 24, "outputs.do1.pin", "does not exist"),
    ("esp32-devkitc.json", "outputs.do1.pin", 40, "outputs.do1.pin", "does not exist"),
    ("esp32-c3-supermini.json", "outputs.do1.pin", 22, "outputs.do1.pin", "does not exist"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 23, "outputs.do1.pin", "does not exist"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 49, "outputs.do1.pin", "does not exist"),
    ("esp32-devkitc.json", "uart.tx", 20, "uart.tx", "does not exist"),
    # duplicates
    ("esp32-devkitc.json", "outputs.do2.pin", 25, "outputs.do2.pin", "already used by do1"),
    ("esp32-devkitc.json", "outputs.acc.pin", 17, "outputs.acc.pin", "already used by uart.tx"),
    ("host.json", "inputs.boot_button.pin", 10, "inputs.boot_button.pin", "already used by do1"),
    # flash / PSRAM
    ("esp32-devkitc.json", "outputs.do1.pin", 6, "outputs.do1.pin", "SPI flash"),
    ("esp32-devkitc.json", "outputs.do1.pin", 11, "outputs.do1.pin", "SPI flash"),
    ("esp32-devkitc.json", "psram", "quad", "uart.tx", "PSRAM"),  # UART on 16/17 of a WROVER
    ("esp32-c3-supermini.json", "outputs.do1.pin", 12, "outputs.do1.pin", "SPI flash"),
    ("esp32-c3-supermini.json", "outputs.do1.pin", 17, "outputs.do1.pin", "SPI flash"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 26, "outputs.do1.pin", "SPI flash"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 35, "outputs.do1.pin", "octal PSRAM"),
    ("esp32-s3-devkitc-1.json", "psram", "quad", "psram", "no quad-PSRAM"),
    ("esp32-c3-supermini.json", "psram", "octal", "psram", "no octal-PSRAM"),
    # strapping / reset-glitch pins as outputs
    ("esp32-devkitc.json", "outputs.do1.pin", 0, "outputs.do1.pin", "strapping"),
    ("esp32-devkitc.json", "outputs.do1.pin", 2, "outputs.do1.pin", "strapping"),
    ("esp32-devkitc.json", "outputs.acc.pin", 5, "outputs.acc.pin", "strapping"),
    ("esp32-devkitc.json", "outputs.do3.pin", 12, "outputs.do3.pin", "strapping"),
    ("esp32-devkitc.json", "outputs.supply_enable.pin", 15, "outputs.supply_enable.pin", "strapping"),
    ("esp32-devkitc.json", "outputs.do1.pin", 1, "outputs.do1.pin", "UART0"),
    ("esp32-devkitc.json", "outputs.do1.pin", 3, "outputs.do1.pin", "UART0"),
    ("esp32-c3-supermini.json", "outputs.do1.pin", 2, "outputs.do1.pin", "strapping"),
    ("esp32-c3-supermini.json", "outputs.acc.pin", 9, "outputs.acc.pin", "strapping"),
    ("esp32-c3-supermini.json", "outputs.do1.pin", 18, "outputs.do1.pin", "USB"),
    ("esp32-c3-supermini.json", "outputs.do1.pin", 19, "outputs.do1.pin", "USB"),
    ("esp32-c3-supermini.json", "uart.tx", 21, "uart.tx", "UART0"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 0, "outputs.do1.pin", "strapping"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 3, "outputs.do1.pin", "strapping"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 45, "outputs.do1.pin", "strapping"),
    ("esp32-s3-devkitc-1.json", "outputs.acc.pin", 46, "outputs.acc.pin", "strapping"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 19, "outputs.do1.pin", "USB"),
    ("esp32-s3-devkitc-1.json", "outputs.do1.pin", 20, "outputs.do1.pin", "USB"),
    ("esp32-s3-devkitc-1.json", "uart.tx", 43, "uart.tx", "UART0"),
    # input-only pins never drive
    ("esp32-devkitc.json", "outputs.do1.pin", 34, "outputs.do1.pin", "input only"),
    ("esp32-devkitc.json", "outputs.acc.pin", 36, "outputs.acc.pin", "input only"),
    ("esp32-devkitc.json", "uart.tx", 38, "uart.tx", "input only"),
    ("esp32-devkitc.json", "outputs.led.pin", 37, "outputs.led.pin", "input only"),
    # ... and have no internal pulls
    ("esp32-devkitc.json", "inputs.do1_sense.pull", "up", "inputs.do1_sense.pull", "no internal pull"),
    # externally driven inputs off strapping pins
    ("esp32-devkitc.json", "inputs.do1_sense.pin", 12, "inputs.do1_sense.pin", "strapping"),
    ("esp32-c3-supermini.json", "inputs.do1_sense.pin", 2, "inputs.do1_sense.pin", "strapping"),
    ("esp32-s3-devkitc-1.json", "uart.rx", 46, "uart.rx", "strapping"),
    # UART0 is the console
    ("esp32-devkitc.json", "uart.id", 0, "uart.id", "console"),
    ("esp32-c3-supermini.json", "uart.id", 2, "uart.id", "console"),
    # field checks
    ("esp32-devkitc.json", "outputs.do1.active", 2, "outputs.do1.active", "<= 1"),
    ("esp32-devkitc.json", "chip", "esp8266", "chip", "one of"),
    ("esp32-devkitc.json", "outputs.do1.kind", "ws2812", "outputs.do1.kind", "only the led"),
    ("esp32-devkitc.json", "outputs.do1.colour", "red", "outputs.do1.colour", "unknown key"),
    ("esp32-devkitc.json", "relay", {}, "relay", "unknown key"),
    ("esp32-devkitc.json", "outputs.relay", {"pin": 13}, "outputs.relay", "unknown key"),
    ("esp32-devkitc.json", "inputs.button", {"pin": 13}, "inputs.button", "unknown key"),
    ("esp32-devkitc.json", "outputs.do1.pin", "25", "outputs.do1.pin", "integer"),
    # the MicroPython board `make firmware` builds
    ("esp32-devkitc.json", "micropython.board", "esp32_generic", "micropython.board", "MicroPython name"),
    ("esp32-devkitc.json", "micropython.board", "", "micropython.board", "must not be empty"),
    ("esp32-devkitc.json", "micropython.variant", "SPIRAM-OCT", "micropython.variant", "MicroPython name"),
    ("esp32-devkitc.json", "micropython.flash", "4MB", "micropython.flash", "unknown key"),
    ("esp32-devkitc.json", "micropython", "ESP32_GENERIC", "micropython", "must be an object"),
]


@pytest.mark.parametrize("name,field,value,path,reason", NEGATIVE)
def test_rule_rejects(name, field, value, path, reason):
    err = bad(name, setter(field, value))
    assert err.path == path, (err.path, str(err))
    assert reason in err.reason, err.reason


def test_the_status_led_may_sit_on_a_strapping_pin_but_not_on_flash():
    d = read("esp32-devkitc.json")
    d["outputs"]["led"]["pin"] = 2  # the classic on-board LED of ESP32 DevKit v1 clones
    assert board.load(d).led.pin == 2
    d["outputs"]["led"]["pin"] = 7
    with pytest.raises(ConfigError):
        board.load(d)


def test_boot_button_belongs_on_a_strapping_pin():
    for name in ("esp32-devkitc.json", "esp32-c3-supermini.json", "esp32-s3-devkitc-1.json"):
        b = board.load(read(name))
        assert b.boot_button is not None and b.boot_button.pin in board._RULES[b.chip].strapping


def test_esp32_boards_name_their_micropython_board_and_the_host_none():
    for name in ("esp32-devkitc.json", "esp32-c3-supermini.json", "esp32-s3-devkitc-1.json"):
        b = board.load(read(name))
        assert b.mp_board.startswith("ESP32_GENERIC"), name
        assert b.describe()["micropython"] == {"board": b.mp_board, "variant": b.mp_variant}
    host = board.load(read("host.json"))
    assert host.mp_board == "" and "micropython" not in host.describe()


def test_missing_uart_is_reported():
    d = read("host.json")
    del d["uart"]
    with pytest.raises(ConfigError) as info:
        board.load(d)
    assert info.value.path == "uart"
