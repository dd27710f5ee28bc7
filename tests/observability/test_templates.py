from gateway.observability.templates import UNKNOWN_ROUTE, RouteTemplates


def test_literal_segments_win_over_parameters():
    templates = RouteTemplates(
        ["/orders", "/orders/{order_id}", "/orders/bulk", "/orders/{order_id}/cancel"]
    )
    assert templates.match("/orders") == "/orders"
    assert templates.match("/orders/") == "/orders"
    assert templates.match("/orders/bulk") == "/orders/bulk"
    assert templates.match("/orders/ord_1") == "/orders/{order_id}"
    assert templates.match("/orders/ord_1/cancel") == "/orders/{order_id}/cancel"
    assert templates.match("/orders/a/b/c") == UNKNOWN_ROUTE
    assert templates.match("/customers") == UNKNOWN_ROUTE


def test_regex_characters_in_templates_are_literal(tmp_path):
    contract = tmp_path / "c.yaml"
    contract.write_text("paths: {'/a.b/{id}': {}, '/x+y': {}}\n")
    templates = RouteTemplates.from_contract(contract)
    assert templates.match("/a.b/1") == "/a.b/{id}"
    assert templates.match("/aXb/1") == UNKNOWN_ROUTE
    assert templates.match("/x+y") == "/x+y"
