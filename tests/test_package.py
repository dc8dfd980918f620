"""Package-level behaviour: lazy exports of the sub-packages."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

LAZY = ["iznet.data", "iznet.recognize", "iznet.viz", "iznet.serve", "iznet.export"]


@pytest.mark.parametrize("package", LAZY)
def test_every_listed_name_resolves_and_unknown_names_raise(package):
    mod = importlib.import_module(package)
    assert mod.__all__ and mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        if package == "iznet.serve" and name == "create_app":
            pytest.importorskip("fastapi")
        assert getattr(mod, name) is not None, name
        assert name in dir(mod)
    with pytest.raises(AttributeError, match=f"module '{package}' has no attribute 'no_such_name'"):
        getattr(mod, "no_such_name")


def test_importing_a_package_does_not_import_its_heavy_modules():
    code = "import sys, iznet.data, iznet.recognize, iznet.export; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
