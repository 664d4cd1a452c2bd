"""ecgjax's commands keep compiled programs in the user's cache folder, unless one is set already or it is turned off."""

import jax
import pytest

from ecgjax.cli import COMPILE_CACHE_ENV, enable_compilation_cache


@pytest.fixture
def no_cache_dir():
    """jax's cache folder unset for the test (this test run's own folder, if any, put back after)."""
    before = jax.config.jax_compilation_cache_dir
    jax.config.update("jax_compilation_cache_dir", None)
    yield
    jax.config.update("jax_compilation_cache_dir", before)


def test_the_user_cache_folder_is_used(no_cache_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert enable_compilation_cache() == tmp_path / "ecgjax" / "xla"
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "ecgjax" / "xla")


def test_a_folder_already_set_is_kept(no_cache_dir, tmp_path):
    jax.config.update("jax_compilation_cache_dir", str(tmp_path / "mine"))
    assert enable_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir == str(tmp_path / "mine")


def test_it_can_be_turned_off(no_cache_dir, monkeypatch):
    monkeypatch.setenv(COMPILE_CACHE_ENV, "0")
    assert enable_compilation_cache() is None
    assert jax.config.jax_compilation_cache_dir is None
