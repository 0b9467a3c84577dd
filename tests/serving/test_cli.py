"""The `recommend` CLI's mistakes a new user hits (issue 13 #9)."""

from __future__ import annotations

import json

import pytest

from tests.serving.conftest import history


def _run(capsys, *argv):
    from serving.cli import main

    rc = main(list(argv))
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_missing_history_file_is_an_error_not_an_item_id(server, tmp_path, capsys):
    host = f"127.0.0.1:{server.grpc_port}"
    for missing in ("missing.csv", str(tmp_path / "user42"), "./hist.jsonl"):
        rc, out, err = _run(capsys, "--host", host, "--history", missing)
        assert rc == 2 and "no such file" in err and not out, (missing, err)


def test_csv_without_an_item_id_column_is_an_error(server, tmp_path, capsys):
    host = f"127.0.0.1:{server.grpc_port}"
    bad = tmp_path / "h.csv"
    bad.write_text("movie,ts\n1,10\n2,20\n")
    rc, _, err = _run(capsys, "--host", host, "--history", str(bad))
    assert rc == 2 and "no item id column" in err and "['movie', 'ts']" in err
    ids = tmp_path / "ids.txt"  # a headerless file of one id per line is still a history
    ids.write_text("1\n2\n3\n")
    rc, out, err = _run(capsys, "--host", host, "--history", str(ids))
    assert rc == 0 and "History: 3 interactions" in out and "warning" not in err


def test_unknown_item_ids_are_reported(server, capsys):
    """The README's example id t00410 is not in the demo catalogue: it used to become OOV
    silently."""
    rc, out, err = _run(capsys, "--host", f"127.0.0.1:{server.grpc_port}", "--history", "t00410,1,2,nope")
    assert rc == 0 and "Top-10 recommendations" in out
    assert "warning: 2 of 4 item ids are not in the model's catalogue (t00410, nope)" in err


def test_padding_and_oov_are_never_shown_as_intents(server, capsys):
    from serving.client import IntentPrediction

    p = IntentPrediction("genre", ["<pad>", "<oov>", "Drama", "Comedy"], [0.5, 0.3, 0.05, 0.15], 0.4)
    assert p.top(3) == [("Comedy", 0.15), ("Drama", 0.05)]
    assert p.named() == {"Drama": 0.05, "Comedy": 0.15}
    rc, out, _ = _run(capsys, "--host", f"127.0.0.1:{server.grpc_port}", "--history", "1,2,3", "--json")
    doc = json.loads(out)
    for head in doc["intents"].values():
        assert not {"<pad>", "<oov>"} & set(head["probabilities"])


@pytest.mark.parametrize("argv,fragment", [
    (["--host", "http://127.0.0.1:8501"], "not a URL"),
    (["--host", "127.0.0.1:1", "--port", "2"], "has port 1 but --port is 2: give the port once"),
    (["--host", "127.0.0.1:x"], "is not a number"),
])
def test_host_and_port_mistakes_are_explained(argv, fragment, capsys):
    rc, _, err = _run(capsys, *argv, "--history", "1,2")
    assert rc == 2 and fragment in err, err


def test_port_flag_applies_when_host_has_none(server, capsys):
    rc, out, _ = _run(capsys, "--host", "127.0.0.1", "--port", str(server.grpc_port), "--history",
                      ",".join(history(1, 4)["item_ids"]))
    assert rc == 0 and "Top-10 recommendations" in out
