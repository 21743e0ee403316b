"""checker: read a whole history and say whether it is allowed.

- `linearizable(ops, init, step)`: Wing & Gong's search with Lowe's memoisation (the algorithm of
  Knossos and Porcupine). An operation is linearized next only if it was invoked before every
  pending operation's return; a (linearized-set, state) pair already explored is never explored
  again. Operations with an unknown outcome (timed out, connection lost: t1 = inf) may take effect
  at any point after their invocation, or never: they are candidates from their invocation on,
  only their "it happened" transitions are tried, and the search is done once every operation
  with a known outcome is linearized (what is left never happened, or happened after all of them).
- `check_cas(ops)`: the CAS-register model per key (state = (version, value)); reads give
  (version, value), `cas` sets only if the version matches, `write` sets unconditionally.
- `check_set(ops, final)`: appends or sequential creates: every acknowledged item present exactly
  once, an unacknowledged one at most once, a refused one never, nothing never sent, and items in
  an order that respects real time (an item acknowledged before another was sent comes first).
- `check_locks(holds, session_timeout)`: fencing tokens of successive holders strictly increase;
  believed intervals do not overlap, except by at most a session timeout when the earlier holder
  was told its session expired.
- `check_ephemerals(nodes, session_timeout)`: an ephemeral node of a dead session is gone within
  the session timeout plus one second (plus a grace the caller gives for a leader change); one of a
  live session never goes.

Every check returns a list of violations (dicts with "kind" and a readable "what"); empty = valid.
"""
import json
import math
from pathlib import Path

INF = math.inf


class Op:
    __slots__ = ("id", "proc", "f", "k", "a", "t0", "t1", "r", "v", "rc", "err", "drop", "at")

    def __init__(self, id, proc, f, k, a, t0, t1=INF, r="info", v=None, rc=None, err=None, drop=False):
        self.id, self.proc, self.f, self.k, self.a = id, proc, f, k, a
        self.t0, self.t1, self.r, self.v, self.rc, self.err, self.drop = t0, t1, r, v, rc, err, drop
        self.at = None  # the member that served a read

    def __repr__(self):
        t1 = "inf" if self.t1 == INF else "%.3f" % self.t1
        return "%s %s %s %s(%s) -> %s %s [%.3f, %s]%s" % (
            self.id, self.proc, self.k, self.f, json.dumps(self.a), self.r, json.dumps(self.v),
            self.t0, t1, " rc=%s" % self.rc if self.rc not in (None, 0) else "") + (
            " at %s" % self.at if self.at else "")

    def to_json(self):
        return {s: getattr(self, s) for s in self.__slots__ if s not in ("t1",)} | {
            "t1": None if self.t1 == INF else self.t1}


def load_history(paths):
    """Ops from agents' history files (invoke + completion lines); unpaired invokes are info."""
    ops = {}
    for path in paths:
        try:
            text = Path(path).read_text()
        except FileNotFoundError:
            continue
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue  # a line cut by a crash
            if "t0" in rec:
                ops[rec["i"]] = Op(rec["i"], rec["p"], rec["f"], rec["k"], rec["a"], rec["t0"])
            elif rec["i"] in ops:
                o = ops[rec["i"]]
                o.r = rec["r"]
                o.v = rec.get("v")
                o.rc = rec.get("rc")
                o.err = rec.get("err")
                o.drop = bool(rec.get("drop"))
                o.at = rec.get("at")
                o.t1 = INF if o.r == "info" else rec["t1"]
    return sorted(ops.values(), key=lambda o: o.t0)


# ---------------------------------------------------------------- linearizability

class Result:
    def __init__(self, valid, explored, deepest=None, state=None, pending=(), linearized=()):
        self.valid = valid          # True, False, or None (search budget exhausted)
        self.explored = explored
        self.deepest = deepest      # most operations with a known outcome linearized at once
        self.state = state          # the model's state there
        self.pending = list(pending)  # what could not be linearized there
        self.linearized = list(linearized)

    def __bool__(self):
        return self.valid is not False


