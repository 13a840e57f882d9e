"""The "start a training run" form: validates the options a staff member gives and turns them into the
TrainConfig fields that `training_run_create` takes. Fields left blank take the preset's defaults."""

from django import forms

from training.models import TrainingRun
from training.selectors import frozen_dataset_versions

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
_NUMBER = {"class": "number"}


class TrainingRunForm(forms.Form):
    dataset_version = forms.ModelChoiceField(
        queryset=frozen_dataset_versions(),
        empty_label=None,
        error_messages={"invalid_choice": "Choose a frozen dataset version: only frozen versions can be trained on."},
    )
    name = forms.SlugField(max_length=100, help_text="Letters, digits, - and _; unique; also the output folder's name.")
    preset = forms.ChoiceField(choices=PRESETS, initial="vit-h")
    steps = forms.IntegerField(min_value=1, initial=30_000, widget=forms.NumberInput(_NUMBER))
    batch_size = forms.IntegerField(
        min_value=1, initial=128, help_text="Pairs per optimizer step.", widget=forms.NumberInput(_NUMBER)
    )
    grad_accumulation = forms.IntegerField(
        label="Gradient accumulation", min_value=1, initial=1, widget=forms.NumberInput(_NUMBER)
    )
    lr = forms.FloatField(
        label="Learning rate", required=False, min_value=0, help_text="Blank: 1e-3 for tiny, 3e-6 for vit-h."
    )
    warmup_steps = forms.IntegerField(
        required=False, min_value=0, help_text="Blank: 1 for tiny, 500 for vit-h.", widget=forms.NumberInput(_NUMBER)
    )
    precision = forms.ChoiceField(choices=(("", "preset default (fp32 tiny, bf16 vit-h)"), *PRECISIONS), required=False)
    activation_checkpointing = forms.BooleanField(required=False)
    freeze_lower_blocks = forms.IntegerField(min_value=0, initial=0, widget=forms.NumberInput(_NUMBER))
    init_checkpoint = forms.CharField(
        label="Init checkpoint path",
        required=False,
        max_length=500,
        help_text="An MPS checkpoint on the GPU worker to start from (blank: the preset's backbone).",
    )
    val_every = forms.IntegerField(
        label="Validation every K steps",
        required=False,
        min_value=1,
        help_text="Blank: 100 for tiny, 1000 for vit-h.",
        widget=forms.NumberInput(_NUMBER),
    )
    seed = forms.IntegerField(min_value=0, initial=0, widget=forms.NumberInput(_NUMBER))

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
