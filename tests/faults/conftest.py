"""Fixtures for the fault suite: one run at a time (a lock), what a crashed earlier run left is
removed first, and the figures are printed at the end."""
import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402
import net  # noqa: E402
from coordtest import build_dir, has_binary  # noqa: E402


def artifacts_dir():
    return Path(os.environ.get("COORD_FAULTS_ARTIFACTS") or build_dir() / "faults-artifacts")


@pytest.fixture(scope="session")
def fault_env():
    """Root, the binaries, the run lock, and a clean slate of namespaces and mounts."""
    if os.geteuid() != 0:
        pytest.skip("fault tests need root (network namespaces, iptables, tmpfs mounts)")
    for b in ("coordd", "coordctl"):
        if not has_binary(b):
            pytest.skip("%s is not built (cmake --build build)" % b)
    lock = net.RunLock().acquire()
    try:
        net.cleanup_stale()
        yield artifacts_dir()
        net.cleanup_stale()
    finally:
        lock.release()


@pytest.fixture
def run_schedule(fault_env):
    """run_schedule(name, schedule, **kw) -> RunResult; fails the test on any violation."""
    def run(name, schedule, **kw):
        res = harness.run_schedule(name, schedule, artifacts_dir=fault_env, **kw)
        print(res.summary())
        if res.violations:
            lines = ["%d violation(s) in %s (schedule %r, seed %s); files in %s"
                     % (len(res.violations), name, schedule, kw.get("seed", 1), res.artifacts)]
            for v in res.violations:
                lines.append("- %s: %s" % (v["kind"], v["what"]))
                for key in ("blocked", "last_linearized", "excerpt", "op", "ops"):
                    if v.get(key):
                        lines.append("  %s:" % key)
                        lines += ["    " + str(x) for x in (v[key] if isinstance(v[key], list) else [v[key]])]
            pytest.fail("\n".join(lines), pytrace=False)
        return res
    return run


def pytest_terminal_summary(terminalreporter):
    f = harness.FIGURES
    if f.schedules:
        terminalreporter.write_sep("-", "fault figures")
        for line in f.lines():
            terminalreporter.write_line(line)
