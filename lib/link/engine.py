# The BMS link, sans I/O: bytes and time in, bytes to send and a live status
# model out. The firmware's UART task and the PC tool drive the same engine:
#
#   engine.feed(rx, n, now_ms)          # whatever arrived
#   engine.tick(now_ms)                 # time passed: timeouts, polls, states
#   if engine.baud_changed:             # first: one tick may switch and poll
#       reconfigure the UART at engine.baud; engine.baud_changed = False
#   if engine.tx is not None:           # a frame is due on the wire
#       uart.write(engine.tx); engine.sent(now_ms)
#
# It polls at the configured interval, autodetects the protocol (NEW first,
# then OLD; 19200 then 9600) and only trusts verified frames; it keeps the
# model honest (ok / stale / lost / asleep / unpowered, with data age), tells
# what the wiring looks like, falls back to passive listening when another
# master (a display) polls the port, and runs command transactions on a quiet
# bus, and parameter jobs (link/paramjob.py: the BMS's settings) between its
# polls, after any queued command. Polling, decoding, state keeping and
# statistics allocate nothing.
#
# It measures the line as it goes: the time the BMS takes to answer (the
# reply timeout follows it, bounded by the poll interval, so a slow BMS stays
# live) and the fate of the last _WINDOW polls (answered, late, corrupted,
# unanswered), so that the diagnosis can tell intermittent replies from a BMS
# that stopped answering. A reply that comes after its deadline, with nobody
# else asking, is still ours: never another master's traffic. A display that
# stops polling is given up after ~1.5 of its own periods (mid-gap, so that a
# display which merely skipped a poll is not talked into), and polling resumes
# at once.
#
# After a loss the search goes back to what worked every other attempt
# (link/search.py), so a BMS that slept is back within two poll intervals of
# answering; link/describe.py is the JSON face of all this.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

from ant import commands, new, old
from ant.detect import BAUD_DEFAULT, BAUD_FALLBACK
from ant.framer import DROP_BAD_CHECKSUM, DROP_NOISE, KIND_NEW, KIND_OLD_SHORT, KIND_OLD_STATUS, Framer
from ant.status import PROTOCOL_NEW, PROTOCOL_OLD, Status, fit_probes
from eventlog import EV_COMMAND, EV_LINK
from link import command as cmd
from link.search import Search
from link.model import (
    LINE_FOREIGN,
    LINE_INTERMITTENT,
    LINE_NOISE,
    LINE_OK,
    LINE_SILENT,
    LINE_SLOW,
    LINE_UNKNOWN,
    LINK_ASLEEP,
    LINK_LOST,
    LINK_OK,
    LINK_STALE,
    LINK_UNPOWERED,
)
from ticks import ticks_add, ticks_diff, wrap_add

_PHASE_IDLE = const(0)
_PHASE_POLL = const(1)  # a status request is out, its reply is due
_PHASE_COMMAND = const(2)  # a command frame is out, its ACK/echo is due
_PHASE_PARAM = const(3)  # a parameter job's frame is out, its reply is due

_QUEUE_DEPTH = const(4)
_JOB_DEPTH = const(2)  # parameter jobs waiting
_PARAM_GAP_MS = const(40)  # between a parameter exchange and the next frame (Wnt: >= 40 ms)
_DROP_REASONS = const(9)  # len(ant.framer.REASONS)
_ECHO_WINDOW_MS = const(60)
_DIAGNOSE_AFTER = const(3)  # unanswered polls before a never-seen line is diagnosed
_AGE_CAP = const(0x10000000)  # ~3.1 days: the data age saturates here

# The fate of each of the last _WINDOW polls of a locked link (the loss rate).
_WINDOW = const(32)
OUTCOME_OK = const(0)  # answered in time
OUTCOME_LATE = const(1)  # answered after its deadline
OUTCOME_CORRUPT = const(2)  # bytes came, but no valid reply
OUTCOME_NONE = const(3)  # not a byte
_LOSSY_MIN = const(2)  # polls lost in the window before the line counts as intermittent
_LOSSY_PCT = const(10)  # ... and at least this share of them
# A run of losses less likely than 0.1 % at the window's loss rate: stopped.
# (1 % called a half-lossy line "stopped" every few hundred polls: 7 losses
# in a row at 50 % come about every 256, and each such call sent an ACC wake
# and the "went silent" hint for a BMS that was answering every other poll.)
_STOPPED_PER_MILLE = const(1)
# Reply time: the adaptive timeout is the recent peak + 1/4 + this margin,
# between the default and what the poll interval allows (9/10 of it, at most
# _TIMEOUT_MAX_MS). Real units answer a status within ~250 ms at 19200 baud
# (latency <= ~150 ms plus the frame); a reply slower than 3/5 of the default
# timeout is called slow.
_TIMEOUT_MARGIN_MS = const(50)
_TIMEOUT_MAX_MS = const(3000)
_LATE_MS = const(3000)  # a status later than this after our poll is not taken as its reply
# A display that stopped polling: leave passive listening in the middle of
# the gap after its first missed poll (1.5 periods after its last request).
# A display polling faster than this is given one more period, so that the
# bridge's exchange (<= ~250 ms) never meets its next request.
_MID_GAP_MIN_MS = const(600)
_WAKE_MAX_MS = const(1000)  # the driver ticks at least this often

# The fastest poll the link carries: one request, the BMS's latency (<= ~150
# ms) and the longest status frame on the wire must fit (reference §6.4:
# 250 ms is proven safe at 19200 baud; 9600 doubles the wire time).
POLL_MIN_MS = const(250)
POLL_MIN_SLOW_MS = const(400)

# Why the link last failed (stats.last_error), for the faces.
ERR_NONE = const(0)
ERR_TIMEOUT = const(1)
ERR_CHECKSUM = const(2)
ERR_NOISE = const(3)
ERR_FOREIGN = const(4)
ERR_SILENT = const(5)
ERR_COMMAND = const(6)
ERROR_NAMES = ("none", "timeout", "checksum", "noise", "foreign master", "silent", "command failed")


