"""The PySide6 desktop app, a thin client of the engine."""
