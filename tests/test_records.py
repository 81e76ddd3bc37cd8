"""The report schema: what a report holds is what the export's columns say."""
import math

from raygm.core.records import (EvaluationRecord, IterationRecord, Progress, Report,
                           iteration_columns, objective_metrics, trial_columns)


def report(step, evaluations, progress):
    return Report(step.iteration if step else 0, step, evaluations, progress, ("ConvNet", "MLP"),
                  None)


def test_a_report_holds_exactly_the_iteration_columns():
    step = IterationRecord(2, 3.0, 2.5, 0.5, (1.0, 2.0, 0.0), 0.1)
    evaluation = EvaluationRecord.from_accs(2, "MLP", [0.5, 0.7], 4.0)
    progress = Progress(distill_seconds=1.0, wall_seconds=9.0,
                        accuracy={"MLP": (evaluation.acc_mean, evaluation.acc_std)})
    metrics = report(step, (evaluation,), progress).metrics()
    assert set(metrics) == set(iteration_columns(("ConvNet", "MLP"), 3))
    assert metrics["acc_mean_MLP"] == 0.6 and math.isclose(metrics["acc_std_MLP"], 0.1)
    assert math.isnan(metrics["acc_mean"]) and math.isnan(metrics["acc_mean_ConvNet"])
    assert metrics["loss_class_1"] == 2.0 and metrics["evaluated"]
    assert evaluation.seconds_per_model == 2.0


def test_objectives_and_trial_columns_follow_the_architectures():
    assert objective_metrics(("MLP",)) == ("acc_mean", "acc_mean_MLP", "loss", "distill_seconds",
                                           "wall_seconds")
    columns = trial_columns(("LeNet",))
    assert {"acc_mean_LeNet", "acc_std_LeNet", "node_id", "grid_paths"} <= set(columns)
