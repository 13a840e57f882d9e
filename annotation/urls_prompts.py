from django.urls import path

from annotation.views import prompts

urlpatterns = [
    path("filter/", prompts.prompt_filter, name="prompt-filter"),
]
