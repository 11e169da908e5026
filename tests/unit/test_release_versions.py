"""Release versions are directory names on every host: what may be one, and how they sort."""

import pytest

from ansible_collections.lockstep.release.plugins.module_utils.release_state import valid_version, version_key


@pytest.mark.parametrize("version", [
    "../x", "..", ".", "a/b", "/etc", "2.1.0/..", "2.1..0", "", None, " 1.0", "1.0 ", "-rf", "--help", ".hidden",
    "2.1.0\n", "\n2.1.0", "2.1.0\x00", "2.1.0;rm -rf /", "2\\1", "v" * 65, "2.1.0 rc1", "é1.0",
], ids=repr)
def test_valid_version_rejects_path_like_and_malformed(version):
    assert valid_version(version) is False


@pytest.mark.parametrize("version", ["2.1.0", "1.0.0-rc1", "1.0.0+build.7", "2024.11_hotfix", "v2", "0",
                                     "v" * 64])
def test_valid_version_accepts_plain_versions(version):
    assert valid_version(version) is True


def test_version_key_orders_numerically():
    versions = ["1.10.0", "1.9.0", "2.0.0", "1.0.0", "10.0.0", "1.2", "1.9.1"]
    assert sorted(versions, key=version_key) == ["1.0.0", "1.2", "1.9.0", "1.9.1", "1.10.0", "2.0.0", "10.0.0"]


@pytest.mark.parametrize("odd", ["", None, "abc", "1.x.3", "-", "1..2"])
def test_version_key_never_raises(odd):
    assert isinstance(version_key(odd), list)
    sorted(["1.0.0", odd or ""], key=version_key)
