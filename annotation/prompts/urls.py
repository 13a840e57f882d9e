"""URLs of the prompt pipeline: pages (under /prompts/) and the API (under /api/prompts/)."""

from django.urls import path

from annotation.prompts import api, views

urlpatterns = [
    path("filter/", views.prompt_filter, name="prompt-filter"),
    path("disagreements/", views.prompt_disagreements, name="prompt-disagreements"),
]

api_urls = (
    [
        path("", api.PromptListView.as_view(), name="prompts"),
        path("<int:pk>/", api.PromptDetailView.as_view(), name="prompt"),
        path("import-jobs/", api.ImportJobListView.as_view(), name="import-jobs"),
        path("import-jobs/<int:pk>/", api.ImportJobDetailView.as_view(), name="import-job"),
        path("augmentation-jobs/", api.AugmentationJobListView.as_view(), name="augmentation-jobs"),
        path("augmentation-jobs/<int:pk>/", api.AugmentationJobDetailView.as_view(), name="augmentation-job"),
    ],
    "prompts-api",
)
