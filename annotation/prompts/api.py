"""DRF API of the prompt pipeline: prompts (reviewers and staff), import and augmentation jobs (staff).

Thin doors: input is validated by a serializer, reads go through selectors_prompts, the one write
(starting augmentation) through services.augmentation.
"""

from django.core.exceptions import ValidationError
from drf_spectacular.utils import extend_schema
from rest_framework import generics, serializers, status
from rest_framework.permissions import BasePermission, IsAdminUser
from rest_framework.request import Request
from rest_framework.response import Response

from annotation.models import AugmentationJob, Category, ImportJob, Prompt, PromptOrigin, PromptStatus
from annotation.prompts.selectors import augmentation_jobs_list, prompt_import_jobs_list, prompts_filtered
from annotation.prompts.services.augmentation import MAX_REQUESTED_COUNT, augmentation_jobs_create


class CanViewPrompts(BasePermission):
    def has_permission(self, request, view) -> bool:
        return request.user.is_authenticated and request.user.has_perm("annotation.view_prompt")


class JobModelPermission(BasePermission):
    """The model permission for the method on the view's `perm_model`: view to read, add to create."""

    def has_permission(self, request, view) -> bool:
        action = "view" if request.method in ("GET", "HEAD", "OPTIONS") else "add"
        return request.user.has_perm(f"annotation.{action}_{view.perm_model}")


STAFF_JOB_PERMISSIONS = [IsAdminUser, JobModelPermission]


class PromptOut(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    subcategory = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = Prompt
        fields = (
            "id",
            "text",
            "source",
            "source_id",
            "category",
            "subcategory",
            "status",
            "rejection_reasons",
            "origin",
            "augmentation_job",
            "near_duplicate_of",
            "reviews_required",
            "reviews_done",
            "needs_reviewer",
            "created_at",
        )


class PromptFilterIn(serializers.Serializer):
    status = serializers.ChoiceField(choices=PromptStatus.choices, required=False, default="")
    category = serializers.SlugField(required=False, default="", help_text="top-level or subcategory slug")
    origin = serializers.ChoiceField(choices=PromptOrigin.choices, required=False, default="")
    source = serializers.CharField(required=False, default="", max_length=64)
    search = serializers.CharField(required=False, default="", max_length=200, help_text="text contains")


class ImportJobOut(serializers.ModelSerializer):
    class Meta:
        model = ImportJob
        fields = (
            "id",
            "original_name",
            "status",
            "progress",
            "config",
            "summary",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        )


class AugmentationJobOut(serializers.ModelSerializer):
    category = serializers.SlugRelatedField(slug_field="slug", read_only=True)

    class Meta:
        model = AugmentationJob
        fields = (
            "id",
            "category",
            "requested_count",
            "llm_model",
            "status",
            "progress",
            *AugmentationJob.TALLY_FIELDS,
            "metrics",
            "error",
            "created_at",
            "started_at",
            "finished_at",
        )


class AugmentationIn(serializers.Serializer):
    category = serializers.SlugRelatedField(
        slug_field="slug",
        queryset=Category.objects.filter(parent__isnull=True),
        required=False,
        allow_null=True,
        default=None,
        help_text="a top-level category slug; null or absent: one job per category with a deficit",
    )
    requested_count = serializers.IntegerField(min_value=1, max_value=MAX_REQUESTED_COUNT)
    llm_model = serializers.CharField(required=False, default="", max_length=100, help_text="default OPENAI_MODEL")


class AugmentationCreatedOut(serializers.Serializer):
    jobs = AugmentationJobOut(many=True)


class PromptListView(generics.ListAPIView):
    permission_classes = [CanViewPrompts]
    serializer_class = PromptOut

    @extend_schema(parameters=[PromptFilterIn], summary="Prompts, filtered")
    def get(self, request: Request, *args, **kwargs) -> Response:
        return super().get(request, *args, **kwargs)

    def get_queryset(self):
        filters = PromptFilterIn(data=self.request.query_params)
        filters.is_valid(raise_exception=True)
        return prompts_filtered(**filters.validated_data)


class PromptDetailView(generics.RetrieveAPIView):
    permission_classes = [CanViewPrompts]
    serializer_class = PromptOut
    queryset = Prompt.objects.select_related("category", "subcategory")


class _ImportJobs:
    permission_classes = STAFF_JOB_PERMISSIONS
    perm_model = "importjob"
    serializer_class = ImportJobOut

    def get_queryset(self):
        return prompt_import_jobs_list()


class ImportJobListView(_ImportJobs, generics.ListAPIView):
    pass


class ImportJobDetailView(_ImportJobs, generics.RetrieveAPIView):
    pass


class _AugmentationJobs:
    permission_classes = STAFF_JOB_PERMISSIONS
    perm_model = "augmentationjob"
    serializer_class = AugmentationJobOut

    def get_queryset(self):
        return augmentation_jobs_list()


class AugmentationJobListView(_AugmentationJobs, generics.ListAPIView):
    @extend_schema(request=AugmentationIn, responses={201: AugmentationCreatedOut}, summary="Start augmentation")
    def post(self, request: Request) -> Response:
        data = AugmentationIn(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            jobs = augmentation_jobs_create(created_by=request.user, **data.validated_data)
        except ValidationError as error:
            return Response({"detail": " ".join(error.messages)}, status=status.HTTP_400_BAD_REQUEST)
        return Response(AugmentationCreatedOut({"jobs": jobs}).data, status=status.HTTP_201_CREATED)


class AugmentationJobDetailView(_AugmentationJobs, generics.RetrieveAPIView):
    pass
