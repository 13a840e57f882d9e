from django.urls import path

from annotation import api_prompts

app_name = "prompts-api"
urlpatterns = [
    path("", api_prompts.PromptListView.as_view(), name="prompts"),
    path("<int:pk>/", api_prompts.PromptDetailView.as_view(), name="prompt"),
    path("import-jobs/", api_prompts.ImportJobListView.as_view(), name="import-jobs"),
    path("import-jobs/<int:pk>/", api_prompts.ImportJobDetailView.as_view(), name="import-job"),
    path("augmentation-jobs/", api_prompts.AugmentationJobListView.as_view(), name="augmentation-jobs"),
    path("augmentation-jobs/<int:pk>/", api_prompts.AugmentationJobDetailView.as_view(), name="augmentation-job"),
]
