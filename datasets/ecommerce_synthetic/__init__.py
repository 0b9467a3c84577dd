"""Synthetic e-commerce logs in the exact Taobao UserBehavior.csv format.

    frame = generate(num_users=1000, seed=0)           # user, item, category, behavior, timestamp
    write_csv("UserBehavior.csv", num_users=1000)      # header-less, like the Tianchi file
    ds = datasets.load("taobao-synthetic", num_users=1000, seed=0)   # or resolve("ecommerce-small")

`load` writes the CSV to a temporary file and reads it back with the `taobao` preset
of `datasets.generic`, so generated data takes exactly the parsing path of a real
UserBehavior file (pv -> view, behaviour weights, categorical category...).

Reference statistics (what the defaults reproduce)
--------------------------------------------------
* Tianchi "User Behavior Data from Taobao for Recommendation" (dataset 649,
  https://tianchi.aliyun.com/dataset/649), released with Zhu et al., "Learning
  Tree-based Deep Model for Recommender Systems", KDD 2018: 987,994 users,
  4,162,024 items, 9,439 categories, 100,150,807 behaviours (~101 per user) over
  the 9 days 2017-11-25 .. 2017-12-03 (China time, UTC+8) (sizes as listed on the
  dataset page, e.g. reproduced in github.com/Ye0416/data-mining). Behaviour
  counts, from public SQL analyses of the file: pv 89,716,264 (89.6%), cart
  5,530,446 (5.5%), fav 2,888,258 (2.9%), buy 2,015,839 (2.0%) (buy ~2% also in
  jayzhu1020.github.io/Alibaba_Userdata_visualization).
* Diurnal traffic of Chinese e-commerce: lowest at 4-5 h, rising from 7 h, a
  daytime plateau, highest at 20-22 h (e.g. the Double-11 traffic report
  reprinted at m.qdxinzhong.com/Info_2398.aspx); analyses of this log report that
  browsing concentrates in the evening.
* Re-consumption: Anderson et al., "The Dynamics of Repeat Consumption", WWW
  2014: recency is the strongest predictor of which past item is consumed again,
  with a power-law-with-exponential-cutoff dependence on how many steps ago it was.
* The sample of the real file that motivated this generator (84k events, 55k
  distinct items; of its leave-one-out test targets 28% among the user's last 50
  interactions, 54% never seen in training) calibrates what no publication
  reports: the re-view rate and the within-category Zipf exponent. The funnel
  parameters (`unviewed_action_share`, `checkout_share`, `revisit_action_lift`)
  are plausible assumptions, not measurements.

Generative process
------------------
1. **Catalogue** (never materialised): `num_categories` categories with Zipf
   popularity (exponent `category_zipf`); `num_items` items split over categories,
   popular categories holding more items (`category_size_exponent`); within a
   category item popularity is Zipf (`item_zipf`). Item and category ids are
   scrambled integers, like the serialised ids of the real file.
2. **Users**: a log-normal number of page views (mean `events_per_user` x the pv
   share, spread `activity_sigma`); a category taste (1 + Poisson(`taste_size` - 1)
   categories drawn by global popularity, Dirichlet weights); an exploration rate
   (mean `explore`), a re-view rate (mean `revisit`), a buying propensity
   (log-normal, `buyer_sigma`) and a typical session length (`views_per_session`).
3. **Sessions**: each page view ends the session with probability 1 / session
   length (geometric lengths). Sessions start on a uniform day of the `days`-day
   window at an hour drawn from the diurnal profile `HOUR_PROFILE`, in time order,
   at least `MIN_SESSION_GAP` after the previous one ends; views within a session
   are a log-normal `view_gap_seconds` apart.
4. **Session intent**: a primary category from the user's taste (or, with the
   user's exploration rate, from global popularity), and with probability
   `second_category` a second one; each view is in the primary category except a
   `_SECOND_SHARE` of views in the second. The intent persists within the session
   and switches between sessions following the taste.
5. **Views**: with the user's re-view rate, a view returns to an item the user
   viewed earlier *in the same category*, k same-category views back with
   P(k) ~ k^-`recency_exponent` exp(-k / `recency_scale`); otherwise it draws an
   item of the category by its Zipf popularity.
6. **Funnel**: cart / fav / buy counts are set by `behavior_shares`. A share
   `unviewed_action_share` of them land on items the user never viewed in the
   window (bought from a list page or carted before the window starts); a share
   `checkout_share` of buys check out an item carted earlier, at a later view;
   the rest follow a view of the same item within seconds, choosing the views by
   the user's propensity x `revisit_action_lift` for re-views (users compare
   before they commit).

Timestamps are integer epoch seconds, strictly increasing within a user (so no two
rows are identical and the loader rejects nothing). `describe(frame)` measures all
of the above on a generated or a real UserBehavior frame. See docs/datasets.md.

Modules: `reference` (the real file's format and facts), `simulation` (the steps
above), `stats` (`describe`); this one runs the steps and writes / loads the CSV.
"""

from __future__ import annotations

import os
import tempfile
from typing import Mapping, Optional

import numpy as np
import pandas as pd

from datasets.dataset import Dataset
from datasets.ecommerce_synthetic.reference import (  # noqa: F401  (public here)
    BEHAVIORS,
    CHINA_UTC_OFFSET,
    COLUMNS,
    HOUR_PROFILE,
    MIN_SESSION_GAP,
    TAOBAO_BEHAVIOR_SHARES,
    TAOBAO_NUM_CATEGORIES,
    TAOBAO_NUM_ITEMS,
    WINDOW_START,
)
from datasets.ecommerce_synthetic.simulation import Catalogue, Users, assemble, funnel, simulate_views
from datasets.ecommerce_synthetic.stats import describe  # noqa: F401  (public here)


