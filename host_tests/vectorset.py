# The 123 captured frames of the protocol reference (vectors.json, a verbatim
# copy), for tests under CPython and under the MicroPython unix port. On
# MicroPython the file is read as JSON Lines (written by the pytest driver)
# one vector at a time: the whole file would cost ~300 KB of heap.
import json
import sys

_HERE = __file__.rsplit("/", 1)[0] if "/" in __file__ else "."


def vectors():
    """Yield (index, vector) for every vector."""
    if sys.implementation.name == "micropython":
        import os

        path = os.getenv("ANTBRIDGE_VECTORS_JSONL") or "build/vectors.jsonl"
        with open(path) as f:
            index = 0
            for line in f:
                if line.strip():
                    yield index, json.loads(line)
                    index += 1
    else:
        with open(_HERE + "/vectors.json") as f:
            for index, v in enumerate(json.load(f)):
                yield index, v


def write_jsonl(path):
    """CPython side: write vectors.json as JSON Lines for the MicroPython run."""
    with open(_HERE + "/vectors.json") as f:
        data = json.load(f)
    with open(path, "w") as out:
        for v in data:
            out.write(json.dumps(v) + "\n")
    return len(data)


def unhex(text):
    from binascii import unhexlify

    return unhexlify(text)
