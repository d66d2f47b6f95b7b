"""Entry point of the desktop app (`lorawhisper-app`, `python -m lorawhisper_app`)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from PySide6.QtWidgets import QApplication

from lorawhisper_app import __version__
from lorawhisper_app.gui.main_window import APP_NAME, MainWindow, app_icon


def main(argv: Sequence[str] | None = None) -> int:
    """Starts the app and returns its exit code when the last window closes."""
    app = QApplication.instance() or QApplication(list(sys.argv if argv is None else argv))
    app.setApplicationName(APP_NAME)
    app.setApplicationVersion(__version__)
    # Lets desktops match the window to resources/lorawhisper-studio.desktop.
    app.setDesktopFileName("lorawhisper-studio")
    app.setWindowIcon(app_icon())
    window = MainWindow()
    window.show()
    window.holder.start()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
