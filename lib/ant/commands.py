# Every request and command of both generations, by name (reference §2.1,
# §2.6, §3.3, §3.5-3.7). Names are what the CLI, the HTTP API and MQTT use.
from ant import new, old
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD

# name -> ((old register, old value) or None, new control register or None)
CONTROLS = {
    "charge-on": ((0xFA, 1), 0x06),
    "charge-off": ((0xFA, 0), 0x04),
    "discharge-on": ((0xF9, 1), 0x03),
    "discharge-off": ((0xF9, 0), 0x01),
    "balancer-on": (None, 0x0D),
    "balancer-off": (None, 0x0E),
    "balancer-toggle": ((0xFC, 0), None),  # OLD has only a toggle
    "buzzer-on": (None, 0x1E),
    "buzzer-off": (None, 0x1F),
    "reboot": ((0xFE, 0), 0x09),
    "shutdown": ((0xF7, 0), 0x0B),
    "factory-reset": ((0xFD, 0), 0x0C),
    "clear-log": (None, 0x0F),
    "zero-current": ((0xF8, 0), 0x08),
    "lfp-preset": ((0xFB, 0), 0x28),
    "lto-preset": ((0xF0, 0), 0x26),
    "liion-preset": (None, 0x27),
    "save": ((old.REG_APPLY, 0), 0x07),  # OLD "apply", NEW "save parameters"
    "bluetooth-init": (None, 0x10),
    "bluetooth-off": (None, 0x1C),
    "bluetooth-on": (None, 0x1D),
    "bluetooth-address": ((0xF6, 0), None),
    "clear-discharge-ah": (None, 0x20),
    "clear-charge-ah": (None, 0x21),
    "clear-discharge-time": (None, 0x22),
    "clear-charge-time": (None, 0x23),
    "clear-runtime": (None, 0x24),
    "clear-protect-time": (None, 0x25),
    "reset-hardware": (None, 0x2A),
    "save-customer-data": (None, 0x2C),
}

# NEW controls the BMS does not acknowledge (it restarts or powers down).
NO_ACK = ("reboot", "shutdown", "factory-reset")

# OLD status requests that real units answer (reference §2.1): the UART form
# first, then the app/BLE form.
OLD_STATUS_REQUESTS = (
    b"\x5a\x5a\x00\x00\x01\x01",
    b"\xdb\xdb\x00\x00\x00\x00",
    b"\x5a\x5a\x00\x00\x00\x00",
)
NEW_STATUS_REQUEST = new.frame(new.FN_STATUS, 0x0000, new.STATUS_LEN_BYTE)

# NEW password slots: level 5 takes 12 characters, levels 1-4 take 8.
NEW_PASSWORD_SLOTS = {5: 0x016A, 1: 0x014A, 2: 0x0152, 3: 0x015A, 4: 0x0162}


class Unsupported(ValueError):
    pass


def _protocol(protocol):
    if protocol in ("old", PROTOCOL_OLD):
        return PROTOCOL_OLD
    if protocol in ("new", PROTOCOL_NEW):
        return PROTOCOL_NEW
    raise ValueError("protocol must be 'old' or 'new'")


def control(name, protocol):
    """The frame of control `name` in `protocol` ('old'/'new' or 1/2)."""
    entry = CONTROLS.get(name)
    if entry is None:
        raise Unsupported("unknown command: " + name)
    if _protocol(protocol) == PROTOCOL_OLD:
        if entry[0] is None:
            raise Unsupported(name + " does not exist in the old protocol")
        return bytes(old.short_frame(old.HEAD_WRITE, entry[0][0], entry[0][1]))
    if entry[1] is None:
        raise Unsupported(name + " does not exist in the new protocol")
    return new.frame(new.FN_CONTROL, entry[1], 0)


def supported(name, protocol):
    entry = CONTROLS.get(name)
    if entry is None:
        return False
    return entry[0 if _protocol(protocol) == PROTOCOL_OLD else 1] is not None


def status_request(protocol, variant=0):
    if _protocol(protocol) == PROTOCOL_OLD:
        return OLD_STATUS_REQUESTS[variant]
    return NEW_STATUS_REQUEST


def device_info_request():
    return new.frame(new.FN_READ, new.DEVICE_INFO_ADDR, new.DEVICE_INFO_LEN)


def block_request():
    """Function 0x04 (12-byte block, content undocumented)."""
    return new.frame(new.FN_BLOCK, 0x0000, 0x0C)


def system_info_request():
    """Function 0x05 (event counters, 40 bytes)."""
    return new.frame(new.FN_SYSINFO, 0x0000, 0x28)


def read_param(protocol, address, length=2):
    """Read a parameter: OLD register `address` (5A 5A reg 00 00 sum), NEW
    `length` bytes from `address` (function 0x02)."""
    if _protocol(protocol) == PROTOCOL_OLD:
        if not 0 <= address <= 0xFF:
            raise ValueError("old register must be 0..255")
        return bytes(old.short_frame(old.HEAD_READ, address, 0))
    if not 0 <= address <= 0xFFFF or not 1 <= length <= 0xFF:
        raise ValueError("new address must be 0..0xFFFF and length 1..255")
    return new.frame(new.FN_READ, address, length)


def write_param(protocol, address, value, length=2):
    """Write a parameter; returns the frames to send in order: OLD write +
    apply (A5 A5 FF), NEW write (0x22) + save (control 0x07)."""
    if _protocol(protocol) == PROTOCOL_OLD:
        if not 0 <= address <= 0xFF or not 0 <= value <= 0xFFFF:
            raise ValueError("old register 0..255, value 0..65535")
        return (
            bytes(old.short_frame(old.HEAD_WRITE, address, value)),
            control("save", PROTOCOL_OLD),
        )
    if length not in (1, 2, 4) or not 0 <= address <= 0xFFFF:
        raise ValueError("new write length must be 1, 2 or 4 bytes")
    if not 0 <= value < (1 << (8 * length)):
        raise ValueError("value does not fit in %d bytes" % length)
    data = bytes((value >> (8 * i)) & 0xFF for i in range(length))
    return (new.frame(new.FN_WRITE, address, length, data), control("save", PROTOCOL_NEW))


def password(protocol, secret, address=None):
    """Password entry: OLD four writes F1..F4 (8 characters), NEW function
    0x23 to the level-5 slot (12 characters) unless another slot address is
    given (8-character slots: NEW_PASSWORD_SLOTS)."""
    if _protocol(protocol) == PROTOCOL_OLD:
        return old.password_frames(secret)
    raw = secret.encode() if isinstance(secret, str) else bytes(secret)
    if not 1 <= len(raw) <= 16:
        raise ValueError("new-protocol password must be 1..16 characters")
    return new.frame(new.FN_PASSWORD, new.PASSWORD_ADDR if address is None else address, len(raw), raw)
