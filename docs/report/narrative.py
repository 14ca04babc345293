"""The report's prose: what each service does and why, the challenges, the conclusion.

Sentences that depend on the artifacts take the manifest and format its values; the rest describes
design decisions visible in the code. No metric is written here by hand.
"""

from __future__ import annotations

from typing import Any

from .diagram import DiagramSettings

EDA_CAPTIONS: dict[str, str] = {
    "class_balance": "Class balance in the training and test files.",
    "missingness": "Missing values per column, and the >50K rate with and without a value.",
    "numeric_by_class": "Numeric features by class (capital gains and losses on a log1p scale).",
    "categorical_rates_household": ">50K rate per category (most frequent levels): household and "
    "demographic features.",
    "categorical_rates_work": ">50K rate per category (most frequent levels): work and origin features.",
    "associations": "Pairwise association between columns and with the target "
    "(Cramér's V / correlation ratio / correlation).",
}
EVALUATION_CAPTIONS: dict[str, str] = {
    "cv_roc_pr": "Out-of-fold ROC and precision-recall curves of every candidate (training split, CV).",
    "roc_curve": "ROC curve of the released model on the test set; the red dot marks the decision threshold.",
    "pr_curve": "Precision-recall curve on the test set, the red dot is the operating point at the "
    "threshold.",
    "confusion_matrix": "Confusion matrix on the test set at the decision threshold.",
    "calibration": "Calibration on the test set: predicted probability against the observed >50K rate.",
}

AWS_DIAGRAM_CAPTION = (
    "AWS deployment created by 'python -m pipeline deploy'. Request path (top): client, API Gateway, Lambda, "
    "SageMaker endpoint. Training and release path (bottom): ECR image, training job, model.tar.gz in S3, "
    "endpoint."
)
LOCAL_DIAGRAM_CAPTION = (
    "The local cloud started by 'python -m pipeline local up': the same Lambda handler code and serving "
    "container, with two loopback services standing in for API Gateway and the SageMaker runtime API."
)

LOCAL_TEXT = (
    "Nothing in AWS can be exercised without an account, and a mocked AWS (moto) neither enforces API keys "
    "nor runs a model. So the project ships a local cloud: a small local API Gateway that checks the "
    "x-api-key header against usage-plan keys and applies the plan's token-bucket throttling, and a local "
    "InvokeEndpoint service that speaks the sagemaker-runtime wire protocol (so boto3 and the SageMaker SDK "
    "talk to it unchanged through AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME). Between them runs the real Lambda "
    "handler, and behind them the real serving container. Every request in the terminal captures below went "
    "through this path."
)


def artifact_contents(manifest: dict[str, Any]) -> str:
    """What model.tar.gz holds, from the manifest's checksummed file list (plus the manifest itself)."""
    files = sorted(manifest.get("artifact_files") or {})
    return ", ".join([*files, "manifest.json"])


