from django.urls import path

from annotation.views import prompts

urlpatterns = [
    path("filter/", prompts.prompt_filter, name="prompt-filter"),
    path("disagreements/", prompts.prompt_disagreements, name="prompt-disagreements"),
]
