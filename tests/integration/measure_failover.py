#!/usr/bin/python3
"""measure_failover: how long writes stop when the leader of a 3-member ensemble is killed (kill -9).

One client session does back-to-back synchronous creates; the leader is killed between two writes;
the figure is the time from the kill to the acknowledgement of the next write. Two cases:

  follower  the client is connected to a follower: it stays there; the follower holds the write
            and hands it to the new leader.
  leader    the client is given all hosts and connected to the leader: it sees its connection drop,
            resumes its session on another member and resends the write with its xid (as the C
            client library does).

After each kill the killed member is restarted and waited for until it has caught up. At the end,
every acknowledged write is checked on every member and the tree digests must agree.

    /usr/bin/python3 tests/integration/measure_failover.py [--rounds 10] [--term-rounds 5] [--tick 200]
                                                           [--session 4000]

It also measures a clean stop (SIGTERM) of the leader, which hands leadership over before exiting.

Everything it starts (three coordd) it stops by PID, also on failure; its files are in a temporary
directory (kept with --keep). The test suite (test_ensemble_failover.py) imports Session and run_case
from here.
"""
import argparse
import re
import signal
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import zmq  # noqa: E402
from zmq.utils.monitor import recv_monitor_message  # noqa: E402

import coordtest  # noqa: E402
from coordwire import (CLOSE, CONNECT, CREATE, ECONNLOSS, ENOTREADY, ESESSIONEXPIRED, ETIMEOUT,  # noqa: E402
                       KIND_REPLY, OK, PING, Msg, body_connect, body_create, header)


class SessionLost(AssertionError):
    pass