def services(s: DiagramSettings, manifest: dict[str, Any], retention: dict[str, int]) -> list[dict[str, str]]:
    """One row per AWS service in the diagram: its job here and why it was chosen. ``retention`` says how
    long deploy keeps logs, replaced S3 versions and untagged images (docs.report.operations.retention)."""
    return [
        {
            "name": "API Gateway (REST API)",
            "role": f"Public HTTPS entry point, stage '{s.stage}'. Every method requires an API key; a usage "
            f"plan limits each key to {s.throttle_rate:g} requests/s (burst {s.throttle_burst}) and "
            f"{s.quota}.",
            "why": "Per-client keys, throttling and quotas without writing authentication code. A REST API "
            "rather than an HTTP API, because only REST APIs have API keys and usage plans.",
        },
        {
            "name": "AWS Lambda",
            "role": "Proxy integration: turns the API request into an InvokeEndpoint call and the endpoint's "
            "answer (or error) into a JSON response with the right status; one JSON log line per request.",
            "why": "The SageMaker endpoint is not public (it needs SigV4-signed calls); Lambda holds that "
            "one IAM permission, scales with traffic and costs nothing when idle.",
        },
        {
            "name": "SageMaker real-time endpoint",
            "role": f"Runs the project's own container ({s.instance_type}): nginx, gunicorn and a Flask app "
            "with /ping and /invocations, scoring JSON, CSV or JSON Lines records with the released "
            "pipeline.",
            "why": "Managed hosting with health checks, blue/green updates and CloudWatch metrics; "
            "bring-your-own-container keeps the exact scikit-learn version and code we tested.",
        },
        {
            "name": "Application Auto Scaling",
            "role": f"Target tracking on invocations per instance (target {s.target_invocations}/minute), "
            f"between {s.autoscaling_min} and {s.autoscaling_max} instances.",
            "why": "Capacity follows load without paying for peak all day.",
        },
        {
            "name": "SageMaker training job",
            "role": "Runs the same image's train program on the data channel and writes model.tar.gz "
            f"({artifact_contents(manifest)}) to S3.",
            "why": "Training is reproducible and off the laptop, with the same code the tests run locally.",
        },
        {
            "name": "Amazon S3",
            "role": "Holds the training data and the model artifacts: each training job writes its "
            "model.tar.gz under its own job name, so a new job never overwrites an earlier artifact. The "
            "bucket deploy creates is private, encrypted, TLS-only (its policy denies plain HTTP) and "
            "versioned; a replaced object version expires after "
            f"{retention['noncurrent_days']} days, and teardown deletes every version.",
            "why": "Where SageMaker reads channels and model data from.",
        },
        {
            "name": "Amazon ECR",
            "role": "Holds the one image used for both training and serving, tagged by a digest of its "
            "build context (tags are immutable). Untagged images expire after "
            f"{retention['untagged_days']} day(s); tagged ones stay until teardown deletes the repository.",
            "why": "SageMaker pulls custom images only from ECR.",
        },
        {
            "name": "IAM",
            "role": "Separate least-privilege roles: SageMaker reads and writes only under the project's S3 "
            "prefix and pulls the image; the Lambda may invoke only this endpoint. Each role trusts only "
            "its service acting for this account (aws:SourceAccount, and aws:SourceArn for SageMaker).",
            "why": "A leaked or buggy component can do only its own job.",
        },
        {
            "name": "CloudWatch (logs, alarms)",
            "role": "Logs of the container and the proxy (one JSON line per request), in log groups deploy "
            f"creates with a {retention['log_days']}-day retention before anything writes to them; alarms "
            "on server errors and p99 model latency that SageMaker watches during a blue/green endpoint "
            "update.",
            "why": "Every request leaves a trace, and a bad model version rolls back automatically.",
        },
    ]


def run_label(where: str) -> dict[str, str]:
    """Wording that says, on every page, where the evidence in this report was recorded."""
    if where == "AWS":
        return {
            "where": "AWS",
            "short_label": "Evidence: AWS deployment",
            "banner": "The terminal captures in this report were recorded against a real AWS deployment.",
            "summary": "The deployment evidence (see Deployment Architecture) was recorded against the AWS "
            "deployment.",
            "evidence_heading": "The deployment at work (AWS run)",
            "evidence_text": "Real requests against the deployed API, recorded with their actual output.",
        }
    return {
        "where": "LOCAL",
        "short_label": "LOCAL run: no AWS deployment",
        "banner": "LOCAL RUN: the deployment evidence in this report comes from the local cloud on one "
        "machine. No AWS deployment was made for this report.",
        "summary": "No AWS account was used for this report: the AWS resources are created by code that is "
        "tested against a mocked AWS, and the request path was exercised end to end on the local cloud (see "
        "Deployment Architecture), which runs the real Lambda handler and the real serving container behind "
        "local stand-ins for API Gateway and the SageMaker runtime.",
        "evidence_heading": "The deployment at work (LOCAL run)",
        "evidence_text": "Terminal sessions recorded while 'make report' ran the local cloud: the commands "
        "as typed and their real output. The API key is passed through the API_KEY environment variable and "
        "never printed.",
    }


