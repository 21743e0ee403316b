"""The checkers themselves, on tiny hand-made histories that are and are not allowed.
A checker that cannot fail is worthless: every rule has a history that breaks it."""
import random

import pytest

from checker import INF, Op, check_cas, check_ephemerals, check_locks, check_set, linearizable, cas_step

_n = [0]


def op(f, a, t0, t1, r="ok", v=None, k="/r", rc=None, proc="p"):
    _n[0] += 1
    return Op("o%d" % _n[0], proc, f, k, a, t0, INF if t1 is None else t1, r, v, rc)


def rd(ver, val, t0, t1, **kw):
    return op("read", None, t0, t1, v=[ver, val], **kw)


def cas(exp, new, t0, t1, r="ok", **kw):
    if r == "fail":
        kw.setdefault("rc", 4)
    return op("cas", [exp, new], t0, t1, r=r, **kw)


def wr(val, t0, t1, r="ok", **kw):
    return op("write", val, t0, t1, r=r, **kw)


def valid(ops):
    v, _ = check_cas(ops)
    return not v


def kinds(ops):
    return [x["kind"] for x in check_cas(ops)[0]]


# ---- linearizable histories

def test_sequential_history_is_linearizable():
    assert valid([rd(0, "init", 0, 1), cas(0, "a", 2, 3), rd(1, "a", 4, 5), cas(1, "b", 6, 7),
                  cas(1, "c", 8, 9, r="fail"), rd(2, "b", 10, 11)])


def test_concurrent_cas_one_wins_either_order():
    # both expect version 0; they overlap; exactly one succeeds
    assert valid([cas(0, "a", 0, 5, r="fail"), cas(0, "b", 1, 4), rd(1, "b", 6, 7)])
    assert valid([cas(0, "a", 0, 5), cas(0, "b", 1, 4, r="fail"), rd(1, "a", 6, 7)])


def test_read_concurrent_with_a_write_may_see_either_value():
    assert valid([cas(0, "a", 0, 10), rd(0, "init", 1, 2), rd(1, "a", 3, 4), rd(1, "a", 11, 12)])


def test_unknown_write_may_take_effect_late():
    # the write timed out (t1 = inf); a read long after sees it
    assert valid([cas(0, "a", 0, None, r="info"), rd(0, "init", 5, 6), rd(1, "a", 50, 51)])


def test_unknown_write_may_never_take_effect():
    assert valid([cas(0, "a", 0, None, r="info"), rd(0, "init", 5, 6), cas(0, "b", 7, 8), rd(1, "b", 9, 10)])


def test_many_unknown_ops_stay_tractable():
    ops = [cas(0, "x%d" % i, i, None, r="info") for i in range(40)]
    ops += [rd(1, "x17", 100, 101), cas(1, "y", 102, 103), rd(2, "y", 104, 105)]
    assert valid(ops)


def test_keys_are_checked_independently():
    assert valid([cas(0, "a", 0, 1, k="/a"), cas(0, "b", 2, 3, k="/b"), rd(1, "a", 4, 5, k="/a"),
                  rd(1, "b", 4, 5, k="/b")])


# ---- histories that are not linearizable

def test_stale_read_after_acknowledged_write_is_caught():
    assert kinds([cas(0, "a", 0, 1), rd(0, "init", 2, 3)]) == ["stale-read"]


def test_two_cas_on_one_version_both_acknowledged_is_caught():
    assert kinds([cas(0, "a", 0, 1), cas(0, "b", 2, 3)]) == ["linearizability"]


def test_refused_cas_whose_version_matched_is_caught():
    assert kinds([cas(0, "a", 0, 1, r="fail"), rd(0, "init", 2, 3)]) != []


def test_unknown_write_cannot_take_effect_before_it_was_invoked():
    assert kinds([rd(1, "a", 0, 1), cas(0, "a", 2, None, r="info")]) != []


def test_unknown_write_cannot_unhappen():
    assert kinds([cas(0, "a", 0, None, r="info"), rd(1, "a", 5, 6), rd(0, "init", 7, 8)]) != []


def test_lost_acknowledged_write_is_caught():
    # acknowledged write, then every later read sees the old value
    assert kinds([wr("a", 0, 1), rd(0, "init", 5, 6), rd(0, "init", 7, 8)]) == ["stale-read"]
    assert kinds([wr("a", 0, 1), cas(0, "b", 5, 6)]) == ["linearizability"]


def test_cas_refused_for_a_server_error_says_nothing_about_the_version():
    assert valid([cas(0, "a", 0, 1, r="fail", rc=8), rd(0, "init", 2, 3), cas(0, "b", 4, 5)])


def test_write_answered_with_a_server_error_but_applied_is_told_apart():
    assert kinds([cas(0, "a", 0, 1, r="fail", rc=8), rd(1, "a", 2, 3)]) == ["error-reply-applied"]


def test_violation_report_names_the_state_and_an_excerpt():
    v, _ = check_cas([cas(0, "a", 0, 1), cas(1, "b", 2, 3), rd(1, "a", 4, 5)])
    assert v and v[0]["state"] == (2, "b") and v[0]["excerpt"] and v[0]["blocked"]


# ---- generated histories: a real register under random concurrency passes, a mutated one fails

