"""Celery tasks of the annotation app; each area keeps its tasks in its own module, imported here for autodiscovery."""

from annotation.tasks_prompts import prompt_import_job_task

__all__ = ["prompt_import_job_task"]
