# A streaming JSON (and plain text) writer for the faces.
#
# The document is written piece by piece into one small buffer per request;
# the producer yields whenever the buffer is nearly full and the server sends
# what is there. So a response never needs one contiguous block of its whole
# size, and two requests never share a buffer: per-request memory is the
# buffer (grown only for a single piece longer than it) plus what the
# producer itself holds.
#
#   w = JsonOut(512)
#   def produce(w):                     # a generator: yields when w.full()
#       w.begin_obj(); w.key("v"); w.fixed(5312, -2); w.end_obj()
#       if w.full(): yield
#   for chunk in w.chunks(produce(w)): sock.write(chunk)
#
# Numbers come in as fixed-point ints (raw 5312 with exponent -2 is 53.12)
# and are written as decimal digits: no float is made, and the text is
# exact (53.12, never 53.119998).
import io

_HEADROOM = 96  # a piece of up to this size always fits after full() said no
_SLACK = 320  # beyond `size`: the longest stretch a producer writes between two full() checks
_DIGITS = (b"0", b"1", b"2", b"3", b"4", b"5", b"6", b"7", b"8", b"9", b"a", b"b", b"c", b"d", b"e", b"f")
_HEX = "0123456789abcdef"
_ESCAPED = ('"', "\\", "\n", "\r", "\t")

# MicroPython's BytesIO takes a str as it is (no copy); CPython's wants bytes.
try:
    io.BytesIO().write("")  # pyright: ignore[reportArgumentType]
    _STR_OK = True
except TypeError:
    _STR_OK = False


