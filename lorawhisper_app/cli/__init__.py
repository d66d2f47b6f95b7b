"""The `lorawhisper` command line, a thin client of the engine."""
