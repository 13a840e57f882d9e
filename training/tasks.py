"""GPU tasks (routed to the `gpu` queue by their `training.tasks.*` names). torch is imported inside them,
never at module level. The reaper needs no GPU: its name keeps it on the default queue."""

from celery import shared_task
from django.conf import settings

from training.evaluation.jobs import evaluation_run_execute
from training.liveness import training_runs_reap
from training.pair_scoring import pair_scoring_run_execute
from training.runs import training_run_execute
from training.scoring import stored_images_score_job


# A worker lost while scoring (killed for memory by a hostile checkpoint) ends the result FAILURE instead
# of sending the task to the next worker for ever; the time limits end a load that never returns.
@shared_task(
    name="training.tasks.score_stored_images", reject_on_worker_lost=False, soft_time_limit=900, time_limit=960
)
def score_stored_images(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str = "") -> dict:
    return stored_images_score_job(
        prompt=prompt, image_ids=image_ids, dimensions=dimensions, checkpoint=checkpoint or settings.MPS_CHECKPOINT
    )


@shared_task(name="training.tasks.train_run")
def train_run(run_id: int) -> str:
    return training_run_execute(run_id=run_id).status


@shared_task(name="training.reap_dead_runs", acks_late=False)
def reap_dead_runs() -> list[str]:
    """Periodic (Celery beat): mark failed the training runs whose worker died; returns their names."""
    return [run.name for run in training_runs_reap()]


@shared_task(name="training.tasks.evaluate_run")
def evaluate_run(run_id: int) -> str:
    return evaluation_run_execute(run_id=run_id).status


@shared_task(name="training.tasks.score_pairs_run")
def score_pairs_run(run_id: int) -> str:
    return pair_scoring_run_execute(run_id=run_id).status
