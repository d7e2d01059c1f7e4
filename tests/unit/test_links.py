"""Links a report carries: MLflow and Prefect pages and artifact files, built without any server."""

from __future__ import annotations

from retrain.domain.links import (
    FigureRef,
    figure_refs,
    local_path,
    markdown_link,
    mlflow_artifact_url,
    mlflow_run_url,
    mlflow_version_url,
    prefect_flow_run_url,
)

RUN = "0123456789abcdef"
FLOW_RUN = "0b6f7c1e-1f7a-4a53-9d3c-2f0c6a4e8b11"


def test_mlflow_pages_of_a_run_an_artifact_and_a_version():
    assert mlflow_run_url("http://mlflow:5000/", "7", RUN) == f"http://mlflow:5000/#/experiments/7/runs/{RUN}"
    assert (
        mlflow_artifact_url("http://mlflow:5000", "7", RUN, "comparison/roc.png")
        == f"http://mlflow:5000/#/experiments/7/runs/{RUN}/artifacts/comparison/roc.png"
    )
    assert mlflow_version_url("https://people.example/mlflow/", "loans", "3") == (
        "https://people.example/mlflow/#/models/loans/versions/3"
    )


def test_a_flow_run_page_needs_a_ui_and_a_run_prefect_knows():
    assert prefect_flow_run_url("http://127.0.0.1:4200/", FLOW_RUN) == f"http://127.0.0.1:4200/runs/flow-run/{FLOW_RUN}"
    assert prefect_flow_run_url(None, FLOW_RUN) is None  # the embedded server is gone after the run
    assert prefect_flow_run_url("", FLOW_RUN) is None
    assert prefect_flow_run_url("http://127.0.0.1:4200", "local") is None  # called outside a flow


def test_only_a_file_uri_is_a_path_a_reader_opens():
    assert (
        local_path("file:///tmp/state/mlflow/artifacts/1/abc/artifacts")
        == "/tmp/state/mlflow/artifacts/1/abc/artifacts"
    )
    assert local_path("file:///tmp/with%20space/artifacts") == "/tmp/with space/artifacts"
    assert local_path("/srv/mlflow/1/abc/artifacts") == "/srv/mlflow/1/abc/artifacts"
    assert local_path("s3://retrain/mlflow/1/abc/artifacts") is None
    assert local_path("mlflow-artifacts:/1/abc/artifacts") is None


def test_figures_are_linked_with_their_file_on_the_embedded_default():
    refs = figure_refs(("comparison/roc.png",), "http://127.0.0.1:5000", "1", RUN, "file:///state/a/1/r/artifacts")
    assert refs == (
        FigureRef(
            "comparison/roc.png",
            f"http://127.0.0.1:5000/#/experiments/1/runs/{RUN}/artifacts/comparison/roc.png",
            "/state/a/1/r/artifacts/comparison/roc.png",
        ),
    )


def test_figures_on_a_server_are_linked_only_and_without_a_ui_their_location_is_given():
    served = figure_refs(("comparison/roc.png",), "https://mlflow.team", "1", RUN, "mlflow-artifacts:/1/r/artifacts")
    assert served[0].url is not None and served[0].location is None
    (unknown,) = figure_refs(("comparison/roc.png",), None, "1", RUN, "s3://bucket/1/r/artifacts/")
    assert unknown == FigureRef("comparison/roc.png", None, "s3://bucket/1/r/artifacts/comparison/roc.png")
    assert figure_refs((), "http://x", "1", RUN, "file:///a") == ()


def test_an_id_stays_copyable_code_linked_or_not():
    assert markdown_link("abc", "http://x/abc") == "[`abc`](http://x/abc)"
    assert markdown_link("abc", None) == "`abc`"
