"""Every raygm exception pickles and unpickles to the same message, so a trial's failure
reads the same in Tune's output, `raygm study status` and the export."""
import pickle

import pytest

from raygm.core.choices import UnknownChoice
from raygm.core.config import ConfigError
from raygm.core.data import DatasetError, DatasetNotFoundError
from raygm.studies.store import LaunchError
from raygm.studies.study_file import StudyError

# each error with the fields a caller reads from it (besides its message)
ERRORS = [(ConfigError("ipc", 0, "an integer >= 1"), ("field", "value", "allowed")),
          (StudyError("x.yaml", "grid.init", "purple", "noise, real"),
           ("file", "key", "value", "allowed")),
          (UnknownChoice("distance", "l3", ("ours", "mse", "cos")), ("kind", "name", "allowed")),
          (DatasetError("MNIST files in /data are present but unreadable"), ()),
          (DatasetNotFoundError("MNIST not found in data directory /data"), ()),
          (LaunchError("--storage /x is a folder on this node"), ())]


@pytest.mark.parametrize("error, attributes", ERRORS, ids=[type(e).__name__ for e, _ in ERRORS])
def test_errors_round_trip_through_pickle(error, attributes):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert again.args == error.args
    assert set(vars(error)) == set(attributes)  # a new field must be listed (and pickle)
    for name in attributes:
        assert getattr(again, name) == getattr(error, name)
