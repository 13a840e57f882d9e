from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from annotation.dimensions import DIMENSION_KEYS
from training.management.evaluation import add_scoring_arguments


class Command(BaseCommand):
    help = "Score images for a prompt with an MPS checkpoint, on one or more dimensions, and print a table."

    def add_arguments(self, parser):
        parser.add_argument("images", nargs="+", metavar="IMAGE")
        parser.add_argument("--prompt", required=True)
        parser.add_argument("--checkpoint", required=True)
        parser.add_argument("--dimension", action="append", choices=DIMENSION_KEYS, help="repeatable; default: overall")
        add_scoring_arguments(parser)

    def handle(self, *args, images, prompt, checkpoint, dimension, device, batch_size, json, **options):
        allow_untrained = options.get("allow_untrained_dimensions", False)
        from training.mps import CheckpointError, format_scores_table, score_images

        missing = [path for path in images if not Path(path).is_file()]
        if missing:
            raise CommandError(f"no such image file: {', '.join(missing)}")
        try:
            result = score_images(
                checkpoint,
                prompt,
                images,
                dimension or ["overall"],
                device=device,
                batch_size=batch_size,
                allow_untrained_dimensions=allow_untrained,
            )
        except (CheckpointError, ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        if json:
            import json as json_module

            self.stdout.write(json_module.dumps(result, indent=2))
        else:
            self.stdout.write(format_scores_table(result))
