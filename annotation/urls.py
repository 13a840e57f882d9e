from django.urls import include, path

app_name = "annotation"
# Each area of the annotation app keeps its own URL module.
urlpatterns = [
    path("prompts/", include("annotation.urls_prompts")),
    path("label/", include("annotation.urls_labeling")),
]
