"""The `raygm` command line."""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from dataclasses import MISSING, fields
from typing import get_type_hints

from tqdm import tqdm

from .core.choices import UnknownChoice
from .core.config import ConfigError, RunConfig, field_type
from .core.data import DatasetError
from .core.distill import Diverged
from .core.eval_protocol import PROTOCOLS
from .core.files import beside, check_replaceable, replace_folder
from .core.driver import Reporter, run_to_end
from .core.records import Progress, Report
from .studies.store import LaunchError
from .studies.study_file import StudyError


def _flag_type(hint):
    """argparse type for a config field: tuples are comma-separated lists."""
    item, is_tuple = field_type(hint)
    if is_tuple:
        return lambda text: tuple(item(v) for v in text.split(",") if v)
    return item


def add_config_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per RunConfig field; unset flags keep the config's defaults."""
    hints = get_type_hints(RunConfig)
    for f in fields(RunConfig):
        default = "" if f.default is MISSING or f.default is None else f" (default {f.default})"
        choices = f.metadata.get("choices")
        parser.add_argument("--" + f.name.replace("_", "-"), dest=f.name,
                            type=_flag_type(hints[f.name]), default=argparse.SUPPRESS,
                            help=f.metadata.get("help", "") + default
                            + (f"; one of {', '.join(choices)}" if choices else ""))


def config_from_args(args: argparse.Namespace) -> RunConfig:
    names = {f.name for f in fields(RunConfig)}
    return RunConfig(**{k: v for k, v in vars(args).items() if k in names})


class ProgressBar(Reporter):
    """tqdm over iterations; says when it is evaluating and prints each accuracy."""

    def __init__(self, config: RunConfig):
        self.config = config
        self.bar = tqdm(total=config.iterations, desc="distill", unit="it", dynamic_ncols=True)

    def evaluating(self, iteration: int) -> None:
        self.bar.set_description(f"evaluating {self.config.eval_models} networks x "
                                 f"{len(self.config.eval_architectures)} architectures")
        self.bar.refresh()

    def log(self, report: Report) -> None:
        for e in report.evaluations:
            self.bar.write(f"iteration {e.iteration}: {e.arch} accuracy {100 * e.acc_mean:.2f} "
                           f"± {100 * e.acc_std:.2f}% ({e.seconds_per_model:.1f} s per network)")
        self.bar.set_description("distill")
        if report.step is not None:
            self.bar.set_postfix(loss=f"{report.step.loss:.2f}", s_it=f"{report.step.seconds:.2f}")
            self.bar.update()

    def close(self, progress: Progress) -> None:
        self.bar.close()


def cmd_distill(args: argparse.Namespace) -> None:
    from .core.data import load_dataset
    from .core.distill import Distillation
    from .core.outputs import RUN_FOLDER, RunFiles

    config = config_from_args(args)
    out = Path(args.out)
    earlier = out.exists() and (not out.is_dir() or any(out.iterdir()))
    if earlier and not args.overwrite:
        raise FileExistsError(f"--out {out} holds an earlier run (or is a file): choose a new "
                              "folder, or pass --overwrite to replace it")
    if earlier:
        check_replaceable(out, "--out", RUN_FOLDER)
    baseline = read_baseline(args.baseline) if args.baseline else None
    data = load_dataset(config.dataset, args.data_dir, download=not args.no_download)
    run = Distillation(config, data)  # checks that the data serve the config
    # an earlier run is replaced only by a complete one: the new run is written beside it
    target = beside(out) if earlier else out
    try:
        progress = run_to_end(run, [RunFiles(target, run.config, data, baseline),
                                    ProgressBar(config)])
    except BaseException:
        if earlier:
            shutil.rmtree(target, ignore_errors=True)
        raise
    if earlier:
        replace_folder(out, target)
    print(f"wrote {args.out} ({progress.wall_seconds:.0f} s)")


