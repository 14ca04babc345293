"""The deployment architecture diagrams, drawn from code with the ``diagrams`` package and Graphviz.

Two pictures: the AWS deployment (request path left to right, the training/deploy path feeding the
endpoint from below) and the local cloud that runs the same request path on one machine. Labels carry
the settings that matter (throttling, autoscaling bounds) read from ``config/deploy.toml`` through the
project's own configuration loader, so the picture cannot disagree with what ``deploy`` creates.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

GRAPH_ATTR = {"fontsize": "20", "fontname": "DejaVu Sans", "pad": "0.4", "nodesep": "0.7", "ranksep": "1.0"}
NODE_ATTR = {"fontsize": "15", "fontname": "DejaVu Sans"}
EDGE_ATTR = {"fontsize": "13", "fontname": "DejaVu Sans"}
CLUSTER_ATTR = {"fontsize": "16", "fontname": "DejaVu Sans Bold"}
BIG_CLUSTER_ATTR = {**CLUSTER_ATTR, "fontsize": "20"}


@dataclass(frozen=True)
class DiagramSettings:
    """The deployment settings a diagram label shows."""

    stage: str
    throttle_rate: float
    throttle_burst: int
    quota: str
    endpoint_mode: str
    instance_type: str
    autoscaling_min: int
    autoscaling_max: int
    target_invocations: int


def settings_from_config() -> DiagramSettings:
    """Read the label values from the project's deploy configuration (one source of truth)."""
    import tomllib

    from . import paths

    try:
        from pipeline.cloud.config import load_config
    except ModuleNotFoundError:  # the cloud package is optional for the diagram: read the TOML directly
        raw = tomllib.loads(paths.DEPLOY_CONFIG.read_text())
        api, ep = raw["api"], raw["endpoint"]
        return DiagramSettings(
            stage=api["stage"],
            throttle_rate=float(api["throttle_rate"]),
            throttle_burst=int(api["throttle_burst"]),
            quota=f"{api['quota_limit']:,}/{api['quota_period'].lower()}",
            endpoint_mode=ep["mode"],
            instance_type=ep["instance_type"],
            autoscaling_min=int(ep["autoscaling_min"]),
            autoscaling_max=int(ep["autoscaling_max"]),
            target_invocations=int(ep["autoscaling_target_invocations"]),
        )
    cfg = load_config()
    return DiagramSettings(
        stage=cfg.api.stage,
        throttle_rate=float(cfg.api.throttle_rate),
        throttle_burst=int(cfg.api.throttle_burst),
        quota=f"{cfg.api.quota_limit:,}/{str(cfg.api.quota_period).lower()}",
        endpoint_mode=cfg.endpoint.mode,
        instance_type=cfg.endpoint.instance_type,
        autoscaling_min=int(cfg.endpoint.autoscaling_min),
        autoscaling_max=int(cfg.endpoint.autoscaling_max),
        target_invocations=int(cfg.endpoint.autoscaling_target_invocations),
    )


