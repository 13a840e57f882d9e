"""The annotation app's admin: each area registers its models in its own admin module, gathered here."""

from annotation import user_admin
from annotation.images import admin as images_admin
from annotation.labeling import admin as labeling_admin
from annotation.prompts import admin as prompts_admin

__all__ = ["images_admin", "labeling_admin", "prompts_admin", "user_admin"]
