"""Running syncs beyond one process: the procrastinate job queue (queue.py), the workers
that take its jobs (worker.py) and the dispatcher that puts them there on each tenant's
schedule (dispatcher.py). `syncer run` (syncer/ops/scheduler.py, APScheduler) stays the
single-machine default; this is for many tenants or several replicas on PostgreSQL."""
