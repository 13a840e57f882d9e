"""MPS training: the library (config, data, objective, loop), separate from its doors (command, task)."""
