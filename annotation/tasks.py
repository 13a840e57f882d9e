"""Celery tasks of the annotation app: each area keeps its tasks in its own module, imported here for autodiscovery."""

from annotation.images import tasks as images_tasks
from annotation.labeling import tasks as labeling_tasks
from annotation.prompts import tasks as prompts_tasks

__all__ = ["images_tasks", "labeling_tasks", "prompts_tasks"]