def preprocessing_text(manifest: dict[str, Any]) -> str:
    """How raw records become model input."""
    schema = manifest["schema"]
    numeric = [f["name"] for f in schema["features"] if f["kind"] == "numeric"]
    categorical = [f["name"] for f in schema["features"] if f["kind"] == "categorical"]
    return (
        "One function, pipeline.features.to_model_frame, turns any input (training files, JSON, CSV) into "
        "the frame the model consumes: every spelling of missing (null, empty, '?', NaN) becomes NaN for "
        "numbers and an empty string for categories, with dtypes that do not depend on the number of rows. "
        f"Inside the fitted pipeline a ColumnTransformer imputes the {len(numeric)} numeric features with "
        f"the median and standardises them, and imputes the {len(categorical)} categorical features with a "
        "constant 'missing' level before one-hot encoding (unknown categories encode as all zeros). "
        "Preprocessing is part of the saved pipeline, so serving cannot drift from training."
    )


def training_text(manifest: dict[str, Any]) -> str:
    """How the model was selected, with the run's own settings."""
    training = manifest["training"]
    config = training["config"]
    search = training.get("search") or {}
    names = ", ".join(c.replace("_", " ") for c in config["candidates"])
    text = (
        f"Candidates ({names}) were cross-validated with {config['cv_folds']}-fold stratified CV (seed "
        f"{config['random_state']}) on the training split only. "
    )
    if search:
        text += (
            f"The leader by mean ROC AUC ({search['family'].replace('_', ' ')}) was then tuned by a seeded "
            f"random search: {search['evaluated']} of {search['planned']} planned configurations evaluated "
            f"within a {search['budget_seconds']:g} s budget. "
        )
    text += (
        f"The decision threshold rule: {manifest['threshold_rule']}. The winning configuration was refitted "
        "on all training rows (python -m pipeline train; in AWS, the same code inside the training job)."
    )
    return text


CHALLENGES: list[dict[str, str]] = [
    {
        "problem": "A single record with a missing category scored differently from the same record in a "
        "batch: pandas gives a one-row object column None where a batch has NaN, and the imputer does not "
        "treat None as missing.",
        "solution": "One gate, to_model_frame, normalises every missing form to one representation per kind, "
        "with row-count-independent dtypes; training and serving both call it, and tests compare single-row "
        "and batch scores.",
    },
    {
        "problem": "The canonical SageMaker bring-your-own-container examples use SDK v2 (Estimator, "
        "Predictor), which SDK v3 removed; v2 is in maintenance mode.",
        "solution": "The notebooks use SDK v3: ModelTrainer with our image for training and sagemaker-core "
        "Endpoint.invoke with explicit content types for prediction. The deploy command uses plain boto3, so "
        "it does not depend on either SDK.",
    },
    {
        "problem": "Without an AWS account the request path could not be tested, and the AWS mock (moto) "
        "never enforces API keys, never throttles and cannot run the model.",
        "solution": "The local cloud: a local API Gateway enforcing keys and usage-plan throttling, and a "
        "local InvokeEndpoint in front of the real container, with the real Lambda handler between them. The "
        "AWS control-plane code is tested against moto.",
    },
    {
        "problem": "Timeouts and size limits differ at each hop (API Gateway 29 s and 10 MB, Lambda 6 MB, "
        "InvokeEndpoint 6 MB and 60 s), and an exceeded limit surfaced as an opaque 502 or 500.",
        "solution": "Timeouts are nested: the Lambda's InvokeEndpoint read timeout sits inside its own "
        "timeout, which sits inside the gateway's 29 s, so a slow model yields a JSON 504 model_timeout. "
        "nginx and the app answer oversized, wrongly typed or invalid bodies with JSON 413, 415 or 400, "
        "never an HTML page.",
    },
    {
        "problem": "On two cores, several gunicorn workers each starting one OpenMP thread per core "
        "oversubscribe the CPU and collapse throughput.",
        "solution": "The container pins numerical libraries to one thread per worker and sizes workers to "
        "the CPU count (SAGEMAKER_MODEL_SERVER_WORKERS).",
    },
    {
        "problem": "A pickled model is code: loading a tampered file, or one pickled by another scikit-learn "
        "version, can run anything or score wrongly.",
        "solution": "The artifact's manifest stores SHA-256 checksums and library versions; load_artifact "
        "verifies both before unpickling and refuses with a clear error otherwise.",
    },
    {
        "problem": "A hand-written report goes stale the day the model is retrained.",
        "solution": "This report is generated: metrics come from the manifest, figures from the evaluation "
        "outputs, the diagram from code, and the screenshots from a recorded run whose captions are checked "
        "against the recorded statuses; a test traces every number in it to a source file.",
    },
]

