"""MovieLens adapter: the three layouts on tiny fake files, bad rows, causality, real ML-100K."""

import numpy as np
import pytest

import datasets
from datasets import DatasetError
from datasets.movielens import causal_action_type, detect_layout

from .conftest import ML100K, write

def _flags(*idx):
    f = ["0"] * 19
    for i in idx:
        f[i] = "1"
    return "|".join(f)


def make_ml100k(root):
    d = root / "ml-100k"
    # u.item: Action=1, Comedy=5, Drama=8, Horror=11, Thriller=16, unknown=0
    write(d / "u.item", "\n".join([
        f"1|Toy Story (1995)|01-Jan-1995||http://x|{_flags(5)}",
        f"2|GoldenEye (1995)|01-Jan-1995||http://x|{_flags(1, 16)}",
        f"3|Caf\xe9 Society (1997)|15-Mar-1997||http://x|{_flags(8)}",
        f"4|Scream (1996)||||{_flags(11, 16)}",
        f"5|unknown||||{_flags(0)}",
        "6|Broken line|01-Jan-1990",  # truncated items line
    ]) + "\n", encoding="latin-1")
    write(d / "u.genre", "\n".join(f"{g}|{i}" for i, g in enumerate(
        ["unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime", "Documentary",
         "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi", "Thriller",
         "War", "Western"])) + "\n")
    lines = [
        "10\t1\t5\t858000000",   # 1
        "10\t2\t3\t858000100",   # 2
        "10\t3\t4\t858000200",   # 3
        "10\t2\t3\t858000100",   # 4 exact duplicate of line 2
        "11\t1\t4\tabc",         # 5 bad timestamp
        "11\t2\t4",              # 6 truncated
        "\t3\t4\t858000000",     # 7 missing user
        "11\t3\tx\t858000300",   # 8 rating not a number -> kept, NaN
        "11\t99\t5\t858000400",  # 9 item without metadata -> kept
        "11\t4\t9\t858000500",   # 10 rating out of range -> kept, NaN
        "",                      # 11 blank
        "12\t5\t2\t858000000",   # 12 single-interaction user
    ]
    write(d / "u.data", "\n".join(lines) + "\n")
    return d


def test_ml100k_layout_and_bad_rows(tmp_path):
    d = make_ml100k(tmp_path)
    assert detect_layout(d)[0] == "100k"
    ds = datasets.load("movielens", path=d)
    ds.validate()
    r = ds.report
    assert r.rows_read == 11 and r.rows_kept == 7
    assert r.rejected == {"duplicate_row": 1, "bad_timestamp": 1, "wrong_field_count": 1, "missing_user": 1}
    assert r.repaired["rating_not_a_number"] == 1
    assert r.repaired["rating_out_of_range"] == 1
    assert r.repaired["item_without_metadata"] == 1
    assert r.notes["blank_lines"] == 1
    assert r.notes["users_with_single_interaction"] == 1
    ex = r.to_dict()["examples"]
    assert ex["bad_timestamp"] == ["u.data:5: field 'timestamp': 'abc' is not an integer"]
    assert ex["wrong_field_count"][0].startswith("u.data:6: expected 4 fields")
    assert ex["missing_user"][0].startswith("u.data:7: field 'user'")
    assert ex["duplicate_row"][0].startswith("u.data:4: duplicate of line 2")
    assert ex["rating_not_a_number"][0].startswith("u.data:8: field 'rating': 'x'")
    assert "items_file:wrong_field_count" in ex  # u.item's truncated line is reported too
    assert "summary" not in ex and "u.data:5" in r.summary()

    df = ds.interactions
    assert ds.schema.categorical == ("action_type", "release_bucket")
    assert ds.schema.multi_label == ("genre",) and ds.schema.numeric == ("rating",)
    u10 = df[df.user_id == "10"]
    assert list(u10.item_id) == ["1", "2", "3"]
    assert list(u10.genre) == ["Comedy", "Action|Thriller", "Drama"]
    assert list(u10.weight) == [1.0, 0.6, 0.8]
    # 1995-01-01 release, interaction 1997-03 -> catalog; 1997-03-15 release vs 1997-03-10 -> newest bucket.
    assert u10.release_bucket.iloc[0] == "catalog"
    u11 = df[df.user_id == "11"].set_index("item_id")
    assert np.isnan(u11.loc["3", "rating"]) and np.isnan(u11.loc["3", "weight"])
    assert u11.loc["99", "genre"] == "" and u11.loc["99", "release_bucket"] == ""
    assert np.isnan(u11.loc["4", "rating"])
    # 'unknown' genre flag means no genre.
    assert df[df.item_id == "5"].genre.iloc[0] == ""
    items = ds.items.set_index("item_id")
    assert items.loc["3", "title"] == "Caf\xe9 Society (1997)"
    assert items.loc["3", "release_date"] == "1997-03-15"
    # No release date in u.item: falls back to the title year, mid-year.
    assert items.loc["4", "release_date"] == "1996-07-02"


