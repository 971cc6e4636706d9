# A board's pin map: one JSON file per board in boards/, validated here so no
# other file names a pin.
#
#   board = load(json.load(f))            # ConfigError(path, reason) if unsafe
#   for pin, level in boot_levels(board): # first thing in boot.py
#       Pin(pin, Pin.OUT, value=level)
#   do1_pin.value(board.do[0].level(on))  # logical on/off -> pin level
#
# Layout (the same groups firmware/hw.py reads):
#
# The rules are per chip family, from Espressif's documentation:
#   ESP32    ESP32 datasheet v4.x §2.2 pin list and §3.3 / table "Strapping
#            Pins"; ESP-IDF GPIO reference (esp32): GPIO0-19, 21-23, 25-27,
#            32-39 exist (20 only on ESP32-PICO-V3); 6-11 are SPI0/1 (flash);
#            16/17 are PSRAM on WROVER (quad PSRAM) modules; strapping pins
#            0, 2, 5, 12 (MTDI: flash voltage), 15 (MTDO: ROM log); 1/3 are
#            UART0 TX/RX (ROM boot log, REPL); 34-39 are input only (GPI)
#            and have no internal pull-up/down.
#   ESP32-C3 ESP32-C3 datasheet §2 pin list and "Strapping Pins": GPIO0-21;
#            12-17 are SPI flash (in-package on C3FN4/FH4); 11 is VDD_SPI
#            unless an eFuse turns it into a GPIO; strapping pins 2 (must be
#            1 for both SPI and download boot), 8, 9 (boot mode); 18/19 are
#            USB D-/D+ of the USB-Serial-JTAG controller (pulled by the USB
#            PHY at reset: glitches); 20/21 are UART0 RX/TX (ROM boot log).
#   ESP32-S3 ESP32-S3 datasheet §2 pin list and "Strapping Pins"; ESP-IDF
#            DevKitC-1 guide: GPIO0-21, 26-48; 26-32 are SPI flash/PSRAM;
#            33-37 are also taken on octal-PSRAM (R8) and octal-flash
#            modules; strapping pins 0 (boot mode), 3 (JTAG source), 45
#            (VDD_SPI voltage), 46 (boot mode / ROM log); 19/20 are USB
#            D-/D+; 43/44 are UART0 TX/RX (ROM boot log).
#
# An output (relay/SSR driver, ACC, supply enable, UART TX) must not sit on a
# strapping pin or a pin that glitches at reset: the relay would click, or
# the BMS would be woken, on every reset. The status LED is exempt (a flicker
# is harmless) but not from the flash, range and input-only rules. An input
# driven by an external circuit (sense optocouplers, UART RX) must not sit on
# a strapping pin either: it could change the boot mode. The BOOT button is
# the one input that belongs on a strapping pin.
import schema

CHIPS = ("esp32", "esp32c3", "esp32s3", "host")
PSRAM = ("none", "quad", "octal")

# The file's groups: {"name", "chip", "psram", "notes", "micropython":
# {board, variant}, "uart": {id, tx, rx}, "outputs": {role: {pin, active,
# boot, kind, reset}}, "inputs": {role: {pin, active, pull, reset}}}; every
# role is optional (absent or null: not fitted). "micropython" names the
# MicroPython v1.28 board (ports/esp32/boards/<board>) and variant ("" = the
# standard one) `make firmware` builds for it; a board without it (the host)
# has no firmware image.
OUTPUTS = ("do1", "do2", "do3", "acc", "supply_enable", "led")
SENSES = ("do1_sense", "do2_sense", "do3_sense")
INPUTS = SENSES + ("boot_button",)
_TOP = ("name", "chip", "psram", "notes", "micropython", "uart", "outputs", "inputs")


def _span(a, b):
    return tuple(range(a, b + 1))


