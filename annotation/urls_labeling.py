from django.urls import path

from annotation.views import labeling, quality

urlpatterns = [
    path("", labeling.label_form, name="label-form"),
    path("quality/", quality.quality_page, name="label-quality"),
    path("disputes/", quality.disputes_page, name="label-disputes"),
    path("disputes/adjudicate/", quality.dispute_post, name="label-adjudicate"),
]
