# What the firmware keeps across a reboot besides the settings: the energy
# counters and the rules engine's persistent state (persisted overrides,
# latched trips, time-on counters), in one small JSON file in storage
# (state.json). Writes are atomic (write_json_atomic), so a power cut leaves
# the old file or the new one, never half of one. A corrupt or unreadable
# file is reported and the firmware starts from zero.
import json
import os

FILE = "state.json"
MAX_FILE_BYTES = 8192  # the real file is a few hundred bytes


class TooLarge(ValueError):
    """read_json(): the file is larger than the caller allows."""


def read_json(path, max_bytes):
    """The JSON document in path, parsed from the stream: the heap never
    holds the file's text, and a file over max_bytes is refused unread (a
    runaway file must not exhaust the heap at boot). Raises OSError (absent
    or unreadable), TooLarge, or ValueError (not JSON)."""
    if os.stat(path)[6] > max_bytes:
        raise TooLarge("larger than " + str(max_bytes) + " bytes")
    with open(path) as f:
        return json.load(f)


def write_json_atomic(path, obj):
    """Write obj as JSON to path through path.tmp and a rename, then sync
    the filesystem where the port can (os.sync: ESP32, CPython). Raises
    OSError; a failed write leaves the old file and no temporary one."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(obj, f)
            f.flush()
        os.rename(tmp, path)
    except OSError:
        try:
            os.remove(tmp)
        except OSError:
            pass
        raise
    sync = getattr(os, "sync", None)
    if sync is not None:
        sync()


class StateStore:
    def __init__(self, root):
        self.path = root + FILE
        self.data = {}  # "energy": Energy.to_dict(), "outputs": Engine.persistent_state()
        self.error = None  # why the file was not used at boot (None = it was, or there was none)
        self.saves = 0
        self.save_errors = 0

    def load(self):
        try:
            d = read_json(self.path, MAX_FILE_BYTES)
        except OSError:
            return self.data  # first boot
        except ValueError:  # TooLarge included
            d = None
        if not isinstance(d, dict):
            self.error = FILE + ": corrupt; counters start from zero"
            print("state: ERROR", self.error)
            return self.data
        self.data = d
        return d

    def save(self, key, value):
        """Replace one part and write the whole file atomically; False (and
        counted) when storage failed."""
        self.data[key] = value
        try:
            write_json_atomic(self.path, self.data)
        except OSError as e:
            self.save_errors += 1
            print("state: ERROR saving", FILE, ":", e)
            return False
        self.saves += 1
        return True
