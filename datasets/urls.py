from django.urls import path

from datasets import views

app_name = "datasets"

urlpatterns = [
    path("exports/<int:job_id>/files/<path:name>", views.export_file, name="export_file"),
]
