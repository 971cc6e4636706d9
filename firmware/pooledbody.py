# Response bodies written into buffers allocated once at start.
#
# json.dumps() grows its string by reallocation, "".join() builds one more,
# and microdot then copies the result to bytes: two or three contiguous
# blocks of a few KB per request. On a long-running, nearly full heap that
# is what fails first (fragmentation, not a lack of free bytes). Here the
# body is streamed into a preallocated BytesIO and copied into a
# preallocated bytearray; the response body is a view of it, and the slot
# is released once the response has been written.
import io
import json

from microdot import Response  # pyright: ignore[reportMissingImports]  (deployed as .mpy, no stubs)

_SLOT_SIZE = 3072  # a 20-cell status document is about 2.5 KB, the page less
_SLOTS = 1  # concurrent bodies served from the pool; more fall back to the heap

JSON = "application/json; charset=UTF-8"
HTML = "text/html; charset=UTF-8"


class _Slot:
    def __init__(self):
        self.stream = io.BytesIO(_SLOT_SIZE)  # pyright: ignore  (MicroPython: preallocated capacity)
        self.buf = bytearray(_SLOT_SIZE)
        self.busy = False


_pool = [_Slot() for _ in range(_SLOTS)]
stats = {"pooled": 0, "fallback": 0}


def _free_slot():
    for slot in _pool:
        if not slot.busy:
            return slot
    return None


class PooledResponse(Response):
    """fill(stream) writes the body (str pieces) into a stream."""

    def __init__(self, fill, content_type, status_code=200):
        slot = _free_slot()
        self._slot = None
        if slot is None:
            stats["fallback"] += 1
            stream = io.BytesIO()
            fill(stream)
            body = stream.getvalue()
        else:
            stream = slot.stream
            stream.seek(0)
            fill(stream)
            n = stream.tell()
            if n > _SLOT_SIZE:  # grew past its capacity: serve this one from the heap
                stats["fallback"] += 1
                body = stream.getvalue()[:n]
                slot.stream = io.BytesIO(_SLOT_SIZE)  # pyright: ignore
            else:
                stats["pooled"] += 1
                stream.seek(0)
                body = memoryview(slot.buf)[:n]
                stream.readinto(body)
                slot.busy = True
                self._slot = slot
        Response.__init__(self, body, status_code, {"Content-Type": content_type, "Content-Length": str(len(body))})

    async def write(self, stream):
        try:
            await Response.write(self, stream)
        finally:
            if self._slot is not None:
                self._slot.busy = False
                self._slot = None


def json_response(doc, status_code=200):
    return PooledResponse(lambda s: json.dump(doc, s), JSON, status_code)
