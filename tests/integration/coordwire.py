"""coordwire: a tiny client for the coordfs wire protocol, version 1 (common/WIRE.md).

Only for what coordctl cannot express: malformed frames, a resent xid, thousands of pipelined
writes. It speaks ZeroMQ DEALER to the server's ROUTER, one frame per message, little-endian.
Nothing here retries or reconnects: a test sees exactly what the server sent.
"""
import struct
import time

import zmq

VERSION = 1

# ops (WIRE.md 4.2)
CONNECT, PING, CLOSE, CREATE, DELETE, EXISTS, GET, SET, LIST, APPEND, RENAME, MULTI, SYNC, \
    ADDWATCH, REMOVEWATCH, SETPOLICY, CHECK, ADMIN, SETWATCHES = range(1, 20)

# create flags, policies
EPHEMERAL, SEQUENTIAL, DIRECTORY = 0x1, 0x2, 0x4

# errors (common/err.h)
OK, ENONODE, ENODEEXISTS, EBADVERSION, ENOTEMPTY, EEPHEMERAL, ENOTDIR, EBADPATH, ENAMETOOLONG, \
    ETOOLARGE, EBADARG, ESESSIONEXPIRED, ECONNLOSS, ETIMEOUT, EPROTO, EUNIMPL, ENOMEM, EIO, ENOSPC, \
    ELIMIT, ENOAUTH, EBADCONFIG, EPOLICY, EISDIR, ENOTREADY, ECLOSING, EDUPLICATE = range(27)

KIND_REPLY, KIND_EVENT = 1, 2
EV_CREATED, EV_DELETED, EV_CHANGED, EV_CHILDREN, EV_OVERFLOW = 1, 2, 3, 4, 5

REQ_HDR = struct.Struct("<BBHQQ")       # version, op, flags, xid, ack: 20 bytes
REP_HDR = struct.Struct("<BBBBiQQ")     # version, kind, op, reserved, err, xid, zxid: 24 bytes
STAT = struct.Struct("<qqqqqiiiqiiQBB")  # 78 bytes
STAT_FIELDS = ("czxid", "mzxid", "pzxid", "ctime", "mtime", "version", "cversion", "aversion",
               "ephemeral_owner", "data_length", "num_children", "ino", "kind", "policy")
assert REQ_HDR.size == 20 and REP_HDR.size == 24 and STAT.size == 78


def b(x):
    return x.encode() if isinstance(x, str) else bytes(x)


def enc_bytes(x):
    x = b(x)
    return struct.pack("<I", len(x)) + x


def header(op, xid, ack=0, version=VERSION, flags=0):
    return REQ_HDR.pack(version, op, flags, xid, ack)


# ---- request bodies (WIRE.md 4.2) ----

def body_connect(session_id=0, passwd=b"\0" * 16, timeout_ms=10000, last_zxid=0):
    return struct.pack("<Q", session_id) + passwd + struct.pack("<IQ", timeout_ms, last_zxid)


def body_create(path, data=b"", flags=0, policy=0):
    return enc_bytes(path) + enc_bytes(data) + struct.pack("<IB", flags, policy)


def body_delete(path, version=-1):
    return enc_bytes(path) + struct.pack("<i", version)


def body_get(path, watch=0):
    return enc_bytes(path) + struct.pack("<B", watch)


def body_set(path, data, version=-1):
    return enc_bytes(path) + enc_bytes(data) + struct.pack("<i", version)


def body_list(path, watch=0, after=b"", max_names=0):
    return enc_bytes(path) + struct.pack("<B", watch) + enc_bytes(after) + struct.pack("<I", max_names)


def body_admin(word):
    return enc_bytes(word)


def body_multi(subops):
    """subops: list of (op, body) with op in CREATE, SET, DELETE, CHECK."""
    out = struct.pack("<I", len(subops))
    for op, body in subops:
        out += struct.pack("<B", op) + body
    return out


class Reader:
    def __init__(self, data, off=0):
        self.d, self.o = data, off

    def take(self, n):
        if self.o + n > len(self.d):
            raise ValueError("frame too short")
        v = self.d[self.o:self.o + n]
        self.o += n
        return v

    def u8(self):
        return self.take(1)[0]

    def u32(self):
        return struct.unpack("<I", self.take(4))[0]

    def i32(self):
        return struct.unpack("<i", self.take(4))[0]

    def u64(self):
        return struct.unpack("<Q", self.take(8))[0]

    def bytes(self):
        return self.take(self.u32())

    def stat(self):
        return dict(zip(STAT_FIELDS, STAT.unpack(self.take(STAT.size))))

    def left(self):
        return len(self.d) - self.o