def generate(
    num_users: int = 1000,
    seed: int = 0,
    *,
    events_per_user: float = 100.0,
    activity_sigma: float = 0.8,
    min_views: int = 5,
    max_views: int = 2000,
    num_items: int = TAOBAO_NUM_ITEMS,
    num_categories: int = TAOBAO_NUM_CATEGORIES,
    category_zipf: float = 1.1,
    category_size_exponent: float = 0.7,
    item_zipf: float = 0.85,
    taste_size: float = 6.0,
    explore: float = 0.3,
    second_category: float = 0.35,
    views_per_session: float = 10.0,
    view_gap_seconds: float = 45.0,
    days: int = 9,
    revisit: float = 0.2,
    recency_exponent: float = 1.0,
    recency_scale: float = 50.0,
    behavior_shares: Optional[Mapping[str, float]] = None,
    unviewed_action_share: float = 0.12,
    checkout_share: float = 0.3,
    revisit_action_lift: float = 4.0,
    buyer_sigma: float = 1.0,
) -> pd.DataFrame:
    """Generate a UserBehavior-format log (deterministic given all arguments).

    Returns a frame with int64 `user`, `item`, `category`, `timestamp` (epoch
    seconds) and str `behavior` in {"pv", "cart", "fav", "buy"}, sorted by user
    and time. The module docstring describes the process.

    Args:
        num_users: users (ids 1..num_users).
        seed: random seed.
        events_per_user: mean behaviours per user; the real log has ~101.
        activity_sigma: log-normal spread of views per user: real users range from
            a few dozen to hundreds of behaviours in the 9 days.
        min_views / max_views: clip of views per user (min >= 3 keeps every user
            in the leave-one-out val and test splits).
        num_items / num_categories: catalogue size; the real catalogue's by default,
            so that a small sample of users sees a long tail of items nobody else
            touched, as a random user sample of the real log does.
        category_zipf: Zipf exponent of category popularity (a few head categories
            take a large share of traffic; thousands are rare).
        category_size_exponent: items per category ~ popularity^this (popular
            categories are also the big ones), with log-normal noise.
        item_zipf: Zipf exponent of item popularity within a category; with the
            large catalogue it makes most items appear once in a 1,000-user sample.
        taste_size: mean number of categories a user keeps coming back to.
        explore: mean probability that a session's category is drawn from global
            popularity instead of the user's taste.
        second_category: probability that a session mixes a second category.
        views_per_session: mean views per session (per-user log-normal around it).
        view_gap_seconds: median seconds between views in a session.
        days: length of the window (9 days like the real log).
        revisit: mean per-user probability that a view returns to an item of the
            same category viewed before, when there is one.
        recency_exponent / recency_scale: P(k same-category views back) ~
            k^-exponent exp(-k / scale): recent items are revisited most.
        behavior_shares: {"pv", "cart", "fav", "buy"} -> share of all rows
            (default `TAOBAO_BEHAVIOR_SHARES`).
        unviewed_action_share: share of cart / fav / buy on items the user did not
            view in the window (list-page actions, items viewed before the window).
        checkout_share: share of buys that check out an earlier cart at a later view.
        revisit_action_lift: how much likelier a re-view is than a first view to be
            followed by cart / fav / buy.
        buyer_sigma: log-normal spread of the per-user propensity to act.
    """
    if num_users < 1:
        raise ValueError("num_users must be >= 1")
    shares = dict(TAOBAO_BEHAVIOR_SHARES if behavior_shares is None else behavior_shares)
    if set(shares) != set(BEHAVIORS) or min(shares.values()) < 0 or shares["pv"] <= 0:
        raise ValueError(f"behavior_shares needs non-negative shares for {BEHAVIORS}, pv > 0")
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xEC0]))
    catalogue = Catalogue(rng, num_items, num_categories, category_zipf, category_size_exponent, item_zipf)
    pv_share = shares["pv"] / sum(shares.values())
    users = Users.draw(rng, catalogue, num_users, mean_views=events_per_user * pv_share,
                       activity_sigma=activity_sigma, min_views=min_views, max_views=max_views,
                       taste_size=taste_size, explore=explore, revisit=revisit, buyer_sigma=buyer_sigma,
                       views_per_session=views_per_session)
    views = simulate_views(rng, catalogue, users, second_category=second_category,
                           recency_exponent=recency_exponent, recency_scale=recency_scale,
                           view_gap_seconds=view_gap_seconds, days=days)
    actions = funnel(rng, catalogue, users, views, shares, unviewed_action_share=unviewed_action_share,
                     checkout_share=checkout_share, revisit_action_lift=revisit_action_lift)
    return assemble(rng, catalogue, views, actions)


def write_csv(path, **kwargs) -> str:
    """Write `generate(**kwargs)` as UserBehavior.csv: no header, comma-separated
    user_id,item_id,category_id,behavior_type,timestamp. Returns the path."""
    generate(**kwargs).to_csv(path, header=False, index=False, columns=list(COLUMNS))
    return str(path)


def load(num_users: int = 1000, seed: int = 0, **kwargs) -> Dataset:
    """Generate, write a temporary UserBehavior.csv and read it with the `taobao` preset."""
    from datasets import generic

    with tempfile.TemporaryDirectory(prefix="taobao-synthetic-") as tmp:
        path = write_csv(os.path.join(tmp, "UserBehavior.csv"), num_users=num_users, seed=seed, **kwargs)
        ds = generic.load(path, preset="taobao", name="taobao-synthetic")
    ds.report.note("generator", dict(num_users=num_users, seed=seed, **kwargs))
    return ds
