"""Exceptions of the MPS library."""


class CheckpointError(Exception):
    """A file is not an MPS checkpoint we can load safely (not a checkpoint, truncated, unsafe, or
    inconsistent); the message says which and why."""
