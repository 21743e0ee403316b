"""The recipes around the mount (README "Recipes"): coord-lock, coord-elect, coord-watch,
coord-register and coord-pick, on real ensembles and real coordfs mounts.

Every tool runs as a real process registered with `tools` (stopped by PID at teardown, pass or
fail); every mount comes from conftest_fs's `mount` fixture (unmounted at teardown). Tests wait on
conditions (files, exit statuses, znodes) with deadlines, never on bare sleeps.
"""
import os
import re
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

import coordtest
from conftest_fs import mount  # noqa: F401  (fixture)
from coordtest import ensemble_fixture, wait_until

make_ensemble = ensemble_fixture(tickTime=200, minSessionTimeout=1000, maxSessionTimeout=20000)

SESSION = 2  # seconds: the session timeout of mounts that a test kills or pauses


@pytest.fixture
def tools(mount):
    """The recipe processes of a test, stopped by PID (SIGTERM, then SIGKILL) before its mounts are
    unmounted: a tool holding .watch open would keep an unmount busy."""
    p = coordtest.Procs()
    yield p
    p.stop_all()


def tool(name):
    return str(coordtest.binary(name))


def spawn(procs, argv, log=None, env=None, **kw):
    """Start a recipe tool; stderr goes to `log` (a Path) so a failing test can show it."""
    err = open(log, "ab") if log else subprocess.DEVNULL
    try:
        return procs.spawn(argv, stdout=kw.pop("stdout", subprocess.DEVNULL), stderr=err,
                           env=dict(os.environ, **(env or {})), **kw)
    finally:
        if log:
            err.close()


def wait_exit(p, timeout, what):
    try:
        return p.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("%s did not exit within %.0f s" % (what, timeout))


def lines(path):
    try:
        return Path(path).read_text().splitlines()
    except FileNotFoundError:
        return []


def ls(hosts, path):
    rc, out, _ = coordtest.coordctl(hosts, "ls", path)
    return out.split() if rc == 0 else []


def session_of(m):
    return dict(l.split(" ", 1) for l in m.sh("cat .session").splitlines())


# ---- coord-lock ----

