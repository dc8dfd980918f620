"""Atomic writes: all or nothing, with ordinary permissions."""

import os

import pytest

from iznet.utils.io import atomic_path, write_json


def test_atomic_path_replaces_on_success_with_umask_permissions(tmp_path):
    target = tmp_path / "out.json"
    write_json(target, {"a": 1})
    umask = os.umask(0)
    os.umask(umask)
    assert target.read_text().strip().startswith("{")
    assert (target.stat().st_mode & 0o777) == (0o666 & ~umask)


def test_atomic_path_leaves_the_old_file_when_the_body_fails(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]