def linearizable(ops, init, step, budget=2_000_000):
    """ops: objects with t0, t1 (INF = unknown outcome); step(state, op) -> iterable of next states
    (for an unknown-outcome op: the states if it took effect now). Returns a Result."""
    fin = sorted((o for o in ops if o.t1 != INF), key=lambda o: o.t0)
    unk = sorted((o for o in ops if o.t1 == INF), key=lambda o: o.t0)
    nf = len(fin)
    allops = fin + unk
    full = (1 << nf) - 1
    t0s = [o.t0 for o in allops]
    t1s = [o.t1 for o in fin]
    seen = set()
    best = (-1, None, None)
    explored = 0

    def candidates(mask):
        # first finite op not linearized: the lowest zero bit
        lz = (~mask & (mask + 1)).bit_length() - 1
        m = INF
        out = []
        i = lz
        while i < nf:
            if not (mask >> i) & 1:
                if t0s[i] > m:
                    break
                out.append(i)
                if t1s[i] < m:
                    m = t1s[i]
            i += 1
        for j in range(nf, len(allops)):
            if t0s[j] > m:
                break
            if not (mask >> j) & 1:
                out.append(j)
        return out, m

    stack = [(0, init, None)]
    while stack:
        mask, state, it = stack[-1]
        if it is None:
            if (mask & full) == full:
                return Result(True, explored)
            explored += 1
            if explored > budget:
                return Result(None, explored)
            done = bin(mask & full).count("1")
            if done > best[0]:
                best = (done, mask, state)
            cands, _ = candidates(mask)
            it = iter([(i, s2) for i in cands for s2 in step(state, allops[i])])
            stack[-1] = (mask, state, it)
        nxt = next(it, None)
        if nxt is None:
            stack.pop()
            continue
        i, s2 = nxt
        key = (mask | (1 << i), s2)
        if key in seen:
            continue
        seen.add(key)
        stack.append((key[0], s2, None))
    done, mask, state = best
    pend, m = candidates(mask) if mask is not None else ([], INF)
    blocked = [allops[i] for i in pend]
    lin = [o for i, o in enumerate(allops) if mask is not None and (mask >> i) & 1]
    return Result(False, explored, done, state, blocked, lin)


# ---------------------------------------------------------------- the CAS register

def cas_step(strict=True):
    """The model: state (version, value). strict: a server-side error (rc 8) means not applied."""
    def step(state, op):
        ver, val = state
        f, r = op.f, op.r
        if r == "fail" and op.rc == 8 and not strict:
            r = "info"
        if f == "read":
            return [state] if r == "ok" and tuple(op.v) == state else []
        if f == "write":
            if r == "fail":
                return [state]
            return [(ver + 1, op.a)]
        if f == "cas":
            exp, new = op.a
            if r == "ok" or r == "info":
                return [(ver + 1, new)] if ver == exp else []
            if op.rc == 4:
                return [state] if ver != exp else []  # refused: the version differed
            return [state]  # refused for another reason (disk full, not ready): nothing happened
        raise ValueError("unknown op %r" % f)
    return step


def excerpt(ops, around, width=12):
    """Up to `width` ops before and after time `around`, as text lines."""
    before = [o for o in ops if o.t0 <= around][-width:]
    after = [o for o in ops if o.t0 > around][:width]
    return [repr(o) for o in before + after]


def check_cas(ops, init=(0, "init"), budget=2_000_000):
    """Per key (linearizability is local), the CAS register. Returns (violations, stats)."""
    keys = sorted({o.k for o in ops if o.f in ("read", "write", "cas")})
    violations = []
    stats = {"keys": len(keys), "ops": 0, "unknown": 0, "explored": 0, "undecided": 0}
    for k in keys:
        kops = [o for o in ops if o.k == k and o.f in ("read", "write", "cas") and not o.drop]
        # a read whose outcome is unknown changed nothing: leave it out
        kops = [o for o in kops if not (o.f == "read" and o.r != "ok")]
        stats["ops"] += len(kops)
        stats["unknown"] += sum(1 for o in kops if o.r == "info")
        res = linearizable(kops, tuple(init), cas_step(strict=True), budget)
        stats["explored"] += res.explored
        if res.valid is None:
            stats["undecided"] += 1
            continue
        if res.valid:
            continue
        relaxed = linearizable(kops, tuple(init), cas_step(strict=False), budget)
        if relaxed.valid:
            kind = "error-reply-applied"
            what = ("%s: linearizable only if a write answered with a server-side error (exit 8) "
                    "took effect" % k)
        else:
            kind = "linearizability"
            what = "%s: not linearizable" % k
        writes_only = [o for o in kops if o.f != "read"]
        if kind == "linearizability" and linearizable(writes_only, tuple(init), cas_step(False), budget):
            what += " (the writes alone are: a read after sync returned a stale or unknown value)"
            kind = "stale-read"
        around = res.pending[0].t0 if res.pending else (kops[0].t0 if kops else 0)
        violations.append({
            "kind": kind, "key": k, "what": what,
            "linearized": res.deepest, "of": sum(1 for o in kops if o.t1 != INF),
            "state": res.state, "blocked": [repr(o) for o in res.pending][:10],
            "last_linearized": [repr(o) for o in sorted(res.linearized, key=lambda o: o.t0)][-8:],
            "excerpt": excerpt(kops, around),
        })
    return violations, stats


