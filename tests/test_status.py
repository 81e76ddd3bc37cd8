"""raygm/studies/status.py without Ray running: the driver's live status file."""
import pickle
import sys
import types
from types import SimpleNamespace

from raygm.studies import launch, status
from raygm.studies.store import StudyFolder


def test_live_status_writes_each_trials_state(tmp_path):
    live = status.LiveStatus(StudyFolder(tmp_path))
    trial = SimpleNamespace(trial_id="t0")
    live.on_trial_start(0, [], trial)
    live.on_trial_result(0, [], trial, {"iteration": 7})
    live.on_trial_complete(0, [], trial)
    assert StudyFolder(tmp_path).status()["trials"] == {"t0": {"status": "TERMINATED",
                                                                "iteration": 7}}


def test_a_live_status_pickled_by_raygm_before_its_layers_moved_still_works(tmp_path,
                                                                            monkeypatch):
    """tuner.pkl of a study launched before raygm.studies holds raygm.tuning.LiveStatus with
    a path; resume maps the module and the object writes to the same folder."""
    old = types.ModuleType("raygm.tuning")

    class LiveStatus:  # the old class, as pickle names it
        pass
    LiveStatus.__module__, LiveStatus.__qualname__ = "raygm.tuning", "LiveStatus"
    old.LiveStatus = LiveStatus
    monkeypatch.setitem(sys.modules, "raygm.tuning", old)
    before = LiveStatus()
    before.path, before.trials, before.written = str(tmp_path), {}, 0.0
    blob = pickle.dumps(before)
    monkeypatch.delitem(sys.modules, "raygm.tuning")
    launch.adopt_moved_modules()
    again = pickle.loads(blob)
    assert isinstance(again, status.LiveStatus) and again.folder.path == str(tmp_path)
    again.on_trial_start(0, [], SimpleNamespace(trial_id="t1"))
    assert StudyFolder(tmp_path).status()["trials"]["t1"]["status"] == "RUNNING"


def test_a_study_is_complete_once_every_trial_has_ended_and_it_has_all_or_its_budget():
    # trials that will not run again, whatever their result, end a study; a trial still
    # running or pending, or one a search has yet to ask for, does not
    assert status.unfinished(["TERMINATED", "OVER_TIME", "DIVERGED", "ERROR"], 4) is None
    assert status.unfinished(["TERMINATED", "RUNNING", "PENDING"], 3) == "1 of 3 trials have ended"
    assert status.unfinished(["TERMINATED", "OVER_TIME"], 60) == "2 of 60 trials have ended"
    # a search that has run its max_core_hours asks for no more trials: complete...
    assert status.unfinished(["TERMINATED", "OVER_TIME"], 60, hours=5.2, budget=5.1) is None
    # ...once those under way have ended; and not before the budget is run
    assert status.unfinished(["TERMINATED", "RUNNING"], 60, hours=5.2, budget=5.1) is not None
    assert status.unfinished(["TERMINATED", "OVER_TIME"], 60, hours=5.0, budget=5.1) is not None
    assert status.unfinished(["TERMINATED"], 60, hours=9.0, budget=0) is not None  # no budget
