"""Several processes of one part behind one name: round robin, passive ejection, retry elsewhere.

``<PART>_URL`` may list a part's replicas, comma-separated (``http://127.0.0.1:8002,http://127.0.0.1:18002``).
The first one is the part's name as far as the code is concerned (``settings.catalog_url`` is it, and
every URL the code builds starts with it); :class:`SpreadingTransport` sends each request to the next
replica in turn instead. One part listed once behaves exactly as before.

Why passive and in-process: nothing stands between the parts on one machine (``make up``) or in
compose, and a Kubernetes Service already spreads over pods; this is what a client-side balancer
does with no extra moving part. A replica that refuses a connection, or drops one before
answering, is set aside for a back-off (1 s doubling to 5 s). When it ends, its health is
checked (``GET /healthz``): a replica that answers is taken back at once, one that does not is
set aside for longer. Meanwhile, past its back-off, it is on probation: only requests that may
be sent again (below) go to it, and the first to succeed takes it back too. So a dead replica
costs a non-repeatable request nothing once it has been noticed, and one that came back gets
all kinds of traffic again (websockets included) within a second of its back-off.

What is sent again, on another replica:
- a request whose connection failed (refused, or no answer to the connect): nothing reached the
  replica, so any method is safe to send again;
- a request that was sent but lost with its connection before an answer (the replica died
  mid-request), only when repeating it cannot do something twice: GET, HEAD, OPTIONS, or a
  request carrying an ``Idempotency-Key`` (its receiver answers a repeat with the first answer).
A timeout is never repeated: the replica may still be doing the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import httpx

from libs.common.logging import get_logger

log = get_logger(__name__)

FIRST_EJECTION = 1.0  # seconds a replica is set aside after its first failure
MAX_EJECTION = 5.0
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
HEALTH_TIMEOUT = 1.0
Probe = Callable[[str], Awaitable[bool]]  # is the replica at this base URL alive?


def split_urls(value: str) -> list[str]:
    """The URLs of a ``<PART>_URL`` value: comma-separated, blanks and trailing slashes dropped."""
    return [u.strip().rstrip("/") for u in value.split(",") if u.strip()]


def repeatable(method: str, headers: Iterable[tuple[str, str]] | None = None) -> bool:
    """Whether a request that reached a replica may be sent again after its connection was lost."""
    if method.upper() in SAFE_METHODS:
        return True
    return any(name.lower() == "idempotency-key" for name, _ in headers or ())


@dataclass
class Replica:
    url: str
    failures: int = 0  # in a row; 0: healthy
    ejected_until: float = 0.0


class ReplicaSet:
    """One part's replicas, handed out in turn, a failing one set aside for a while."""

    def __init__(self, name: str, urls: list[str], *, clock: Callable[[], float] = time.monotonic) -> None:
        if not urls:
            raise ValueError(f"{name}: no URL")
        self.name = name
        self.replicas = [Replica(u) for u in urls]
        self._by_url = {r.url: r for r in self.replicas}
        self._turn = itertools.count()
        self._clock = clock
        # checks the health of a replica set aside, once its back-off is over (see SpreadingTransport)
        self.probe: Probe | None = None
        self._probing: dict[str, asyncio.Task[None]] = {}

    def __len__(self) -> int:
        return len(self.replicas)

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.replicas]

    @property
    def primary(self) -> str:
        return self.replicas[0].url

    def pick(self, *, repeatable: bool = True, exclude: Iterable[str] = ()) -> str:
        """The next replica to send to.

        Healthy replicas first; one whose back-off has ended only for a ``repeatable`` request (or
        when no healthy one is left); when every one is set aside, the one whose back-off ends
        first, so a part that is wholly down still fails fast instead of nowhere.
        """
        if len(self.replicas) == 1:
            return self.replicas[0].url
        now, skip = self._clock(), set(exclude)
        candidates = [r for r in self.replicas if r.url not in skip] or self.replicas
        healthy = [r for r in candidates if r.failures == 0]
        on_probation = [r for r in candidates if r.failures and r.ejected_until <= now]
        pool = (healthy + on_probation if repeatable else healthy or on_probation) or [
            min(candidates, key=lambda r: r.ejected_until)
        ]
        return pool[next(self._turn) % len(pool)].url

    def failed(self, url: str, reason: str) -> None:
        """Set a replica aside after a failed connection (longer each time in a row)."""
        replica = self._by_url.get(url)
        if replica is None or len(self.replicas) == 1:
            return
        replica.failures += 1
        backoff = min(FIRST_EJECTION * 2 ** (replica.failures - 1), MAX_EJECTION)
        replica.ejected_until = self._clock() + backoff
        log.warning(
            "replica_ejected",
            part=self.name,
            replica=url,
            reason=reason,
            backoff_s=backoff,
            failures=replica.failures,
        )
        if self.probe is not None and url not in self._probing:
            with contextlib.suppress(RuntimeError):  # no running loop: traffic alone takes it back
                self._probing[url] = asyncio.get_running_loop().create_task(self._watch(replica, self.probe))

    async def _watch(self, replica: Replica, probe: Probe) -> None:
        """Check a replica set aside each time its back-off ends, until it is taken back."""
        try:
            while replica.failures:
                await asyncio.sleep(max(0.0, replica.ejected_until - self._clock()))
                if not replica.failures:
                    return  # a request on probation took it back
                try:
                    alive = await probe(replica.url)
                except Exception:
                    alive = False
                if alive:
                    self.succeeded(replica.url)
                else:
                    self.failed(replica.url, "health check failed")
        finally:
            self._probing.pop(replica.url, None)

    async def aclose(self) -> None:
        tasks = list(self._probing.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def succeeded(self, url: str) -> None:
        replica = self._by_url.get(url)
        if replica is not None and replica.failures:
            log.info("replica_readmitted", part=self.name, replica=url, after_failures=replica.failures)
            replica.failures, replica.ejected_until = 0, 0.0


class Replicas:
    """Every part's :class:`ReplicaSet`, looked up by name or by the origin of its first URL."""

    def __init__(self, sets: dict[str, ReplicaSet]) -> None:
        self.sets = sets
        self._by_origin = {_origin(httpx.URL(s.primary)): s for s in sets.values()}

    @classmethod
    def from_urls(cls, urls: dict[str, list[str]]) -> Replicas:
        return cls({name: ReplicaSet(name, list(u)) for name, u in urls.items()})

    def __getitem__(self, name: str) -> ReplicaSet:
        return self.sets[name]

    def for_url(self, url: httpx.URL) -> ReplicaSet | None:
        found = self._by_origin.get(_origin(url))
        return found if found is not None and len(found) > 1 else None

    def probe_with(self, probe: Probe) -> None:
        for replica_set in self.sets.values():
            replica_set.probe = probe

    async def aclose(self) -> None:
        await asyncio.gather(*(s.aclose() for s in self.sets.values()))


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port


def _rebase(request: httpx.Request, base: str) -> None:
    target = httpx.URL(base)
    request.url = request.url.copy_with(scheme=target.scheme, host=target.host, port=target.port)
    request.headers["Host"] = target.netloc.decode("ascii")


class SpreadingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that sends a request for a part's first URL to one of its replicas."""

    def __init__(self, inner: httpx.AsyncBaseTransport, replicas: Replicas) -> None:
        self.inner = inner
        self.replicas = replicas
        replicas.probe_with(self.healthy)

    async def healthy(self, base: str) -> bool:
        """``GET <base>/healthz`` answers 200 within a second."""
        timeout = {
            "connect": HEALTH_TIMEOUT,
            "read": HEALTH_TIMEOUT,
            "write": HEALTH_TIMEOUT,
            "pool": HEALTH_TIMEOUT,
        }
        request = httpx.Request("GET", f"{base}/healthz", extensions={"timeout": timeout})
        response = await self.inner.handle_async_request(request)
        try:
            await response.aread()
        finally:
            await response.aclose()
        return response.status_code == 200

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        found = self.replicas.for_url(request.url)
        if found is None:
            return await self.inner.handle_async_request(request)
        # a streamed body cannot be sent twice; json=, content= and data= bodies can
        replayable = isinstance(request.stream, httpx.ByteStream)
        again = replayable and (
            bool(request.extensions.get("shop.idempotent"))
            or repeatable(request.method, request.headers.items())
        )
        tried: list[str] = []
        while True:
            base = found.pick(repeatable=again, exclude=tried)
            tried.append(base)
            _rebase(request, base)
            try:
                response = await self.inner.handle_async_request(request)
            except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
                found.failed(base, type(exc).__name__)
                if replayable and len(tried) < len(found):
                    continue
                raise
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
                found.failed(base, type(exc).__name__)
                if again and len(tried) < len(found):
                    continue
                raise
            found.succeeded(base)
            return response

    async def aclose(self) -> None:
        await self.replicas.aclose()
        await self.inner.aclose()
