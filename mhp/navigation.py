"""Every page a person may open, grouped as the nav bar and the home page show them.

One list serves the nav bar (a context processor, so every page that extends base.html has it), the
home page and the tests that walk the site: a page added here is offered to exactly the users whose
permissions open it.
"""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest
from django.urls import reverse


@dataclass(frozen=True)
class Page:
    label: str
    url_name: str
    # None: any signed-in user may open it.
    permission: str | None = None
    # The admin site and the staff pages also need is_staff (they send everyone else to a login form).
    staff: bool = False

    def allows(self, user: AbstractBaseUser) -> bool:
        if self.staff and not user.is_staff:
            return False
        return self.permission is None or user.has_perm(self.permission)


def _admin(label: str, admin_url_name: str, permission: str | None) -> Page:
    return Page(label, f"admin:{admin_url_name}", permission, staff=True)


SECTIONS: tuple[tuple[str, tuple[Page, ...]], ...] = (
    (
        "Work",
        (
            Page("Judge image pairs", "annotation:label-form", "annotation.label_pairs"),
            Page("Filter prompts", "annotation:prompt-filter", "annotation.filter_prompts"),
        ),
    ),
    (
        "Review",
        (
            Page("Disputed pairs", "annotation:label-disputes", "annotation.adjudicate_pairs"),
            Page("Annotator flags", "annotation:label-flags", "annotation.adjudicate_pairs"),
            Page("Prompt disagreements", "annotation:prompt-disagreements", "annotation.resolve_prompt_disagreements"),
            Page("Quality", "annotation:label-quality", "annotation.view_quality"),
            Page("Queue order", "annotation:label-queue-order", "annotation.view_queueorder", staff=True),
        ),
    ),
    (
        "Prompts",
        (
            _admin("Import prompts", "annotation_importjob_prompt_upload", "annotation.add_importjob"),
            _admin("Import jobs", "annotation_importjob_changelist", "annotation.view_importjob"),
            _admin("Prompts", "annotation_prompt_changelist", "annotation.view_prompt"),
            _admin("Near-duplicate groups", "annotation_prompt_near_duplicates", "annotation.view_prompt"),
            _admin("Category balance", "annotation_category_balance", "annotation.view_prompt"),
            _admin("Start augmentation", "annotation_augmentationjob_start", "annotation.add_augmentationjob"),
            _admin("Augmentation jobs", "annotation_augmentationjob_changelist", "annotation.view_augmentationjob"),
        ),
    ),
    (
        "Images",
        (
            _admin("Import images (zip)", "annotation_image_zip_upload", "annotation.add_image"),
            _admin("Images", "annotation_image_changelist", "annotation.view_image"),
            _admin("Generators", "annotation_generator_changelist", "annotation.view_generator"),
            _admin("Pairs", "annotation_pair_changelist", "annotation.view_pair"),
        ),
    ),
    (
        "Datasets",
        (
            _admin("Dataset versions", "datasets_datasetversion_changelist", "datasets.view_datasetversion"),
            _admin("Freeze a version", "datasets_datasetversion_freeze", "datasets.add_datasetversion"),
            _admin("Exports", "datasets_exportjob_changelist", "datasets.view_exportjob"),
            _admin("Evaluation sets", "datasets_evaluationset_changelist", "datasets.view_evaluationset"),
        ),
    ),
    (
        "Models",
        (
            Page("Training runs", "training-pages:runs", "training.view_trainingrun"),
            Page("Evaluation results", "training-pages:results", staff=True),
            Page("Generator ranking", "training-pages:generators", staff=True),
            Page("Pair scoring", "training-pages:pair-scorings", "training.view_pairscoringrun", staff=True),
        ),
    ),
    (
        "Admin",
        (
            _admin("Labeling guidelines", "annotation_guideline_changelist", "annotation.view_guideline"),
            _admin("Users", "auth_user_changelist", "auth.view_user"),
            _admin("Annotator profiles", "annotation_annotatorprofile_changelist", "annotation.view_annotatorprofile"),
            _admin("Admin site", "index", None),
        ),
    ),
    (
        "Account",
        (
            Page("API tokens", "api-tokens"),
            Page("API docs", "api-docs"),
        ),
    ),
)


def sections_for(user: AbstractBaseUser) -> list[tuple[str, list[tuple[str, str]]]]:
    """(section, [(label, url)]) with only the pages this user may open; empty sections left out."""
    if not user.is_authenticated:
        return []
    sections = []
    for title, pages in SECTIONS:
        links = [(page.label, reverse(page.url_name)) for page in pages if page.allows(user)]
        if links:
            sections.append((title, links))
    return sections


def nav(request: HttpRequest) -> dict:
    """Context processor: the nav bar's sections for the signed-in user."""
    return {"nav_sections": sections_for(request.user)}
