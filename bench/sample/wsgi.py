"""FROZEN reference (issue 12): the AWS sample's predictor, as users copy it, on our model.

``/invocations`` as in ``scikit_bring_your_own/container/decision_trees/predictor.py``: decode the
CSV body, ``pandas.read_csv(header=None)``, ``model.predict``, write the predictions with
``DataFrame.to_csv``; the model is loaded from ``MODEL_DIR`` on first use. The only changes: column
names for ``read_csv`` (our pipeline selects columns by name) and ``keep_default_na=False`` (an
empty category must stay ``""``, the pipeline's missing marker), and the environment's
``OMP_NUM_THREADS=1`` (the fix the sample lacks; the benchmark sets it). No validation, no JSON.
"""

import io
import os
from pathlib import Path

import flask
import joblib
import pandas as pd

from pipeline.schema import SCHEMA

app = flask.Flask("sample_predictor")
_model = {}


def get_model():
    if "pipeline" not in _model:
        _model["pipeline"] = joblib.load(Path(os.environ["MODEL_DIR"]) / "model.joblib")
    return _model["pipeline"]


@app.route("/ping", methods=["GET"])
def ping():
    status = 200 if get_model() is not None else 404
    return flask.Response(response="\n", status=status, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def transformation():
    if flask.request.content_type != "text/csv":
        return flask.Response(
            response="This predictor only supports CSV data", status=415, mimetype="text/plain"
        )
    data = flask.request.data.decode("utf-8")
    frame = pd.read_csv(io.StringIO(data), header=None, names=SCHEMA.names, keep_default_na=False)
    predictions = get_model().predict(frame)
    out = io.StringIO()
    pd.DataFrame({"results": predictions}).to_csv(out, header=False, index=False)
    return flask.Response(response=out.getvalue(), status=200, mimetype="text/csv")