class LinkConfig:
    """Per-install link settings (the config schema validates the dict)."""

    def __init__(self):
        self.poll_ms = 1000
        # Never poll faster than this at 19200 (scaled up at 9600): the proven
        # safe floor for real units. A bench whose BMS answers quickly (the
        # simulator with a short latency) may go lower.
        self.poll_floor_ms = POLL_MIN_MS
        self.reply_timeout_ms = 0  # 0 = derived from the baud rate
        self.stale_ms = 0  # 0 = max(2500, 2 * poll + timeout)
        self.lost_ms = 0  # 0 = max(10000, 5 * poll)
        self.gap_ms = 30  # silence that ends a burst (flushes the framer)
        self.quiet_ms = 20  # silence required before we transmit
        # Listen this long before the first poll: longer than a display's
        # poll period (about 1 s), so a display on the port is heard before
        # the bridge ever talks and it is never interrupted, not even once.
        self.listen_first_ms = 1500
        self.protocol = 0  # 0 auto, PROTOCOL_OLD, PROTOCOL_NEW
        self.baud = 0  # 0 auto, 19200, 9600
        self.password = None
        self.invert_current = False  # per-install sign flip (shunt mounted backwards)
        self.probes_fitted = -1  # -1: trust the BMS; n: only the first n probes exist
        self.passive = True  # allow passive listening when a display polls
        # The longest the bridge stays passive after another master's last
        # request; it leaves far earlier once the master has missed a poll of
        # its own rhythm (1.5 of its periods, or of poll_ms while unknown).
        self.passive_hold_ms = 15000
        self.command_timeout_ms = 15000
        self.command_attempts = 3
        self.verify_frames = 4

    def apply(self, d):
        """Set fields from a validated dict (see settings.py)."""
        for key in d:
            setattr(self, key, d[key])
        return self


class LinkStats:
    """Counters for the faces (all wrap at 2**30, small ints)."""

    def __init__(self):
        self.frames_ok = 0  # verified status frames decoded
        self.polls = 0
        self.timeouts = 0  # polls without a reply
        self.checksum_errors = 0  # frame candidates failing their checksum/CRC
        self.resyncs = 0  # failed frame candidates the framer resynchronised after
        self.bytes_dropped = 0  # bytes that were not part of a valid frame
        self.foreign_frames = 0  # another master's requests and their replies
        self.rx_bytes = 0
        self.tx_frames = 0
        self.commands_ok = 0
        self.commands_failed = 0
        self.baud_switches = 0
        self.late_replies = 0  # our replies that came after their deadline
        self.last_error = ERR_NONE  # the most recent problem (ERROR_NAMES)
        self.last_error_ms = 0  # ticks when it happened
        self.errors = 0  # problems recorded in total


