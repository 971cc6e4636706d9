# Validating the compact JSON config, shared by every part that takes one
# (link, rules, ACC, energy, boards). A bad field raises ConfigError naming
# its path ("outputs[1].on.value") and the reason; callers validate into a
# fresh object and swap it in only when everything passed, so nothing is
# ever half-applied. Config is read rarely: this code may allocate.


class ConfigError(ValueError):
    def __init__(self, path, reason):
        super().__init__(path + ": " + reason)
        self.path = path
        self.reason = reason


def join(path, key):
    """Path of a member: join("outputs[1]", "on") -> "outputs[1].on"."""
    if isinstance(key, int):
        return path + "[" + str(key) + "]"
    return key if not path else path + "." + key


def obj(value, path, allowed=None):
    """A JSON object; with `allowed`, unknown keys are errors (typos must
    not be silently ignored)."""
    if not isinstance(value, dict):
        raise ConfigError(path or "config", "must be an object")
    if allowed is not None:
        for key in value:
            if key not in allowed:
                raise ConfigError(join(path, key), "unknown key (allowed: " + ", ".join(sorted(allowed)) + ")")
    return value


def _default(p, default):
    """The value of an absent key: its default, or ConfigError when it is
    required (default None)."""
    if default is None:
        raise ConfigError(p, "required")
    return default


def _within(v, p, lo, hi):
    if lo is not None and v < lo:
        raise ConfigError(p, "must be >= " + str(lo))
    if hi is not None and v > hi:
        raise ConfigError(p, "must be <= " + str(hi))
    return v


def integer(d, key, path, default=None, lo=None, hi=None):
    """d[key] as an int within [lo, hi]; `default` when absent (None:
    required). A float with an integral value (5.0) counts as that int."""
    p = join(path, key)
    if key not in d:
        return _default(p, default)
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, int):
        # v - v == 0 only for a finite float: int(inf) would raise
        # OverflowError and int(nan) ValueError instead of a ConfigError.
        if isinstance(v, float) and v - v == 0 and v == int(v):
            v = int(v)
        else:
            raise ConfigError(p, "must be an integer")
    return _within(v, p, lo, hi)


def number(d, key, path, default=None, lo=None, hi=None):
    """d[key] as a finite float within [lo, hi]."""
    p = join(path, key)
    if key not in d:
        return _default(p, default)
    v = d[key]
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(p, "must be a number")
    v = float(v)
    if v - v != 0:  # nan or +-inf (JSON 1e400 parses as inf)
        raise ConfigError(p, "must be a finite number")
    return _within(v, p, lo, hi)


def boolean(d, key, path, default=None):
    p = join(path, key)
    if key not in d:
        return _default(p, default)
    v = d[key]
    if not isinstance(v, bool):
        raise ConfigError(p, "must be true or false")
    return v


def string(d, key, path, default=None, choices=None, max_len=64):
    p = join(path, key)
    if key not in d:
        return _default(p, default)
    v = d[key]
    if not isinstance(v, str):
        raise ConfigError(p, "must be a string")
    if len(v) > max_len:
        raise ConfigError(p, "longer than " + str(max_len) + " characters")
    if choices is not None and v not in choices:
        raise ConfigError(p, "must be one of: " + ", ".join(choices))
    return v


def array(d, key, path, default=None, max_len=32):
    p = join(path, key)
    if key not in d:
        return _default(p, default)
    v = d[key]
    if not isinstance(v, list):
        raise ConfigError(p, "must be a list")
    if len(v) > max_len:
        raise ConfigError(p, "more than " + str(max_len) + " entries")
    return v
