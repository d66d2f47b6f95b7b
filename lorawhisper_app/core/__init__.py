"""The transcription engine. Plain Python: nothing under this package imports Qt."""
