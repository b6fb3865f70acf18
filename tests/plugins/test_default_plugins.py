"""The built-ins: declared like third-party plugins, and the details of each."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from mcpframe.registry import Registry
from mcpframe.types import BackendInfo

ROOT = Path(__file__).resolve().parents[2]
THREE = [
    BackendInfo(1, "127.0.0.1", "11211", "b1"),
    BackendInfo(2, "127.0.0.2", "11211", "b2"),
    BackendInfo(3, "127.0.0.3", "11212", "b3"),
]


def test_pyproject_entry_points_match_default_plugins_modules() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["entry-points"]["mcpframe"]
    modules = {
        p.stem for p in (ROOT / "mcpframe" / "default_plugins").glob("*.py") if p.stem != "__init__"
    }
    assert set(declared) == modules
    for name, value in declared.items():
        assert value == f"mcpframe.default_plugins.{name}"
    assert project["entry-points"]["pytest11"] == {"mcpframe": "mcpframe.testing"}


# --- ring_hash options -----------------------------------------------------------------------


@pytest.mark.parametrize("omode", ["bogus", "", "KETAMA"])
def test_ring_bad_omode(mcpframe_registry: Registry, omode: str) -> None:
    with pytest.raises(ValueError, match=r"^ring_hash: bad omode argument$"):
        mcpframe_registry.distributions["ring_hash"].build(THREE, {"omode": omode})


def test_ring_omode_must_be_a_string(mcpframe_registry: Registry) -> None:
    with pytest.raises(TypeError, match="ring_hash: omode must be a string"):
        mcpframe_registry.distributions["ring_hash"].build(THREE, {"omode": 1})


@pytest.mark.parametrize("buckets", [0, -1, 1.5, "160", True, None])
def test_ring_bad_obuckets(mcpframe_registry: Registry, buckets: object) -> None:
    with pytest.raises(
        ValueError, match=r"^ring_hash: option argument must be a positive integer$"
    ):
        mcpframe_registry.distributions["ring_hash"].build(THREE, {"obuckets": buckets})


def test_ring_integral_float_buckets(mcpframe_registry: Registry) -> None:
    ring = mcpframe_registry.distributions["ring_hash"]
    a = ring.build(THREE, {"omode": "ketama", "obuckets": 160.0})
    b = ring.build(THREE, {"omode": "ketama"})
    assert [a(h * 7919) for h in range(500)] == [b(h * 7919) for h in range(500)]


def test_ring_too_few_buckets_for_md5_modes_is_out_of_bounds(mcpframe_registry: Registry) -> None:
    ring = mcpframe_registry.distributions["ring_hash"]
    assert ring.build(THREE, {"omode": "ketama", "obuckets": 3})(12345) == -1
    assert ring.build(THREE, {"omode": "default", "obuckets": 1})(12345) in (0, 1, 2)


def test_ring_empty_pool_is_out_of_bounds(mcpframe_registry: Registry) -> None:
    assert mcpframe_registry.distributions["ring_hash"].build([], {})(1) == -1


def test_ring_ignores_pool_options_it_does_not_know(mcpframe_registry: Registry) -> None:
    ring = mcpframe_registry.distributions["ring_hash"]
    options = {"omode": "ketama", "seed": "z1", "filter": "stop", "iothread": False}
    assert ring.build(THREE, options)(5) == ring.build(THREE, {"omode": "ketama"})(5)


def test_ring_uses_host_and_port_not_label(mcpframe_registry: Registry) -> None:
    ring = mcpframe_registry.distributions["ring_hash"]
    relabelled = [BackendInfo(s.id, s.host, s.port, "other") for s in THREE]
    renamed = [BackendInfo(s.id, "localhost", s.port, s.label) for s in THREE]
    hashes = [h * 2654435761 for h in range(2000)]
    base, by_label, by_host = (
        ring.build(servers, {"omode": "ketama"}) for servers in (THREE, relabelled, renamed)
    )
    assert [by_label(h) for h in hashes] == [base(h) for h in hashes]
    assert [by_host(h) for h in hashes] != [base(h) for h in hashes]


def test_ring_uses_low_32_bits_and_wraps(mcpframe_registry: Registry) -> None:
    from mcpframe.default_plugins.dist_ring_hash import continuum

    select = mcpframe_registry.distributions["ring_hash"].build(THREE, {"omode": "ketama"})
    for h in (0, 1, 8275958, 4292320248, 4292320249, 0xFFFFFFFF):
        assert select(h) == select(h | (0xDEADBEEF << 32))
    first_owner = continuum(THREE, "ketama")[0][1] - 1
    assert select(4292320249) == first_owner  # above the last point: wrap to the first
    assert select(0xFFFFFFFF) == first_owner
    assert select(8275958) == 2  # exactly on a point: that point's server (id 3)


def test_jump_hash_ignores_options(mcpframe_registry: Registry) -> None:
    jump = mcpframe_registry.distributions["jump_hash"]
    assert jump.build(THREE, {"omode": "bogus", "obuckets": -1})(12345) == 1


# --- hashers ---------------------------------------------------------------------------------


def test_murmur3_folds_seed_to_32_bits(mcpframe_registry: Registry) -> None:
    murmur3 = mcpframe_registry.hashers["murmur3"].hash
    assert murmur3(b"foo", 5) == murmur3(b"foo", 5 + (7 << 32))
    assert murmur3(b"foo", 5) != murmur3(b"foo", 6)
    assert murmur3(b"foo", 5) == 10863662242596824404  # mmh3.hash64(b"foo", 5)[0], unsigned


def test_xxhash_full_seed_range(mcpframe_registry: Registry) -> None:
    xxhash_ = mcpframe_registry.hashers["xxhash"].hash
    assert xxhash_(b"foo", 2**64 - 1) == 12779579780664045049
    assert xxhash_(b"foo", 0) != xxhash_(b"foo", 1)


# --- filters ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("conf", "key", "hashed"),
    [
        (b"|#|", b"foo:bar|#|restofkey", b"foo:bar"),
        (b"|#|", b"|#|foo", b""),
        (b"|#|", b"foo|#", b"foo|#"),
        (b"|#|", b"a|#|b|#|c", b"a"),
        (b"::", b"", b""),
        (b"abcde", b"xxabcdeyy", b"xx"),
    ],
)
def test_stop_filter(mcpframe_registry: Registry, conf: bytes, key: bytes, hashed: bytes) -> None:
    assert mcpframe_registry.key_filters["stop"].build(conf)(key) == hashed


@pytest.mark.parametrize(
    ("conf", "key", "hashed"),
    [
        (b"{}", b"user{1234}:profile", b"1234"),
        (b"{}", b"user{}:profile", b""),
        (b"{}", b"user{1234:profile", b"user{1234:profile"),  # no closing tag
        (b"{}", b"user}1{2}", b"2"),  # a closing tag before the opening one is not used
        (b"{}", b"user{", b"user{"),  # nothing after the opening tag
        (b"{}", b"a{b{c}d", b"b{c"),  # the first opening tag counts
        (b"$$", b"a$b$c", b"b"),  # X == Y: the [R] fix searches after X
        (b"$$", b"a$$c", b""),
        (b"$$", b"a$bc", b"a$bc"),
        (b"$$", b"$", b"$"),
        (b"{}xyz", b"k{v}", b"v"),  # only the first two conf bytes count
    ],
)
def test_tags_filter(mcpframe_registry: Registry, conf: bytes, key: bytes, hashed: bytes) -> None:
    assert mcpframe_registry.key_filters["tags"].build(conf)(key) == hashed


@pytest.mark.parametrize("name", ["stop", "tags"])
@pytest.mark.parametrize("conf", [b"", b"x", b"abcdef"])
def test_filter_conf_length(mcpframe_registry: Registry, name: str, conf: bytes) -> None:
    with pytest.raises(ValueError, match="hash filter conf must be between 2 and 5 characters"):
        mcpframe_registry.key_filters[name].build(conf)


# --- loggers ---------------------------------------------------------------------------------


def test_stderr_logger(mcpframe_registry: Registry, capsys: pytest.CaptureFixture[str]) -> None:
    sink = mcpframe_registry.loggers["stderr"].build("")
    sink.emit({"msg": "backend failure: conntimeout", "type": "proxy_error", "ts": 1700000000.5})
    sink.emit({"ts": 1.0, "type": "proxy_req", "key": b"foo", "elapsed": 12, "empty": ""})
    sink.close()
    assert capsys.readouterr().err.splitlines() == [
        'ts=1700000000.500000 type=proxy_error msg="backend failure: conntimeout"',
        'ts=1.000000 type=proxy_req key=foo elapsed=12 empty=""',
    ]


def test_stderr_logger_takes_no_argument(mcpframe_registry: Registry) -> None:
    with pytest.raises(ValueError, match="takes no argument"):
        mcpframe_registry.loggers["stderr"].build("/tmp/x")


def test_jsonfile_logger(mcpframe_registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text('{"old": 1}\n')
    sink = mcpframe_registry.loggers["jsonfile"].build(str(path))
    sink.emit({"ts": 1700000000.5, "type": "proxy_error", "msg": "oops"})
    sink.emit({"ts": 2.0, "type": "proxy_req", "key": b"k\xff"})
    # line-buffered: each event is in the file as soon as it is emitted
    assert len(path.read_text().splitlines()) == 3
    sink.close()
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert lines == [
        {"old": 1},
        {"ts": 1700000000.5, "type": "proxy_error", "msg": "oops"},
        {"ts": 2.0, "type": "proxy_req", "key": "k\\xff"},
    ]


def test_jsonfile_logger_needs_a_writable_path(mcpframe_registry: Registry, tmp_path: Path) -> None:
    jsonfile = mcpframe_registry.loggers["jsonfile"]
    with pytest.raises(ValueError, match="needs a file"):
        jsonfile.build("")
    with pytest.raises(ValueError, match="cannot open"):
        jsonfile.build(str(tmp_path / "no" / "such" / "dir.jsonl"))


def test_logger_sinks_satisfy_protocol(mcpframe_registry: Registry, tmp_path: Path) -> None:
    from mcpframe.types import LogSink

    sinks = [
        mcpframe_registry.loggers["stderr"].build(""),
        mcpframe_registry.loggers["jsonfile"].build(str(tmp_path / "x.jsonl")),
    ]
    for sink in sinks:
        assert isinstance(sink, LogSink)
        sink.close()
