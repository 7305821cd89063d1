"""Prometheus metrics and the JSON stats page of a running ``aaa serve`` (localhost HTTP).

``/metrics`` is the Prometheus text format; ``/stats`` the same figures as JSON, which
``aaa stats`` reads. Values are read from the server's plain counters at scrape time, so the hot
path pays one integer increment per event and nothing more.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.twisted import MetricsResource
from twisted.web.resource import Resource
from twisted.web.server import Site


class ServerCollector:
    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[Any]:
        s = self._snapshot()
        yield CounterMetricFamily("aaa_radius_accepts", "Access-Accepts sent", value=s["accepts"])
        yield CounterMetricFamily("aaa_radius_rejects", "Access-Rejects sent", value=s["rejects"])
        yield CounterMetricFamily("aaa_radius_duplicates", "Retransmissions answered from the duplicate cache", value=s["duplicates"])
        yield CounterMetricFamily("aaa_radius_status_server", "Status-Server requests answered", value=s["status_server"])
        dropped = CounterMetricFamily("aaa_radius_dropped", "Packets dropped, by reason", labels=["reason"])
        for reason, n in s["dropped"].items():
            dropped.add_metric([reason], n)
        yield dropped
        acct = CounterMetricFamily("aaa_radius_accounting", "Accounting-Requests acknowledged, by status type", labels=["type"])
        for kind, n in s["accounting"].items():
            acct.add_metric([kind], n)
        yield acct
        latency = GaugeMetricFamily("aaa_radius_auth_latency_ms", "Recent Access-Request latency percentiles", labels=["quantile"])
        for q, v in s.get("auth_latency_ms", {}).items():
            latency.add_metric([q], v)
        yield latency
        yield GaugeMetricFamily("aaa_sessions_online", "Open sessions known to this process", value=s.get("online", 0))
        yield GaugeMetricFamily("aaa_subscribers_cached", "Subscribers in the cache", value=s.get("subscribers", 0))
        yield GaugeMetricFamily("aaa_journal_pending_bytes", "Accounting records not yet in the database", value=s.get("journal_pending_bytes", 0))
        yield CounterMetricFamily("aaa_accounting_applied", "Accounting records applied to sessions", value=s.get("accounting_applied", 0))
        yield CounterMetricFamily(
            "aaa_accounting_fitted", "Accounting values cut or capped to fit their column", value=s.get("accounting_fitted", 0)
        )
        yield CounterMetricFamily(
            "aaa_accounting_dead_letter", "Accounting records the database refused, kept in the dead-letter file",
            value=s.get("accounting_dead_letter", 0),
        )
        yield CounterMetricFamily("aaa_auth_log_written", "Authentication decisions written to auth_log", value=s.get("auth_log_written", 0))
        yield GaugeMetricFamily(
            "aaa_auth_log_pending", "Authentication decisions waiting to be written to auth_log (in memory and in the spool)",
            value=s.get("auth_log_pending", 0),
        )
        yield GaugeMetricFamily(
            "aaa_auth_log_spool_bytes", "Bytes of authentication decisions waiting in the auth log spool", value=s.get("auth_log_spool_bytes", 0)
        )
        yield GaugeMetricFamily(
            "aaa_auth_log_held", "1 while the auth log spool waits for the reactor's load to fall", value=s.get("auth_log_held", 0)
        )
        yield CounterMetricFamily(
            "aaa_auth_log_dropped", "Authentication decisions not written to auth_log (the spool or the memory bound was full)",
            value=s.get("auth_log_dropped", 0),
        )
        outbox = GaugeMetricFamily("aaa_outbox_worker", "Outbox worker counters", labels=["counter"])
        for name, n in s.get("outbox", {}).items():
            outbox.add_metric([name], n)
        yield outbox


class StatsResource(Resource):
    isLeaf = True

    def __init__(self, snapshot: Callable[[], dict[str, Any]]) -> None:
        super().__init__()
        self._snapshot = snapshot

    def render_GET(self, request: Any) -> bytes:  # noqa: N802 (Twisted's name)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(self._snapshot()).encode()


def site(snapshot: Callable[[], dict[str, Any]]) -> Site:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ServerCollector(snapshot))
    root = Resource()
    root.putChild(b"metrics", MetricsResource(registry=registry))  # type: ignore[arg-type]
    root.putChild(b"stats", StatsResource(snapshot))  # type: ignore[arg-type]
    return Site(root)
