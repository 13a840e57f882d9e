"""The "start a training run" form: validates the options a staff member gives and turns them into the
TrainConfig fields that `training_run_create` takes. Fields left blank take the preset's defaults."""

from django import forms

from datasets.models import EvaluationSet
from training import pair_scoring
from training.baselines.registry import LABELS, METHODS
from training.models import TrainingRun
from training.selectors import finished_training_runs, frozen_dataset_versions

PRESETS = (
    ("tiny", "tiny (64-pixel images, 2-layer towers: CPU demos and tests)"),
    ("vit-h", "vit-h (the paper's ViT-H-14)"),
)
PRECISIONS = (("bf16", "bf16"), ("fp16", "fp16"), ("fp32", "fp32"))
# Options the form does not ask for, and those left blank, per preset (TrainConfig's defaults otherwise).
PRESET_DEFAULTS = {
    "tiny": {"lr": 1e-3, "warmup_steps": 1, "num_workers": 0, "precision": "fp32", "val_every": 100},
    "vit-h": {"lr": 3e-6, "warmup_steps": 500, "num_workers": 4, "precision": "bf16", "val_every": 1000},
}
_OPTIONAL = ("lr", "warmup_steps", "precision", "val_every")
PATH_LENGTH = 500


def _integer(**options) -> forms.IntegerField:
    return forms.IntegerField(widget=forms.NumberInput({"class": "number"}), **options)


def _optional_path(label: str, help_text: str) -> forms.CharField:
    """A path on the GPU workers' shared storage, or blank."""
    return forms.CharField(label=label, required=False, max_length=PATH_LENGTH, help_text=help_text)


