"""The deployment architecture diagrams, drawn from code with Graphviz and the ``diagrams`` package's icons.

Two pictures: the AWS deployment (request path on top, the training/release path feeding the endpoint
from below) and the local cloud that runs the same request path on one machine. Labels carry the settings
that matter (throttling, autoscaling bounds) read from ``config/deploy.toml`` through the project's own
configuration loader, so the picture cannot disagree with what ``deploy`` creates.

Each node is a two-cell table: the icon, and its label underneath. Edges attach to the icon cell (a
Graphviz port), so an arrow always ends at an icon and no label is ever drawn over an icon; the
``diagrams`` package's own nodes centre the icon in a box and let longer labels run over it.
"""

from __future__ import annotations

import html
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

FONT = "DejaVu Sans"
NODE_FONT = 22  # with these sizes every label prints at 8 pt or more (tests/report checks it)
EDGE_FONT = 20
CLUSTER_FONT = 24
ICON_PIXELS = 84
PRINT_WIDTH_INCHES = 178 / 25.4  # the report's text width (A4 less 2 x 16 mm margins)
SCREEN_DPI = 96  # Graphviz renders PNGs at 96 pixels per inch
ICON_PORT = "icon"
INK = "#2D3436"


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


def printed_font_points(png: Path, fontsize: float = min(NODE_FONT, EDGE_FONT)) -> float:
    """The size, in points, of a ``fontsize`` label of ``png`` when the report prints it.

    The report prints a diagram at its natural size (96 px per inch), scaled down to the text width when
    it is wider, never up.
    """
    from PIL import Image

    with Image.open(png) as image:
        width_inches = image.width / SCREEN_DPI
    return fontsize * min(1.0, PRINT_WIDTH_INCHES / width_inches)


def icon_path(kind: type) -> str:
    """The PNG icon the ``diagrams`` package ships for node class ``kind``."""
    import diagrams

    return str(Path(diagrams.__file__).resolve().parent.parent / kind._icon_dir / kind._icon)  # type: ignore[attr-defined]


def node_label(icon: str, text: str) -> str:
    """An HTML-like Graphviz label: the icon in a port cell, the text (lines split on ``\\n``) below it."""
    lines = "<BR/>".join(html.escape(line) for line in text.split("\n"))
    return (
        '<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="3">'
        f'<TR><TD PORT="{ICON_PORT}" FIXEDSIZE="TRUE" WIDTH="{ICON_PIXELS}" HEIGHT="{ICON_PIXELS}">'
        f'<IMG SRC="{html.escape(icon)}" SCALE="TRUE"/></TD></TR>'
        f"<TR><TD>{lines}</TD></TR></TABLE>>"
    )


class _Graph:
    """A Graphviz digraph whose nodes are icon + label tables and whose edges join icons."""

    def __init__(self, **graph_attr: str) -> None:
        import graphviz

        self.dot = graphviz.Digraph(
            graph_attr={"fontname": FONT, "splines": "spline", "pad": "0.3", **graph_attr},
            node_attr={"shape": "plain", "fontname": FONT, "fontsize": str(NODE_FONT), "fontcolor": INK},
            edge_attr={"fontname": FONT, "fontsize": str(EDGE_FONT), "color": "#5B6874", "fontcolor": INK},
        )
        self._count = 0

    def node(self, kind: type, text: str, graph: object = None) -> str:
        """Add a node drawn with ``kind``'s icon; returns its name."""
        self._count += 1
        name = f"n{self._count}"
        (graph or self.dot).node(name, node_label(icon_path(kind), text))  # type: ignore[attr-defined]
        return name

    def edge(self, tail: str, head: str, label: str = "", **attrs: str) -> None:
        """An arrow from ``tail``'s icon to ``head``'s icon."""
        self.dot.edge(f"{tail}:{ICON_PORT}", f"{head}:{ICON_PORT}", label=label, **attrs)

    def cluster(self, name: str, label: str, fill: str, parent: object = None) -> object:
        """A boxed group inside ``parent`` (default: the whole graph); use it as a context manager."""
        return (parent or self.dot).subgraph(  # type: ignore[attr-defined]
            name=f"cluster_{name}",
            graph_attr={
                "label": label,
                "labeljust": "l",
                "fontname": f"{FONT} Bold",
                "fontsize": str(CLUSTER_FONT),
                "style": "rounded,filled",
                "fillcolor": fill,
                "color": "#9AB0C4",
                "margin": "14",
            },
        )

    def render(self, destination: Path) -> Path:
        """Write the PNG to ``destination`` (built in a scratch directory, moved into place when complete)."""
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(self.dot.render(filename="diagram", directory=tmp, format="png", cleanup=True))
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(out, destination)
        return destination