def simulate(seed, n=400, procs=6):
    """A true atomic register driven by `procs` clients with overlapping operations."""
    rnd = random.Random(seed)
    state = [0, "init"]
    ops, busy_until, t = [], [0.0] * procs, 0.0
    for i in range(n):
        p = rnd.randrange(procs)
        t0 = max(t, busy_until[p]) + rnd.random()
        at = t0 + rnd.random() * 3  # linearization point
        t1 = at + rnd.random() * 3
        kind = rnd.random()
        ops.append((at, p, t0, t1, kind, i))
        busy_until[p] = t1
        t = t0
    out = []
    for at, p, t0, t1, kind, i in sorted(ops):
        if kind < 0.4:
            out.append(rd(state[0], state[1], t0, t1, proc=str(p)))
        elif kind < 0.9:
            exp = state[0] if rnd.random() < 0.7 else state[0] + 1
            if exp == state[0]:
                state[:] = [state[0] + 1, "v%d" % i]
                out.append(cas(exp, "v%d" % i, t0, t1, proc=str(p)))
            else:
                out.append(cas(exp, "v%d" % i, t0, t1, r="fail", proc=str(p)))
        else:
            applied = rnd.random() < 0.5
            if applied:
                state[:] = [state[0] + 1, "v%d" % i]
            out.append(op("cas", [state[0] - 1 if applied else state[0] + 5, "v%d" % i], t0, None, r="info",
                          proc=str(p)))
    return sorted(out, key=lambda o: o.t0)


@pytest.mark.parametrize("seed", range(5))
def test_generated_atomic_histories_pass(seed):
    ops = simulate(seed)
    v, stats = check_cas(ops)
    assert not v, v[0]
    assert stats["undecided"] == 0


@pytest.mark.parametrize("seed", range(5))
def test_generated_histories_with_one_stale_read_fail(seed):
    ops = simulate(seed)
    first = min((o for o in ops if o.f == "cas" and o.r == "ok"), key=lambda o: o.t1)
    rnd = random.Random(seed)
    # a read of the initial value, invoked after a CAS was acknowledged
    victim = rnd.choice([o for o in ops if o.f == "read" and o.t0 > first.t1])
    victim.v = [0, "init"]
    assert check_cas(ops)[0]


def test_search_budget_gives_undecided_not_a_verdict():
    ops = [cas(5, "x%d" % i, 0, 100, r="fail") for i in range(20)] + [rd(0, "init", 0, 100)]
    res = linearizable([o for o in ops], (0, "init"), cas_step(), budget=5)
    assert res.valid is None


# ---- appends and creates

def ap(item, t0, t1, r="ok", rc=None):
    return op("append", item, t0, t1, r=r, rc=rc, k="/a")


def test_set_all_acknowledged_present_once_passes():
    ops = [ap("a", 0, 1), ap("b", 2, 3), ap("c", 2.5, None, r="info"), ap("d", 4, None, r="info")]
    assert check_set(ops, ["a", "b", "c"], "append") == []


def test_set_lost_duplicated_invented_and_refused_are_caught():
    ops = [ap("a", 0, 1), ap("b", 2, 3), ap("c", 3, None, r="info"), ap("d", 4, 5, r="fail", rc=8),
           ap("e", 6, 7, r="fail", rc=4)]
    got = {x["kind"] for x in check_set(ops, ["b", "b", "c", "c", "d", "e", "zz"], "append")}
    assert got == {"lost", "duplicated", "invented", "error-reply-applied", "refused-applied"}


def test_set_real_time_order_is_checked():
    ops = [ap("a", 0, 1), ap("b", 2, 3)]
    assert check_set(ops, ["a", "b"], "append") == []
    assert [x["kind"] for x in check_set(ops, ["b", "a"], "append")] == ["order"]
    # concurrent ones may land either way
    ops = [ap("a", 0, 3), ap("b", 1, 2)]
    assert check_set(ops, ["b", "a"], "append") == []


# ---- locks

def hold(h, start, end, token, why="released"):
    return {"holder": h, "start": start, "end": end, "token": token, "end_reason": why}


def test_locks_in_turn_with_growing_tokens_pass():
    assert check_locks([hold("a", 0, 1, 10), hold("b", 2, 3, 12), hold("a", 4, 5, 20)], 2.0) == []


def test_lock_tokens_must_strictly_increase():
    v = check_locks([hold("a", 0, 1, 10), hold("b", 2, 3, 10)], 2.0)
    assert [x["kind"] for x in v] == ["fencing"]
    v = check_locks([hold("a", 0, 1, 10), hold("b", 2, 3, 9)], 2.0)
    assert [x["kind"] for x in v] == ["fencing"]


def test_overlapping_holders_are_caught_unless_told_of_expiry_within_a_timeout():
    assert [x["kind"] for x in check_locks([hold("a", 0, 5, 10), hold("b", 2, 6, 12)], 2.0)] == ["mutex"]
    # a was told its session expired; b took over 1.5 s before a noticed: allowed
    assert check_locks([hold("a", 0, 5, 10, "expired"), hold("b", 3.5, 6, 12)], 2.0) == []
    # but not by more than a session timeout
    assert [x["kind"] for x in check_locks([hold("a", 0, 5, 10, "expired"), hold("b", 1, 6, 12)], 2.0)] == ["mutex"]


# ---- ephemerals

def test_ephemeral_gone_in_time_passes_and_late_or_early_is_caught():
    ok = [{"path": "/e/a", "dead": 10.0, "gone": 12.5, "end": 20.0},
          {"path": "/e/b", "dead": None, "gone": None, "end": 20.0}]
    assert check_ephemerals(ok, 2.0) == []
    late = [{"path": "/e/a", "dead": 10.0, "gone": 13.5, "end": 20.0},
            {"path": "/e/c", "dead": 10.0, "gone": None, "end": 20.0}]
    assert [x["kind"] for x in check_ephemerals(late, 2.0)] == ["ephemeral-late", "ephemeral-late"]
    early = [{"path": "/e/b", "dead": None, "gone": 5.0, "end": 20.0}]
    assert [x["kind"] for x in check_ephemerals(early, 2.0)] == ["ephemeral-early"]
