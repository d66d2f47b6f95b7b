"""The transcription engine. Plain Python: nothing under this package imports Qt."""

import warnings

# peft 0.21 asks transformers 5 for a renamed attribute on every adapter load; harmless,
# and nothing a user of the app can act on.
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
