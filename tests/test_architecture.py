"""The engine (core) and the CLI never import Qt or the GUI; the window does not wait for torch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_import_linter_contracts_hold():
    # lint-imports reads [tool.importlinter] from pyproject.toml in the working directory.
    lint_imports = Path(sys.executable).with_name("lint-imports")
    if not lint_imports.exists():
        lint_imports = Path(shutil.which("lint-imports") or "lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache"],  # no cache folder left in the repository
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


IMPORT_ALL = r"""
import importlib, json, pkgutil, sys
imported, failed = [], {}
for package_name in ("lorawhisper_app.core", "lorawhisper_app.cli"):
    package = importlib.import_module(package_name)
    imported.append(package_name)
    for info in pkgutil.walk_packages(package.__path__, package_name + ".",
                                      onerror=lambda name: failed.setdefault(name, "walk failed")):
        try:
            importlib.import_module(info.name)
            imported.append(info.name)
        except Exception as exc:
            failed[info.name] = f"{type(exc).__name__}: {exc}"
qt = sorted(m for m in sys.modules if m == "PySide6" or m.startswith(("PySide6.", "shiboken6", "lorawhisper_app.gui")))
print(json.dumps({"imported": imported, "failed": failed, "qt": qt}))
"""


def test_core_and_cli_import_without_qt():
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_ALL],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["failed"] == {}, report["failed"]
    assert len(report["imported"]) > 2  # the walk found modules, not just the two packages
    assert report["qt"] == [], f"Qt was imported by the engine or the CLI: {report['qt']}"


WINDOW_MODULES = """
import sys
from PySide6.QtWidgets import QApplication
app = QApplication([])
from lorawhisper_app.gui.main_window import MainWindow
window = MainWindow()
window.show()
app.processEvents()
print(sorted({"torch", "transformers", "peft"} & set(sys.modules)))
"""


def test_the_window_opens_without_torch():
    """torch and transformers take seconds to import; the window shows first and the backbone
    loads behind it (started after the first frame), so building the window must not pull them in."""
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # the session's own data and settings folders
    result = subprocess.run([sys.executable, "-c", WINDOW_MODULES], cwd=REPO_ROOT, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]"], f"imported with the window: {result.stdout.strip()}"