class LinkEngine:
    def __init__(self, model, config=None, log=None):
        self.model = model
        self.config = config if config is not None else LinkConfig()
        self.log = log
        self.stats = LinkStats()
        model.stats = self.stats
        self.framer = Framer()
        model.framer = self.framer
        self._scratch = Status()
        self.powered = True  # the TTL side's isolated supply
        self.tx = None  # bytes due on the wire (driver clears via sent())
        self.baud = BAUD_DEFAULT
        self.baud_changed = False
        self._queue = []  # Commands waiting (bounded)
        self._txn = None  # the Transaction in flight
        self._jobs = []  # parameter jobs waiting (link/paramjob.py; bounded)
        self._job = None  # the one in flight
        self._job_turn = False  # a poll went out while a job runs: the job's exchange comes next
        self._phase = _PHASE_IDLE
        self._deadline = 0
        self._next_poll = 0
        self._last_rx = 0
        self._last_tx = 0
        self._last_tx_frame = None
        self._last_tx_len = 0
        self._rx_since_ok = 0  # bytes since the last verified status
        self._frames_since_ok = 0
        self._last_foreign = 0
        self._foreign_period = 0  # ms between another master's polls (EMA)
        self._last_foreign_poll = 0
        self._foreign_exchange_end = 0
        self._foreign_awaiting = False  # another master's request awaits its reply
        self._foreign_polls_seen = False  # _last_foreign_poll holds a real stamp
        # Our polls: when the last one left, what it asked, and how many went
        # out since the last reply of ours (a reply time is measured only
        # when exactly one is outstanding, so it is never misattributed; a
        # status while none is outstanding is never ours).
        self._poll_sent_ms = 0
        self._poll_attempt = 0  # detector attempt index of the last poll
        self._prev_poll_attempt = 0
        self._poll_counted = False  # sent on a locked link: goes into the window
        self._poll_rx_bytes = 0  # stats.rx_bytes when it left
        self._pending_polls = 0
        self._reply_ms = 0  # reply time of our polls (EMA), 0 = not measured
        self._reply_peak_ms = 0  # recent worst reply time (slowly decaying)
        self._timeout_ms = 0  # the adapted reply timeout, 0 = the default
        self._outcomes = bytearray(_WINDOW)
        self._outcome_counts = bytearray(4)  # per OUTCOME_*, over the window
        self._outcome_next = 0
        self._outcome_len = 0
        self._tail_lost = 0  # unanswered polls since the last answered one
        self._balance_state = -1  # OLD balancer toggle state from the last echo
        self._started = False
        self.configure(self.config)

    # -- configuration -------------------------------------------------------

    def configure(self, config):
        self.config = config
        protocols = (config.protocol,) if config.protocol else (PROTOCOL_NEW, PROTOCOL_OLD)
        bauds = (config.baud,) if config.baud else (BAUD_DEFAULT, BAUD_FALLBACK)
        self.detector = Search(protocols, bauds)
        self._set_baud(self.detector.baud)

    def remember(self, protocol, baud, variant=0):
        """Start with what worked before (persisted across reboots). Returns
        False when that combination is not allowed by the configuration."""
        if self.detector.remember(protocol, baud, variant):
            self._set_baud(baud)
            return True
        return False

    def learned(self):
        """(protocol, baud, request variant) that last produced a verified
        status of ours, or None: what the firmware persists for remember()."""
        return self.detector.attempt()

    def _set_baud(self, baud):
        if baud != self.baud:
            self.baud = baud
            self.baud_changed = True
            self.stats.baud_switches = wrap_add(self.stats.baud_switches, 1)
            self.framer.reset()

    def default_timeout_ms(self):
        # Latency of real units (<= ~150 ms before the first byte, reference
        # §6.4) plus the longest status frame on the wire, with margin.
        return 500 if self.baud >= BAUD_DEFAULT else 800

    def reply_timeout_ms(self):
        """How long a poll waits for its reply: the configured value, else
        the default, stretched to the BMS's measured reply time (bounded by
        the poll interval)."""
        t = self.config.reply_timeout_ms
        if t:
            return t
        base = self.default_timeout_ms()
        return self._timeout_ms if self._timeout_ms > base else base

    def timeout_limit_ms(self):
        """The longest the adaptive reply timeout may grow: a poll and its
        reply must fit in one poll interval."""
        limit = self.poll_ms() * 9 // 10
        if limit > _TIMEOUT_MAX_MS:
            limit = _TIMEOUT_MAX_MS
        base = self.default_timeout_ms()
        return limit if limit > base else base

    def reply_ms(self):
        """The BMS's measured reply time to our status polls (ms from our
        request to the end of its reply), 0 while not measured."""
        return self._reply_ms

    def slow(self):
        """The BMS answers markedly slower than real units do."""
        return (self._reply_ms > self.default_timeout_ms() * 3 // 5) or self._outcome_counts[OUTCOME_LATE] >= 2

    def window_polls(self):
        """Polls in the window (window()[0], without making a tuple)."""
        return self._outcome_len

    def window(self):
        """(polls in the window, answered late, corrupted, unanswered)."""
        counts = self._outcome_counts
        return self._outcome_len, counts[OUTCOME_LATE], counts[OUTCOME_CORRUPT], counts[OUTCOME_NONE]

    def loss_pct(self):
        """Share of the window's polls without a valid reply, -1 when no
        poll of a locked link has been counted yet."""
        n = self._outcome_len
        if not n:
            return -1
        counts = self._outcome_counts
        return (counts[OUTCOME_CORRUPT] + counts[OUTCOME_NONE]) * 100 // n

    def poll_ms(self):
        """The poll interval in force: the configured one, but never faster
        than the link carries at the current baud rate."""
        floor = self.config.poll_floor_ms
        if self.baud < BAUD_DEFAULT:
            floor = floor * POLL_MIN_SLOW_MS // POLL_MIN_MS
        poll = self.config.poll_ms
        return poll if poll > floor else floor

    def stale_ms(self):
        return self.config.stale_ms or max(2500, 2 * self.poll_ms() + self.reply_timeout_ms())

    def lost_ms(self):
        return self.config.lost_ms or max(10000, 5 * self.poll_ms())

    def _error(self, code, now_ms):
        stats = self.stats
        stats.last_error = code
        stats.last_error_ms = now_ms
        stats.errors = wrap_add(stats.errors, 1)

    def _sync_framer_stats(self, now_ms):
        framer = self.framer
        stats = self.stats
        drops = framer.drops
        checksum = drops[DROP_BAD_CHECKSUM]
        if checksum != stats.checksum_errors:
            stats.checksum_errors = checksum
            self._error(ERR_CHECKSUM, now_ms)
        failed = 0
        for reason in range(_DROP_REASONS):
            if reason != DROP_NOISE:
                failed = wrap_add(failed, drops[reason])
        stats.resyncs = failed
        stats.bytes_dropped = framer.dropped_bytes

    # -- driver interface ----------------------------------------------------

    def feed(self, data, n, now_ms):
        """Bytes data[0:n] arrived at now_ms."""
        if n <= 0:
            return
        self._last_rx = now_ms
        self.stats.rx_bytes = wrap_add(self.stats.rx_bytes, n)
        self._rx_since_ok = wrap_add(self._rx_since_ok, n)
        framer = self.framer
        pos = 0
        while True:
            pos = framer.feed(data, pos, n)
            if not framer.kind:
                break
            self._on_frame(framer.buf, framer.start, framer.length, framer.kind, now_ms)

    def sent(self, now_ms):
        """The driver put self.tx on the wire."""
        self._last_tx = now_ms
        self._last_tx_frame = self.tx
        self.tx = None
        self.stats.tx_frames = wrap_add(self.stats.tx_frames, 1)
        if self._phase == _PHASE_POLL:
            self._poll_sent_ms = now_ms
            self._prev_poll_attempt = self._poll_attempt
            self._poll_attempt = self.detector.index
            self._poll_counted = self.detector.locked
            self._poll_rx_bytes = self.stats.rx_bytes
            if self._pending_polls < _WINDOW:
                self._pending_polls += 1

    def bus_quiet(self, now_ms):
        if self.framer.pending() or ticks_diff(now_ms, self._last_rx) < self.config.quiet_ms:
            return False
        if self._foreign_awaiting:
            # The BMS's latency after another master's request is silence,
            # not a gap: wait for its reply (or for it to be overdue).
            if ticks_diff(now_ms, self._last_foreign_poll) < self.reply_timeout_ms():
                return False
            self._foreign_awaiting = False
        return True

    def tick(self, now_ms):
        if not self._started:
            self._started = True
            # Listen before the first poll: an exchange of another master
            # (a display) already under way shows itself within this time.
            self._next_poll = ticks_add(now_ms, self.config.listen_first_ms)
            self._last_rx = ticks_add(now_ms, -self.config.quiet_ms)
            self.model.changed_ms = now_ms
        self._saturate_stamps(now_ms)
        framer = self.framer
        if framer.pending() and ticks_diff(now_ms, self._last_rx) >= self.config.gap_ms:
            while framer.flush():
                self._on_frame(framer.buf, framer.start, framer.length, framer.kind, now_ms)
        if framer.dropped_bytes != self.stats.bytes_dropped:
            self._sync_framer_stats(now_ms)
        if self._phase == _PHASE_POLL and ticks_diff(now_ms, self._deadline) >= 0:
            self._poll_timed_out(now_ms)
        elif self._phase == _PHASE_COMMAND and ticks_diff(now_ms, self._deadline) >= 0:
            self._command_timed_out(now_ms)
        elif self._phase == _PHASE_PARAM and ticks_diff(now_ms, self._deadline) >= 0:
            self._job_timed_out(now_ms)
        self._update_state(now_ms)
        if self.model.passive and self._other_master_gone(now_ms):
            self._leave_passive(now_ms)
        if self._txn is None and self._queue:
            self._start_command(now_ms)
        if self._txn is not None:
            self._command_tick(now_ms)
        if self.tx is None and self._phase == _PHASE_IDLE and self._txn is None:
            self._maybe_poll(now_ms)  # a due poll goes before a parameter exchange
            if self.tx is None and (self._job is not None or self._jobs):
                self._job_tick(now_ms)

    def _saturate_stamps(self, now_ms):
        # ticks_diff() spans only +-2**29 ms (6.2 days): a stamp left older
        # than that would read as "in the future" (after a week without a
        # byte, bus_quiet() would stay False and polling would stop). Pull
        # every "last seen" stamp forward so its age saturates at _AGE_CAP
        # (the data age too: a week-old status must never read as fresh).
        old = ticks_add(now_ms, -_AGE_CAP)
        model = self.model
        if ticks_diff(now_ms, model.fresh_ms) > _AGE_CAP:
            model.fresh_ms = old  # the status stays old, never "fresh" again
        if ticks_diff(now_ms, model.changed_ms) > _AGE_CAP:
            model.changed_ms = old
        if ticks_diff(now_ms, self._last_rx) > _AGE_CAP:
            self._last_rx = old
        if ticks_diff(now_ms, self._last_foreign) > _AGE_CAP:
            self._last_foreign = old
        if ticks_diff(now_ms, self._last_foreign_poll) > _AGE_CAP:
            self._last_foreign_poll = old
        if ticks_diff(now_ms, self._last_tx) > _AGE_CAP:
            self._last_tx = old
        if ticks_diff(now_ms, self._poll_sent_ms) > _AGE_CAP:
            self._poll_sent_ms = old

    def next_wakeup_ms(self, now_ms):
        """How long the driver may sleep before the next tick matters, given
        that it also ticks whenever bytes arrive: the next poll, a reply's
        deadline, the end of a burst, the moment the data turns stale or
        lost (so the faces hear of it at once); short while a command runs,
        a parameter job runs, another master polls, or the bus must first
        fall quiet."""
        if self._txn is not None or self._job is not None or self._jobs or self.model.passive:
            return 5
        if self._phase != _PHASE_IDLE:
            # The reply's deadline, or the next poll if that comes first (a
            # reply that arrived meanwhile was ticked by the driver then).
            wait = ticks_diff(self._deadline, now_ms) + 1
            due = ticks_diff(self._next_poll, now_ms)
            if self._phase == _PHASE_POLL and due < wait:
                wait = due if due > 0 else 1
        elif self.framer.pending():
            wait = self.config.gap_ms - ticks_diff(now_ms, self._last_rx) + 1
        elif self.powered:
            wait = ticks_diff(self._next_poll, now_ms)
            if wait <= 0:
                return 5  # due, but the bus is busy: look again soon
        else:
            wait = _WAKE_MAX_MS
        model = self.model
        if model.has_data:
            age = ticks_diff(now_ms, model.fresh_ms)
            limit = self.stale_ms()
            if age >= limit:
                limit = self.lost_ms()
            if age < limit and limit - age + 1 < wait:
                wait = limit - age + 1
        if wait < 1:
            return 1
        return wait if wait < _WAKE_MAX_MS else _WAKE_MAX_MS

    # -- polling -------------------------------------------------------------

    def _maybe_poll(self, now_ms):
        if not self.powered or self.model.passive:
            return
        if ticks_diff(now_ms, self._next_poll) < 0 or not self.bus_quiet(now_ms):
            return
        if self._job_turn and self._job is not None and ticks_diff(now_ms, self._next_poll) < self.poll_ms() // 2:
            return  # a parameter exchange between two polls (a poll waits half an interval at most)
        self._job_turn = self._job is not None
        self.tx = self.detector.request()
        self._phase = _PHASE_POLL
        self._deadline = ticks_add(now_ms, self.reply_timeout_ms())
        self._next_poll = ticks_add(now_ms, self.poll_ms())
        self.stats.polls = wrap_add(self.stats.polls, 1)

    def _poll_timed_out(self, now_ms):
        self._phase = _PHASE_IDLE
        stats = self.stats
        stats.timeouts = wrap_add(stats.timeouts, 1)
        if self._poll_counted:
            self._record(OUTCOME_CORRUPT if stats.rx_bytes != self._poll_rx_bytes else OUTCOME_NONE)
            if self.model.link == LINK_OK and self.model.line != LINE_FOREIGN:
                self._set_line(self._quality_line(), now_ms)
        link = self.model.link
        line = self.model.line
        if stats.last_error == ERR_CHECKSUM and ticks_diff(stats.last_error_ms, self._last_tx) >= 0:
            pass  # the reply came, corrupted: that is the error to show
        elif link != LINK_OK and line == LINE_SILENT:
            self._error(ERR_SILENT, now_ms)
        elif link != LINK_OK and line == LINE_NOISE:
            self._error(ERR_NOISE, now_ms)
        else:
            self._error(ERR_TIMEOUT, now_ms)
        if self.detector.locked and (link == LINK_OK or link == LINK_STALE):
            return  # a lost reply: keep the protocol that works, poll on schedule
        # Searching: try the next protocol/baud right away.
        self.detector.on_timeout()
        self._set_baud(self.detector.baud)
        self._next_poll = now_ms

    # -- what the polls tell about the line ------------------------------------

    def _record(self, outcome):
        i = self._outcome_next
        counts = self._outcome_counts
        if self._outcome_len == _WINDOW:
            counts[self._outcomes[i]] -= 1
        else:
            self._outcome_len += 1
        self._outcomes[i] = outcome
        counts[outcome] += 1
        self._outcome_next = (i + 1) % _WINDOW
        if outcome >= OUTCOME_CORRUPT:
            if self._tail_lost < _WINDOW:
                self._tail_lost += 1
        else:
            self._tail_lost = 0

    def _amend_last(self, outcome):
        # The last poll's reply came after all (late).
        if not self._outcome_len:
            return
        i = (self._outcome_next + _WINDOW - 1) % _WINDOW
        counts = self._outcome_counts
        counts[self._outcomes[i]] -= 1
        self._outcomes[i] = outcome
        counts[outcome] += 1
        self._tail_lost = 0

    def _answered(self, now_ms, late):
        """A reply to our last poll arrived (late: after its deadline)."""
        pending = self._pending_polls
        if pending == 1:
            self._sample_reply(ticks_diff(now_ms, self._poll_sent_ms))
        self._pending_polls = 0
        if not self._poll_counted:
            return  # the search's attempts are not the line's record
        if not late:
            self._record(OUTCOME_OK)
        elif pending:
            self._amend_last(OUTCOME_LATE)  # its timeout was recorded as a loss

    def _sample_reply(self, ms):
        if ms < 0:
            return
        if ms > _LATE_MS:
            ms = _LATE_MS
        ema = self._reply_ms
        self._reply_ms = ms if not ema else (3 * ema + ms) // 4
        peak = self._reply_peak_ms
        # The peak follows a slower reply at once and decays by 1/8 per faster one.
        self._reply_peak_ms = ms if ms > peak else peak - (peak - ms) // 8
        timeout = self._reply_peak_ms + self._reply_peak_ms // 4 + _TIMEOUT_MARGIN_MS
        limit = self.timeout_limit_ms()
        self._timeout_ms = timeout if timeout < limit else limit

    def _lossy(self):
        counts = self._outcome_counts
        lost = counts[OUTCOME_CORRUPT] + counts[OUTCOME_NONE]
        return lost >= _LOSSY_MIN and lost * 100 >= _LOSSY_PCT * self._outcome_len

    def _intermittent(self):
        """The polls before the current run of losses were lossy enough that
        this run is likely just more of the same (not a BMS that stopped)."""
        tail = self._tail_lost
        counts = self._outcome_counts
        n = self._outcome_len - tail
        lost = counts[OUTCOME_CORRUPT] + counts[OUTCOME_NONE] - tail
        if lost < 1:
            return False  # no loss the BMS recovered from: nothing says it will
        chance = 1000  # per mille: how likely a run this long is at that rate
        for _ in range(tail):
            chance = chance * lost // n
        return chance >= _STOPPED_PER_MILLE

    def _quality_line(self):
        # Our replies arrive: say how well.
        if self._lossy():
            return LINE_INTERMITTENT
        if self.slow():
            return LINE_SLOW
        return LINE_OK

    def _set_line(self, line, now_ms):
        model = self.model
        if line == model.line:
            return
        if line == LINE_SILENT:
            self._error(ERR_SILENT, now_ms)
        elif line == LINE_NOISE:
            self._error(ERR_NOISE, now_ms)
        model.line = line
        model.touch()

    # -- frames --------------------------------------------------------------

    def _on_frame(self, b, o, length, kind, now_ms):
        self._frames_since_ok = wrap_add(self._frames_since_ok, 1)
        if kind == KIND_OLD_STATUS:
            self._on_status(b, o, PROTOCOL_OLD, now_ms)
        elif kind == KIND_NEW:
            func = b[o + 2]
            if func == new.REPLY_STATUS:
                self._on_status(b, o, PROTOCOL_NEW, now_ms)
            elif func < 0x10 or func == new.FN_CONTROL or func == new.FN_WRITE or func == new.FN_PASSWORD:
                self._on_request(b, o, length, now_ms)
            elif self._phase == _PHASE_PARAM and self._job is not None:
                self._on_job_reply(self._job.on_new(b, o, length), now_ms)
            elif self._txn is not None:
                self._on_command_reply(self._txn.on_new(b, o), now_ms)
        elif kind == KIND_OLD_SHORT:
            head = b[o]
            job = self._job
            if job is not None and head != old.HEAD_DATA and b[o + 2] != 0:
                # A register reply (or echo) while a parameter job runs is
                # the job's, in time or late: never another master's poll.
                if self._phase == _PHASE_PARAM:
                    echo = head == old.HEAD_READ and self._own_echo(b, o, length, now_ms)
                    self._on_job_reply(job.on_old(b, o, echo), now_ms)
                if self._txn is None or not self._txn.awaiting or head != old.HEAD_WRITE:
                    return
            if self._txn is not None and head == old.HEAD_WRITE and self._txn.awaiting:
                self._on_command_reply(self._txn.on_short(b, o), now_ms)
            elif head == old.HEAD_DATA or head == old.HEAD_READ or head == old.HEAD_WRITE:
                self._on_request(b, o, length, now_ms)

    def _own_echo(self, b, o, length, now_ms):
        # Some buses show a master its own bytes: a request identical to what
        # we sent moments ago (within its wire time, plus a driver's latency)
        # is ours. Later, the same bytes are another master's identical poll.
        last = self._last_tx_frame
        if last is None or len(last) != length or ticks_diff(now_ms, self._last_tx) > _ECHO_WINDOW_MS:
            return False
        for i in range(length):
            if b[o + i] != last[i]:
                return False
        return True

    def _on_request(self, b, o, length, now_ms):
        if self._own_echo(b, o, length, now_ms):
            return
        self._foreign(now_ms)
        # Another master's poll: note its rhythm to find the gaps.
        if self._foreign_polls_seen:
            period = ticks_diff(now_ms, self._last_foreign_poll)
            if 50 < period < 60000:
                self._foreign_period = period if not self._foreign_period else (3 * self._foreign_period + period) // 4
        self._last_foreign_poll = now_ms
        self._foreign_polls_seen = True
        self._foreign_awaiting = True

    def _foreign(self, now_ms):
        # Not an error: counted, and shown as the line diagnosis.
        self.stats.foreign_frames = wrap_add(self.stats.foreign_frames, 1)
        self._last_foreign = now_ms
        if self.config.passive and not self.model.passive:
            self.model.passive = True
            self.model.touch()

    def _on_status(self, b, o, protocol, now_ms):
        scratch = self._scratch
        if protocol == PROTOCOL_NEW:
            if new.decode_status(b, o, scratch):
                return
        elif old.decode_status(b, o, scratch):
            return
        if self._phase == _PHASE_POLL and protocol == self.detector.protocol:
            self._phase = _PHASE_IDLE
            self.detector.on_status(protocol)
            self._answered(now_ms, False)
            self.model.line = self._quality_line()
        elif self._late_reply(protocol, now_ms):
            self.stats.late_replies = wrap_add(self.stats.late_replies, 1)
            self._answered(now_ms, True)
            self.model.line = self._quality_line()
        else:
            # Nobody asked us for this: the BMS answered another master.
            self._foreign(now_ms)
            self._foreign_exchange_end = now_ms
            self._foreign_awaiting = False
            self.model.line = LINE_FOREIGN
        self._publish(scratch, protocol, now_ms)
        if self._txn is not None and self._txn.step == cmd.STEP_VERIFY:
            self._verify(now_ms)

    def _late_reply(self, protocol, now_ms):
        """A status outside our reply window: ours all the same when we
        polled recently and nobody else has asked since (a BMS never sends
        unasked, reference §6.3). Points the search at the attempt it
        answers. False: another master's exchange."""
        if not self._pending_polls or ticks_diff(now_ms, self._poll_sent_ms) > _LATE_MS:
            return False  # our polls are answered (a BMS answers each once): not ours
        if self._foreign_polls_seen and ticks_diff(self._last_foreign_poll, self._poll_sent_ms) >= 0:
            return False
        detector = self.detector
        if detector.locked and protocol == detector.protocol:
            return True
        # Searching: the reply answers our last attempt or the one before
        # (the search moved on when its deadline passed). Lock onto it.
        attempt = detector.attempts[self._poll_attempt]
        if attempt[0] != protocol or attempt[1] != self.baud:
            attempt = detector.attempts[self._prev_poll_attempt]
            if attempt[0] != protocol or attempt[1] != self.baud:
                return False
        if self._phase == _PHASE_POLL:
            self._phase = _PHASE_IDLE  # the attempt in flight is moot: this one answered
        detector.remember(protocol, self.baud, attempt[2])
        detector.on_status(protocol)
        return True

    def _publish(self, scratch, protocol, now_ms):
        model = self.model
        st = model.status
        st.copy_from(scratch)
        if self.config.invert_current:
            st.current_da = -st.current_da
            st.power_w = -st.power_w
        fitted = self.config.probes_fitted
        if fitted >= 0:
            fit_probes(st, fitted)
        model.has_data = True
        model.fresh_ms = now_ms
        model.protocol = protocol
        model.baud = self.baud
        self._rx_since_ok = 0
        self._frames_since_ok = 0
        self.stats.frames_ok = wrap_add(self.stats.frames_ok, 1)
        self._update_state(now_ms)
        model.touch()

    # -- link state and wiring diagnosis ---------------------------------------

    def _update_state(self, now_ms):
        model = self.model
        if not self.powered:
            state = LINK_UNPOWERED
        elif not model.has_data:
            state = LINK_LOST
        else:
            age = ticks_diff(now_ms, model.fresh_ms)  # <= _AGE_CAP: tick() saturates it
            if age <= self.stale_ms():
                state = LINK_OK
            elif age <= self.lost_ms():
                state = LINK_STALE
            elif self._rx_since_ok == 0 and model.line != LINE_FOREIGN:
                state = LINK_ASLEEP  # answered before, now not a single byte
            else:
                state = LINK_LOST
        if state != LINK_OK and self.powered:
            self._diagnose(state, now_ms)
        if state != model.link:
            if self.log is not None:
                self.log.add(EV_LINK, state, model.link, 0, now_ms)
            if state == LINK_LOST or state == LINK_ASLEEP:
                self.detector.lost()
                self._set_baud(self.detector.baud)
            model.link = state
            model.changed_ms = now_ms
            model.touch()

    def _diagnose(self, state, now_ms):
        # What the line looks like since the last verified status of ours.
        model = self.model
        if model.passive and ticks_diff(now_ms, self._last_foreign) < self.stale_ms():
            # Another master's traffic explains the line; once even that has
            # been quiet for a stale period, say what the line really does.
            line = LINE_FOREIGN
        elif not model.has_data and self.detector.rounds == 0 and self.stats.timeouts < _DIAGNOSE_AFTER:
            line = LINE_UNKNOWN  # the first attempts are still out
        elif state == LINK_STALE and self.detector.locked and self._intermittent():
            line = LINE_INTERMITTENT  # replies come and go: this gap is one more
        elif self._rx_since_ok == 0:
            line = LINE_SILENT
        elif self._rx_since_ok <= self.framer.pending():
            line = model.line  # every byte so far may be a frame still arriving
        elif self._frames_since_ok == 0:
            line = LINE_NOISE
        elif model.line == LINE_OK or model.line == LINE_SLOW or model.line == LINE_INTERMITTENT:
            line = LINE_UNKNOWN
        else:
            line = model.line
        if line != LINE_FOREIGN and model.passive:
            self._leave_passive(now_ms)  # whoever polled is gone: one diagnosis, ours
        self._set_line(line, now_ms)

    def _other_master_gone(self, now_ms):
        """The other master has missed its next poll by half a period (mid
        gap: a display that merely skipped one is not talked into), or the
        hold limit passed."""
        period = self._foreign_period
        anchor = self._last_foreign_poll if period and self._foreign_polls_seen else self._last_foreign
        if not period:
            period = self.poll_ms()
        hold = period + period // 2 if period >= _MID_GAP_MIN_MS else 2 * period + period // 2
        limit = self.config.passive_hold_ms
        if hold > limit:
            hold = limit
        return ticks_diff(now_ms, anchor) >= hold and ticks_diff(now_ms, self._last_foreign) >= self.config.quiet_ms

    def _leave_passive(self, now_ms):
        # The other master went away: poll again, starting with what its
        # exchanges proved (the protocol and baud the BMS answered in).
        model = self.model
        model.passive = False
        model.touch()
        self._next_poll = now_ms
        if not self.detector.locked and model.has_data and model.protocol:
            if self.detector.remember(model.protocol, self.baud, 0):
                self.detector.lost()

    def set_powered(self, on, now_ms):
        """The firmware switched the TTL side's isolated supply."""
        if on != self.powered:
            self.powered = on
            self.framer.reset()
            phase = self._phase
            self._phase = _PHASE_IDLE
            # A frame in flight died with the supply: as if unanswered (a
            # retry, or the failure a toggle gets: never sent twice blind).
            if phase == _PHASE_COMMAND:
                self._command_timed_out(now_ms)
            elif phase == _PHASE_PARAM:
                self._job_timed_out(now_ms)
            self._next_poll = now_ms
            self._saturate_stamps(now_ms)
            self._update_state(now_ms)

    # -- commands ------------------------------------------------------------

    def submit(self, command, now_ms):
        """Queue a link.command.Command. Returns False (and fails it) when
        the queue is full."""
        command.submitted_ms = now_ms
        if len(self._queue) >= _QUEUE_DEPTH:
            self._finish(command, cmd.FAILED, "command queue full", now_ms)
            return False
        self._queue.append(command)
        return True

    def busy(self):
        return self._txn is not None or bool(self._queue)

    def _start_command(self, now_ms):
        command = self._queue[0]
        if ticks_diff(now_ms, command.submitted_ms) >= self.config.command_timeout_ms:
            self._queue.pop(0)
            self._finish(command, cmd.FAILED, self._not_ready_reason(), now_ms)
            return
        if self.model.link != LINK_OK or not (self.detector.locked or self.model.passive):
            return  # wait for a live, identified BMS
        protocol = self.model.protocol
        if not commands.supported(command.name, protocol) and not (
            protocol == PROTOCOL_OLD and command.name in ("balancer-on", "balancer-off")
        ):
            self._queue.pop(0)
            self._finish(command, cmd.FAILED, "not supported by the %s protocol" % ("old" if protocol == PROTOCOL_OLD else "new"), now_ms)
            return
        self._queue.pop(0)
        txn = cmd.Transaction(command, protocol, self.config.password, self._balance_state)
        command.state = cmd.RUNNING
        command.attempts = 1
        if txn.already:
            self._finish(command, cmd.DONE, "", now_ms, "already in that state")
            return
        self._txn = txn

    def _not_ready_reason(self):
        link = self.model.link
        if link == LINK_UNPOWERED:
            return "the TTL port is not powered"
        if link == LINK_ASLEEP:
            return "the BMS is asleep"
        if link != LINK_OK:
            return "the BMS is not answering"
        return "the bus never went quiet"

    def _command_tick(self, now_ms):
        txn = self._txn
        if txn is None or self.tx is not None or txn.awaiting:
            return
        if ticks_diff(now_ms, txn.command.submitted_ms) >= self.config.command_timeout_ms:
            self._end_txn(cmd.FAILED, "timed out (%s)" % self._not_ready_reason(), now_ms)
            return
        if txn.step == cmd.STEP_VERIFY:
            # Active: ask for a status now; passive: the display's next poll
            # brings one.
            if not self.model.passive and self._phase == _PHASE_IDLE and self.bus_quiet(now_ms):
                self.tx = self.detector.request()
                self._phase = _PHASE_POLL
                self._deadline = ticks_add(now_ms, self.reply_timeout_ms())
                self._next_poll = ticks_add(now_ms, self.poll_ms())
                self.stats.polls = wrap_add(self.stats.polls, 1)
            return
        if self._phase != _PHASE_IDLE or not self._may_transmit(now_ms):
            return
        frame = txn.next_frame()
        self.tx = frame
        txn.awaiting = True
        self._phase = _PHASE_COMMAND
        # OLD echoes come within 32-84 ms, NEW ACKs 62-124 ms (reference);
        # the password block of four OLD frames takes longer on the wire.
        # A BMS measured slower than real units gets that much longer.
        extra = self.reply_timeout_ms() - self.default_timeout_ms()
        self._deadline = ticks_add(now_ms, (400 if txn.step == cmd.STEP_SEND else 600) + (extra if extra > 0 else 0))

    def _may_transmit(self, now_ms):
        if not self.bus_quiet(now_ms):
            return False
        if not self.model.passive:
            return True
        # Passive: talk right after another master's exchange ended, when its
        # next poll is still far away.
        period = self._foreign_period
        if not period:
            return False
        since_poll = ticks_diff(now_ms, self._last_foreign_poll)
        since_reply = ticks_diff(now_ms, self._foreign_exchange_end)
        budget = 450  # our frame + the BMS's reply, worst case
        return since_reply < period // 2 and since_poll + budget < period

    def _on_command_reply(self, verdict, now_ms):
        txn = self._txn
        if verdict is None or txn is None:
            return
        self._phase = _PHASE_IDLE
        txn.awaiting = False
        if verdict is not True:
            self._end_txn(cmd.FAILED, verdict, now_ms)
            return
        if txn.step == cmd.STEP_AUTH:
            txn.step = cmd.STEP_SEND
            return
        # STEP_SEND acknowledged.
        if txn.toggle_target >= 0:
            self._balance_state = txn.new_balance_state
            if txn.new_balance_state != txn.toggle_target:
                # The echo says it toggled the wrong way (it was already in
                # the target state): toggle once more, knowing the state.
                if txn.command.attempts >= self.config.command_attempts:
                    self._end_txn(cmd.FAILED, "balancer toggle did not reach the wanted state", now_ms)
                    return
                txn.command.attempts += 1
                txn.restart()
                return
        if txn.needs_status():
            txn.step = cmd.STEP_VERIFY
            txn.verify_frames = 0
            self._next_poll = now_ms
        else:
            self._end_txn(cmd.DONE, "", now_ms)

    def _verify(self, now_ms):
        txn = self._txn
        st = self.model.status
        if txn is None:
            return
        if txn.confirm(st):
            self._end_txn(cmd.DONE, "", now_ms, cmd.note_after(txn.name, st))
            return
        txn.verify_frames += 1
        if txn.verify_frames >= self.config.verify_frames:
            self._retry(now_ms, "acknowledged, but the status did not change")

    def _command_timed_out(self, now_ms):
        txn = self._txn
        self._phase = _PHASE_IDLE
        if txn is None:
            return
        txn.awaiting = False
        if txn.no_ack and txn.step == cmd.STEP_SEND:
            self._end_txn(cmd.DONE, "", now_ms, "sent (the BMS does not acknowledge this command)")
            return
        if txn.toggle_target >= 0 and txn.step == cmd.STEP_SEND:
            self._end_txn(cmd.FAILED, "no echo: toggle state unknown, not repeated so it cannot flip back", now_ms)
            self._balance_state = -1
            return
        self._retry(now_ms, "no reply to the password" if txn.step == cmd.STEP_AUTH else "no acknowledgement")

    def _retry(self, now_ms, reason):
        txn = self._txn
        if txn is None:
            return
        if txn.command.attempts >= self.config.command_attempts:
            self._end_txn(cmd.FAILED, reason + " after %d attempts" % txn.command.attempts, now_ms)
            return
        txn.command.attempts += 1
        txn.restart()

    def _end_txn(self, state, reason, now_ms, note=""):
        txn = self._txn
        self._txn = None
        if self._phase == _PHASE_COMMAND:
            self._phase = _PHASE_IDLE
        if txn is not None:
            self._finish(txn.command, state, reason, now_ms, note)

    def _finish(self, command, state, reason, now_ms, note=""):
        command.state = state
        command.reason = reason
        command.note = note
        command.finished_ms = now_ms
        self._count_result(command.code, state, command.who, now_ms)
        if command.done_cb is not None:
            command.done_cb(command)
        self.model.touch()

    def _count_result(self, code, state, who, now_ms):
        """A finished command or parameter write: the statistics, an error
        when it failed, and its event."""
        if state == cmd.DONE:
            self.stats.commands_ok = wrap_add(self.stats.commands_ok, 1)
        else:
            self.stats.commands_failed = wrap_add(self.stats.commands_failed, 1)
            self._error(ERR_COMMAND, now_ms)
        if self.log is not None:
            self.log.add(EV_COMMAND, code, state, who, now_ms)

    # -- parameter jobs (link/paramjob.py) ---------------------------------------
    # The BMS's settings, read or written between status polls: a due poll
    # goes first, a queued BMS command goes first, and each exchange waits for
    # a quiet bus (or a display's gap) and _PARAM_GAP_MS after the last frame.

    def submit_job(self, job, now_ms):
        """Queue a link.paramjob.ParamJob. Returns False (and fails it)
        when the queue is full."""
        job.submitted_ms = now_ms
        if len(self._jobs) >= _JOB_DEPTH:
            self._finish_job(job, cmd.FAILED, "parameter queue full", now_ms)
            return False
        self._jobs.append(job)
        return True

    def _job_tick(self, now_ms):
        job = self._job
        if job is None:
            job = self._jobs[0]
            if ticks_diff(now_ms, job.submitted_ms) >= self.config.command_timeout_ms:
                self._jobs.pop(0)
                self._finish_job(job, cmd.FAILED, self._not_ready_reason(), now_ms)
                return
            if self.model.link != LINK_OK or not (self.detector.locked or self.model.passive):
                return  # wait for a live, identified BMS
            self._jobs.pop(0)
            try:
                reason = job.begin(self.model.protocol, self.config.password, now_ms)
            except MemoryError:  # a face action on a full heap: fail it, never the link
                reason = "out of memory"
            if reason:
                self._finish_job(job, cmd.FAILED, reason, now_ms)
                return
            job.state = cmd.RUNNING
            self._job = job
        if job.awaiting or self._phase != _PHASE_IDLE:
            return
        if ticks_diff(now_ms, job.since_ms) >= self.config.command_timeout_ms:
            self._end_job(cmd.FAILED, "timed out (%s)" % self._not_ready_reason(), now_ms)
            return
        if self.model.protocol != job.protocol:
            self._end_job(cmd.FAILED, "the BMS changed protocol", now_ms)
            return
        if self.model.link != LINK_OK or not self._may_transmit(now_ms):
            return
        if ticks_diff(now_ms, self._last_rx) < _PARAM_GAP_MS or ticks_diff(now_ms, self._last_tx) < _PARAM_GAP_MS:
            return
        try:
            self.tx = job.frame()
        except MemoryError:
            self._end_job(cmd.FAILED, "out of memory", now_ms)
            return
        self._job_turn = False
        job.awaiting = True
        self._phase = _PHASE_PARAM
        extra = self.reply_timeout_ms() - self.default_timeout_ms()  # a BMS slower than real units
        self._deadline = ticks_add(now_ms, job.reply_ms() + (extra if extra > 0 else 0))

    def _on_job_reply(self, verdict, now_ms):
        job = self._job
        if verdict is None or job is None:
            return
        self._phase = _PHASE_IDLE
        job.awaiting = False
        if verdict is not True:
            self._end_job(cmd.FAILED, verdict, now_ms)
            return
        result = job.advance(now_ms)
        if result:
            self._end_job(result, job.reason, now_ms)

    def _job_timed_out(self, now_ms):
        job = self._job
        self._phase = _PHASE_IDLE
        if job is None:
            return
        job.awaiting = False
        if job.timed_out():
            self._on_job_reply(True, now_ms)
            return
        if job.attempts >= self.config.command_attempts:
            self._end_job(cmd.FAILED, job.no_reply() + " after %d attempts" % job.attempts, now_ms)
            return
        job.attempts += 1
        job.retry()

    def _end_job(self, state, reason, now_ms):
        job = self._job
        self._job = None
        if self._phase == _PHASE_PARAM:
            self._phase = _PHASE_IDLE
        if job is not None:
            self._finish_job(job, state, reason, now_ms)

    def _finish_job(self, job, state, reason, now_ms):
        job.state = state
        job.reason = reason
        job.finished_ms = now_ms
        job.awaiting = False
        if job.code != 255:  # a write: counted and logged like a command
            self._count_result(job.code, state, job.who, now_ms)
        if job.done_cb is not None:
            job.done_cb(job)
        self.model.touch()
