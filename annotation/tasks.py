"""Celery tasks of the annotation app; each area keeps its tasks in its own module, imported here for autodiscovery."""

from annotation.tasks_labeling import lease_table_upkeep
from annotation.tasks_prompts import prompt_import_job_task

__all__ = ["lease_table_upkeep", "prompt_import_job_task"]
