import os

import numpy as np
import pytest

from reachability.storage import ProvenanceMismatch, read_attrs, read_h5, write_h5


def test_round_trip_with_provenance(tmp_path):
    path = tmp_path / "sub" / "x.h5"
    write_h5(path, {"a": np.arange(6).reshape(2, 3)}, {"model": "m", "layer": 12, "ids": [1, 2], "rev": None})
    arrays, attrs = read_h5(path, expect={"model": "m", "layer": 12})
    assert arrays["a"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert attrs == {"model": "m", "layer": 12, "ids": [1, 2], "rev": None}
    assert read_attrs(path)["ids"] == [1, 2]


def test_a_file_made_for_another_site_is_refused(tmp_path):
    path = tmp_path / "x.h5"
    write_h5(path, {"a": np.zeros(2)}, {"site": "hidden_states[12]", "model": "m"})
    with pytest.raises(ProvenanceMismatch, match=r"site is 'hidden_states\[12\]' in the file, this step expects "
                                                 r"'block_output\[12\]'"):
        read_h5(path, expect={"site": "block_output[12]", "model": "m"})


def test_a_failed_write_leaves_nothing_at_the_path(tmp_path):
    path = tmp_path / "x.h5"

    class Boom:
        def __array__(self, *a, **k):
            raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError):
        write_h5(path, {"a": np.zeros(3), "b": Boom()}, {})
    assert os.listdir(tmp_path) == []


def test_inputs_are_opened_read_only(tmp_path):
    path = tmp_path / "x.h5"
    write_h5(path, {"a": np.zeros(2)}, {})
    os.chmod(path, 0o444)
    assert read_h5(path)[0]["a"].shape == (2,)
