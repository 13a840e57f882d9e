from django.urls import path

from annotation.views import labeling

urlpatterns = [
    path("", labeling.label_form, name="label-form"),
]
