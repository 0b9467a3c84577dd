"""What the e-commerce generator reproduces: the format of the real Taobao
UserBehavior.csv and the facts about it the generator and `describe` share (sizes,
behaviour shares, the time window, the diurnal profile, the session gap).
The package docstring gives the sources."""

from __future__ import annotations

import numpy as np

COLUMNS = ("user", "item", "category", "behavior", "timestamp")
BEHAVIORS = ("pv", "cart", "fav", "buy")
# Shares of the 100,150,807 rows of the real UserBehavior.csv.
TAOBAO_BEHAVIOR_SHARES = {"pv": 0.8958, "cart": 0.0552, "fav": 0.0288, "buy": 0.0201}
TAOBAO_NUM_ITEMS = 4_162_024
TAOBAO_NUM_CATEGORIES = 9_439

WINDOW_START = 1511539200  # 2017-11-25 00:00 China time: the first day of the real log
CHINA_UTC_OFFSET = 8 * 3600
# Relative traffic by hour of day (China time): trough 3-5 h, plateau 10-18 h, peak 20-22 h.
HOUR_PROFILE = np.array([0.55, 0.30, 0.18, 0.12, 0.10, 0.12, 0.25, 0.50, 0.75, 0.90, 1.00, 1.00,
                         1.00, 1.00, 1.00, 1.00, 0.95, 0.95, 1.00, 1.20, 1.45, 1.60, 1.40, 0.95])
HOUR_PROFILE = HOUR_PROFILE / HOUR_PROFILE.sum()
# The usual 30-minute inactivity rule then recovers the generated sessions.
MIN_SESSION_GAP = 1800