def draw_aws_architecture(destination: Path, settings: DiagramSettings) -> Path:
    """Draw the AWS deployment: client → API Gateway → Lambda → endpoint ← S3 ← training job ← ECR."""
    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import ECR, ApplicationAutoScaling, Lambda
    from diagrams.aws.management import CloudwatchLogs
    from diagrams.aws.ml import Sagemaker, SagemakerTrainingJob
    from diagrams.aws.network import APIGateway
    from diagrams.aws.storage import S3
    from diagrams.onprem.client import Client
    from diagrams.onprem.container import Docker

    s = settings
    with (
        _diagram_file(destination) as stem,
        Diagram(
            "",
            filename=str(stem),
            outformat="png",
            show=False,
            direction="LR",
            graph_attr={**GRAPH_ATTR, "nodesep": "0.9", "ranksep": "1.2"},
            node_attr={**NODE_ATTR, "fontsize": "19"},
            edge_attr=EDGE_ATTR,
        ),
    ):
        client = Client("client\n(x-api-key)")
        with Cluster("AWS account (one region)", graph_attr=BIG_CLUSTER_ATTR):
            gateway = APIGateway(
                f"API Gateway (REST)\nstage '{s.stage}', key required\n"
                f"{s.throttle_rate:g} req/s, burst {s.throttle_burst}\n{s.quota}"
            )
            proxy = Lambda("Lambda proxy\n/predict, /health")
            logs = CloudwatchLogs("CloudWatch Logs")
            with Cluster("SageMaker real-time endpoint", graph_attr=BIG_CLUSTER_ATTR):
                endpoint = Sagemaker(f"endpoint\n{s.instance_type}")
                scaling = ApplicationAutoScaling(
                    f"autoscaling {s.autoscaling_min} to {s.autoscaling_max}\n"
                    f"{s.target_invocations} invocations/\ninstance/minute"
                )
            artifact = S3("S3: model.tar.gz")
            training = SagemakerTrainingJob("training job\n(image's train)")
            data = S3("S3: training data")
            registry = ECR("ECR: one image\n(train + serve)")
        build = Docker("docker build")

        (
            client
            >> Edge(fontsize="16", label="POST /predict")
            >> gateway
            >> Edge(fontsize="16", label="proxy event")
            >> proxy
        )
        proxy >> Edge(fontsize="16", label="InvokeEndpoint") >> endpoint
        proxy >> Edge(style="dashed") >> logs
        scaling >> Edge(style="dashed", fontsize="16", label="scales") >> endpoint
        data >> Edge(fontsize="16", label="channel 'train'") >> training
        registry >> Edge(fontsize="16", label="image") >> training
        training >> Edge(fontsize="16", label="writes") >> artifact
        artifact >> Edge(fontsize="16", label="ModelDataUrl") >> endpoint
        registry >> Edge(fontsize="16", label="serving image") >> endpoint
        build >> Edge(fontsize="16", label="push") >> registry
    return destination


def draw_local_architecture(destination: Path) -> Path:
    """Draw the local cloud: the same request path with two loopback stand-ins for the AWS services."""
    from diagrams import Cluster, Diagram, Edge
    from diagrams.aws.compute import Lambda
    from diagrams.onprem.client import Client
    from diagrams.onprem.container import Docker
    from diagrams.onprem.network import Gunicorn, Nginx
    from diagrams.programming.framework import Flask
    from diagrams.programming.language import Python

    # This picture is wide, so it prints smaller than the AWS one: larger type keeps it readable.
    with (
        _diagram_file(destination) as stem,
        Diagram(
            "",
            filename=str(stem),
            outformat="png",
            show=False,
            direction="LR",
            graph_attr={**GRAPH_ATTR, "fontsize": "24", "nodesep": "0.5", "ranksep": "0.9", "pad": "0.5"},
            node_attr={**NODE_ATTR, "fontsize": "17"},
            edge_attr={**EDGE_ATTR, "fontsize": "17"},
        ),
    ):
        client = Client("client or\nnotebook")
        with Cluster("one machine, loopback only (127.0.0.1)", graph_attr=BIG_CLUSTER_ATTR):
            gateway = Python("local API Gateway:\nkey, usage plan,\n429 throttling")
            proxy = Lambda("the real\nLambda handler")
            runtime = Python("local\nInvokeEndpoint")
            with Cluster("the real serving container", graph_attr=BIG_CLUSTER_ATTR):
                nginx = Nginx("nginx :8080")
                gunicorn = Gunicorn("gunicorn")
                app = Flask("Flask app\n/invocations")
            docker = Docker("the image\nSageMaker runs")
        (
            client
            >> Edge(fontsize="17", label="HTTP + x-api-key")
            >> gateway
            >> Edge(fontsize="17", label="proxy event")
            >> proxy
        )
        proxy >> Edge(fontsize="17", label="boto3") >> runtime >> nginx >> gunicorn >> app
        docker >> Edge(style="dashed", fontsize="17") >> nginx
    return destination


class _diagram_file:
    """Build a diagram in a scratch directory and move the PNG into place only when it is complete."""

    def __init__(self, destination: Path) -> None:
        self.destination = destination

    def __enter__(self) -> Path:
        self._tmp = tempfile.TemporaryDirectory()
        return Path(self._tmp.name) / "diagram"

    def __exit__(self, exc_type: object, *_: object) -> None:
        try:
            if exc_type is None:
                self.destination.parent.mkdir(parents=True, exist_ok=True)
                shutil.move(Path(self._tmp.name) / "diagram.png", self.destination)
        finally:
            self._tmp.cleanup()