class Session:
    """One client session over the wire that follows the ensemble like the C client library does:
    when its member goes away (ZeroMQ reports the disconnect, or nothing is heard for half the
    session timeout) it resumes the session on the next member, refusing members behind the last
    zxid it saw, and resends the unanswered request with its original xid (applied at most once).
    Synchronous: one request at a time. Not thread-safe."""

    def __init__(self, ports, timeout_ms=4000, first=None, ctx=None):
        self.ports = list(ports)
        self.ctx = ctx or zmq.Context.instance()
        self.timeout_ms = timeout_ms
        self.session_id = 0
        self.passwd = b"\0" * 16
        self.last_zxid = 0
        self.next_xid = 1
        self.ack = 1             # every reply below this xid has been received
        self.sock = self.mon = None
        self.port = None
        self.moves = []          # (monotonic time, from port, to port) of each resumption elsewhere
        self.last_recv = 0.0
        self.last_send = 0.0
        self.attach(first if first is not None else self.ports[0])

    # -- connections --

    def _close_socket(self):
        if self.sock is not None:
            try:
                self.sock.disable_monitor()
            except zmq.ZMQError:
                pass
            self.sock.close(0)
        if self.mon is not None:
            self.mon.close(0)
        self.sock = self.mon = None

    def close(self, end_session=True):
        """End the session (CLOSE, its ephemerals go at once) and drop the connection."""
        if end_session and self.sock is not None and self.session_id:
            try:
                self.call(CLOSE, b"", give_up_after=2.0)
            except AssertionError:
                pass
        self._close_socket()

    def _wait(self, ms):
        """Block until the socket has a message or the monitor an event (or ms pass): True when the
        socket has a message. Waiting on both keeps the disconnect noticed at once."""
        poller = zmq.Poller()
        poller.register(self.sock, zmq.POLLIN)
        if self.mon is not None:
            poller.register(self.mon, zmq.POLLIN)
        ready = dict(poller.poll(ms))
        return self.sock in ready

    def _events(self):
        """Disconnect/refusal events from the socket monitor: True when the connection is gone."""
        gone = False
        while self.mon is not None and self.mon.poll(0):
            ev = recv_monitor_message(self.mon)["event"]
            gone |= ev in (zmq.EVENT_DISCONNECTED, zmq.EVENT_CONNECT_RETRIED, zmq.EVENT_CLOSED)
        return gone

    def _try(self, port, window):
        """Open a socket to port and resume (or open) the session there; True when attached."""
        self._close_socket()
        s = self.ctx.socket(zmq.DEALER)
        s.setsockopt(zmq.LINGER, 0)
        s.setsockopt(zmq.SNDHWM, 0)
        s.setsockopt(zmq.RCVHWM, 0)
        self.mon = s.get_monitor_socket(zmq.EVENT_DISCONNECTED | zmq.EVENT_CONNECT_RETRIED | zmq.EVENT_CLOSED)
        s.connect("tcp://127.0.0.1:%d" % port)
        self.sock = s
        s.send(header(CONNECT, 0, self.ack) + body_connect(self.session_id, self.passwd, self.timeout_ms,
                                                                 self.last_zxid))
        deadline = time.monotonic() + window
        while time.monotonic() < deadline:
            if self._events():
                return False
            if not self._wait(10):
                continue
            m = Msg(s.recv())
            if m.kind != KIND_REPLY or m.op != CONNECT:
                continue
            if m.err == ESESSIONEXPIRED:
                raise SessionLost("session 0x%x expired: %s" % (self.session_id, m.msg))
            if m.err != OK or (self.last_zxid and m.zxid < self.last_zxid):
                return False  # behind what we saw, or cannot serve: another member
            self.session_id, self.passwd, self.timeout_ms = m.session_id, m.passwd, m.timeout_ms
            self.last_zxid = max(self.last_zxid, m.zxid)
            self.port = port
            self.last_recv = self.last_send = time.monotonic()
            return True
        return False

    def attach(self, port, give_up_after=None):
        """Attach to the member at port, else to the next ones in turn, within the session timeout."""
        give_up = time.monotonic() + (give_up_after or self.timeout_ms / 1000)
        i = self.ports.index(port)
        old = self.port
        while time.monotonic() < give_up:
            p = self.ports[i % len(self.ports)]
            if self._try(p, max(self.timeout_ms / 3000, 0.1)):
                if old is not None and p != old:
                    self.moves.append((time.monotonic(), old, p))
                return p
            i += 1
            if i % len(self.ports) == self.ports.index(port):
                time.sleep(0.05)  # a whole round refused: pause as the C library does
        raise SessionLost("no member took session 0x%x within %.1f s" % (self.session_id, give_up_after or
                                                                         self.timeout_ms / 1000))

    def move_to(self, port):
        """Resume the session on the member at port (explicitly, not because of a failure)."""
        if port != self.port:
            self.attach(port)

    def _next_member(self):
        i = self.ports.index(self.port)
        self.attach(self.ports[(i + 1) % len(self.ports)])

    # -- requests --

    def call(self, op, body, give_up_after=30.0):
        """Send one request and wait for its reply; across member failures it resends the same frame
        (same xid) to the next member. Returns the reply (Msg)."""
        xid = self.next_xid
        self.next_xid += 1
        self.ack = xid
        frame = header(op, xid, self.ack) + body
        self.sock.send(frame)
        self.last_send = time.monotonic()
        give_up = time.monotonic() + give_up_after
        half = self.timeout_ms / 2000
        while True:
            now = time.monotonic()
            if now > give_up:
                raise SessionLost("no reply to xid %d within %.0f s" % (xid, give_up_after))
            lost = self._events() or now - self.last_recv > half
            if not lost and self._wait(10):
                m = Msg(self.sock.recv())
                self.last_recv = time.monotonic()
                self.last_zxid = max(self.last_zxid, m.zxid)
                if m.kind != KIND_REPLY or m.xid != xid:
                    continue  # events, PING replies
                if m.err == ESESSIONEXPIRED:
                    raise SessionLost("session 0x%x expired: %s" % (self.session_id, m.msg))
                if m.err not in (ENOTREADY, ECONNLOSS, ETIMEOUT):
                    self.ack = xid + 1
                    return m
                lost = True  # this member cannot serve it: resend elsewhere
            if lost:
                self._next_member()
                self.sock.send(frame)
                self.last_send = time.monotonic()
            elif time.monotonic() - self.last_send > self.timeout_ms / 3000:
                self.sock.send(header(PING, 0, self.ack))  # keep the session heard from while we wait
                self.last_send = time.monotonic()

    def create(self, path, data=b""):
        m = self.call(CREATE, body_create(path, data))
        if m.err != OK:
            raise AssertionError("create %s: %r" % (path, m))
        return m


# ---- the measurement ----

def member_at(ens, port):
    return next(m for m in ens.members if m.port == port)


def write_for(sess, prefix, seconds=None, count=None, acked=None):
    """Back-to-back creates PREFIX-N until seconds passed / count done; appends (sent, acked, path)."""
    acked = [] if acked is None else acked
    end = time.monotonic() + seconds if seconds is not None else None
    n = 0
    while (end is None or time.monotonic() < end) and (count is None or n < count):
        path = "%s-%d" % (prefix, len(acked))
        sent = time.monotonic()
        sess.create(path, b"v")
        acked.append((sent, time.monotonic(), path))
        n += 1
    return acked


def stop_member(m, how):
    """kill -9 (how='kill') or SIGTERM (how='term') the member, without waiting for it to exit."""
    if how == "kill":
        m.proc.kill()
    else:
        m.proc.send_signal(signal.SIGTERM)


