"""A finished analysis as an MLflow run (``affinity run ... --mlflow``; the ``mlflow`` extra).

The run goes to MLflow's own tracking URI (``MLFLOW_TRACKING_URI``, as MLflow reads it).
Logged: parameters (the task set's name, tasks, recipe and budget), metrics (each k's measured
improvement over the better baseline and whether it is beyond noise, the compute spent), tags
(the verdict, each k's groups) and the output folder as artifacts (result.json, the matrices'
CSV files, the figures and the report).
"""

from __future__ import annotations

from pathlib import Path

from affinity.result import Result


def log_to_mlflow(result: Result, out_dir: str | Path, experiment: str | None = None) -> str:
    """Log ``result`` and the files of ``out_dir`` as one MLflow run; return its id."""
    try:
        import mlflow
    except ImportError:
        raise RuntimeError("--mlflow needs MLflow: pip install 'taskaffinity[mlflow]'") from None
    taskset, cost = result.meta.taskset, result.meta.cost
    if experiment:
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=result.meta.name or "taskaffinity") as run:
        training = taskset.get("training", {})
        mlflow.log_params({
            "tasks": ",".join(result.tasks)[:500], "n_tasks": len(result.tasks),
            "budget_training_runs": cost.budget,
            "backbone": taskset.get("model", {}).get("backbone"),
            **{f"training.{k}": v for k, v in training.items()}})
        metrics = {"training_runs": cost.training_runs, "seconds": cost.seconds}
        for entry in result.groupings:
            if entry.improvement is not None:
                metrics[f"improvement_k{entry.k}"] = entry.improvement
                metrics[f"significant_k{entry.k}"] = float(entry.significant)
        mlflow.log_metrics(metrics)
        mlflow.set_tags({"verdict": result.verdict[:5000],
                         **{f"groups_k{e.k}": " | ".join(", ".join(g) for g in e.groups)[:5000]
                            for e in result.groupings}})
        mlflow.log_artifacts(str(out_dir))
        return run.info.run_id
