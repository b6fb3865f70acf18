from __future__ import annotations

import pytest

from tests.plugin_install.site import Site, plugin_site


@pytest.fixture(scope="session")
def site(tmp_path_factory: pytest.TempPathFactory) -> Site:
    """plugins/* and one rendering of the template per kind, installed in a temporary site."""
    return plugin_site(tmp_path_factory)
