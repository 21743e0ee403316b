"""Fixtures for the integration suites. The helpers themselves live in coordtest.py."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import coordtest  # noqa: E402
from coordtest import Procs, Server  # noqa: E402


@pytest.fixture
def procs():
    """Registry of started processes; all are stopped by PID at teardown, pass or fail."""
    p = Procs()
    yield p
    p.stop_all()


@pytest.fixture
def make_server(tmp_path, procs):
    """make_server(name="s", start=True, **config) -> a Server in tmp_path/name (started unless start=False)."""
    def make(name="s", start=True, **settings):
        srv = Server(tmp_path / name, procs=procs, **settings)
        if start:
            srv.start()
        return srv
    return make


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
