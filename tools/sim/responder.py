# The protocol side of the simulated BMS: a verified request frame in, the
# reply frames out (built with lib/ant), effects applied to the device.
#
# Behaviour (reference §2.1, §2.6, §3.1, §3.5-3.7 and host_tests/linkharness):
#   OLD  5A 5A 00 .. / DB DB 00 ..   -> 140-byte status
#        5A 5A REG                   -> 5A 5A REG value (FFFF = unknown; the
#                                       parameters of sim/registers.py)
#        A5 A5 F1..F3                -> A5 A5 F5 00 01 F6 (rejected), always
#        A5 A5 F4                    -> echo if the password is right, else reject
#        A5 A5 REG (control/write)   -> echo (0xFC: the new balancer state), or
#                                       the reject frame without the password;
#                                       a register write waits for A5 A5 FF
#   NEW  0x01 -> 0x11 status; 0x02 -> 0x12 + FF 0B trailer (0x026C = device
#        info); 0x22 -> 0x42 echo + FF 0A trailer (FF 01 without permission);
#        0x23 -> 0x43 level 5 / 0; 0x51 -> 0x61 ACK result 1 (3 without the
#        password), none for reboot/shutdown/factory reset.
from ant import commands, new, old
from ant.checksum import crc16_modbus
from ant.framer import KIND_NEW, KIND_OLD_SHORT

STATUS = "status"
ECHO = "echo"
ACK = "ack"

# Reverse maps of lib/ant/commands.CONTROLS.
_OLD_CONTROLS = {}
_NEW_CONTROLS = {}
for _name, (_old_entry, _new_reg) in commands.CONTROLS.items():
    if _old_entry is not None:
        _OLD_CONTROLS[_old_entry] = _name
    if _new_reg is not None:
        _NEW_CONTROLS[_new_reg] = _name
_OLD_TOGGLE_REG = 0xFC
_OLD_PASSWORD_LAST = old.REG_PASSWORD_1 + 3
_WRITE_OK = 0x0A
_READ_OK = 0x0B
_NO_PERMISSION = 0x01
REJECT = bytes(old.short_frame(old.HEAD_WRITE, old.REG_REJECTED, 1))


def old_control_name(reg, value):
    name = _OLD_CONTROLS.get((reg, value))
    if name is None and reg not in (0xF9, 0xFA):
        name = _OLD_CONTROLS.get((reg, 0))
    return name


def trailer(code):
    """The 6 bytes 0x12/0x42 replies carry between CRC and AA 55."""
    t = bytearray((0xFF, code, 0, 0, 0, 0))
    crc = crc16_modbus(t, 0, 4)
    t[4] = crc & 0xFF
    t[5] = crc >> 8
    return bytes(t)


def with_trailer(frame, code):
    return frame[:-2] + trailer(code) + frame[-2:]


class Responder:
    def __init__(self, device):
        self.dev = device
        self._old_password = bytearray()

    def reset_session(self):
        self._old_password = bytearray()

    def handle(self, frame, kind, source="bridge"):
        """Replies [(latency class, bytes)] to one verified frame."""
        dev = self.dev
        if kind == KIND_NEW and dev.protocol in ("new", "both"):
            return self._new(frame, source)
        if kind == KIND_OLD_SHORT and dev.protocol in ("old", "both"):
            return self._old(frame, source)
        return []

    # -- OLD ------------------------------------------------------------------

    def _old(self, f, source):
        dev = self.dev
        head, reg, value = f[0], f[2], (f[3] << 8) | f[4]
        if head in (old.HEAD_READ, old.HEAD_DATA) and reg == 0:
            dev.count_request(source)
            return [(STATUS, dev.status_frame("old"))]
        if head == old.HEAD_DATA:
            return []  # DB DB 01 .. "screen switch": nothing to send
        if head == old.HEAD_READ:
            return [(ECHO, bytes(old.short_frame(old.HEAD_READ, reg, dev.registers.old_read(reg))))]
        if head != old.HEAD_WRITE:
            return []
        if old.REG_PASSWORD_1 <= reg <= _OLD_PASSWORD_LAST:
            if reg == old.REG_PASSWORD_1 or len(self._old_password) >= 8:
                self._old_password = bytearray()  # bounded: a new entry starts
            self._old_password += bytes(((value >> 8) & 0xFF, value & 0xFF))
            if reg == _OLD_PASSWORD_LAST:
                given = bytes(self._old_password).rstrip(b"\x00")
                if dev.check_password(given):
                    return [(ECHO, bytes(f))]
            return [(ECHO, REJECT)]
        name = old_control_name(reg, value)
        if not dev.permitted():
            dev.reject(name or "write-0x%02x" % reg)
            return [(ECHO, REJECT)]
        if name is None:
            dev.registers.old_write(reg, value)
            return [(ECHO, bytes(f))]
        result = dev.control(name, "old")
        echo_value = value
        if reg == _OLD_TOGGLE_REG:
            echo_value = 1 if result else 0
        return [(ECHO, bytes(old.short_frame(old.HEAD_WRITE, reg, echo_value)))]

    # -- NEW ------------------------------------------------------------------

    def _new(self, f, source):
        dev = self.dev
        func = f[2]
        address = f[3] | (f[4] << 8)
        length = f[5]
        if func == new.FN_STATUS:
            dev.count_request(source)
            return [(STATUS, dev.status_frame("new"))]
        if func == new.FN_READ:
            data = dev.registers.new_read(address, length)
            return [(ACK, with_trailer(new.frame(new.REPLY_READ, address, length, data), _READ_OK))]
        if func == new.FN_WRITE:
            data = bytes(f[6 : 6 + length])
            if not dev.permitted():
                dev.reject("write-0x%04x" % address)
                code = _NO_PERMISSION
            else:
                dev.registers.new_write(address, data)
                code = _WRITE_OK
            return [(ACK, with_trailer(new.frame(new.REPLY_WRITE, address, length, data), code))]
        if func == new.FN_PASSWORD:
            given = bytes(f[6 : 6 + length]).rstrip(b"\x00")
            level = 5 if dev.check_password(given) else 0
            return [(ACK, new.frame(new.REPLY_PASSWORD, address, 2, bytes((level, 0))))]
        if func == new.FN_CONTROL:
            name = _NEW_CONTROLS.get(address)
            if name is None:
                return [(ACK, new.frame(new.REPLY_CONTROL, address, 2, bytes((2, 0))))]
            if not dev.permitted():
                dev.reject(name)
                return [(ACK, new.frame(new.REPLY_CONTROL, address, 2, bytes((3, 0))))]
            dev.control(name, "new")
            if name in commands.NO_ACK:
                return []
            return [(ACK, new.frame(new.REPLY_CONTROL, address, 2, bytes((1, 0))))]
        if func == new.FN_BLOCK:
            return [(ACK, new.frame(new.REPLY_BLOCK, address, length, bytes(length)))]
        if func == new.FN_SYSINFO:
            return [(ACK, new.frame(new.REPLY_SYSINFO, address, length, bytes(length)))]
        return []
