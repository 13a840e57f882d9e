from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.images.services.pair_builder import PairBuildSummary, pairs_build
from annotation.models import PairKind


class Command(BaseCommand):
    help = (
        "Build image pairs for accepted prompts: about 80% across generators, 20% within one, deterministic per seed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--per-prompt", type=int, default=6, help="pairs each prompt should have (default 6)")
        parser.add_argument("--cross-share", type=float, default=0.8, help="share of cross-generator pairs (0-1)")
        parser.add_argument("--seed", type=int, default=0, help="same seed and same data give the same pairs")
        parser.add_argument("--prompt-ids", type=int, nargs="+", help="only these prompts (default: all accepted)")

    def handle(self, *args, per_prompt: int, cross_share: float, seed: int, prompt_ids: list[int] | None, **options):
        with tqdm(unit="prompts", disable=options["verbosity"] < 1, file=self.stderr) as bar:
            try:
                summary = pairs_build(
                    per_prompt=per_prompt,
                    cross_share=cross_share,
                    seed=seed,
                    prompt_ids=prompt_ids,
                    progress=bar.update,
                )
            except ValueError as error:
                raise CommandError(str(error)) from None
        self._report(summary)

    def _report(self, summary: PairBuildSummary) -> None:
        cross = summary.created[PairKind.CROSS_GENERATOR]
        same = summary.created[PairKind.SAME_GENERATOR]
        self.stdout.write(
            f"{summary.total_created} pairs created ({cross} cross-generator, {same} same-generator) "
            f"for {summary.prompts_paired} of {summary.prompts_seen} prompts"
        )
        for reason, count in sorted(summary.skipped.items()):
            examples = ", ".join(str(pk) for pk in summary.skipped_examples[reason])
            more = " ..." if count > len(summary.skipped_examples[reason]) else ""
            self.stdout.write(f"  skipped {count} prompts: {reason} (ids {examples}{more})")
