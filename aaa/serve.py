"""``aaa serve``: assemble and run the server process (or several, with ``--workers N``).

One process holds: the cache (loaded, then refreshed from the change counter), the RADIUS
authentication and accounting ports, the accounting journal and its drainer, the auth log writer,
the stale-session sweep, the outbox worker, plugin jobs, and the metrics page. With ``--workers N``
the parent forks N such processes that share the UDP ports through SO_REUSEPORT (the kernel spreads
packets by source address and port); each worker has its own journal folder and metrics port
(``port + index``); worker 0 also runs the outbox worker and the periodic jobs. Before worker 0
tells a router to log a subscriber in again, every worker's cache has the change
(:mod:`aaa.cache_sync`).

Start-up applies every journal folder (the configured one and any ``wN`` under it, whatever
``--workers`` wrote them) before the online index is seeded from ``sessions``: with ``--workers N``
the parent does it before forking. When other processes write sessions too (``--workers N``, or
PostgreSQL, which several nodes may share) the online index is rebuilt from the database every
:data:`aaa.online.RESYNC_SECONDS`.

SIGTERM or SIGINT stops the listeners, then finishes in-flight work: the journal is synced, the
drainer applies what it holds, the auth log is flushed.
"""

from __future__ import annotations

import datetime as dt
import gc
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks
from twisted.internet.error import CannotListenError
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool

from aaa import acct_writer
from aaa.apply_process import ApplyProcess, AuthLogProcess
from aaa.auth_log_spool import AuthLogSpool
from aaa.background import AccountingDrainer, AuthLogWriter, JobRunner, lower_thread_priority, replay_journals
from aaa.cache import Cache
from aaa.cache_sync import FOLLOW_SECONDS, CacheSync
from aaa.config import Settings
from aaa.context import Context, build_context
from aaa.db.engine import make_engine
from aaa.errors import AAAError
from aaa.journal import DeadLetterFile, Journal, describe_error
from aaa.online import RESYNC_SECONDS, OnlineIndex
from aaa.radius import codec
from aaa.radius.server import RadiusPort, RadiusServer
from aaa.stages import StageRunner

log = Logger()


AUTH_LOG_INTERVAL = 0.5
"""Seconds between auth log batches. Each commit rewrites the index pages its rows touched, so
small batches cost more per row (0.2 s: about 6.8 µs a row, 0.5 s and 1 s: about 5); at 0.5 s a
batch under load is some 7,500 rows, tens of ms of the writer thread's (lower priority) time."""
SWITCH_INTERVAL = 0.001
"""``sys.setswitchinterval`` for a server process: how long the reactor may wait for the GIL while a
background thread (auth log, database work) runs Python code; CPython's default is 5 ms."""


@dataclass
class ServeOptions:
    bind: str
    auth_port: int
    acct_port: int
    workers: int = 1
    index: int = 0
    cache_sync: CacheSync | None = None
    """Shared by the worker processes of ``--workers N``: see :mod:`aaa.cache_sync`."""


def settle_heap() -> None:
    """Collect garbage, then set every object alive now aside from future collections (``gc.freeze``).

    Called once the process holds what it keeps for good: the modules, plugins and the cache
    (after start-up, and after a full cache reload). A full collection traverses every object the
    collector tracks; with 10,000 subscribers that is some 160,000 objects and took 30-270 ms
    on the reactor thread, a few times a minute under load (docs/performance.md). Frozen objects
    are still freed by reference counting when let go (a replaced cache entry, say); only a
    reference cycle among them would never be collected, and the collection before the freeze
    leaves none.
    """
    gc.collect()
    gc.freeze()


def udp_socket(bind: str, port: int, *, reuse_port: bool) -> socket.socket:
    family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    if family == socket.AF_INET6:
        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    for size in (8 << 20, 4 << 20, 1 << 20):
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, size)
            break
        except OSError:
            continue
    sock.bind((bind, port))
    sock.setblocking(False)
    return sock


