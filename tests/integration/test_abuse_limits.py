"""Limits against abuse (issue 8): each limit hit by a misbehaving client gets a clear error (or,
for maxClientCnxns, a refused connection the client library names), is logged once rather than
once per refusal, and a well-behaved client working meanwhile sees no error at all."""
import subprocess

import pytest

import coordwire as cw
from coordtest import binary, coordctl, exists, ok, wait_until
from goodclient import GoodClient

EX_INVALID, EX_SERVER = 6, 8


def log_lines(srv, text):
    return [l for l in srv.log_since_start().splitlines() if text in l]


def test_max_client_cnxns_refuses_the_address_over_it_and_serves_the_others(make_server):
    srv = make_server(maxClientCnxns=4)
    with GoodClient(srv.port) as good:  # from 127.0.0.1
        held = []
        try:
            for _ in range(4):  # another host (127.0.0.2) uses up its share
                w = cw.Wire(srv.port, source="127.0.0.2")
                w.connect()
                held.append(w)
            extra = [cw.Wire(srv.port, source="127.0.0.2") for _ in range(3)]
            held += extra
            for w in extra:  # refused at the handshake: nothing ever comes back
                w.send(cw.CONNECT, cw.body_connect())
            for w in extra:
                assert w.recv(0.5) is None
            wait_until(lambda: log_lines(srv, "refused a connection from 127.0.0.2"), 10, what="the refusal log")
            assert len(log_lines(srv, "maxClientCnxns=4")) == 1  # one line, not one per refusal
            # the first four still work
            assert held[0].call(cw.GET, cw.body_get("/")).err == cw.OK
            good.wait_calls(10)
        finally:
            for w in held:
                w.close()
        # once they are closed the address may connect again
        def again():
            with cw.Wire(srv.port, source="127.0.0.2") as w:
                w.send(cw.CONNECT, cw.body_connect())
                m = w.recv(0.5)
                return m is not None and m.err == cw.OK
        wait_until(again, 10, what="127.0.0.2 to be let in again")
    assert good.errors == []


def test_max_client_cnxns_is_a_clear_error_from_coordctl(make_server):
    srv = make_server(maxClientCnxns=2)
    held = []
    try:
        for _ in range(2):
            w = cw.Wire(srv.port)
            w.connect()
            held.append(w)
        rc, _, err = coordctl(srv.hosts, "get", "/")
        assert rc == EX_SERVER and "too many connections from this address (maxClientCnxns)" in err, err
    finally:
        for w in held:
            w.close()


def test_outstanding_requests_over_the_limit_get_elimit_and_others_are_served(make_server):
    srv = make_server(maxSessionRequests=20)
    with GoodClient(srv.port) as good, cw.Wire(srv.port) as w:
        w.connect()
        xids = [w.send(cw.CREATE, cw.body_create("/flood%d" % i, b"x")) for i in range(2000)]
        got = {}
        while len(got) < len(xids):  # refusals come at once, ahead of the queued writes' replies
            m = w.recv(30)
            assert m is not None, "no reply for %d requests" % (len(xids) - len(got))
            if m.kind == cw.KIND_REPLY:
                got[m.xid] = m
        replies = [got[x] for x in xids]
        limited = [r for r in replies if r.err == cw.ELIMIT]
        assert limited and all(r.err in (cw.OK, cw.ELIMIT) for r in replies)
        assert "maxSessionRequests=20" in limited[0].msg
        assert len([r for r in replies if r.err == cw.OK]) >= 20
        good.wait_calls(10)
        # the session itself goes on once its queue drained
        assert w.call(cw.GET, cw.body_get("/")).err == cw.OK
    assert good.errors == []
    assert len(log_lines(srv, "hit maxSessionRequests=20")) == 1


def test_watches_over_the_limit_get_elimit_and_others_are_served(make_server):
    srv = make_server(maxSessionWatches=10)
    with GoodClient(srv.port) as good, cw.Wire(srv.port) as w:
        w.connect()
        for i in range(10):
            assert w.call(cw.ADDWATCH, cw.enc_bytes("/w%d" % i) + bytes([2])).err == cw.OK
        for i in range(10, 15):
            r = w.call(cw.ADDWATCH, cw.enc_bytes("/w%d" % i) + bytes([2]))
            assert r.err == cw.ELIMIT and "maxSessionWatches=10" in r.msg
        r = w.call(cw.EXISTS, cw.body_get("/nothing", watch=1))
        assert r.err == cw.ELIMIT
        r = w.call(cw.GET, cw.body_get("/"))  # a read without a watch is fine
        assert r.err == cw.OK
        # the watches it has still fire
        ok(srv.hosts, "create", "/w3", "x")
        wait_until(lambda: w.recv(0.2) is not None or w.events, 10, what="the event of /w3")
        good.wait_calls(10)
    assert good.errors == []
    assert len(log_lines(srv, "hit maxSessionWatches=10")) == 1


def test_a_frame_over_the_limit_drops_that_connection_only(make_server):
    srv = make_server(maxDataBytes=65536)  # frames up to maxDataBytes + 1 MiB
    with GoodClient(srv.port) as good, cw.Wire(srv.port) as w:
        w.connect()
        w.send_raw(cw.header(cw.CREATE, 99) + cw.body_create("/evil", b"e" * (2 << 20)))
        assert w.recv(1.0) is None  # ZeroMQ drops the connection before allocating the frame
        good.wait_calls(10)
    assert good.errors == [] and not exists(srv.hosts, "/evil")


def test_a_request_over_the_frame_limit_is_refused_by_the_client_library(make_server):
    # every op of the multi fits maxDataBytes, the whole does not fit a frame: a clear local
    # error instead of a connection the server drops again at every resend
    srv = make_server(maxDataBytes=65536)
    ops = ["create /m%d %s" % (i, "m" * 65000) for i in range(20)]
    rc, _, err = coordctl(srv.hosts, "multi", *ops)
    assert rc == EX_INVALID, err
    assert not exists(srv.hosts, "/m0")
    ok(srv.hosts, "create", "/after", "fine")


def test_path_too_long_or_too_deep_is_refused_cleanly(server):
    with GoodClient(server.port) as good:
        rc, _, err = coordctl(server.hosts, "create", "/" + "a" * 4100, "x")
        assert rc == EX_INVALID and "too long" in err, err
        deep = "/d" * 2100  # 4200 bytes: depth is bounded by the path length
        rc, _, err = coordctl(server.hosts, "create", deep, "x")
        assert rc == EX_INVALID, err
        good.wait_calls(10)
    assert good.errors == []
