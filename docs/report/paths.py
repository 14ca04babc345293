"""Where the report reads its inputs and writes its outputs (all relative to the repository root)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT_DIR = ROOT / "docs" / "report"
TEMPLATES = REPORT_DIR / "templates"
CAPTURES = REPORT_DIR / "captures"
ASSETS = REPORT_DIR / "assets"
MODEL_DIR = ROOT / "model"
MANIFEST = MODEL_DIR / "manifest.json"
EVALUATION_DIR = ROOT / "docs" / "evaluation"
EDA_DIR = ROOT / "docs" / "eda"
DEPLOY_CONFIG = ROOT / "config" / "deploy.toml"
LOCAL_PATH_BENCH = ROOT / "bench" / "results" / "local_path.json"
ARCHITECTURE_PNG = ROOT / "docs" / "architecture.png"
REPORT_HTML = REPORT_DIR / "report.html"
REPORT_PDF = ROOT / "docs" / "report.pdf"
