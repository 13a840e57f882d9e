"""GPU tasks (routed to the `gpu` queue). torch is imported inside them, never at module level."""

from celery import shared_task
from django.conf import settings

from training.scoring import stored_images_score


@shared_task(name="training.tasks.score_stored_images")
def score_stored_images(*, prompt: str, image_ids: list[int], dimensions: list[str], checkpoint: str = "") -> dict:
    return stored_images_score(
        prompt=prompt, image_ids=image_ids, dimensions=dimensions, checkpoint=checkpoint or settings.MPS_CHECKPOINT
    )


@shared_task(name="training.tasks.train_run")
def train_run(run_id: int) -> str:
    from training.runs import training_run_execute

    return training_run_execute(run_id=run_id).status
