# The dashboard at "/": one static page (www/ in the repository, inlined and
# gzipped by tools/webbuild.py), sent as it is stored, with
# Content-Encoding: gzip. The page itself reads the JSON API (the SSE stream,
# long polls as a fallback); nothing of it is rendered here.
#
# Where the page comes from:
#   frozen image   the generated module `dashpage` (PAGE: the gzipped bytes,
#                  ETAG), frozen by firmware/manifest.py: a bytes constant of
#                  frozen code stays in flash and costs no RAM
#   .mpy files     the file index.html.gz next to this module (dashboard.mpy):
#                  a bytes constant in an .mpy would be loaded into the heap,
#                  a file is read piece by piece
# Either way the body is copied through the connection's own buffer (its
# JsonOut's chunk buffer, made at start: httpserver.py), a few hundred bytes
# at a time; serving allocates the response object, never a buffer of the
# page's size.
#
# Caching: a strong ETag (the gzip trailer's CRC-32 of the page and its
# length, the same for both deployments) with "Cache-Control: no-cache":
# a browser asks again each time and gets 304 Not Modified until the
# firmware brings another page. A client that does not take gzip (curl
# without --compressed, a text browser) is sent to the plain page at /lite.
import io
import os

try:
    from micropython import const
except ImportError:  # CPython (pyright)
    def const(__value):
        return __value

FILE_NAME = "index.html.gz"
REASONS = {303: "See Other", 304: "Not Modified"}  # (web.py's table has the rest)
_TRAILER = const(8)  # gzip ends with CRC-32 and ISIZE, little-endian
_MISSING = "the dashboard page is not installed: copy build/www/index.html.gz next to dashboard.mpy (README \"Dashboard\")"


class Page:
    """Where the page is: frozen bytes or a file, with its length and ETag."""

    def __init__(self, data, path, length, etag):
        self.data = data  # bytes (frozen) or None
        self.path = path  # the file (.mpy deployment) or None
        self.length = length
        self.etag = etag

    def open(self):
        """A stream to readinto() from: over the frozen bytes (no copy: a
        BytesIO of bytes refers to them) or the file."""
        if self.data is not None:
            return io.BytesIO(self.data)
        return open(self.path, "rb")


def etag_of(trailer):
    """The ETag of a gzip member from its last 8 bytes: '"crc32-length"'."""
    crc = int.from_bytes(trailer[0:4], "little")
    size = int.from_bytes(trailer[4:8], "little")
    return '"%08x-%x"' % (crc, size)


def _module_dir():
    here = __file__
    cut = here.rfind("/")
    return here[:cut + 1] if cut >= 0 else ""


_page = None


def find(path=None):
    """The page (found once, then kept), or None when it is not installed.
    `path`: a file to serve instead (tests)."""
    global _page
    if path is None:
        if _page is not None:
            return _page
        try:
            import dashpage  # pyright: ignore[reportMissingImports]  (generated, frozen)

            _page = Page(dashpage.PAGE, None, len(dashpage.PAGE), dashpage.ETAG)
            return _page
        except ImportError:
            path = _module_dir() + FILE_NAME
    try:
        length = os.stat(path)[6]
        with open(path, "rb") as f:
            f.seek(length - _TRAILER)
            _page = Page(None, path, length, etag_of(f.read(_TRAILER)))
    except (OSError, ValueError):
        return None
    return _page


def reset():
    """Forget the page found (tests)."""
    global _page
    _page = None


class Body:
    """The response body: the page read into `buf` piece by piece. A full
    piece is handed out as the buffer itself, the last one as a view of it
    (each is sent before the next is read). The stream is opened on the
    first piece (a HEAD request opens nothing) and closed after the last;
    a client that leaves half-way leaves a file to the collector, which
    closes it (files have finalisers)."""

    def __init__(self, page, buf):
        self.page = page
        self.buf = buf
        self.view = memoryview(buf)
        self.stream = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.stream is None:
            self.stream = self.page.open()
        n = self.stream.readinto(self.buf)
        if not n:
            self.close()
            raise StopAsyncIteration
        return self.buf if n == len(self.buf) else self.view[:n]

    async def aclose(self):
        self.close()

    def close(self):
        s = self.stream
        if s is not None:
            self.stream = None
            s.close()


def _accepts_gzip(value):
    return value is not None and "gzip" in value


def respond(headers, buf):
    """(status, headers, body or None) for a request of "/": `headers` the
    request's (a dict with case-insensitive keys), `buf` the connection's
    reused buffer. Status 503 with a reason (body) when the page is not
    installed."""
    page = find()
    if page is None:
        return 503, None, _MISSING
    out = {"ETag": page.etag, "Cache-Control": "no-cache", "Vary": "Accept-Encoding"}
    match = headers.get("If-None-Match")
    if match is not None and page.etag in match:
        return 304, out, b""
    if not _accepts_gzip(headers.get("Accept-Encoding")):
        out["Location"] = "/lite"
        return 303, out, b""
    out["Content-Type"] = "text/html; charset=UTF-8"
    out["Content-Encoding"] = "gzip"
    out["Content-Length"] = page.length
    return 200, out, Body(page, buf)  # (a HEAD request never reads it: nothing is opened)
