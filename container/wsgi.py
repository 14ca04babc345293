"""WSGI entry point: the one place with import-time side effects (gunicorn imports it once, pre-fork).

With ``preload_app`` the gunicorn master imports this module before forking, so the model is
loaded, verified and self-checked once and the workers share its memory copy-on-write.
"""

import os

from inference.settings import load_settings, pin_native_threads

# Before numpy/scipy/OpenMP load: they size their thread pools from these variables at load time.
pin_native_threads(os.environ)

from inference.invocations_wsgi import create_server  # noqa: E402 - must follow the thread pinning above
from inference.readiness import load_model_state  # noqa: E402

settings = load_settings()
app = create_server(settings, load_model_state(settings.model_dir))