FUTURE_WORK: list[str] = [
    "Run the deployment in a real AWS account and include that run's captures (make report picks them up "
    "from docs/report/captures/cloud/).",
    "Monitor data drift: compare live request statistics with the training distribution recorded in the "
    "manifest, with SageMaker Model Monitor or a scheduled job on the captured data.",
    "Calibrate probabilities explicitly if callers need them as risk estimates, and review the per-group "
    "gaps before any use in decisions about people.",
    "Add a CI/CD pipeline that retrains on new data, compares the candidate with the released model on the "
    "same test split, and promotes it with a blue/green endpoint update only when it is at least as good.",
]


def conclusion_text(manifest: dict[str, Any], where: str) -> str:
    """The closing paragraph, with the released model's test numbers."""
    test = manifest["metrics"]["test"]
    deployed = (
        "has been exercised against AWS"
        if where == "AWS"
        else "has been exercised end to end on the local cloud (not in AWS)"
    )
    return (
        f"The released model reaches a test ROC AUC of {test['roc_auc']:.4f} and F1 of {test['f1']:.4f} on "
        "data it never saw during development. It is packaged once, served by one container that also "
        "trains it, and reached through an API with per-client keys and throttling; the whole request path "
        f"{deployed}. The project's value is that every step, from the raw files to this PDF, is code that "
        "runs in CI."
    )


PREREQUISITES: list[str] = [
    "An AWS account and credentials the AWS SDK finds (aws configure, aws sso login with AWS_PROFILE, or "
    "the AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY variables); the identity needs the deployer policy "
    "policies/deployer.json (python -m pipeline policy prints it for an account), because deploy creates "
    "IAM roles.",
    "Docker able to build linux/amd64 images (SageMaker runs x86_64 only).",
    "The project's virtual environment (make venv); the SageMaker Python SDK is not needed.",
    "A service quota for the endpoint instance type (new accounts often have 0 for ml.m5.large endpoint "
    "usage; request an increase in Service Quotas).",
]

DEPLOY_COMMANDS = """python -m pipeline deploy --dry-run      # the plan: every name and setting; no AWS call
python -m pipeline preflight             # read-only checks: credentials, Docker, quotas, IAM, cost
python -m pipeline deploy                # build + push, train, endpoint, autoscaling, Lambda, API
python -m pipeline status                # what exists, endpoint state, the API URL, key ids
python -m pipeline keys create alice     # key on the usage plan -> .secrets/adult-income-alice.key
python -m pipeline keys revoke <key id>  # off the plan and deleted: its requests get 403
python -m pipeline teardown              # lists everything, asks, deletes (billable first)"""


def deployment_time_text(manifest: dict[str, Any]) -> str:
    """What is known about how long a deployment takes, and what is not measured."""
    durations = (manifest.get("volatile") or {}).get("durations_seconds") or {}
    total = durations.get("total")
    measured = (
        f"The training itself took {total:.0f} s of compute for the released model on a 2-core machine "
        "(model/manifest.json, the same code the training job runs). "
        if total
        else ""
    )
    return (
        measured + "In AWS, SageMaker adds the time to provision the training instance and the endpoint "
        "instances and to pull the image; deploy prints the elapsed time of each wait. Those AWS wall "
        "times are not given here because no AWS deployment was made for this report."
    )


