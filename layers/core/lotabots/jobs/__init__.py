"""GPU jobs: the job model, its API service, dispatch to Modal / AWS Batch / local and results."""
