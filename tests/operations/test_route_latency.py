"""Latency histograms per attached route (command, tag) and per backend, through the
``--metrics`` endpoint: fast routes land in the tens-of-microseconds buckets, a route to a
backend that takes 60 ms lands above 50 ms."""

from __future__ import annotations

import re
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.fakebackend import FakeBackend, answer, simple_reply
from tests.helpers import Client, Mcpframe, Memcached, free_port, wait_port

pytestmark = pytest.mark.timeout(60)

DOCS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"

CONFIG = """
function mcp_config_pools()
    return {{
        fast = mcp.pool({{ mcp.backend("fast", "127.0.0.1", {fast}) }}),
        slow = mcp.pool({{ mcp.backend("slow", "127.0.0.1", {slow}) }}),
    }}
end
function mcp_config_routes(p)
    mcp.attach(mcp.CMD_GET, function(r) return p.fast(r) end)           -- pass-through
    mcp.attach(mcp.CMD_MG, function(r) local res = p.fast(r) return res end)  -- in Lua
    mcp.attach(mcp.CMD_GET, function(r) return p.slow(r) end, "slow")
    local fg = mcp.funcgen_new()                                          -- API v2, in Lua
    local h = fg:new_handle(p.fast)
    fg:ready({{ n = "md_route", f = function(rctx)
        return function(r)
            local res = rctx:enqueue_and_wait(r, h)
            if res:ok() then return res end
            return "SERVER_ERROR md failed\\r\\n"
        end
    end }})
    mcp.attach(mcp.CMD_MD, fg)
end
"""

Hist = dict[str, float]


def histogram(port: int, name: str, **labels: str) -> tuple[Hist, float, float]:
    """(cumulative count by le, count, sum) of one histogram series."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as resp:
        text = resp.read().decode()
    buckets: Hist = {}
    count = total = -1.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if not labels.items() <= s.labels.items():
                continue
            if s.name == f"{name}_bucket":
                buckets[s.labels["le"]] = s.value
            elif s.name == f"{name}_count":
                count = s.value
            elif s.name == f"{name}_sum":
                total = s.value
    return buckets, count, total


def slow_reply(line: bytes) -> bytes:
    time.sleep(0.06)
    return simple_reply(line)


def test_route_and_backend_latency_histograms(
    tmp_path: Path,
    memcached_factory: Callable[..., Memcached],
    mcpframe_factory: Callable[..., Mcpframe],
) -> None:
    mc = memcached_factory()
    fake = FakeBackend().serve(answer(slow_reply))
    try:
        cfg = tmp_path / "routes.lua"
        cfg.write_text(CONFIG.format(fast=mc.port, slow=fake.port))
        slow_port, mport = free_port(), free_port()
        proxy = mcpframe_factory(
            "--config", str(cfg), "--listen", f"127.0.0.1:{slow_port}:slow",
            "--metrics", f"127.0.0.1:{mport}",
        )  # fmt: skip
        wait_port(slow_port, proxy.proc)
        c = Client(proxy.addr)
        for i in range(20):
            c.send(b"get a%d b%d\r\nmg m%d v\r\n" % (i, i, i))
            assert c.read_until(b"END\r\n") == b"END\r\n"
            assert c.readline() == b"EN\r\n"
        for i in range(5):
            c.send(b"md d%d\r\n" % i)
            assert c.readline() == b"NF\r\n"
        s = Client(("127.0.0.1", slow_port))
        for i in range(3):
            s.send(b"get s%d\r\n" % i)
            assert s.readline() == b"END\r\n"

        # get on the untagged listener: 20 requests (two keys each: one get per backend)
        b, count, total = histogram(mport, "mcpframe_route_duration_seconds", command="get", tag="")
        assert count == 20 and b["+Inf"] == 20
        assert b["0.05"] == 20  # a local memcached answers well under 50 ms
        assert "1e-05" in b and "2.5e-05" in b  # buckets resolve tens of microseconds
        assert 0 < total < 1
        b, count, _ = histogram(mport, "mcpframe_route_duration_seconds", command="mg", tag="")
        assert count == 20 and b["0.05"] == 20
        b, count, _ = histogram(mport, "mcpframe_route_duration_seconds", command="md", tag="")
        assert count == 5 and b["0.05"] == 5  # an API v2 route (function generator)
        # the tagged route to the slow backend: every request over 50 ms, none over 5 s
        b, count, total = histogram(
            mport, "mcpframe_route_duration_seconds", command="get", tag="slow"
        )
        assert count == 3
        assert b["0.05"] == 0 and b["5"] == 3
        assert 0.18 <= total < 3
        # and per backend
        b, count, _ = histogram(mport, "mcpframe_backend_response_seconds", label="slow")
        assert count == 3 and b["0.05"] == 0
        b, count, _ = histogram(mport, "mcpframe_backend_response_seconds", label="fast")
        assert count == 45 and b["0.05"] == 45
        # every series the documented PromQL queries read is served, with the labels they use
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as resp:
            served = {
                (sample.name, frozenset(sample.labels))
                for family in text_string_to_metric_families(resp.read().decode())
                for sample in family.samples
            }
        queries = DOCS.read_text().split("```promql\n", 1)[1].split("```", 1)[0]
        used = re.findall(r"(mcpframe_\w+)(?:\{([^}]*)\})?", queries)
        assert len(used) >= 8
        for name, selector in used:
            labels = set(re.findall(r"(\w+)=", selector))
            assert any(n == name and labels <= ls for n, ls in served), (name, labels)
        by = set(re.findall(r"by \(([^)]*)\)", queries))
        for group in by:
            for label in (x.strip() for x in group.split(",")):
                assert any(label in ls for _, ls in served), label
        c.close()
        s.close()
    finally:
        fake.close()
