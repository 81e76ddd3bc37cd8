"""The launch's own lines (Console, a Ray Tune callback) from the events Tune gives it."""
import io
import math
from types import SimpleNamespace

from raygm.studies.console import Console
from raygm.studies.study_file import parse_study

STUDY = parse_study({
    "name": "watch", "fixed": {"dataset": "MNIST", "ipc": 1, "iterations": 10,
                               "eval_at": [0, 5, 10], "eval_models": 1},
    "search": {"lr_img": {"loguniform": [0.01, 1.0]}}, "trials": 3,
    "max_trial_seconds": 100}, "watch.yaml")


def trial(trial_id, lr_img=0.1, status="RUNNING", error=""):
    return SimpleNamespace(trial_id=trial_id, config={"lr_img": lr_img}, status=status,
                           get_error=lambda: error)


def console(every=0.0):
    out = io.StringIO()
    return Console(STUDY, "/studies/watch", "AMD EPYC (AVX-512 BF16), 2 CPUs", every=every,
                   out=out), out


def test_one_line_per_event_with_the_studys_iteration_count():
    c, out = console(every=1e9)
    c.setup()
    t = trial("a1")
    c.on_trial_start(0, [t], t)
    c.on_trial_result(0, [t], t, {"iteration": 0, "evaluated": True, "acc_mean": 0.25})
    for i in range(1, 11):  # Tune's training_iteration would say 11 here
        c.on_trial_result(0, [t], t, {"iteration": i, "evaluated": i in (5, 10),
                                      "acc_mean": 0.5 + i / 100, "loss": 1.0})
    c.on_trial_complete(0, [t], t)
    lines = out.getvalue().splitlines()
    assert lines[0] == ("raygm: study watch, 3 trials, on AMD EPYC (AVX-512 BF16), 2 CPUs; "
                        "live curves: tensorboard --logdir /studies/watch")
    events = [line.split("  ", 1)[1] for line in lines[1:]]  # after the time and trial id
    assert events == ["started   lr_img=0.1, seed 0",
                      "evaluated iteration 0/10: accuracy 25.00 %",
                      "evaluated iteration 5/10: accuracy 55.00 %",
                      "evaluated iteration 10/10: accuracy 60.00 %",
                      "finished  at iteration 10/10: accuracy 60.00 %"]
    assert all(line.split()[1] == "a1" for line in lines[1:])


def test_diverged_over_time_and_failed_trials_say_why():
    c, out = console(every=1e9)
    diverged, slow, failed = trial("d"), trial("s"), trial("f", status="ERROR", error=(
        "Traceback (most recent call last):\n  File x\nRuntimeError: out of memory\n"))
    c.on_trial_result(0, [], diverged, {"iteration": 3, "diverged": "diverged at iteration 3: "
                                        "the matching loss is not finite", "acc_mean": math.nan})
    c.on_trial_complete(0, [], diverged)
    c.on_trial_result(0, [], slow, {"iteration": 7, "acc_mean": 0.3, "time_total_s": 101.0})
    c.on_trial_complete(0, [], slow)
    c.on_trial_error(0, [], failed)
    lines = [line.split("  ", 1)[1] for line in out.getvalue().splitlines()]
    assert lines == [
        "finished  at iteration 3/10: DIVERGED: diverged at iteration 3: the matching loss "
        "is not finite",
        "finished  at iteration 7/10: OVER_TIME: stopped at max_trial_seconds 100 s",
        "failed    RuntimeError: out of memory"]


def test_the_table_shows_running_trials_and_which_one_evaluates():
    c, out = console(every=0.0)
    distilling, evaluating, waiting = trial("r1"), trial("r2"), trial("p", status="PENDING")
    done = trial("t", status="TERMINATED")
    c.on_trial_result(0, [], distilling, {"iteration": 2, "loss": 3.5, "acc_mean": 0.2})
    c.on_trial_result(0, [], evaluating, {"iteration": 4, "loss": 2.0, "acc_mean": 0.3})
    c.on_step_end(0, [distilling, evaluating, waiting, done])
    text = out.getvalue()
    assert "1 of 3 trials done" in text
    rows = {line.split()[0]: line for line in text.splitlines()[2:]}
    assert set(rows) == {"r1", "r2", "p"}
    assert "2/10" in rows["r1"] and rows["r1"].rstrip().endswith("distilling")
    assert "4/10" in rows["r2"] and "evaluating, " in rows["r2"]  # iteration 5 evaluates
    c.on_step_end(0, [distilling, evaluating, waiting, done])
    assert out.getvalue().count("trials done") == 2  # an evaluation goes on: shown again
    c.on_step_end(0, [distilling, waiting, done])
    assert out.getvalue().count("trials done") == 2  # nothing changed, none evaluates
