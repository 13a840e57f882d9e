"""What the scoring and evaluation commands share: their model flags, and the run that is created here (not
queued) and executed in this process by the same function as the gpu task, with a tqdm bar; a refusal or a
failed run is a CommandError."""

from collections.abc import Callable

from django.core.management.base import CommandError

from mhp.jobs import JobStatus
from mhp.progress import progress_bar
from training.evaluation.jobs import EvaluationError, LastScorer, evaluation_result, evaluation_run_execute
from training.models import EvaluationRun


def add_scoring_arguments(parser) -> None:
    """The flags of every command that loads a model and prints its scores."""
    parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--allow-untrained-dimensions",
        action="store_true",
        help="score dimensions the checkpoint was not trained on (refused otherwise)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def evaluation_run_here(
    create: Callable[[], EvaluationRun],
    *,
    verbosity: int,
    stderr,
    desc: str | None = None,
    scorers: LastScorer | None = None,
) -> dict:
    """The metrics of the run that `create` records, executed here; its row ends succeeded or failed."""
    try:
        run = create()
    except EvaluationError as error:
        raise CommandError(str(error)) from None
    with progress_bar(unit="prompts", verbosity=verbosity, stream=stderr, desc=desc) as progress:
        run = evaluation_run_execute(run_id=run.pk, progress=progress, scorers=scorers)
    if run.status != JobStatus.SUCCEEDED:
        raise CommandError(run.error)
    return evaluation_result(run)