def test_lock_ten_contenders_on_two_mounts_are_exclusive_fifo_and_fenced(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    mounts = [mount(ens, "m1"), mount(ens, "m2")]
    log = tmp_path / "log"
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    # Contender 0 holds until the test lets it go; the others take turns. Each writes "in" and
    # "out" lines (O_APPEND on a local file) around a short stay in the critical section.
    first = "echo \"in 0 $COORD_FENCING_TOKEN\" >> %s; read x < %s; echo 'out 0' >> %s" % (log, fifo, log)
    body = "echo \"in %d $COORD_FENCING_TOKEN\" >> " + str(log) + "; sleep 0.05; echo 'out %d' >> " + str(log)
    procs_ = []
    for i in range(10):
        m = mounts[i % 2]
        cmd = first if i == 0 else body % (i, i)
        procs_.append(spawn(tools, [tool("coord-lock"), m.p("locks", "deploy"), "-c", cmd],
                            log=tmp_path / "stderr"))
        # Order of arrival: the next contender starts once this one is queued.
        wait_until(lambda: len(ls(ens.hosts, "/locks/deploy")) == i + 1, 15,
                   what="contender %d to queue" % i)
        if i == 0:
            wait_until(lambda: lines(log), 15, what="contender 0 to hold the lock")
    with open(fifo, "w") as f:
        f.write("go\n")
    for i, p in enumerate(procs_):
        assert wait_exit(p, 60, "contender %d" % i) == 0, (tmp_path / "stderr").read_text()
    ev = [l.split() for l in lines(log)]
    assert len(ev) == 20
    # Mutual exclusion: strictly "in i", "out i" pairs; FIFO: i in order of arrival.
    assert [e[:2] for e in ev] == [[k, str(i)] for i in range(10) for k in ("in", "out")]
    tokens = [int(e[2]) for e in ev if e[0] == "in"]
    assert all(a < b for a, b in zip(tokens, tokens[1:])), tokens
    assert ls(ens.hosts, "/locks/deploy") == []  # every entry released


def test_lock_holder_whose_mount_is_killed_is_replaced_after_the_session_timeout(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m1, m2 = mount(ens, "m1", session_timeout=SESSION), mount(ens, "m2")
    log = tmp_path / "log"
    a = spawn(tools, [tool("coord-lock"), m1.p("locks/job"), "-c",
                      "trap 'echo TERM-A >> %s; exit 0' TERM; echo \"in A $COORD_FENCING_TOKEN\" >> %s; "
                      "sleep 1000 & wait" % (log, log)], log=tmp_path / "a.err")
    wait_until(lambda: lines(log), 15, what="A to hold the lock")
    b = spawn(tools, [tool("coord-lock"), m2.p("locks/job"), "-c",
                      "echo \"in B $COORD_FENCING_TOKEN $(date +%%s.%%N)\" >> %s" % log], log=tmp_path / "b.err")
    wait_until(lambda: len(ls(ens.hosts, "/locks/job")) == 2, 15, what="B to queue")
    t0 = time.time()
    m1.kill()
    # A's mount is gone: A stops its command and says the lock is lost.
    assert wait_exit(a, 15, "A") == 75, (tmp_path / "a.err").read_text()
    assert "lost the lock" in (tmp_path / "a.err").read_text()
    assert wait_exit(b, SESSION + 15, "B") == 0, (tmp_path / "b.err").read_text()
    ev = [l.split() for l in lines(log)]
    assert [e[0] for e in ev] == ["in", "TERM-A", "in"] and ev[2][1] == "B", ev
    # B got in only once A's session expired (its entry is ephemeral), within timeout + slack.
    waited = float(ev[2][3]) - t0
    assert SESSION / 2 <= waited <= SESSION + 3, waited
    assert int(ev[2][2]) > int(ev[0][2])


def test_lock_expiry_while_the_command_runs_signals_it_and_exits_75(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m1, m2 = mount(ens, "m1", session_timeout=SESSION), mount(ens, "m2")
    log = tmp_path / "log"
    a = spawn(tools, [tool("coord-lock"), m1.p("locks/job"), "-c",
                      "trap 'echo TERM-A >> %s; exit 0' TERM; echo \"in A $COORD_FENCING_TOKEN\" >> %s; "
                      "sleep 1000 & wait" % (log, log)], log=tmp_path / "a.err")
    wait_until(lambda: lines(log), 15, what="A to hold the lock")
    b = spawn(tools, [tool("coord-lock"), m2.p("locks/job"), "-c",
                      "echo \"in B $COORD_FENCING_TOKEN\" >> %s" % log], log=tmp_path / "b.err")
    wait_until(lambda: len(ls(ens.hosts, "/locks/job")) == 2, 15, what="B to queue")
    m1.stop_signal()  # the host stalls past its session timeout
    try:
        assert wait_exit(b, SESSION + 15, "B") == 0, (tmp_path / "b.err").read_text()
    finally:
        m1.cont_signal()
    # Back, the mount learns its session expired; A's command is told with SIGTERM.
    assert wait_exit(a, 15, "A") == 75, (tmp_path / "a.err").read_text()
    # (Its entry's deletion by the expiry may reach the mount before the word "expired".)
    assert re.search(r"lost the lock .*: (the session expired|\S+ was deleted)", (tmp_path / "a.err").read_text())
    ev = [l.split() for l in lines(log)]
    assert [e[0] for e in ev] == ["in", "in", "TERM-A"], ev
    assert int(ev[1][2]) > int(ev[0][2])  # B's fencing token beats the stalled holder's


def test_lock_is_kept_across_a_failover_of_the_member_the_mount_uses(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m = mount(ens, session_timeout=4)
    log = tmp_path / "log"
    fifo = tmp_path / "go"
    os.mkfifo(fifo)
    err = tmp_path / "a.err"
    a = spawn(tools, [tool("coord-lock"), m.p("locks/job"), "-c",
                      "trap 'echo TERM >> %s' TERM; echo in >> %s; read x < %s; echo out >> %s"
                      % (log, log, fifo, log)], log=err)
    wait_until(lambda: lines(log), 15, what="the lock")
    connected = session_of(m)["server"]
    next(s for s in ens.members if s.hosts == connected).kill()
    wait_until(lambda: session_of(m)["server"] != connected and session_of(m)["state"] == "connected", 15,
               what="the mount to move to another member")
    with open(fifo, "w") as f:
        f.write("go\n")
    assert wait_exit(a, 15, "the holder") == 0, err.read_text()
    assert lines(log) == ["in", "out"]  # never told to stop: the session lived on
    assert ls(ens.hosts, "/locks/job") == []


def test_lock_nonblock_wait_exit_codes_and_a_killed_coord_lock(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m = mount(ens, "m1")
    lock = m.p("locks", "x")
    log = tmp_path / "log"
    assert m.sh("%s %s sh -c 'exit 3'" % (tool("coord-lock"), lock), check=False).returncode == 3
    holder = spawn(tools, [tool("coord-lock"), lock, "-c", "echo held >> %s; sleep 1000 & wait" % log],
                   log=tmp_path / "h.err")
    wait_until(lambda: lines(log), 15, what="the holder")
    p = m.sh("%s -n %s true" % (tool("coord-lock"), lock), check=False)
    assert p.returncode == 1 and p.stderr == ""
    assert m.sh("%s -n -E 9 %s true" % (tool("coord-lock"), lock), check=False).returncode == 9
    t0 = time.monotonic()
    assert m.sh("%s -w 0.5 %s true" % (tool("coord-lock"), lock), check=False).returncode == 1
    assert 0.5 <= time.monotonic() - t0 < 5
    assert len(ls(ens.hosts, "/locks/x")) == 1  # those that gave up left no entry
    # kill -9 of coord-lock itself: its guard stops the command and deletes the entry at once
    # (the mount lives on, so its session would keep the entry forever).
    waiter = spawn(tools, [tool("coord-lock"), lock, "-c", "echo next >> %s" % log], log=tmp_path / "w.err")
    wait_until(lambda: len(ls(ens.hosts, "/locks/x")) == 2, 15, what="the waiter to queue")
    cmd_pids = coordtest.children_of(holder.pid)
    holder.kill()
    holder.wait()
    assert wait_exit(waiter, 15, "the waiter") == 0
    assert lines(log) == ["held", "next"]
    for pid in cmd_pids:
        wait_until(lambda: not coordtest.pid_alive(pid), 10, what="the killed holder's command to end")
    assert m.sh("%s %s" % (tool("coord-lock"), lock), check=False).returncode == 64  # no command


# ---- coord-elect ----

def running(d):
    return sorted(p.name for p in Path(d).iterdir())


def test_elect_three_candidates_one_leads_and_killing_its_mount_elects_another(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    mounts = [mount(ens, "m%d" % i, session_timeout=SESSION) for i in (1, 2, 3)]
    run_dir = tmp_path / "running"
    run_dir.mkdir()
    log = tmp_path / "log"
    cands = []
    for i, m in enumerate(mounts, 1):
        name = "c%d" % i
        # The command marks itself running, and unmarks itself when told to stop.
        cmd = ("touch %(d)s/%(n)s; echo \"start %(n)s $COORD_FENCING_TOKEN\" >> %(l)s; "
               "trap 'rm -f %(d)s/%(n)s; echo \"stop %(n)s\" >> %(l)s; exit 0' TERM; sleep 1000 & wait"
               % dict(d=run_dir, n=name, l=log))
        cands.append(spawn(tools, [tool("coord-elect"), "-v", m.p("elect/svc"), name, "sh", "-c", cmd],
                           log=tmp_path / ("%s.err" % name)))
    wait_until(lambda: len(ls(ens.hosts, "/elect/svc")) == 3 and running(run_dir), 15, what="a leader")
    leader = running(run_dir)
    assert len(leader) == 1
    leader = leader[0]
    for m in mounts:
        assert m.sh("%s --who elect/svc" % tool("coord-elect")).strip() == leader
    i = int(leader[1:]) - 1
    mounts[i].kill()
    assert wait_exit(cands[i], 15, "the old leader") == 75
    wait_until(lambda: running(run_dir) and running(run_dir) != [leader], SESSION + 15, what="a new leader")
    new = running(run_dir)
    assert len(new) == 1 and new != [leader]
    others = [m for k, m in enumerate(mounts) if k != i]
    wait_until(lambda: others[0].sh("%s --who elect/svc" % tool("coord-elect")).strip() == new[0], 10,
               what="--who to name the new leader")
    ev = [l.split() for l in lines(log)]
    # Never two at once: the old leader stopped before the new one started; tokens grow.
    assert [e[:2] for e in ev] == [["start", leader], ["stop", leader], ["start", new[0]]], ev
    assert int(ev[2][2]) > int(ev[0][2])
    # The others still stand; stopping the leader's coord-elect hands over again.
    k = int(new[0][1:]) - 1
    cands[k].terminate()
    assert wait_exit(cands[k], 15, "the second leader") == 0  # its command exited 0 on SIGTERM
    wait_until(lambda: running(run_dir) and running(run_dir) != new, 15, what="a third leader")
    assert len(running(run_dir)) == 1
    assert coordtest.coordctl(ens.hosts, "exists", "/elect")[0] == 0


def test_elect_who_without_candidates(make_ensemble, mount):
    ens = make_ensemble(3)
    m = mount(ens)
    p = m.sh("%s --who nothing/here" % tool("coord-elect"), check=False)
    assert p.returncode == 1 and p.stdout == "" and "no leader" in p.stderr


# ---- coord-watch ----

def test_watch_runs_once_per_change_across_a_member_failover(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m = mount(ens, session_timeout=10)
    m.sh("mkdir app")
    log = tmp_path / "log"
    err = tmp_path / "w.err"
    w = spawn(tools, [tool("coord-watch"), "-v", "-r", m.p("app"), "sh", "-c",
                      "echo \"$COORD_EVENT $COORD_PATH $COORD_ZXID\" >> %s" % log], log=err)
    wait_until(lambda: "watching /app recursive" in err.read_text(), 10, what="coord-watch to arm")
    connected = session_of(m)["server"]
    member = next(s for s in ens.members if s.hosts == connected)
    # Changes go through one surviving member (it answers a write once it applied it, so its
    # stat right after names the write's zxid).
    other = next(s for s in ens.members if s is not member).hosts
    zxids = []

    def change(i):
        coordtest.ok(other, "set", "/app/k", "v%d" % i) if i else coordtest.ok(other, "create", "/app/k", "v0")
        zxids.append(coordtest.stat(other, "/app/k")["mZxid"])
    for i in range(10):
        change(i)
    member.kill()  # the member the mount is connected to: it moves to another one
    for i in range(10, 20):
        change(i)
    # One more change once the mount has moved: its run comes after every earlier one.
    wait_until(lambda: session_of(m)["server"] != connected and session_of(m)["state"] == "connected", 15,
               what="the mount to move to another member")
    coordtest.ok(other, "create", "/app/end", "")
    wait_until(lambda: any(l.startswith("created /app/end ") for l in lines(log)), 15, what="the last run")
    ev = [l.split() for l in lines(log)]
    assert ev[-1][:2] == ["created", "/app/end"]
    check_runs(ev[:-1], "/app/k", zxids)
    w.terminate()
    assert wait_exit(w, 10, "coord-watch") == 0


def check_runs(ev, path, zxids):
    """One run per change (zxids, in order), none twice; a change not run for by itself must be
    covered by an overflow run after it and before the run of any later change (a mount that moves
    to another member while a recursive watch's subtree changes is told "overflow": DESIGN.md)."""
    runs = []
    for e in ev:
        if e[0] == "overflow":
            runs.append("overflow")
        else:
            assert e[0] == ("created" if int(e[2], 16) == zxids[0] else "changed") and e[1] == path, ev
            runs.append(int(e[2], 16))
    seen = [r for r in runs if r != "overflow"]
    assert seen == sorted(set(seen)) and set(seen) <= set(zxids), ev
    for z in zxids:
        if z in seen:
            continue
        before = max([i for i, r in enumerate(runs) if r != "overflow" and r < z], default=-1)
        after = min([i for i, r in enumerate(runs) if r != "overflow" and r > z], default=len(runs))
        assert "overflow" in runs[before + 1:after], "change 0x%x missed without an overflow run: %s" % (z, ev)
    assert runs.count("overflow") <= 1, ev  # one failover, at most one overflow


def test_watch_runs_once_with_expired_after_a_session_loss(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m = mount(ens, session_timeout=SESSION)
    m.sh("echo 0 > cfg && mkdir e && setfattr -n user.coord.children -v ephemeral e && echo x > e/mark")
    log = tmp_path / "log"
    err = tmp_path / "w.err"
    w = spawn(tools, [tool("coord-watch"), "-v", m.p("cfg"), "sh", "-c",
                      "echo \"$COORD_EVENT $COORD_PATH $COORD_ZXID $(cat $COORD_FILE)\" >> %s" % log], log=err)
    wait_until(lambda: "watching /cfg" in err.read_text(), 10, what="coord-watch to arm")
    m.stop_signal()
    try:
        wait_until(lambda: ls(ens.hosts, "/e") == [], SESSION + 10, what="the session to expire")
        coordtest.ok(ens.hosts, "set", "/cfg", "1")  # while the mount is away: not announced
    finally:
        m.cont_signal()
    wait_until(lambda: lines(log), 15, what="a run for the expiry")
    coordtest.ok(ens.hosts, "set", "/cfg", "2")
    wait_until(lambda: len(lines(log)) >= 2, 15, what="a run for the next change")
    ev = [l.split() for l in lines(log)]
    assert ev[0] == ["expired", "/cfg", "1"], ev
    assert ev[1][0] == "changed" and ev[1][3] == "2", ev
    assert len(ev) == 2
    w.terminate()
    assert wait_exit(w, 10, "coord-watch") == 0


# ---- coord-register and coord-pick ----

def pick(m, *args):
    return m.sh("%s %s services/web" % (tool("coord-pick"), " ".join(args))).strip()


def test_registry_spreads_keeps_keys_and_never_picks_a_gone_member(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    mounts = [mount(ens, "m%d" % i, session_timeout=SESSION) for i in (1, 2, 3)]
    client = mount(ens, "client")
    regs = []
    for i, m in enumerate(mounts, 1):
        regs.append(spawn(tools, [tool("coord-register"), m.p("services/web"), "h%d" % i, "10.0.0.%d:80" % i],
                          log=tmp_path / ("r%d.err" % i)))
    wait_until(lambda: sorted(ls(ens.hosts, "/services/web")) == ["h1", "h2", "h3"], 15, what="3 registrations")
    wait_until(lambda: all(client.sh("cat services/web/h%d" % i, check=False).stdout for i in (1, 2, 3)), 10,
               what="their data")
    # Random picks spread over every member (300 picks: each expects 100; < 50 is 6 sigma away).
    out = client.sh("for i in $(seq 300); do %s services/web; done" % tool("coord-pick")).splitlines()
    counts = Counter(out)
    assert set(counts) == {"h%d 10.0.0.%d:80" % (i, i) for i in (1, 2, 3)}, counts
    assert min(counts.values()) >= 50, counts
    # A key stays on its member, from any mount.
    keys = ["user%d" % k for k in range(40)]
    script = "for k in %s; do %s --key $k --name services/web; done" % (" ".join(keys), tool("coord-pick"))
    before = dict(zip(keys, client.sh(script).split()))
    assert dict(zip(keys, mounts[0].sh(script).split())) == before
    assert set(before.values()) == {"h1", "h2", "h3"}
    # h2's host dies: once its registration is gone nobody picks it, and only its keys move.
    mounts[1].kill()
    wait_until(lambda: "h2" not in ls(ens.hosts, "/services/web"), SESSION + 10, what="h2's registration to go")
    picks = client.sh("for i in $(seq 100); do %s --sync --name services/web; done" % tool("coord-pick")).split()
    assert set(picks) == {"h1", "h3"}
    after = dict(zip(keys, client.sh(script.replace("--name", "--sync --name")).split()))
    for k in keys:
        if before[k] != "h2":
            assert after[k] == before[k], k
        else:
            assert after[k] in ("h1", "h3")
    assert wait_exit(regs[1], 10, "h2's coord-register") == 75  # its mount is gone
    # Stopping coord-register deletes its registration at once.
    regs[0].terminate()
    assert wait_exit(regs[0], 10, "h1's coord-register") == 0
    assert sorted(ls(ens.hosts, "/services/web")) == ["h3"]
    assert pick(client, "--sync") == "h3 10.0.0.3:80"


def test_register_comes_back_after_a_session_expiry_and_an_rm(make_ensemble, mount, tmp_path, tools):
    ens = make_ensemble(3)
    m = mount(ens, session_timeout=SESSION)
    err = tmp_path / "r.err"
    reg = spawn(tools, [tool("coord-register"), m.p("services/db"), "primary", "10.0.0.9:5432"], log=err)
    wait_until(lambda: ls(ens.hosts, "/services/db") == ["primary"], 15, what="the registration")
    owner = coordtest.stat(ens.hosts, "/services/db/primary")["ephemeralOwner"]
    m.stop_signal()
    try:
        wait_until(lambda: ls(ens.hosts, "/services/db") == [], SESSION + 10, what="the session to expire")
    finally:
        m.cont_signal()
    wait_until(lambda: ls(ens.hosts, "/services/db") == ["primary"], 15, what="the registration to come back")
    st = coordtest.stat(ens.hosts, "/services/db/primary")
    assert st["ephemeralOwner"] not in (0, owner)
    assert coordtest.get(ens.hosts, "/services/db/primary") == "10.0.0.9:5432"
    coordtest.ok(ens.hosts, "rm", "/services/db/primary")
    wait_until(lambda: ls(ens.hosts, "/services/db") == ["primary"], 15, what="the registration after rm")
    assert "again" in err.read_text()
    reg.send_signal(signal.SIGINT)
    assert wait_exit(reg, 10, "coord-register") == 0
    assert ls(ens.hosts, "/services/db") == []
