from django.urls import path

from training import views

app_name = "training-pages"
urlpatterns = [
    path("results/", views.results, name="results"),
    path("generators/", views.generators, name="generators"),
]
