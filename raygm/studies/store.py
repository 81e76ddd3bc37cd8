"""A study folder and every file in it, named here and nowhere else:

    STUDY/study.yaml      the study file as launched (its --set overrides applied)
    STUDY/.raygm          the marker: a raygm study folder (files.MARKER), taken at launch
    STUDY/launch.json     how it was launched: LaunchInfo, versioned, with study.yaml's hash
    STUDY/status.json     the driver's live view of its trials (status.LiveStatus)
    STUDY/finished/       the final report of each configuration and seed run to its end
    STUDY/evaluations/    one JSON per re-evaluated network (`raygm evaluate`, confirm)
    STUDY/optuna.db       a search's Optuna storage (SQLite), unless launched with another
    STUDY/results/        where `raygm study export` writes by default (export.py's files)
    STUDY/...             Ray Tune's experiment: its state, trial folders, checkpoints

Launch, resume, status, evaluate and export read and write through StudyFolder.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import posixpath
import shutil
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

import pyarrow.fs
import yaml

from ..core.config import RunConfig
from ..core.files import MARKER, absolute, filesystem, mark, marked, read_text, write_atomic
from ..core.records import EvaluationRecord
from .study_file import Study, parse_study, read_raw

STUDY_FILE = "study.yaml"
LAUNCH_FILE = "launch.json"
STATUS_FILE = "status.json"
FINISHED = "finished"
EVALUATIONS = "evaluations"
OPTUNA_DB = "optuna.db"
RESULTS = "results"
STUDY_FOLDER = "raygm study folder"  # its files.MARKER
# the fields that identify one evaluated network (and its file in evaluations/)
NETWORK_KEY = ("trial_id", "protocol", "epochs", "augment", "arch", "network")


class LaunchError(Exception):
    """A study cannot be launched or continued as asked (storage, cluster, GPUs, its folder)."""


LAUNCH_VERSION = 1  # launch.json's layout; a reader refuses a newer one


@dataclass(frozen=True)
class LaunchInfo:
    """How a study was launched (launch.json): what resume, evaluate and export reuse."""
    storage: str
    data_dir: str
    resources: dict[str, float]
    # an Optuna storage URL given at launch; None: the folder's own optuna.db, wherever the
    # folder is moved (folders launched before this kept that file's absolute URL)
    optuna_storage: str | None = None
    address: str | None = None
    download: bool = True
    require_gpu: bool = False
    shared_storage: bool = False
    study_file: str = ""
    overrides: list[str] = field(default_factory=list)
    machine: str | None = None
    study_sha256: str | None = None  # of study.yaml as launched: an edit is noticed
    # the trials the launch planned: fewer than the study's where a grid continues an earlier
    # part (0: study.num_trials, in folders from before)
    trials: int = 0
    # folders from before versioning hold version 1's keys
    version: int = LAUNCH_VERSION


class StudyFolder:
    def __init__(self, path: str):
        self.path = absolute(path)

    @property
    def name(self) -> str:
        return posixpath.basename(self.path.rstrip("/"))

    def has_experiment(self) -> bool:
        """Whether Ray Tune's experiment state is there (a launched study)."""
        from ray import tune  # here: the command line names LaunchError without Ray
        return tune.Tuner.can_restore(self.path)

    def _read(self, name: str) -> str:
        return read_text(self.path, name)

    def _write(self, name: str, text: str) -> None:
        write_atomic(self.path, name, text.encode())

    # study.yaml
    def write_study(self, raw: dict) -> None:
        self._write(STUDY_FILE, yaml.safe_dump(raw, sort_keys=False))

    def study(self) -> Study:
        """The study as launched; refused if study.yaml was edited since."""
        file = posixpath.join(self.path, STUDY_FILE)
        text = self._read(STUDY_FILE)
        study = parse_study(read_raw(text, file), file)
        launched = self.launch_info().study_sha256
        if launched is not None and sha256(text) != launched:
            raise LaunchError(f"{file} was edited after the study was launched; status, "
                              "resume, evaluate and export read the study as launched: put the "
                              "file back as it was (launch.json keeps its sha256), or launch "
                              "the edited study under a new name")
        return study

    # launch.json
    def write_launch(self, info: LaunchInfo) -> None:
        """launch.json, with the sha256 of study.yaml as it is now (write the study first)."""
        info = replace(info, study_sha256=sha256(self._read(STUDY_FILE)))
        self._write(LAUNCH_FILE, json.dumps(asdict(info), indent=2))

    def launch_info(self) -> LaunchInfo:
        file = posixpath.join(self.path, LAUNCH_FILE)
        try:
            raw = json.loads(self._read(LAUNCH_FILE))
        except ValueError as exc:
            raise LaunchError(f"{file} is not valid JSON ({exc})") from None
        if not isinstance(raw, dict):
            raise LaunchError(f"{file} holds {type(raw).__name__}; allowed: a JSON object")
        version = raw.get("version", 1)
        if not isinstance(version, int) or version > LAUNCH_VERSION:
            raise LaunchError(f"{file} has version {version!r}, written by a newer raygm; this "
                              f"one reads versions up to {LAUNCH_VERSION}: upgrade raygm")
        known = [f.name for f in fields(LaunchInfo)]
        required = [f.name for f in fields(LaunchInfo) if f.default is MISSING
                    and f.default_factory is MISSING]
        if missing := [k for k in required if k not in raw]:
            raise LaunchError(f"{file} lacks {', '.join(missing)}; it needs {', '.join(required)}")
        if unknown := sorted(set(raw) - set(known)):
            raise LaunchError(f"{file} has unknown keys {', '.join(unknown)}; allowed: "
                              + ", ".join(known))
        return LaunchInfo(**raw)

    def optuna_storage(self, info: LaunchInfo) -> str:
        return info.optuna_storage or f"sqlite:///{posixpath.join(self.path, OPTUNA_DB)}"

    @property
    def storage(self) -> str:
        """The folder the study folder is in (Ray Tune's storage_path)."""
        return posixpath.dirname(self.path.rstrip("/"))

    # the claim: a study's name is taken by its first launch
    def claimed(self) -> bool:
        return marked(self.path) == STUDY_FOLDER

    @contextlib.contextmanager
    def claim(self):
        """Take the folder for a new study: created with its marker file exclusively (on
        a local disk; an object store has no exclusive create, so there a second launch
        is refused only once the first one's experiment state is written). Whatever the
        block raises, the folder is removed again: a refused launch leaves nothing."""
        local = "://" not in self.path
        if local:
            os.makedirs(self.path, exist_ok=True)
            names = os.listdir(self.path)
            if names and MARKER not in names:
                raise LaunchError(f"{self.path} exists and holds files raygm did not write "
                                  "there: choose another --storage or study name")
            try:
                with open(os.path.join(self.path, MARKER), "x") as f:
                    f.write(STUDY_FOLDER)
            except FileExistsError:
                raise FileExistsError(f"study {self.path} is being launched or was launched: "
                                      f"`raygm study resume {self.path}` continues it") from None
        else:
            mark(self.path, STUDY_FOLDER)
        try:
            yield self
        except BaseException:
            if local:
                shutil.rmtree(self.path, ignore_errors=True)
            raise

    # status.json
    def write_status(self, status: dict) -> None:
        self._write(STATUS_FILE, json.dumps(status))

    def drop_status(self) -> None:
        """Removes status.json before a resume: Ray Tune's restore copies the study folder's
        files into its driver's own folder and syncs that folder back for the whole run, so
        an old status.json would keep overwriting the resumed driver's live view."""
        fs, root = filesystem(self.path)
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(posixpath.join(root, STATUS_FILE))

    def status(self) -> dict:
        """status.json ({} before the driver wrote one)."""
        try:
            return json.loads(self._read(STATUS_FILE))
        except (FileNotFoundError, ValueError):
            return {}

    # finished/
    @staticmethod
    def _finished_key(config: RunConfig) -> str:
        return sha256(json.dumps(config.to_dict(), sort_keys=True))[:32] + ".json"

    def finished(self, config: RunConfig) -> dict | None:
        """The final report of a run of this configuration and seed, if one reached its end."""
        try:
            return json.loads(read_text(posixpath.join(self.path, FINISHED),
                                        self._finished_key(config)))
        except OSError:  # not there (local: FileNotFoundError; object stores vary)
            return None

    def put_finished(self, config: RunConfig, trial_id: str, metrics: dict) -> None:
        write_atomic(posixpath.join(self.path, FINISHED), self._finished_key(config),
                     json.dumps({"trial_id": trial_id, "metrics": metrics}).encode())

    # evaluations/
    def network_files(self) -> list[str]:
        """The per-network evaluation files (paths on the folder's file system)."""
        return network_files(self.path)

    def put_network(self, record: dict) -> None:
        put_network(self.path, record)

    def evaluations(self) -> list[dict]:
        """Every re-evaluation the folder holds, its networks grouped."""
        return group_networks(read_networks(self.path))

    # the export target
    def results(self) -> str:
        return posixpath.join(filesystem(self.path)[1], RESULTS)


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def network_file(record: dict) -> str:
    """The file of one evaluated network in an evaluations/ folder (the one key function)."""
    trial_id, protocol, epochs, augment, arch, network = (record[k] for k in NETWORK_KEY)
    return f"{trial_id}-{protocol}-{epochs}ep-{augment}-{arch}-{network}.json"


