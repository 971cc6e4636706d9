# Streaming framer: arbitrary byte chunks in, complete verified frames out.
#
# Both protocol generations share the TTL port and BLE characteristic, and a
# display may poll the same port, so one framer recognises every frame shape:
#
#   OLD status   AA 55 AA FF + 136 bytes, 16-bit sum of bytes 4..137
#   OLD short    5A 5A | A5 A5 | DB DB  reg hi lo sum   (sum = reg+hi+lo & 0xFF)
#   NEW          7E A1 func addr addr LEN [data] crc crc AA 55
#                (0x12/0x42 replies may carry 6 more bytes before AA 55)
#
# Usage (no allocation per byte or per frame):
#
#   pos = 0
#   while True:
#       pos = framer.feed(chunk, pos, n)
#       if not framer.kind:
#           break
#       handle(framer.buf, framer.start, framer.length, framer.kind)
#
# A frame stays valid in `buf` until the next feed()/flush() call. When the
# line goes quiet, call flush() (same loop shape) so that a truncated frame is
# dropped and whatever was buffered behind it is found.
#
# On any failed candidate exactly one byte is dropped and the buffered rest is
# scanned again, so a good frame that follows garbage, a truncated frame or a
# corrupted one is never lost. A weakly checked 6-byte frame loses to a strong
# frame header that starts inside it, because noise can forge an 8-bit sum.
from array import array

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant.checksum import crc16_modbus, sum16
from ticks import wrap_add

KIND_OLD_STATUS = const(1)
KIND_OLD_SHORT = const(2)
KIND_NEW = const(3)

# Why bytes were dropped; index into Framer.drops and REASONS.
DROP_NOISE = const(0)  # a byte that cannot start any frame
DROP_BAD_HEADER = const(1)
DROP_BAD_CHECKSUM = const(2)
DROP_BAD_LENGTH = const(3)
DROP_BAD_TRAILER = const(4)
DROP_UNKNOWN_FUNCTION = const(5)
DROP_TRUNCATED = const(6)
DROP_OVERLAP = const(7)
DROP_BAD_CELL_COUNT = const(8)  # a status frame of either generation claiming > 32 cells
REASONS = (
    "noise",
    "bad_header",
    "bad_checksum",
    "bad_length",
    "bad_trailer",
    "unknown_function",
    "truncated",
    "overlap",
    "bad_cell_count",
)
_MAX_CELLS = const(32)  # ant.status.MAX_CELLS
_OLD_CELL_COUNT = const(123)

OLD_STATUS_LEN = const(140)
# Largest NEW frame: LEN is one byte, plus 10 framing bytes, plus the 6-byte
# trailer of 0x12/0x42 replies.
MAX_FRAME = const(271)
_CAP = const(640)  # > 2 * MAX_FRAME: a pending candidate never blocks a compaction
_COUNTER_MAX = const(0x3FFFFFFF)  # counters wrap to 0 after this (31-bit small ints)

_OLD_HEADER = b"\xaa\x55\xaa\xff"


def new_frame_total(func, length):
    """Byte count of a NEW frame up to and including AA 55 (without the
    optional 6-byte trailer), or -1 for a function code nobody has seen."""
    if func == 0x01 or func == 0x02 or func == 0x04 or func == 0x05 or func == 0x51:
        return 10  # requests and controls: LEN is a requested size, not data
    if func == 0x11 or func == 0x12 or func == 0x13 or func == 0x14 or func == 0x15:
        return length + 10
    if func == 0x16 or func == 0x22 or func == 0x23 or func == 0x42 or func == 0x43 or func == 0x61:
        return length + 10
    return -1


