"""Scoring API: queue a scoring job on the GPU workers, then read its result. Staff only."""

from celery.result import AsyncResult
from django.conf import settings
from rest_framework import serializers, status
from rest_framework.permissions import IsAdminUser
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView

from annotation.dimensions import DIMENSION_KEYS
from annotation.models import Image
from training.model_paths import OutsideModelRoots, model_path_allowed
from training.tasks import score_stored_images

MAX_IMAGES_PER_REQUEST = 256


class ScoreRequestSerializer(serializers.Serializer):
    image_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=MAX_IMAGES_PER_REQUEST
    )
    prompt = serializers.CharField(required=False, allow_blank=False, max_length=2000)
    dimensions = serializers.ListField(
        child=serializers.ChoiceField(choices=DIMENSION_KEYS), min_length=1, default=lambda: ["overall"]
    )
    checkpoint = serializers.CharField(required=False, allow_blank=True, default="", max_length=1000)

    def validate(self, data: dict) -> dict:
        found = Image.objects.filter(pk__in=data["image_ids"])
        missing = sorted(set(data["image_ids"]) - set(found.values_list("pk", flat=True)))
        if missing:
            raise serializers.ValidationError({"image_ids": f"unknown image ids: {missing}"})
        if "prompt" not in data:
            prompts = set(found.values_list("prompt__text", flat=True))
            if len(prompts) != 1:
                raise serializers.ValidationError({"prompt": "required when the images belong to different prompts"})
            data["prompt"] = prompts.pop()
        checkpoint = data["checkpoint"] or settings.MPS_CHECKPOINT
        if not checkpoint:
            raise serializers.ValidationError({"checkpoint": "no checkpoint given and MPS_CHECKPOINT is not set"})
        try:
            resolved = model_path_allowed(checkpoint)  # before anything is said about the path
        except OutsideModelRoots as error:
            raise serializers.ValidationError({"checkpoint": str(error)}) from None
        if not resolved.exists():
            raise serializers.ValidationError({"checkpoint": f"no checkpoint at {checkpoint}"})
        data["checkpoint"] = checkpoint
        return data


class ScoreJobsView(APIView):
    permission_classes = [IsAdminUser]
    serializer_class = ScoreRequestSerializer

    def post(self, request):
        serializer = ScoreRequestSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        job = score_stored_images.apply_async(kwargs=serializer.validated_data)
        url = reverse("training:score-job", kwargs={"task_id": job.id}, request=request)
        return Response({"task_id": job.id, "status_url": url}, status=status.HTTP_202_ACCEPTED)


class ScoreJobView(APIView):
    permission_classes = [IsAdminUser]

    def get(self, request, task_id: str):
        job = AsyncResult(task_id)
        body = {"task_id": task_id, "state": job.state}
        if job.successful():
            body["result"] = job.result
        elif job.failed():
            body["error"] = str(job.result)
        return Response(body)
