"""The run driver: what it evaluates, snapshots and reports, and resuming from a snapshot."""
import math

import torch

from raygm.core.distill import Distillation
from raygm.core.driver import Reporter, run_to_end


class Recorder(Reporter):
    def __init__(self):
        self.reports, self.evaluating_at, self.closed = [], [], None

    def evaluating(self, iteration):
        self.evaluating_at.append(iteration)

    def log(self, report):
        self.reports.append(report)

    def close(self, progress):
        self.closed = progress


def test_evaluations_snapshots_and_grids_fall_where_the_config_says(tiny_config, tiny_data):
    config = tiny_config.replace(iterations=5, eval_at=(0, 3, 5), eval_archs=("ConvNet", "MLP"))
    recorder = Recorder()
    progress = run_to_end(Distillation(config, tiny_data), [recorder], checkpoint_every=2)
    reports = recorder.reports
    assert [r.iteration for r in reports] == [0, 1, 2, 3, 4, 5]
    assert recorder.evaluating_at == [0, 3, 5]
    assert [r.iteration for r in reports if r.evaluations] == [0, 3, 5]
    assert all([e.arch for e in r.evaluations] == ["ConvNet", "MLP"]
               for r in reports if r.evaluations)
    assert [r.iteration for r in reports if r.snapshot] == [0, 2, 3, 4, 5]
    assert [r.iteration for r in reports if r.snapshot and r.snapshot.grid] == [0, 3, 5]
    assert reports[0].step is None and all(r.step.iteration == r.iteration for r in reports[1:])
    # metrics carry the latest accuracy between evaluations, flagged as not measured there
    at3, at4 = reports[3].metrics(), reports[4].metrics()
    assert at3["evaluated"] and not at4["evaluated"]
    assert at4["acc_mean_MLP"] == at3["acc_mean_MLP"] == reports[3].evaluations[1].acc_mean
    assert at3["acc_mean"] == at3["acc_mean_ConvNet"]
    assert math.isclose(progress.distill_seconds, sum(r.step.seconds for r in reports[1:]))
    assert recorder.closed == progress


def test_without_evaluation_networks_grids_and_snapshots_are_still_taken(tiny_config, tiny_data):
    recorder = Recorder()
    config = tiny_config.replace(eval_models=0, eval_epochs=None, eval_at=(0, 2, 3))
    run_to_end(Distillation(config, tiny_data),
               [recorder])
    assert not any(r.evaluations for r in recorder.reports) and not recorder.evaluating_at
    assert [r.iteration for r in recorder.reports if r.snapshot and r.snapshot.grid] == [0, 2, 3]
    assert math.isnan(recorder.reports[-1].metrics()["acc_mean"])


def test_resuming_from_a_snapshot_gives_the_uninterrupted_run(tiny_config, tiny_data):
    config = tiny_config.replace(iterations=5, eval_at=(0, 5), ipc=2, outer_loop=2, inner_loop=2)
    straight = Recorder()
    run_to_end(Distillation(config, tiny_data), [straight], checkpoint_every=2)
    snapshot = next(r.snapshot for r in straight.reports if r.iteration == 2)
    torch.rand(10)  # disturb the global stream: the snapshot must carry it
    resumed, run = Recorder(), Distillation(config, tiny_data)
    progress = run_to_end(run, [resumed], checkpoint_every=2, resume=snapshot.state)
    assert [r.iteration for r in resumed.reports] == [3, 4, 5]
    final = straight.reports[-1].snapshot.state["run"]["images"]
    assert torch.equal(resumed.reports[-1].snapshot.state["run"]["images"], final)
    assert [r.step.loss for r in resumed.reports] == [r.step.loss for r in straight.reports[3:]]
    assert [e.accs for e in resumed.reports[-1].evaluations] == \
        [e.accs for e in straight.reports[-1].evaluations]
    # progress goes on counting from the snapshot's
    assert progress.distill_seconds > snapshot.state["progress"]["distill_seconds"]
