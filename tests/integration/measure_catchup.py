#!/usr/bin/python3
"""measure_catchup: how long a member of a 3-member ensemble takes to catch up after missing many writes.

A follower is stopped (SIGTERM), WRITES creates are pipelined through the leader (window 500), then
the follower is started again; the figure is the time from its start to the moment its tree digest
equals the leader's (and its last zxid too). With a small snapCount the leader has trimmed its log
and the member catches up by snapshot ("installed snapshot" in its log); with a large one it
catches up from the leader's log. By default both are measured:

    /usr/bin/python3 tests/integration/measure_catchup.py [--writes 100000] [--snap-counts 10000,100000]

Everything it starts (three coordd per configuration) it stops by PID, also on failure; its files are
in a temporary directory (kept with --keep). test_ensemble_catchup.py imports catch_up from here.
"""
import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import coordtest  # noqa: E402
from coordwire import ADMIN, CLOSE, CREATE, KIND_REPLY, OK, Wire, body_admin, body_create  # noqa: E402


def write_many(port, parent, n, window=500, at=None, action=None):
    """Create PARENT/kNNNNNNN for N = 0..n-1, pipelined (`window` in flight), in one session on the
    member at port; action() runs once at the at-th acknowledgement, the writes going on. Every
    create must succeed; returns the paths."""
    coordtest.ok("127.0.0.1:%d" % port, "mkdir", "-p", parent)
    paths = ["%s/k%07d" % (parent, i) for i in range(n)]
    inflight, acked = {}, 0
    with Wire(port) as w:
        w.connect(timeout_ms=10000)
        todo = iter(paths)
        more = True
        while more or inflight:
            while more and len(inflight) < window:
                p = next(todo, None)
                if p is None:
                    more = False
                    break
                inflight[w.send(CREATE, body_create(p, p.encode()))] = p
            m = w.recv(20.0)
            assert m is not None, "no reply for 20 s with %d writes in flight (%d acknowledged)" % (
                len(inflight), acked)
            p = inflight.pop(m.xid, None) if m.kind == KIND_REPLY else None
            if p is None:
                continue
            assert m.err == OK, "create %s: %r" % (p, m)
            acked += 1
            if acked == at and action:
                action()
        w.call(CLOSE)
    return paths


def member_state(port):
    """(coordfs_last_zxid, coordfs_tree_digest) of the member at port, asked on the wire (no coordctl
    process: a few hundred microseconds, so the catch-up time is measured to the millisecond), or
    None while it does not answer."""
    with Wire(port) as w:
        w.send(ADMIN, body_admin("mntr"))
        m = w.recv(0.2)
    if m is None or m.err != 0:
        return None
    v = dict(l.split("\t", 1) for l in m.data.decode().splitlines() if "\t" in l)
    return v.get("coordfs_last_zxid"), v.get("coordfs_tree_digest")


def catch_up(ens, writes, how="stop", during=False, parent="/bulk", lagger=None, timeout=120.0):
    """Stop a follower (or the member `lagger`; how: 'stop' = SIGTERM, 'kill' = kill -9) before
    `writes` creates through the leader (during: when a tenth of them are acknowledged, the writes
    going on), start the member again and wait until its digest equals the leader's. Returns a dict
    of figures: write_s, ready_s, caught_up_s, by_snapshot, member, leader, paths."""
    leader = coordtest.wait_leader(ens)
    lagger = lagger or next(m for m in ens.members if m is not leader)
    assert lagger is not leader

    def down():
        if how == "kill":
            lagger.kill()
        else:
            assert lagger.stop() == 0
    if not during:
        down()
    t0 = time.monotonic()
    paths = write_many(leader.port, parent, writes, at=writes // 10 if during else None, action=down)
    write_s = time.monotonic() - t0
    want = coordtest.wait_converged([m for m in ens.members if m.running()], timeout)
    t0 = time.monotonic()
    lagger.launch()
    coordtest.wait_until(lambda: member_state(lagger.port), timeout, interval=0.002,
                         what="member %d to answer" % lagger.myid)
    ready_s = time.monotonic() - t0
    coordtest.wait_until(lambda: member_state(lagger.port) == want, timeout, interval=0.002,
                         what="member %d to reach the leader's zxid and digest" % lagger.myid)
    caught_up_s = time.monotonic() - t0
    got = coordtest.wait_converged(ens.members, timeout)
    assert got == want, "the ensemble moved on while nothing was written: %s -> %s" % (want, got)
    log_text = lagger.log_since_start()
    return dict(write_s=write_s, ready_s=ready_s, caught_up_s=caught_up_s, member=lagger, leader=leader,
                by_snapshot="installed snapshot" in log_text, paths=paths, zxid=got[0], digest=got[1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--writes", type=int, default=100000, help="writes missed by the stopped member (100000)")
    ap.add_argument("--snap-counts", default="10000,100000",
                    help="snapCount of each configuration measured, comma-separated (10000,100000)")
    ap.add_argument("--tick", type=int, default=200, help="tickTime in ms (default 200)")
    ap.add_argument("--keep", action="store_true", help="keep the ensembles' directories")
    args = ap.parse_args()
    coordtest.binary("coordd")
    work = Path(tempfile.mkdtemp(prefix="coord-catchup-"))
    procs = coordtest.Procs()
    try:
        print("3 members on loopback, tickTime=%d; a follower is stopped, %d creates go through the leader, "
              "the follower is started; %s" % (args.tick, args.writes, work))
        for sc in (int(x) for x in args.snap_counts.split(",")):
            ens = coordtest.Ensemble(work / ("snap%d" % sc), 3, procs=procs, tickTime=args.tick, snapCount=sc)
            ens.start()
            r = catch_up(ens, args.writes)
            print("snapCount=%d: %d writes in %.1f s (%.0f/s); restarted member %d answering after %.3f s, "
                  "its zxid and digest equal to the leader's after %.3f s, %s"
                  % (sc, args.writes, r["write_s"], args.writes / r["write_s"], r["member"].myid, r["ready_s"],
                     r["caught_up_s"], "by snapshot (\"installed snapshot\" in its log)" if r["by_snapshot"]
                     else "from the leader's log (no snapshot installed)"))
            have = set(coordtest.synced_children(r["member"].port, "/bulk"))
            assert have == {p.rsplit("/", 1)[1] for p in r["paths"]}, "the caught-up member lacks writes"
            ens.stop()
    finally:
        procs.stop_all()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
