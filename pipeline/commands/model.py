"""Model subcommands: ``train``, ``evaluate``, ``package``, ``golden``, ``eda``.

Registration only builds argparse parsers; scikit-learn, pandas and matplotlib are imported by the
handlers when they run.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT / "data"
DEFAULT_TRAIN = DATA_DIR / "adult.data.gz"
DEFAULT_TEST = DATA_DIR / "adult.test.gz"
DEFAULT_OUTPUT = REPO_ROOT / "build" / "model"
DEFAULT_RELEASED = REPO_ROOT / "model" / "model.tar.gz"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the model subcommands to the ``python -m pipeline`` parser."""
    train = subparsers.add_parser(
        "train",
        help="train a model and write the artifact directory (full model selection, or --quick)",
        description="Train on the UCI Adult files (or your own, see data/README.md) and write "
        "model.joblib + manifest.json + model_card.md to --output.",
    )
    train.add_argument(
        "--output", type=Path, default=DEFAULT_OUTPUT, help="artifact directory (default build/model)"
    )
    train.add_argument("--quick", action="store_true", help="one default fit, no CV or search (seconds)")
    train.add_argument(
        "--train", type=Path, action="append", help="training file(s) (default data/adult.data.gz)"
    )
    train.add_argument("--test", type=Path, action="append", help="test file(s) (default data/adult.test.gz)")
    train.add_argument("--no-test", action="store_true", help="do not score a test split")
    train.add_argument("--reports", type=Path, help="also write evaluation tables and figures here")
    train.add_argument(
        "--release",
        type=Path,
        help="also write <DIR>/model.tar.gz, <DIR>/manifest.json and <DIR>/golden_predictions.json "
        "(the committed release is model/); refused unless every tracked file outside model/ and "
        "docs/evaluation/ is committed",
    )
    train.add_argument("--overwrite", action="store_true", help="replace an existing artifact in --output")
    train.add_argument("--cv-folds", type=int, default=None, help="cross-validation folds (default 5)")
    train.add_argument(
        "--search-budget", type=float, default=None, help="seconds for the hyperparameter search"
    )
    train.add_argument(
        "--search-iterations", type=int, default=None, help="configurations sampled for the search"
    )
    train.add_argument("--candidates", default=None, help="comma list, e.g. lr,rf,hgb (default all three)")
    train.add_argument("--random-state", type=int, default=None)
    train.add_argument("--n-jobs", type=int, default=None, help="processes for CV folds (default 2)")
    train.set_defaults(func=_train)

    evaluate = subparsers.add_parser(
        "evaluate",
        help="score an artifact (directory or model.tar.gz) on the test split",
        description="Verify and load a model, score it on the test file, print the metrics as JSON.",
    )
    evaluate.add_argument("--model", type=Path, default=DEFAULT_RELEASED, help="artifact dir or model.tar.gz")
    evaluate.add_argument(
        "--test", type=Path, action="append", help="test file(s) (default data/adult.test.gz)"
    )
    evaluate.add_argument("--reports", type=Path, help="write figures and tables to this directory")
    evaluate.set_defaults(func=_evaluate)

    package = subparsers.add_parser(
        "package",
        help="verify an artifact directory and pack it as a deterministic model.tar.gz",
    )
    package.add_argument("--model-dir", type=Path, default=DEFAULT_OUTPUT, help="artifact directory")
    package.add_argument("--output", type=Path, required=True, help="path of the model.tar.gz to write")
    package.set_defaults(func=_package)

    golden = subparsers.add_parser(
        "golden",
        help="(re)write a release's golden_predictions.json from its fitted Pipeline, without retraining",
        description="Score the golden records (adult.test rows, missing-value spellings, edge values) "
        "with the artifact's scikit-learn Pipeline directly and write the fixture the serving tests use.",
    )
    golden.add_argument("--model", type=Path, default=DEFAULT_RELEASED, help="artifact dir or model.tar.gz")
    golden.add_argument("--output", type=Path, default=DEFAULT_RELEASED.parent / "golden_predictions.json")
    golden.set_defaults(func=_golden)

    eda = subparsers.add_parser("eda", help="exploratory figures and summary of the Adult data (docs/eda/)")
    eda.add_argument("--output", type=Path, default=REPO_ROOT / "docs" / "eda")
    eda.set_defaults(func=_eda)


