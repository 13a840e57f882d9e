from django.urls import path

from training import api

app_name = "training"
urlpatterns = [
    path("score/", api.ScoreJobsView.as_view(), name="score-jobs"),
    path("score/<str:task_id>/", api.ScoreJobView.as_view(), name="score-job"),
]
