from django.urls import path

from annotation import api_labeling

app_name = "label-api"
urlpatterns = [
    path("next/", api_labeling.NextPairView.as_view(), name="next"),
    path("submit/", api_labeling.SubmitView.as_view(), name="submit"),
    path("release/", api_labeling.ReleaseView.as_view(), name="release"),
    path("skip/", api_labeling.SkipView.as_view(), name="skip"),
    path("me/", api_labeling.MyStatsView.as_view(), name="me"),
    path("quality/", api_labeling.QualityView.as_view(), name="quality"),
]
