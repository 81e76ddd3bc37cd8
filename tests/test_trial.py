"""A trial's own log lines (TrialLog) and the trainable class that names its actors."""
from types import SimpleNamespace

from ray.tune.trainable import FunctionTrainable

from raygm.core.distill import Distillation
from raygm.core.driver import run_to_end
from raygm.studies.trial import TrialLog, named


def test_a_trial_logs_one_line_per_evaluation_and_checkpoint(tiny_config, tiny_data, capsys):
    config = tiny_config.replace(iterations=5, eval_at=(0, 3, 5))
    run_to_end(Distillation(config, tiny_data),
               [TrialLog("distill_trial_ab12", "init=real, lr_img=0.1", 5)], checkpoint_every=2)
    lines = capsys.readouterr().out.splitlines()
    assert all(line.startswith("raygm distill_trial_ab12 [init=real, lr_img=0.1] iteration ")
               for line in lines)
    tails = [line.split("] iteration ")[1] for line in lines]
    assert tails[0] == "0/5: evaluating"
    assert tails[1].startswith("0/5: accuracy ") and tails[1].endswith(" %, checkpoint")
    assert tails[2].startswith("2/5: loss ") and tails[2].endswith(", checkpoint")  # every 2
    assert [t.split(":")[0] for t in tails] == ["0/5", "0/5", "2/5", "3/5", "3/5", "4/5",
                                                "5/5", "5/5"]
    assert "accuracy" in tails[4] and "accuracy" in tails[7] and "accuracy" not in tails[5]


def test_the_trainable_is_tunes_class_of_the_function_with_the_trial_as_its_repr():
    def distill_trial(config):
        pass

    cls = named(distill_trial)
    assert issubclass(cls, FunctionTrainable) and cls.__name__ == "distill_trial"
    trainable = cls.__new__(cls)  # no actor: only the repr the dashboard shows
    trainable._trial_info = SimpleNamespace(trial_name="distill_trial_ab12")
    assert repr(trainable) == "distill_trial_ab12"