class Framer:
    def __init__(self):
        self.buf = bytearray(_CAP)
        self._head = 0
        self._tail = 0
        self._need = 1
        # The frame found by the last feed()/flush(): kind 0 = none.
        self.kind = 0
        self.start = 0
        self.length = 0
        # Statistics.
        self.frames = 0
        self.dropped_bytes = 0
        self.position = 0  # stream offset of the current frame / next byte
        self.drops = array("I", [0] * len(REASONS))
        self.last_drop = -1

    def reset(self):
        """Discard what is buffered (e.g. after a baud-rate change)."""
        self.position = wrap_add(self.position, self._tail - self._head)
        self._head = self._tail = 0
        self._need = 1
        self.kind = 0

    def pending(self):
        """Bytes held back waiting for the rest of a candidate frame."""
        return self._tail - self._head

    def feed(self, data, pos=0, end=-1):
        """Take bytes data[pos:end] until a frame is complete; return the
        position reached. self.kind tells whether a frame is ready."""
        self._release()
        if end < 0:
            end = len(data)
        if self._tail - self._head >= self._need and self._scan(False):
            return pos
        buf = self.buf
        while pos < end:
            if self._tail == _CAP:
                self._compact()
            buf[self._tail] = data[pos]
            self._tail += 1
            pos += 1
            if self._tail - self._head >= self._need and self._scan(False):
                return pos
        return pos

    def flush(self):
        """The line went quiet: resolve everything buffered. Returns the kind
        of a frame found (call again) or 0 when the buffer is empty."""
        self._release()
        while self._head < self._tail:
            if self._scan(True):
                return self.kind
            if self._head < self._tail:
                self._drop(DROP_TRUNCATED)
        self._head = self._tail = 0
        self._need = 1
        return 0

    # -- internals ---------------------------------------------------------

    def _release(self):
        if self.kind:
            self._head = self.start + self.length
            self.position = wrap_add(self.position, self.length)
            self.kind = 0
            self._need = 1

    def _compact(self):
        buf = self.buf
        head = self._head
        n = self._tail - head
        for i in range(n):
            buf[i] = buf[head + i]
        self._head = 0
        self._tail = n

    def _drop(self, reason):
        self._head += 1
        self._need = 1
        # Per dropped byte: the wrap inlined, never forming 2**30.
        v = self.position
        self.position = v + 1 if v < _COUNTER_MAX else 0
        v = self.dropped_bytes
        self.dropped_bytes = v + 1 if v < _COUNTER_MAX else 0
        v = self.drops[reason]
        self.drops[reason] = v + 1 if v < _COUNTER_MAX else 0
        self.last_drop = reason

    def _scan(self, final):
        # Evaluate the candidate at head until a frame is found (True) or the
        # candidate needs more bytes than are buffered (False).
        while self._head < self._tail:
            verdict = self._evaluate(final)
            if verdict > 0:
                self.kind = verdict
                self.start = self._head
                self.frames = wrap_add(self.frames, 1)
                return True
            if verdict == 0:
                return False
            self._drop(-verdict - 1)
        self._head = self._tail = 0
        self._need = 1
        return False

    # Verdicts: > 0 frame kind (self.length set), 0 need self._need bytes,
    # < 0 is -(reason + 1).
    def _evaluate(self, final):
        b = self.buf
        h = self._head
        avail = self._tail - h
        c = b[h]
        if c == 0xAA:
            return self._old_status(b, h, avail)
        if c == 0x7E:
            return self._new(b, h, avail)
        if c == 0x5A or c == 0xA5 or c == 0xDB:
            return self._old_short(b, h, avail, final)
        return -DROP_NOISE - 1

    def _old_status(self, b, h, avail):
        for i in range(1, 4 if avail > 4 else avail):
            if b[h + i] != _OLD_HEADER[i]:
                return -DROP_BAD_HEADER - 1
        if avail < OLD_STATUS_LEN:
            self._need = 4 if avail < 4 else OLD_STATUS_LEN
            return 0
        if sum16(b, h + 4, h + 138) != (b[h + 138] << 8) | b[h + 139]:
            return -DROP_BAD_CHECKSUM - 1
        if b[h + _OLD_CELL_COUNT] > _MAX_CELLS:
            return -DROP_BAD_CELL_COUNT - 1  # 32 cell slots: the same rule as NEW frames
        self.length = OLD_STATUS_LEN
        return KIND_OLD_STATUS

    def _new(self, b, h, avail):
        if avail < 2:
            self._need = 2
            return 0
        if b[h + 1] != 0xA1:
            return -DROP_BAD_HEADER - 1
        if avail < 6:
            self._need = 6
            return 0
        func = b[h + 2]
        length = b[h + 5]
        total = new_frame_total(func, length)
        if total < 0:
            return -DROP_UNKNOWN_FUNCTION - 1
        if func == 0x51 and length:
            return -DROP_BAD_LENGTH - 1
        if func == 0x11:
            # A status frame must announce exactly its cell and probe blocks.
            if avail < 10:
                self._need = 10
                return 0
            cells = b[h + 9]
            if cells > _MAX_CELLS:
                return -DROP_BAD_CELL_COUNT - 1
            if length != 106 + 2 * cells + 2 * b[h + 8]:
                return -DROP_BAD_LENGTH - 1
        if avail < total - 2:
            self._need = total - 2
            return 0
        crc_at = h + total - 4
        if crc16_modbus(b, h + 1, crc_at) != b[crc_at] | (b[crc_at + 1] << 8):
            return -DROP_BAD_CHECKSUM - 1
        if avail < total:
            self._need = total
            return 0
        end = h + total
        if b[end - 2] == 0xAA and b[end - 1] == 0x55:
            self.length = total
            return KIND_NEW
        if (func == 0x12 or func == 0x42) and b[end - 2] == 0xFF:
            # Parameter replies: FF code 00 00 + CRC of those four, then AA 55.
            if avail < total + 6:
                self._need = total + 6
                return 0
            end -= 2
            if (
                crc16_modbus(b, end, end + 4) == b[end + 4] | (b[end + 5] << 8)
                and b[end + 6] == 0xAA
                and b[end + 7] == 0x55
            ):
                self.length = total + 6
                return KIND_NEW
        return -DROP_BAD_TRAILER - 1

    def _old_short(self, b, h, avail, final):
        if avail < 2:
            self._need = 2
            return 0
        if b[h + 1] != b[h]:
            return -DROP_BAD_HEADER - 1
        if avail < 6:
            self._need = 6
            return 0
        if (b[h + 2] + b[h + 3] + b[h + 4]) & 0xFF != b[h + 5]:
            return -DROP_BAD_CHECKSUM - 1
        # An 8-bit sum is easy to forge by noise: if a strong frame header
        # starts inside these six bytes, the strong frame wins.
        tail = self._tail
        for p in range(h + 1, h + 6):
            c = b[p]
            if c == 0x7E:
                if p + 1 >= tail:
                    if not final:
                        self._need = p + 2 - h
                        return 0
                elif b[p + 1] == 0xA1:
                    return -DROP_OVERLAP - 1
            elif c == 0xAA:
                matched = 1
                while matched < 4 and p + matched < tail and b[p + matched] == _OLD_HEADER[matched]:
                    matched += 1
                if matched == 4:
                    return -DROP_OVERLAP - 1
                if p + matched >= tail and not final:
                    self._need = p + 4 - h
                    return 0
        self.length = 6
        return KIND_OLD_SHORT