def resilience_text(s: DiagramSettings, count: str) -> str:
    """What the default of one instance costs in availability."""
    return (
        f"By default the endpoint runs {count} instance (endpoint.initial_instance_count = {count}, "
        f"autoscaling_min = {s.autoscaling_min} in config/deploy.toml): the cheapest setting, and a single "
        "point of failure. If that instance fails, or its Availability Zone has an outage, the API answers "
        "503/502 until SageMaker has replaced the instance, which takes minutes; autoscaling adds "
        "instances only under load. With two or more instances SageMaker spreads the variant's instances "
        "across Availability Zones, so one instance or one zone can fail while the other keeps serving. "
        "That doubles the endpoint's floor cost (see the cost table). It is a configuration change, not "
        "a code change: either of"
    )


API_TEXT = (
    "The API has two routes on one stage, both requiring a key: POST /predict and GET /health. Records "
    'are JSON (one object, a list, or {"instances": [...]}), CSV (header row optional) or JSON Lines; '
    "the Accept header chooses JSON (default), CSV or JSON Lines for the answer. Each prediction is the "
    "label at the threshold stored in the artifact and the probability of >50K. Every error, from "
    'every hop, is JSON naming the problem: API Gateway\'s own answers are {"message": ...}, the '
    "Lambda's and the container's are {\"error\": {code, message, details, request_id}}."
)


def security_points(unscoped: list[str]) -> list[str]:
    """The security list; ``unscoped`` are the actions the roles hold on ``*`` (from the policies)."""
    return [*SECURITY_POINTS[:3], _iam_point(unscoped), *SECURITY_POINTS[3:]]


def _iam_point(unscoped: list[str]) -> str:
    return (
        "Least-privilege IAM: one inline policy per role, no wildcard actions, no iam: actions, no managed "
        "policies; every resource is this project's (S3 prefix, bucket, repository, endpoint, log groups; "
        "training logs go to SageMaker's account-wide /aws/sagemaker/TrainingJobs group) except "
        f"{' and '.join(unscoped)}, which AWS cannot scope to a resource "
        "(tests/security/test_iam_and_artifact.py). Each role's trust policy admits only its service "
        "acting for this account (aws:SourceAccount); the SageMaker role also requires a SageMaker "
        "resource of this account and region as aws:SourceArn. The actions are listed below, from the "
        "policy documents deploy creates."
    )


SECURITY_POINTS: list[str] = [
    "Key lifecycle: python -m pipeline keys create NAME adds a key to the usage plan and writes its value "
    "to .secrets/<prefix>-NAME.key (mode 0600; never printed, never logged); keys list shows ids, names "
    "and state, never values; keys revoke ID takes the key off the plan and deletes it, and its requests "
    "get 403 from then on. The local cloud has the same commands with --local.",
    "Hashing and comparison: API Gateway checks keys in AWS. The local gateway stores only SHA-256 "
    "hashes of key values and compares the presented key's hash with every stored hash using "
    "hmac.compare_digest, without stopping at the first match, so timing does not reveal how much of a "
    "key was right.",
    "TLS: the API's only address is the REGIONAL execute-api HTTPS endpoint, so keys and records travel "
    "encrypted; the Lambda reaches the SageMaker runtime over HTTPS with SigV4-signed calls. The S3 "
    "bucket deploy creates denies every request made without TLS (bucket policy on "
    "aws:SecureTransport), blocks public access and encrypts objects at rest. The local cloud is plain "
    "HTTP on 127.0.0.1 only.",
    "Limits: body size capped at every hop (10 MiB gateway, 6 MiB Lambda and container), a usage plan "
    "per key (rate, burst, daily quota), and the model artifact's checksums verified before unpickling.",
]

ENGINE_TEXT = (
    "The artifact carries two scorers of the same fitted pipeline: model.joblib (scikit-learn) and "
    "model.onnx, an ONNX export of the whole pipeline, preprocessing included. The export is promoted to "
    "float64 (a float32 tree threshold moves records that sit exactly on a split), and it ships only if "
    "a parity gate passes: the held-out test file plus edge records (every spelling of missing, unknown "
    "and unusual categories, domain bounds, extreme numbers) are scored by both engines' own code paths, "
    "and labels must be identical and probabilities equal within the tolerance. The container then "
    "scores with ONNX Runtime, imports no pandas or scikit-learn, and keeps scikit-learn as the "
    "reference and fallback (MODEL_SERVER_ENGINE=sklearn forces it)."
)
