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
