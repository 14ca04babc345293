"""The project report: ``python -m docs.report`` builds docs/report.pdf from the current artifacts."""
