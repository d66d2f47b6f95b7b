"""Benchmarks of the engine against faster-whisper (they need the `test` extras)."""
