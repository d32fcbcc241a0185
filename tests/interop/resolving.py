"""The two ways a ResolverService resolves a question: blocking (`resolve`, as the anchors'
upkeep does) and on its resolution thread's event loop (as every client query is). Tests of
what happens on the wire between the resolver and its upstream run both (`WAYS`)."""

from __future__ import annotations

import asyncio

import dns.name

from sigchain.core.resolve.cache import Answer
from sigchain.services.resolver import ResolverService

WAYS = ("blocking", "event loop")


def resolve(way: str, service: ResolverService, qname: dns.name.Name, rdtype: int) -> Answer:
    if way == "blocking":
        return service.resolve(qname, rdtype)
    running = asyncio.run_coroutine_threadsafe(service._shared(qname, rdtype), service.resolutions.loop())
    return running.result(60)
