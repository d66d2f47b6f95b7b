"""LoRA-Whisper Studio: local speech recognition with one LoRA adapter per language."""

__version__ = "0.1.0"
