# The BMS's TX line: frames leave one after another at wire speed (10 bits per
# byte at the baud rate), each not before its due time, and are handed out in
# whatever chunks the caller's polling produces. A receiver at the wrong baud
# rate sees garbage: garble() maps a frame to bytes of which none can start a
# frame of either generation, so no valid frame can ever form from them.
from collections import deque

_FRAME_STARTS = (0x7E, 0xAA, 0x5A, 0xA5, 0xDB)


def garble(data, sent_baud, seen_baud):
    """What a UART at seen_baud makes of data sent at sent_baud."""
    if not data:
        return b""
    n = max(1, len(data) * seen_baud // sent_baud)
    out = bytearray(n)
    for i in range(n):
        g = ((data[i * len(data) // n] * 7) ^ 0xA5 ^ (i * 13)) & 0xFF
        if g in _FRAME_STARTS:
            g ^= 0x01
        out[i] = g
    return bytes(out)


class Wire:
    def __init__(self, baud=19200):
        self.baud = baud
        self._queue = deque()  # [due, data, on_done]
        self._current = None
        self._start = 0.0
        self._sent = 0
        self._free_at = 0.0
        self.bytes_sent = 0

    def byte_s(self):
        return 10.0 / self.baud

    def send(self, data, due, on_done=None):
        """Queue data to start at `due` (or when the line is free)."""
        if data or on_done is not None:
            self._queue.append((due, bytes(data), on_done))

    def clear(self):
        self._queue.clear()
        self._current = None

    def busy(self):
        return self._current is not None or bool(self._queue)

    def pump(self, now):
        """Bytes that have completely left the line by `now`."""
        out = bytearray()
        byte_s = self.byte_s()
        while True:
            if self._current is None:
                if not self._queue or self._queue[0][0] > now:
                    break
                self._current = self._queue.popleft()
                self._start = max(self._current[0], self._free_at)
                self._sent = 0
            data = self._current[1]
            done = min(len(data), int((now - self._start) / byte_s + 1e-9)) if now >= self._start else 0
            if done > self._sent:
                out += data[self._sent : done]
                self._sent = done
            if self._sent < len(data):
                break
            self._free_at = self._start + len(data) * byte_s
            on_done = self._current[2]
            self._current = None
            if on_done is not None:
                on_done(self._free_at)
        self.bytes_sent += len(out)
        return bytes(out)
