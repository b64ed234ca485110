"""A TCP proxy that delays every byte by a fixed time in each direction,
for latency tests: this kernel has no netem. It runs its own asyncio loop
on a thread; chunks keep their order, each leaves `delay` seconds after it
arrived (timed by the loop's clock, not slept in sequence). cut() drops
every connection and refuses new ones until mend(): a network blip.
retarget() sends new connections elsewhere: a load balancer's failover."""
import asyncio
import threading


class DelayProxy:
    def __init__(self, target_port, delay_s, host="127.0.0.1"):
        self.target = (host, target_port)
        self.delay = delay_s
        self.port = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server = None
        self._tasks = set()
        self._writers = set()
        self._cut = False

    def __enter__(self):
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("delay proxy did not start")
        return self

    def __exit__(self, *exc):
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self):
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._accept, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        try:
            self._loop.run_forever()
        finally:
            self._server.close()
            for t in self._tasks:
                t.cancel()
            self._loop.run_until_complete(
                asyncio.gather(*self._tasks, return_exceptions=True))
            self._loop.close()

    def cut(self):
        """Drops every connection now; new ones are closed until mend()."""
        done = threading.Event()

        def go():
            self._cut = True
            for w in list(self._writers):
                w.transport.abort()  # a reset, as a lost network gives
            done.set()
        self._loop.call_soon_threadsafe(go)
        done.wait(5)

    def mend(self):
        self._loop.call_soon_threadsafe(setattr, self, "_cut", False)

    def retarget(self, target_port, host="127.0.0.1"):
        """New connections go to another port from now on (a load
        balancer sending clients to another node); open ones stay."""
        self._loop.call_soon_threadsafe(setattr, self, "target",
                                        (host, target_port))

    async def _accept(self, reader, writer):
        if self._cut:
            writer.transport.abort()
            return
        try:
            up_r, up_w = await asyncio.open_connection(*self.target)
        except OSError:
            writer.close()
            return
        for w in (writer, up_w):
            self._writers.add(w)
        for src, dst in ((reader, up_w), (up_r, writer)):
            t = asyncio.ensure_future(self._pipe(src, dst))
            self._tasks.add(t)
            t.add_done_callback(self._tasks.discard)

    async def _pipe(self, src, dst):
        q = asyncio.Queue()
        sender = asyncio.ensure_future(self._send(q, dst))
        try:
            while True:
                data = await src.read(65536)
                q.put_nowait((self._loop.time() + self.delay, data))
                if not data:
                    break
        except (ConnectionError, asyncio.CancelledError):
            q.put_nowait((0, b""))
        await sender

    async def _send(self, q, dst):
        try:
            while True:
                due, data = await q.get()
                wait = due - self._loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)  # the delay itself, not a sync
                if not data:
                    break
                dst.write(data)
                await dst.drain()
        except ConnectionError:
            pass
        finally:
            dst.close()
            self._writers.discard(dst)
