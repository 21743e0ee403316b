"""Fixtures for the integration suites. The helpers themselves live in coordtest.py."""
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import coordtest  # noqa: E402
from coordtest import Procs, Server  # noqa: E402


def pytest_configure(config):
    # A private base directory: other pytest sessions on this machine rotate (delete) the shared
    # /tmp/pytest-of-USER/pytest-N directories, which must not happen under a running server.
    if not config.option.basetemp:
        config.option.basetemp = tempfile.mkdtemp(prefix="coord-it-")
        config._coord_own_basetemp = True


def pytest_sessionfinish(session, exitstatus):
    base = session.config.option.basetemp
    if getattr(session.config, "_coord_own_basetemp", False) and base:
        if exitstatus == 0:
            shutil.rmtree(base, ignore_errors=True)
        else:
            print("\ncoordd logs and data of this run are kept in %s" % base)


@pytest.hookimpl(tryfirst=True, hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


def _test_failed(request):
    return any(getattr(request.node, "rep_" + w, None) is not None and getattr(request.node, "rep_" + w).failed
               for w in ("setup", "call"))


@pytest.fixture
def procs():
    """Registry of started processes; all are stopped by PID at teardown, pass or fail."""
    p = Procs()
    yield p
    p.stop_all()


@pytest.fixture
def make_server(tmp_path, procs, request):
    """make_server(name="s", start=True, **config) -> a Server in tmp_path/name (started unless start=False).

    At teardown every server is stopped; when the test passed its dataDir is removed (log files
    are preallocated in 64 MiB chunks), its coordd.log kept."""
    made = []

    def make(name="s", start=True, **settings):
        srv = Server(tmp_path / name, procs=procs, **settings)
        made.append(srv)
        if start:
            srv.start()
        return srv
    yield make
    # Newest first: clients started after a server end while it still answers their CLOSE.
    procs.stop_all()
    if not _test_failed(request):
        for srv in made:
            shutil.rmtree(srv.data_dir, ignore_errors=True)


@pytest.fixture
def server(make_server):
    """One standalone coordd with the default config, ready."""
    return make_server()


@pytest.fixture
def ctl(server):
    """ctl(*args, **kw) -> (rc, stdout, stderr) of coordctl against `server`."""
    coordtest.binary("coordctl")

    def run(*args, **kw):
        return coordtest.coordctl(server.hosts, *args, **kw)
    return run
