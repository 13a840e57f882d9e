from django.urls import path

from training import views

app_name = "training-pages"
urlpatterns = [
    path("results/", views.results, name="results"),
    path("generators/", views.generators, name="generators"),
    path("pair-scoring/", views.pair_scorings, name="pair-scorings"),
    path("pair-scoring/<int:run_id>/cancel/", views.pair_scoring_cancel, name="pair-scoring-cancel"),
    path("runs/", views.runs, name="runs"),
    path("runs/<int:run_id>/", views.run, name="run"),
    path("runs/<int:run_id>.json", views.run_json, name="run-json"),
    path("runs/<int:run_id>/cancel/", views.run_cancel, name="run-cancel"),
    path("runs/<int:run_id>/resume/", views.run_resume, name="run-resume"),
]
