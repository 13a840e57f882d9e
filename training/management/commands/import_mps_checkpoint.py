from django.core.management.base import BaseCommand, CommandError

from annotation.dimensions import DIMENSION_KEYS


class Command(BaseCommand):
    help = (
        "Convert an MPS checkpoint (the published whole-module pickle, a state dict in .pth/.bin/.safetensors, "
        "or the project's format) into the project's format: safetensors weights + JSON config."
    )

    def add_arguments(self, parser):
        parser.add_argument("src", help="checkpoint to read")
        parser.add_argument("dest", help="a directory, or a path ending in .safetensors (config written beside it)")
        parser.add_argument("--architecture", help="open_clip model name, for a bare state dict (e.g. ViT-H-14)")
        parser.add_argument(
            "--trained-dimension",
            action="append",
            choices=DIMENSION_KEYS,
            help="repeatable: the dimensions a file in the authors' layout was trained on (default: overall, "
            "as the published release); the project's own format records them itself",
        )

    def handle(self, *args, src: str, dest: str, architecture: str | None, **options):
        from training.mps import CheckpointError, convert_checkpoint

        try:
            config_path = convert_checkpoint(
                src, dest, architecture=architecture, trained_dimensions=options.get("trained_dimension")
            )
        except (CheckpointError, FileNotFoundError) as error:
            raise CommandError(str(error)) from None
        self.stdout.write(f"wrote {dest} (config: {config_path})")
