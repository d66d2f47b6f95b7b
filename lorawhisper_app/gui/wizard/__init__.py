"""The "Add a language" wizard: language, data, similarity, settings, training, result."""
