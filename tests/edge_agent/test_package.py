"""The agent stands alone: no Django, none of the platform's apps, its own package metadata."""

import subprocess
import sys
import tomllib

from .helpers import ROOT

PLATFORM = ("django", "rest_framework", "mcoms", "customers", "metering", "billing",
            "fieldops", "notifications")


def test_importing_every_module_pulls_in_nothing_from_the_platform():
    code = (
        "import pkgutil, sys, importlib, edge_agent\n"
        "for m in pkgutil.iter_modules(edge_agent.__path__):\n"
        "    if m.name != '__main__': importlib.import_module('edge_agent.' + m.name)\n"
        f"bad = [n for n in sys.modules if n.split('.')[0] in {PLATFORM!r}]\n"
        "print(bad); sys.exit(1 if bad else 0)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stdout + out.stderr


def test_package_metadata_installs_the_console_script_with_pinned_pymodbus():
    meta = tomllib.loads((ROOT / "edge_agent" / "pyproject.toml").read_text())
    assert meta["project"]["scripts"]["mcoms-edge"] == "edge_agent.cli:main"
    deps = meta["project"]["dependencies"]
    assert "pymodbus==3.16.1" in deps
    assert not any(d.lower().startswith("django") for d in deps)