def read_baseline(path: str) -> float:
    """The accuracy in a `raygm baseline` JSON file, or a clear error."""
    try:
        accuracy = json.loads(Path(path).read_text())["accuracy"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FileNotFoundError(f"--baseline {path}: not a `raygm baseline` JSON file with an "
                                f"'accuracy' ({type(exc).__name__}: {exc})") from None
    if not isinstance(accuracy, (int, float)) or not 0 < accuracy <= 1:
        raise FileNotFoundError(f"--baseline {path}: 'accuracy' = {accuracy!r}; allowed: a "
                                "fraction in (0, 1]")
    return float(accuracy)


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is invalid; allowed: an integer >= 1")
    return value


def folder_path(text: str) -> str:
    """A path given for an output (argparse type): an empty one would be the working
    directory."""
    if not text.strip():
        raise argparse.ArgumentTypeError("'' is invalid; allowed: a folder path")
    return text


def study_folder(text: str) -> str:
    """A folder that holds a launched study (argparse type: a usage error otherwise)."""
    from .studies.store import StudyFolder

    folder = StudyFolder(text)
    if not folder.has_experiment() and not folder.claimed():
        raise argparse.ArgumentTypeError(f"{text} holds no Ray Tune study (no experiment "
                                         "state); allowed: a study folder (storage/name)")
    return text


def field_value(text: str) -> tuple[str, object]:
    """--where FIELD=VALUE, the value in YAML."""
    from .studies.study_file import read_raw

    key, sep, value = text.partition("=")
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"{text!r} is invalid; allowed: FIELD=VALUE, e.g. "
                                         "--where model=MLP")
    try:
        return key, read_raw(value, f"--where {key}")
    except StudyError as exc:  # argparse would hide the message of a ValueError
        raise argparse.ArgumentTypeError(str(exc)) from None


def trial_choice(text: str) -> str:
    """--trials all | best:K."""
    prefix, _, k = text.partition(":")
    if text != "all" and (prefix != "best" or not k.isdigit() or int(k) < 1):
        raise argparse.ArgumentTypeError(f"{text!r} is invalid; allowed: all, best:K (K >= 1)")
    return text


def cmd_baseline(args: argparse.Namespace) -> None:
    from .core.data import load_dataset
    from .core.distill import resolve_device
    from .core.evaluate import full_data_baseline

    config = config_from_args(args)
    data = load_dataset(config.dataset, args.data_dir, download=not args.no_download)
    start = time.perf_counter()
    acc = full_data_baseline(data, config.model, config, args.epochs, resolve_device(config.device))
    result = {"dataset": config.dataset, "model": config.model, "epochs": args.epochs,
              "accuracy": acc, "seconds": time.perf_counter() - start}
    print(json.dumps(result))
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f)


