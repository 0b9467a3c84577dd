"""The ``recommend`` console script: `serving.cli` plus ``recommend update``.

    recommend --host localhost:8500 --history 1193,661,914           # serving.cli
    recommend update --host localhost:8500 --history user42.csv --event item_id=1193,action_type=continue

``update`` runs the served model on [history, history + event] in one call and prints the
intents, α and recommendations before and after the event (paper §4.5;
`analysis.realtime.update_intents`). It lives here because it needs the analysis package,
which depends on serving and not the other way round.
"""

from __future__ import annotations

import json
import sys

from serving import cli


def build_update_parser():
    p = cli.build_parser("recommend update")
    p.add_argument("--event", default=None,
                   help="the new interaction: key=value,... or JSON (e.g. item_id=1193,action_type=continue)")
    return p


def main(argv=None) -> int:
    raw = list(sys.argv[1:] if argv is None else argv)
    if raw[:1] != ["update"]:
        return cli.main(argv)
    args = build_update_parser().parse_args(raw[1:])
    if not args.event:
        print("error: `recommend update` needs --event", file=sys.stderr)
        return 2
    if argv is None:
        cli.light_tensorflow_protos()
    import grpc

    from analysis.realtime import ServedBackend, history_rows, parse_event, update_intents

    try:
        event = parse_event(args.event)
        client, history = cli.open_client(args)
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        with client:
            cli.warn_unknown_items(client, history)
            upd = update_intents(ServedBackend(client), history_rows(history), event)
    except grpc.RpcError as e:
        print(f"error: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(upd.to_dict(), indent=2, default=str, ensure_ascii=False) if args.json else upd.format())
    return 0


if __name__ == "__main__":
    sys.exit(main())
