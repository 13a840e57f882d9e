from django.db import models
from django.db.models import Q


class GeneratorFamily(models.TextChoices):
    DIFFUSION = "diffusion", "Diffusion"
    GAN = "gan", "GAN"
    AUTOREGRESSIVE = "autoregressive", "Autoregressive"
    OTHER = "other", "Other"


class Generator(models.Model):
    """A text-to-image model whose outputs are judged."""

    name = models.CharField(max_length=100, unique=True)
    family = models.CharField(max_length=16, choices=GeneratorFamily.choices, default=GeneratorFamily.OTHER)
    version = models.CharField(max_length=64, blank=True)
    description = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("name",)
        constraints = [models.CheckConstraint(condition=Q(family__in=GeneratorFamily.values), name="generator_family")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}".strip()


def image_upload_path(instance: "Image", filename: str) -> str:
    # Content-addressed: two uploads of the same bytes can never overwrite different images.
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else "png"
    return f"images/{instance.sha256[:2]}/{instance.sha256}.{extension}"


def thumbnail_upload_path(instance: "Image", filename: str) -> str:
    return f"thumbnails/{instance.sha256[:2]}/{instance.sha256}.webp"


class Image(models.Model):
    prompt = models.ForeignKey("annotation.Prompt", on_delete=models.PROTECT, related_name="images")
    generator = models.ForeignKey(Generator, on_delete=models.PROTECT, related_name="images")
    file = models.ImageField(upload_to=image_upload_path, max_length=255)
    thumbnail = models.ImageField(upload_to=thumbnail_upload_path, blank=True, max_length=255)
    sha256 = models.CharField(max_length=64, unique=True)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    seed = models.BigIntegerField(null=True, blank=True)
    settings = models.JSONField(default=dict, blank=True, help_text="Generation settings (sampler, steps, cfg...)")
    source_path = models.CharField(max_length=500, blank=True, help_text="Path in the imported manifest")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("id",)
        indexes = [models.Index(fields=["prompt", "generator"], name="image_prompt_generator")]
        constraints = [
            models.CheckConstraint(condition=Q(width__gt=0) & Q(height__gt=0), name="image_positive_size"),
            models.CheckConstraint(condition=Q(sha256__regex=r"^[0-9a-f]{64}$"), name="image_sha256_hex"),
        ]

    def __str__(self) -> str:
        return f"image {self.pk} ({self.generator_id}, prompt {self.prompt_id})"
