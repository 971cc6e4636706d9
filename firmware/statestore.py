# Files in storage, read and written so that no file can stop a boot:
#
#   read_json()          size, nesting depth and number of values are
#                        checked on the raw bytes first (a small buffer, no
#                        parse): a file that would need more heap to parse
#                        than a device has is refused with its reason, and
#                        the caller runs on defaults
#   write_json_atomic()  temporary file + rename + sync: a power cut leaves
#                        the old file or the new one, never half of one
#
# StateStore holds state.json: the parts the firmware keeps across a reboot
# (energy counters, the rules' persistent state, the event log), written
# together in one atomic write (persist.py decides when).
import json
import os

FILE = "state.json"
MAX_FILE_BYTES = 8192  # the real file is 1-3 KB
MAX_DEPTH = 6
MAX_VALUES = 800
_SCAN_CHUNK = 128


class TooLarge(ValueError):
    """read_json(): the file is larger, deeper or has more values than the
    caller allows."""


def check_shape(path, max_bytes, max_depth, max_values):
    """Raise TooLarge when the JSON text in path is over max_bytes, nested
    deeper than max_depth or has more than max_values values (counted as
    openers and commas outside strings). OSError when unreadable."""
    size = os.stat(path)[6]
    if size > max_bytes:
        raise TooLarge("larger than " + str(max_bytes) + " bytes")
    buf = bytearray(_SCAN_CHUNK)
    depth = 0
    values = 1
    in_string = False
    escaped = False
    with open(path, "rb") as f:
        while True:
            n = f.readinto(buf)
            if not n:
                break
            for i in range(n):
                c = buf[i]
                if in_string:
                    if escaped:
                        escaped = False
                    elif c == 0x5C:  # backslash
                        escaped = True
                    elif c == 0x22:
                        in_string = False
                elif c == 0x22:
                    in_string = True
                elif c == 0x7B or c == 0x5B:  # { [
                    depth += 1
                    values += 1
                    if depth > max_depth:
                        raise TooLarge("nested deeper than " + str(max_depth) + " levels")
                elif c == 0x7D or c == 0x5D:  # } ]
                    depth -= 1
                elif c == 0x2C:  # ,
                    values += 1
                if values > max_values:
                    raise TooLarge("more than " + str(max_values) + " values")


def read_json(path, max_bytes, max_depth=MAX_DEPTH, max_values=MAX_VALUES):
    """The JSON document in path, parsed from the stream after
    check_shape(). Raises OSError (absent or unreadable), TooLarge, or
    ValueError (not JSON)."""
    check_shape(path, max_bytes, max_depth, max_values)
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


def copy_file(src, dst):
    """Copy src to dst in small chunks (keeps a damaged file for the user)."""
    buf = bytearray(256)
    with open(src, "rb") as fi:
        with open(dst, "wb") as fo:
            while True:
                n = fi.readinto(buf)
                if not n:
                    break
                fo.write(memoryview(buf)[:n])


class StateStore:
    def __init__(self, root):
        self.path = root + FILE
        self.error = None  # what was wrong with the file at boot (None = nothing)
        self.saves = 0
        self.save_errors = 0
        self.last_error = None

    def load(self):
        """The saved parts as a dict ({} on a first boot or when the file
        is unusable: then `error` says why and the file is kept as
        state.json.bad for the user)."""
        try:
            d = read_json(self.path, MAX_FILE_BYTES)
        except OSError:
            return {}  # first boot
        except TooLarge as e:
            self.damaged(FILE + ": " + str(e) + "; starting from zero")
            return {}
        except ValueError:
            d = None
        if not isinstance(d, dict):
            self.damaged(FILE + ": corrupt (not a JSON object); starting from zero")
            return {}
        return d

    def damaged(self, error):
        """Report a damaged file or part, once, and keep the file aside
        (state.json.bad) before the next save replaces it."""
        print("state: ERROR", error)
        self.error = error if self.error is None else self.error + "; " + error
        try:
            copy_file(self.path, self.path + ".bad")
        except OSError:
            pass

    def save(self, data):
        """Write the whole state in one atomic write; False (and counted)
        when storage failed."""
        try:
            write_json_atomic(self.path, data)
        except OSError as e:
            self.save_errors += 1
            self.last_error = str(e)
            print("state: ERROR saving", FILE, ":", e)
            return False
        self.saves += 1
        return True