class _Chip:
    def __init__(self, valid, flash, psram_quad, psram_octal, no_output, strapping, input_only, uart_ids):
        self.valid = valid
        self.flash = flash
        self.psram_quad = psram_quad  # also unusable on quad-PSRAM modules
        self.psram_octal = psram_octal  # also unusable on octal-PSRAM modules
        self.no_output = no_output  # strapping or glitching at reset: (pin, why)
        self.strapping = strapping
        self.input_only = input_only
        self.uart_ids = uart_ids  # UARTs free for the BMS (UART0 is the REPL)


_RULES = {
    "esp32": _Chip(
        valid=_span(0, 19) + (21, 22, 23, 25, 26, 27) + _span(32, 39),
        flash=_span(6, 11),
        psram_quad=(16, 17),
        psram_octal=None,
        no_output={
            0: "strapping pin (boot mode)",
            2: "strapping pin (boot mode)",
            5: "strapping pin (SDIO timing), outputs at reset",
            12: "strapping pin (MTDI: flash voltage)",
            15: "strapping pin (MTDO: ROM log), outputs at reset",
            1: "UART0 TX: the ROM boot log toggles it",
            3: "UART0 RX (console)",
        },
        strapping=(0, 2, 5, 12, 15),
        input_only=_span(34, 39),
        uart_ids=(1, 2),
    ),
    "esp32c3": _Chip(
        valid=_span(0, 21),
        flash=(11,) + _span(12, 17),
        psram_quad=None,
        psram_octal=None,
        no_output={
            2: "strapping pin (must be high at boot)",
            8: "strapping pin (boot mode)",
            9: "strapping pin (boot mode)",
            18: "USB D- (USB-Serial-JTAG): glitches at reset",
            19: "USB D+ (USB-Serial-JTAG): pulled up at reset",
            20: "UART0 RX (console)",
            21: "UART0 TX: the ROM boot log toggles it",
        },
        strapping=(2, 8, 9),
        input_only=(),
        uart_ids=(1,),
    ),
    "esp32s3": _Chip(
        valid=_span(0, 21) + _span(26, 48),
        flash=_span(26, 32),
        psram_quad=None,
        psram_octal=_span(33, 37),
        no_output={
            0: "strapping pin (boot mode)",
            3: "strapping pin (JTAG source)",
            45: "strapping pin (VDD_SPI voltage)",
            46: "strapping pin (boot mode, ROM log)",
            19: "USB D- : glitches at reset",
            20: "USB D+ : pulled up at reset",
            43: "UART0 TX: the ROM boot log toggles it",
            44: "UART0 RX (console)",
        },
        strapping=(0, 3, 45, 46),
        input_only=(),
        uart_ids=(1, 2),
    ),
    "host": _Chip(
        valid=range(0, 256),
        flash=(),
        psram_quad=None,
        psram_octal=None,
        no_output={},
        strapping=(),
        input_only=(),
        uart_ids=range(0, 10),
    ),
}


class Output:
    """A driven pin; `active` is the pin level that means ON."""

    def __init__(self, role, pin, active, boot, kind, reset):
        self.role = role
        self.pin = pin
        self.active = active
        self.boot = boot  # logical state driven at boot (1 = on)
        self.kind = kind  # "gpio", or "ws2812" for an addressable status LED
        self.reset = reset  # what the pin does while the ESP32 resets

    def level(self, on):
        return self.active if on else 1 - self.active


class Input:
    """A read pin; `active` is the pin level that means asserted."""

    def __init__(self, role, pin, active, pull, reset):
        self.role = role
        self.pin = pin
        self.active = active
        self.pull = pull  # "none", "up", "down": internal pull to enable
        self.reset = reset

    def asserted(self, value):
        return (1 if value else 0) == self.active