def make_ml1m(root):
    d = root / "ml-1m"
    write(d / "movies.dat", "\n".join([
        "1::Toy Story (1995)::Animation|Children's|Comedy",
        "2::Jumanji (1995)::Adventure|Children's|Fantasy",
        "3::Am\xe9lie (2001)::Comedy|Romance",
        "4::No Year::Drama",
    ]) + "\n", encoding="latin-1")
    write(d / "ratings.dat", "\n".join([
        "1::1::5::978300760",
        "1::3::3::1000000000",
        "1::2::4::978300761",
        "2::4::3::978300000",
        "2::1::2::978300100",
        "2::2::oops::978300200",
        "2::3::5",
    ]) + "\n")
    return d


def test_ml1m_layout(tmp_path):
    d = make_ml1m(tmp_path)
    assert detect_layout(d)[0] == "dat"
    ds = datasets.load("movielens", path=d)
    ds.validate()
    assert ds.name == "movielens-1m"
    df = ds.interactions
    assert ds.report.rejected == {"wrong_field_count": 1}
    assert ds.report.repaired == {"rating_not_a_number": 1}
    u1 = df[df.user_id == "1"]
    assert list(u1.item_id) == ["1", "2", "3"]  # sorted by time
    assert u1.genre.iloc[0] == "Animation|Children's|Comedy"
    items = ds.items.set_index("item_id")
    assert items.loc["3", "title"] == "Am\xe9lie (2001)"
    assert items.loc["1", "release_date"] == "1995-07-02"  # year only -> mid-year
    assert items.loc["4", "release_date"] == ""
    # 2001-09-09 vs release 2001-07-02 -> recent_year
    assert u1.release_bucket.iloc[2] == "recent_year"
    assert df[df.item_id == "4"].release_bucket.iloc[0] == ""


def make_ml20m(root):
    d = root / "ml-20m"
    write(d / "movies.csv", "\n".join([
        "movieId,title,genres",
        "1,Toy Story (1995),Adventure|Animation|Children|Comedy|Fantasy",
        '2,"American President, The (1995)",Comedy|Drama|Romance',
        "3,Some Doc (2015),(no genres listed)",
        '4,"Babylon 5 (1994-1998)",Sci-Fi',
    ]) + "\n")
    write(d / "ratings.csv", "\n".join([
        "userId,movieId,rating,timestamp",
        "1,2,3.5,1112486027",
        "1,1,4.0,1112484676",
        "1,3,0.5,1450000000",
        "1,4,5.0,1112486030",
        "2,1,x,1112484676",
        "2,2,4.5,not-a-time",
    ]) + "\r\n")
    return d


def test_ml20m_layout(tmp_path):
    d = make_ml20m(tmp_path)
    assert detect_layout(d)[0] == "csv"
    ds = datasets.load("movielens", path=d)
    ds.validate()
    assert ds.report.rejected == {"bad_timestamp": 1}
    assert ds.report.to_dict()["examples"]["bad_timestamp"] == [
        "ratings.csv:7: field 'timestamp': 'not-a-time' is not an integer"]
    items = ds.items.set_index("item_id")
    assert items.loc["2", "title"] == "American President, The (1995)"
    assert items.loc["3", "genre"] == ""
    assert items.loc["4", "release_date"] == "1994-07-02"
    u1 = ds.interactions[ds.interactions.user_id == "1"]
    assert list(u1.item_id) == ["1", "2", "4", "3"]
    assert u1.weight.iloc[-1] == pytest.approx(0.1)
    assert u1.release_bucket.iloc[-1] == "recent_year"  # 2015-12-13 vs mid-2015
    assert u1.release_bucket.iloc[0] == "catalog"


