"""/healthz and /metrics (Prometheus text format)."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from sqlalchemy import text

from api.deps import OwnerDep, StoreDep
from api.store import JobStatus, Store

router = APIRouter(tags=["health"])
DURATION_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


@router.get("/healthz")
def healthz(store: StoreDep) -> dict[str, str]:
    with store.engine.connect() as conn:  # a store that is down answers 503 (errors.py)
        conn.execute(text("SELECT 1"))
    return {"status": "ok"}


class StoreCollector:
    """Reads the store on every scrape, so every API process reports the same numbers."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self):
        counts = self.store.count_by_status()
        jobs = GaugeMetricFamily("taskaffinity_jobs", "Jobs by status", labels=["status"])
        for status in JobStatus:
            jobs.add_metric([status.value], counts.get(status.value, 0))
        yield jobs
        yield GaugeMetricFamily("taskaffinity_queue_depth", "Queued jobs",
                                value=counts.get(JobStatus.queued.value, 0))
        durations = self.store.run_durations()
        buckets = [(str(b), sum(d <= b for d in durations)) for b in DURATION_BUCKETS]
        buckets.append(("+Inf", len(durations)))
        yield HistogramMetricFamily("taskaffinity_job_duration_seconds",
                                    "Run time of finished jobs", buckets=buckets,
                                    sum_value=sum(durations))


@router.get("/metrics", response_class=Response,
            responses={200: {"content": {"text/plain": {}},
                             "description": "Prometheus text format"}})
def metrics(store: StoreDep, _owner: OwnerDep) -> Response:
    registry = CollectorRegistry()
    registry.register(StoreCollector(store))
    return Response(generate_latest(registry), media_type="text/plain; version=0.0.4")
