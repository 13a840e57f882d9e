"""The command line's progress bar: what services report to (done, total) drawn by tqdm."""

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

Progress = Callable[[int, int], None]


@contextmanager
def progress_bar(*, unit: str, verbosity: int, stream, desc: str | None = None) -> Iterator[Progress]:
    """A bar on `stream` (a command's stderr), hidden at verbosity 0; yields the callback to hand a service."""
    with tqdm(total=0, desc=desc, unit=unit, disable=verbosity < 1, file=stream) as bar:

        def report(done: int, total: int) -> None:
            bar.total = total
            bar.update(done - bar.n)

        yield report
