"""Contract suites over EVERY registered distribution, hasher and key filter.

The parameters come from the installed plugins, so an installed third-party plugin is checked
by these tests with no test written for it. The checks are the ones plugin authors get from
``mcpframe.testing``.
"""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from mcpframe.registry import Registry
from mcpframe.testing import check_distribution, check_hasher, check_key_filter
from tests.plugins.support import registry

INSTALLED = registry()  # read once at collection, only to name the parameters

# Option sets worth checking for distributions that have options; others run with {}.
DIST_OPTIONS: Mapping[str, list[dict[str, object]]] = {
    "ring_hash": [
        {},
        {"omode": "ketama"},
        {"omode": "twemproxy"},
        {"omode": "evcache"},
        {"omode": "ketama", "obuckets": 41},
        {"omode": "default", "obuckets": 40},
    ],
}
FILTER_CONFS = [b"{}", b"|#|", b"$$", b"::", b"abcde"]


def _dist_params() -> list[object]:
    return [
        pytest.param(name, options, id=f"{name}-{options}" if options else name)
        for name in INSTALLED.distributions
        for options in DIST_OPTIONS.get(name, [{}])
    ]


@pytest.mark.parametrize(("name", "options"), _dist_params())
def test_distribution_contract(
    mcpframe_registry: Registry, name: str, options: dict[str, object]
) -> None:
    check_distribution(mcpframe_registry.distributions[name], options=options)


@pytest.mark.parametrize("name", list(INSTALLED.distributions))
def test_distribution_key_hasher_is_registered(mcpframe_registry: Registry, name: str) -> None:
    dist = mcpframe_registry.distributions[name]
    if dist.key_hasher is not None:
        check_hasher(mcpframe_registry.hashers[dist.key_hasher])


@pytest.mark.parametrize("name", list(INSTALLED.hashers))
def test_hasher_contract(mcpframe_registry: Registry, name: str) -> None:
    check_hasher(mcpframe_registry.hashers[name])


@pytest.mark.parametrize("conf", FILTER_CONFS, ids=[c.decode() for c in FILTER_CONFS])
@pytest.mark.parametrize("name", list(INSTALLED.key_filters))
def test_key_filter_contract(mcpframe_registry: Registry, name: str, conf: bytes) -> None:
    check_key_filter(mcpframe_registry.key_filters[name], conf)


@pytest.mark.parametrize("name", list(INSTALLED.loggers))
def test_logger_records_are_complete(mcpframe_registry: Registry, name: str) -> None:
    logger = mcpframe_registry.loggers[name]
    assert callable(logger.build)
    assert logger.description


def test_every_kind_has_builtins() -> None:
    assert {"jump_hash", "ring_hash"} <= set(INSTALLED.distributions)
    assert {"xxhash", "md5", "murmur3"} <= set(INSTALLED.hashers)
    assert {"stop", "tags"} <= set(INSTALLED.key_filters)
    assert {"stderr", "jsonfile"} <= set(INSTALLED.loggers)


# --- the checks themselves catch broken plugins -----------------------------------------------


def test_check_distribution_rejects_out_of_range() -> None:
    from mcpframe.types import Distribution

    bad = Distribution("bad", lambda servers, options: lambda h: len(servers))
    with pytest.raises(AssertionError, match="out-of-range"):
        check_distribution(bad)


def test_check_distribution_rejects_inconsistent_modulo() -> None:
    from mcpframe.types import Distribution
    from tests.plugins.fakes.good import build_modulo

    modulo = Distribution("modulo", build_modulo)
    with pytest.raises(AssertionError, match="moved keys between old servers"):
        check_distribution(modulo)
    check_distribution(modulo, consistent=False)  # fine when it does not claim consistency


def test_check_distribution_rejects_unbalanced() -> None:
    from mcpframe.types import Distribution

    lopsided = Distribution("lopsided", lambda servers, options: lambda h: 0 if servers else -1)
    with pytest.raises(AssertionError, match="unbalanced"):
        check_distribution(lopsided, consistent=False)


def test_check_hasher_rejects_bad_values() -> None:
    from mcpframe.types import Hasher

    with pytest.raises(AssertionError, match=r"\[0, 2\*\*64\)"):
        check_hasher(Hasher("negative", lambda key, seed: -1))
    with pytest.raises(AssertionError, match="distinct low 32-bit"):
        check_hasher(Hasher("high_only", lambda key, seed: hash(key) % 2**32 << 32))


def test_check_key_filter_rejects_changes_without_pattern() -> None:
    from mcpframe.types import KeyFilter

    with pytest.raises(AssertionError, match="holds none of the conf bytes"):
        check_key_filter(KeyFilter("upper", lambda conf: bytes.upper))
    with pytest.raises(AssertionError, match="expected bytes"):
        check_key_filter(KeyFilter("text", lambda conf: lambda key: key.decode()))  # type: ignore[arg-type,return-value]