class Service:
    """Everything one server process runs; :meth:`start` and :meth:`stop` on the reactor."""

    def __init__(self, context: Context, options: ServeOptions, reactor: Any) -> None:
        self.context = context
        self.options = options
        self.reactor = reactor
        settings = context.settings
        self.pool = reactor.getThreadPool()
        self.pool.adjustPoolsize(4, 16)
        self.cache = Cache(context.engine, context.vault)
        self.dictionary = codec.load_dictionary([settings.path(p) for p in settings.radius.dictionaries])
        self.runner = StageRunner(context.pm, settings.radius.stages)
        self.journal_root = settings.path(settings.accounting.journal_dir)
        folder = self.journal_root / f"w{options.index}" if options.workers > 1 else self.journal_root
        self.journal = Journal(folder, reactor, self.pool, commit_interval=settings.accounting.commit_interval_ms / 1000)
        self.online = OnlineIndex()
        accounting = settings.accounting
        dead_letters = DeadLetterFile(settings.path(accounting.dead_letter_file))
        apply_process = ApplyProcess(
            context.engine.url.render_as_string(hide_password=False), batch_size=accounting.batch_size,
            dead_letters=dead_letters.path, nice=accounting.apply_nice,
        ) if accounting.apply_in_process else None  # fmt: skip
        # Other processes write sessions too: rebuild the online index from the database now and then.
        # With an apply process, also once after it died during a batch: what it committed of that
        # batch (a close it inferred, say) was never reported back (see _applied).
        self.resync_online = options.workers > 1 or context.engine.dialect.name != "sqlite"
        if self.resync_online or apply_process is not None:
            self.online.track()
        # The reactor writes the auth log's rows to a spool on disk, a frame at a time; a child
        # process at the lowest priority writes the spool to the database, fed by a thread that
        # waits for it (see AuthLogWriter and aaa.auth_log_spool). Without the child, that thread
        # writes the rows to the database itself, at a lower priority than the reactor.
        self.auth_log_pool = ThreadPool(1, 1, "aaa-auth-log")
        self.auth_log_process: AuthLogProcess | None = None
        spool = None
        if settings.radius.auth_log_in_process:
            if settings.radius.auth_log_spool_mb < 1:
                raise AAAError(f"{settings.source}: '[radius] auth_log_spool_mb' must be at least 1")
            spool_root = settings.path(settings.radius.auth_log_spool_dir)
            spool = AuthLogSpool(spool_root / f"w{options.index}" if options.workers > 1 else spool_root,
                                 limit_bytes=settings.radius.auth_log_spool_mb * 1_000_000)  # fmt: skip
            if options.index == 0:  # files an earlier run with another worker count left
                adopted = spool.adopt(_other_spools(spool_root, options.workers))
                if adopted:
                    log.info("auth log: {n} rows of another worker count's spool taken over", n=adopted)
            if spool.lost_on_start:
                log.warn("auth log: {n} rows lost: the server stopped while writing them to the spool", n=spool.lost_on_start)
            self.auth_log_process = AuthLogProcess(context.engine.url.render_as_string(hide_password=False))
        self.auth_log = AuthLogWriter(reactor, self.auth_log_pool, context.engine, interval=AUTH_LOG_INTERVAL,
                                      process=self.auth_log_process, spool=spool)  # fmt: skip
        self.server = RadiusServer(
            reactor=reactor, cache=self.cache, runner=self.runner, dictionary=self.dictionary, journal=self.journal,
            online=self.online, auth_log=self.auth_log, context=context,
            duplicate_seconds=settings.radius.duplicate_cache_seconds,
            default_interim=settings.accounting.default_interim_interval,
        )  # fmt: skip
        self.drainer = AccountingDrainer(
            reactor, self.pool, self.journal, context.engine, self._applied, batch_size=accounting.batch_size,
            dead_letters=dead_letters, mark=lambda: self.online.seq, process=apply_process,
            on_unreported=self._unreported_batch,
        )  # fmt: skip
        self._resync_after_drain = False
        self.jobs = JobRunner(reactor, self.pool, context)
        self.outbox_worker: Any = None
        self._refreshing: Deferred[bool] | None = None
        self._refresh_waiters: list[Deferred[None]] = []
        self._ports: list[Any] = []
        self._sockets: list[socket.socket] = []
        self._loops: list[LoopingCall] = []
        self.started_at = time.time()

    # --- life cycle ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Blocking start-up work: bind the ports, load the cache, replay the journal, seed the online index."""
        began = time.monotonic()
        opts = self.options
        for port in (opts.auth_port, opts.acct_port):
            try:
                self._sockets.append(udp_socket(opts.bind, port, reuse_port=opts.workers > 1))
            except OSError as exc:
                raise AAAError(f"cannot listen on {opts.bind} port {port}: {exc.strerror}") from None
        self.cache.load()
        try:
            if opts.workers > 1:  # the parent replayed every folder before forking; this one's leftovers only
                replayed = self.drainer.drain_blocking()
            else:  # every folder, also those of an earlier run with --workers
                replayed = replay_journals(self.context.engine, self.journal_root, batch_size=self.drainer.batch_size,
                                           dead_letters=self.drainer.dead_letters, skip=self.journal.current)  # fmt: skip
        except Exception as exc:
            raise AAAError(f"cannot apply the accounting journal to the database: {describe_error(exc)}") from None
        self.online.seed(acct_writer.open_sessions(self.context.engine))
        log.info(
            "cache loaded: {subs} subscribers, {plans} plans, {nas} NAS; journal replayed {n} record(s); {online} open sessions ({secs:.2f}s)",
            subs=len(self.cache.subscribers), plans=len(self.cache.plans), nas=len(self.cache.nas_by_id),
            n=replayed.applied, online=self.online.total(), secs=time.monotonic() - began,
        )  # fmt: skip

    def start(self) -> None:
        settings = self.context.settings
        opts = self.options
        self.context.pm.hook.aaa_startup(context=self.context, reactor=self.reactor)
        settle_heap()
        for sock, handler in zip(self._sockets, (self.server.auth_datagram, self.server.acct_datagram), strict=True):
            protocol = RadiusPort(handler, self.server.internal_error)
            self._ports.append(self.reactor.adoptDatagramPort(sock.fileno(), sock.family, protocol))
            sock.close()  # the reactor holds its own duplicate of the descriptor
        self._every(settings.radius.cache_refresh_seconds, self._refresh_cache)
        if opts.cache_sync is not None:
            opts.cache_sync.publish(opts.index, self.cache.seq)
            self._every(FOLLOW_SECONDS, self._follow_peers)
        self._every(1.0, self.server.purge_duplicates)
        self._every(60.0, self._close_stale)
        if self.resync_online:
            self._every(RESYNC_SECONDS, self._resync_online)
        self.drainer.start()
        self.auth_log_pool.start()
        if self.auth_log_process is not None:  # started from the feeding thread: see _Child._ensure
            self.auth_log_pool.callInThread(self.auth_log_process.start)
        else:  # the thread writes to the database itself
            self.auth_log_pool.callInThread(lower_thread_priority)
        self.auth_log.start()
        if opts.index == 0:
            self.context.pm.hook.aaa_register_jobs(register=self.jobs.register)
            self.jobs.start()
            self._start_outbox()
        if settings.metrics.enabled:
            from aaa.metrics import site

            port = settings.metrics.port + opts.index
            try:
                self._ports.append(self.reactor.listenTCP(port, site(self.snapshot), interface=settings.metrics.bind))
            except CannotListenError:
                log.warn("metrics port {port} is in use; metrics and `aaa stats` are off for this process", port=port)
        log.info(
            "aaa serve listening on {bind}: auth {auth}, accounting {acct} (worker {index} of {workers}, pid {pid})",
            bind=opts.bind, auth=opts.auth_port, acct=opts.acct_port, index=opts.index, workers=opts.workers, pid=os.getpid(),
        )  # fmt: skip
        self.reactor.addSystemEventTrigger("before", "shutdown", self.stop)

    def _start_outbox(self) -> None:
        from aaa.outbox_handlers import start_outbox_worker

        self.outbox_worker = start_outbox_worker(self)

    def _every(self, seconds: float, function: Any) -> None:
        loop = LoopingCall(function)
        loop.clock = self.reactor
        loop.start(seconds, now=False)
        self._loops.append(loop)

    @inlineCallbacks
    def stop(self) -> Any:
        log.info("aaa serve stopping: finishing in-flight work")
        for loop in self._loops:
            if loop.running:
                loop.stop()
        self.jobs.stop()
        while self._refreshing is not None:  # the cache's connection closes once no refresh uses it
            yield self._refreshing
        yield deferToThreadPool(self.reactor, self.pool, self.cache.close)
        yield DeferredList([p.stopListening() for p in self._ports if hasattr(p, "stopListening")])
        yield self.journal.flush_now()
        if self.outbox_worker is not None:
            yield self.outbox_worker.stop()
        try:
            yield self.drainer.stop()
        except Exception:
            log.warn("accounting records left in the journal; they are applied at the next start")
        yield self.auth_log.stop()
        if self.auth_log_process is not None:
            yield deferToThreadPool(self.reactor, self.auth_log_pool, self.auth_log_process.close)
        self.auth_log_pool.stop()
        self.context.pm.hook.aaa_shutdown(context=self.context)
        self.journal.close()

    # --- periodic work ------------------------------------------------------------------------------

    def refresh_cache(self) -> Deferred[None]:
        """Fires once the cache has seen every change committed before this call (a refresh that
        starts now, or right after the one running); fails if that refresh fails. Calls made while
        a refresh runs share the next one, so the cache is refreshed by one thread at a time."""
        d: Deferred[None] = Deferred()
        self._refresh_waiters.append(d)
        if self._refreshing is None:
            self._start_refresh()
        return d

    def _start_refresh(self) -> None:
        waiters, self._refresh_waiters = self._refresh_waiters, []
        running: Deferred[bool] = deferToThreadPool(self.reactor, self.pool, self.cache.refresh)
        self._refreshing = running
        loads = self.cache.loads

        def finished(result: Any) -> None:
            self._refreshing = None
            if self.cache.loads != loads:  # a full reload (after a deletion): a new cache to set aside
                settle_heap()
            if self.options.cache_sync is not None:
                self.options.cache_sync.publish(self.options.index, self.cache.seq)
            if self._refresh_waiters:  # asked for while this one ran: they need a refresh of their own
                self._start_refresh()
            for waiter in waiters:
                if isinstance(result, Failure):
                    waiter.errback(result)
                else:
                    waiter.callback(None)

        running.addBoth(finished)

    def refresh_everywhere(self) -> Deferred[Any]:
        """:meth:`refresh_cache`, then (``--workers N``) wait until every worker's cache has what this
        one now has, bounded (:meth:`aaa.cache_sync.CacheSync.wait`)."""
        d: Deferred[Any] = self.refresh_cache()
        sync = self.options.cache_sync
        if sync is not None:
            d.addCallback(lambda _: sync.wait(self.reactor, self.cache.seq))
        return d

    def _follow_peers(self) -> None:
        """Another worker wants a newer cache than this one has: refresh now, not at the next tick."""
        sync = self.options.cache_sync
        if sync is not None and sync.wanted() > self.cache.seq and self._refreshing is None:
            self._refresh_cache()

    def _refresh_cache(self) -> Any:
        d = self.refresh_cache()
        d.addErrback(lambda f: log.warn("cache refresh failed: {error}", error=f.getErrorMessage()[:200]))
        return d

    def _close_stale(self) -> Any:
        accounting = self.context.settings.accounting
        d = deferToThreadPool(
            self.reactor, self.pool, acct_writer.close_stale, self.context.engine, dt.datetime.now(dt.UTC),
            missed=accounting.missed_interims_before_stale, default_interval=accounting.default_interim_interval,
        )  # fmt: skip
        d.addCallback(lambda stopped: self._applied(acct_writer.ApplyResult(stopped=stopped)))
        d.addErrback(lambda f: log.warn("stale-session sweep failed: {error}", error=f.getErrorMessage()[:200]))
        return d

    def _resync_online(self) -> Any:
        """Rebuild the online index from ``sessions`` plus this process's changes not yet applied."""
        since = self.online.begin_resync()
        if since is None:
            return None
        engine = self.context.engine
        d = deferToThreadPool(self.reactor, self.pool, lambda: OnlineIndex.resync_rows(acct_writer.open_sessions(engine)))

        def failed(failure: Failure) -> None:
            self.online.replace(None, since)
            log.warn("online index resync failed: {error}", error=failure.getErrorMessage()[:200])

        d.addCallbacks(lambda built: self.online.replace(built, since), failed)
        return d

    def _unreported_batch(self) -> None:
        self._resync_after_drain = True

    def _applied(self, result: acct_writer.ApplyResult) -> None:
        """After the drainer committed: keep the online index true and tell plugins."""
        for s in result.stopped:
            self.online.stopped(s["login"], s["nas_id"], s["acct_session_id"])
        if result.mark is not None:
            self.online.applied(result.mark)
            if self._resync_after_drain:  # everything up to the mark is in the database now, reported or not
                self._resync_after_drain = False
                self._resync_online()
        events = [("aaa_session_started", {"session": s}) for s in result.started]
        events += [("aaa_session_stopped", {"session": s}) for s in result.stopped]
        if events and (self.context.pm.hook.aaa_session_started.get_hookimpls() or self.context.pm.hook.aaa_session_stopped.get_hookimpls()):
            self.context.fire(events)

    def snapshot(self) -> dict[str, Any]:
        data = self.server.counters.snapshot()
        data.update(
            online=self.online.total(),
            subscribers=len(self.cache.subscribers),
            nas=len(self.cache.nas_by_id),
            journal_pending_bytes=self.journal.pending_bytes(),
            accounting_applied=self.drainer.applied,
            accounting_fitted=self.drainer.fitted,
            accounting_dead_letter=self.drainer.rejected,
            online_resyncs=self.online.resyncs,
            auth_log_written=self.auth_log.written,
            auth_log_pending=self.auth_log.pending,
            auth_log_dropped=self.auth_log.dropped,
            auth_log_spool_bytes=self.auth_log.spool.bytes if self.auth_log.spool is not None else 0,
            auth_log_held=int(self.auth_log.held),
            uptime_seconds=round(time.time() - self.started_at, 1),
            worker=self.options.index,
            pid=os.getpid(),
        )
        if self.outbox_worker is not None:
            data["outbox"] = self.outbox_worker.counters()
        return data


