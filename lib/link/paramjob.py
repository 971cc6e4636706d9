# Parameter transactions: reading the BMS's settings (all of them, for the
# vendor app's parameter screen) and writing one with read-back, as a job
# the link engine runs between its status polls (engine.submit_job()):
#
#   OLD read   5A 5A REG 00 00 SUM -> 5A 5A REG hi lo sum (FFFF = not
#              available), one register per exchange, u32 = two registers
#   OLD write  [password F1..F4] A5 A5 REG value -> echo, A5 A5 FF 00 00 FF
#              (apply) -> echo, then the register is read back
#   NEW read   function 0x02 ADDR LEN -> 0x12 + data (+ FF 0B trailer), one
#              block per page of the vendor app (ant.params.NEW_PAGES)
#   NEW write  [0x23 password] 0x22 ADDR LEN data -> 0x42 (+ FF code: 0x0A =
#              set, needs save), control 0x07 (save) -> 0x61 result 1, then
#              the address is read back
#
# (reference §2.6, §3.1, §3.6, §3.7). The engine decides when a frame may go
# (a quiet bus, a display's gaps, after a due status poll, after any queued
# BMS command); this module decides what to send, what a reply means and
# where a value goes. Each exchange has its own bounded attempts. Values land
# in a link.paramvalues.Values store: two 16-bit words and a state per
# ant.params row, raw.
# Jobs are face actions: they may allocate (the polls between them do not).
from ant import commands, new, old
from ant import params as P
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD
from link.paramvalues import V_NA, V_OK

try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

# Job states: the same numbers as link.command.
PENDING = const(0)
RUNNING = const(1)
DONE = const(2)
FAILED = const(3)
STATE_NAMES = ("pending", "running", "done", "failed")

READ_ALL = const(0)
WRITE = const(1)


# Exchanges (op, a, b).
_AUTH = const(0)
_OLD_READ = const(1)  # a = register, b = row | _HIGH
_OLD_WRITE = const(2)  # a = register, b = value
_OLD_APPLY = const(3)
_NEW_READ = const(4)  # a = address, b = length
_NEW_WRITE = const(5)  # a = address, b = length (the value is the job's)
_NEW_SAVE = const(6)
_HIGH = const(0x100)  # OLD: this register holds the row's high word

_NEW_SAVE_REG = const(0x07)
_WRITE_SET = const(0x0A)  # "set OK, needs save" (Wnt's list of write results)
_WRITE_RESULTS = {1: "no permission: parameter writes need the level-5 (12-character) password",
                  2: "below the BMS's minimum", 3: "above the BMS's maximum", 5: "wrong password"}


def protocol_name(protocol):
    return "old" if protocol == PROTOCOL_OLD else ("new" if protocol == PROTOCOL_NEW else "unknown")


def _page_used(k):
    """Does NEW page k hold a row?"""
    addr, length = P.NEW_PAGES[k]
    for i in range(P.COUNT):
        a = P.ROWS[i][P.NEW_ADDR]
        if addr <= a < addr + length:
            return True
    return False


