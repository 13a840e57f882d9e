"""Progress callbacks of the evaluation commands: (done, total) prompts onto a tqdm bar."""


def bar_progress(bar):
    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return progress
