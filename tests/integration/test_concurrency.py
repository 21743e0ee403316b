"""Many coordctl processes at once: exactly one creator wins, appends lose nothing, sequential names
are distinct, conditional sets serialize."""
import subprocess

import pytest

from coordtest import coordctl_argv, get, ls, ok, stat

N = 16


@pytest.fixture
def h(server):
    return server.hosts


def run_all(argvs, timeout=60):
    ps = [subprocess.Popen(a, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
          for a in argvs]
    out = []
    for p in ps:
        o, e = p.communicate(timeout=timeout)
        out.append((p.returncode, o, e))
    return out


def test_exactly_one_of_many_concurrent_creators_wins_the_others_exit_3(h):
    res = run_all([coordctl_argv(h, "create", "/lock", "owner-%d" % i) for i in range(N)])
    codes = sorted(rc for rc, _, _ in res)
    assert codes == [0] + [3] * (N - 1), res
    winner = [i for i, (rc, _, _) in enumerate(res) if rc == 0][0]
    assert get(h, "/lock") == "owner-%d" % winner


def test_concurrent_appends_lose_no_line(h):
    ok(h, "create", "/log", "")
    res = run_all([coordctl_argv(h, "append", "/log", "line %d\n" % i) for i in range(N)])
    assert all(rc == 0 for rc, _, _ in res), res
    assert sorted(get(h, "/log").splitlines()) == sorted("line %d" % i for i in range(N))
    assert stat(h, "/log")["dataVersion"] == N


def test_concurrent_sequential_creates_get_distinct_consecutive_names(h):
    ok(h, "mkdir", "/q")
    res = run_all([coordctl_argv(h, "create", "-s", "/q/job-", str(i)) for i in range(N)])
    assert all(rc == 0 for rc, _, _ in res), res
    names = sorted(o.strip() for _, o, _ in res)
    assert names == ["/q/job-%010d" % i for i in range(N)]
    assert ls(h, "/q") == [n.rsplit("/", 1)[1] for n in names]


def test_conditional_set_lets_exactly_one_writer_per_version_win(h):
    ok(h, "create", "/cas", "start")
    res = run_all([coordctl_argv(h, "set", "-v", "0", "/cas", "w%d" % i) for i in range(N)])
    codes = sorted(rc for rc, _, _ in res)
    assert codes == [0] + [4] * (N - 1), res
    assert stat(h, "/cas")["dataVersion"] == 1
