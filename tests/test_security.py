"""Hardening: bearer tokens and owners, limits, malformed files, and a fuzz of the API."""

from __future__ import annotations

import io
from urllib.parse import quote

import httpx
import numpy as np
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st

from api.app import create_app
from api.settings import Settings
from tests.conftest import digits_frame
from tests.service_helpers import LiveServer, store_url

TASKS = [{"name": f"digit_{d}", "type": "binary"} for d in (0, 1, 2)]
JOB = {"data": {"builtin": "digits"}, "tasks": TASKS, "model": {"hidden": [16]},
       "training": {"epochs": 1}, "probe": {"seeds": 1, "transfer_steps": 10}}
ALICE, BOB = {"Authorization": "Bearer a-secret"}, {"Authorization": "Bearer b-secret"}


@pytest.fixture
def secured(tmp_path):
    return Settings(data_dir=tmp_path / "data", database_url=store_url("sqlite", tmp_path),
                    auth_tokens="alice:a-secret, bob:b-secret", max_tasks=4, max_rows=1000,
                    max_features=64, max_epochs=50, max_training_runs=40, max_active_jobs=2,
                    device="cpu",
                    max_upload_bytes=1_000_000)


def test_tokens_guard_every_endpoint_but_healthz(secured):
    with LiveServer(secured) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").status_code == 200
        for method, path in [("GET", "/v1/jobs"), ("POST", "/v1/jobs"), ("GET", "/metrics"),
                             ("GET", "/v1/datasets"), ("GET", "/v1/jobs/job_x/result")]:
            missing = client.request(method, path)
            assert missing.status_code == 401, path
            assert missing.json() == {"detail": "authorization: a bearer token is required"}
            assert missing.headers["www-authenticate"] == "Bearer"
            wrong = client.request(method, path, headers={"Authorization": "Bearer nope"})
            assert wrong.status_code == 403, path
        assert client.get("/metrics", headers=ALICE).status_code == 200


def test_owners_cannot_see_each_others_jobs_or_datasets(secured):
    roomy = secured.model_copy(update={"max_rows": 10_000})
    with LiveServer(roomy) as server, httpx.Client(base_url=server.url) as client:
        job = client.post("/v1/jobs", json=JOB, headers=ALICE).json()
        buf = io.BytesIO(digits_frame(50).to_csv(index=False).encode())
        ds = client.post("/v1/datasets", files={"file": ("d.csv", buf)}, headers=ALICE).json()
        for method, path in [("GET", f"/v1/jobs/{job['id']}"),
                             ("DELETE", f"/v1/jobs/{job['id']}"),
                             ("GET", f"/v1/jobs/{job['id']}/result"),
                             ("GET", f"/v1/datasets/{ds['id']}"),
                             ("DELETE", f"/v1/datasets/{ds['id']}")]:
            assert client.request(method, path, headers=BOB).status_code == 404, path
        assert client.get("/v1/jobs", headers=BOB).json()["count"] == 0
        assert client.get("/v1/datasets", headers=BOB).json()["count"] == 0
        bob_job = {**JOB, "data": {"dataset": ds["id"]}}  # bob can't use alice's upload
        refused = client.post("/v1/jobs", json=bob_job, headers=BOB)
        assert refused.json()["detail"] == f"data.dataset: unknown dataset '{ds['id']}'"
        assert client.get(f"/v1/jobs/{job['id']}", headers=ALICE).json()["status"] == "queued"


def test_malformed_token_setting_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="must be owner:token pairs"):
        create_app(Settings(data_dir=tmp_path, auth_tokens="alice-without-token"))


def test_limits_give_clear_4xx(secured, tmp_path):
    many = [{"name": f"digit_{d}", "type": "binary"} for d in range(5)]
    cases = [
        ({**JOB, "tasks": many}, 422, "tasks: at most 4 tasks per task set; got 5"),
        ({**JOB, "training": {"epochs": 60}}, 422,
         "training.epochs: 60 exceeds the limit of 50"),
        ({**JOB, "budget": {"training_runs": 41}}, 422,
         "budget.training_runs: 41 exceeds the limit of 40"),
        (JOB, 422, "data: 1797 rows exceed the limit of 1000"),
    ]
    with LiveServer(secured) as server, httpx.Client(base_url=server.url) as client:
        for body, status, detail in cases:
            response = client.post("/v1/jobs", json=body, headers=ALICE)
            assert (response.status_code, response.json()["detail"]) == (status, detail)
        frame = digits_frame(100)
        frame["extra"] = 1.0  # 65 features > 64
        buf = io.BytesIO(frame.to_csv(index=False).encode())
        ds = client.post("/v1/datasets", files={"file": ("d.csv", buf)}, headers=ALICE).json()
        wide = {**JOB, "data": {"dataset": ds["id"],
                                "features": [f"pixel_{i}" for i in range(64)] + ["extra"]}}
        response = client.post("/v1/jobs", json=wide, headers=ALICE)
        assert response.json()["detail"] == ("data.features: 65 feature values per row exceed "
                                             "the limit of 64")
        small = {**JOB, "data": {"dataset": ds["id"]}, "tasks": TASKS[:2]}
        small["data"]["features"] = [f"pixel_{i}" for i in range(64)]
        assert client.post("/v1/jobs", json=small, headers=ALICE).status_code == 202
        assert client.post("/v1/jobs", json=small, headers=ALICE).status_code == 202
        third = client.post("/v1/jobs", json=small, headers=ALICE)
        assert third.status_code == 429
        assert third.json()["detail"] == ("jobs: 2 queued or running jobs; the limit per "
                                          "owner is 2")
        assert client.post("/v1/jobs", json=small, headers=BOB).status_code == 422  # not his
        bobs = io.BytesIO(frame.drop(columns="extra").to_csv(index=False).encode())
        bob_ds = client.post("/v1/datasets", files={"file": ("d.csv", bobs)}, headers=BOB).json()
        bob_job = {**small, "data": {**small["data"], "dataset": bob_ds["id"]}}
        assert client.post("/v1/jobs", json=bob_job, headers=BOB).status_code == 202  # own limit