class ParamJob:
    """One parameter transaction. READ_ALL fills `values` with every row of
    the BMS's generation; WRITE sends `raw` to `row` and reads it back.
    The engine sets state/reason and calls done_cb(job) at the end."""

    def __init__(self, kind, values, row=-1, raw=0, done_cb=None):
        self.kind = kind
        self.values = values
        self.row = row
        self.raw = raw
        self.done_cb = done_cb
        self.state = PENDING
        self.reason = ""
        self.attempts = 0  # of the current exchange
        self.exchanges = 0  # frames sent in all
        self.submitted_ms = 0
        self.since_ms = 0  # when the current exchange became due (its timeout counts from here)
        self.finished_ms = 0
        self.code = 255  # the control service's command code (writes are logged), 255 = not logged
        self.who = 0
        self.protocol = 0
        self.password = None
        self.awaiting = False  # a frame went out and its reply is due
        self._i = 0  # the cursor: a write's step, a row (OLD read), a page (NEW read)
        self._high = False  # OLD read: the high word of a K_U32 row is next
        self._op = 0  # the current exchange (op, a, b)
        self._a = 0
        self._b = 0
        self._n = 0  # exchanges planned, without repeats
        self._done = 0
        self._auth_replies = 0
        self._auth_last = 0  # OLD: the last password word, echoed when accepted
        self._zero = False  # OLD: a value-0 reply inside our own echo window

    def finished(self):
        return self.state >= DONE

    # -- the plan --------------------------------------------------------------

    def begin(self, protocol, password, now_ms):
        """Start on the BMS's `protocol`; a failure reason, or "" to go.
        Nothing is planned ahead: each exchange is worked out from a cursor
        (a row, a page, a write's step), so a job costs a few words."""
        self.protocol = protocol
        self.password = password
        if protocol != PROTOCOL_OLD and protocol != PROTOCOL_NEW:
            return "the BMS's protocol is not known yet"
        n = 0
        if self.kind == WRITE:
            if not P.offered(self.row, protocol):
                return "not offered by the " + protocol_name(protocol) + " protocol"
            self._i = 0 if password else 1  # write steps: auth, write, commit, read back
            n = 4 - self._i
            if password and protocol == PROTOCOL_OLD:
                frames = commands.password(PROTOCOL_OLD, password)
                self._auth_last = (frames[21] << 8) | frames[22]
        elif protocol == PROTOCOL_OLD:
            self._i = -1  # the row cursor; _next_read() moves it to the first row
            for i in range(P.COUNT):
                if P.ROWS[i][P.OLD_REG]:
                    n += 2 if P.ROWS[i][P.KIND] == P.K_U32 else 1
        else:
            self._i = -1  # the page cursor
            for k in range(len(P.NEW_PAGES)):
                if _page_used(k):
                    n += 1
        self._n = n
        self._done = 0
        self._high = False
        if self.kind == READ_ALL:
            self._next_read()
        self._load()
        self.attempts = 1
        self.since_ms = now_ms
        return ""

    def steps(self):
        """(exchanges done, exchanges planned)."""
        return self._done, self._n

    def _next_read(self):
        # Move the read cursor on: OLD low word -> high word (K_U32) -> the
        # next row with a register; NEW the next page that holds a row.
        i = self._i
        if self.protocol == PROTOCOL_OLD:
            if i >= 0 and not self._high and P.ROWS[i][P.KIND] == P.K_U32:
                self._high = True
                return
            self._high = False
            i += 1
            while i < P.COUNT and not P.ROWS[i][P.OLD_REG]:
                i += 1
        else:
            i += 1
            while i < len(P.NEW_PAGES) and not _page_used(i):
                i += 1
        self._i = i

    def _load(self):
        # The current exchange as (op, a, b) in self._op/_a/_b.
        i = self._i
        old_protocol = self.protocol == PROTOCOL_OLD
        if self.kind == READ_ALL:
            if old_protocol:
                self._op = _OLD_READ
                self._a = P.ROWS[i][P.OLD_REG] + (1 if self._high else 0) if i < P.COUNT else 0
                self._b = i | (_HIGH if self._high else 0)
            else:
                self._op = _NEW_READ
                page = P.NEW_PAGES[i] if i < len(P.NEW_PAGES) else (0, 0)
                self._a = page[0]
                self._b = page[1]
            return
        row = P.ROWS[self.row]
        if i == 0:
            self._op = _AUTH
            self._a = self._b = 0
        elif old_protocol:
            self._op = (_OLD_WRITE, _OLD_APPLY, _OLD_READ)[i - 1]
            self._a = row[P.OLD_REG]
            self._b = self.raw & 0xFFFF if i == 1 else self.row
        else:
            self._op = (_NEW_WRITE, _NEW_SAVE, _NEW_READ)[i - 1]
            self._a = row[P.NEW_ADDR]
            self._b = P.size(self.row)

    def _finished_all(self):
        if self.kind == WRITE:
            return self._i >= 4
        if self.protocol == PROTOCOL_OLD:
            return self._i >= P.COUNT
        return self._i >= len(P.NEW_PAGES)

    def frame(self):
        """The frame of the current exchange."""
        op = self._op
        a = self._a
        b = self._b
        self.exchanges += 1
        protocol = self.protocol
        if op == _AUTH:
            return commands.password(protocol, self.password)
        if op == _OLD_READ:
            return commands.read_param(PROTOCOL_OLD, a)
        if op == _OLD_WRITE:
            return bytes(old.short_frame(old.HEAD_WRITE, a, b))
        if op == _OLD_APPLY or op == _NEW_SAVE:
            return commands.control("save", protocol)
        if op == _NEW_READ:
            return commands.read_param(PROTOCOL_NEW, a, b)
        return commands.write_param(PROTOCOL_NEW, a, self.raw, b)[0]

    def reply_ms(self):
        """How long the reply may take: OLD echoes come within 32-84 ms, NEW
        ACKs 62-124 ms (reference §6.4); four password frames and a page of
        up to 158 bytes take longer on the wire."""
        op = self._op
        if op == _AUTH or (op == _NEW_READ and self._b > 32):
            return 600
        return 400

    def no_reply(self):
        """What did not come, for the failure reason."""
        op = self._op
        a = self._a
        b = self._b
        if op == _AUTH:
            return "no reply to the password"
        if op == _OLD_READ:
            return "no reply to the read of register " + str(a)
        if op == _NEW_READ:
            return "no reply to the read of %d bytes at 0x%04X" % (b, a)
        if op == _OLD_APPLY:
            return "no echo of the apply frame (A5 A5 FF)"
        if op == _NEW_SAVE:
            return "no acknowledgement of the save (control 0x07)"
        return "no acknowledgement of the write"

    # -- the engine's side ----------------------------------------------------------

    def retry(self):
        """The exchange is sent again."""
        self._auth_replies = 0
        self._zero = False

    def advance(self, now_ms):
        """The current exchange succeeded: 0 while more follow, else DONE
        or FAILED (reason set) for the whole job."""
        self._done += 1
        if self.kind == WRITE:
            self._i += 1
        else:
            self._next_read()
        self.attempts = 1
        self.since_ms = now_ms
        self._auth_replies = 0
        self._zero = False
        if not self._finished_all():
            self._load()
            return 0
        if self.kind == WRITE:
            back = self.values.raw(self.row)
            if back != self.raw:
                self.reason = "the BMS kept %s instead of %d (read back)" % ("nothing readable" if back is None else str(back),
                                                                            self.raw)
                return FAILED
        return DONE

    def timed_out(self):
        """The reply deadline passed: True when the exchange counts as
        answered after all (an OLD value 0 that came inside the echo
        window, see on_old), else None."""
        op = self._op
        a = self._a
        b = self._b
        if op == _OLD_READ and self._zero:
            self._store_old(0, b)
            return True
        return None

    # Each on_* returns None (not this exchange's reply), True (answered) or
    # a failure reason.

    def on_old(self, b, o, echo):
        """An OLD 6-byte frame; echo: it matches what we sent moments ago
        (a bus that shows a master its own bytes)."""
        op = self._op
        a = self._a
        arg = self._b
        head = b[o]
        reg = b[o + 2]
        value = (b[o + 3] << 8) | b[o + 4]
        if op == _OLD_READ:
            if head != old.HEAD_READ or reg != a:
                return None
            if echo and value == 0:
                # Our own request, or a value 0 in the echo window: the same
                # bytes. A second frame settles it; none by the deadline
                # means 0 (timed_out()).
                self._zero = True
                return None
            self._store_old(value, arg)
            return True
        if head != old.HEAD_WRITE:
            return None
        if op == _AUTH:
            self._auth_replies += 1
            if reg == old.REG_PASSWORD_1 + 3 and value == self._auth_last:
                return True  # the last password word echoed: accepted
            if reg == old.REG_REJECTED and self._auth_replies >= 4:
                return "wrong password (the BMS rejected it)"
            return None
        if reg == old.REG_REJECTED and value == 1:
            if self.password:
                return "rejected by the BMS although the password was accepted"
            return "the BMS requires a password (write rejected)"
        if (op == _OLD_WRITE and reg == a) or (op == _OLD_APPLY and reg == old.REG_APPLY):
            return True
        return None

    def _store_old(self, value, arg):
        row = arg & 0xFF
        values = self.values
        if arg & _HIGH:
            values.hi[row] = value
            return
        if value == 0xFFFF and P.ROWS[row][P.KIND] != P.K_I16:
            values.put(row, value, 0, V_NA)  # "FFFF = not available" (a signed -1 °C is a value)
        elif P.ROWS[row][P.KIND] == P.K_U32:
            values.put(row, value, values.hi[row])  # the high word follows
        else:
            values.put(row, value, 0)

    def on_new(self, b, o, length):
        """A NEW frame other than a status."""
        op = self._op
        a = self._a
        arg = self._b
        func = b[o + 2]
        addr = b[o + 3] | (b[o + 4] << 8)
        if op == _AUTH:
            if func != new.REPLY_PASSWORD:
                return None
            if b[o + 6] | (b[o + 7] << 8) == 0:
                return "wrong password (granted level 0)"
            return True
        if op == _NEW_READ:
            if func != new.REPLY_READ or addr != a or b[o + 5] != arg:
                return None
            self._store_new(b, o + 6, a, arg)
            return True
        if op == _NEW_WRITE:
            if func != new.REPLY_WRITE or addr != a:
                return None
            code = new.reply_trailer_code(b, o, length)
            if code < 0 or code == 0 or code == _WRITE_SET:
                return True
            why = _WRITE_RESULTS.get(code)
            return "the BMS refused the write: " + (why if why else "result %d" % code)
        if op == _NEW_SAVE:
            if func != new.REPLY_CONTROL or b[o + 3] != _NEW_SAVE_REG:
                return None
            result = b[o + 6] | (b[o + 7] << 8)
            if result == 1:
                return True
            if result == 3:
                return "no permission to save: parameter writes need the level-5 (12-character) password"
            return "the BMS did not save (result %d)" % result
        return None

    def _store_new(self, b, data, addr, length):
        values = self.values
        for i in range(P.COUNT):
            row = P.ROWS[i]
            at = row[P.NEW_ADDR]
            if at < addr or at + P.size(i) > addr + length:
                continue
            k = data + at - addr
            lo = b[k] | (b[k + 1] << 8)
            hi = b[k + 2] | (b[k + 3] << 8) if row[P.KIND] == P.K_U32 else 0
            values.put(i, lo, hi)

    def describe(self):
        return {"state": STATE_NAMES[self.state], "ok": self.state == DONE, "reason": self.reason or None}
