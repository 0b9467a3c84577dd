# Container image for the IntentRec TFX pipeline on Vertex AI Pipelines / Dataflow.
#
#   docker build -t us-docker.pkg.dev/PROJECT/intentrec/pipeline:latest .
#   docker push  us-docker.pkg.dev/PROJECT/intentrec/pipeline:latest
#   python -m pipeline.kubeflow_v2_runner --project PROJECT --bucket gs://BUCKET \
#       --image us-docker.pkg.dev/PROJECT/intentrec/pipeline:latest
#
# The base image carries TFX 1.16 (TensorFlow 2.16, TFT, TFMA, Beam) and the TFX
# container entrypoint that Vertex runs for every component; it also serves as the
# Dataflow SDK container (--sdk_container_image) so that Beam workers import the same
# code. We add Keras 3 and this repository (model/, datasets/, components/, pipeline/,
# serving/, analysis/), importable as top-level packages.
FROM gcr.io/tfx-oss-public/tfx:1.16.0

WORKDIR /intentrec
# Pinned versions from requirements.txt that the base image does not have at the
# same version (Keras 3 instead of the tf-keras default, and the serving API).
COPY requirements.txt /intentrec/requirements.txt
RUN python -m pip install --no-cache-dir \
        "$(grep -E '^keras==' requirements.txt)" \
        "$(grep -E '^tf-keras==' requirements.txt)" \
        "$(grep -E '^tensorflow-serving-api==' requirements.txt)" \
        "$(grep -E '^pandas==' requirements.txt)"

COPY pyproject.toml README.md /intentrec/
COPY datasets /intentrec/datasets
COPY model /intentrec/model
COPY components /intentrec/components
COPY pipeline /intentrec/pipeline
COPY serving /intentrec/serving
# The `recommend` console script (pyproject) lives in analysis/ (it also does real-time
# intent updates), so the image carries it too.
COPY analysis /intentrec/analysis
RUN python -m pip install --no-cache-dir --no-deps -e /intentrec

ENV PYTHONPATH=/intentrec:${PYTHONPATH} \
    KERAS_BACKEND=tensorflow \
    TF_CPP_MIN_LOG_LEVEL=1
# ENTRYPOINT is inherited from the TFX image (the component launcher).
