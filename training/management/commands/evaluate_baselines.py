import json
from functools import partial

from django.core.management.base import BaseCommand, CommandError

from annotation.dimensions import DIMENSION_KEYS
from training.baselines.registry import METHODS
from training.baselines.tables import BENCHMARK_DIMENSION, format_results
from training.evaluation.jobs import (
    EvaluationError,
    EvaluationOptions,
    LastScorer,
    evaluation_images_check,
    evaluation_run_create,
    evaluation_target,
    evaluation_weights_check,
)
from training.evaluation.metrics import ALL_SPLITS
from training.management.evaluation import add_scoring_arguments, evaluation_run_here


def parse_methods(values: list[str]) -> list[tuple[str, str]]:
    """``["clip=/w/clip.bin", ...]`` -> ``[("clip", "/w/clip.bin"), ...]``; a repeated name is refused."""
    methods: dict[str, str] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not path:
            raise CommandError(f"--method takes NAME=PATH, got {value!r}")
        if name in methods:
            raise CommandError(f"--method {name} given twice")
        methods[name] = path
    return list(methods.items())


class Command(BaseCommand):
    help = (
        "Evaluate baselines (CLIP score, LAION aesthetic, HPS v2, PickScore, ImageReward) and MPS from local "
        "weights on imported benchmarks and MHP exports with the same protocols; one EvaluationRun per "
        "method and benchmark; prints methods x benchmarks and, for pairs:, methods x dimensions."
    )

    def add_arguments(self, parser):
        parser.add_argument("--benchmark", action="append", required=True, metavar="NAME",
                            help="EvaluationSet name or pairs:EXPORT_DIR; repeatable")  # fmt: skip
        parser.add_argument("--method", action="append", required=True, metavar="NAME=PATH",
                            help=f"repeatable; NAME one of {', '.join(METHODS)}")  # fmt: skip
        parser.add_argument("--arch", help="open_clip model name or JSON for clip/hpsv2/pickscore (default ViT-H-14)")
        parser.add_argument("--aesthetic-clip", help="the CLIP ViT-L/14 weights the aesthetic MLP runs on")
        parser.add_argument("--aesthetic-arch", help="its open_clip architecture (default ViT-L-14-quickgelu)")
        parser.add_argument("--split", default="test", choices=("train", "val", "test", ALL_SPLITS), help="pairs:")
        parser.add_argument("--images", help="image root of pairs: (default MEDIA_ROOT) and of sets without one")
        parser.add_argument("--tie-threshold", type=float, help="pair sets; default: tuned on the export's val split")
        add_scoring_arguments(parser)

    def handle(self, *args, benchmark, method, split, images, tie_threshold, **options):
        methods = parse_methods(method)
        common = {"arch": options["arch"] or "", "aesthetic_clip": options["aesthetic_clip"] or "",
                  "aesthetic_arch": options["aesthetic_arch"] or "", "device": options["device"] or "",
                  "batch_size": options["batch_size"], "split": split, "tie_threshold": tie_threshold,
                  "allow_untrained_dimensions": options.get("allow_untrained_dimensions", False)}  # fmt: skip
        try:
            for name, path in methods:
                evaluation_weights_check(name, path, EvaluationOptions(**common))
            targets = [(spec, *self._target(spec, images, common)) for spec in dict.fromkeys(benchmark)]
            for _, target, evaluation in targets:  # every image present before any model loads
                evaluation_images_check(options=evaluation, dimensions=evaluation.dimensions, **target)
        except EvaluationError as error:
            raise CommandError(str(error)) from None
        scorers = LastScorer()  # a method is loaded once for all the benchmarks
        results = []
        for name, path in methods:
            for spec, target, evaluation in targets:
                create = partial(evaluation_run_create, method=name, weights=path, options=evaluation, enqueue=False,
                                 **target)  # fmt: skip
                results.append(evaluation_run_here(create, verbosity=options["verbosity"], stderr=self.stderr,
                                                   desc=f"{name} on {spec}", scorers=scorers))  # fmt: skip
        if options["json"]:
            self.stdout.write(json.dumps({"results": results}, indent=2))
        else:
            rows = [
                {"method": result["method"], "benchmark": result["benchmark"], "metrics": result} for result in results
            ]
            self.stdout.write(format_results(rows))

    def _target(self, spec, images, common):
        """(benchmark, options): MHP pair sets on the four dimensions, the external benchmarks on ``overall``
        (a baseline's score is the same for every dimension anyway); --images is the root of the exports and
        of the sets imported without one."""
        target = evaluation_target(spec)
        evaluation_set = target.get("evaluation_set")
        if evaluation_set is None:
            return target, EvaluationOptions(**common, images=str(images or ""), dimensions=list(DIMENSION_KEYS))
        own_root = bool(evaluation_set.image_root)
        return target, EvaluationOptions(
            **common, images="" if own_root else str(images or ""), dimensions=[BENCHMARK_DIMENSION]
        )