def _npz_bytes(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


MALFORMED = [
    ("ragged.csv", b"a,b,c\n1,2,3\n4,5,6,7,8\n", "file: cannot read 'ragged.csv'"),
    ("object.npz", _npz_bytes(X=np.zeros((4, 2)), y=np.array([1, "a", None, 2],
                                                              dtype=object)),
     "file: cannot read 'object.npz': Object arrays cannot be loaded"),
    ("truncated.parquet", b"PAR1\x00\x01", "file: cannot read 'truncated.parquet'"),
    ("noX.npz", _npz_bytes(y=np.arange(3)), "file: cannot read 'noX.npz': no array 'X'"),
]


@pytest.mark.parametrize(("name", "content", "detail"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_uploads_are_refused_and_change_nothing(secured, name, content, detail):
    with LiveServer(secured) as server, httpx.Client(base_url=server.url) as client:
        good = io.BytesIO(digits_frame(20).to_csv(index=False).encode())
        kept = client.post("/v1/datasets", files={"file": ("ok.csv", good)}, headers=ALICE)
        response = client.post("/v1/datasets", files={"file": (name, content)}, headers=ALICE)
        assert response.status_code == 422 and response.json()["detail"].startswith(detail)
        listed = client.get("/v1/datasets", headers=ALICE).json()
        assert [d["id"] for d in listed["data"]] == [kept.json()["id"]]


@pytest.mark.parametrize(("change", "detail"), [
    (lambda f: f.assign(pixel_5=np.inf), "data.features: 100 rows have NaN or infinite"),
    (lambda f: f.assign(digit_0=1), "tasks[0].column: task 'digit_0' has a single class (1)"),
])
def test_unusable_data_is_refused_at_submit(secured, change, detail):
    frame = change(digits_frame(100))
    with LiveServer(secured) as server, httpx.Client(base_url=server.url) as client:
        buf = io.BytesIO(frame.to_csv(index=False).encode())
        ds = client.post("/v1/datasets", files={"file": ("d.csv", buf)}, headers=ALICE).json()
        body = {**JOB, "data": {"dataset": ds["id"],
                                "features": [f"pixel_{i}" for i in range(64)]}}
        response = client.post("/v1/jobs", json=body, headers=ALICE)
        assert response.status_code == 422 and response.json()["detail"].startswith(detail)
        assert client.get("/v1/jobs", headers=ALICE).json()["count"] == 0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=4),
    max_leaves=12)
task_like = st.fixed_dictionaries({"data": st.one_of(st.just({"builtin": "digits"}),
                                                     json_values),
                                   "tasks": st.one_of(st.just(TASKS), json_values)},
                                  optional={"probe": json_values, "model": json_values,
                                            "grouping": json_values, "measures": json_values})


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    settings = Settings(data_dir=folder, database_url=f"sqlite:///{folder / 's.db'}",
                        auth_tokens="alice:a-secret", device="cpu")
    with LiveServer(settings) as server, httpx.Client(base_url=server.url,
                                                      headers=ALICE) as client:
        yield client


@hyp_settings(max_examples=120, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(json_values, task_like))
def test_fuzzed_job_bodies_never_give_5xx(fuzz_server, body):
    response = fuzz_server.post("/v1/jobs", json=body)
    assert response.status_code < 500, response.text
    if response.status_code != 202:
        detail = response.json()["detail"]
        assert isinstance(detail, str) and ":" in detail  # names the field


@hyp_settings(max_examples=80, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(job_id=st.text(min_size=1, max_size=30).filter(lambda s: "/" not in s and s not in
                                                      (".", "..")),
       query=st.dictionaries(st.sampled_from(["status", "limit", "offset", "k"]),
                             st.text(max_size=8), max_size=3))
def test_fuzzed_ids_and_queries_never_give_5xx(fuzz_server, job_id, query):
    job_id = quote(job_id, safe="")
    for path in (f"/v1/jobs/{job_id}", f"/v1/jobs/{job_id}/groupings", "/v1/jobs",
                 f"/v1/datasets/{job_id}"):
        response = fuzz_server.get(path, params=query)
        assert response.status_code < 500, (path, response.text)
        assert response.status_code in (200, 404, 409, 422)


@hyp_settings(max_examples=60, deadline=None, derandomize=True,
              suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=2000),
       name=st.sampled_from(["d.csv", "d.parquet", "d.npz", "d.pq", "d.bin", "noext"]))
def test_fuzzed_uploads_never_give_5xx(fuzz_server, content, name):
    response = fuzz_server.post("/v1/datasets", files={"file": (name, content)})
    assert response.status_code in (201, 422), response.text
    if response.status_code == 422:
        assert response.json()["detail"].startswith("file: ")
    else:  # a valid file after all (e.g. a one-line CSV): it can be deleted again
        assert fuzz_server.delete(f"/v1/datasets/{response.json()['id']}").status_code == 200