class Board:
    def __init__(self):
        self.name = ""
        self.chip = "host"
        self.psram = "none"
        self.mp_board = ""  # MicroPython board, e.g. "ESP32_GENERIC_S3"; "": none
        self.mp_variant = ""  # its variant, e.g. "SPIRAM_OCT"; "": the standard one
        self.uart_id = 0
        self.uart_tx = 0
        self.uart_rx = 0
        self.uart_reset = ""
        self.do = [None, None, None]  # type: list[Output | None]  # DO1..DO3
        self.acc = None  # type: Output | None
        self.supply_enable = None  # type: Output | None
        self.led = None  # type: Output | None
        self.sense = [None, None, None]  # type: list[Input | None]  # the BMS's own DO1..DO3
        self.boot_button = None  # type: Input | None
        self.notes = ""

    def outputs(self):
        out = []
        for o in self.do + [self.acc, self.supply_enable, self.led]:
            if o is not None:
                out.append(o)
        return out

    def inputs(self):
        out = []
        for i in self.sense + [self.boot_button]:
            if i is not None:
                out.append(i)
        return out

    def describe(self):
        d = {"name": self.name, "chip": self.chip, "psram": self.psram,
             "uart": {"id": self.uart_id, "tx": self.uart_tx, "rx": self.uart_rx}}
        if self.mp_board:
            d["micropython"] = {"board": self.mp_board, "variant": self.mp_variant}
        d["outputs"] = {}
        d["inputs"] = {}
        for o in self.outputs():
            d["outputs"][o.role] = {"pin": o.pin, "active": o.active, "boot": o.boot, "kind": o.kind}
        for i in self.inputs():
            d["inputs"][i.role] = {"pin": i.pin, "active": i.active, "pull": i.pull}
        return d


def _pin(d, path, rules):
    p = schema.integer(d, "pin", path, None, 0, 255)
    if p not in rules.valid:
        raise schema.ConfigError(schema.join(path, "pin"), "GPIO" + str(p) + " does not exist on this chip")
    return p


def _output(d, role, rules):
    path = "outputs." + role
    e = schema.obj(d[role], path, ("pin", "active", "boot", "kind", "reset"))
    pin = _pin(e, path, rules)
    kind = "gpio"
    if role == "led":
        kind = schema.string(e, "kind", path, "gpio", ("gpio", "ws2812"))
    elif "kind" in e:
        raise schema.ConfigError(schema.join(path, "kind"), "only the led has a kind")
    active = schema.integer(e, "active", path, 1, 0, 1)
    boot = schema.integer(e, "boot", path, 1 if role == "supply_enable" else 0, 0, 1)
    reset = schema.string(e, "reset", path, "", None, 300)
    return Output(role, pin, active, boot, kind, reset)


def _input(d, role, rules):
    path = "inputs." + role
    e = schema.obj(d[role], path, ("pin", "active", "pull", "reset"))
    pin = _pin(e, path, rules)
    active = schema.integer(e, "active", path, 0, 0, 1)
    pull = schema.string(e, "pull", path, "none", ("none", "up", "down"))
    reset = schema.string(e, "reset", path, "", None, 300)
    return Input(role, pin, active, pull, reset)


def load(d):
    """Validate a board dict (see boards/*.json) into a Board; raises
    schema.ConfigError(path, reason) naming the offending pin."""
    schema.obj(d, "", _TOP)
    b = Board()
    b.name = schema.string(d, "name", "", None, None, 80)
    b.chip = schema.string(d, "chip", "", None, CHIPS)
    rules = _RULES[b.chip]
    b.psram = schema.string(d, "psram", "", "none", PSRAM)
    if b.psram == "quad" and rules.psram_quad is None and b.chip != "host":
        raise schema.ConfigError("psram", "no quad-PSRAM module rule for " + b.chip)
    if b.psram == "octal" and rules.psram_octal is None and b.chip != "host":
        raise schema.ConfigError("psram", b.chip + " has no octal-PSRAM modules")
    b.notes = schema.string(d, "notes", "", "", None, 1000)
    if d.get("micropython") is not None:
        m = schema.obj(d["micropython"], "micropython", ("board", "variant"))
        b.mp_board = _mp_name(m, "board", None)
        b.mp_variant = _mp_name(m, "variant", "")

    if "uart" not in d:
        raise schema.ConfigError("uart", "required")
    u = schema.obj(d["uart"], "uart", ("id", "tx", "rx", "reset"))
    b.uart_id = schema.integer(u, "id", "uart", None, 0, 9)
    if b.uart_id not in rules.uart_ids:
        raise schema.ConfigError("uart.id", "must be one of " + ", ".join([str(i) for i in rules.uart_ids])
                                 + " (UART0 is the console)")
    b.uart_tx = _uart_pin(u, "tx", rules)
    b.uart_rx = _uart_pin(u, "rx", rules)
    b.uart_reset = schema.string(u, "reset", "uart", "", None, 300)

    outs = schema.obj(d.get("outputs", {}), "outputs", OUTPUTS)
    ins = schema.obj(d.get("inputs", {}), "inputs", INPUTS)
    for k in range(3):
        role = OUTPUTS[k]
        if outs.get(role) is not None:
            b.do[k] = _output(outs, role, rules)
        role = SENSES[k]
        if ins.get(role) is not None:
            b.sense[k] = _input(ins, role, rules)
    for role in ("acc", "supply_enable", "led"):
        if outs.get(role) is not None:
            setattr(b, role, _output(outs, role, rules))
    if ins.get("boot_button") is not None:
        b.boot_button = _input(ins, "boot_button", rules)

    _check(b, rules)
    return b


