"""Real-time intent updates: a user's history + one new event → updated intents, α, Z
and recommendations, in one model call (paper §4.5).

The intent heads, the attention over them and the item ranking are all functions of
the history the model is given, so a new event changes them at once: nothing is
retrained. The update runs the *served* model (or the same trained model locally) on
[history, history + event] as one batch of two, and reports both states and the change.

    from analysis.realtime import LocalBackend, ServedBackend, update_intents

    backend = LocalBackend.load("runs/synthetic/v3-seed0", dataset=ds)      # .keras + preprocessor
    backend = ServedBackend.connect("localhost:8500", model_name="intentrec") # TF Serving / serving.server
    upd = update_intents(backend, history_rows, {"item_id": "t00146", "action_type": "continue",
                                                 "timestamp": 1687905150})
    print(upd.format()); upd.to_dict()

`history` may be a DataFrame or a list of row dicts with canonical column names
(`item_id`, `timestamp`, metadata columns such as `action_type`, `genre`, ...), or a
`serving.client.History`. Unknown items / values are OOV, as in serving.

Command line (local model or served model):

    python -m analysis.realtime --model runs/synthetic/v3-seed0 --dataset synthetic \
        --user u00012 --event item_id=t00146,action_type=continue
    python -m analysis.realtime --host localhost:8500 --model-name intentrec \
        --history user42.csv --event '{"item_id": "1193", "timestamp": 978300760}'
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from typing import Optional, Sequence

import numpy as np
import pandas as pd

from analysis.clusters import label_list
from analysis.sources import (INTENT_ATTENTION, INTENT_EMBEDDING, TOP_K_IDS, TOP_K_SCORES, IntentModel,
                              intent_key, load_intent_model)
from datasets.schema import ITEM, TIMESTAMP, USER

_NOT_METADATA = (USER, ITEM, TIMESTAMP, "weight")


# --------------------------------------------------------------------------------------
# results
# --------------------------------------------------------------------------------------
@dataclasses.dataclass
class IntentState:
    """What the model says about one history."""

    attention: dict  # head -> α
    primary_intent: Optional[str]
    intents: dict  # head -> {label: probability} (reserved pad/OOV slots dropped)
    intent_embedding: list
    items: list  # [{"item_id", "score", "title"}]

    def top_intents(self) -> dict:
        return {h: max(p.items(), key=lambda kv: kv[1]) for h, p in self.intents.items() if p}


@dataclasses.dataclass
class IntentUpdate:
    event: dict
    after: IntentState
    before: Optional[IntentState]
    source: str
    latency_ms: float
    history_length: int

    @property
    def attention_change(self) -> dict:
        if self.before is None:
            return {}
        return {h: self.after.attention.get(h, 0.0) - self.before.attention.get(h, 0.0) for h in self.after.attention}

    @property
    def primary_changed(self) -> bool:
        return self.before is not None and self.before.primary_intent != self.after.primary_intent

    def to_dict(self) -> dict:
        return {
            "event": self.event, "source": self.source, "latency_ms": self.latency_ms,
            "history_length": self.history_length,
            "after": dataclasses.asdict(self.after),
            "before": dataclasses.asdict(self.before) if self.before else None,
            "attention_change": self.attention_change, "primary_changed": self.primary_changed,
        }

    def format(self, items: int = 5) -> str:
        ev = ", ".join(f"{k}={v}" for k, v in self.event.items())
        lines = [f"New event: {ev}  (history {self.history_length} → {self.history_length + 1}; "
                 f"{self.source}; {self.latency_ms:.0f} ms)"]
        b, a = self.before, self.after
        if a.attention:
            lines.append("Attention α per intent head:" + ("   before → after" if b else ""))
            for h, v in a.attention.items():
                if b:
                    lines.append(f"  {h:<16} {b.attention.get(h, float('nan')):.3f} → {v:.3f} "
                                 f"({v - b.attention.get(h, 0.0):+.3f})")
                else:
                    lines.append(f"  {h:<16} {v:.3f}")
            prim = f"{b.primary_intent} → {a.primary_intent}" if b else str(a.primary_intent)
            lines.append(f"Primary intent: {prim}" + (" (changed)" if self.primary_changed else ""))
        lines.append("Predicted next intent (top label):" + ("   before → after" if b else ""))
        top_a = a.top_intents()
        top_b = b.top_intents() if b else {}
        for h, (label, p) in top_a.items():
            if h in top_b:
                lb, pb = top_b[h]
                lines.append(f"  {h:<16} {lb} ({pb:.2f}) → {label} ({p:.2f})")
            else:
                lines.append(f"  {h:<16} {label} ({p:.2f})")
        lines.append(f"Top-{min(items, len(a.items))} recommendations after the event:")
        before_ids = {x["item_id"] for x in (b.items[:items] if b else [])}
        for i, it in enumerate(a.items[:items], 1):
            new = "" if not b or it["item_id"] in before_ids else "  (new)"
            title = f"  {it['title']}" if it.get("title") else ""
            lines.append(f"  {i:>2}. {it['item_id']}{title}  {it['score']:.3f}{new}")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------
# backends
# --------------------------------------------------------------------------------------
def _state_from_arrays(out: dict, i: int, heads: Sequence[str], labels: dict, titles: dict) -> IntentState:
    att = out.get(INTENT_ATTENTION)
    attention = ({h: float(att[i][j]) for j, h in enumerate(heads)}
                 if att is not None and att.shape[-1] == len(heads) and len(heads) else {})
    primary = max(attention, key=attention.get) if attention else None
    intents = {}
    for h in heads:
        p = out.get(intent_key(h))
        if p is None:
            continue
        names = label_list(labels.get(h) or [str(j) for j in range(p.shape[-1])])
        vals = np.asarray(p[i], dtype=float)[-len(names):] if names else []
        intents[h] = {n: float(v) for n, v in zip(names, vals)}
    z = out.get(INTENT_EMBEDDING)
    items = []
    for item, score in zip(out.get(TOP_K_IDS, [[]] * (i + 1))[i], out.get(TOP_K_SCORES, [[]] * (i + 1))[i]):
        item = item.decode() if isinstance(item, bytes) else str(item)
        items.append({"item_id": item, "score": float(score), "title": titles.get(item)})
    return IntentState(attention=attention, primary_intent=primary, intents=intents,
                       intent_embedding=[float(v) for v in z[i]] if z is not None else [], items=items)


class LocalBackend:
    """A trained model loaded in-process (`.keras` + preprocessor, or a SavedModel dir)."""

    def __init__(self, model: IntentModel):
        self.model = model
        self.source = f"local {model.info.kind} {model.info.path}"

    @classmethod
    def load(cls, path, dataset=None, preprocessor=None) -> "LocalBackend":
        return cls(load_intent_model(path, dataset=dataset, preprocessor=preprocessor))

    def states(self, histories: Sequence[list], k: int = 10) -> list[IntentState]:
        frames = [pd.DataFrame(h) if len(h) else pd.DataFrame({ITEM: pd.Series([], dtype=object)})
                  for h in histories]
        out = self.model.recommend(frames, k=k)
        titles = getattr(self.model, "item_titles", {}) or {}
        return [_state_from_arrays(out, i, self.model.heads, self.model.labels, titles)
                for i in range(len(histories))]


class ServedBackend:
    """A model behind TF Serving / serving.server, called with `serving.client.IntentRecClient`."""

    def __init__(self, client):
        self.client = client
        self.source = f"served {client.model_name}@{client.host}:{client.port}"

    @classmethod
    def connect(cls, host: str = "localhost:8500", model_name: Optional[str] = None, **kwargs) -> "ServedBackend":
        try:
            from serving.client import IntentRecClient
        except ImportError as e:  # pragma: no cover - depends on the serving package
            raise RuntimeError("serving.client is not available; use LocalBackend") from e
        from serving import contract

        return cls(IntentRecClient(host, None, model_name or contract.DEFAULT_MODEL_NAME, **kwargs))

    def states(self, histories: Sequence[list], k: int = 10) -> list[IntentState]:
        recs = self.client.recommend_batch([to_client_history(h) for h in histories])
        out = []
        for rec in recs:
            intents = {}
            for h, p in rec.intents.items():
                names = label_list(p.labels)
                vals = p.probabilities[-len(names):] if names else []
                intents[h] = {n: float(v) for n, v in zip(names, vals)}
            out.append(IntentState(
                attention=dict(rec.attention), primary_intent=rec.primary_intent or None, intents=intents,
                intent_embedding=list(rec.intent_embedding),
                items=[{"item_id": it.item_id, "score": it.score, "title": it.title} for it in rec.items[:k]]))
        return out

    def close(self):
        self.client.close()


# --------------------------------------------------------------------------------------
# the update
# --------------------------------------------------------------------------------------
def history_rows(history) -> list[dict]:
    """DataFrame / list of dicts / serving.client.History → list of canonical row dicts."""
    if history is None:
        return []
    if isinstance(history, pd.DataFrame):
        return history.to_dict("records")
    if hasattr(history, "item_ids"):  # serving.client.History
        ts = history.timestamps
        rows = []
        for j, item in enumerate(history.item_ids):
            row = {ITEM: str(item)}
            if ts is not None:
                row[TIMESTAMP] = int(ts[j])
            for k, vals in (history.metadata or {}).items():
                row[k] = vals[j]
            rows.append(row)
        return rows
    return [dict(r) for r in history]


def to_client_history(rows: Sequence[dict]):
    from serving.history import History

    rows = list(rows)
    items = [str(r[ITEM]) for r in rows]
    ts = [int(r[TIMESTAMP]) for r in rows] if rows and all(TIMESTAMP in r for r in rows) else None
    keys = [k for k in (rows[0] if rows else {}) if k not in _NOT_METADATA]
    meta = {k: [r.get(k) for r in rows] for k in keys}
    return History(items, ts, meta)


def complete_event(event: dict, rows: Sequence[dict], now: Optional[float] = None) -> dict:
    """The event as a canonical row: `item_id` required; `timestamp` defaults to now
    (never before the latest history event); the user id is copied from the history."""
    if ITEM not in event:
        raise ValueError(f"the event needs an {ITEM!r}")
    ev = dict(event)
    ev[ITEM] = str(ev[ITEM])
    last = max((int(r[TIMESTAMP]) for r in rows if TIMESTAMP in r and r[TIMESTAMP] is not None), default=None)
    if TIMESTAMP not in ev or ev[TIMESTAMP] is None:
        t = int(now if now is not None else time.time())
        ev[TIMESTAMP] = max(t, last + 1) if last is not None else t
    ev[TIMESTAMP] = int(ev[TIMESTAMP])
    if rows and USER in rows[-1] and USER not in ev:
        ev[USER] = rows[-1][USER]
    return ev


def update_intents(backend, history, event: dict, k: int = 10, compare: bool = True,
                   now: Optional[float] = None) -> IntentUpdate:
    """Updated intents, α, Z and top-k after `event`, from one model call.

    Args:
        backend: `LocalBackend`, `ServedBackend`, or anything with `states(histories, k)`;
            an `IntentModel` or a `serving.client.IntentRecClient` is wrapped automatically.
        history: the user's interactions so far (oldest first).
        event: the new interaction (canonical keys: item_id, timestamp, metadata columns).
        k: number of recommendations.
        compare: also return the state before the event (same call, batch of two).
    """
    backend = as_backend(backend)
    rows = history_rows(history)
    ev = complete_event(event, rows, now)
    after_rows = rows + [ev]
    started = time.perf_counter()
    states = backend.states([rows, after_rows] if compare else [after_rows], k=k)
    latency = (time.perf_counter() - started) * 1e3
    before, after = (states[0], states[1]) if compare else (None, states[0])
    shown = {key: ev[key] for key in ev if key != USER}
    return IntentUpdate(event=shown, after=after, before=before, source=backend.source, latency_ms=latency,
                        history_length=len(rows))


def as_backend(obj):
    if hasattr(obj, "states"):
        return obj
    if isinstance(obj, IntentModel):
        return LocalBackend(obj)
    if hasattr(obj, "recommend_batch"):
        return ServedBackend(obj)
    raise TypeError(f"cannot use {type(obj).__name__} as an intent backend")


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------
def parse_event(text: str) -> dict:
    """`item_id=X,action_type=continue[,timestamp=...]` or a JSON object."""
    text = text.strip()
    if text.startswith("{"):
        return json.loads(text)
    ev = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"event field {part!r} is not key=value")
        value = value.strip()
        if key.strip() in (TIMESTAMP,):
            value = int(float(value))
        else:
            try:
                value = float(value) if key.strip() not in (ITEM,) and "." in value else value
            except ValueError:
                pass
        ev[key.strip()] = value
    return ev


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m analysis.realtime", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", help="local .keras / run dir / SavedModel dir")
    p.add_argument("--dataset", help="dataset (for the preprocessor, titles and --user histories)")
    p.add_argument("--data-arg", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--host", help="host:port of a served model (TF Serving / serving.server)")
    p.add_argument("--model-name", default="intentrec")
    p.add_argument("--user", help="take the history of this user from --dataset (or the history file)")
    p.add_argument("--history", help="CSV / JSON-lines file or comma-separated item ids")
    p.add_argument("--event", required=True, help="key=value,... or JSON, e.g. item_id=t00146,action_type=continue")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--json", action="store_true")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    dataset = None
    if args.dataset:
        import datasets

        from datasets.cli import parse_key_values

        dataset = datasets.resolve(args.dataset, **parse_key_values(args.data_arg))
    if args.history:
        from serving.history import load_history

        history = history_rows(load_history(args.history, args.user))
    elif args.user and dataset is not None:
        df = dataset.interactions
        history = df[df[USER].astype(str) == args.user].to_dict("records")
        if not history:
            print(f"error: user {args.user!r} not in {args.dataset}", file=sys.stderr)
            return 2
    else:
        history = []
    if args.host:
        backend = ServedBackend.connect(args.host, args.model_name)
    elif args.model:
        backend = LocalBackend.load(args.model, dataset=dataset)
    else:
        print("error: give --model (local) or --host (served)", file=sys.stderr)
        return 2
    upd = update_intents(backend, history, parse_event(args.event), k=args.k)
    print(json.dumps(upd.to_dict(), indent=2, default=str) if args.json else upd.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
