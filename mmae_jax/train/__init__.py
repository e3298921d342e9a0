"""Training and evaluation: mesh and sharding, optimiser, steps, checkpoints, metrics, loop."""