def _mp_name(m, key, default):
    """A MicroPython board or variant name: upper case, digits, underscores."""
    v = schema.string(m, key, "micropython", default, None, 40)
    for c in v:
        if not ("A" <= c <= "Z" or "0" <= c <= "9" or c == "_"):
            raise schema.ConfigError("micropython." + key, "must be a MicroPython name like ESP32_GENERIC")
    if key == "board" and not v:
        raise schema.ConfigError("micropython.board", "must not be empty")
    return v


def _uart_pin(u, key, rules):
    p = schema.integer(u, key, "uart", None, 0, 255)
    if p not in rules.valid:
        raise schema.ConfigError("uart." + key, "GPIO" + str(p) + " does not exist on this chip")
    return p


def _check(b, rules):
    # (user, path, pin, is_output, externally driven input, exempt from the
    # glitch rule)
    uses = [("uart.tx", "uart.tx", b.uart_tx, True, False, False),
            ("uart.rx", "uart.rx", b.uart_rx, False, True, False)]
    for o in b.outputs():
        uses.append((o.role, "outputs." + o.role + ".pin", o.pin, True, False, o.role == "led"))
    for i in b.inputs():
        uses.append((i.role, "inputs." + i.role + ".pin", i.pin, False, i.role != "boot_button", False))
    seen = {}
    for user, path, pin, is_out, driven, exempt in uses:
        if pin in seen:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is already used by " + seen[pin])
        seen[pin] = user
        if pin in rules.flash:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is wired to the SPI flash")
        if b.psram == "quad" and rules.psram_quad is not None and pin in rules.psram_quad:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is wired to the PSRAM on quad-PSRAM modules")
        if b.psram == "octal" and rules.psram_octal is not None and pin in rules.psram_octal:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is wired to the octal PSRAM")
        if is_out and pin in rules.input_only:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is input only")
        if is_out and not exempt and pin in rules.no_output:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " must not drive an output: " + rules.no_output[pin])
        if driven and pin in rules.strapping:
            raise schema.ConfigError(path, "GPIO" + str(pin) + " is a strapping pin: an external driver could change the boot mode")
    for i in b.inputs():
        if i.pull != "none" and i.pin in rules.input_only:
            raise schema.ConfigError("inputs." + i.role + ".pull", "GPIO" + str(i.pin) + " has no internal pull resistor; use an external one and pull: none")


def boot_levels(board):
    """(pin, level) for every plain output, in the level that holds its
    configured boot state (DOs and ACC off, the supply as configured). The
    firmware drives these first thing in boot.py."""
    out = []
    for o in board.outputs():
        if o.kind == "gpio":
            out.append((o.pin, o.level(o.boot)))
    return out


def load_file(path):
    import json

    with open(path) as f:
        return load(json.load(f))