class JsonOut:
    def __init__(self, size=512):
        # The buffer holds `size` plus _SLACK: a producer yields once full()
        # (near `size`), and what it writes before asking must still fit
        # without the buffer growing (an allocation).
        try:
            self.io = io.BytesIO(size + _SLACK)  # pyright: ignore  (MicroPython: preallocated capacity)
        except TypeError:  # CPython
            self.io = io.BytesIO()
        self.size = size
        self.comma = False  # a value was written at this level: the next needs ","
        self._digits = bytearray(16)
        self._out = bytearray(size)  # chunks(): the buffer the chunks are handed out from

    # -- the buffer --------------------------------------------------------------

    def reset(self):
        """Start a new document (the buffer emptied, no pending separator)."""
        self.io.seek(0)
        self.comma = False

    def used(self):
        return self.io.tell()

    def full(self):
        return self.io.tell() > self.size - _HEADROOM

    def take(self):
        """The bytes written since the last take(), as a new bytes object
        (the response's chunk on its way out)."""
        n = self.io.tell()
        self.io.seek(0)
        data = self.io.read(n)
        self.io.seek(0)
        return data

    def drain_into(self, buf):
        """Copy what was written into buf (at least `size` long) and start
        over; how many bytes. Allocates nothing."""
        n = self.io.tell()
        self.io.seek(0)
        self.io.readinto(buf)
        self.io.seek(0)
        return n

    def chunks(self, producer):
        """Run the producer (a generator that yields when full()); yield
        the buffered bytes at each of its pauses and at its end, as views of
        one buffer made before the first chunk (once the response has
        started, little is allocated: a failure then would cut it short). A
        view is valid until the next one: send it first."""
        out = self._out
        view = memoryview(out)
        io = self.io
        last = False
        it = iter(producer)
        while True:
            for _ in it:
                break
            else:
                last = True  # the producer is done: hand out the rest
            n = io.tell()
            io.seek(0)
            while n > 0:
                k = io.readinto(out)
                if not k:
                    break
                if k > n:
                    k = n
                n -= k
                yield view[:k]
            io.seek(0)
            if last:
                return

    def text(self, s):
        """Raw text (str or bytes), no quoting."""
        if _STR_OK or not isinstance(s, str):
            self.io.write(s)
        else:
            self.io.write(s.encode())

    def _byte(self, b):
        self.io.write(b)

    def _sep(self):
        if self.comma:
            self._byte(b",")
        self.comma = True

    def begin_obj(self):
        self._sep()
        self._byte(b"{")
        self.comma = False

    def end_obj(self):
        self._byte(b"}")
        self.comma = True

    def begin_list(self):
        self._sep()
        self._byte(b"[")
        self.comma = False

    def end_list(self):
        self._byte(b"]")
        self.comma = True

    def key(self, k):
        self._sep()
        self.string(k)
        self._byte(b":")
        self.comma = False

    # -- values ------------------------------------------------------------------------

    def null(self):
        self._sep()
        self.text(b"null")

    def boolean(self, v):
        self._sep()
        self.text(b"true" if v else b"false")

    def integer(self, v):
        self._sep()
        self._int_digits(v, 0, 0)

    def fixed(self, raw, exp):
        """raw * 10**exp as a JSON number (None: null)."""
        if raw is None:
            self.null()
            return
        self._sep()
        self.number(raw, exp)

    def number(self, raw, exp):
        """raw * 10**exp as decimal text (no separator: plain text faces)."""
        if exp >= 0:
            self._int_digits(raw, exp, 0)
        else:
            self._int_digits(raw, 0, -exp)

    def split(self, hi, lo, exp):
        """(hi + lo / 1000) * 10**exp, lo in 0..999, as a JSON number."""
        if hi is None:
            self.null()
            return
        self._sep()
        self.split_number(hi, lo, exp)

    def split_number(self, hi, lo, exp):
        if hi < 0:
            self._byte(b"-")
            hi = -hi
        # hi's digits followed by lo's three: the value * 1000 * 10**exp.
        self._int_digits(hi, 0, 0, 3, lo, exp - 3)

    def string(self, s):
        """A JSON string (after the separator when it is a value). Without
        anything to escape (the usual case) it allocates nothing."""
        self._byte(b'"')
        plain = True
        for e in _ESCAPED:
            if e in s:
                plain = False
                break
        if plain:
            self.text(s)
        else:
            self._escaped(s)
        self._byte(b'"')

    def _escaped(self, s):
        out = []
        for ch in s:
            if ch == '"' or ch == "\\":
                out.append("\\" + ch)
            elif ch < " ":
                out.append("\\u00" + _HEX[ord(ch) >> 4] + _HEX[ord(ch) & 15])
            else:
                out.append(ch)
        self.text("".join(out))

    def hex_value(self, raw):
        """Bytes as a JSON string of hex digits."""
        self._sep()
        self._byte(b'"')
        for i in range(len(raw)):
            b = raw[i]
            self._byte(_DIGITS[b >> 4])
            self._byte(_DIGITS[b & 15])
        self._byte(b'"')

    def str_value(self, s):
        if s is None:
            self.null()
            return
        self._sep()
        self.string(s)

    def value(self, v):
        """Any JSON-able Python value (dicts, lists, str, int, float, bool,
        None): for the small dicts some faces still build."""
        if v is None:
            self.null()
        elif v is True or v is False:
            self.boolean(v)
        elif isinstance(v, int):
            self.integer(v)
        elif isinstance(v, float):
            self._sep()
            self.text(_float_text(v))
        elif isinstance(v, str):
            self.str_value(v)
        elif isinstance(v, dict):
            self.begin_obj()
            for k in v:
                self.key(k)
                self.value(v[k])
            self.end_obj()
        elif isinstance(v, (list, tuple)):
            self.begin_list()
            for x in v:
                self.value(x)
            self.end_list()
        else:
            self.str_value(str(v))

    # -- digits ---------------------------------------------------------------------------

    def _int_digits(self, v, zeros, decimals, lo_digits=0, lo=0, lo_exp=0):
        """Write int v, then `zeros` zeros (exp > 0), as a decimal with
        `decimals` digits after the point; trailing fraction zeros dropped
        (one kept after the point, as Python prints floats). With lo_digits:
        the value is v followed by lo's three digits, with the point placed
        for exponent lo_exp."""
        d = self._digits
        if v < 0:
            self._byte(b"-")
            v = -v
        # Collect the digits of v (and of lo) in reverse, as numbers 0-9.
        n = 0
        if lo_digits:
            for _ in range(3):
                d[n] = lo % 10
                lo //= 10
                n += 1
            decimals = -lo_exp if lo_exp < 0 else 0
            zeros = lo_exp if lo_exp > 0 else 0
        while True:
            d[n] = v % 10
            v //= 10
            n += 1
            if v == 0 or n >= len(d):
                break
        if n - decimals <= 0:
            self._byte(b"0")
        else:
            for i in range(n - 1, decimals - 1, -1):
                self._byte(_DIGITS[d[i]])
            for _ in range(zeros):
                self._byte(b"0")
        if decimals <= 0:
            return
        # The fraction: digits decimals-1 .. 0 (leading zeros where v had
        # fewer digits), trailing zeros dropped but one kept.
        last = 0  # lowest fraction digit to write
        while last < decimals - 1 and (last >= n or d[last] == 0):
            last += 1
        self._byte(b".")
        for i in range(decimals - 1, last - 1, -1):
            self._byte(_DIGITS[d[i]] if i < n else b"0")


def _float_text(f):
    if f != f or f in (float("inf"), float("-inf")):
        return "null"  # JSON has no NaN or infinity
    return repr(f)
