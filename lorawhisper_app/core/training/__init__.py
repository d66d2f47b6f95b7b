"""Training LoRA adapters: data, similarity, the training loop."""