# ---------------------------------------------------------------- appends and creates

def check_set(ops, final, f):
    """ops of kind f ("append" or "create") whose arg is a unique item; final: the items found at
    the end, in order (append: order in the data; create: order of sequence numbers), and for
    creates a dict item -> path in final_paths via ops' outputs (optional). Returns violations."""
    mine = [o for o in ops if o.f == f]
    by_item = {}
    for o in mine:
        by_item[o.a] = o
    counts = {}
    for x in final:
        counts[x] = counts.get(x, 0) + 1
    v = []
    for item, n in counts.items():
        if item not in by_item:
            v.append({"kind": "invented", "what": "%r is there but was never sent" % item})
    for item, o in by_item.items():
        n = counts.get(item, 0)
        if o.r == "ok" and n != 1:
            v.append({"kind": "lost" if n == 0 else "duplicated",
                      "what": "acknowledged %s %r is there %d times" % (f, item, n), "op": repr(o)})
        elif o.r == "fail" and n != 0:
            v.append({"kind": "error-reply-applied" if o.rc == 8 else "refused-applied",
                      "what": "refused %s %r (exit %s) is there %d times" % (f, item, o.rc, n), "op": repr(o)})
        elif o.r == "info" and n > 1:
            v.append({"kind": "duplicated",
                      "what": "unacknowledged %s %r is there %d times" % (f, item, n), "op": repr(o)})
    # real-time order: for positions p < q, item q must not have been acknowledged before p was sent
    seq = [by_item[x] for x in final if x in by_item]
    suffix_min = INF
    worst = None
    for o in reversed(seq):
        if suffix_min < o.t0:
            worst = o
        suffix_min = min(suffix_min, o.t1)
    if worst is not None:
        later = min((x for x in seq[seq.index(worst) + 1:]), key=lambda x: x.t1)
        v.append({"kind": "order", "what": "%r comes before %r, which was acknowledged before it was sent"
                  % (worst.a, later.a), "ops": [repr(worst), repr(later)]})
    return v


# ---------------------------------------------------------------- locks

def check_locks(holds, session_timeout, slack=0.0):
    """holds: dicts {holder, start, end, token, end_reason} with end_reason "released",
    "expired" (the holder was told its session ended) or "crashed"/"unknown"; times in seconds.
    Successive holders' tokens strictly increase; believed intervals do not overlap, except by at
    most session_timeout (+slack) when the earlier holder ended because it was told of an expiry."""
    v = []
    hs = sorted(holds, key=lambda h: h["start"])
    for a, b in zip(hs, hs[1:]):
        if not b["token"] > a["token"]:
            v.append({"kind": "fencing", "what": "holder %s (token %#x) acquired after %s (token %#x)"
                      % (b["holder"], b["token"], a["holder"], a["token"]), "holds": [a, b]})
    for i, a in enumerate(hs):
        for b in hs[i + 1:]:
            if b["start"] >= a["end"]:
                continue
            overlap = min(a["end"], b["end"]) - b["start"]
            if a.get("end_reason") == "expired" and overlap <= session_timeout + slack:
                continue
            v.append({"kind": "mutex", "what": "%s and %s both believed they held the lock for %.3f s"
                      % (a["holder"], b["holder"], overlap), "holds": [a, b]})
    return v


# ---------------------------------------------------------------- ephemerals

def check_ephemerals(nodes, session_timeout, grace=0.0):
    """nodes: dicts {path, dead (time the owning session died, None if it lived), gone (first time
    seen gone, None if never), end (when observation stopped)}. A dead session's node must be gone
    within session_timeout + 1 s (+ grace); a live session's node must not go."""
    v = []
    for n in nodes:
        limit = session_timeout + 1.0 + grace
        if n.get("dead") is None:
            if n.get("gone") is not None:
                v.append({"kind": "ephemeral-early", "what": "%s of a live session went at %.3f"
                          % (n["path"], n["gone"]), "node": n})
            continue
        if n.get("gone") is None:
            if n["end"] - n["dead"] > limit:
                v.append({"kind": "ephemeral-late", "what": "%s still there %.1f s after its session died"
                          % (n["path"], n["end"] - n["dead"]), "node": n})
        elif n["gone"] - n["dead"] > limit:
            v.append({"kind": "ephemeral-late", "what": "%s went %.1f s after its session died (limit %.1f s)"
                      % (n["path"], n["gone"] - n["dead"], limit), "node": n})
    return v
