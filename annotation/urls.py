"""The annotation app's pages: each area keeps its own URL module, gathered here."""

from django.urls import include, path

from annotation.labeling import urls as labeling_urls
from annotation.prompts import urls as prompts_urls

app_name = "annotation"
urlpatterns = [
    path("prompts/", include(prompts_urls)),
    path("label/", include(labeling_urls)),
]
api_urlpatterns = [
    path("label/", include(labeling_urls.api_urls)),
    path("prompts/", include(prompts_urls.api_urls)),
]