def draw_aws_architecture(destination: Path, settings: DiagramSettings) -> Path:
    """Draw the AWS deployment: client → API Gateway → Lambda → endpoint ← S3 ← training job ← ECR.

    Top to bottom, so the picture is about as wide as the page and its labels print at full size.
    """
    from diagrams.aws.compute import ECR, ApplicationAutoScaling, Lambda
    from diagrams.aws.management import CloudwatchLogs
    from diagrams.aws.ml import Sagemaker, SagemakerTrainingJob
    from diagrams.aws.network import APIGateway
    from diagrams.aws.storage import S3
    from diagrams.onprem.client import Client

    s = settings
    g = _Graph(rankdir="TB", nodesep="0.5", ranksep="0.7")
    client = g.node(Client, "client\n(x-api-key)")
    with g.cluster("aws", "AWS account (one region)", "#E5F2FA") as aws:
        gateway = g.node(
            APIGateway,
            f"API Gateway (REST)\nstage '{s.stage}', key required\n"
            f"{s.throttle_rate:g} req/s, burst {s.throttle_burst}\n{s.quota}",
            aws,
        )
        proxy = g.node(Lambda, "Lambda proxy\n/predict, /health", aws)
        logs = g.node(CloudwatchLogs, "CloudWatch Logs", aws)
        with g.cluster("endpoint", "SageMaker real-time endpoint", "#EAF3E6", aws) as ep:
            endpoint = g.node(Sagemaker, f"endpoint\n{s.instance_type}", ep)
            scaling = g.node(
                ApplicationAutoScaling,
                f"autoscaling {s.autoscaling_min} to {s.autoscaling_max}\n{s.target_invocations} "
                "invocations/\ninstance/minute",
                ep,
            )
        registry = g.node(ECR, "ECR: one image\n(train + serve)", aws)
        data = g.node(S3, "S3: training data", aws)
        training = g.node(SagemakerTrainingJob, "training job\n(image's train)", aws)
        artifact = g.node(S3, "S3: model.tar.gz", aws)
    g.edge(client, gateway, "POST /predict")
    g.edge(gateway, proxy, "proxy event")
    g.edge(proxy, endpoint, "InvokeEndpoint")
    g.edge(proxy, logs, style="dashed")
    g.edge(scaling, endpoint, "scales", style="dashed")
    g.edge(data, training, "channel 'train'")
    g.edge(registry, training, "image")
    g.edge(training, artifact, "writes")
    g.edge(artifact, endpoint, "ModelDataUrl")
    g.edge(registry, endpoint, "serving image")
    return g.render(destination)


def draw_local_architecture(destination: Path) -> Path:
    """Draw the local cloud: the same request path with two loopback stand-ins for the AWS services.

    Two rows, so the picture is narrow enough to print its labels at full size: the request path
    (client, gateway, Lambda, InvokeEndpoint) on top, the serving container below it.
    """
    from diagrams.aws.compute import Lambda
    from diagrams.onprem.client import Client
    from diagrams.onprem.network import Gunicorn, Nginx
    from diagrams.programming.framework import Flask
    from diagrams.programming.language import Python

    g = _Graph(rankdir="LR", nodesep="0.4", ranksep="0.7")
    client = g.node(Client, "client or\nnotebook")
    with g.cluster("machine", "one machine, loopback only (127.0.0.1)", "#E5F2FA") as machine:
        gateway = g.node(Python, "local API Gateway:\nkey, usage plan,\n429 throttling", machine)
        proxy = g.node(Lambda, "the real\nLambda handler", machine)
        runtime = g.node(Python, "local\nInvokeEndpoint", machine)
        with g.cluster("container", "the real serving container", "#EAF3E6", machine) as box:
            nginx = g.node(Nginx, "nginx :8080", box)
            gunicorn = g.node(Gunicorn, "gunicorn", box)
            app = g.node(Flask, "Flask app\n/invocations", box)
    g.edge(client, gateway, "HTTP + x-api-key")
    g.edge(gateway, proxy, "proxy event")
    g.edge(proxy, runtime, "boto3")
    # The container goes on a second row, right to left under the request path, instead of three
    # more columns: an invisible edge puts the Flask app in the gateway's column, the container's
    # arrows are laid out backwards (dir=back draws them the right way round), and nginx ends up
    # under the local InvokeEndpoint that calls it.
    g.edge(client, app, style="invis")
    g.edge(app, gunicorn, dir="back")
    g.edge(gunicorn, nginx, dir="back")
    g.edge(runtime, nginx, "HTTP", constraint="false")
    return g.render(destination)
