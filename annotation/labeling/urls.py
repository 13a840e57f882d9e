"""URLs of labeling: pages (under /label/) and the API (under /api/label/)."""

from django.urls import path

from annotation.labeling import api, views

urlpatterns = [
    path("", views.label_form, name="label-form"),
    path("quality/", views.quality_page, name="label-quality"),
    path("quality/refit/", views.reliability_refit, name="label-reliability-refit"),
    path("flags/", views.flags_page, name="label-flags"),
    path("flags/review/", views.flag_review, name="label-flag-review"),
    path("disputes/", views.disputes_page, name="label-disputes"),
    path("disputes/adjudicate/", views.dispute_post, name="label-adjudicate"),
    path("queue-order/", views.queue_order_page, name="label-queue-order"),
]

api_urls = (
    [
        path("next/", api.NextPairView.as_view(), name="next"),
        path("submit/", api.SubmitView.as_view(), name="submit"),
        path("revise/", api.ReviseView.as_view(), name="revise"),
        path("release/", api.ReleaseView.as_view(), name="release"),
        path("skip/", api.SkipView.as_view(), name="skip"),
        path("me/", api.MyStatsView.as_view(), name="me"),
        path("quality/", api.QualityView.as_view(), name="quality"),
    ],
    "label-api",
)