def run_case(ens, case, rounds, how="kill", log=print, timeout_ms=4000, warm_s=0.3, after_writes=50,
             ready_timeout=30.0):
    """Stop the leader (how: 'kill' = kill -9, 'term' = SIGTERM) `rounds` times under a back-to-back
    writer; restart it and wait until it caught up each time. case 'follower': the writer is on a
    follower; 'leader': it is given every member, leader first, and must move. Returns (gaps in
    seconds from the stop to the next acknowledged write, acknowledged paths)."""
    ports = [m.port for m in ens.members]
    leader = coordtest.wait_leader(ens)
    first = next(m for m in ens.members if m is not leader) if case == "follower" else leader
    order = [first.port] + [p for p in ports if p != first.port]
    sess = Session(order, timeout_ms=timeout_ms)
    prefix = "/load/%s-%s" % (how, case)
    acked = []
    gaps = []
    try:
        coordtest.ok(ens.hosts, "mkdir", "-p", "/load")
        for r in range(rounds):
            leader = coordtest.wait_leader(ens)
            if case == "follower" and member_at(ens, sess.port) is leader:
                sess.move_to(next(m.port for m in ens.members if m is not leader))
            if case == "leader":
                sess.move_to(leader.port)
            assert (member_at(ens, sess.port) is leader) == (case == "leader")
            moves_before = len(sess.moves)
            write_for(sess, prefix, seconds=warm_s, acked=acked)
            n_before = len(acked)
            t_stop = time.monotonic()
            stop_member(leader, how)
            write_for(sess, prefix, count=after_writes, acked=acked)
            gap = acked[n_before][1] - t_stop
            gaps.append(gap)
            moved = len(sess.moves) > moves_before
            status = leader.proc.wait(10)
            new_leader = coordtest.wait_leader(ens)
            log("  %s %s round %d: leader %d stopped, next write acknowledged after %.1f ms (new leader %d%s)"
                % (how, case, r + 1, leader.myid, gap * 1000, new_leader.myid,
                   ", client moved to member %d" % member_at(ens, sess.port).myid if moved else ""))
            assert new_leader is not leader
            if how == "term":
                assert status == 0, "the leader exited with status %s after SIGTERM" % status
                handed = re.findall(r"handing leadership to member (\d+)", leader.log_since_start())
                assert handed, "the stopping leader did not hand over leadership:\n" + leader.log_tail()
                assert int(handed[-1]) == new_leader.myid, "handed to member %s, but member %d leads" % (
                    handed[-1], new_leader.myid)
            if case == "leader":
                assert moved, "the client on the stopped leader did not move to another member"
            else:
                assert not moved, "the client on a follower moved although its member lived"
            leader.launch()
            leader.wait_ready(ready_timeout)
            coordtest.wait_converged(ens.members, ready_timeout)
    finally:
        sess.close()
    return gaps, [p for _, _, p in acked]


def check_all_present(ens, paths, parent="/load"):
    """Every path is a child of parent on every member (read after sync there), and digests agree."""
    want = {p.rsplit("/", 1)[1] for p in paths}
    for m in ens.members:
        have = set(coordtest.synced_children(m.port, parent))
        missing = want - have
        assert not missing, "member %d lacks %d acknowledged writes, e.g. %s" % (
            m.myid, len(missing), sorted(missing)[:5])
    return coordtest.wait_converged(ens.members)


def figures(gaps):
    ms = sorted(g * 1000 for g in gaps)
    return "n=%d min %.1f ms, median %.1f ms, max %.1f ms  (all: %s)" % (
        len(ms), ms[0], statistics.median(ms), ms[-1], " ".join("%.0f" % x for x in ms))


def ensemble_settings(tick, session_ms):
    return dict(tickTime=tick, minSessionTimeout=min(1000, session_ms), maxSessionTimeout=max(10000, session_ms))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=10, help="leader kills per case (default 10)")
    ap.add_argument("--term-rounds", type=int, default=5, help="leader SIGTERMs per case (default 5)")
    ap.add_argument("--tick", type=int, default=200, help="tickTime in ms (default 200)")
    ap.add_argument("--session", type=int, default=4000, help="session timeout in ms (default 4000)")
    ap.add_argument("--keep", action="store_true", help="keep the ensemble's directory")
    args = ap.parse_args()
    coordtest.binary("coordd")
    work = Path(tempfile.mkdtemp(prefix="coord-failover-"))
    procs = coordtest.Procs()
    results = {}
    try:
        ens = coordtest.Ensemble(work, 3, procs=procs, **ensemble_settings(args.tick, args.session))
        ens.start()
        print("3 members on loopback, tickTime=%d, session timeout %d ms, %d kills and %d SIGTERMs per case; %s"
              % (args.tick, args.session, args.rounds, args.term_rounds, work))
        all_paths = []
        for how, rounds in (("kill", args.rounds), ("term", args.term_rounds)):
            for case in ("follower", "leader"):
                if rounds:
                    gaps, paths = run_case(ens, case, rounds, how=how, timeout_ms=args.session)
                    results[how, case] = gaps
                    all_paths += paths
        zxid, digest = check_all_present(ens, all_paths)
        print("all %d acknowledged writes present on every member; digests equal (%s at zxid %s)"
              % (len(all_paths), digest, zxid))
        for how, what in (("kill", "leader kill -9"), ("term", "leader SIGTERM (hand-over)")):
            if (how, "follower") in results:
                print("%s -> next acknowledged write:" % what)
                print("  client on a follower:              " + figures(results[how, "follower"]))
                print("  client on the leader (reconnects): " + figures(results[how, "leader"]))
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
