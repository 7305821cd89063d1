"""The stage runner: authorize, authenticate, post_auth, preacct and accounting, FreeRADIUS-style.

Each stage is a pluggy hook. The runner calls its implementations in the configured order (plugins
named in ``[radius] stages`` first, in that order, then the rest in pluggy's order) and stops at the
first result that ends a stage. Implementations usually return at once; one that returns a Deferred
or a coroutine makes the rest of the stage asynchronous, and :meth:`StageRunner.run` then returns a
Deferred. The common path stays a plain loop of function calls.
"""

from __future__ import annotations

import enum
import inspect
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred, ensureDeferred

if TYPE_CHECKING:
    import pluggy

STAGES = ("aaa_authorize", "aaa_authenticate", "aaa_post_auth", "aaa_preacct", "aaa_accounting")


class Result(enum.StrEnum):
    """FreeRADIUS v3 module return codes."""

    REJECT = "reject"
    FAIL = "fail"
    OK = "ok"
    HANDLED = "handled"
    INVALID = "invalid"
    DISALLOW = "disallow"
    NOTFOUND = "notfound"
    NOOP = "noop"
    UPDATED = "updated"

    # Enum hashes members by name in Python code; these are looked up in sets and dicts on every
    # request (``ends_stage``, the fold), so hash them as the strings they equal, in C.
    __hash__ = str.__hash__

    @property
    def ends_stage(self) -> bool:
        return self in _ENDING


_ENDING = frozenset({Result.REJECT, Result.FAIL, Result.HANDLED, Result.INVALID, Result.DISALLOW})
# When no implementation ends the stage, the stage's result is the highest of these.
_RANK = {Result.NOOP: 0, Result.NOTFOUND: 1, Result.OK: 2, Result.UPDATED: 3}


class Request:
    """What the stages see of one RADIUS request, and the reply they build."""

    __slots__ = (
        "accepted",
        "context",
        "control",
        "login",
        "method",
        "nas",
        "packet",
        "plan",
        "reply",
        "reply_message",
        "subscriber",
    )

    def __init__(self, packet: Any, nas: Any, login: str, context: Any = None) -> None:
        self.packet = packet
        self.nas = nas
        self.login = login
        self.context = context
        self.subscriber: Any = None
        self.plan: Any = None
        self.reply: list[tuple[str, Any]] = []
        self.reply_message: str | None = None
        self.method: str | None = None
        self.accepted = False
        self.control: dict[str, Any] = {}

    def add_reply(self, name: str, value: Any) -> None:
        self.reply.append((name, value))

    def reject(self, message: str) -> Result:
        """Record the reason (sent as Reply-Message and logged) and return ``reject``."""
        self.reply_message = message
        return Result.REJECT


def as_result(value: Any) -> Result:
    if value is None:
        return Result.NOOP
    if isinstance(value, Result):
        return value
    try:
        return Result(str(value))
    except ValueError:
        return Result.FAIL


def _fold(best: Result, result: Result) -> Result:
    """The stage's result so far after one more implementation: an ending result wins at once."""
    if result in _ENDING or _RANK.get(result, 0) > _RANK[best]:
        return result
    return best


def _is_async(value: Any) -> bool:
    return isinstance(value, Deferred) or inspect.isawaitable(value)


class StageRunner:
    """Calls each stage's implementations in order; built once at start-up."""

    def __init__(self, pm: pluggy.PluginManager, order: Sequence[str] = ()) -> None:
        self._chains: dict[str, list[Callable[[Any], Any]]] = {}
        position = {name: i for i, name in enumerate(order)}
        for stage in STAGES:
            impls = list(getattr(pm.hook, stage).get_hookimpls())
            impls.reverse()  # pluggy stores them last-called-first
            ranked = sorted(
                enumerate(impls), key=lambda item: (position.get(item[1].plugin_name, len(position)), item[0])
            )
            self._chains[stage] = [impl.function for _, impl in ranked]

    def chain(self, stage: str) -> list[Callable[[Any], Any]]:
        return self._chains[stage]

    def run(self, stage: str, request: Request) -> Result | Deferred[Result]:
        """The stage's result; a Deferred only if an implementation answered with one (or a coroutine).

        The loop is the hot path of every Access-Request: a ``Result`` or ``None`` (what the
        built-in hooks return) is recognised by its class, without ``isinstance`` against the
        awaitable ABCs; anything else goes through :func:`as_result` or the asynchronous path.
        """
        best = Result.NOOP
        chain = self._chains[stage]
        for index, function in enumerate(chain):
            value = function(request)
            if value.__class__ is not Result:
                if value is None:
                    continue  # noop never changes the stage's result
                if _is_async(value):
                    return self._continue(chain, index, value, request, best)
                value = as_result(value)
            if value in _ENDING:
                return value
            if _RANK[value] > _RANK[best]:
                best = value
        return best

    def _continue(
        self, chain: list[Callable[[Any], Any]], index: int, pending: Any, request: Request, best: Result
    ) -> Deferred[Result]:
        async def finish() -> Result:
            nonlocal best
            value = pending
            for function in [None, *chain[index + 1 :]]:
                if function is not None:
                    value = function(request)
                if _is_async(value):
                    value = await value
                best = _fold(best, as_result(value))
                if best in _ENDING:
                    return best
            return best

        return ensureDeferred(finish())
