"""Health probes answer whatever their `Host` (a load balancer probing the pod's address);
every other route still refuses a host that ALLOWED_HOSTS does not list."""

import logging

import httpx
import pytest

POD = "10.1.2.3:8000"


@pytest.mark.parametrize("path", ["/health", "/health/ready"])
def test_probes_answer_a_host_not_allowed(client, db, caplog, path):
    response = client.get(path, headers={"Host": POD})
    assert response.status_code == 200
    assert not [record for record in caplog.records if record.levelno >= logging.ERROR]


def test_probes_answer_it_through_uvicorn(live_server_factory, default_assistant):
    server = live_server_factory()
    for path in ("/health", "/health/ready"):
        assert httpx.get(server.url + path, headers={"Host": POD}).status_code == 200
    assert server.wait_for_output('"GET /health/ready HTTP/1.1" 200')
    server.stop()

    logged = "".join(server.output)
    assert " ERROR " not in logged and "Traceback" not in logged


@pytest.mark.parametrize(
    "path", ["/api/v1/assistants/default", "/admin/", "/admin/login/", "/health/", "/metrics"]
)
def test_other_routes_still_refuse_it(client, db, assistant, path):
    assert client.get(path, headers={"Host": POD}).status_code == 400


def test_a_malformed_host_is_refused_on_probes_too(client, db):
    assert client.get("/health", headers={"Host": "bad host!"}).status_code == 400
