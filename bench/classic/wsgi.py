"""FROZEN reference app (issue 14): Flask, reads the body, returns a constant. No model, no checks."""

from flask import Flask, Response, request

app = Flask("classic_noop")
ANSWER = b'{"predictions":[{"label":"<=50K","probability":0.5}]}'


@app.route("/ping", methods=["GET"])
def ping() -> Response:
    return Response(b"\n", status=200, mimetype="application/json")


@app.route("/invocations", methods=["POST"])
def invocations() -> Response:
    request.get_data()  # receive the body, then skip all the work
    return Response(ANSWER, status=200, mimetype="application/json")