def _fail(message: str) -> int:
    print(f"error: {message}", file=sys.stderr)
    return 1


def _train(args: argparse.Namespace) -> int:
    from pipeline.artifact import ArtifactError
    from pipeline.data import DataError
    from pipeline.progress import Progress
    from pipeline.training import config_from_options, train_to_directory

    try:
        # Checked before the minutes of training: the manifest records this commit, so it must be clean.
        release_commit = _clean_commit() if args.release else None
        config = config_from_options(
            quick=args.quick,
            cv_folds=args.cv_folds,
            search_budget_seconds=args.search_budget,
            search_iterations=args.search_iterations,
            candidates=args.candidates,
            random_state=args.random_state,
            n_jobs=args.n_jobs,
        )
        progress = Progress()
        if release_commit:
            progress(f"releasing from clean commit {release_commit}")
        test = None if args.no_test else (args.test or [DEFAULT_TEST])
        result, manifest = train_to_directory(
            args.train or [DEFAULT_TRAIN], test, config, args.output, progress, overwrite=args.overwrite
        )
        progress(f"artifact written to {args.output}")
        if args.reports:
            from pipeline.evaluation import write_training_reports

            write_training_reports(args.reports, result, manifest)
            progress(f"reports written to {args.reports}")
        if args.release:
            _release(args.output, args.release)
            progress(f"release written to {args.release}")
    except (DataError, ArtifactError, ValueError) as exc:
        return _fail(str(exc))
    return 0


def _clean_commit() -> str:
    from pipeline.manifest import require_clean_tree

    return require_clean_tree()


def _release(model_dir: Path, release_dir: Path) -> None:
    import shutil

    from pipeline.artifact import MANIFEST_FILE, load_artifact, package_model
    from pipeline.golden import GOLDEN_FILE, build_golden, write_golden

    release_dir.mkdir(parents=True, exist_ok=True)
    package_model(model_dir, release_dir / "model.tar.gz")
    shutil.copyfile(model_dir / MANIFEST_FILE, release_dir / MANIFEST_FILE)
    write_golden(build_golden(load_artifact(model_dir), DEFAULT_TEST), release_dir / GOLDEN_FILE)


def _golden(args: argparse.Namespace) -> int:
    from pipeline.artifact import ArtifactError, load_artifact, safe_extract
    from pipeline.data import DataError
    from pipeline.golden import build_golden, write_golden

    try:
        with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
            model_dir = args.model
            if args.model.is_file():
                model_dir = safe_extract(args.model, Path(tmp) / "model")
            document = build_golden(load_artifact(model_dir), DEFAULT_TEST)
    except (DataError, ArtifactError, ValueError) as exc:
        return _fail(str(exc))
    print(write_golden(document, args.output))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from pipeline.artifact import ArtifactError, load_artifact, safe_extract
    from pipeline.data import DataError, load_dataset
    from pipeline.evaluation import evaluate_artifact

    try:
        with tempfile.TemporaryDirectory(prefix="evaluate-") as tmp:
            model_dir = args.model
            if args.model.is_file():
                model_dir = safe_extract(args.model, Path(tmp) / "model")
            artifact = load_artifact(model_dir)
            test = load_dataset(args.test or [DEFAULT_TEST], artifact.schema)
            report = evaluate_artifact(artifact, test, args.reports)
    except (DataError, ArtifactError, ValueError) as exc:
        return _fail(str(exc))
    print(json.dumps(report, indent=2))
    return 0


def _package(args: argparse.Namespace) -> int:
    from pipeline.artifact import ArtifactError, package_model

    try:
        path = package_model(args.model_dir, args.output)
    except ArtifactError as exc:
        return _fail(str(exc))
    print(path)
    return 0


def _eda(args: argparse.Namespace) -> int:
    from pipeline.eda import write_eda

    for path in write_eda(args.output):
        print(path)
    return 0