class Msg:
    """A decoded reply or event: kind, op, err, xid, zxid, msg and the body's fields."""

    def __init__(self, frame):
        self.frame = frame
        (self.version, self.kind, self.op, _res, self.err, self.xid,
         self.zxid) = REP_HDR.unpack_from(frame)
        r = Reader(frame, REP_HDR.size)
        self.msg = r.bytes().decode(errors="replace")
        self.stat = None
        if self.kind == KIND_EVENT:
            self.ev_type = r.u8()
            self.path = r.bytes().decode()
        elif self.op == MULTI:
            self.fail_index = r.i32()
            n = r.u32()
            self.results = []
            for _ in range(n):
                op, err = r.u8(), r.i32()
                res = {"op": op, "err": err}
                if err == 0 and op == CREATE:
                    res["path"] = r.bytes().decode()
                    res["stat"] = r.stat()
                elif err == 0 and op == SET:
                    res["stat"] = r.stat()
                self.results.append(res)
        elif self.err == 0:
            if self.op == CONNECT:
                self.session_id = r.u64()
                self.passwd = r.take(16)
                self.timeout_ms, self.server_id, self.max_data = r.u32(), r.u32(), r.u32()
                self.watches_kept = r.u8()
            elif self.op == CREATE:
                self.path = r.bytes().decode()
                self.stat = r.stat()
            elif self.op in (EXISTS, SET, APPEND, RENAME):
                self.stat = r.stat()
            elif self.op == GET:
                self.stat = r.stat()
                self.data = r.bytes()
            elif self.op == LIST:
                self.stat = r.stat()
                count = r.u32()
                names = r.bytes()
                self.more = r.u8()
                self.names = [n.decode() for n in names.split(b"\0")[:count]]
            elif self.op == SYNC:
                self.path = r.bytes().decode()
            elif self.op == ADMIN:
                self.data = r.bytes()
        self.trailing = r.left()

    def __repr__(self):
        return "Msg(kind=%d op=%d err=%d xid=%d zxid=%#x msg=%r)" % (
            self.kind, self.op, self.err, self.xid, self.zxid, self.msg)


class WireError(AssertionError):
    pass


class Wire:
    """One DEALER connection to one server. Not thread-safe."""

    def __init__(self, port, host="127.0.0.1", ctx=None, curve=None, source=None):
        """curve: (public, secret, server_public) Z85 keys for a CURVE server; source: the local
        address to connect from (e.g. "127.0.0.2", to look like another host)."""
        self.ctx = ctx or zmq.Context.instance()
        self.sock = self.ctx.socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        self.sock.setsockopt(zmq.SNDHWM, 0)
        self.sock.setsockopt(zmq.RCVHWM, 0)
        if curve:
            pub, sec, server_pub = (x.encode() if isinstance(x, str) else x for x in curve)
            self.sock.curve_publickey, self.sock.curve_secretkey, self.sock.curve_serverkey = pub, sec, server_pub
        src = "%s:0;" % source if source else ""
        self.sock.connect("tcp://%s%s:%d" % (src, host, port))
        self.next_xid = 1
        self.ack = 0
        self.session_id = 0
        self.passwd = b"\0" * 16
        self.events = []  # events received while waiting for replies

    def close(self):
        self.sock.close(0)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, frame):
        self.sock.send(bytes(frame))

    def recv(self, timeout=10.0):
        """The next message (Msg), or None when nothing came within timeout seconds."""
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return Msg(self.sock.recv())

    def recv_raw(self, timeout=10.0):
        if not self.sock.poll(int(timeout * 1000)):
            return None
        return self.sock.recv()

    def send(self, op, body=b"", xid=None, ack=None):
        """Send one request; returns its xid."""
        if xid is None:
            xid = self.next_xid
            self.next_xid += 1
        self.send_raw(header(op, xid, self.ack if ack is None else ack) + body)
        return xid

    def reply(self, xid, timeout=10.0):
        """Wait for the reply with this xid, keeping events aside."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            m = self.recv(max(left, 0)) if left > 0 else None
            if m is None:
                raise WireError("no reply to xid %d within %.1f s" % (xid, timeout))
            if m.kind == KIND_EVENT:
                self.events.append(m)
                continue
            if m.xid == xid:
                return m

    def call(self, op, body=b"", timeout=10.0, **kw):
        return self.reply(self.send(op, body, **kw), timeout)

    def connect(self, timeout_ms=10000):
        m = self.call(CONNECT, body_connect(timeout_ms=timeout_ms))
        if m.err:
            raise WireError("connect failed: %r" % m)
        self.session_id, self.passwd = m.session_id, m.passwd
        return m

    def admin(self, word):
        return self.call(ADMIN, body_admin(word))


def pipelined_creates(w, paths, data=lambda p: p.encode(), window=500, flags=0, stop_after=None,
                      on_stop=None, timeout=30.0):
    """Create every path with up to `window` requests in flight; returns {path: reply} of the acknowledged
    (err == 0) creates. After `stop_after` acknowledgements, on_stop() is called once (e.g. kill -9
    the server); then nothing more is sent, and replies already on their way are still collected."""
    acked = {}
    inflight = {}
    todo = iter(paths)
    stopped = False
    more = True
    while True:
        while more and not stopped and len(inflight) < window:
            p = next(todo, None)
            if p is None:
                more = False
                break
            inflight[w.send(CREATE, body_create(p, data(p), flags))] = p
        if not inflight:
            break
        m = w.recv(0.5 if stopped else timeout)
        if m is None:
            if stopped:
                break  # the server is gone: what did not come was not acknowledged
            raise WireError("no reply within %.0f s with %d requests in flight" % (timeout, len(inflight)))
        if m.kind != KIND_REPLY:
            continue
        p = inflight.pop(m.xid, None)
        if p is None:
            continue
        if m.err != OK:
            raise WireError("create %s failed: %r" % (p, m))
        acked[p] = m
        if not stopped and stop_after is not None and len(acked) >= stop_after:
            stopped = True
            if on_stop:
                on_stop()
    return acked
