"""Every raygm exception pickles and unpickles to the same message, so a trial's failure
reads the same in Tune's output, `raygm study status` and the export."""
import pickle

import pytest

from raygm.choices import UnknownChoice
from raygm.config import ConfigError
from raygm.data import DatasetError, DatasetNotFoundError
from raygm.study import LaunchError, StudyError

ERRORS = [ConfigError("ipc", 0, "an integer >= 1"),
          StudyError("x.yaml", "grid.init", "purple", "noise, real"),
          UnknownChoice("distance", "l3", ("ours", "mse", "cos")),
          DatasetError("MNIST files in /data are present but unreadable"),
          DatasetNotFoundError("MNIST not found in data directory /data"),
          LaunchError("--storage /x is a folder on this node")]


@pytest.mark.parametrize("error", ERRORS, ids=[type(e).__name__ for e in ERRORS])
def test_errors_round_trip_through_pickle(error):
    again = pickle.loads(pickle.dumps(error))
    assert type(again) is type(error) and str(again) == str(error)
    assert vars(again) == vars(error)  # field, key, value, allowed, ...