class TrainingRunForm(forms.Form):
    dataset_version = forms.ModelChoiceField(
        queryset=frozen_dataset_versions(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose a frozen dataset version: only frozen versions can be trained on."},
    )
    name = forms.SlugField(max_length=100, help_text="Letters, digits, - and _; unique; also the output folder's name.")
    preset = forms.ChoiceField(choices=PRESETS, initial="vit-h")
    steps = _integer(min_value=1, initial=30_000)
    batch_size = _integer(min_value=1, initial=128, help_text="Pairs per optimizer step.")
    grad_accumulation = _integer(label="Gradient accumulation", min_value=1, initial=1)
    lr = forms.FloatField(
        label="Learning rate", required=False, min_value=0, help_text="Blank: 1e-3 for tiny, 3e-6 for vit-h."
    )
    warmup_steps = _integer(required=False, min_value=0, help_text="Blank: 1 for tiny, 500 for vit-h.")
    precision = forms.ChoiceField(choices=(("", "preset default (fp32 tiny, bf16 vit-h)"), *PRECISIONS), required=False)
    activation_checkpointing = forms.BooleanField(required=False)
    freeze_lower_blocks = _integer(min_value=0, initial=0)
    init_checkpoint = _optional_path(
        "Init checkpoint path", "An MPS checkpoint on the GPU worker to start from (blank: the preset's backbone)."
    )
    val_every = _integer(
        label="Validation every K steps", required=False, min_value=1, help_text="Blank: 100 for tiny, 1000 for vit-h."
    )
    seed = _integer(min_value=0, initial=0)

    def clean_name(self) -> str:
        name = self.cleaned_data["name"]
        if TrainingRun.objects.filter(name=name).exists():
            raise forms.ValidationError(f"A training run named {name!r} exists already.")
        return name

    def clean(self) -> dict:
        data = super().clean()
        batch, accumulation = data.get("batch_size"), data.get("grad_accumulation")
        if batch and accumulation and batch % accumulation:
            self.add_error(
                "grad_accumulation",
                f"The batch size ({batch}) must split evenly into {accumulation} accumulation steps.",
            )
        return data

    def options(self) -> dict:
        """TrainConfig fields for `training_run_create` (call after `is_valid()`)."""
        data = self.cleaned_data
        preset = data["preset"]
        options = {
            **PRESET_DEFAULTS[preset],
            "preset": preset,
            "steps": data["steps"],
            "batch_size": data["batch_size"],
            "grad_accumulation": data["grad_accumulation"],
            "activation_checkpointing": data["activation_checkpointing"],
            "freeze_lower_blocks": data["freeze_lower_blocks"],
            "seed": data["seed"],
        }
        options.update({key: data[key] for key in _OPTIONAL if data.get(key) not in (None, "")})
        if data["init_checkpoint"].strip():
            options["init_checkpoint"] = data["init_checkpoint"].strip()
        return options


BENCHMARK_SET, BENCHMARK_VERSION = "set", "version"


def benchmark_choices() -> list:
    """Grouped choices: each frozen dataset version's MHP test split, then each imported benchmark."""
    versions = [(f"{BENCHMARK_VERSION}:{v.pk}", f"{v.name} (MHP test split)") for v in frozen_dataset_versions()]
    sets = [(f"{BENCHMARK_SET}:{s.pk}", f"{s.name} ({s.kind})") for s in EvaluationSet.objects.order_by("name")]
    return [("", "choose a benchmark"), ("MHP test splits", versions), ("Imported benchmarks", sets)]


class EvaluationRunForm(forms.Form):
    """Start an evaluation on the gpu queue: MPS (a finished run's best model, or any checkpoint path) or a
    baseline with its local weights, on the MHP test split of a frozen version or an imported benchmark."""

    method = forms.ChoiceField(choices=[(method, LABELS[method]) for method in METHODS], initial="mps")
    training_run = forms.ModelChoiceField(
        queryset=TrainingRun.objects.none(),
        required=False,
        label="MPS from training run",
        help_text="MPS: the best model of a succeeded run (or give a checkpoint path below).",
    )
    weights = _optional_path(
        "Weights path", "On the GPU workers' shared storage: a baseline's weights, or an MPS checkpoint."
    )
    aesthetic_clip = _optional_path("Aesthetic: CLIP ViT-L/14 path", "Only for aesthetic.")
    arch = _optional_path("Architecture", "open_clip name or JSON for clip, hpsv2, pickscore (blank: ViT-H-14).")
    benchmark = forms.ChoiceField(
        error_messages={"invalid_choice": "Unknown benchmark: choose an MHP test split or an imported benchmark."}
    )
    batch_size = _integer(min_value=1, max_value=4096, initial=16)
    allow_untrained_dimensions = forms.BooleanField(
        required=False,
        label="MPS: allow untrained dimensions",
        help_text="Score dimensions the checkpoint was not trained on (the published one: overall only); refused "
        "otherwise.",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["benchmark"].choices = benchmark_choices()
        self.fields["training_run"].queryset = finished_training_runs()

    def clean(self) -> dict:
        data = super().clean()
        run = data.get("training_run")
        if data.get("method") == "mps" and run is not None:
            data["weights"] = run.best_checkpoint
        elif run is not None:
            self.add_error("training_run", "A training run gives MPS weights: choose the method MPS, or no run.")
        if data.get("method") and not data.get("weights", "").strip():
            self.add_error("weights", "Give the path of the weights (or, for MPS, a finished training run).")
        return data

    def benchmark_target(self) -> dict:
        """`evaluation_set` or `dataset_version` for `evaluation_run_create` (call after `is_valid()`)."""
        kind, _, pk = self.cleaned_data["benchmark"].partition(":")
        if kind == BENCHMARK_VERSION:
            return {"dataset_version": frozen_dataset_versions().get(pk=pk)}
        return {"evaluation_set": EvaluationSet.objects.get(pk=pk)}


class PairScoringRunForm(forms.Form):
    """Start a pair scoring run on the gpu queue: a finished run's best model, or any checkpoint path."""

    training_run = forms.ModelChoiceField(
        queryset=TrainingRun.objects.none(),
        required=False,
        label="Best model of training run",
        help_text="Its dataset version's pairs are left out of the model disagreements (it was trained on them).",
    )
    checkpoint = _optional_path("Checkpoint path", "Or an MPS checkpoint on the GPU workers' shared storage.")
    batch_size = _integer(
        min_value=1,
        max_value=pair_scoring.MAX_BATCH_SIZE,
        initial=pair_scoring.BATCH_SIZE,
        help_text="Images per vision-tower batch.",
    )
    allow_untrained_dimensions = forms.BooleanField(
        required=False,
        label="Allow untrained dimensions",
        help_text="Score dimensions the checkpoint was not trained on (the published one: overall only).",
    )

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["training_run"].queryset = finished_training_runs()

    def clean(self) -> dict:
        data = super().clean()
        if bool(data.get("checkpoint", "").strip()) == (data.get("training_run") is not None):
            raise forms.ValidationError("Choose a training run or give a checkpoint path (one of the two).")
        return data