def cmd_study(args: argparse.Namespace) -> None:
    from .studies import launch, status
    from .studies.export import export_study
    from .studies.store import StudyFolder

    if args.action == "status":
        rows = status.trial_table(args.path)
        print(status.format_table(rows))
        updated = StudyFolder(args.path).status().get("updated")
        if updated and any(r["status"] == "RUNNING" for r in rows):
            print(f"(RUNNING as the study's driver last reported, {time.time() - updated:.0f} s "
                  "ago; if it has stopped, `raygm study resume` continues the study)")
        front = status.pareto_front(args.path)
        if front:
            print("\nOptuna's best trials (the Pareto front of the two objectives):"
                  if len(front[0]["values"]) == 2 else "\nOptuna's best trial:")
            print(status.format_table(front))
        return
    if args.action == "launch":
        results = launch.launch(args.path, args.storage, args.address, args.data_dir,
                                args.optuna_storage, overrides=args.set,
                                download=not args.no_download, require_gpu=args.require_gpu,
                                shared_storage=args.shared_storage)
    else:
        results = launch.resume(args.path, args.address)
    path = results.experiment_path
    study = StudyFolder(path).study()
    stopped = status.stopped(path)
    if not stopped and study.confirm and not results.errors:
        from .studies.reevaluation import Interrupted, confirm_study

        try:
            confirm_study(path, study.confirm)
        except Interrupted as exc:
            stopped = f"the confirmation stopped: {exc}"
    print(status.format_table(status.trial_table(path)))
    print(f"study: {path}\nresults: {export_study(path)}")
    if stopped:
        sys.exit(f"raygm study: {stopped}; `raygm study resume {path}` continues it")
    if results.errors:
        sys.exit(f"raygm study: {len(results.errors)} trial(s) failed; "
                 f"`raygm study resume {results.experiment_path}` retries them")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .studies.reevaluation import Interrupted, evaluate_study
    from .studies.export import export_study, is_export

    try:
        evaluate_study(args.path, args.trials, args.archs, args.models, args.protocol,
                       args.epochs, args.address, where=dict(args.where),
                       data_dir=args.data_dir, download=False if args.no_download else None,
                       skip_missing=args.skip_missing)
    except Interrupted as exc:
        sys.exit(f"raygm evaluate: stopped: {exc}; the same command evaluates them")
    if is_export(args.path):
        print(f"updated {args.path}")
    else:
        print(f"wrote {export_study(args.path)}")


def cmd_export(args: argparse.Namespace) -> None:
    from .studies.export import export_study

    print(f"wrote {export_study(args.path, args.to)}")


# Mistakes in what the user gave (flags, files, data, folders), and a run whose settings
# made it diverge: a message, no traceback.
USER_ERRORS = (ConfigError, StudyError, UnknownChoice, DatasetError, FileNotFoundError,
               FileExistsError, LaunchError, Diverged)


def _distill_command(sub, common) -> None:
    """raygm distill: one synthetic set, into a run folder."""
    distill = sub.add_parser("distill", parents=[common], help="distil one synthetic set")
    add_config_flags(distill)
    distill.add_argument("--out", required=True, type=folder_path,
                         help="output folder (new, or empty)")
    distill.add_argument("--overwrite", action="store_true",
                         help="replace --out if it holds an earlier raygm distill run (the "
                              "new run is written beside it and takes its place when complete)")
    distill.add_argument("--baseline", help="baseline JSON from `raygm baseline`: adds "
                                            "accuracy retained to evaluations")
    distill.set_defaults(func=cmd_distill)


def _baseline_command(sub, common) -> None:
    """raygm baseline: one network on the whole real train split."""
    baseline = sub.add_parser("baseline", parents=[common],
                              help="train one network on the whole real train split")
    add_config_flags(baseline)
    baseline.add_argument("--epochs", type=positive_int, default=5)
    baseline.add_argument("--out", help="write the result as JSON here")
    baseline.set_defaults(func=cmd_baseline)


def _study_commands(sub, common) -> None:
    """raygm study launch | resume | status."""
    study = sub.add_parser("study", help="launch, resume or inspect a study on Ray")
    actions = study.add_subparsers(dest="action", required=True)
    launch = actions.add_parser("launch", parents=[common], help="start a study from a YAML file")
    launch.add_argument("path", metavar="FILE", help="study file, e.g. studies/smoke.yaml")
    launch.add_argument("--storage", help="where studies go: a folder (default runs/studies) "
                                          "or any URI Ray Tune accepts (s3://, gs://, ...)")
    launch.add_argument("--optuna-storage", help="Optuna storage URL (default: SQLite "
                                                 "optuna.db in the study folder)")
    launch.add_argument("--set", action="append", metavar="KEY=VALUE", default=[],
                        help="override a study key or a fixed run-config field (YAML value), "
                             "e.g. --set iterations=10 --set eval_at=[0,10] --set repeats=1")
    launch.add_argument("--require-gpu", action="store_true",
                        help="keep the study's GPU requests on a cluster without GPUs (trials "
                             "wait for GPU nodes, e.g. an autoscaling cluster's); default: run "
                             "them on the CPU there")
    launch.add_argument("--shared-storage", action="store_true",
                        help="--storage is a folder every node sees at the same path (NFS); "
                             "without it a local folder is refused on a multi-node cluster")
    resume = actions.add_parser("resume", help="continue an interrupted study")
    resume.add_argument("path", metavar="PATH", type=study_folder,
                        help="the study folder (storage/name)")
    for action in (launch, resume):
        action.add_argument("--address", help="Ray cluster: 'auto' or ray://host:port "
                                              "(default: a local Ray started in-process)")
    status = actions.add_parser("status", help="print a table of the study's trials")
    status.add_argument("path", metavar="PATH", type=study_folder,
                        help="the study folder (storage/name)")
    study.set_defaults(func=cmd_study)


