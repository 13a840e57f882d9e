"""Why the labeling queue refused an action (the API maps them to HTTP statuses)."""


class QueueError(ValueError):
    """The queue refused the action; the message says why."""


class LabelingDisabled(QueueError):
    pass


class LeaseMissing(QueueError):
    pass


class PairFull(QueueError):
    pass


class AlreadyJudged(QueueError):
    """A new submission (another client token) for a pair this annotator judged already: the stored
    judgement stands and is carried here, the new answer is not stored."""

    def __init__(self, judgement):
        super().__init__("you judged this pair already; your first answer stands")
        self.judgement = judgement


class JudgementFrozen(QueueError):
    """The judgement is part of a frozen dataset version (or one being frozen): it never changes."""