def _other_spools(root: Path, workers: int) -> list[Path]:
    """The auth log spool folders under ``root`` that no worker of this run feeds: ``wN`` folders
    of an earlier run with ``--workers`` (all of them for one process, those past the count for
    several), and ``root`` itself for several (one process's spool)."""
    if not root.is_dir():
        return []
    numbered = [p for p in root.glob("w*") if p.is_dir() and p.name[1:].isdigit()]
    if workers <= 1:
        return sorted(numbered)
    return [root, *sorted(p for p in numbered if int(p.name[1:]) >= workers)]


def _setup_logging(settings: Settings) -> None:
    from twisted.logger import (
        FilteringLogObserver,
        LogLevel,
        LogLevelFilterPredicate,
        globalLogBeginner,
        jsonFileLogObserver,
        textFileLogObserver,
    )

    level = {"debug": LogLevel.debug, "info": LogLevel.info, "warn": LogLevel.warn, "error": LogLevel.error}.get(
        settings.logging.level, LogLevel.info
    )
    stream: Any = open(settings.path(settings.logging.file), "a") if settings.logging.file else sys.stderr  # noqa: SIM115
    observer = jsonFileLogObserver(stream) if settings.logging.format == "json" else textFileLogObserver(stream)
    predicate: Any = LogLevelFilterPredicate(defaultLogLevel=level)
    filtered: Any = FilteringLogObserver(observer, [predicate])  # type: ignore[arg-type]
    globalLogBeginner.beginLoggingTo([filtered])