def _evaluate_command(sub, common) -> None:
    """raygm evaluate: a study's (or results folder's) saved sets again."""
    evaluate = sub.add_parser("evaluate", parents=[common],
                              help="re-evaluate a study's saved synthetic sets "
                                   "(confirmation, other architectures)")
    evaluate.add_argument("path", metavar="STUDY", help="the study folder (storage/name), or "
                                                        "a folder its results were exported to "
                                                        "(then --data-dir gives the data)")
    evaluate.add_argument("--trials", default="best:3", type=trial_choice,
                          help="all, or best:K: every seed of the K best configurations by the "
                               "study's first objective (default best:3)")
    evaluate.add_argument("--where", action="append", metavar="FIELD=VALUE", default=[],
                          type=field_value,
                          help="only trials whose run config has this value (YAML), before "
                               "--trials chooses, e.g. --where model=MLP; repeatable")
    evaluate.add_argument("--archs", type=lambda text: tuple(a for a in text.split(",") if a),
                          help="architectures, e.g. ConvNet,MLP,LeNet (default: each trial's)")
    evaluate.add_argument("--models", type=positive_int, default=10,
                          help="networks per evaluation (default 10)")
    evaluate.add_argument("--protocol", default="full", choices=list(PROTOCOLS),
                          help="full: DC's (raygm/eval_protocol.py: e.g. MNIST 1000 epochs "
                               "with crop/scale/rotate, FashionMNIST 300 without); study: "
                               "the trial's own settings")
    evaluate.add_argument("--epochs", type=positive_int,
                          help="epochs per network (default: the protocol's)")
    evaluate.add_argument("--address", help="Ray cluster (default: the study's)")
    evaluate.add_argument("--skip-missing", action="store_true",
                          help="evaluate the chosen trials that still have a synthetic set and "
                               "name the others (default: refuse if any has none)")
    evaluate.set_defaults(func=cmd_evaluate)


def _export_command(sub) -> None:
    """raygm export: a study's results as Parquet."""
    export = sub.add_parser("export", help="write a study's results as Parquet "
                                           "(PATH/results; also done when a study ends)")
    export.add_argument("path", metavar="PATH", type=study_folder,
                        help="the study folder (storage/name)")
    export.add_argument("--to", metavar="DIR", type=folder_path,
                        help="write the results here instead of PATH/results (e.g. a "
                             "results folder committed with a generated page): a new or empty "
                             "folder, or an export of the same study, which it replaces")
    export.set_defaults(func=cmd_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="raygm", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", help="dataset folder (default $RAYGM_DATA_DIR, "
                                           "else ~/.cache/raygm/data)")
    common.add_argument("--no-download", action="store_true",
                        help="fail instead of downloading missing dataset files")
    for command in (_distill_command, _baseline_command, _study_commands, _evaluate_command):
        command(sub, common)
    _export_command(sub)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except USER_ERRORS as exc:
        sys.exit(f"raygm {args.command}: error: {exc}")


if __name__ == "__main__":
    main()
