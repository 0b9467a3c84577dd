"""Serving IntentRec: the TF Serving contract, our TF-Serving-compatible server and the client.

See docs/serving.md. Entry points: ``python -m serving.server`` (gRPC + REST model server),
``recommend`` / ``python -m serving.client`` (CLI), ``serving.client.IntentRecClient``.
Nothing is imported here, so that ``serving.contract`` stays cheap to import.
"""