def run_worker(settings: Settings, options: ServeOptions, *, logging_ready: bool = False) -> None:
    """Run one server process until SIGTERM/SIGINT (blocking)."""
    from twisted.internet import reactor as default_reactor

    reactor: Any = default_reactor
    if not logging_ready:
        _setup_logging(settings)
    context = build_context(settings)
    sys.setswitchinterval(SWITCH_INTERVAL)
    service = Service(context, options, reactor)
    service.prepare()
    reactor.callWhenRunning(service.start)
    reactor.run()
    context.close()


def serve(settings: Settings, options: ServeOptions) -> None:
    """``aaa serve``: one process, or a parent that forks ``options.workers`` and waits for them."""
    if options.workers <= 1:
        run_worker(settings, options)
        return
    _setup_logging(settings)
    replay_before_fork(settings)
    children: list[int] = []
    sync = CacheSync(options.workers)
    for index in range(options.workers):
        pid = os.fork()
        if pid == 0:
            try:
                worker = ServeOptions(options.bind, options.auth_port, options.acct_port, options.workers, index, sync)
                run_worker(settings, worker, logging_ready=True)
            finally:
                os._exit(0)
        children.append(pid)

    def forward(signum: int, _frame: Any) -> None:
        for child in children:
            try:
                os.kill(child, signal.SIGTERM)
            except ProcessLookupError:
                pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    for child in children:
        while True:
            try:
                _, code = os.waitpid(child, 0)
                status = status or os.waitstatus_to_exitcode(code)
                break
            except InterruptedError:
                continue
    sys.exit(status)


def replay_before_fork(settings: Settings) -> acct_writer.ApplyResult:
    """Apply every journal folder (``--workers N``: in the parent, before any worker seeds its online
    index, so that none counts a session whose Stop or Accounting-On is still in another's journal)."""
    began = time.monotonic()
    accounting = settings.accounting
    engine = make_engine(settings.database.url, root=settings.root, pool_size=1)
    try:
        result = replay_journals(engine, settings.path(accounting.journal_dir), batch_size=accounting.batch_size,
                                 dead_letters=DeadLetterFile(settings.path(accounting.dead_letter_file)))  # fmt: skip
    except Exception as exc:
        raise AAAError(f"cannot apply the accounting journal to the database: {describe_error(exc)}") from None
    finally:
        engine.dispose()  # no connection crosses the fork
    log.info("journals replayed before starting the workers: {n} record(s) ({secs:.2f}s)", n=result.applied,
             secs=time.monotonic() - began)  # fmt: skip
    return result


__all__ = ["Path", "ServeOptions", "Service", "replay_before_fork", "serve"]
