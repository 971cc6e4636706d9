# DNS messages (RFC 1035), the two small things the bridge needs, pure:
#
#   n = answer(query, n, out, ip4)     the captive portal's responder: every
#       standard query for an A record gets ip4 (the bridge's access-point
#       address); other types get an empty NOERROR answer (a phone then
#       asks for A). -1: malformed or not a query (dropped, counted by the
#       caller). out must hold REPLY_MAX bytes (an EDNS record or any other
#       trailing part of the query is left out of the reply).
#   n = query(out, qid, name)          an A query for name (the NTP server's)
#   r = parse_a(buf, n, qid, ip_out)   the first A record of our reply into
#                                      ip_out (4 bytes): 1, or E_* < 0
#
# Every length is checked against the packet before it is read, names are
# at most 255 bytes in labels of at most 63, and a question may not use
# compression (no query does): a malformed packet is refused, never
# followed.
try:
    from micropython import const
except ImportError:  # CPython
    def const(__value):  # positional-only, like the stub
        return __value

PORT = const(53)
MAX = const(512)  # a DNS message over UDP, without EDNS
REPLY_MAX = const(288)  # answer()'s longest reply: header, a 255-byte name, type, class, one A record
_HEADER = const(12)
_TYPE_A = const(1)
_TYPE_ANY = const(255)
_CLASS_IN = const(1)
_TTL_S = const(10)  # short: a phone forgets the captive answers soon after set-up
_MAX_NAME = const(255)
_MAX_HOPS = const(64)  # labels and pointers followed in one name

E_NOT_OURS = const(-1)  # another id, or not a response
E_REFUSED = const(-2)  # the server answered with an error (NXDOMAIN, SERVFAIL)
E_NO_ADDRESS = const(-3)  # no A record in the answer
E_MALFORMED = const(-4)


def _question_end(q, n):
    """End of the single question (name, type, class) starting at the
    header's end, or -1 when it is malformed."""
    pos = _HEADER
    total = 0
    while True:
        if pos >= n:
            return -1
        length = q[pos]
        if length == 0:
            pos += 1
            break
        if length > 63:  # a compression pointer or a reserved label type
            return -1
        total += length + 1
        if total > _MAX_NAME:
            return -1
        pos += length + 1
    end = pos + 4
    return end if end <= n else -1


def answer(q, n, out, ip4):
    if n < _HEADER or q[2] & 0xF8:  # a response (QR), or an opcode other than QUERY
        return -1
    if q[4] != 0 or q[5] != 1:  # exactly one question
        return -1
    end = _question_end(q, n)
    if end < 0:
        return -1
    qclass = q[end - 2] << 8 | q[end - 1]
    if qclass != _CLASS_IN and qclass != _TYPE_ANY:
        return -1
    qtype = q[end - 4] << 8 | q[end - 3]
    for i in range(end):
        out[i] = q[i]
    out[2] = 0x84 | (q[2] & 0x01)  # response, authoritative, recursion desired as asked
    out[3] = 0x80  # recursion available, NOERROR
    an = 1 if qtype == _TYPE_A or qtype == _TYPE_ANY else 0
    out[6] = 0
    out[7] = an
    for i in range(8, 12):  # no authority, no additional (an EDNS record is dropped)
        out[i] = 0
    if not an:
        return end
    p = end
    out[p] = 0xC0  # the name: a pointer to the question's
    out[p + 1] = _HEADER
    out[p + 2] = 0
    out[p + 3] = _TYPE_A
    out[p + 4] = 0
    out[p + 5] = _CLASS_IN
    out[p + 6] = 0
    out[p + 7] = 0
    out[p + 8] = 0
    out[p + 9] = _TTL_S
    out[p + 10] = 0
    out[p + 11] = 4
    for i in range(4):
        out[p + 12 + i] = ip4[i]
    return p + 16


def query(out, qid, name):
    """An A query for name (recursion desired) in out; its length.
    ValueError for a name no DNS server would take."""
    out[0] = qid >> 8 & 0xFF
    out[1] = qid & 0xFF
    out[2] = 0x01  # recursion desired
    out[3] = 0
    out[4] = 0
    out[5] = 1
    for i in range(6, 12):
        out[i] = 0
    pos = _HEADER
    labels = name.encode().split(b".")
    if len(name) > 253:
        raise ValueError("name too long")
    for label in labels:
        if not 0 < len(label) <= 63:
            raise ValueError("bad name")
        out[pos] = len(label)
        out[pos + 1:pos + 1 + len(label)] = label
        pos += 1 + len(label)
    out[pos] = 0
    out[pos + 1] = 0
    out[pos + 2] = _TYPE_A
    out[pos + 3] = 0
    out[pos + 4] = _CLASS_IN
    return pos + 5


def _skip_name(buf, pos, n):
    """Past a (possibly compressed) name at pos, or -1."""
    for _ in range(_MAX_HOPS):
        if pos >= n:
            return -1
        length = buf[pos]
        if length == 0:
            return pos + 1
        if length & 0xC0 == 0xC0:
            return pos + 2 if pos + 2 <= n else -1
        if length > 63:
            return -1
        pos += length + 1
    return -1


def parse_a(buf, n, qid, ip_out):
    if n < _HEADER or buf[0] != (qid >> 8 & 0xFF) or buf[1] != (qid & 0xFF) or not buf[2] & 0x80:
        return E_NOT_OURS
    if buf[3] & 0x0F:
        return E_REFUSED
    qd = buf[4] << 8 | buf[5]
    an = buf[6] << 8 | buf[7]
    pos = _HEADER
    for _ in range(qd):
        pos = _skip_name(buf, pos, n)
        if pos < 0 or pos + 4 > n:
            return E_MALFORMED
        pos += 4
    for _ in range(an):
        pos = _skip_name(buf, pos, n)
        if pos < 0 or pos + 10 > n:
            return E_MALFORMED
        rtype = buf[pos] << 8 | buf[pos + 1]
        rclass = buf[pos + 2] << 8 | buf[pos + 3]
        rlen = buf[pos + 8] << 8 | buf[pos + 9]
        pos += 10
        if pos + rlen > n:
            return E_MALFORMED
        if rtype == _TYPE_A and rclass == _CLASS_IN and rlen == 4:
            for i in range(4):
                ip_out[i] = buf[pos + i]
            return 1
        pos += rlen  # a CNAME on the way: its A record follows
    return E_NO_ADDRESS