def test_missing_and_empty_inputs(tmp_path):
    with pytest.raises(DatasetError, match="no MovieLens ratings file"):
        datasets.load("movielens", path=tmp_path)
    with pytest.raises(DatasetError, match="no such file"):
        datasets.load("movielens", path=tmp_path / "nope")
    d = tmp_path / "ml-empty"
    write(d / "u.data", "")
    with pytest.raises(DatasetError, match=r"u\.data: file is empty"):
        datasets.load("movielens", path=d)
    write(d / "u.data", "a\tb\tc\n\n")  # only bad rows
    with pytest.raises(DatasetError, match="no valid rows"):
        datasets.load("movielens", path=d)
    write(d / "u.data", "\x00\x01\x02binary")
    with pytest.raises(DatasetError, match="NUL"):
        datasets.load("movielens", path=d)


def _random_log(rng, n_users=30, max_len=25, n_genres=6):
    users, ts, genres = [], [], []
    for u in range(n_users):
        m = rng.integers(1, max_len)
        t = np.sort(rng.integers(0, 20000, m))
        users += [f"u{u:03d}"] * m
        ts.append(t)
        genres.append(rng.random((m, n_genres)) < 0.3)
    return np.array(users, dtype=object), np.concatenate(ts), np.concatenate(genres)


def test_action_type_is_causal():
    """Labels at position k never change when later interactions are added or altered."""
    rng = np.random.default_rng(0)
    users, ts, g = _random_log(rng)
    full = causal_action_type(users, ts, g, chunk_rows=37)
    # Keep a random prefix of each user and scramble everything after it.
    new_user = np.r_[True, users[1:] != users[:-1]]
    pos = np.arange(len(users)) - np.maximum.accumulate(np.where(new_user, np.arange(len(users)), 0))
    cut = rng.integers(0, 25, len(users))
    keep = pos < cut[np.searchsorted(np.flatnonzero(new_user), np.arange(len(users)), side="right") - 1]
    g2 = g.copy()
    g2[~keep] = rng.random((int((~keep).sum()), g.shape[1])) < 0.5
    altered = causal_action_type(users, ts, g2)
    assert (altered[keep] == full[keep]).all()
    truncated = causal_action_type(users[keep], ts[keep], g[keep])
    assert (truncated == full[keep]).all()


def test_action_type_rules():
    # genres: 0 Drama, 1 Comedy, 2 Horror, 3 Action
    G = np.array([
        [1, 0, 0, 0],  # first -> explore
        [1, 0, 0, 0],  # Drama is the favourite -> favourite
        [0, 1, 0, 0],  # Comedy unseen, top-3 = {Drama} -> explore
        [0, 1, 0, 1],  # 10 s after, shares Comedy with previous, not favourite -> binge
        [0, 0, 0, 1],  # 1 day later: Action in top-3, not a favourite (2, 2, 1), new session -> browse
        [0, 0, 0, 0],  # no genres -> browse
    ], dtype=bool)
    ts = np.array([0, 100, 200, 210, 90000, 90100])
    users = np.array(["a"] * 6, dtype=object)
    assert list(causal_action_type(users, ts, G, top_k=3)) == [
        "explore", "favourite", "explore", "binge", "browse", "browse"]


@pytest.mark.skipif(not (ML100K / "u.data").exists(), reason="ML-100K not available")
def test_real_ml100k():
    ds = datasets.load("movielens", path=ML100K)
    ds.validate()
    assert ds.name == "movielens-100k"
    assert len(ds) == 100_000 and ds.num_users == 943 and ds.num_items == 1682
    assert ds.report.rows_rejected == 0
    genres = {g for s in ds.interactions.genre for g in s.split("|") if g}
    assert len(genres) == 18
    assert set(ds.interactions.action_type) == {"explore", "favourite", "binge", "browse"}
    assert ds.interactions.rating.between(1, 5).all()
    enc = datasets.encode(ds, max_len=50)
    assert len(enc.val) == len(enc.test) == 943
    # Sliding windows train on every training target: each user's ratings but the first
    # and the two held out.
    assert int((enc.train.w > 0).sum()) == 100_000 - 3 * 943
