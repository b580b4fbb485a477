"""The REST API: a FastAPI app over the pipeline's service layer.

`pid.api.app.create_app` builds the app; ``python -m pid.api`` (what ``make api`` runs) serves it
with uvicorn on the configured host and port. Routes stay thin: every change of state goes
through `pid.pipeline.service.DiagramService`.
"""
