"""A small IntentRec-shaped SavedModel that honours the serving contract.

Used by the serving tests and by `bench.serving` until the pipeline pushes the real
model. It is a plain `tf.Module` (no Keras): a string->id lookup table over the
catalogue, an item embedding, per-head softmax intent classifiers, an attention over
heads (alpha), the fused intent embedding Z and a dot-product item head with top-k —
the same signatures, input and output names, dtypes and shapes as the exported model
(serving/contract.py), with realistic per-request work (tf.Example parsing of an n-long
history, table lookups, a [d] x [d, |catalogue|] matmul and top-k).

    python -m serving.fixture /tmp/serving_root/intentrec/1 --num-items 3706 --history 200
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from serving import contract

DEFAULT_HEADS = {
    # head -> labels (index 0/1 are padding/OOV, as datasets.schema reserves them)
    "action_type": ["<pad>", "<oov>", "play", "browse", "search", "rate"],
    "genre": ["<pad>", "<oov>", "Action", "Comedy", "Drama", "Horror", "Romance", "Sci-Fi",
              "Thriller", "Animation", "Documentary", "Children's"],
}


def item_ids(num_items: int) -> list[str]:
    return [str(i) for i in range(1, num_items + 1)]


def item_titles(num_items: int) -> dict[str, str]:
    return {i: f"Movie {i} ({1950 + int(i) % 70})" for i in item_ids(num_items)}


def build_fixture_model(
    export_dir: str,
    *,
    num_items: int = 200,
    history_length: int = 200,
    k: int = 10,
    d_model: int = 32,
    d_proj: int = 16,
    heads: dict[str, list[str]] | None = None,
    seed: int = 0,
    warmup_examples: int = 2,
    model_name: str = contract.DEFAULT_MODEL_NAME,
    metadata_signature: bool = True,
) -> str:
    """Writes the fixture SavedModel (+ assets.extra metadata and warm-up) to export_dir."""
    import tensorflow as tf

    from serving import warmup
    from serving.examples import make_example

    heads = dict(heads or DEFAULT_HEADS)
    head_names = list(heads)
    for h in head_names:
        contract.validate_head_name(h)
    ids = item_ids(num_items)
    rng = np.random.default_rng(seed)
    vocab = ["<pad>", "<oov>", *ids]
    action_labels = heads.get("action_type", DEFAULT_HEADS["action_type"])

    metadata = contract.make_metadata(
        head_names,
        intent_labels=heads,
        item_titles=item_titles(num_items),
        **{
            contract.META_K: k,
            contract.META_HISTORY_LENGTH: history_length,
            contract.META_EXAMPLE_FEATURES: {
                contract.EXAMPLE_ITEM_ID: "bytes",
                contract.EXAMPLE_TIMESTAMP: "int64",
                "action_type": "bytes",
            },
        },
    )
    metadata_json = json.dumps(metadata, sort_keys=True)

    def rand(*shape, scale=0.3):
        return (rng.standard_normal(shape) * scale).astype(np.float32)

    n = int(history_length)

    class IntentRecFixture(tf.Module):
        def __init__(self):
            super().__init__(name="intentrec_fixture")
            self.item_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(ids), tf.range(2, num_items + 2, dtype=tf.int64)
                ),
                default_value=1,
            )
            self.action_table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(
                    tf.constant(action_labels[2:]),
                    tf.range(2, len(action_labels), dtype=tf.int64),
                ),
                default_value=1,
            )
            emb = rand(num_items + 2, d_model)
            emb[0] = 0.0
            self.item_emb = tf.Variable(emb, name="item_emb")
            self.action_emb = tf.Variable(rand(len(action_labels), d_model), name="action_emb")
            self.head_w = [tf.Variable(rand(d_model, len(heads[h])), name=f"w_{h}") for h in head_names]
            self.head_proj = [tf.Variable(rand(len(heads[h]), d_proj), name=f"p_{h}") for h in head_names]
            self.alpha_w = tf.Variable(rand(d_model, len(head_names)), name="alpha_w")
            self.out_w = tf.Variable(rand(d_model + d_proj, d_model), name="out_w")
            self.vocab = tf.constant(vocab)
            self.head_names = tf.constant(head_names)
            self.metadata_json = tf.constant(metadata_json)

        def _core(self, item_id, timestamp, action_type):
            item_id = item_id[:, -n:]
            timestamp = timestamp[:, -n:]
            action_type = action_type[:, -n:]
            idx = tf.where(tf.equal(item_id, ""), tf.zeros_like(item_id, tf.int64),
                           self.item_table.lookup(item_id))
            act = tf.where(tf.equal(action_type, ""), tf.zeros_like(action_type, tf.int64),
                           self.action_table.lookup(action_type))
            mask = tf.cast(idx > 0, tf.float32)
            t = tf.cast(timestamp, tf.float32)
            age_days = (t[:, -1:] - t) / 86400.0
            w = mask / (1.0 + tf.maximum(age_days, 0.0) / 30.0)
            x = tf.gather(self.item_emb, idx) + tf.gather(self.action_emb, act)
            h = tf.reduce_sum(x * w[..., None], axis=1) / tf.maximum(
                tf.reduce_sum(w, axis=1, keepdims=True), 1e-6)
            probs = [tf.nn.softmax(tf.matmul(h, wi)) for wi in self.head_w]
            alpha = tf.nn.softmax(tf.matmul(h, self.alpha_w))
            z = tf.add_n([alpha[:, i:i + 1] * tf.matmul(p, pw)
                          for i, (p, pw) in enumerate(zip(probs, self.head_proj))])
            u = tf.matmul(tf.concat([h, z], axis=1), self.out_w)
            scores = tf.matmul(u, self.item_emb, transpose_b=True)
            reserved = tf.constant([-1e9, -1e9] + [0.0] * num_items, tf.float32)
            top = tf.math.top_k(scores + reserved, k=k)
            out = {
                contract.TOP_K_IDS: tf.gather(self.vocab, top.indices),
                contract.TOP_K_SCORES: top.values,
                contract.INTENT_EMBEDDING: z,
                contract.INTENT_ATTENTION: alpha,
                contract.PRIMARY_INTENT: tf.gather(self.head_names, tf.argmax(alpha, axis=1)),
            }
            for name, p in zip(head_names, probs):
                out[contract.intent_output_name(name)] = p
            return out

        @tf.function(input_signature=[
            tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT)])
        def serve_examples(self, examples):
            parsed = tf.io.parse_example(examples, {
                contract.EXAMPLE_ITEM_ID: tf.io.RaggedFeature(tf.string),
                contract.EXAMPLE_TIMESTAMP: tf.io.RaggedFeature(tf.int64),
                "action_type": tf.io.RaggedFeature(tf.string),
            })

            def left_pad(rt, default):
                rt = rt[:, -n:]
                lengths = tf.cast(rt.row_lengths(), tf.int64)
                dense = rt.to_tensor(default_value=default)
                width = tf.shape(dense, out_type=tf.int64)[1]
                src = tf.range(width)[None, :] - (width - lengths)[:, None]
                out = tf.gather(dense, tf.maximum(src, 0), batch_dims=1)
                return tf.where(src >= 0, out, tf.fill(tf.shape(out), default)), width

            items, width = left_pad(parsed[contract.EXAMPLE_ITEM_ID], "")
            # Metadata lists may be missing; align them to the item list's width.
            ts, _ = left_pad(parsed[contract.EXAMPLE_TIMESTAMP], tf.constant(0, tf.int64))
            acts, _ = left_pad(parsed["action_type"], "")
            ts = _fit(ts, width, tf.constant(0, tf.int64))
            acts = _fit(acts, width, "")
            return self._core(items, ts, acts)

        @tf.function(input_signature=[
            tf.TensorSpec([None, None], tf.string, name=contract.EXAMPLE_ITEM_ID),
            tf.TensorSpec([None, None], tf.int64, name=contract.EXAMPLE_TIMESTAMP),
            tf.TensorSpec([None, None], tf.string, name="action_type"),
        ])
        def serve_raw(self, item_id, timestamp, action_type):
            return self._core(item_id, timestamp, action_type)

        @tf.function(input_signature=[])
        def serve_metadata(self):
            return {contract.METADATA_OUTPUT: self.metadata_json}

    def _fit(t, width, default):
        # Left-pad or cut (keeping the latest) a [B, w] tensor to [B, width].
        w = tf.shape(t, out_type=tf.int64)[1]
        pad = tf.maximum(width - w, 0)
        t = tf.pad(t, [[0, 0], [pad, 0]], constant_values=default)
        return t[:, tf.shape(t, out_type=tf.int64)[1] - width:]

    module = IntentRecFixture()
    signatures = {
        contract.SERVING_SIGNATURE: module.serve_examples.get_concrete_function(),
        contract.RAW_SIGNATURE: module.serve_raw.get_concrete_function(),
    }
    if metadata_signature:
        signatures[contract.METADATA_SIGNATURE] = module.serve_metadata.get_concrete_function()
    tf.saved_model.save(module, export_dir, signatures=signatures)
    contract.write_metadata(export_dir, metadata)
    if warmup_examples:
        examples = [
            make_example(ids[: min(num_items, 5 + 3 * i)],
                         timestamps=list(range(0, 86400 * (5 + 3 * i), 86400))[: min(num_items, 5 + 3 * i)])
            for i in range(warmup_examples)
        ]
        warmup.write_warmup_requests(export_dir, examples, model_name=model_name)
    return export_dir


def random_history(num_items: int, length: int, seed: int = 0) -> dict:
    """A random user history (item ids, daily timestamps, action types) for tests/bench."""
    rng = np.random.default_rng(seed)
    items = [str(int(i)) for i in rng.integers(1, num_items + 1, size=length)]
    start = 978_300_000
    timestamps = [start + 3600 * j for j in range(length)]
    actions = [DEFAULT_HEADS["action_type"][int(a)] for a in rng.integers(2, 6, size=length)]
    return {"item_ids": items, "timestamps": timestamps, "metadata": {"action_type": actions}}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("export_dir")
    p.add_argument("--num-items", type=int, default=3706)
    p.add_argument("--history", type=int, default=200)
    p.add_argument("--k", type=int, default=10)
    args = p.parse_args(argv)
    build_fixture_model(args.export_dir, num_items=args.num_items, history_length=args.history, k=args.k)
    print(os.path.abspath(args.export_dir))


if __name__ == "__main__":
    main()
