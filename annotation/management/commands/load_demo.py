from django.core.management.base import BaseCommand

from annotation.demo import demo_load


class Command(BaseCommand):
    help = "Load the demo project (real prompts, generators, placeholder images, pairs, demo users)."

    def handle(self, *args, **options):
        summary = demo_load()
        self.stdout.write(
            f"Demo loaded: {summary.prompts_created} new prompts, {summary.images_created} new images, "
            f"{summary.pairs_created} new pairs."
        )
        for username, password in summary.passwords.items():
            self.stdout.write(f"  log in as {username} / {password}")
