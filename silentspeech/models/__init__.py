"""Neural network models: the TinyMyo encoder and the task models built on it."""
