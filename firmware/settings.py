# The user's settings: one JSON file in storage (settings.json) holding only
# what differs from the defaults below. A missing file means defaults; a
# corrupt or invalid one means defaults too, with the reason kept in
# `Settings.error` for the log and the faces, and the file left untouched so
# the user can fix it. Writes are atomic (temporary file + rename), so a
# power cut never leaves half a file.
import json
import os

import schema
from link.engine import LinkConfig

FILE = "settings.json"
PROTOCOLS = ("auto", "old", "new")  # index = PROTOCOL_* (0 = auto)
_TOP_KEYS = ("board", "api_token", "http_port", "wifi", "link")
_LINK_KEYS = (
    "poll_ms",
    "reply_timeout_ms",
    "stale_ms",
    "lost_ms",
    "gap_ms",
    "quiet_ms",
    "listen_first_ms",
    "protocol",
    "baud",
    "password",
    "invert_current",
    "probes_fitted",
    "passive",
    "passive_hold_ms",
    "command_timeout_ms",
    "command_attempts",
    "verify_frames",
)


class Settings:
    def __init__(self):
        self.board = ""  # "" = hw's default board
        self.api_token = ""  # "" = control over HTTP disabled
        self.http_port = 80
        self.wifi_ssid = ""
        self.wifi_password = ""
        self.link = LinkConfig()
        self.error: str | None = None  # why the file was not used (None = it was, or there is none)
        self.found = False  # a settings file existed


def _link(d, path):
    schema.obj(d, path, _LINK_KEYS)
    c = LinkConfig()
    c.poll_ms = schema.integer(d, "poll_ms", path, c.poll_ms, 10, 600000)
    c.reply_timeout_ms = schema.integer(d, "reply_timeout_ms", path, c.reply_timeout_ms, 0, 10000)
    c.stale_ms = schema.integer(d, "stale_ms", path, c.stale_ms, 0, 3600000)
    c.lost_ms = schema.integer(d, "lost_ms", path, c.lost_ms, 0, 3600000)
    c.gap_ms = schema.integer(d, "gap_ms", path, c.gap_ms, 5, 1000)
    c.quiet_ms = schema.integer(d, "quiet_ms", path, c.quiet_ms, 0, 1000)
    c.listen_first_ms = schema.integer(d, "listen_first_ms", path, c.listen_first_ms, 0, 10000)
    c.protocol = PROTOCOLS.index(schema.string(d, "protocol", path, "auto", PROTOCOLS))
    c.baud = schema.integer(d, "baud", path, c.baud, 0, 19200)
    if c.baud not in (0, 9600, 19200):
        raise schema.ConfigError(schema.join(path, "baud"), "must be 0 (auto), 9600 or 19200")
    if d.get("password") is not None:
        c.apply({"password": schema.string(d, "password", path, max_len=16) or None})
    c.invert_current = schema.boolean(d, "invert_current", path, c.invert_current)
    c.probes_fitted = schema.integer(d, "probes_fitted", path, c.probes_fitted, -1, 6)
    c.passive = schema.boolean(d, "passive", path, c.passive)
    c.passive_hold_ms = schema.integer(d, "passive_hold_ms", path, c.passive_hold_ms, 1000, 600000)
    c.command_timeout_ms = schema.integer(d, "command_timeout_ms", path, c.command_timeout_ms, 1000, 120000)
    c.command_attempts = schema.integer(d, "command_attempts", path, c.command_attempts, 1, 10)
    c.verify_frames = schema.integer(d, "verify_frames", path, c.verify_frames, 1, 20)
    return c


def parse(d):
    """A Settings from a decoded settings.json; raises schema.ConfigError."""
    schema.obj(d, "", _TOP_KEYS)
    s = Settings()
    s.board = schema.string(d, "board", "", s.board, max_len=32)
    s.api_token = schema.string(d, "api_token", "", s.api_token, max_len=128)
    s.http_port = schema.integer(d, "http_port", "", s.http_port, 1, 65535)
    wifi = schema.obj(d.get("wifi", {}), "wifi", ("ssid", "password"))
    s.wifi_ssid = schema.string(wifi, "ssid", "wifi", "", max_len=32)
    s.wifi_password = schema.string(wifi, "password", "wifi", "", max_len=64)
    s.link = _link(d.get("link", {}), "link")
    return s


def load(root):
    """Settings from root/settings.json; never raises."""
    path = root + FILE
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        return Settings()  # first boot: defaults
    try:
        d = json.loads(text)
    except ValueError:
        s = Settings()
        s.found = True
        s.error = FILE + ": not valid JSON; using defaults"
        return s
    try:
        s = parse(d)
    except schema.ConfigError as e:
        s = Settings()
        s.error = FILE + ": " + e.path + ": " + e.reason + "; using defaults"
    s.found = True
    return s


def save(root, d):
    """Validate d and write it atomically; raises schema.ConfigError."""
    parse(d)
    path = root + FILE
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(d, f)
    os.rename(tmp, path)
