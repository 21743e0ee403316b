"""goodclient: a well-behaved client that keeps working in a thread while a test misbehaves
elsewhere, and counts what went wrong (it must be nothing)."""
import threading

import coordwire as cw


class GoodClient:
    def __init__(self, port, curve=None, prefix="/good"):
        self.port, self.curve, self.prefix = port, curve, prefix
        self.calls = 0
        self.errors = []
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        self.w = cw.Wire(self.port, curve=self.curve)
        self.w.connect()
        r = self.w.call(cw.CREATE, cw.body_create(self.prefix, b""))
        if r.err not in (cw.OK, cw.ENODEEXISTS):
            self.errors.append("create %s: err %d" % (self.prefix, r.err))
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self):
        i = 0
        while not self._stop.is_set():
            i += 1
            try:
                r = self.w.call(cw.SET, cw.body_set(self.prefix, b"v%d" % i), timeout=10)
                if r.err:
                    self.errors.append("set: err %d %r" % (r.err, r.msg))
                r = self.w.call(cw.GET, cw.body_get(self.prefix), timeout=10)
                if r.err:
                    self.errors.append("get: err %d %r" % (r.err, r.msg))
                self.calls += 2
            except Exception as e:  # a missing reply is an error too
                self.errors.append("%s" % e)
                return

    def wait_calls(self, n, timeout=20):
        """Let it make at least n more calls (proof that it was served meanwhile)."""
        from coordtest import wait_until
        target = self.calls + n
        wait_until(lambda: self.calls >= target or self.errors, timeout, what="the good client to be served")

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join(30)
        self.w.close()
