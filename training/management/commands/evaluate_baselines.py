import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from annotation.dimensions import DIMENSION_KEYS
from datasets.models import EvaluationSet
from training.baselines.base import BaselineError
from training.baselines.registry import METHODS
from training.baselines.tables import BENCHMARK_DIMENSION, format_results
from training.evaluation.jobs import evaluation_run_score
from training.evaluation.metrics import ALL_SPLITS
from training.evaluation.readers import AnnotationFileError
from training.evaluation.run import check_images, prompt_groups
from training.evaluation.runs import evaluation_run_recorded
from training.evaluation.sources import EXPORT_PREFIX, evaluation_set_benchmark, export_benchmark
from training.management.progress import bar_progress


def parse_methods(values: list[str]) -> list[tuple[str, str]]:
    """``["clip=/w/clip.bin", ...]`` -> ``[("clip", "/w/clip.bin"), ...]``; unknown or repeated names refused."""
    methods: dict[str, str] = {}
    for value in values:
        name, separator, path = value.partition("=")
        if not separator or not path:
            raise CommandError(f"--method takes NAME=PATH, got {value!r}")
        if name not in METHODS:
            raise CommandError(f"unknown method {name!r}; expected one of {', '.join(METHODS)}")
        if name in methods:
            raise CommandError(f"--method {name} given twice")
        if not Path(path).exists():
            raise CommandError(f"{name}: nothing at {path}")
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
        parser.add_argument("--device", help="cpu, cuda, cuda:1... (default: cuda when available)")
        parser.add_argument("--batch-size", type=int, default=16)
        parser.add_argument(
            "--allow-untrained-dimensions",
            action="store_true",
            help="score dimensions the checkpoint was not trained on (refused otherwise)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def handle(self, *args, benchmark, method, split, images, tie_threshold, **options):
        from training.mps import CheckpointError  # torch: only when this command runs

        tie_threshold = None if tie_threshold is None else float(tie_threshold)  # call_command skips `type=`
        if tie_threshold is not None and not 0 <= tie_threshold <= 1:
            raise CommandError(f"--tie-threshold is a probability gap in 0-1, got {tie_threshold}")
        methods = parse_methods(method)
        try:
            sources = [self._benchmark(spec, split, images, tie_threshold) for spec in dict.fromkeys(benchmark)]
            for source, _, _ in sources:  # every image present before any model loads
                check_images(source.image_root, prompt_groups(source))
            results = []
            for name, path in methods:
                scorer = self._load(name, path, options)
                for source, dimensions, links in sources:
                    results.append(self._evaluate(name, path, scorer, source, dimensions, links, split, tie_threshold,
                                                  options))  # fmt: skip
        except (AnnotationFileError, BaselineError, CheckpointError, ValueError, OSError) as error:
            raise CommandError(str(error)) from None
        if options["json"]:
            self.stdout.write(json.dumps({"results": results}, indent=2))
        else:
            rows = [
                {"method": result["method"], "benchmark": result["benchmark"], "metrics": result} for result in results
            ]
            self.stdout.write(format_results(rows))

    def _benchmark(self, spec, split, images, tie_threshold):
        """(Benchmark, dimensions, EvaluationRun links): MHP pair sets on the four dimensions, the external
        benchmarks on ``overall`` (a baseline's score is the same for every dimension anyway)."""
        if spec.startswith(EXPORT_PREFIX):
            root = Path(images or settings.MEDIA_ROOT)
            dimensions = list(DIMENSION_KEYS)
            source = export_benchmark(spec, dimensions, images=root, split=split, tune_on_val=tie_threshold is None)
            return source, dimensions, {}
        own_root = EvaluationSet.objects.filter(name=spec).values_list("image_root", flat=True).first()
        source, evaluation_set = evaluation_set_benchmark(
            spec, [BENCHMARK_DIMENSION], images=None if own_root else (Path(images) if images else None)
        )
        return source, [BENCHMARK_DIMENSION], {"evaluation_set": evaluation_set}

    def _load(self, name, path, options):
        from training.baselines.registry import load_method

        if options["verbosity"] >= 1:
            self.stderr.write(f"loading {name} from {path}")
        return load_method(
            name,
            path,
            architecture=options["arch"],
            aesthetic_clip=options["aesthetic_clip"],
            aesthetic_architecture=options["aesthetic_arch"],
            device=options["device"],
            batch_size=options["batch_size"],
            allow_untrained_dimensions=options.get("allow_untrained_dimensions", False),
        )

    def _evaluate(self, name, path, scorer, source, dimensions, links, split, tie_threshold, options):
        config = {"dimensions": dimensions, "split": split, "images": str(source.image_root),
                  "arch": options["arch"], "aesthetic_clip": options["aesthetic_clip"]}  # fmt: skip
        with (
            evaluation_run_recorded(
                method=name, benchmark=source.name, checkpoint_path=str(path), config=config, **links
            ) as run,  # fmt: skip
            tqdm(
                desc=f"{name} on {source.name}", unit="prompts", disable=options["verbosity"] < 1, file=self.stderr
            ) as bar,  # fmt: skip
        ):
            return evaluation_run_score(run=run, source=source, scorer=scorer, dimensions=dimensions,
                                        tie_threshold=tie_threshold, progress=bar_progress(bar))  # fmt: skip
