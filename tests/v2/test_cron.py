"""Crons (``mcp.register_cron``) and self-reloads (``mcp.schedule_config_reload``) through the
wire (spec v2 7.2, 7.3; memcached's t/proxycron.t). What 1.6.45's proxy did on
tests/configs/v2/cron.lua, recorded: the log lines, their order, the error texts."""

from __future__ import annotations

import time

import pytest

from tests.route_api.conftest import Proxy
from tests.v2.conftest import StartProxy


@pytest.fixture
def cron(start_v2: StartProxy) -> Proxy:
    return start_v2("cron.lua", {})


def value(key: str, text: str) -> bytes:
    return f"VALUE {key} 0 {len(text)}\r\n{text}\r\nEND\r\n".encode()


ERRORS = [
    "bad argument #1 to '?' (string expected, got no value)",
    "bad argument #2 to '?' (table expected, got no value)",
    "proxy cron entry missing 'func' field",
    "bad argument #-1 to '?' (function expected, got number)",
    "proxy cron entry missing 'every' field",
    "bad argument #-1 to '?' (number expected, got string)",
    "proxy cron entry 'every' must be > 0",
    # a fraction reads as 0
    "proxy cron entry 'every' must be > 0",
    "ok",
]


def test_register_cron_errors(cron: Proxy) -> None:
    cron.send(b"mg errs\r\n")
    assert cron.read_until(b"END\r\n") == value("errs", "\n".join(ERRORS))


def test_crons_run_fail_and_reload_the_config_once(start_v2: StartProxy) -> None:
    # measured from before the start: a loaded machine may take a while to start the proxy
    # and the watcher, and the crons count from the load
    t0 = time.monotonic()
    cron = start_v2("cron.lua", {})
    w = cron.watch("proxyuser", "proxyevents")
    # every = 2: the first run two seconds after the load; a cron that raises is logged
    w.wait_for(r"type=proxy_user msg=once 1$", timeout=6)
    w.wait_for(r"type=proxy_error msg=\S*cron\.lua:30: cron oops$", timeout=5)
    # the reload cron (every = 3) reloads the config; its globals survived
    w.wait_for(r"type=proxy_user msg=reloading$", timeout=5)
    w.wait_for(r"type=proxy_conf status=start$")
    w.wait_for(r"type=proxy_conf status=done$")
    assert time.monotonic() - t0 > 2.0
    # rerun = false: once per load that registers it
    w.wait_for(r"type=proxy_user msg=once 2$", timeout=6)
    cron.send(b"mg loads\r\n")
    assert cron.read_until(b"END\r\n") == value("loads", "2")
    # the second load did not register the reload cron again: it is dropped, never runs
    deadline = time.monotonic() + 4
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = w.line(left)
        except TimeoutError:
            break
        assert "reloading" not in line and "proxy_conf" not in line, line
    stats = cron.stats()
    assert stats["proxy_config_reloads"] == "2"
    assert stats["proxy_config_reload_fails"] == "0"
    assert int(stats["proxy_config_cron_runs"]) > 5
    assert int(stats["proxy_config_cron_fails"]) >= 2
