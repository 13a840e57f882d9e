"""Why the labeling queue refused an action (the API maps them to HTTP statuses)."""


class QueueError(ValueError):
    """The queue refused the action; the message says why."""


class LabelingDisabled(QueueError):
    pass


class LeaseMissing(QueueError):
    pass


class PairFull(QueueError):
    pass
