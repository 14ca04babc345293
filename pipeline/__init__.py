"""Model development, packaging, deployment and the local cloud for the Adult income endpoint."""
