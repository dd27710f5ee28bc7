"""The catalogue without a browser: what each viewer can see, JSON, headers."""

import httpx
import yaml

from tests.catalogue.conftest import ADMIN_TOKEN, INTERNAL_HOST, READER_TOKEN

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


def get(server, path, **kwargs):
    return httpx.get(server.url + path, timeout=10, **kwargs)


def test_anonymous_index_lists_experience_apis_only(gateway_server):
    r = get(gateway_server, "/catalogue")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert 'data-card="shop"' in r.text and 'data-card="legacy"' in r.text
    assert "orders-proc" not in r.text and "stock" not in r.text.replace("Stock", "")
    assert "Internal system and process APIs are not shown" in r.text


def test_admin_viewer_sees_internal_apis(gateway_server):
    r = get(gateway_server, "/catalogue", headers=ADMIN)
    assert 'data-card="orders-proc"' in r.text and 'data-card="stock"' in r.text
    names = [
        a["name"] for a in get(gateway_server, "/catalogue/apis", headers=ADMIN).json()["apis"]
    ]
    assert names == ["legacy", "shop", "orders-proc", "stock"]


def test_a_read_only_admin_token_sees_internal_apis_too(gateway_server):
    reader = {"Authorization": f"Bearer {READER_TOKEN}"}
    names = [
        a["name"] for a in get(gateway_server, "/catalogue/apis", headers=reader).json()["apis"]
    ]
    assert names == ["legacy", "shop", "orders-proc", "stock"]


def test_wrong_bearer_is_anonymous(gateway_server):
    r = get(gateway_server, "/catalogue/apis", headers={"Authorization": "Bearer nope"})
    assert [a["name"] for a in r.json()["apis"]] == ["legacy", "shop"]


def test_internal_api_pages_are_not_found_for_anonymous(gateway_server):
    for path in (
        "/catalogue/api/stock",
        "/catalogue/apis/stock",
        "/catalogue/apis/stock/openapi.json",
        "/catalogue/apis/orders-proc/openapi.yaml",
    ):
        r = get(gateway_server, path)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        assert "stock" in r.json()["detail"] or "orders-proc" in r.json()["detail"]
    assert get(gateway_server, "/catalogue/apis/stock", headers=ADMIN).status_code == 200


def test_filters_work_without_javascript(gateway_server):
    r = get(gateway_server, "/catalogue", params={"tag": "b2b"})
    assert 'data-card="legacy"' in r.text and 'data-card="shop"' not in r.text
    r = get(gateway_server, "/catalogue", params={"q": "browse"})
    assert 'data-card="shop"' in r.text and 'data-card="legacy"' not in r.text
    r = get(gateway_server, "/catalogue", params={"tier": "system"}, headers=ADMIN)
    assert 'data-card="stock"' in r.text and 'data-card="shop"' not in r.text
    r = get(gateway_server, "/catalogue/apis", params={"lifecycle": "deprecated"})
    assert [a["name"] for a in r.json()["apis"]] == ["legacy"]
    r = get(gateway_server, "/catalogue/apis", params={"owner": "web-team"})
    assert [a["name"] for a in r.json()["apis"]] == ["shop"]


def test_bad_filter_is_a_problem(gateway_server):
    r = get(gateway_server, "/catalogue/apis", params={"tier": "galaxy"})
    assert r.status_code == 400
    assert "galaxy" in r.json()["detail"]


def test_api_detail_json(gateway_server):
    detail = get(gateway_server, "/catalogue/apis/legacy").json()
    assert detail["lifecycle"] == "deprecated"
    assert detail["sunset"] == "2027-06-30"
    assert detail["base_path"] == "/experience/legacy/v1"
    assert "X-API-Key" in detail["authentication"][0]
    assert detail["plans"] == [{"name": "free", "limits": "60/minute, 1000/day"}]
    assert detail["operations"] == [
        {
            "method": "GET",
            "path": "/items",
            "operationId": "listItems",
            "summary": "List items",
            "scopes": [],
            "deprecated": False,
        }
    ]
    shop = get(gateway_server, "/catalogue/apis/shop").json()
    assert shop["depends_on"] == [] and shop["hidden_dependencies"] == 1
    assert shop["plans"] == []  # plans apply to API-key consumers only
    shop = get(gateway_server, "/catalogue/apis/shop", headers=ADMIN).json()
    assert shop["depends_on"] == ["orders-proc"]


def test_contract_points_at_the_gateway_never_upstreams(gateway_server):
    doc = get(gateway_server, "/catalogue/apis/shop/openapi.json").json()
    assert doc["servers"] == [
        {"url": "/experience/shop/v1", "description": "Through the Tiergate gateway"}
    ]
    text = get(gateway_server, "/catalogue/apis/shop/openapi.yaml").text
    assert yaml.safe_load(text)["servers"][0]["url"] == "/experience/shop/v1"
    for path in ("/catalogue", "/catalogue/api/shop", "/catalogue/apis", "/catalogue/apis/shop"):
        for headers in ({}, ADMIN):
            body = get(gateway_server, path, headers=headers).text
            assert INTERNAL_HOST not in body
            assert ADMIN_TOKEN not in body
    admin_doc = get(gateway_server, "/catalogue/apis/stock/openapi.json", headers=ADMIN).text
    assert INTERNAL_HOST not in admin_doc


def test_pages_carry_security_headers(gateway_server):
    r = get(gateway_server, "/catalogue/api/shop")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert r.headers["x-content-type-options"] == "nosniff"
    assert "<script>" not in r.text  # no inline scripts: the CSP forbids them


def test_dependency_graph_is_inline_svg(gateway_server):
    r = get(gateway_server, "/catalogue/api/orders-proc", headers=ADMIN)
    assert "<svg" in r.text
    assert 'data-from="shop" data-to="orders-proc"' in r.text
    assert 'data-from="orders-proc" data-to="stock"' in r.text


def test_deprecated_api_responses_carry_lifecycle_headers(gateway_server):
    r = get(gateway_server, "/experience/legacy/v1/items")
    assert r.status_code == 200
    assert r.headers["deprecation"] == "@1768435200"  # 2026-01-15T00:00:00Z
    assert r.headers["sunset"] == "Wed, 30 Jun 2027 00:00:00 GMT"
    links = r.headers.get_list("link")
    assert '</catalogue/api/legacy>; rel="deprecation"; type="text/html"' in links
    assert '</catalogue/api/legacy>; rel="sunset"; type="text/html"' in links
    ok = get(gateway_server, "/experience/shop/v1/items")
    assert "deprecation" not in ok.headers and "sunset" not in ok.headers


def test_swagger_assets_are_served_locally(gateway_server):
    r = get(gateway_server, "/catalogue/swagger-ui/swagger-ui-bundle.js")
    assert r.status_code == 200 and "SwaggerUIBundle" in r.text[:2000]
    assert get(gateway_server, "/catalogue/static/catalogue.js").status_code == 200


def test_pages_show_live_traffic_per_edge(gateway_server):
    for _ in range(3):
        assert get(gateway_server, "/experience/shop/v1/items").status_code == 200
    r = get(gateway_server, "/catalogue/api/shop")
    assert '<tr data-from="clients" data-to="shop">' in r.text
    row = r.text.split('<tr data-from="clients" data-to="shop">')[1].split("</tr>")[0]
    assert "<td>0.0%</td>" in row
    calls = float(row.split("<td>")[3].split("</td>")[0])
    assert calls >= 3.0
