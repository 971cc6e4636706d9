# Parameter registers of both generations (reference §2.6 and §3.7), mapped
# onto the Limits object so that a write changes the simulated protections.
# A register the table does not know reads FFFF (OLD) or whatever was last
# written / zero (NEW), like an unused slot.
import struct

# Limits attribute -> (OLD register, NEW address). NEW values are u16 LE.
_LIMITS = {
    "cell_ov_alarm_mv": (1, 0x0020),
    "cell_uv_warn_mv": (2, 0x0024),
    "cell_ov_mv": (3, 0x0000),
    "cell_uv_mv": (4, 0x000C),
    "cell_ov_recover_mv": (5, 0x0002),
    "cell_uv_recover_mv": (6, 0x000E),
    "charge_oc_da": (9, 0x0068),
    "charge_oc_delay_s": (10, 0x006A),
    "discharge_oc_da": (11, 0x006C),
    "discharge_oc_delay_s": (12, 0x006E),
    "balance_start_mv": (14, 0x008E),
    "balance_diff_mv": (15, 0x0090),
    "balance_current_ma": (None, 0x0094),
    "standby_s": (22, None),
    "charge_ot_c": (25, None),
    "charge_ot_recover_c": (26, None),
    "discharge_ot_c": (27, None),
    "discharge_ot_recover_c": (28, None),
    "mosfet_ot_c": (29, None),
    "mosfet_ot_recover_c": (30, None),
    "charge_ut_c": (37, None),
    "charge_ut_recover_c": (38, None),
    "discharge_ut_c": (39, None),
    "discharge_ut_recover_c": (40, None),
    "chemistry": (None, 0x0098),
}
OLD_REGISTERS = {old: name for name, (old, new) in _LIMITS.items() if old is not None}
NEW_ADDRESSES = {new: name for name, (old, new) in _LIMITS.items() if new is not None}
OLD_FIXED = {13: 3400, 41: 1000, 42: 23, 90: 12006, 0xFF: 0}  # balance limit, tire, pulses, firmware id, keep-alive
NEW_CELL_COUNT = 0x009A
NEW_CAPACITY = 0x00A2  # u32, uAh (scaling unverified, reference §9.7)
OLD_CELL_COUNT = 24
OLD_CAPACITY_LO = 31
OLD_CAPACITY_HI = 32
OLD_RUNTIME = 100
NEW_SPACE = 0x0300  # bytes of NEW parameter memory (0x026C device info lives above it)


class Registers:
    def __init__(self, limits, pack, model="16ZMB0TB120A", firmware="16ZMUB00-211026A"):
        self.limits = limits
        self.pack = pack
        self.model = model
        self.firmware = firmware
        self._old_raw = {}
        self._new_raw = bytearray(NEW_SPACE)
        self.writes = 0

    # -- OLD: 16-bit registers ---------------------------------------------

    def old_read(self, reg, runtime_s=0):
        if reg in OLD_REGISTERS:
            return int(getattr(self.limits, OLD_REGISTERS[reg])) & 0xFFFF
        if reg == OLD_CELL_COUNT:
            return self.pack.cells
        cap_uah = int(self.pack.capacity_ah * 1e6)
        if reg == OLD_CAPACITY_LO:
            return cap_uah & 0xFFFF
        if reg == OLD_CAPACITY_HI:
            return (cap_uah >> 16) & 0xFFFF
        if reg == OLD_RUNTIME:
            return int(runtime_s) & 0xFFFF
        if reg in OLD_FIXED:
            return OLD_FIXED[reg]
        return self._old_raw.get(reg, 0xFFFF)

    def old_write(self, reg, value):
        self.writes += 1
        if reg in OLD_REGISTERS:
            if value & 0x8000 and OLD_REGISTERS[reg].endswith("_c"):
                value -= 0x10000  # temperatures are signed
            setattr(self.limits, OLD_REGISTERS[reg], value)
        else:
            self._old_raw[reg] = value

    # -- NEW: little-endian byte memory ---------------------------------------

    def _image(self):
        mem = bytearray(self._new_raw)
        for addr, name in NEW_ADDRESSES.items():
            struct.pack_into("<H", mem, addr, int(getattr(self.limits, name)) & 0xFFFF)
        struct.pack_into("<H", mem, NEW_CELL_COUNT, self.pack.cells)
        struct.pack_into("<I", mem, NEW_CAPACITY, int(self.pack.capacity_ah * 1e6) & 0xFFFFFFFF)
        return mem

    def new_read(self, address, length):
        if address == 0x026C:
            return self.device_info()[:length] + bytes(max(0, length - 32))
        mem = self._image()
        out = bytes(mem[address : address + length])
        return out + bytes(length - len(out))

    def new_write(self, address, data):
        self.writes += 1
        end = min(NEW_SPACE, address + len(data))
        for i in range(address, end):
            self._new_raw[i] = data[i - address]
        for addr, name in NEW_ADDRESSES.items():
            if address <= addr and addr + 2 <= address + len(data):
                value = self._new_raw[addr] | self._new_raw[addr + 1] << 8
                if value & 0x8000 and name.endswith("_c"):
                    value -= 0x10000
                setattr(self.limits, name, value)

    def device_info(self):
        def field(text):
            raw = text.encode()[:16]
            return raw + bytes(16 - len(raw))

        return field(self.model) + field(self.firmware)
