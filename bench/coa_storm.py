"""Mass suspension: N CoA-Requests through :class:`aaa.radius.coa.CoaClient` to a local listener.

``python -m bench.coa_storm --port P --count 10000`` prints one JSON line: the time from the first
send until every Deferred fired, and the client's counters (acks, naks, timeouts, retransmitted).
The listener (``tests/fakenas.py --record``) tells whether any request was lost or sent twice.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", default="testing123")
    parser.add_argument("--count", type=int, default=10000)
    parser.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    if not args.host.startswith("127."):
        raise SystemExit("coa_storm: loopback targets only")

    from twisted.internet import reactor as default_reactor
    from twisted.internet.defer import DeferredList

    from aaa.radius.coa import CoaClient
    from aaa.radius.codec import Code

    reactor: Any = default_reactor
    client = CoaClient(reactor, timeout=args.timeout, retries=2)
    out: dict[str, Any] = {}

    def go() -> None:
        began = time.perf_counter()
        deferreds = [
            client.send(args.host, args.port, args.secret.encode(), Code.COA_REQUEST,
                        [("User-Name", f"user{i:05d}"), ("Acct-Session-Id", f"coa-{i:x}"),
                         ("Mikrotik-Rate-Limit", "1k/1k")])  # fmt: skip
            for i in range(1, args.count + 1)
        ]

        def finished(results: list[tuple[bool, Any]]) -> None:
            out["elapsed_s"] = round(time.perf_counter() - began, 3)
            outcomes: dict[str, int] = {}
            for ok, result in results:
                key = getattr(result, "outcome", None) or getattr(result, "status", None) or ("error" if not ok else str(result))
                outcomes[str(key)] = outcomes.get(str(key), 0) + 1
            out["outcomes"] = outcomes
            out["counters"] = client.counters() if callable(getattr(client, "counters", None)) else {}
            reactor.stop()

        DeferredList(deferreds, consumeErrors=True).addCallback(finished)

    reactor.callWhenRunning(go)
    reactor.callLater(120, reactor.stop)
    reactor.run()
    out["count"] = args.count
    print(json.dumps(out))


if __name__ == "__main__":
    main()
