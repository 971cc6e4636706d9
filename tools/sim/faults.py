# Line faults, settable from the command line (--faults "drop=0.1,...") and at
# run time (`fault NAME VALUE`). Rates are probabilities per reply.
import random

RATES = ("drop", "truncate", "flip", "garbage")
NAMES = ("drop", "delay", "truncate", "flip", "garbage", "display", "silent")


class Faults:
    def __init__(self, seed=0):
        self._rng = random.Random("faults-%s" % seed)
        self.drop = 0.0
        self.delay = 0  # extra reply latency, ms
        self.truncate = 0.0
        self.flip = 0.0
        self.garbage = 0.0
        self.display = 0  # display poll period, ms (0 = no display)
        self.silent = 0.0  # seconds of silence requested (as last set)
        self.silent_until = None
        # what was done, for `state`
        self.dropped = 0
        self.truncated = 0
        self.flipped = 0
        self.garbage_bytes = 0

    def set(self, name, value, now):
        if name not in NAMES:
            raise ValueError("unknown fault %r (known: %s)" % (name, ", ".join(NAMES)))
        value = float(value)
        if name in RATES:
            if not 0.0 <= value <= 1.0:
                raise ValueError(name + " is a rate 0..1")
            setattr(self, name, value)
        elif value < 0:
            raise ValueError(name + " must be >= 0")
        elif name == "silent":
            self.silent = value
            self.silent_until = now + value if value > 0 else None
        else:
            setattr(self, name, int(value))

    def parse(self, spec, now):
        """Apply "drop=0.1,delay=300,..."; raises ValueError."""
        for item in spec.split(","):
            item = item.strip()
            if not item:
                continue
            if "=" not in item:
                raise ValueError("fault %r is not NAME=VALUE" % item)
            name, value = item.split("=", 1)
            self.set(name.strip(), value.strip(), now)

    def clear(self):
        self.drop = self.truncate = self.flip = self.garbage = 0.0
        self.delay = self.display = 0
        self.silent = 0.0
        self.silent_until = None

    def is_silent(self, now):
        if self.silent_until is not None and now >= self.silent_until:
            self.silent_until = None
        return self.silent_until is not None

    def settings(self):
        return {name: getattr(self, name) for name in NAMES}

    def counters(self):
        return {
            "dropped": self.dropped,
            "truncated": self.truncated,
            "flipped": self.flipped,
            "garbage_bytes": self.garbage_bytes,
        }

    def apply(self, frame):
        """The bytes actually sent for one reply (b"" = dropped), and the extra
        latency in ms."""
        rng = self._rng
        if self.drop and rng.random() < self.drop:
            self.dropped += 1
            return b"", 0
        out = bytearray(frame)
        if self.truncate and len(out) > 1 and rng.random() < self.truncate:
            del out[rng.randrange(1, len(out)) :]
            self.truncated += 1
        if self.flip and out and rng.random() < self.flip:
            i = rng.randrange(len(out))
            out[i] ^= 1 << rng.randrange(8)
            self.flipped += 1
        if self.garbage and rng.random() < self.garbage:
            noise = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 17)))
            self.garbage_bytes += len(noise)
            out = bytearray(noise) + out
        return bytes(out), self.delay