def network_files(folder: str) -> list[str]:
    """FOLDER/evaluations/'s network files: of a study folder, or of a results folder that
    `raygm evaluate` has not yet merged into its Parquet files."""
    fs, root = filesystem(folder)
    return sorted(f.path for f in fs.get_file_info(pyarrow.fs.FileSelector(
        posixpath.join(root, EVALUATIONS), allow_not_found=True)) if f.path.endswith(".json"))


def read_networks(folder: str) -> list[dict]:
    """One record per evaluated network (the keys of NETWORK_KEY, iteration, acc, seconds)."""
    fs, _ = filesystem(folder)
    records = []
    for file in network_files(folder):
        with fs.open_input_stream(file) as f:
            records.append(json.loads(f.read()))
    return records


def put_network(folder: str, record: dict) -> None:
    write_atomic(posixpath.join(filesystem(folder)[1], EVALUATIONS), network_file(record),
                 json.dumps(record).encode())


def group_networks(networks: list[dict]) -> list[dict]:
    """Per-network records as evaluations: one per (trial, protocol, epochs, augment,
    architecture, iteration), its networks in network order (a later record of a network
    replaces an earlier one); the keys are records.EVALUATION_COLUMNS and trial_id."""
    groups: dict[tuple, dict[int, dict]] = {}
    for r in networks:
        key = tuple(r[k] for k in ("trial_id", "protocol", "epochs", "augment", "arch",
                                   "iteration"))
        groups.setdefault(key, {})[r["network"]] = r
    results: list[dict[str, Any]] = []
    for (trial_id, protocol, epochs, augment, arch, iteration), found in groups.items():
        done = [found[n] for n in sorted(found)]
        record = EvaluationRecord.from_accs(iteration, arch, [r["acc"] for r in done],
                                            sum(r["seconds"] for r in done))
        results.append({"trial_id": trial_id, "protocol": protocol, "networks": len(done),
                        "epochs": epochs, "augment": augment,
                        **asdict(record), "accs": list(record.accs)})
    return results


def existing(path: str) -> StudyFolder:
    """The study folder at PATH, which must hold a launched study."""
    folder = StudyFolder(path)
    if folder.has_experiment():
        return folder
    if folder.claimed():
        raise FileNotFoundError(f"{folder.path}: launched, but Ray Tune has not yet written "
                                "its first snapshot; if the launch has stopped, `raygm study "
                                "resume` starts it")
    raise FileNotFoundError(f"{folder.path} holds no Ray Tune study (no experiment state)")
