"""Downloads of export files: staff only, and only files the job's manifest lists (no path from the URL
reaches the file system unchecked)."""

from pathlib import Path

from django.contrib.admin.views.decorators import staff_member_required
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest

from datasets.models import ExportJob
from datasets.services.export import MANIFEST_NAME
from mhp.jobs import JobStatus


@staff_member_required
def export_file(request: HttpRequest, job_id: int, name: str) -> FileResponse:
    if not request.user.has_perm("datasets.view_exportjob"):
        raise PermissionDenied
    job = ExportJob.objects.filter(pk=job_id, status=JobStatus.SUCCEEDED).first()
    if job is None:
        raise Http404("no finished export with this id")
    listed = {entry["path"] for entry in job.manifest.get("files", [])} | {MANIFEST_NAME}
    if name not in listed:
        raise Http404("this export has no such file")
    path = Path(job.output_dir) / name
    if not path.is_file():
        raise Http404("the file is gone from the export folder")
    return FileResponse(path.open("rb"), as_attachment=True, filename=path.name)
