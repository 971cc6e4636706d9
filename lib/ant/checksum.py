# Integrity checks of both ANT protocol generations.
#
# OLD frames carry a 16-bit sum, NEW frames a CRC-16/MODBUS (init 0xFFFF,
# reflected polynomial 0xA001, no final xor) stored low byte first.
# Both work on (buffer, start, end) so a frame is checked in place inside the
# framer's buffer: no slice, no allocation.
from array import array


def _make_table():
    table = array("H", bytes(512))
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
        table[i] = crc
    return table


# 512 bytes of RAM buy a table-driven CRC: one lookup per byte instead of
# eight shift/xor steps, which matters at interpreter speed on the ESP32.
_CRC_TABLE = _make_table()


def crc16_modbus(buf, start, end):
    table = _CRC_TABLE
    crc = 0xFFFF
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc


def sum16(buf, start, end):
    total = 0
    for i in range(start, end):
        total += buf[i]
    return total & 0xFFFF
