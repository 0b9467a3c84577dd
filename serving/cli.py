"""The ``recommend`` command line: top-k recommendations and predicted intents for one user.

    recommend --host localhost:8500 --model intentrec --history 1193,661,914,3408
    recommend --host localhost:8500 --history user42.csv --user 42 --titles movies.dat --json
    python -m serving.cli ...            # the same without the console script

Works against real TF Serving and `serving.server` (`serving.client.IntentRecClient`).
``recommend update`` (a real-time intent update, paper §4.5) needs the analysis package and
lives in `analysis.cli`, which the console script points to; this module does not import
analysis.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from serving import contract

DEFAULT_TIMEOUT = 10.0


def build_parser(prog: str = "recommend") -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=prog, description="Top-k recommendations and predicted intents for one user "
        "history from an IntentRec model behind TF Serving or serving.server.")
    p.add_argument("--host", default="localhost:8500", help="host[:port] of the gRPC endpoint (not a URL)")
    p.add_argument("--port", type=int, default=None, help="port, when --host has none (default 8500)")
    p.add_argument("--model", "--model_name", dest="model", default=contract.DEFAULT_MODEL_NAME)
    p.add_argument("--version", type=int, default=None, help="model version (default: latest)")
    p.add_argument("--signature", default=contract.SERVING_SIGNATURE,
                   help=f"{contract.SERVING_SIGNATURE} (tf.Example) or {contract.RAW_SIGNATURE} (raw tensors)")
    p.add_argument("--history", required=True,
                   help="comma-separated item ids (oldest first), or a file of interactions: CSV/TSV with a "
                        "header holding item_id (timestamp, user_id, metadata columns optional), one id per "
                        "line, JSON lines or JSON")
    p.add_argument("--user", default=None, help="user id to pick from a multi-user history file")
    p.add_argument("--titles", default=None, help="item titles: JSON, CSV (item_id,title) or movies.dat")
    p.add_argument("--metadata", default=None, help=f"a {contract.METADATA_FILE} to use instead of the server's")
    p.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT)
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def light_tensorflow_protos() -> None:
    """Lets the CLI import the TF Serving / TF protos without initialising TensorFlow.

    ``tensorflow_serving.apis`` imports ``tensorflow.core.framework.*_pb2``, which runs
    ``tensorflow/__init__.py`` (10-20 s here). The client only needs the generated protos,
    so for a process that has not imported TensorFlow yet, ``tensorflow`` is registered as
    a bare package over its directory: the ``*_pb2`` modules load, TF itself does not (the
    process cannot use TF afterwards — only the CLI does this). INTENTREC_CLIENT_FULL_TF=1
    disables it.
    """
    if "tensorflow" in sys.modules or os.environ.get("INTENTREC_CLIENT_FULL_TF") == "1":
        return
    import importlib.util
    import types

    spec = importlib.util.find_spec("tensorflow")
    if spec is None or not spec.submodule_search_locations:
        return
    pkg = types.ModuleType("tensorflow")
    pkg.__path__ = list(spec.submodule_search_locations)
    pkg.__spec__ = spec
    pkg.__file__ = spec.origin
    sys.modules["tensorflow"] = pkg


def open_client(args):
    """(IntentRecClient, History) for parsed CLI arguments; ValueError/OSError on bad input.
    Item ids the model does not know are reported on stderr (they are served as OOV)."""
    from serving.client import IntentRecClient
    from serving.history import load_history

    history = load_history(args.history, args.user)
    client = IntentRecClient(args.host, args.port, args.model, args.signature, version=args.version,
                             timeout=args.timeout, metadata=args.metadata, titles=args.titles)
    return client, history


def warn_unknown_items(client, history) -> None:
    import grpc

    try:
        unknown = client.unknown_items(history.item_ids)
    except grpc.RpcError:
        return  # the Predict that follows reports the server problem
    if unknown:
        shown = ", ".join(unknown[:5]) + (", ..." if len(unknown) > 5 else "")
        print(f"warning: {len(unknown)} of {len(set(history.item_ids))} item ids are not in the model's "
              f"catalogue ({shown}); the model treats them as unknown (OOV)", file=sys.stderr)


def main(argv=None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] == ["update"]:
        print("error: `update` needs the analysis package: run `recommend update ...` (the console "
              "script) or `python -m analysis.cli update ...`", file=sys.stderr)
        return 2
    args = build_parser().parse_args(raw)
    if argv is None:  # the `recommend` / `python -m serving.cli` process
        light_tensorflow_protos()
    import grpc

    try:
        client, history = open_client(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        with client:
            warn_unknown_items(client, history)
            rec = client.recommend(history)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(rec.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(f"History: {len(history)} interactions (latest: {', '.join(history.item_ids[-5:])})")
        print(rec.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
